/*
 * coord_api_fuzz.c — every JSON request body and query string of the
 * coordinator's API, through the transport-independent handler: the first
 * byte picks the endpoint, the rest is the body (or query). A coordinator
 * with a manifest and a user is built once; manifest uploads go to a fresh
 * in-memory one. Responses must always be well-formed; nothing may crash.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "coffer/coordinator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct coffer_coord *active;
static uint8_t user_der[2048];
static size_t user_der_n;

static enum coffer_err verify(void *arg, const uint8_t *ev, size_t n, const struct coffer_mf_package *pkg,
                              const uint8_t rd[64], char *claims, size_t cs)
{
    (void)arg;
    (void)pkg;
    (void)claims;
    (void)cs;
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

static void init(void)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_sign(x, k, EVP_sha256());
    uint8_t *w = user_der;
    user_der_n = (size_t)i2d_X509(x, &w);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *pem, esc[4096], *o = esc;
    long n = BIO_get_mem_data(b, &pem);
    for (long i = 0; i < n; i++) {
        if (pem[i] == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = pem[i];
        }
    }
    *o = '\0';
    char manifest[8192];
    snprintf(manifest, sizeof(manifest),
             "{\"Packages\": {\"p\": {\"TEE\": \"Simulation\", \"UniqueID\": \"%064d\"}},"
             " \"Marbles\": {\"server\": {\"Package\": \"p\", \"Parameters\": {\"Files\": {\"k\": \"{{ raw .Secrets.modelKey }}\"}}}},"
             " \"Secrets\": {\"modelKey\": {\"Type\": \"symmetric-key\", \"Size\": 128, \"UserDefined\": true}},"
             " \"Users\": {\"u\": {\"Certificate\": \"%s\", \"Roles\": [\"w\"]}},"
             " \"Roles\": {\"w\": {\"ResourceType\": \"Secrets\", \"ResourceNames\": [\"modelKey\"], \"Actions\": [\"WriteSecret\", \"ReadSecret\"]}}}",
             1, esc);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
    struct coffer_coord_config cfg = {.verify = verify, .evidence = evidence, .simulation = true};
    if (coffer_coord_open(&cfg, &active) != COFFER_OK || coffer_coord_set_manifest(active, manifest, strlen(manifest), NULL) != COFFER_OK)
        __builtin_trap();
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
    switch (data[0] % 4) {
    case 0: {
        struct coffer_coord_config cfg = {.verify = verify, .simulation = true};
        if (coffer_coord_open(&cfg, &fresh) != COFFER_OK)
            return 0;
        c = fresh;
        req.path = "/api/v2/manifest";
        break;
    }
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
