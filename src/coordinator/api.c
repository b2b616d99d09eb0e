/*
 * api.c — the coordinator's HTTP APIs, independent of the transport.
 *
 * Design: one static table lists every endpoint with its API (client or
 * marble), method, path, the coordinator states it is allowed in, whether a
 * user certificate is needed, and its handler (STYLE §3.20). The dispatcher
 * enforces the row before the handler runs; handlers parse and validate the
 * request into typed values, then call the core (coord.c), which alone
 * touches secrets. Responses use MarbleRun's JSend envelope:
 * {"status":"success","data":...}, {"status":"fail","data":null,
 * "message":...} for client mistakes (4xx), {"status":"error",...} for
 * server faults (5xx). Byte fields are standard base64. MarbleRun's legacy
 * v1 paths (bare, e.g. /manifest) take raw bodies, answer capitalised keys
 * and only "error" envelopes; v1 /recover answers 410.
 *
 * Status codes: 400 malformed or invalid request, 401 no or unknown client
 * certificate, 403 authenticated but not allowed (role, policy, evidence),
 * 404 unknown path or name, 405 wrong method, 409 not allowed in the current
 * state, 410 gone (v1 /recover), 413 body too large, 501 not implemented,
 * 500 the rest; 401 also for a marble certificate that is not one.
 *
 * Trusts: the transport for the verified client certificate; nothing in the
 * request.
 */
#include <stdio.h>
#include <string.h>

#include "coffer/coordinator.h"

#define STATE_BIT(s) (1u << (s))
#define ANY_STATE 0xfu
#define ACTIVE STATE_BIT(COFFER_COORD_ACCEPTING_MARBLES)

struct out {
    struct coffer_coord_response *resp;
};

typedef enum coffer_err (*handler_fn)(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                      json_t **data);

struct route {
    enum coffer_coord_api api;
    const char *method;
    const char *path;
    unsigned states;
    bool user;
    bool body; /* a JSON body is expected */
    handler_fn fn;
    bool marble; /* authenticated by a marble certificate: COFFER_E_CERT answers 401 */
    const char *fail_field; /* set: a body that does not parse answers {"fail_field": ...} as data */
    int v1; /* MarbleRun's legacy API: V1 (errors are "error" envelopes, never "fail"), V1_RAW (and the body is
               taken as it is: a raw manifest), V1_GONE (410, as MarbleRun's /recover) */
};

enum { V2 = 0, V1, V1_RAW, V1_GONE };

/* ---- query strings */

static void free_values(char **vals, size_t n);

/* Collect the percent-decoded values of key in query, at most max. On
 * failure nothing stays allocated. */
static enum coffer_err query_collect(const char *query, const char *key, char **vals, size_t max, size_t *count);

static enum coffer_err query_values(const char *query, const char *key, char **vals, size_t max, size_t *count)
{
    enum coffer_err r = query_collect(query, key, vals, max, count);
    if (r != COFFER_OK) {
        free_values(vals, *count);
        *count = 0;
    }
    return r;
}

static enum coffer_err query_collect(const char *query, const char *key, char **vals, size_t max, size_t *count)
{
    *count = 0;
    if (query == NULL)
        return COFFER_OK;
    struct coffer_rd rd;
    coffer_rd_init(&rd, query, strlen(query));
    size_t klen = strlen(key);
    while (coffer_rd_left(&rd) > 0) {
        const uint8_t *start = rd.data + rd.pos;
        const uint8_t *amp = memchr(start, '&', coffer_rd_left(&rd));
        size_t n = amp ? (size_t)(amp - start) : coffer_rd_left(&rd);
        const uint8_t *pair;
        enum coffer_err r = coffer_rd_bytes(&rd, n, &pair);
        if (r != COFFER_OK)
            return r;
        if (amp != NULL && (r = coffer_rd_skip(&rd, 1)) != COFFER_OK)
            return r;
        if (n <= klen || memcmp(pair, key, klen) != 0 || pair[klen] != '=')
            continue;
        if (*count >= max)
            return COFFER_FAIL(COFFER_E_TOO_LARGE, "more than %zu values for query parameter %s", max, key);
        char *v = coffer_malloc(n - klen);
        if (v == NULL)
            return COFFER_E_NOMEM;
        size_t w = 0;
        for (size_t i = klen + 1; i < n; i++) {
            uint8_t ch = pair[i];
            if (ch == '%') {
                int h = i + 2 < n ? coffer_hex_digit(pair[i + 1]) : -1, l = i + 2 < n ? coffer_hex_digit(pair[i + 2]) : -1;
                if (h < 0 || l < 0) {
                    coffer_free(v);
                    return COFFER_FAIL(COFFER_E_MALFORMED, "bad percent-encoding in query parameter %s", key);
                }
                ch = (uint8_t)(h << 4 | l);
                i += 2;
            } else if (ch == '+') {
                ch = ' ';
            }
            v[w++] = (char)ch;
        }
        v[w] = '\0';
        vals[(*count)++] = v;
    }
    return COFFER_OK;
}

static void free_values(char **vals, size_t n)
{
    for (size_t i = 0; i < n; i++)
        coffer_free(vals[i]);
}

/* base64url (or standard) with or without padding, as MarbleRun's nonce. */
static enum coffer_err b64url_decode(const char *s, uint8_t **out, size_t *n)
{
    size_t len = strlen(s);
    if (len > 4096)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "nonce of %zu characters", len);
    char *t = coffer_malloc(len + 4);
    if (t == NULL)
        return COFFER_E_NOMEM;
    size_t i;
    for (i = 0; i < len; i++)
        t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    while (i % 4 != 0)
        t[i++] = '=';
    enum coffer_err r = coffer_base64_decode(t, i, out, n);
    coffer_free(t);
    return r;
}

static json_t *b64_string(const uint8_t *d, size_t n)
{
    char *s = coffer_malloc(coffer_base64_encoded_len(n) + 1);
    if (s == NULL)
        return NULL;
    coffer_base64_encode(d, n, s);
    json_t *j = json_string(s);
    coffer_free(s);
    return j;
}

static enum coffer_err body_b64(json_t *body, const char *key, uint8_t **out, size_t *n)
{
    const char *s = NULL;
    enum coffer_err r = coffer_json_get_string(body, "$", key, true, &s);
    if (r != COFFER_OK)
        return r;
    r = coffer_base64_decode(s, strlen(s), out, n);
    if (r != COFFER_OK && r != COFFER_E_NOMEM)
        return COFFER_FAIL(COFFER_E_JSON, "$.%s: not valid base64", key);
    return r;
}

/* ---- client API handlers */

static enum coffer_err h_status(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body, json_t **data)
{
    (void)req;
    (void)body;
    enum coffer_coord_state s = coffer_coord_get_state(c);
    *data = json_pack("{s:i,s:s,s:b}", "code", (int)s, "message", coffer_coord_state_message(s), "simulation",
                      coffer_coord_is_simulation(c));
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h_manifest_get(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                      json_t **data)
{
    (void)req;
    (void)body;
    uint8_t *raw, *sig, fp[32];
    size_t raw_n, sig_n;
    enum coffer_err r = coffer_coord_get_manifest(c, &raw, &raw_n, fp, &sig, &sig_n);
    if (r != COFFER_OK)
        return r;
    char fph[65];
    coffer_hex_encode(fp, 32, fph);
    *data = json_pack("{s:o,s:s,s:o}", "manifestSignatureRootECDSA", b64_string(sig, sig_n), "manifestFingerprint",
                      fph, "manifest", b64_string(raw, raw_n));
    coffer_free(raw);
    coffer_free(sig);
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h_manifest_set(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                      json_t **data)
{
    (void)req;
    uint8_t *raw;
    size_t n;
    enum coffer_err r = body_b64(body, "manifest", &raw, &n);
    if (r != COFFER_OK)
        return r;
    json_t *rec = NULL;
    r = coffer_coord_set_manifest(c, raw, n, &rec);
    coffer_free(raw);
    if (r != COFFER_OK)
        return r;
    *data = json_pack("{s:o}", "RecoverySecrets", rec);
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h_quote(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                               json_t **data)
{
    (void)body;
    char *vals[1];
    size_t count;
    uint8_t *nonce = NULL;
    size_t nonce_n = 0;
    enum coffer_err r = query_values(req->query, "nonce", vals, 1, &count);
    if (r != COFFER_OK)
        return r;
    if (count == 1) {
        r = b64url_decode(vals[0], &nonce, &nonce_n);
        free_values(vals, count);
        if (r != COFFER_OK)
            return r == COFFER_E_NOMEM ? r : COFFER_FAIL(COFFER_E_MALFORMED, "nonce: not base64url");
    }
    uint8_t *ev;
    size_t ev_n;
    r = coffer_coord_quote(c, nonce, nonce_n, &ev, &ev_n);
    coffer_free(nonce);
    if (r != COFFER_OK)
        return r;
    struct coffer_buf pem;
    coffer_buf_init(&pem, 0, false);
    if ((r = coffer_coord_cert_pem(c, COFFER_PKI_ROOT, &pem)) == COFFER_OK &&
        (r = coffer_coord_cert_pem(c, COFFER_PKI_INTERMEDIATE, &pem)) == COFFER_OK &&
        (r = coffer_buf_put_u8(&pem, 0)) == COFFER_OK) {
        *data = json_pack("{s:s,s:o,s:b}", "cert", (const char *)pem.data, "quote", b64_string(ev, ev_n),
                          "simulation", coffer_coord_is_simulation(c));
        r = *data ? COFFER_OK : COFFER_E_NOMEM;
    }
    coffer_buf_free(&pem);
    coffer_free(ev);
    return r;
}

static enum coffer_err h_secrets_get(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                     json_t **data)
{
    (void)body;
    char *names[64];
    size_t n;
    enum coffer_err r = query_values(req->query, "s", names, 64, &n);
    if (r != COFFER_OK)
        return r;
    if (n == 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "name the secrets to read: ?s=NAME&s=NAME");
    json_t *secrets;
    r = coffer_coord_get_secrets(c, req->client_cert, req->client_cert_size, (const char *const *)names, n, &secrets);
    free_values(names, n);
    if (r != COFFER_OK)
        return r;
    *data = json_pack("{s:o}", "secrets", secrets);
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h_secrets_set(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                     json_t **data)
{
    json_t *secrets;
    enum coffer_err r = coffer_json_get_object(body, "$", "secrets", true, &secrets);
    if (r != COFFER_OK)
        return r;
    r = coffer_coord_set_secrets(c, req->client_cert, req->client_cert_size, secrets);
    if (r == COFFER_OK)
        *data = json_null();
    return r;
}

static enum coffer_err h_update_log(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                    json_t **data)
{
    (void)req;
    (void)body;
    json_t *entries;
    enum coffer_err r = coffer_coord_audit(c, &entries);
    if (r != COFFER_OK)
        return r;
    json_t *lines = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        char *s;
        size_t n;
        if (coffer_json_dump(e, &s, &n) == COFFER_OK) {
            json_array_append_new(lines, json_string(s));
            coffer_free(s);
        }
    }
    json_decref(entries);
    *data = json_pack("{s:o}", "updateLog", lines);
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

/* {"manifest": base64} for the update endpoints */
static enum coffer_err h_update(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                json_t **data)
{
    uint8_t *raw;
    size_t n;
    enum coffer_err r = body_b64(body, "manifest", &raw, &n);
    if (r != COFFER_OK)
        return r;
    bool ack = strcmp(req->path, "/api/v2/update-manifest") == 0 || strcmp(req->path, "/update-manifest") == 0;
    r = ack ? coffer_coord_update_ack(c, req->client_cert, req->client_cert_size, raw, n, data)
            : coffer_coord_update(c, req->client_cert, req->client_cert_size, raw, n, data);
    coffer_free(raw);
    return r;
}

static enum coffer_err h_update_get(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                    json_t **data)
{
    (void)req;
    (void)body;
    return coffer_coord_update_pending(c, data);
}

static enum coffer_err h_update_cancel(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                       json_t **data)
{
    (void)body;
    enum coffer_err r = coffer_coord_update_cancel(c, req->client_cert, req->client_cert_size);
    if (r == COFFER_OK && (*data = json_pack("{s:s}", "message", "the pending update was cancelled")) == NULL)
        r = COFFER_E_NOMEM;
    return r;
}

static enum coffer_err h_recover(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                 json_t **data)
{
    (void)req;
    uint8_t *secret = NULL, *sig = NULL;
    size_t secret_n = 0, sig_n = 0;
    enum coffer_err r = body_b64(body, "recoverySecret", &secret, &secret_n);
    if (r == COFFER_OK && (r = body_b64(body, "recoverySecretSignature", &sig, &sig_n)) == COFFER_OK)
        r = coffer_coord_recover(c, secret, secret_n, sig, sig_n, data);
    if (secret != NULL) {
        coffer_memzero(secret, secret_n);
        coffer_free(secret);
    }
    coffer_free(sig);
    return r;
}

static enum coffer_err h_recover_key(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                     json_t **data)
{
    (void)req;
    (void)body;
    uint8_t *der;
    size_t n;
    enum coffer_err r = coffer_coord_recovery_public_key(c, &der, &n);
    if (r != COFFER_OK)
        return r;
    *data = json_pack("{s:s,s:o}", "algorithm", "RSA", "ephemeralPublicKey", b64_string(der, n));
    coffer_free(der);
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h_sign_quote(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                    json_t **data)
{
    (void)req;
    uint8_t *quote, *sig;
    size_t n, sig_n;
    char tcb[48];
    enum coffer_err r = body_b64(body, "sgxQuote", &quote, &n);
    if (r != COFFER_OK)
        return r;
    r = coffer_coord_sign_quote(c, quote, n, &sig, &sig_n, tcb);
    coffer_free(quote);
    if (r == COFFER_E_POLICY) { /* MarbleRun: 400 fail, the reason in data.sgxQuote */
        char why[600];
        *data = json_pack("{s:s}", "sgxQuote", coffer_err_format(r, why, sizeof(why)));
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "quote verification failed");
    }
    if (r != COFFER_OK)
        return r;
    *data = json_pack("{s:o,s:s}", "verificationSignature", b64_string(sig, sig_n), "tcbStatus", tcb);
    coffer_free(sig);
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

/* ---- MarbleRun's legacy /api/v1 (bare paths): raw bodies, capitalised
 * keys, data without the v2 wrappers */

static enum coffer_err h1_status(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                 json_t **data)
{
    (void)req;
    (void)body;
    enum coffer_coord_state s = coffer_coord_get_state(c);
    *data = json_pack("{s:i,s:s}", "StatusCode", (int)s, "StatusMessage", coffer_coord_state_message(s));
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h1_manifest_get(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                       json_t **data)
{
    (void)req;
    (void)body;
    uint8_t *raw, *sig, fp[32];
    size_t raw_n, sig_n;
    if (coffer_coord_get_manifest(c, &raw, &raw_n, fp, &sig, &sig_n) != COFFER_OK) {
        coffer_err_clear(); /* v1 answers empty fields when there is none */
        *data = json_pack("{s:n,s:s,s:n}", "ManifestSignatureRootECDSA", "ManifestSignature", "", "Manifest");
        return *data ? COFFER_OK : COFFER_E_NOMEM;
    }
    char fph[65];
    coffer_hex_encode(fp, 32, fph);
    *data = json_pack("{s:o,s:s,s:o}", "ManifestSignatureRootECDSA", b64_string(sig, sig_n), "ManifestSignature", fph,
                      "Manifest", b64_string(raw, raw_n));
    coffer_free(raw);
    coffer_free(sig);
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h1_manifest_set(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                       json_t **data)
{
    (void)body;
    json_t *rec = NULL;
    enum coffer_err r = coffer_coord_set_manifest(c, req->body, req->body_size, &rec);
    if (r != COFFER_OK)
        return r;
    if (json_object_size(rec) == 0) {
        json_decref(rec);
        *data = json_null();
        return COFFER_OK;
    }
    *data = json_pack("{s:o}", "RecoverySecrets", rec);
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h1_quote(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                json_t **data)
{
    (void)body;
    struct coffer_coord_request no_nonce = *req; /* v1 has no nonce */
    no_nonce.query = NULL;
    json_t *v2 = NULL;
    enum coffer_err r = h_quote(c, &no_nonce, NULL, &v2);
    if (r != COFFER_OK)
        return r;
    *data = json_pack("{s:O,s:O}", "Cert", json_object_get(v2, "cert"), "Quote", json_object_get(v2, "quote"));
    json_decref(v2);
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h1_update_log(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                     json_t **data)
{
    json_t *v2 = NULL;
    enum coffer_err r = h_update_log(c, req, body, &v2);
    if (r != COFFER_OK)
        return r;
    struct coffer_buf b; /* one string, lines joined by newlines, one at the end */
    coffer_buf_init(&b, 0, false);
    size_t i;
    json_t *line;
    json_array_foreach(json_object_get(v2, "updateLog"), i, line) {
        if ((r = coffer_buf_printf(&b, "%s\n", json_string_value(line))) != COFFER_OK)
            break;
    }
    if (r == COFFER_OK && (r = coffer_buf_put_u8(&b, 0)) == COFFER_OK)
        *data = json_string((const char *)b.data);
    coffer_buf_free(&b);
    json_decref(v2);
    return r != COFFER_OK ? r : *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h1_update(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                 json_t **data)
{
    (void)body;
    json_t *out = NULL;
    enum coffer_err r = coffer_coord_update(c, req->client_cert, req->client_cert_size, req->body, req->body_size, &out);
    json_decref(out); /* v1 answers null (a full update's recovery secrets are a v2 thing) */
    if (r == COFFER_OK)
        *data = json_null();
    return r;
}

static enum coffer_err h1_secrets_get(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                      json_t **data)
{
    json_t *v2 = NULL;
    enum coffer_err r = h_secrets_get(c, req, body, &v2);
    if (r != COFFER_OK)
        return r;
    *data = json_incref(json_object_get(v2, "secrets")); /* the map itself */
    json_decref(v2);
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h1_secrets_set(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                      json_t **data)
{
    enum coffer_err r = coffer_coord_set_secrets(c, req->client_cert, req->client_cert_size, body);
    if (r == COFFER_OK)
        *data = json_null();
    return r;
}

/* ---- marble API handlers (monotonic counters are on both APIs) */

static enum coffer_err h_counter(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                 json_t **data)
{
    const char *name = NULL;
    int64_t value = 0;
    enum coffer_err r;
    if ((r = coffer_json_get_string(body, "$", "name", true, &name)) != COFFER_OK ||
        (r = coffer_json_get_int(body, "$", "value", true, &value)) != COFFER_OK)
        return r;
    if (value < 0)
        return COFFER_FAIL(COFFER_E_JSON, "$.value: a counter value is not negative");
    uint64_t prev;
    if ((r = coffer_coord_monotonic_counter(c, req->client_cert, req->client_cert_size, name, (uint64_t)value,
                                            &prev)) != COFFER_OK)
        return r;
    *data = json_pack("{s:I}", "value", (json_int_t)prev);
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}


static enum coffer_err h_nonce(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                               json_t **data)
{
    (void)req;
    (void)body;
    uint8_t nonce[COFFER_COORD_NONCE_SIZE];
    enum coffer_err r = coffer_coord_nonce(c, nonce);
    if (r != COFFER_OK)
        return r;
    *data = json_pack("{s:o}", "nonce", b64_string(nonce, sizeof(nonce)));
    return *data ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err h_activate(struct coffer_coord *c, const struct coffer_coord_request *req, json_t *body,
                                  json_t **data)
{
    (void)req;
    const char *type = NULL, *uuid = NULL;
    uint8_t *csr = NULL, *ev = NULL, *nonce = NULL;
    size_t csr_n = 0, ev_n = 0, nonce_n = 0;
    enum coffer_err r;
    if ((r = coffer_json_get_string(body, "$", "marbleType", true, &type)) != COFFER_OK ||
        (r = coffer_json_get_string(body, "$", "uuid", true, &uuid)) != COFFER_OK ||
        (r = body_b64(body, "csr", &csr, &csr_n)) != COFFER_OK ||
        (r = body_b64(body, "evidence", &ev, &ev_n)) != COFFER_OK ||
        (r = body_b64(body, "nonce", &nonce, &nonce_n)) != COFFER_OK)
        goto out;
    if (nonce_n != COFFER_COORD_NONCE_SIZE) {
        r = COFFER_FAIL(COFFER_E_JSON, "$.nonce: %zu bytes, a nonce is %d", nonce_n, COFFER_COORD_NONCE_SIZE);
        goto out;
    }
    struct coffer_coord_activation a = {.marble_type = type, .uuid = uuid, .csr_der = csr, .csr_size = csr_n,
                                        .evidence = ev, .evidence_size = ev_n, .nonce = nonce};
    r = coffer_coord_activate(c, &a, data);
out:
    coffer_free(csr);
    coffer_free(ev);
    coffer_free(nonce);
    return r;
}

static const struct route routes[] = {
    {COFFER_COORD_API_CLIENT, "GET", "/api/v2/status", ANY_STATE, false, false, h_status},
    {COFFER_COORD_API_CLIENT, "GET", "/api/v2/manifest", ACTIVE, false, false, h_manifest_get},
    /* in recovery mode, a new manifest starts over (MarbleRun's rule) */
    {COFFER_COORD_API_CLIENT, "POST", "/api/v2/manifest",
     STATE_BIT(COFFER_COORD_ACCEPTING_MANIFEST) | STATE_BIT(COFFER_COORD_RECOVERY), false, true, h_manifest_set},
    {COFFER_COORD_API_CLIENT, "GET", "/api/v2/quote", ~STATE_BIT(COFFER_COORD_UNINITIALIZED) & ANY_STATE, false, false,
     h_quote},
    {COFFER_COORD_API_CLIENT, "GET", "/api/v2/secrets", ACTIVE, true, false, h_secrets_get},
    {COFFER_COORD_API_CLIENT, "POST", "/api/v2/secrets", ACTIVE, true, true, h_secrets_set},
    {COFFER_COORD_API_CLIENT, "GET", "/api/v2/update", ACTIVE, false, false, h_update_log},
    {COFFER_COORD_API_CLIENT, "POST", "/api/v2/update", ACTIVE, true, true, h_update},
    {COFFER_COORD_API_CLIENT, "GET", "/api/v2/update-manifest", ACTIVE, false, false, h_update_get},
    {COFFER_COORD_API_CLIENT, "POST", "/api/v2/update-manifest", ACTIVE, true, true, h_update},
    {COFFER_COORD_API_CLIENT, "POST", "/api/v2/update-cancel", ACTIVE, true, false, h_update_cancel},
    /* the secret and its signature are the authentication */
    {COFFER_COORD_API_CLIENT, "POST", "/api/v2/recover", STATE_BIT(COFFER_COORD_RECOVERY), false, true, h_recover},
    {COFFER_COORD_API_CLIENT, "GET", "/api/v2/recover/public-key", STATE_BIT(COFFER_COORD_RECOVERY), false, false,
     h_recover_key},
    /* feature gates: checked by the core (403 when off) */
    {COFFER_COORD_API_CLIENT, "POST", "/api/v2/sign-quote", ANY_STATE, false, true, h_sign_quote, false, "sgxQuote"},
    {COFFER_COORD_API_CLIENT, "POST", "/api/v2/monotonic-counter", ACTIVE, false, true, h_counter, true, NULL},
    /* MarbleRun's v1 paths (/update-manifest and /update-cancel take and give v2's shapes, as MarbleRun's do) */
    {COFFER_COORD_API_CLIENT, "GET", "/status", ANY_STATE, false, false, h1_status, false, NULL, V1},
    {COFFER_COORD_API_CLIENT, "GET", "/manifest", ANY_STATE, false, false, h1_manifest_get, false, NULL, V1},
    {COFFER_COORD_API_CLIENT, "POST", "/manifest",
     STATE_BIT(COFFER_COORD_ACCEPTING_MANIFEST) | STATE_BIT(COFFER_COORD_RECOVERY), false, false, h1_manifest_set,
     false, NULL, V1_RAW},
    {COFFER_COORD_API_CLIENT, "GET", "/quote", ~STATE_BIT(COFFER_COORD_UNINITIALIZED) & ANY_STATE, false, false,
     h1_quote, false, NULL, V1},
    {COFFER_COORD_API_CLIENT, "POST", "/recover", ANY_STATE, false, false, NULL, false, NULL, V1_GONE},
    {COFFER_COORD_API_CLIENT, "GET", "/update", ACTIVE, false, false, h1_update_log, false, NULL, V1},
    {COFFER_COORD_API_CLIENT, "POST", "/update", ACTIVE, true, false, h1_update, false, NULL, V1_RAW},
    {COFFER_COORD_API_CLIENT, "GET", "/secrets", ACTIVE, true, false, h1_secrets_get, false, NULL, V1},
    {COFFER_COORD_API_CLIENT, "POST", "/secrets", ACTIVE, true, true, h1_secrets_set, false, NULL, V1},
    {COFFER_COORD_API_CLIENT, "GET", "/update-manifest", ACTIVE, false, false, h_update_get, false, NULL, V1},
    {COFFER_COORD_API_CLIENT, "POST", "/update-manifest", ACTIVE, true, true, h_update, false, NULL, V1},
    {COFFER_COORD_API_CLIENT, "POST", "/update-cancel", ACTIVE, true, false, h_update_cancel, false, NULL, V1},
    /* marbles verify the coordinator on the address they know, before activating */
    {COFFER_COORD_API_MARBLE, "GET", "/api/v2/quote", ~STATE_BIT(COFFER_COORD_UNINITIALIZED) & ANY_STATE, false,
     false, h_quote},
    {COFFER_COORD_API_MARBLE, "POST", "/api/v2/marble/nonce", ACTIVE, false, false, h_nonce},
    {COFFER_COORD_API_MARBLE, "POST", "/api/v2/marble/activate", ACTIVE, false, true, h_activate},
    {COFFER_COORD_API_MARBLE, "POST", "/api/v2/monotonic-counter", ACTIVE, false, true, h_counter, true, NULL},
};

/* ---- responses */

static int status_of(enum coffer_err r)
{
    switch (r) {
    case COFFER_E_JSON:
    case COFFER_E_MALFORMED:
    case COFFER_E_INVALID_ARG:
    case COFFER_E_TRUNCATED:
    case COFFER_E_TRAILING:
        return 400;
    case COFFER_E_TOO_LARGE: return 413;
    case COFFER_E_DENIED:
    case COFFER_E_POLICY:
    case COFFER_E_SIGNATURE:
    case COFFER_E_CERT:
    case COFFER_E_EXPIRED:
    case COFFER_E_REVOKED:
    case COFFER_E_AUTH:
    case COFFER_E_BAD_VERSION:
        return 403;
    case COFFER_E_NOT_FOUND: return 404;
    case COFFER_E_STATE: return 409;
    case COFFER_E_UNSUPPORTED: return 501;
    default: return 500;
    }
}

static enum coffer_err envelope(struct coffer_coord_response *resp, int status, const char *kind, json_t *data,
                                const char *message)
{
    json_t *o = json_pack("{s:s,s:o}", "status", kind, "data", data ? data : json_null());
    if (o != NULL && message != NULL)
        json_object_set_new(o, "message", json_string(message));
    if (o == NULL)
        return COFFER_E_NOMEM;
    char *s;
    size_t n;
    enum coffer_err r = coffer_json_dump(o, &s, &n);
    json_decref(o);
    if (r != COFFER_OK)
        return r;
    coffer_buf_reset(&resp->body);
    r = coffer_buf_put(&resp->body, s, n);
    coffer_memzero(s, n); /* the data may hold secrets (GET secrets) */
    coffer_free(s);
    resp->status = status;
    resp->content_type = "application/json";
    return r;
}

/* A "fail" (4xx) or "error" (5xx) envelope; v1 knows only "error". */
static enum coffer_err fail_data(struct coffer_coord_response *resp, int status, bool v1, json_t *data,
                                 const char *fmt, ...) COFFER_PRINTF(5, 6);
static enum coffer_err fail_data(struct coffer_coord_response *resp, int status, bool v1, json_t *data,
                                 const char *fmt, ...)
{
    char msg[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return envelope(resp, status, status >= 500 || v1 ? "error" : "fail", data, msg);
}
#define fail(resp, status, ...) fail_data(resp, status, rt != NULL && rt->v1 != V2, NULL, __VA_ARGS__)

/* see coffer/coordinator.h */
enum coffer_err coffer_coord_handle(struct coffer_coord *c, enum coffer_coord_api api,
                                    const struct coffer_coord_request *req, struct coffer_coord_response *resp)
{
    coffer_buf_init(&resp->body, 0, true);
    const struct route *path_match = NULL;
    const struct route *rt = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (routes[i].api != api || strcmp(routes[i].path, req->path) != 0)
            continue;
        path_match = &routes[i];
        if (strcmp(routes[i].method, req->method) == 0) {
            rt = &routes[i];
            break;
        }
    }
    if (rt == NULL && path_match != NULL)
        return fail_data(resp, 405, path_match->v1 != V2, NULL, "%s is not allowed on %s", req->method, req->path);
    if (rt == NULL) /* outside /api/, the v1 way */
        return fail_data(resp, 404, strncmp(req->path, "/api/", 5) != 0, NULL, "no endpoint %s", req->path);
    if (rt->v1 == V1_GONE)
        return fail(resp, 410, "Recovering the Coordinator using the %s API endpoint has been disabled. Use the "
                    "/api/v2/recover endpoint instead.", req->path);
    enum coffer_coord_state st = coffer_coord_get_state(c);
    if ((rt->states & STATE_BIT(st)) == 0)
        return fail(resp, 409, "%s %s is not allowed now: %s", req->method, req->path, coffer_coord_state_message(st));
    if (rt->user && (req->client_cert == NULL || !coffer_coord_is_user(c, req->client_cert, req->client_cert_size)))
        return fail(resp, 401, "%s needs the client certificate of a user in the manifest", req->path);
    json_t *body = NULL;
    if ((rt->body || rt->v1 == V1_RAW) && req->body_size > COFFER_COORD_BODY_MAX)
        return fail(resp, 413, "request body of %zu bytes is over %u", req->body_size, COFFER_COORD_BODY_MAX);
    if (rt->body) {
        bool parsed = coffer_json_parse(req->body, req->body_size, COFFER_COORD_BODY_MAX, &body) == COFFER_OK;
        if (!parsed || !json_is_object(body)) {
            json_decref(body);
            json_t *d = rt->fail_field ? json_pack("{s:s}", rt->fail_field, "failed to parse JSON data") : NULL;
            if (!parsed)
                return fail_data(resp, 400, rt->v1 != V2, d, "request body: %s", coffer_err_detail());
            return fail_data(resp, 400, rt->v1 != V2, d, "request body: expected a JSON object");
        }
    }
    coffer_err_clear();
    json_t *data = NULL;
    enum coffer_err r = rt->fn(c, req, body, &data);
    json_decref(body);
    if (r == COFFER_OK)
        return envelope(resp, 200, "success", data, NULL);
    if (r == COFFER_E_NOMEM)
        coffer_error("%s %s: out of memory", req->method, req->path);
    char msg[768];
    int status = rt->marble && r == COFFER_E_CERT ? 401 : status_of(r);
    if (rt->fail_field == NULL || status >= 500 || status == 401) { /* data only where MarbleRun gives it (sign-quote) */
        json_decref(data);
        data = NULL;
    }
    return fail_data(resp, status, rt->v1 != V2, data, "%s", coffer_err_format(r, msg, sizeof(msg)));
}
