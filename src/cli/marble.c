/*
 * marble.c — activation as a marble, and `coffer activate`.
 *
 * Design (the protocol the coordinator's marble API serves):
 *  1. verify the coordinator on its marble address: its evidence over its
 *     root and our nonce (coord_client_verify), then pin that root;
 *  2. a fresh P-256 key and a CSR for it (the key never leaves us);
 *  3. POST /api/v2/marble/nonce;
 *  4. evidence from the attestation provider with report data
 *     SHA-256(our SubjectPublicKeyInfo) || nonce;
 *  5. POST /api/v2/marble/activate {marbleType, uuid, csr, evidence, nonce}.
 * The reply carries our certificate chain and the rendered parameters.
 * `coffer activate` then writes the Files (folders 0700, files 0600;
 * Gramine's key files under /dev/attestation/keys first, so encrypted mounts open), and
 * runs the workload with the Env and the Argv, as MarbleRun's premain does.
 * The UUID is kept in a file so a restarted marble keeps its identity.
 *
 * Trusts: the coordinator only after its evidence verified (or --insecure).
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "marble.h"

void marble_opts_defaults(struct marble_opts *o)
{
    if (o->marble_type == NULL)
        o->marble_type = getenv("EDG_MARBLE_TYPE");
    if (o->cc.address == NULL)
        o->cc.address = getenv("EDG_MARBLE_COORDINATOR_ADDR");
    if (o->cc.address == NULL)
        o->cc.address = "localhost:2001";
    if (o->uuid_file == NULL)
        o->uuid_file = getenv("EDG_MARBLE_UUID_FILE");
    if (o->uuid_file == NULL)
        o->uuid_file = "uuid";
    if (o->dns_names == NULL)
        o->dns_names = getenv("EDG_MARBLE_DNS_NAMES");
    if (o->dns_names == NULL)
        o->dns_names = "localhost";
    o->cc.cache_path = NULL;
    coord_client_init(&o->cc);
}

static enum coffer_err load_uuid(const char *path, char out[64])
{
    uint8_t *d;
    size_t n;
    enum coffer_err r = coffer_file_read_all(path, 256, &d, &n);
    if (r == COFFER_OK) {
        while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == '\r'))
            n--;
        if (n == 0 || n >= 64) {
            coffer_free(d);
            return COFFER_FAIL(COFFER_E_MALFORMED, "UUID file %s does not hold a UUID", path);
        }
        memcpy(out, d, n);
        out[n] = '\0';
        coffer_free(d);
        return COFFER_OK;
    }
    if (r != COFFER_E_NOT_FOUND)
        return r;
    uint8_t b[16];
    if ((r = coffer_random(b, sizeof(b))) != COFFER_OK)
        return r;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 64, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return coffer_file_write_atomic(path, out, strlen(out), 0600);
}

static enum coffer_err make_csr(EVP_PKEY *key, const char *dns, uint8_t **csr, size_t *csr_n)
{
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    struct coffer_buf san;
    coffer_buf_init(&san, 1 << 14, false);
    enum coffer_err r = COFFER_OK;
    const char *p = dns;
    while (*p && r == COFFER_OK) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0)
            r = coffer_buf_printf(&san, "%sDNS:%.*s", san.size ? "," : "", (int)n, p);
        p += n + (e ? 1 : 0);
    }
    if (r == COFFER_OK && san.size == 0)
        r = coffer_buf_printf(&san, "DNS:localhost");
    X509_EXTENSION *ext = r == COFFER_OK ? X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, (char *)san.data) : NULL;
    if (req == NULL || exts == NULL || ext == NULL || X509_REQ_set_pubkey(req, key) != 1 ||
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"coffer marble", -1, -1, 0) != 1 ||
        sk_X509_EXTENSION_push(exts, ext) <= 0 || X509_REQ_add_extensions(req, exts) != 1 ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        if (ext != NULL && sk_X509_EXTENSION_num(exts) == 0)
            X509_EXTENSION_free(ext);
        r = r != COFFER_OK ? r : COFFER_FAIL(COFFER_E_CRYPTO, "making the CSR");
    } else {
        int n = i2d_X509_REQ(req, NULL);
        uint8_t *w = n > 0 ? coffer_malloc((size_t)n) : NULL;
        *csr = w;
        if (w == NULL)
            r = COFFER_E_NOMEM;
        else {
            i2d_X509_REQ(req, &w);
            *csr_n = (size_t)n;
        }
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    coffer_buf_free(&san);
    return r;
}

static char *b64(const uint8_t *d, size_t n)
{
    char *s = coffer_malloc(coffer_base64_encoded_len(n) + 1);
    if (s != NULL)
        coffer_base64_encode(d, n, s);
    return s;
}

enum coffer_err marble_activate(struct marble_opts *o, struct marble_result *out)
{
    memset(out, 0, sizeof(*out));
    if (o->marble_type == NULL || o->marble_type[0] == '\0')
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "no marble type (--type or EDG_MARBLE_TYPE)");
    enum coffer_err r;
    struct coord_reply rep = {0};
    uint8_t *csr = NULL, *nonce = NULL, *ev = NULL, *spki = NULL;
    size_t csr_n = 0, nonce_n = 0, ev_n = 0;
    char *body = NULL, *csr64 = NULL, *ev64 = NULL, *nonce64 = NULL;
    if ((r = load_uuid(o->uuid_file, out->uuid)) != COFFER_OK || (r = coord_client_verify(&o->cc)) != COFFER_OK)
        goto out;
    if ((out->key = EVP_EC_gen("P-256")) == NULL) {
        r = COFFER_FAIL(COFFER_E_CRYPTO, "generating the marble key");
        goto out;
    }
    if ((r = make_csr(out->key, o->dns_names, &csr, &csr_n)) != COFFER_OK ||
        (r = coord_client_call(&o->cc, "POST", "/api/v2/marble/nonce", "{}", &rep)) != COFFER_OK)
        goto out;
    const char *n64 = json_string_value(json_object_get(rep.data, "nonce"));
    if (n64 == NULL || coffer_base64_decode(n64, strlen(n64), &nonce, &nonce_n) != COFFER_OK || nonce_n != 32) {
        r = COFFER_FAIL(COFFER_E_NET, "the coordinator's nonce reply is malformed");
        goto out;
    }
    coord_reply_free(&rep);
    int spki_n = i2d_PUBKEY(out->key, &spki);
    uint8_t report_data[64];
    SHA256(spki, (size_t)spki_n, report_data);
    memcpy(report_data + 32, nonce, 32);
    if ((r = coffer_attest_provider_evidence(o->provider, report_data, &ev, &ev_n)) != COFFER_OK) {
        coffer_err_context("evidence for activation");
        goto out;
    }
    csr64 = b64(csr, csr_n);
    ev64 = b64(ev, ev_n);
    nonce64 = b64(nonce, nonce_n);
    json_t *req = json_pack("{s:s,s:s,s:s,s:s,s:s}", "marbleType", o->marble_type, "uuid", out->uuid, "csr",
                            csr64 ? csr64 : "", "evidence", ev64 ? ev64 : "", "nonce", nonce64 ? nonce64 : "");
    size_t bn;
    r = req ? coffer_json_dump(req, &body, &bn) : COFFER_E_NOMEM;
    json_decref(req);
    if (r != COFFER_OK || (r = coord_client_call(&o->cc, "POST", "/api/v2/marble/activate", body, &rep)) != COFFER_OK)
        goto out;
    const char *chain = json_string_value(json_object_get(rep.data, "Certificate"));
    const char *root = json_string_value(json_object_get(rep.data, "RootCA"));
    json_t *params = json_object_get(rep.data, "Parameters");
    if (chain == NULL || root == NULL || !json_is_object(params)) {
        r = COFFER_FAIL(COFFER_E_NET, "the coordinator's activation reply is malformed");
        goto out;
    }
    out->cert_chain_pem = coffer_strdup(chain);
    out->root_ca_pem = coffer_strdup(root);
    out->parameters = json_incref(params);
    if (out->cert_chain_pem == NULL || out->root_ca_pem == NULL)
        r = COFFER_E_NOMEM;
out:
    coord_reply_free(&rep);
    OPENSSL_free(spki);
    coffer_free(csr);
    coffer_free(nonce);
    coffer_free(ev);
    coffer_free(csr64);
    coffer_free(ev64);
    coffer_free(nonce64);
    coffer_free(body);
    if (r != COFFER_OK)
        marble_result_free(out);
    return r;
}

enum coffer_err marble_param(const struct marble_result *res, const char *kind, const char *name,
                             struct coffer_secret **data)
{
    *data = NULL;
    const char *v = json_string_value(json_object_get(json_object_get(res->parameters, kind), name));
    if (v == NULL)
        return COFFER_FAIL(COFFER_E_NOT_FOUND, "the activation gave no %s \"%s\"", kind, name);
    uint8_t *d;
    size_t n;
    enum coffer_err r = coffer_base64_decode(v, strlen(v), &d, &n);
    if (r != COFFER_OK)
        return r;
    if ((r = coffer_secret_new(n, data)) == COFFER_OK)
        memcpy((*data)->data, d, n);
    coffer_memzero(d, n);
    coffer_free(d);
    return r;
}

void marble_result_free(struct marble_result *r)
{
    EVP_PKEY_free(r->key);
    if (r->cert_chain_pem != NULL)
        coffer_free(r->cert_chain_pem);
    coffer_free(r->root_ca_pem);
    json_decref(r->parameters);
    memset(r, 0, sizeof(*r));
}

/* ---- coffer activate */

void cmd_activate_help(FILE *out)
{
    fprintf(out,
            "usage: coffer activate --type MARBLE_TYPE [--coordinator HOST:PORT] [options] [-- COMMAND ARGS...]\n\n"
            "Activate this process as a marble (what MarbleRun's premain does): verify the\n"
            "coordinator, send it a CSR for a fresh key with evidence binding that key and a\n"
            "coordinator nonce, then write the Files the manifest gives this marble (folders\n"
            "0700, files 0600) and run COMMAND (or the manifest's Argv) with its Env.\n\n"
            "  --type NAME            marble type in the manifest (EDG_MARBLE_TYPE)\n"
            "  --coordinator H:P      the coordinator's marble API (EDG_MARBLE_COORDINATOR_ADDR,\n"
            "                         default localhost:2001)\n"
            "  --uuid-file FILE       where this marble's UUID is kept (EDG_MARBLE_UUID_FILE, ./uuid)\n"
            "  --dns-names NAMES      SANs for the marble certificate (EDG_MARBLE_DNS_NAMES)\n"
            "  --root DIR             write Files under DIR instead of at their paths\n"
            "  --cert-out FILE, --key-out FILE   also write the marble's certificate chain and key\n"
            "  --provider P           auto, gramine, tsm or simulation (default auto)\n"
            "  --simulation           produce simulation evidence, and accept a simulation\n"
            "                         coordinator signed by this machine's platform key\n"
            "  --policy FILE, -i/--insecure, --collateral DIR   how to verify the coordinator\n");
}

static enum coffer_err write_file(const char *root, const char *path, const struct coffer_secret *data)
{
    char full[4096];
    snprintf(full, sizeof(full), "%s%s%s", root ? root : "", root && path[0] != '/' ? "/" : "", path);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", full);
    char *d = dirname(dir);
    enum coffer_err r = COFFER_OK;
    if (strcmp(d, ".") != 0 && strcmp(d, "/") != 0)
        r = coffer_mkdir_p(d, 0700);
    if (r == COFFER_OK)
        r = coffer_file_write_atomic(full, data->data, data->size, 0600);
    if (r != COFFER_OK)
        coffer_err_context("writing %s", full);
    return r;
}

int cmd_activate(int argc, char **argv)
{
    enum { O_TYPE = 1000, O_COORD, O_UUID, O_DNS, O_ROOT, O_CERT, O_KEY, O_PROV, O_SIM, O_POLICY, O_COLL };
    static const struct option longopts[] = {
        {"type", required_argument, NULL, O_TYPE},       {"coordinator", required_argument, NULL, O_COORD},
        {"uuid-file", required_argument, NULL, O_UUID},  {"dns-names", required_argument, NULL, O_DNS},
        {"root", required_argument, NULL, O_ROOT},       {"cert-out", required_argument, NULL, O_CERT},
        {"key-out", required_argument, NULL, O_KEY},     {"provider", required_argument, NULL, O_PROV},
        {"simulation", no_argument, NULL, O_SIM},        {"policy", required_argument, NULL, O_POLICY},
        {"collateral", required_argument, NULL, O_COLL}, {"insecure", no_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},                {NULL, 0, NULL, 0},
    };
    struct marble_opts o = {0};
    const char *root = NULL, *cert_out = NULL, *key_out = NULL;
    optind = 1;
    opterr = 0;
    int ch;
    /* "+": stop at the first non-option, so COMMAND's own options stay its own */
    while ((ch = getopt_long(argc, argv, "+ih", longopts, NULL)) != -1) {
        switch (ch) {
        case O_TYPE: o.marble_type = optarg; break;
        case O_COORD: o.cc.address = optarg; break;
        case O_UUID: o.uuid_file = optarg; break;
        case O_DNS: o.dns_names = optarg; break;
        case O_ROOT: root = optarg; break;
        case O_CERT: cert_out = optarg; break;
        case O_KEY: key_out = optarg; break;
        case O_PROV:
            if (coffer_attest_provider_parse(optarg, &o.provider) != COFFER_OK)
                return cli_usage("activate", "--provider takes auto, gramine, tsm or simulation");
            break;
        case O_SIM:
            o.provider = COFFER_ATTEST_PROVIDER_SIM;
            o.cc.simulation = true;
            break;
        case O_POLICY: o.cc.policy_path = optarg; break;
        case O_COLL: o.cc.collateral_dir = optarg; break;
        case 'i': o.cc.insecure = true; break;
        case 'h': cmd_activate_help(stdout); return CLI_OK;
        default: return cli_usage("activate", "unknown option '%s'", argv[optind - 1]);
        }
    }
    marble_opts_defaults(&o);
    struct marble_result res;
    enum coffer_err r = marble_activate(&o, &res);
    coord_client_free(&o.cc);
    if (r != COFFER_OK)
        return cli_fail("activate", r);
    fprintf(stderr, "coffer activate: activated as marble %s (uuid %s)\n", o.marble_type, res.uuid);
    /* Files: Gramine's key files first, so encrypted mounts open */
    json_t *files = json_object_get(res.parameters, "Files");
    for (int pass = 0; pass < 2 && r == COFFER_OK; pass++) {
        const char *path;
        json_t *v;
        json_object_foreach(files, path, v) {
            bool key_file = strncmp(path, "/dev/attestation/", 17) == 0;
            if ((pass == 0) != key_file)
                continue;
            struct coffer_secret *data;
            if ((r = marble_param(&res, "Files", path, &data)) == COFFER_OK) {
                r = write_file(root, path, data);
                coffer_secret_free(data);
            }
            if (r != COFFER_OK)
                break;
        }
    }
    if (r == COFFER_OK && cert_out != NULL)
        r = coffer_file_write_atomic(cert_out, res.cert_chain_pem, strlen(res.cert_chain_pem), 0644);
    if (r == COFFER_OK && key_out != NULL) {
        BIO *b = BIO_new(BIO_s_mem());
        char *p;
        long n;
        if (b != NULL && PEM_write_bio_PrivateKey(b, res.key, NULL, NULL, 0, NULL, NULL) == 1 &&
            (n = BIO_get_mem_data(b, &p)) > 0)
            r = coffer_file_write_atomic(key_out, p, (size_t)n, 0600);
        else
            r = COFFER_FAIL(COFFER_E_CRYPTO, "encoding the marble key");
        BIO_free(b);
    }
    if (r != COFFER_OK) {
        marble_result_free(&res);
        return cli_fail("activate", r);
    }
    /* Env, then the command: ours after "--", else the manifest's Argv */
    json_t *env = json_object_get(res.parameters, "Env");
    const char *name;
    json_t *v;
    json_object_foreach(env, name, v) {
        struct coffer_secret *data;
        if (marble_param(&res, "Env", name, &data) == COFFER_OK) {
            char *s = coffer_malloc(data->size + 1);
            if (s != NULL) {
                memcpy(s, data->data, data->size);
                s[data->size] = '\0';
                setenv(name, s, 1);
                coffer_memzero(s, data->size);
                coffer_free(s);
            }
            coffer_secret_free(data);
        }
    }
    char **cmd = NULL;
    int cmd_n = argc - optind;
    json_t *margv = json_object_get(res.parameters, "Argv");
    if (cmd_n > 0) {
        cmd = argv + optind;
    } else if (json_array_size(margv) > 0) {
        cmd_n = (int)json_array_size(margv);
        cmd = coffer_calloc((size_t)cmd_n + 1, sizeof(char *));
        for (int i = 0; cmd != NULL && i < cmd_n; i++)
            cmd[i] = (char *)json_string_value(json_array_get(margv, (size_t)i));
    }
    if (cmd == NULL) {
        fprintf(stderr, "coffer activate: %zu file(s) written; no command to run\n", json_object_size(files));
        marble_result_free(&res);
        return CLI_OK;
    }
    fflush(NULL);
    execvp(cmd[0], cmd);
    fprintf(stderr, "coffer activate: cannot run %s: %s\n", cmd[0], strerror(errno));
    marble_result_free(&res);
    return CLI_FAIL;
}
