/*
 * test_coord.c — the coordinator core: manifest, secrets, activation and
 * every refusal; sealed state across restarts; a tampered audit log; a
 * foreign sealing key; and kill -9 during activations, many times.
 *
 * Evidence here comes from a test verifier: 32 bytes of "measurement"
 * followed by the 64 bytes of report data, checked against the package's
 * UniqueID and the expected binding. Real evidence formats are the attest
 * module's and are tested there.
 */
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coffer/coordinator.h"

static const uint8_t measurement[32] = {0xaa, 0xbb, 0xcc};
static const uint8_t seal_key[32] = {7, 7, 7};

static enum coffer_err test_verify(void *arg, const uint8_t *ev, size_t n, const struct coffer_mf_package *pkg,
                                   const uint8_t report_data[64], char *claims, size_t claims_size)
{
    (void)arg;
    if (n != 96)
        return COFFER_FAIL(COFFER_E_MALFORMED, "test evidence is 96 bytes");
    if (!pkg->has_unique_id || memcmp(ev, pkg->unique_id, 32) != 0)
        return COFFER_FAIL(COFFER_E_POLICY, "measurement not allowed by package %s", pkg->name);
    if (memcmp(ev + 32, report_data, 64) != 0)
        return COFFER_FAIL(COFFER_E_POLICY, "report data does not bind the marble's key and nonce");
    snprintf(claims, claims_size, "{\"measurement\":\"aabbcc...\"}");
    return COFFER_OK;
}

/* A user: key + self-signed certificate (DER and JSON-escaped PEM). */
struct user {
    uint8_t der[2048];
    size_t der_n;
    char pem_json[4096];
};

static void make_user(struct user *u, const char *cn)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, k, EVP_sha256());
    uint8_t *w = u->der;
    u->der_n = (size_t)i2d_X509(x, &w);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    char *o = u->pem_json;
    for (long i = 0; i < n; i++) {
        if (pem[i] == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = pem[i];
        }
    }
    *o = '\0';
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
}

static struct user admin, reader, stranger;

static char manifest[16384];

static int setup(void **state)
{
    (void)state;
    coffer_log_set_level(COFFER_LOG_ERROR);
    make_user(&admin, "admin");
    make_user(&reader, "reader");
    make_user(&stranger, "stranger");
    char mhex[65];
    coffer_hex_encode(measurement, 32, mhex);
    snprintf(manifest, sizeof(manifest),
             "{\"Packages\": {\"server\": {\"TEE\": \"Simulation\", \"UniqueID\": \"%s\"},"
             "               \"other\": {\"TEE\": \"Simulation\", \"UniqueID\": \"%064d\"}},"
             " \"Marbles\": {\"server\": {\"Package\": \"server\", \"MaxActivations\": 3,"
             "     \"Parameters\": {\"Argv\": [\"coffer\", \"serve\"],"
             "        \"Files\": {\"/keys/model\": \"{{ raw .Secrets.modelKey }}\","
             "                   \"tls.pem\": \"{{ pem .MarbleRun.MarbleCert.Cert }}\","
             "                   \"mine\": \"{{ hex .Secrets.perMarble }}\","
             "                   \"shared\": \"{{ hex .Secrets.sharedKey }}\"},"
             "        \"Env\": {\"NOTE\": \"{{ string .Secrets.note }}\"}}},"
             "             \"wrongpkg\": {\"Package\": \"other\"},"
             "             \"many\": {\"Package\": \"server\", \"Parameters\": {\"Files\": {\"k\": \"{{ hex .Secrets.sharedKey }}\"}}}},"
             " \"Secrets\": {\"modelKey\": {\"Type\": \"symmetric-key\", \"Size\": 128, \"UserDefined\": true},"
             "             \"note\": {\"Type\": \"plain\", \"UserDefined\": true},"
             "             \"perMarble\": {\"Type\": \"symmetric-key\", \"Size\": 256},"
             "             \"sharedKey\": {\"Type\": \"symmetric-key\", \"Size\": 256, \"Shared\": true},"
             "             \"svcCert\": {\"Type\": \"cert-ecdsa\", \"Size\": 256, \"Shared\": true}},"
             " \"Users\": {\"admin\": {\"Certificate\": \"%s\", \"Roles\": [\"owner\"]},"
             "           \"reader\": {\"Certificate\": \"%s\", \"Roles\": [\"read\"]}},"
             " \"Roles\": {\"owner\": {\"ResourceType\": \"Secrets\", \"ResourceNames\": [\"modelKey\", \"note\"],"
             "                       \"Actions\": [\"WriteSecret\", \"ReadSecret\"]},"
             "           \"read\": {\"ResourceType\": \"Secrets\", \"ResourceNames\": [\"modelKey\", \"svcCert\"],"
             "                      \"Actions\": [\"ReadSecret\"]}}}",
             mhex, 5, admin.pem_json, reader.pem_json);
    return 0;
}

static struct coffer_coord *open_coord(const char *dir, const uint8_t *key)
{
    struct coffer_coord_config cfg = {.seal_dir = dir, .seal_key = key ? key : seal_key, .dns_names = "localhost",
                                      .simulation = true, .verify = test_verify};
    struct coffer_coord *c;
    enum coffer_err r = coffer_coord_open(&cfg, &c);
    if (r != COFFER_OK)
        fail_msg("open: %s", coffer_err_detail());
    return c;
}

/* A marble: a key, its CSR, evidence binding the key and a nonce. */
struct marble {
    EVP_PKEY *key;
    uint8_t csr[1024];
    size_t csr_n;
    uint8_t evidence[96];
    uint8_t nonce[32];
};

static void make_marble(struct marble *m, struct coffer_coord *c, const uint8_t *meas)
{
    m->key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    X509_REQ_set_pubkey(req, m->key);
    X509_REQ_sign(req, m->key, EVP_sha256());
    uint8_t *w = m->csr;
    m->csr_n = (size_t)i2d_X509_REQ(req, &w);
    X509_REQ_free(req);
    assert_int_equal(coffer_coord_nonce(c, m->nonce), COFFER_OK);
    uint8_t *spki = NULL;
    int n = i2d_PUBKEY(m->key, &spki);
    memcpy(m->evidence, meas ? meas : measurement, 32);
    SHA256(spki, (size_t)n, m->evidence + 32);
    memcpy(m->evidence + 64, m->nonce, 32);
    OPENSSL_free(spki);
}

static enum coffer_err activate(struct coffer_coord *c, struct marble *m, const char *type, const char *uuid,
                                json_t **out)
{
    struct coffer_coord_activation a = {.marble_type = type, .uuid = uuid, .csr_der = m->csr, .csr_size = m->csr_n,
                                        .evidence = m->evidence, .evidence_size = 96, .nonce = m->nonce};
    *out = NULL;
    return coffer_coord_activate(c, &a, out);
}

static json_t *secrets_req(const char *key_b64, const char *note_b64)
{
    json_t *o = json_object();
    if (key_b64)
        json_object_set_new(o, "modelKey", json_pack("{s:s}", "Key", key_b64));
    if (note_b64)
        json_object_set_new(o, "note", json_pack("{s:s}", "Key", note_b64));
    return o;
}

/* base64 of a file in the activation response */
static void file_of(json_t *resp, const char *kind, const char *name, uint8_t **data, size_t *n)
{
    json_t *v = json_object_get(json_object_get(json_object_get(resp, "Parameters"), kind), name);
    assert_non_null(v);
    assert_int_equal(coffer_base64_decode(json_string_value(v), strlen(json_string_value(v)), data, n), COFFER_OK);
}

static void test_full_lifecycle(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct coffer_coord *c = open_coord(dir, NULL);
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_ACCEPTING_MANIFEST);
    assert_true(coffer_coord_is_simulation(c));
    struct marble m;
    json_t *resp;
    /* no manifest yet: nothing to activate or set */
    make_marble(&m, c, NULL);
    assert_int_equal(activate(c, &m, "server", "u1", &resp), COFFER_E_STATE);
    EVP_PKEY_free(m.key);
    /* an invalid manifest is refused and changes nothing */
    assert_int_equal(coffer_coord_set_manifest(c, "{\"Packages\": {}}", 16), COFFER_E_JSON);
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_ACCEPTING_MANIFEST);
    if (coffer_coord_set_manifest(c, manifest, strlen(manifest)) != COFFER_OK)
        fail_msg("set manifest: %s", coffer_err_detail());
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_ACCEPTING_MARBLES);
    assert_int_equal(coffer_coord_set_manifest(c, manifest, strlen(manifest)), COFFER_E_STATE);
    /* the manifest as uploaded, with the root's signature */
    uint8_t *raw, *sig, fp[32], want_fp[32];
    size_t raw_n, sig_n;
    assert_int_equal(coffer_coord_get_manifest(c, &raw, &raw_n, fp, &sig, &sig_n), COFFER_OK);
    assert_int_equal(raw_n, strlen(manifest));
    assert_memory_equal(raw, manifest, raw_n);
    SHA256((const uint8_t *)manifest, strlen(manifest), want_fp);
    assert_memory_equal(fp, want_fp, 32);
    uint8_t *root_der;
    size_t root_n;
    assert_int_equal(coffer_coord_root_der(c, &root_der, &root_n), COFFER_OK);
    const uint8_t *p = root_der;
    X509 *root = d2i_X509(NULL, &p, (long)root_n);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(root));
    assert_int_equal(EVP_DigestVerify(md, sig, sig_n, raw, raw_n), 1);
    EVP_MD_CTX_free(md);
    coffer_free(raw);
    coffer_free(sig);

    /* secrets: refusals first */
    json_t *req = secrets_req("AAECAwQFBgcICQoLDA0ODw==", "aGVsbG8=");
    assert_int_equal(coffer_coord_set_secrets(c, NULL, 0, req), COFFER_E_DENIED);
    assert_int_equal(coffer_coord_set_secrets(c, stranger.der, stranger.der_n, req), COFFER_E_DENIED);
    assert_int_equal(coffer_coord_set_secrets(c, reader.der, reader.der_n, req), COFFER_E_DENIED);
    json_t *short_key = secrets_req("AAEC", NULL);
    assert_int_equal(coffer_coord_set_secrets(c, admin.der, admin.der_n, short_key), COFFER_E_JSON);
    assert_non_null(strstr(coffer_err_detail(), "$.secrets.modelKey.Key"));
    json_decref(short_key);
    json_t *not_ud = json_pack("{s:{s:s}}", "sharedKey", "Key", "AAAA");
    assert_int_equal(coffer_coord_set_secrets(c, admin.der, admin.der_n, not_ud), COFFER_E_JSON);
    json_decref(not_ud);
    /* user-defined secret not set yet: activation cannot render it */
    make_marble(&m, c, NULL);
    assert_int_equal(activate(c, &m, "server", "u1", &resp), COFFER_E_STATE);
    EVP_PKEY_free(m.key);
    assert_int_equal(coffer_coord_set_secrets(c, admin.der, admin.der_n, req), COFFER_OK);
    json_decref(req);
    const char *names[] = {"modelKey"};
    json_t *got;
    assert_int_equal(coffer_coord_get_secrets(c, reader.der, reader.der_n, names, 1, &got), COFFER_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(got, "modelKey"), "Private")),
                        "AAECAwQFBgcICQoLDA0ODw==");
    assert_string_equal(json_string_value(json_object_get(json_object_get(got, "modelKey"), "Type")), "symmetric-key");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(got, "modelKey"), "Size")), 128);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(got, "modelKey"), "ValidFor")), 0);
    json_decref(got);
    const char *cert_names[] = {"svcCert"};
    assert_int_equal(coffer_coord_get_secrets(c, reader.der, reader.der_n, cert_names, 1, &got), COFFER_OK);
    assert_non_null(json_object_get(json_object_get(got, "svcCert"), "Cert"));
    assert_non_null(json_object_get(json_object_get(got, "svcCert"), "Public"));
    json_decref(got);
    const char *note[] = {"note"};
    assert_int_equal(coffer_coord_get_secrets(c, reader.der, reader.der_n, note, 1, &got), COFFER_E_DENIED);

    /* activation refusals */
    make_marble(&m, c, NULL);
    m.nonce[0] ^= 1; /* a nonce never issued */
    assert_int_equal(activate(c, &m, "server", "u1", &resp), COFFER_E_DENIED);
    EVP_PKEY_free(m.key);
    uint8_t bad_meas[32] = {1};
    make_marble(&m, c, bad_meas);
    assert_int_equal(activate(c, &m, "server", "u1", &resp), COFFER_E_POLICY);
    assert_non_null(strstr(coffer_err_detail(), "measurement not allowed"));
    EVP_PKEY_free(m.key);
    make_marble(&m, c, NULL);
    assert_int_equal(activate(c, &m, "wrongpkg", "u1", &resp), COFFER_E_POLICY);
    EVP_PKEY_free(m.key);
    make_marble(&m, c, NULL);
    assert_int_equal(activate(c, &m, "nosuchtype", "u1", &resp), COFFER_E_DENIED);
    EVP_PKEY_free(m.key);
    /* evidence bound to another key than the CSR's */
    make_marble(&m, c, NULL);
    struct marble other;
    make_marble(&other, c, NULL);
    memcpy(m.csr, other.csr, other.csr_n);
    m.csr_n = other.csr_n;
    assert_int_equal(activate(c, &m, "server", "u1", &resp), COFFER_E_POLICY);
    assert_non_null(strstr(coffer_err_detail(), "report data"));
    EVP_PKEY_free(m.key);
    EVP_PKEY_free(other.key);

    /* success */
    make_marble(&m, c, NULL);
    if (activate(c, &m, "server", "uuid-A", &resp) != COFFER_OK)
        fail_msg("activate: %s", coffer_err_detail());
    /* replaying the same nonce is refused */
    json_t *again;
    assert_int_equal(activate(c, &m, "server", "uuid-A", &again), COFFER_E_DENIED);
    uint8_t *d;
    size_t dn;
    file_of(resp, "Files", "/keys/model", &d, &dn);
    assert_int_equal(dn, 16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(d[i], i);
    coffer_free(d);
    file_of(resp, "Env", "NOTE", &d, &dn);
    assert_int_equal(dn, 5);
    assert_memory_equal(d, "hello", 5);
    coffer_free(d);
    uint8_t *mine_a;
    size_t mine_a_n;
    file_of(resp, "Files", "mine", &mine_a, &mine_a_n);
    assert_int_equal(mine_a_n, 64);
    /* the certificate chain: the marble's key, under the intermediate */
    const char *chain = json_string_value(json_object_get(resp, "Certificate"));
    BIO *b = BIO_new_mem_buf(chain, -1);
    X509 *mc = PEM_read_bio_X509(b, NULL, NULL, NULL);
    X509 *inter = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(mc);
    assert_non_null(inter);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(mc), m.key), 1);
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, root);
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    sk_X509_push(untrusted, inter);
    X509_STORE_CTX *vc = X509_STORE_CTX_new();
    X509_STORE_CTX_init(vc, st, mc, untrusted);
    assert_int_equal(X509_verify_cert(vc), 1);
    X509_STORE_CTX_free(vc);
    sk_X509_free(untrusted);
    X509_STORE_free(st);
    X509_free(mc);
    X509_free(inter);
    EVP_PKEY_free(m.key);
    json_decref(resp);
    /* the same UUID gets the same per-marble key; another UUID another */
    make_marble(&m, c, NULL);
    assert_int_equal(activate(c, &m, "server", "uuid-A", &resp), COFFER_OK);
    file_of(resp, "Files", "mine", &d, &dn);
    assert_memory_equal(d, mine_a, 64);
    coffer_free(d);
    json_decref(resp);
    EVP_PKEY_free(m.key);
    make_marble(&m, c, NULL);
    assert_int_equal(activate(c, &m, "server", "uuid-B", &resp), COFFER_OK);
    file_of(resp, "Files", "mine", &d, &dn);
    assert_memory_not_equal(d, mine_a, 64);
    coffer_free(d);
    json_decref(resp);
    EVP_PKEY_free(m.key);
    /* MaxActivations is 3 */
    make_marble(&m, c, NULL);
    assert_int_equal(activate(c, &m, "server", "uuid-C", &resp), COFFER_E_DENIED);
    assert_non_null(strstr(coffer_err_detail(), "MaxActivations"));
    EVP_PKEY_free(m.key);
    assert_int_equal(coffer_coord_activations(c, "server"), 3);
    coffer_coord_close(c);

    /* restart: same root, same manifest, counters and secrets kept */
    c = open_coord(dir, NULL);
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_ACCEPTING_MARBLES);
    assert_int_equal(coffer_coord_activations(c, "server"), 3);
    uint8_t *root2;
    size_t root2_n;
    assert_int_equal(coffer_coord_root_der(c, &root2, &root2_n), COFFER_OK);
    assert_int_equal(root2_n, root_n);
    assert_memory_equal(root2, root_der, root_n);
    coffer_free(root2);
    assert_int_equal(coffer_coord_get_secrets(c, admin.der, admin.der_n, names, 1, &got), COFFER_OK);
    json_decref(got);
    make_marble(&m, c, NULL);
    assert_int_equal(activate(c, &m, "server", "uuid-A", &resp), COFFER_E_DENIED); /* still at MaxActivations */
    EVP_PKEY_free(m.key);
    make_marble(&m, c, NULL);
    assert_int_equal(activate(c, &m, "many", "uuid-A", &resp), COFFER_OK);
    json_decref(resp);
    EVP_PKEY_free(m.key);
    json_t *log;
    assert_int_equal(coffer_coord_audit(c, &log), COFFER_OK);
    /* manifest set, 2 secrets set, 3 + 1 activations */
    assert_int_equal(json_array_size(log), 7);
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, 0), "event")), "manifest set");
    assert_true(json_is_true(json_object_get(json_array_get(log, 0), "simulation")));
    char *dump;
    size_t dump_n;
    assert_int_equal(coffer_json_dump(log, &dump, &dump_n), COFFER_OK);
    assert_null(strstr(dump, "AAECAwQFBgcICQoLDA0ODw")); /* I1: no secret value in the audit log */
    coffer_free(dump);
    json_decref(log);
    coffer_coord_close(c);
    coffer_free(mine_a);
    coffer_free(root_der);
    X509_free(root);

    /* a foreign sealing key: recovery mode, nothing of the state exposed */
    uint8_t other_key[32] = {9};
    c = open_coord(dir, other_key);
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_RECOVERY);
    assert_int_equal(coffer_coord_get_secrets(c, admin.der, admin.der_n, names, 1, &got), COFFER_E_STATE);
    coffer_coord_close(c);

    /* an edited audit log is detected */
    char path[700], cmd[1600];
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    snprintf(cmd, sizeof(cmd), "sed -i '2s/secret set/secret SET/' %s", path);
    assert_int_equal(system(cmd), 0);
    struct coffer_coord_config cfg = {.seal_dir = dir, .seal_key = seal_key, .verify = test_verify};
    assert_int_equal(coffer_coord_open(&cfg, &c), COFFER_E_CORRUPTED);
    snprintf(cmd, sizeof(cmd), "sed -i '2s/secret SET/secret set/' %s && sed -i '$d' %s", path, path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(coffer_coord_open(&cfg, &c), COFFER_E_CORRUPTED); /* truncated by one line */
    tu_rmtree(dir);
    free(dir);
}

/* kill -9 during activations, many times: every acknowledged activation is
 * in the state after a restart, and the state always opens. */
static void test_crash_consistency(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct coffer_coord *c = open_coord(dir, NULL);
    assert_int_equal(coffer_coord_set_manifest(c, manifest, strlen(manifest)), COFFER_OK);
    coffer_coord_close(c);
    uint64_t acked_total = 0;
    srand(42);
    for (int round = 0; round < 25; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            struct coffer_coord *cc = open_coord(dir, NULL);
            for (int i = 0; i < 100000; i++) {
                struct marble m;
                make_marble(&m, cc, NULL);
                json_t *resp;
                char uuid[32];
                snprintf(uuid, sizeof(uuid), "r%d-%d", round, i);
                if (activate(cc, &m, "many", uuid, &resp) == COFFER_OK) {
                    json_decref(resp);
                    if (write(fds[1], "x", 1) != 1)
                        _exit(3);
                }
                EVP_PKEY_free(m.key);
            }
            _exit(0);
        }
        close(fds[1]);
        /* let the child acknowledge at least once (it is slow under ASan),
         * then kill it at a random moment of its writes */
        char buf[4096];
        ssize_t n;
        uint64_t acked = 0;
        if (read(fds[0], buf, 1) == 1)
            acked = 1;
        usleep((useconds_t)(rand() % 30000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        while ((n = read(fds[0], buf, sizeof(buf))) > 0)
            acked += (uint64_t)n;
        close(fds[0]);
        acked_total += acked;
        c = open_coord(dir, NULL);
        uint64_t have = coffer_coord_activations(c, "many");
        if (have < acked_total)
            fail_msg("round %d: %llu activations acknowledged, %llu in the state", round,
                     (unsigned long long)acked_total, (unsigned long long)have);
        /* at most the one in flight when killed may be in the state unacknowledged */
        assert_true(have <= acked_total + 1);
        acked_total = have;
        coffer_coord_close(c);
    }
    assert_true(acked_total > 25);
    tu_rmtree(dir);
    free(dir);
}

/* ---- the HTTP API, through the transport-independent handler */

static enum coffer_err test_evidence(void *arg, const uint8_t report_data[64], uint8_t **ev, size_t *n)
{
    (void)arg;
    *ev = coffer_malloc(64);
    memcpy(*ev, report_data, 64);
    *n = 64;
    return COFFER_OK;
}

struct call {
    int status;
    json_t *json;
};

static struct call call(struct coffer_coord *c, enum coffer_coord_api api, const char *method, const char *target,
                        const char *body, const struct user *u)
{
    char path[512];
    snprintf(path, sizeof(path), "%s", target);
    char *q = strchr(path, '?');
    if (q != NULL)
        *q++ = '\0';
    struct coffer_coord_request req = {.method = method, .path = path, .query = q,
                                       .body = (const uint8_t *)body, .body_size = body ? strlen(body) : 0,
                                       .client_cert = u ? u->der : NULL, .client_cert_size = u ? u->der_n : 0};
    struct coffer_coord_response resp;
    assert_int_equal(coffer_coord_handle(c, api, &req, &resp), COFFER_OK);
    struct call out = {.status = resp.status};
    assert_string_equal(resp.content_type, "application/json");
    if (coffer_json_parse(resp.body.data, resp.body.size, 1 << 24, &out.json) != COFFER_OK)
        fail_msg("%s %s: response is not JSON", method, target);
    coffer_buf_free(&resp.body);
    const char *st = json_string_value(json_object_get(out.json, "status"));
    assert_non_null(st);
    assert_string_equal(st, out.status == 200 ? "success" : out.status >= 500 ? "error" : "fail");
    return out;
}

static const char *msg_of(struct call *c) { return json_string_value(json_object_get(c->json, "message")); }
static json_t *data_of(struct call *c) { return json_object_get(c->json, "data"); }

#define EXPECT(call_expr, want_status)                                                           \
    do {                                                                                        \
        struct call _c = (call_expr);                                                           \
        if (_c.status != (want_status))                                                         \
            fail_msg("line %d: status %d, want %d: %s", __LINE__, _c.status, (want_status),    \
                     msg_of(&_c) ? msg_of(&_c) : "");                                           \
        json_decref(_c.json);                                                                   \
    } while (0)

static void test_api_endpoints(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct coffer_coord_config cfg = {.seal_dir = dir, .seal_key = seal_key, .simulation = true,
                                      .verify = test_verify, .evidence = test_evidence};
    struct coffer_coord *c;
    assert_int_equal(coffer_coord_open(&cfg, &c), COFFER_OK);
    const enum coffer_coord_api CL = COFFER_COORD_API_CLIENT, MB = COFFER_COORD_API_MARBLE;

    struct call st = call(c, CL, "GET", "/api/v2/status", NULL, NULL);
    assert_int_equal(st.status, 200);
    assert_int_equal(json_integer_value(json_object_get(data_of(&st), "code")), 2);
    assert_true(json_is_true(json_object_get(data_of(&st), "simulation")));
    json_decref(st.json);
    EXPECT(call(c, CL, "GET", "/api/v2/manifest", NULL, NULL), 409);
    EXPECT(call(c, CL, "DELETE", "/api/v2/manifest", NULL, NULL), 405);
    EXPECT(call(c, CL, "GET", "/api/v2/nothing", NULL, NULL), 404);
    EXPECT(call(c, CL, "POST", "/api/v2/manifest", "{not json", NULL), 400);
    EXPECT(call(c, CL, "POST", "/api/v2/manifest", "[1]", NULL), 400);
    EXPECT(call(c, CL, "POST", "/api/v2/manifest", "{\"manifest\": \"%%%\"}", NULL), 400);
    /* an invalid manifest: 400 naming the field */
    char bad_b64[256];
    const char *bad = "{\"Packages\": {}, \"Marbles\": {}}";
    coffer_base64_encode(bad, strlen(bad), bad_b64);
    char body[40000];
    snprintf(body, sizeof(body), "{\"manifest\": \"%s\"}", bad_b64);
    struct call r = call(c, CL, "POST", "/api/v2/manifest", body, NULL);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(msg_of(&r), "$.Packages"));
    json_decref(r.json);
    /* the real one */
    char *m64 = malloc(coffer_base64_encoded_len(strlen(manifest)) + 1);
    coffer_base64_encode(manifest, strlen(manifest), m64);
    snprintf(body, sizeof(body), "{\"manifest\": \"%s\"}", m64);
    r = call(c, CL, "POST", "/api/v2/manifest", body, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(json_object_get(data_of(&r), "RecoverySecrets"));
    json_decref(r.json);
    EXPECT(call(c, CL, "POST", "/api/v2/manifest", body, NULL), 409);
    r = call(c, CL, "GET", "/api/v2/manifest", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(data_of(&r), "manifest")), m64);
    uint8_t fp[32];
    char fph[65];
    SHA256((const uint8_t *)manifest, strlen(manifest), fp);
    coffer_hex_encode(fp, 32, fph);
    assert_string_equal(json_string_value(json_object_get(data_of(&r), "manifestFingerprint")), fph);
    json_decref(r.json);
    free(m64);

    /* quote: evidence over SHA-256(root DER || nonce) */
    r = call(c, CL, "GET", "/api/v2/quote?nonce=AQIDBA", NULL, NULL);
    assert_int_equal(r.status, 200);
    const char *q64 = json_string_value(json_object_get(data_of(&r), "quote"));
    uint8_t *q;
    size_t qn;
    assert_int_equal(coffer_base64_decode(q64, strlen(q64), &q, &qn), COFFER_OK);
    uint8_t *root;
    size_t root_n;
    assert_int_equal(coffer_coord_root_der(c, &root, &root_n), COFFER_OK);
    uint8_t *cat = malloc(root_n + 4), want[32];
    memcpy(cat, root, root_n);
    memcpy(cat + root_n, "\x01\x02\x03\x04", 4);
    SHA256(cat, root_n + 4, want);
    assert_memory_equal(q, want, 32);
    assert_non_null(strstr(json_string_value(json_object_get(data_of(&r), "cert")), "BEGIN CERTIFICATE"));
    free(cat);
    coffer_free(root);
    coffer_free(q);
    json_decref(r.json);
    EXPECT(call(c, CL, "GET", "/api/v2/quote?nonce=%zz", NULL, NULL), 400);

    /* secrets: authentication and roles */
    const char *sec = "{\"secrets\": {\"modelKey\": {\"Key\": \"AAECAwQFBgcICQoLDA0ODw==\"},"
                      " \"note\": {\"Key\": \"aGVsbG8=\"}}}";
    EXPECT(call(c, CL, "POST", "/api/v2/secrets", sec, NULL), 401);
    EXPECT(call(c, CL, "POST", "/api/v2/secrets", sec, &stranger), 401);
    EXPECT(call(c, CL, "POST", "/api/v2/secrets", sec, &reader), 403);
    EXPECT(call(c, CL, "POST", "/api/v2/secrets", "{}", &admin), 400);
    EXPECT(call(c, CL, "POST", "/api/v2/secrets", "{\"secrets\": {\"modelKey\": {\"Key\": \"AAEC\"}}}", &admin), 400);
    EXPECT(call(c, CL, "POST", "/api/v2/secrets", "{\"secrets\": {\"nope\": {\"Key\": \"AAEC\"}}}", &admin), 400);
    EXPECT(call(c, CL, "POST", "/api/v2/secrets", sec, &admin), 200);
    r = call(c, CL, "GET", "/api/v2/secrets?s=modelKey", NULL, &reader);
    assert_int_equal(r.status, 200);
    json_t *mk = json_object_get(json_object_get(data_of(&r), "secrets"), "modelKey");
    assert_string_equal(json_string_value(json_object_get(mk, "Private")), "AAECAwQFBgcICQoLDA0ODw==");
    json_decref(r.json);
    EXPECT(call(c, CL, "GET", "/api/v2/secrets?s=note", NULL, &reader), 403);
    EXPECT(call(c, CL, "GET", "/api/v2/secrets?s=nosuch", NULL, &admin), 404);
    EXPECT(call(c, CL, "GET", "/api/v2/secrets", NULL, &reader), 400);
    EXPECT(call(c, CL, "GET", "/api/v2/secrets?s=modelKey", NULL, NULL), 401);
    EXPECT(call(c, CL, "POST", "/api/v2/update", "{}", &admin), 501);
    r = call(c, CL, "GET", "/api/v2/update", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(data_of(&r), "updateLog")), 3); /* manifest, 2 secrets */
    json_decref(r.json);

    /* the marble API */
    EXPECT(call(c, MB, "GET", "/api/v2/status", NULL, NULL), 404);
    EXPECT(call(c, CL, "POST", "/api/v2/marble/nonce", NULL, NULL), 404);
    r = call(c, MB, "POST", "/api/v2/marble/nonce", NULL, NULL);
    assert_int_equal(r.status, 200);
    const char *n64 = json_string_value(json_object_get(data_of(&r), "nonce"));
    uint8_t *nonce;
    size_t nonce_n;
    assert_int_equal(coffer_base64_decode(n64, strlen(n64), &nonce, &nonce_n), COFFER_OK);
    assert_int_equal(nonce_n, 32);
    json_decref(r.json);
    struct marble m;
    make_marble(&m, c, NULL); /* issues its own nonce; use the API's instead */
    uint8_t *spki = NULL;
    int spki_n = i2d_PUBKEY(m.key, &spki);
    SHA256(spki, (size_t)spki_n, m.evidence + 32);
    memcpy(m.evidence + 64, nonce, 32);
    OPENSSL_free(spki);
    char csr64[2048], ev64[256], nonce64[64];
    coffer_base64_encode(m.csr, m.csr_n, csr64);
    coffer_base64_encode(m.evidence, 96, ev64);
    coffer_base64_encode(nonce, 32, nonce64);
    snprintf(body, sizeof(body),
             "{\"marbleType\": \"server\", \"uuid\": \"u-1\", \"csr\": \"%s\", \"evidence\": \"%s\", \"nonce\": \"%s\"}",
             csr64, ev64, nonce64);
    r = call(c, MB, "POST", "/api/v2/marble/activate", body, NULL);
    if (r.status != 200)
        fail_msg("activate: %d %s", r.status, msg_of(&r));
    assert_non_null(strstr(json_string_value(json_object_get(data_of(&r), "Certificate")), "BEGIN CERTIFICATE"));
    assert_non_null(json_object_get(json_object_get(json_object_get(data_of(&r), "Parameters"), "Files"), "/keys/model"));
    json_decref(r.json);
    /* the same nonce again: refused */
    r = call(c, MB, "POST", "/api/v2/marble/activate", body, NULL);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(msg_of(&r), "nonce"));
    json_decref(r.json);
    EXPECT(call(c, MB, "POST", "/api/v2/marble/activate", "{\"marbleType\": \"server\"}", NULL), 400);
    coffer_free(nonce);
    EVP_PKEY_free(m.key);
    coffer_coord_close(c);
    tu_rmtree(dir);
    free(dir);
}

int test_coord_main(void);
int test_coord_main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_lifecycle),
        cmocka_unit_test(test_crash_consistency),
        cmocka_unit_test(test_api_endpoints),
    };
    return cmocka_run_group_tests_name("coordinator_core", tests, setup, NULL);
}
