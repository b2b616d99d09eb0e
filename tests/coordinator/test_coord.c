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
#include <openssl/rsa.h>
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
    if (pkg == NULL) { /* sign-quote: "quotes" that start with the measurement verify */
        if (n < 32 || memcmp(ev, measurement, 32) != 0)
            return COFFER_FAIL(COFFER_E_SIGNATURE, "test quote: bad signature");
        snprintf(claims, claims_size, "{\"kind\":\"sgx\",\"tcb_status\":\"SWHardeningNeeded\"}");
        return COFFER_OK;
    }
    if (n != 96 && n != 98)
        return COFFER_FAIL(COFFER_E_MALFORMED, "test evidence is 96 bytes (98 with an SVN)");
    const uint8_t *want = pkg->has_signer_id ? pkg->signer_id : pkg->has_unique_id ? pkg->unique_id : NULL;
    if (want == NULL || memcmp(ev, want, 32) != 0)
        return COFFER_FAIL(COFFER_E_POLICY, "measurement not allowed by package %s", pkg->name);
    unsigned svn = n == 98 ? (unsigned)ev[96] | (unsigned)ev[97] << 8 : 0;
    if (pkg->has_svn && svn < pkg->security_version)
        return COFFER_FAIL(COFFER_E_POLICY, "SVN %u is below the package's SecurityVersion %u", svn,
                           pkg->security_version);
    if (memcmp(ev + 32, report_data, 64) != 0)
        return COFFER_FAIL(COFFER_E_POLICY, "report data does not bind the marble's key and nonce");
    snprintf(claims, claims_size, "{\"measurement\":\"aabbcc...\"}");
    return COFFER_OK;
}

/* The PEM text in b as the inside of a JSON string. */
static void escape_pem(BIO *b, char *out)
{
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    for (long i = 0; i < n; i++) {
        if (pem[i] == '\n') {
            *out++ = '\\';
            *out++ = 'n';
        } else {
            *out++ = pem[i];
        }
    }
    *out = '\0';
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
    escape_pem(b, u->pem_json);
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

/* Does sig verify over msg with the coordinator's root key? */
static bool root_signed(struct coffer_coord *c, const void *msg, size_t msg_n, const uint8_t *sig, size_t sig_n)
{
    uint8_t *der;
    size_t n;
    assert_int_equal(coffer_coord_root_der(c, &der, &n), COFFER_OK);
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(x)) == 1 &&
              EVP_DigestVerify(md, sig, sig_n, msg, msg_n) == 1;
    EVP_MD_CTX_free(md);
    X509_free(x);
    coffer_free(der);
    return ok;
}

/* A marble: a key, its CSR, evidence binding the key and a nonce. */
struct marble {
    EVP_PKEY *key;
    uint8_t csr[1024];
    size_t csr_n;
    uint8_t evidence[98];
    size_t evidence_n;
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
    m->evidence_n = 96;
    OPENSSL_free(spki);
}

static enum coffer_err activate(struct coffer_coord *c, struct marble *m, const char *type, const char *uuid,
                                json_t **out)
{
    struct coffer_coord_activation a = {.marble_type = type, .uuid = uuid, .csr_der = m->csr, .csr_size = m->csr_n,
                                        .evidence = m->evidence, .evidence_size = m->evidence_n, .nonce = m->nonce};
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
    assert_int_equal(coffer_coord_set_manifest(c, "{\"Packages\": {}}", 16, NULL), COFFER_E_JSON);
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_ACCEPTING_MANIFEST);
    if (coffer_coord_set_manifest(c, manifest, strlen(manifest), NULL) != COFFER_OK)
        fail_msg("set manifest: %s", coffer_err_detail());
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_ACCEPTING_MARBLES);
    assert_int_equal(coffer_coord_set_manifest(c, manifest, strlen(manifest), NULL), COFFER_E_STATE);
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
    assert_true(root_signed(c, raw, raw_n, sig, sig_n));
    const uint8_t *p = root_der;
    X509 *root = d2i_X509(NULL, &p, (long)root_n);
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
    /* manifest set, secrets set (one line per request), 3 + 1 activations */
    assert_int_equal(json_array_size(log), 6);
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
    assert_int_equal(coffer_coord_set_manifest(c, manifest, strlen(manifest), NULL), COFFER_OK);
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
    bool v1 = strncmp(path, "/api/", 5) != 0; /* MarbleRun's v1 knows no "fail" */
    assert_string_equal(st, out.status == 200 ? "success" : out.status >= 500 || v1 ? "error" : "fail");
    return out;
}

static const char *msg_of(struct call *c) { return json_string_value(json_object_get(c->json, "message")); }
static json_t *data_of(struct call *c) { return json_object_get(c->json, "data"); }

/* A base64 member of the answer's data, decoded. */
static void data_b64(struct call *c, const char *key, uint8_t **out, size_t *n)
{
    const char *s = json_string_value(json_object_get(data_of(c), key));
    assert_non_null(s);
    assert_int_equal(coffer_base64_decode(s, strlen(s), out, n), COFFER_OK);
}

#define EXPECT(call_expr, want_status)                                                           \
    do {                                                                                        \
        struct call _c = (call_expr);                                                           \
        if (_c.status != (want_status))                                                         \
            fail_msg("line %d: status %d, want %d: %s", __LINE__, _c.status, (want_status),    \
                     msg_of(&_c) ? msg_of(&_c) : "");                                           \
        json_decref(_c.json);                                                                   \
    } while (0)

/* A coordinator that also makes (test) evidence, for the quote endpoints. */
static struct coffer_coord *open_api_coord(const char *dir)
{
    struct coffer_coord_config cfg = {.seal_dir = dir, .seal_key = seal_key, .simulation = true,
                                      .verify = test_verify, .evidence = test_evidence};
    struct coffer_coord *c;
    assert_int_equal(coffer_coord_open(&cfg, &c), COFFER_OK);
    return c;
}

static void test_api_endpoints(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct coffer_coord *c = open_api_coord(dir);
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
    EXPECT(call(c, CL, "POST", "/api/v2/update", "{}", &admin), 400);
    EXPECT(call(c, CL, "POST", "/api/v2/update", "{\"manifest\": \"e30=\"}", &stranger), 401);
    EXPECT(call(c, CL, "POST", "/api/v2/update", "{\"manifest\": \"e30=\"}", &admin), 403); /* no UpdateManifest */
    EXPECT(call(c, CL, "GET", "/api/v2/update-manifest", NULL, NULL), 404);
    EXPECT(call(c, CL, "POST", "/api/v2/update-manifest", "{\"manifest\": \"e30=\"}", &admin), 404);
    EXPECT(call(c, CL, "POST", "/api/v2/update-cancel", NULL, NULL), 401);
    EXPECT(call(c, CL, "POST", "/api/v2/update-cancel", NULL, &admin), 403);
    EXPECT(call(c, CL, "POST", "/api/v2/recover", "{\"recoverySecret\": \"AA==\"}", NULL), 409);
    r = call(c, CL, "GET", "/api/v2/update", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(data_of(&r), "updateLog")), 2); /* manifest, secrets */
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

/* MarbleRun's legacy v1 paths: raw bodies, capitalised keys, "error"
 * envelopes, 410 for /recover. */
static void test_api_v1(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct coffer_coord *c = open_api_coord(dir);
    const enum coffer_coord_api CL = COFFER_COORD_API_CLIENT;
    struct call r = call(c, CL, "GET", "/status", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(data_of(&r), "StatusCode")), 2);
    assert_non_null(json_string_value(json_object_get(data_of(&r), "StatusMessage")));
    json_decref(r.json);
    /* no manifest yet: empty fields, not an error */
    r = call(c, CL, "GET", "/manifest", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_null(json_object_get(data_of(&r), "Manifest")));
    assert_string_equal(json_string_value(json_object_get(data_of(&r), "ManifestSignature")), "");
    json_decref(r.json);
    EXPECT(call(c, CL, "GET", "/update", NULL, NULL), 409);
    EXPECT(call(c, CL, "POST", "/manifest", "{\"Packages\": {}, \"Marbles\": {}}", NULL), 400);
    EXPECT(call(c, CL, "POST", "/manifest", "not json", NULL), 400);
    /* the manifest as the raw body; no recovery keys: data null */
    r = call(c, CL, "POST", "/manifest", manifest, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_null(data_of(&r)));
    json_decref(r.json);
    EXPECT(call(c, CL, "POST", "/manifest", manifest, NULL), 409);
    r = call(c, CL, "GET", "/manifest", NULL, NULL);
    assert_int_equal(r.status, 200);
    uint8_t fp[32];
    char fph[65];
    SHA256((const uint8_t *)manifest, strlen(manifest), fp);
    coffer_hex_encode(fp, 32, fph);
    assert_string_equal(json_string_value(json_object_get(data_of(&r), "ManifestSignature")), fph);
    assert_non_null(json_string_value(json_object_get(data_of(&r), "ManifestSignatureRootECDSA")));
    const char *m64 = json_string_value(json_object_get(data_of(&r), "Manifest"));
    uint8_t *mraw;
    size_t mraw_n;
    assert_int_equal(coffer_base64_decode(m64, strlen(m64), &mraw, &mraw_n), COFFER_OK);
    assert_int_equal(mraw_n, strlen(manifest));
    assert_memory_equal(mraw, manifest, mraw_n);
    coffer_free(mraw);
    json_decref(r.json);
    r = call(c, CL, "GET", "/quote", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(json_string_value(json_object_get(data_of(&r), "Cert")), "BEGIN CERTIFICATE"));
    assert_non_null(json_string_value(json_object_get(data_of(&r), "Quote")));
    json_decref(r.json);
    /* secrets: the map is the body and the answer */
    const char *sec = "{\"modelKey\": {\"Key\": \"AAECAwQFBgcICQoLDA0ODw==\"}}";
    EXPECT(call(c, CL, "POST", "/secrets", sec, NULL), 401);
    EXPECT(call(c, CL, "POST", "/secrets", sec, &stranger), 401);
    EXPECT(call(c, CL, "POST", "/secrets", sec, &reader), 403);
    EXPECT(call(c, CL, "POST", "/secrets", "[]", &admin), 400);
    EXPECT(call(c, CL, "POST", "/secrets", "{\"modelKey\": {\"Key\": \"AAEC\"}}", &admin), 400);
    r = call(c, CL, "POST", "/secrets", sec, &admin);
    assert_int_equal(r.status, 200);
    assert_true(json_is_null(data_of(&r)));
    json_decref(r.json);
    r = call(c, CL, "GET", "/secrets?s=modelKey", NULL, &reader);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(data_of(&r), "modelKey"), "Private")),
                        "AAECAwQFBgcICQoLDA0ODw==");
    json_decref(r.json);
    EXPECT(call(c, CL, "GET", "/secrets", NULL, &reader), 400);
    EXPECT(call(c, CL, "GET", "/secrets?s=note", NULL, &reader), 403);
    /* the update log is one string of lines */
    r = call(c, CL, "GET", "/update", NULL, NULL);
    assert_int_equal(r.status, 200);
    const char *log = json_string_value(data_of(&r));
    assert_non_null(log);
    assert_int_equal(log[strlen(log) - 1], '\n');
    assert_non_null(strstr(log, "secret set"));
    json_decref(r.json);
    /* update: raw body, a user; refusals as v2's */
    EXPECT(call(c, CL, "POST", "/update", "{\"Packages\": {\"server\": {\"SecurityVersion\": 2}}}", NULL), 401);
    EXPECT(call(c, CL, "POST", "/update", "{\"Packages\": {\"server\": {\"SecurityVersion\": 2}}}", &admin), 400);
    EXPECT(call(c, CL, "POST", "/update", "{}", &admin), 403); /* a full update without UpdateManifest */
    EXPECT(call(c, CL, "POST", "/update", "{", &admin), 400);
    EXPECT(call(c, CL, "GET", "/update-manifest", NULL, NULL), 404);
    EXPECT(call(c, CL, "POST", "/update-cancel", NULL, &admin), 403);
    /* /recover is gone in v1, whatever the state */
    r = call(c, CL, "POST", "/recover", "anything", NULL);
    assert_int_equal(r.status, 410);
    assert_non_null(strstr(msg_of(&r), "/api/v2/recover"));
    json_decref(r.json);
    EXPECT(call(c, CL, "DELETE", "/manifest", NULL, NULL), 405);
    EXPECT(call(c, COFFER_COORD_API_MARBLE, "GET", "/status", NULL, NULL), 404);
    coffer_coord_close(c);
    tu_rmtree(dir);
    free(dir);
}

/* ---- manifest updates */

static struct user admin2;

/* The intermediate certificate (DER) in an activation's chain. */
static void chain_intermediate(json_t *resp, uint8_t *der, size_t *n)
{
    BIO *b = BIO_new_mem_buf(json_string_value(json_object_get(resp, "Certificate")), -1);
    X509 *mc = PEM_read_bio_X509(b, NULL, NULL, NULL);
    X509 *inter = PEM_read_bio_X509(b, NULL, NULL, NULL);
    assert_non_null(inter);
    uint8_t *w = der;
    *n = (size_t)i2d_X509(inter, &w);
    X509_free(mc);
    X509_free(inter);
    BIO_free(b);
}

static enum coffer_err activate_svn(struct coffer_coord *c, const char *type, unsigned svn, json_t **resp)
{
    struct marble m;
    make_marble(&m, c, NULL);
    m.evidence[96] = (uint8_t)svn;
    m.evidence[97] = (uint8_t)(svn >> 8);
    m.evidence_n = 98;
    enum coffer_err r = activate(c, &m, type, "uuid-svn", resp);
    EVP_PKEY_free(m.key);
    return r;
}

static void update_manifest(char *out, size_t size, unsigned svn, bool extra)
{
    char mhex[65];
    coffer_hex_encode(measurement, 32, mhex);
    snprintf(out, size,
             "{\"Packages\": {\"svnpkg\": {\"SignerID\": \"%s\", \"ProductID\": 1, \"SecurityVersion\": %u},"
             "               \"server\": {\"TEE\": \"Simulation\", \"UniqueID\": \"%s\"}},"
             " \"Marbles\": {\"svm\": {\"Package\": \"svnpkg\", \"Parameters\": {\"Files\": {\"k\": \"{{ hex .Secrets.modelKey }}\"}}}%s},"
             " \"Secrets\": {\"modelKey\": {\"Type\": \"symmetric-key\", \"Size\": 128, \"UserDefined\": true},"
             "             \"svcCert\": {\"Type\": \"cert-ecdsa\", \"Size\": 256, \"Shared\": true}},"
             " \"Users\": {\"admin\": {\"Certificate\": \"%s\", \"Roles\": [\"owner\", \"svn\", \"updater\"]},"
             "           \"admin2\": {\"Certificate\": \"%s\", \"Roles\": [\"updater\"]},"
             "           \"reader\": {\"Certificate\": \"%s\", \"Roles\": [\"owner\"]}},"
             " \"Roles\": {\"owner\": {\"ResourceType\": \"Secrets\", \"ResourceNames\": [\"modelKey\", \"svcCert\"],"
             "                       \"Actions\": [\"ReadSecret\"]},"
             "           \"svn\": {\"ResourceType\": \"Packages\", \"ResourceNames\": [\"svnpkg\", \"server\"],"
             "                     \"Actions\": [\"UpdateSecurityVersion\"]},"
             "           \"updater\": {\"ResourceType\": \"Manifest\", \"Actions\": [\"UpdateManifest\"]}}}",
             mhex, svn, mhex, extra ? ", \"extra\": {\"Package\": \"server\"}" : "", admin.pem_json,
             admin2.pem_json, reader.pem_json);
}

static enum coffer_err update(struct coffer_coord *c, const struct user *u, const char *doc, json_t **out)
{
    *out = NULL;
    return coffer_coord_update(c, u->der, u->der_n, doc, strlen(doc), out);
}

static void test_updates(void **state)
{
    (void)state;
    make_user(&admin2, "admin2");
    char *dir = tu_mkdtemp();
    struct coffer_coord *c = open_coord(dir, NULL);
    char m1[16384], m2[16384];
    update_manifest(m1, sizeof(m1), 2, false);
    update_manifest(m2, sizeof(m2), 3, true);
    if (coffer_coord_set_manifest(c, m1, strlen(m1), NULL) != COFFER_OK)
        fail_msg("set: %s", coffer_err_detail());
    json_t *resp, *out;
    json_t *sreq = secrets_req("AAECAwQFBgcICQoLDA0ODw==", NULL);
    assert_int_equal(coffer_coord_set_secrets(c, admin.der, admin.der_n, sreq), COFFER_E_DENIED); /* read only */
    json_decref(sreq);
    assert_int_equal(activate_svn(c, "svm", 2, &resp), COFFER_E_STATE); /* modelKey not set: cannot render */
    /* the SVN check reaches the verifier; the state is kept across updates */
    const char *names[] = {"svcCert"};
    json_t *before;
    assert_int_equal(coffer_coord_get_secrets(c, reader.der, reader.der_n, names, 1, &before), COFFER_OK);

    /* package updates: refusals */
    const char *up3 = "{\"Packages\": {\"svnpkg\": {\"SecurityVersion\": 3}}}";
    assert_int_equal(update(c, &reader, up3, &out), COFFER_E_DENIED);
    assert_int_equal(update(c, &stranger, up3, &out), COFFER_E_DENIED);
    assert_int_equal(update(c, &admin, "{\"Packages\": {\"nope\": {\"SecurityVersion\": 3}}}", &out), COFFER_E_JSON);
    assert_non_null(strstr(coffer_err_detail(), "$.Packages.nope"));
    assert_int_equal(update(c, &admin, "{\"Packages\": {\"svnpkg\": {\"SecurityVersion\": 1}}}", &out), COFFER_E_JSON);
    assert_non_null(strstr(coffer_err_detail(), "no downgrades"));
    assert_int_equal(update(c, &admin, "{\"Packages\": {\"svnpkg\": {\"SecurityVersion\": 3, \"Debug\": true}}}", &out),
                     COFFER_E_JSON);
    assert_int_equal(update(c, &admin, "{\"Packages\": {\"server\": {\"SecurityVersion\": 3}}}", &out), COFFER_E_JSON);
    assert_int_equal(update(c, &admin, "{\"Packages\": {}}", &out), COFFER_E_JSON);
    assert_int_equal(update(c, &admin, "not json", &out), COFFER_E_JSON);
    /* the SVN bump: applied at once, a new intermediate, a new shared cert */
    assert_int_equal(update(c, &admin, up3, &out), COFFER_OK);
    assert_int_equal(json_integer_value(json_object_get(out, "missingAcknowledgments")), 0);
    json_decref(out);
    json_t *after;
    assert_int_equal(coffer_coord_get_secrets(c, reader.der, reader.der_n, names, 1, &after), COFFER_OK);
    assert_string_not_equal(json_string_value(json_object_get(json_object_get(before, "svcCert"), "Cert")),
                            json_string_value(json_object_get(json_object_get(after, "svcCert"), "Cert")));
    json_decref(before);
    json_decref(after);
    coffer_coord_close(c);
    c = open_coord(dir, NULL); /* durable */
    /* marbles below the new SVN are refused; at it, accepted */
    assert_int_equal(coffer_coord_update_pending(c, &out), COFFER_E_NOT_FOUND);
    struct marble m;
    make_marble(&m, c, NULL);
    /* user-defined modelKey: nobody may write it in this manifest, so
     * activations of svm fail to render: use full updates to fix that */
    EVP_PKEY_free(m.key);

    /* full update: refusals, then pending until admin2 acknowledges */
    assert_int_equal(update(c, &reader, m2, &out), COFFER_E_DENIED);
    assert_int_equal(update(c, &admin, "{\"Packages\": {}, \"Marbles\": {}}", &out), COFFER_E_JSON);
    assert_int_equal(update(c, &admin, m2, &out), COFFER_OK);
    assert_int_equal(json_integer_value(json_object_get(out, "missingAcknowledgments")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "missingUsers"), 0)), "admin2");
    json_decref(out);
    assert_int_equal(update(c, &admin, m2, &out), COFFER_E_STATE); /* one pending at a time */
    assert_int_equal(coffer_coord_update_pending(c, &out), COFFER_OK);
    assert_non_null(json_object_get(out, "manifest"));
    json_decref(out);
    /* not applied yet: the old manifest still rules */
    assert_int_equal(activate_svn(c, "extra", 0, &resp), COFFER_E_DENIED);
    assert_int_equal(coffer_coord_update_ack(c, admin.der, admin.der_n, m2, strlen(m2), &out), COFFER_E_STATE);
    assert_int_equal(coffer_coord_update_ack(c, reader.der, reader.der_n, m2, strlen(m2), &out), COFFER_E_DENIED);
    assert_int_equal(coffer_coord_update_ack(c, admin2.der, admin2.der_n, m1, strlen(m1), &out), COFFER_E_JSON);
    coffer_coord_close(c);
    c = open_coord(dir, NULL); /* the pending update is durable */
    assert_int_equal(coffer_coord_update_ack(c, admin2.der, admin2.der_n, m2, strlen(m2), &out), COFFER_OK);
    assert_int_equal(json_integer_value(json_object_get(out, "missingAcknowledgments")), 0);
    json_decref(out);
    uint8_t *raw, *sig, fp[32];
    size_t raw_n, sig_n;
    assert_int_equal(coffer_coord_get_manifest(c, &raw, &raw_n, fp, &sig, &sig_n), COFFER_OK);
    assert_int_equal(raw_n, strlen(m2));
    assert_memory_equal(raw, m2, raw_n);
    coffer_free(raw);
    coffer_free(sig);
    /* marbles activated after the update see the new manifest */
    assert_int_equal(activate_svn(c, "extra", 0, &resp), COFFER_OK);
    uint8_t inter1[2048];
    size_t inter1_n;
    chain_intermediate(resp, inter1, &inter1_n);
    json_decref(resp);

    /* cancel */
    assert_int_equal(update(c, &admin, m1, &out), COFFER_OK);
    json_decref(out);
    assert_int_equal(coffer_coord_update_cancel(c, reader.der, reader.der_n), COFFER_E_DENIED);
    assert_int_equal(coffer_coord_update_cancel(c, admin2.der, admin2.der_n), COFFER_OK);
    assert_int_equal(coffer_coord_update_cancel(c, admin2.der, admin2.der_n), COFFER_E_NOT_FOUND);
    assert_int_equal(coffer_coord_update_pending(c, &out), COFFER_E_NOT_FOUND);
    /* a package update renews the intermediate the marbles see */
    assert_int_equal(update(c, &admin, "{\"Packages\": {\"svnpkg\": {\"SecurityVersion\": 4}}}", &out), COFFER_OK);
    json_decref(out);
    assert_int_equal(activate_svn(c, "extra", 0, &resp), COFFER_OK);
    uint8_t inter2[2048];
    size_t inter2_n;
    chain_intermediate(resp, inter2, &inter2_n);
    assert_false(inter1_n == inter2_n && memcmp(inter1, inter2, inter1_n) == 0);
    json_decref(resp);
    json_t *log;
    assert_int_equal(coffer_coord_audit(c, &log), COFFER_OK);
    const char *want[] = {"manifest set", "security version increased", "update initiated", "update acknowledged",
                          "update applied", "activation", "update initiated", "update cancelled",
                          "security version increased", "activation"};
    assert_int_equal(json_array_size(log), 10);
    for (size_t i = 0; i < 10; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(log, i), "event")), want[i]);
    json_decref(log);
    coffer_coord_close(c);
    tu_rmtree(dir);
    free(dir);
}

/* ---- recovery */

struct rkey {
    EVP_PKEY *key;
    char pem_json[1024];
};

static void make_rkey(struct rkey *k)
{
    k->key = EVP_RSA_gen(2048);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, k->key);
    escape_pem(b, k->pem_json);
    BIO_free(b);
}

/* Decrypt the recovery secret for name with k; sign it with signer. */
static void recovery_share(json_t *secrets, const char *name, const struct rkey *k, const struct rkey *signer,
                           uint8_t *share, size_t *share_n, uint8_t *sig, size_t *sig_n)
{
    const char *b64 = json_string_value(json_object_get(secrets, name));
    assert_non_null(b64);
    uint8_t *ct;
    size_t ct_n;
    assert_int_equal(coffer_base64_decode(b64, strlen(b64), &ct, &ct_n), COFFER_OK);
    EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(k->key, NULL);
    assert_int_equal(EVP_PKEY_decrypt_init(x), 1);
    EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_OAEP_PADDING);
    EVP_PKEY_CTX_set_rsa_oaep_md(x, EVP_sha256());
    EVP_PKEY_CTX_set_rsa_mgf1_md(x, EVP_sha256());
    *share_n = 512;
    assert_int_equal(EVP_PKEY_decrypt(x, share, share_n, ct, ct_n), 1);
    EVP_PKEY_CTX_free(x);
    coffer_free(ct);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    *sig_n = 512;
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, signer->key), 1);
    assert_int_equal(EVP_DigestSign(md, sig, sig_n, share, *share_n), 1);
    EVP_MD_CTX_free(md);
}

static enum coffer_err recover(struct coffer_coord *c, const uint8_t *share, size_t n, const uint8_t *sig,
                               size_t sig_n, long *remaining)
{
    json_t *out = NULL;
    enum coffer_err r = coffer_coord_recover(c, share, n, sig, sig_n, &out);
    *remaining = out ? (long)json_integer_value(json_object_get(out, "remaining")) : -1;
    json_decref(out);
    return r;
}

/* Set a manifest with the given recovery keys, a secret, move to another
 * platform key; returns the directory; *secrets the recovery secrets. */
static char *sealed_elsewhere(const char *keys, int threshold, json_t **secrets, const uint8_t *other_key)
{
    char *dir = tu_mkdtemp();
    struct coffer_coord *c = open_coord(dir, NULL);
    static char m[40000];
    snprintf(m, sizeof(m), "{\"RecoveryKeys\": {%s}, \"Config\": {\"RecoveryThreshold\": %d}, %s", keys, threshold,
             manifest + 1);
    if (coffer_coord_set_manifest(c, m, strlen(m), secrets) != COFFER_OK)
        fail_msg("set: %s", coffer_err_detail());
    json_t *sreq = secrets_req("AAECAwQFBgcICQoLDA0ODw==", "aGVsbG8=");
    assert_int_equal(coffer_coord_set_secrets(c, admin.der, admin.der_n, sreq), COFFER_OK);
    json_decref(sreq);
    coffer_coord_close(c);
    c = open_coord(dir, other_key);
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_RECOVERY);
    coffer_coord_close(c);
    return dir;
}

static void assert_recovered(struct coffer_coord *c, const char *dir, const uint8_t *other_key)
{
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_ACCEPTING_MARBLES);
    const char *names[] = {"modelKey"};
    json_t *got;
    assert_int_equal(coffer_coord_get_secrets(c, admin.der, admin.der_n, names, 1, &got), COFFER_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(got, "modelKey"), "Private")),
                        "AAECAwQFBgcICQoLDA0ODw==");
    json_decref(got);
    coffer_coord_close(c);
    /* the data key is now sealed to the new platform */
    c = open_coord(dir, other_key);
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_ACCEPTING_MARBLES);
    json_t *log;
    assert_int_equal(coffer_coord_audit(c, &log), COFFER_OK);
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, json_array_size(log) - 1), "event")),
                        "recovered");
    json_decref(log);
    coffer_coord_close(c);
}

static void test_recovery(void **state)
{
    (void)state;
    struct rkey k[3];
    for (int i = 0; i < 3; i++)
        make_rkey(&k[i]);
    char keys[4096];
    const uint8_t other_key[32] = {5, 5};
    uint8_t share[512], share2[512], sig[512], sig2[512];
    size_t share_n, share2_n, sig_n, sig2_n;
    long remaining;
    json_t *secrets;

    /* one key: the secret is the data key */
    snprintf(keys, sizeof(keys), "\"k0\": \"%s\"", k[0].pem_json);
    char *dir = sealed_elsewhere(keys, 0, &secrets, other_key);
    assert_int_equal(json_object_size(secrets), 1);
    struct coffer_coord *c = open_coord(dir, other_key);
    json_t *none = NULL;
    assert_int_equal(coffer_coord_get_secrets(c, admin.der, admin.der_n, (const char *[]){"modelKey"}, 1, &none),
                     COFFER_E_STATE);
    recovery_share(secrets, "k0", &k[0], &k[1], share, &share_n, sig, &sig_n); /* signed by another key */
    assert_int_equal(share_n, 32);
    assert_int_equal(recover(c, share, share_n, sig, sig_n, &remaining), COFFER_E_SIGNATURE);
    uint8_t wrong[32] = {1};
    assert_int_equal(recover(c, wrong, 32, sig, sig_n, &remaining), COFFER_E_AUTH);
    assert_int_equal(recover(c, share, 31, sig, sig_n, &remaining), COFFER_E_JSON);
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_RECOVERY);
    recovery_share(secrets, "k0", &k[0], &k[0], share, &share_n, sig, &sig_n);
    if (recover(c, share, share_n, sig, sig_n, &remaining) != COFFER_OK)
        fail_msg("recover: %s", coffer_err_detail());
    assert_int_equal(remaining, 0);
    assert_int_equal(recover(c, share, share_n, sig, sig_n, &remaining), COFFER_E_STATE); /* not in recovery now */
    assert_recovered(c, dir, other_key);
    json_decref(secrets);
    tu_rmtree(dir);
    free(dir);

    /* two keys, all of them needed (XOR shares) */
    snprintf(keys, sizeof(keys), "\"k0\": \"%s\", \"k1\": \"%s\"", k[0].pem_json, k[1].pem_json);
    dir = sealed_elsewhere(keys, 0, &secrets, other_key);
    c = open_coord(dir, other_key);
    recovery_share(secrets, "k0", &k[0], &k[0], share, &share_n, sig, &sig_n);
    recovery_share(secrets, "k1", &k[1], &k[1], share2, &share2_n, sig2, &sig2_n);
    /* the first one encrypted to the coordinator's ephemeral key (MarbleRun's
     * GET /recover/public-key); before that key exists, and with a wrong
     * ciphertext, such an upload is refused */
    uint8_t enc[512];
    size_t enc_n = 0;
    memset(enc, 0x11, sizeof(enc));
    assert_int_equal(recover(c, enc, sizeof(enc), sig, sig_n, &remaining), COFFER_E_JSON);
    struct call pk = call(c, COFFER_COORD_API_CLIENT, "GET", "/api/v2/recover/public-key", NULL, NULL);
    assert_int_equal(pk.status, 200);
    assert_string_equal(json_string_value(json_object_get(data_of(&pk), "algorithm")), "RSA");
    uint8_t *pkder;
    size_t pkder_n;
    data_b64(&pk, "ephemeralPublicKey", &pkder, &pkder_n);
    json_decref(pk.json);
    const uint8_t *pp = pkder;
    EVP_PKEY *eph = d2i_PUBKEY(NULL, &pp, (long)pkder_n);
    assert_non_null(eph);
    assert_int_equal(EVP_PKEY_get_bits(eph), 4096);
    EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(eph, NULL);
    enc_n = sizeof(enc);
    assert_int_equal(EVP_PKEY_encrypt_init(x), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(x, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_encrypt(x, enc, &enc_n, share, share_n), 1);
    EVP_PKEY_CTX_free(x);
    EVP_PKEY_free(eph);
    coffer_free(pkder);
    enc[100] ^= 1;
    assert_int_equal(recover(c, enc, enc_n, sig, sig_n, &remaining), COFFER_E_JSON);
    enc[100] ^= 1;
    assert_int_equal(recover(c, enc, enc_n, sig, sig_n, &remaining), COFFER_OK);
    assert_int_equal(remaining, 1);
    EXPECT(call(c, COFFER_COORD_API_CLIENT, "POST", "/api/v2/recover/public-key", NULL, NULL), 405);
    assert_int_equal(recover(c, share, share_n, sig, sig_n, &remaining), COFFER_E_STATE); /* the same one again */
    assert_int_equal(recover(c, share2, share2_n, sig2, sig2_n, &remaining), COFFER_OK);
    assert_int_equal(remaining, 0);
    uint8_t *none_der;
    size_t none_n;
    assert_int_equal(coffer_coord_recovery_public_key(c, &none_der, &none_n), COFFER_E_STATE); /* not recovering now */
    assert_recovered(c, dir, other_key);
    json_decref(secrets);
    tu_rmtree(dir);
    free(dir);

    /* three keys, any two (Shamir) */
    snprintf(keys, sizeof(keys), "\"k0\": \"%s\", \"k1\": \"%s\", \"k2\": \"%s\"", k[0].pem_json, k[1].pem_json,
             k[2].pem_json);
    dir = sealed_elsewhere(keys, 2, &secrets, other_key);
    c = open_coord(dir, other_key);
    recovery_share(secrets, "k2", &k[2], &k[2], share, &share_n, sig, &sig_n);
    recovery_share(secrets, "k0", &k[0], &k[0], share2, &share2_n, sig2, &sig2_n);
    assert_int_equal(share_n, 33);
    assert_int_equal(recover(c, share, share_n, sig, sig_n, &remaining), COFFER_OK);
    assert_int_equal(remaining, 1);
    assert_int_equal(recover(c, share2, share2_n, sig2, sig2_n, &remaining), COFFER_OK);
    assert_recovered(c, dir, other_key);
    json_decref(secrets);

    /* in recovery mode a new manifest starts over, keeping the old files aside */
    c = open_coord(dir, seal_key);
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_RECOVERY);
    assert_int_equal(coffer_coord_set_manifest(c, manifest, strlen(manifest), NULL), COFFER_OK);
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_ACCEPTING_MARBLES);
    coffer_coord_close(c);
    c = open_coord(dir, seal_key);
    assert_int_equal(coffer_coord_get_state(c), COFFER_COORD_ACCEPTING_MARBLES);
    coffer_coord_close(c);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -q 'sealed_state.discarded-'", dir);
    assert_int_equal(system(cmd), 0);
    tu_rmtree(dir);
    free(dir);

    /* a state without recovery keys cannot be recovered */
    dir = sealed_elsewhere("", 0, &secrets, other_key);
    assert_int_equal(json_object_size(secrets), 0);
    c = open_coord(dir, other_key);
    assert_int_equal(recover(c, share, 32, sig, sig_n, &remaining), COFFER_E_STATE);
    assert_non_null(strstr(coffer_err_detail(), "no recovery keys"));
    coffer_coord_close(c);
    json_decref(secrets);
    tu_rmtree(dir);
    free(dir);
    for (int i = 0; i < 3; i++)
        EVP_PKEY_free(k[i].key);
}

/* The marble certificate (first of the chain) of an activation response. */
static void marble_cert_of(json_t *resp, struct user *u)
{
    const char *pem = json_string_value(json_object_get(resp, "Certificate"));
    assert_non_null(pem);
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    assert_non_null(x);
    uint8_t *w = u->der;
    u->der_n = (size_t)i2d_X509(x, &w);
    X509_free(x);
    BIO_free(b);
}

/* Monotonic counters and sign-quote: feature gates, marble certificates,
 * only-increasing values that survive a restart, every refusal, and the
 * HTTP shapes (MarbleRun's). */
static void test_services(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct coffer_coord *c = open_coord(dir, NULL);
    const enum coffer_coord_api CL = COFFER_COORD_API_CLIENT, MB = COFFER_COORD_API_MARBLE;
    char mhex[65], gated[2048];
    coffer_hex_encode(measurement, 32, mhex);
    snprintf(gated, sizeof(gated),
             "{\"Packages\": {\"server\": {\"TEE\": \"Simulation\", \"UniqueID\": \"%s\"}},"
             " \"Marbles\": {\"server\": {\"Package\": \"server\"}, \"other\": {\"Package\": \"server\"}},"
             " \"Config\": {\"FeatureGates\": [\"MonotonicCounter\", \"SignQuoteEndpoint\"]}}", mhex);
    /* no manifest: the gates are off */
    uint64_t prev = 99;
    assert_int_equal(coffer_coord_monotonic_counter(c, admin.der, admin.der_n, "n", 1, &prev), COFFER_E_STATE);
    EXPECT(call(c, CL, "POST", "/api/v2/sign-quote", "{\"sgxQuote\": \"AAAA\"}", NULL), 403);
    assert_int_equal(coffer_coord_set_manifest(c, gated, strlen(gated), NULL), COFFER_OK);

    struct marble m, m2;
    json_t *resp, *resp2;
    struct user mc, mc2;
    make_marble(&m, c, NULL);
    assert_int_equal(activate(c, &m, "server", "uuid-1", &resp), COFFER_OK);
    marble_cert_of(resp, &mc);
    make_marble(&m2, c, NULL);
    assert_int_equal(activate(c, &m2, "other", "uuid-2", &resp2), COFFER_OK);
    marble_cert_of(resp2, &mc2);

    /* counters start at 0, only go up, and are per marble */
    assert_int_equal(coffer_coord_monotonic_counter(c, mc.der, mc.der_n, "db", 5, &prev), COFFER_OK);
    assert_int_equal(prev, 0);
    assert_int_equal(coffer_coord_monotonic_counter(c, mc.der, mc.der_n, "db", 3, &prev), COFFER_OK);
    assert_int_equal(prev, 5);
    assert_int_equal(coffer_coord_monotonic_counter(c, mc.der, mc.der_n, "db", 9, &prev), COFFER_OK);
    assert_int_equal(prev, 5);
    assert_int_equal(coffer_coord_monotonic_counter(c, mc2.der, mc2.der_n, "db", 1, &prev), COFFER_OK);
    assert_int_equal(prev, 0);
    /* refusals: no certificate, a user's certificate, a forged one, bad names and values */
    assert_int_equal(coffer_coord_monotonic_counter(c, NULL, 0, "db", 10, &prev), COFFER_E_CERT);
    assert_int_equal(coffer_coord_monotonic_counter(c, admin.der, admin.der_n, "db", 10, &prev), COFFER_E_CERT);
    struct user forged = mc;
    forged.der[forged.der_n - 5] ^= 1; /* inside the signature */
    assert_int_equal(coffer_coord_monotonic_counter(c, forged.der, forged.der_n, "db", 10, &prev), COFFER_E_CERT);
    assert_int_equal(coffer_coord_monotonic_counter(c, mc.der, 7, "db", 10, &prev), COFFER_E_CERT);
    assert_int_equal(coffer_coord_monotonic_counter(c, mc.der, mc.der_n, "", 10, &prev), COFFER_E_JSON);
    assert_int_equal(coffer_coord_monotonic_counter(c, mc.der, mc.der_n, "db", (uint64_t)1 << 63, &prev),
                     COFFER_E_JSON);
    /* over HTTP, on both APIs */
    struct call r = call(c, CL, "POST", "/api/v2/monotonic-counter", "{\"name\": \"db\", \"value\": 12}", &mc);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(data_of(&r), "value")), 9);
    json_decref(r.json);
    r = call(c, MB, "POST", "/api/v2/monotonic-counter", "{\"name\": \"db\", \"value\": 2}", &mc);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(data_of(&r), "value")), 12);
    json_decref(r.json);
    EXPECT(call(c, CL, "POST", "/api/v2/monotonic-counter", "{\"name\": \"db\", \"value\": 13}", NULL), 401);
    EXPECT(call(c, CL, "POST", "/api/v2/monotonic-counter", "{\"name\": \"db\", \"value\": 13}", &admin), 401);
    EXPECT(call(c, CL, "POST", "/api/v2/monotonic-counter", "{\"name\": \"db\", \"value\": -1}", &mc), 400);
    EXPECT(call(c, CL, "POST", "/api/v2/monotonic-counter", "{\"name\": 5, \"value\": 1}", &mc), 400);
    EXPECT(call(c, CL, "POST", "/api/v2/monotonic-counter", "{\"value\": 1}", &mc), 400);
    EXPECT(call(c, CL, "POST", "/api/v2/monotonic-counter", "{\"name\": \"db\"", &mc), 400);
    EXPECT(call(c, CL, "GET", "/api/v2/monotonic-counter", NULL, &mc), 405);

    /* sign-quote: the root key signs SHA-256(base64(quote) || TCB status) */
    uint8_t quote[64];
    memcpy(quote, measurement, 32);
    memset(quote + 32, 0x5a, 32);
    char q64[200], body[600], msg[300];
    coffer_base64_encode(quote, sizeof(quote), q64);
    snprintf(body, sizeof(body), "{\"sgxQuote\": \"%s\"}", q64);
    r = call(c, CL, "POST", "/api/v2/sign-quote", body, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(data_of(&r), "tcbStatus")), "SWHardeningNeeded");
    uint8_t *sig;
    size_t sig_n;
    data_b64(&r, "verificationSignature", &sig, &sig_n);
    snprintf(msg, sizeof(msg), "%sSWHardeningNeeded", q64);
    assert_true(root_signed(c, msg, strlen(msg), sig, sig_n));
    snprintf(msg, sizeof(msg), "%sUpToDate", q64);
    assert_false(root_signed(c, msg, strlen(msg), sig, sig_n));
    coffer_free(sig);
    json_decref(r.json);
    /* behind OpenEnclave's header: verified without it, signed as sent */
    uint8_t oe[80];
    coffer_store_u32le(oe, 1);
    coffer_store_u32le(oe + 4, 2);
    coffer_store_u64le(oe + 8, 64);
    memcpy(oe + 16, quote, 64);
    char tcb[48];
    assert_int_equal(coffer_coord_sign_quote(c, oe, sizeof(oe), &sig, &sig_n, tcb), COFFER_OK);
    coffer_base64_encode(oe, sizeof(oe), q64);
    snprintf(msg, sizeof(msg), "%s%s", q64, tcb);
    assert_true(root_signed(c, msg, strlen(msg), sig, sig_n));
    coffer_free(sig);
    /* a quote that does not verify: 400 fail, the reason in data.sgxQuote */
    quote[0] ^= 1;
    coffer_base64_encode(quote, sizeof(quote), q64);
    snprintf(body, sizeof(body), "{\"sgxQuote\": \"%s\"}", q64);
    r = call(c, CL, "POST", "/api/v2/sign-quote", body, NULL);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(msg_of(&r), "quote verification failed"));
    assert_non_null(strstr(json_string_value(json_object_get(data_of(&r), "sgxQuote")), "bad signature"));
    json_decref(r.json);
    r = call(c, CL, "POST", "/api/v2/sign-quote", "{not json", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(json_string_value(json_object_get(data_of(&r), "sgxQuote")), "failed to parse JSON data");
    json_decref(r.json);
    EXPECT(call(c, CL, "POST", "/api/v2/sign-quote", "{\"sgxQuote\": \"\"}", NULL), 400);
    EXPECT(call(c, CL, "POST", "/api/v2/sign-quote", "{\"sgxQuote\": \"%%\"}", NULL), 400);
    EXPECT(call(c, CL, "POST", "/api/v2/sign-quote", "{}", NULL), 400);
    EXPECT(call(c, MB, "POST", "/api/v2/sign-quote", body, NULL), 404); /* a client API endpoint */

    /* counters are sealed: a restart keeps them */
    coffer_coord_close(c);
    c = open_coord(dir, NULL);
    assert_int_equal(coffer_coord_monotonic_counter(c, mc.der, mc.der_n, "db", 0, &prev), COFFER_OK);
    assert_int_equal(prev, 12);
    assert_int_equal(coffer_coord_monotonic_counter(c, mc2.der, mc2.der_n, "db", 0, &prev), COFFER_OK);
    assert_int_equal(prev, 1);
    json_t *audit;
    assert_int_equal(coffer_coord_audit(c, &audit), COFFER_OK);
    size_t raises = 0, i;
    json_t *e;
    json_array_foreach(audit, i, e)
        raises += strcmp(json_string_value(json_object_get(e, "event")), "monotonic counter") == 0;
    assert_int_equal(raises, 4); /* 5, 9, 1 (other marble), 12: never for a value not above */
    json_decref(audit);
    coffer_coord_close(c);

    /* without the gates: 403 */
    tu_rmtree(dir);
    c = open_coord(dir, NULL);
    assert_int_equal(coffer_coord_set_manifest(c, manifest, strlen(manifest), NULL), COFFER_OK);
    assert_int_equal(coffer_coord_monotonic_counter(c, mc.der, mc.der_n, "db", 1, &prev), COFFER_E_DENIED);
    EXPECT(call(c, CL, "POST", "/api/v2/monotonic-counter", "{\"name\": \"db\", \"value\": 1}", &mc), 403);
    coffer_base64_encode(measurement, 32, q64);
    snprintf(body, sizeof(body), "{\"sgxQuote\": \"%s\"}", q64);
    EXPECT(call(c, CL, "POST", "/api/v2/sign-quote", body, NULL), 403);
    coffer_coord_close(c);
    json_decref(resp);
    json_decref(resp2);
    EVP_PKEY_free(m.key);
    EVP_PKEY_free(m2.key);
    tu_rmtree(dir);
    free(dir);
}

/* .Previous.Secrets after a RotateRootSecret update: the values from before
 * it (shared and per-marble), the current ones before any rotation, kept
 * across a restart; unknown names refused at upload. */
static void prev_manifest(char *out, size_t size, bool rotate, const char *extra_file)
{
    char mhex[65];
    coffer_hex_encode(measurement, 32, mhex);
    snprintf(out, size,
             "{\"Packages\": {\"server\": {\"TEE\": \"Simulation\", \"UniqueID\": \"%s\"}},"
             " \"Marbles\": {\"m\": {\"Package\": \"server\", \"Parameters\": {\"Files\": {"
             "     \"cur\": \"{{ hex .Secrets.shared }}\", \"prev\": \"{{ hex .Previous.Secrets.shared }}\","
             "     \"pm\": \"{{ hex .Secrets.perMarble }}\", \"ppm\": \"{{ hex .Previous.Secrets.perMarble }}\","
             "     \"pcert\": \"{{ pem .Previous.Secrets.svc.Cert }}\", \"cert\": \"{{ pem .Secrets.svc.Cert }}\"%s}}}},"
             " \"Secrets\": {\"shared\": {\"Type\": \"symmetric-key\", \"Size\": 256, \"Shared\": true},"
             "             \"perMarble\": {\"Type\": \"symmetric-key\", \"Size\": 256},"
             "             \"svc\": {\"Type\": \"cert-ecdsa\", \"Size\": 256, \"Shared\": true}},"
             " \"Users\": {\"admin\": {\"Certificate\": \"%s\", \"Roles\": [\"updater\"]}},"
             " \"Roles\": {\"updater\": {\"ResourceType\": \"Manifest\", \"Actions\": [\"UpdateManifest\"]}},"
             " \"Config\": {\"RotateRootSecret\": %s}}",
             mhex, extra_file ? extra_file : "", admin.pem_json, rotate ? "true" : "false");
}

static void prev_files(struct coffer_coord *c, char vals[6][2048])
{
    static const char *const names[6] = {"cur", "prev", "pm", "ppm", "cert", "pcert"};
    struct marble m;
    json_t *resp;
    make_marble(&m, c, NULL);
    if (activate(c, &m, "m", "uuid-prev", &resp) != COFFER_OK)
        fail_msg("activate: %s", coffer_err_detail());
    for (int i = 0; i < 6; i++) {
        uint8_t *d;
        size_t n;
        file_of(resp, "Files", names[i], &d, &n);
        assert_true(n < 2048);
        memcpy(vals[i], d, n);
        vals[i][n] = '\0';
        coffer_free(d);
    }
    json_decref(resp);
    EVP_PKEY_free(m.key);
}

static void test_previous_secrets(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct coffer_coord *c = open_coord(dir, NULL);
    static char m1[16384], m2[16384], bad[16384];
    prev_manifest(bad, sizeof(bad), false, ", \"x\": \"{{ hex .Previous.Secrets.nosuch }}\"");
    assert_int_equal(coffer_coord_set_manifest(c, bad, strlen(bad), NULL), COFFER_E_JSON);
    assert_non_null(strstr(coffer_err_detail(), ".Previous.Secrets.nosuch"));
    prev_manifest(m1, sizeof(m1), false, NULL);
    assert_int_equal(coffer_coord_set_manifest(c, m1, strlen(m1), NULL), COFFER_OK);
    char before[6][2048], after[6][2048], again[6][2048];
    prev_files(c, before);
    /* no rotation yet: the previous value is the current one */
    assert_string_equal(before[0], before[1]);
    assert_string_equal(before[2], before[3]);
    assert_string_equal(before[4], before[5]);
    /* a full update that rotates the root secret (admin is the only updater: applied at once) */
    prev_manifest(m2, sizeof(m2), true, NULL);
    json_t *out = NULL;
    if (coffer_coord_update(c, admin.der, admin.der_n, m2, strlen(m2), &out) != COFFER_OK)
        fail_msg("update: %s", coffer_err_detail());
    json_decref(out);
    prev_files(c, after);
    assert_string_not_equal(after[0], before[0]); /* new shared key */
    assert_string_equal(after[1], before[0]);     /* the old one, as .Previous */
    assert_string_not_equal(after[2], before[2]); /* per-marble key from the new root */
    assert_string_equal(after[3], before[2]);     /* from the old root, same UUID */
    assert_string_not_equal(after[4], before[4]); /* shared certificate renewed */
    assert_string_equal(after[5], before[4]);
    /* sealed: a restart keeps the previous values */
    coffer_coord_close(c);
    c = open_coord(dir, NULL);
    prev_files(c, again);
    for (int i = 0; i < 4; i++)
        assert_string_equal(again[i], after[i]);
    assert_string_equal(again[5], after[5]);
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
        cmocka_unit_test(test_api_v1),
        cmocka_unit_test(test_updates),
        cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_services),
        cmocka_unit_test(test_previous_secrets),
    };
    return cmocka_run_group_tests_name("coordinator_core", tests, setup, NULL);
}
