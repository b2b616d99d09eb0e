/*
 * coord_api_fuzz.c — every JSON request body and query string of the
 * coordinator's API, through the transport-independent handler: the first
 * byte picks the endpoint, the rest is the body (or query). A coordinator
 * with a manifest and a user is built once; manifest uploads and updates
 * go to a fresh in-memory one (an update with two updaters stays pending,
 * so the same body is then acknowledged); recovery bodies go to a
 * coordinator in recovery mode whose manifest had a recovery key. A first
 * byte of 0xf0 or more picks the feature-gated endpoints instead:
 * monotonic-counter (with a marble certificate of the active coordinator),
 * sign-quote, recover/public-key before a recovery body, and MarbleRun's
 * v1 paths that take raw bodies (/manifest, /update, /secrets).
 * Responses must always be well-formed; nothing may crash.
 */
#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coffer/coordinator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct coffer_coord *active, *recovering;
static char update_manifest[16384];
static uint8_t user_der[2048], marble_der[2048];
static size_t user_der_n, marble_der_n;

static enum coffer_err verify(void *arg, const uint8_t *ev, size_t n, const struct coffer_mf_package *pkg,
                              const uint8_t rd[64], char *claims, size_t cs)
{
    (void)arg;
    if (pkg == NULL) { /* sign-quote: "quotes" starting with SGX verify */
        if (n < 3 || memcmp(ev, "SGX", 3) != 0)
            return COFFER_FAIL(COFFER_E_SIGNATURE, "fuzz quote");
        snprintf(claims, cs, "{\"tcb_status\":\"UpToDate\"}");
        return COFFER_OK;
    }
    return n == 64 && memcmp(ev, rd, 64) == 0 ? COFFER_OK : COFFER_FAIL(COFFER_E_POLICY, "fuzz evidence");
}

static enum coffer_err evidence(void *arg, const uint8_t rd[64], uint8_t **ev, size_t *n)
{
    (void)arg;
    *ev = coffer_malloc(64);
    if (*ev == NULL)
        return COFFER_E_NOMEM;
    memcpy(*ev, rd, 64);
    *n = 64;
    return COFFER_OK;
}

/* PEM text as the inside of a JSON string. */
static void json_escape_pem(const char *pem, long n, char *out)
{
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

/* A fresh self-signed certificate: PEM (JSON-escaped) and DER. */
static void make_cert(char *esc, uint8_t *der, size_t *der_n)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_sign(x, k, EVP_sha256());
    uint8_t *w = der;
    *der_n = (size_t)i2d_X509(x, &w);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    json_escape_pem(pem, n, esc);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* One marble activated on the active coordinator: its certificate is the
 * client certificate of monotonic-counter requests. */
static void activate_marble(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    X509_REQ_set_pubkey(req, k);
    X509_REQ_sign(req, k, EVP_sha256());
    uint8_t csr[1024], *w = csr, *spki = NULL;
    int csr_n = i2d_X509_REQ(req, &w), spki_n = i2d_PUBKEY(k, &spki);
    struct coffer_coord_activation a = {.marble_type = "server", .uuid = "fuzz", .csr_der = csr,
                                        .csr_size = (size_t)csr_n};
    uint8_t nonce[COFFER_COORD_NONCE_SIZE], rd[64];
    json_t *resp = NULL;
    if (coffer_coord_nonce(active, nonce) != COFFER_OK)
        __builtin_trap();
    SHA256(spki, (size_t)spki_n, rd);
    memcpy(rd + 32, nonce, 32);
    a.evidence = rd;
    a.evidence_size = 64;
    a.nonce = nonce;
    if (coffer_coord_activate(active, &a, &resp) != COFFER_OK)
        __builtin_trap();
    BIO *b = BIO_new_mem_buf(json_string_value(json_object_get(resp, "Certificate")), -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    w = marble_der;
    marble_der_n = x ? (size_t)i2d_X509(x, &w) : 0;
    if (marble_der_n == 0)
        __builtin_trap();
    X509_free(x);
    BIO_free(b);
    json_decref(resp);
    OPENSSL_free(spki);
    X509_REQ_free(req);
    EVP_PKEY_free(k);
}

static char dir[] = "/tmp/coffer-fuzz-recover-XXXXXX";

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_seal_dir(void)
{
    if (strcmp(dir + strlen(dir) - 6, "XXXXXX") != 0)
        nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void init(void)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    char esc[4096], esc2[4096], rsa[2048];
    uint8_t der2[2048];
    size_t der2_n;
    make_cert(esc, user_der, &user_der_n);
    make_cert(esc2, der2, &der2_n);
    char manifest[8192];
    snprintf(manifest, sizeof(manifest),
             "{\"Packages\": {\"p\": {\"TEE\": \"Simulation\", \"UniqueID\": \"%064d\"},"
             "              \"s\": {\"SignerID\": \"%064d\", \"ProductID\": 1, \"SecurityVersion\": 1}},"
             " \"Marbles\": {\"server\": {\"Package\": \"p\", \"Parameters\": {\"Files\": {\"k\": \"{{ raw .Secrets.modelKey }}\"}}}},"
             " \"Secrets\": {\"modelKey\": {\"Type\": \"symmetric-key\", \"Size\": 128, \"UserDefined\": true}},"
             " \"Users\": {\"u\": {\"Certificate\": \"%s\", \"Roles\": [\"w\", \"upd\", \"svn\"]},"
             "           \"u2\": {\"Certificate\": \"%s\", \"Roles\": [\"upd\"]}},"
             " \"Roles\": {\"w\": {\"ResourceType\": \"Secrets\", \"ResourceNames\": [\"modelKey\"], \"Actions\": [\"WriteSecret\", \"ReadSecret\"]},"
             "           \"upd\": {\"ResourceType\": \"Manifest\", \"Actions\": [\"UpdateManifest\"]},"
             "           \"svn\": {\"ResourceType\": \"Packages\", \"ResourceNames\": [\"s\"], \"Actions\": [\"UpdateSecurityVersion\"]}}}",
             1, 2, esc, esc2);
    snprintf(update_manifest, sizeof(update_manifest), "%s", manifest);
    static char gated[9000];
    snprintf(gated, sizeof(gated), "{\"Config\": {\"FeatureGates\": [\"MonotonicCounter\", \"SignQuoteEndpoint\"]}, %s",
             manifest + 1);
    struct coffer_coord_config cfg = {.verify = verify, .evidence = evidence, .simulation = true};
    if (coffer_coord_open(&cfg, &active) != COFFER_OK ||
        coffer_coord_set_manifest(active, gated, strlen(gated), NULL) != COFFER_OK)
        __builtin_trap();
    json_t *key = json_pack("{s:{s:s}}", "modelKey", "Key", "AAECAwQFBgcICQoLDA0ODw==");
    if (coffer_coord_set_secrets(active, user_der, user_der_n, key) != COFFER_OK) /* the marble's file needs it */
        __builtin_trap();
    json_decref(key);
    activate_marble();
    /* a coordinator in recovery mode: sealed under one key, opened with another */
    EVP_PKEY *rk = EVP_RSA_gen(2048);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, rk);
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    json_escape_pem(pem, n, rsa);
    BIO_free(b);
    EVP_PKEY_free(rk);
    /* removed at exit (libFuzzer ends with exit()), so runs leave nothing */
    atexit(remove_seal_dir);
    static char with_keys[12000];
    snprintf(with_keys, sizeof(with_keys), "{\"RecoveryKeys\": {\"k\": \"%s\"}, %s", rsa, manifest + 1);
    uint8_t key1[32] = {1}, key2[32] = {2};
    struct coffer_coord *c;
    struct coffer_coord_config sc = {.verify = verify, .simulation = true, .seal_dir = mkdtemp(dir), .seal_key = key1};
    if (sc.seal_dir == NULL || coffer_coord_open(&sc, &c) != COFFER_OK ||
        coffer_coord_set_manifest(c, with_keys, strlen(with_keys), NULL) != COFFER_OK)
        __builtin_trap();
    coffer_coord_close(c);
    sc.seal_key = key2;
    if (coffer_coord_open(&sc, &recovering) != COFFER_OK || coffer_coord_get_state(recovering) != COFFER_COORD_RECOVERY)
        __builtin_trap();
}

/* A fresh in-memory coordinator; with the update test's manifest set when
 * asked. NULL when it cannot start (out of memory). */
static struct coffer_coord *fresh_coord(bool with_manifest)
{
    struct coffer_coord_config cfg = {.verify = verify, .simulation = true};
    struct coffer_coord *c;
    if (coffer_coord_open(&cfg, &c) != COFFER_OK)
        return NULL;
    if (with_manifest && coffer_coord_set_manifest(c, update_manifest, strlen(update_manifest), NULL) != COFFER_OK)
        __builtin_trap();
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (active == NULL)
        init();
    if (size < 1)
        return 0;
    struct coffer_coord *c = active, *fresh = NULL;
    struct coffer_coord_request req = {.method = "POST", .body = data + 1, .body_size = size - 1,
                                       .client_cert = user_der, .client_cert_size = user_der_n};
    enum coffer_coord_api api = COFFER_COORD_API_CLIENT;
    char query[4096];
    if (data[0] >= 0xf0) {
        switch (data[0] % 6) {
        case 0:
            req.path = "/api/v2/monotonic-counter";
            req.client_cert = marble_der;
            req.client_cert_size = marble_der_n;
            api = (data[0] & 8) ? COFFER_COORD_API_MARBLE : COFFER_COORD_API_CLIENT;
            break;
        case 1: req.path = "/api/v2/sign-quote"; break;
        case 3:
        case 4:
            if ((c = fresh = fresh_coord(data[0] % 6 == 4)) == NULL)
                return 0;
            req.path = data[0] % 6 == 4 ? "/update" : "/manifest";
            break;
        case 5: req.path = "/secrets"; break;
        default: {
            c = recovering;
            struct coffer_coord_request pk = {.method = "GET", .path = "/api/v2/recover/public-key"};
            struct coffer_coord_response first;
            if (coffer_coord_handle(c, api, &pk, &first) == COFFER_OK)
                coffer_buf_free(&first.body);
            req.path = "/api/v2/recover";
            break;
        }
        }
    } else {
        switch (data[0] % 6) {
        case 0:
            if ((c = fresh = fresh_coord(false)) == NULL)
                return 0;
            req.path = "/api/v2/manifest";
            break;
        case 4: {
            if ((c = fresh = fresh_coord(true)) == NULL)
                return 0;
            req.path = "/api/v2/update";
            struct coffer_coord_response first;
            if (coffer_coord_handle(c, api, &req, &first) == COFFER_OK)
                coffer_buf_free(&first.body);
            req.path = (data[0] & 8) ? "/api/v2/update-manifest" : "/api/v2/update";
            break;
        }
        case 5:
            c = recovering;
            req.path = "/api/v2/recover";
            break;
        case 1: req.path = "/api/v2/secrets"; break;
        case 2:
            api = COFFER_COORD_API_MARBLE;
            req.path = "/api/v2/marble/activate";
            break;
        default: {
            size_t n = size - 1 < sizeof(query) - 1 ? size - 1 : sizeof(query) - 1;
            memcpy(query, data + 1, n);
            query[n] = '\0';
            req.method = "GET";
            req.path = (data[0] & 4) ? "/api/v2/quote" : "/api/v2/secrets";
            req.query = query;
            req.body = NULL;
            req.body_size = 0;
            break;
        }
        }
    }
    struct coffer_coord_response resp;
    if (coffer_coord_handle(c, api, &req, &resp) == COFFER_OK) {
        json_t *j;
        if (resp.status < 100 || resp.status > 599 ||
            coffer_json_parse(resp.body.data, resp.body.size, 1 << 26, &j) != COFFER_OK)
            __builtin_trap();
        json_decref(j);
    }
    coffer_buf_free(&resp.body);
    coffer_coord_close(fresh);
    return 0;
}
