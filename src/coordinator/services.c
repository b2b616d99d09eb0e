/*
 * services.c — what the coordinator offers after activation, behind
 * MarbleRun's feature gates: monotonic counters for marbles (rollback
 * protection) and signing verified SGX quotes (the coordinator as a quote
 * verifier).
 *
 * Design: counters live in the state under cfg as a JSON object keyed by
 * base64(marble type):base64(UUID):base64(name), MarbleRun's unambiguous
 * id; a raise takes cfg exclusively, appends an audit line, waits for it
 * and seals the state (the same path as every other change), so an
 * answered raise survives kill -9. A counter never goes down: a smaller
 * value leaves it and answers its current value.
 *
 * Trusts: the TLS layer for possession of the client certificate's key;
 * the PKI for what a marble certificate is; attest/ (through the verify
 * callback) for quotes.
 */
#include <string.h>

#include "coord_int.h"

static enum coffer_err gate_off(const char *gate)
{
    return COFFER_FAIL(COFFER_E_DENIED, "%s feature is not enabled in the manifest (Config.FeatureGates)", gate);
}

static char *counter_id(const char *type, const char *uuid, const char *name)
{
    const char *parts[3] = {type, uuid, name};
    size_t n = 0;
    for (int i = 0; i < 3; i++)
        n += coffer_base64_encoded_len(strlen(parts[i])) + 1;
    char *id = coffer_malloc(n + 1);
    if (id == NULL)
        return NULL;
    size_t w = 0;
    for (int i = 0; i < 3; i++) {
        if (i > 0)
            id[w++] = ':';
        coffer_base64_encode((const uint8_t *)parts[i], strlen(parts[i]), id + w);
        w += strlen(id + w);
    }
    id[w] = '\0';
    return id;
}

enum coffer_err coffer_coord_monotonic_counter(struct coffer_coord *c, const uint8_t *marble_cert,
                                               size_t marble_cert_size, const char *name, uint64_t value,
                                               uint64_t *previous)
{
    *previous = 0;
    pthread_rwlock_wrlock(&c->cfg);
    enum coffer_err r = COFFER_OK;
    char *type = NULL, *uuid = NULL, *id = NULL;
    if (c->state != COFFER_COORD_ACCEPTING_MARBLES || c->manifest == NULL) {
        r = COFFER_FAIL(COFFER_E_STATE, "the coordinator is not accepting marbles");
        goto out;
    }
    if (!c->manifest->gate_monotonic_counter) {
        r = gate_off("MonotonicCounter");
        goto out;
    }
    if (marble_cert == NULL) {
        r = COFFER_FAIL(COFFER_E_CERT, "monotonic counters need the marble's certificate as TLS client certificate");
        goto out;
    }
    if ((r = coffer_pki_verify_marble(c->pki, marble_cert, marble_cert_size, &type, &uuid)) != COFFER_OK)
        goto out;
    size_t nl = name ? strlen(name) : 0;
    if (nl == 0 || nl > 256) {
        r = COFFER_FAIL(COFFER_E_JSON, "$.name: a counter name is 1 to 256 bytes");
        goto out;
    }
    if (value > (uint64_t)INT64_MAX) {
        r = COFFER_FAIL(COFFER_E_JSON, "$.value: at most %lld", (long long)INT64_MAX);
        goto out;
    }
    if ((id = counter_id(type, uuid, name)) == NULL) {
        r = COFFER_E_NOMEM;
        goto out;
    }
    json_t *cur = json_object_get(c->counters, id);
    *previous = cur != NULL ? (uint64_t)json_integer_value(cur) : 0;
    if (value <= *previous)
        goto out; /* never lowered, and 0 is every counter's start: nothing to write */
    json_t *fields = json_pack("{s:s,s:s,s:s,s:I}", "marbleType", type, "uuid", uuid, "name", name, "value",
                               (json_int_t)value);
    if (fields == NULL) {
        r = COFFER_E_NOMEM;
        goto out;
    }
    if (json_object_set_new(c->counters, id, json_integer((json_int_t)value)) != 0) {
        json_decref(fields);
        r = COFFER_E_NOMEM;
        goto out;
    }
    if ((r = coord_log(c, "monotonic counter", fields)) != COFFER_OK || (r = coord_commit(c)) != COFFER_OK) {
        /* not durable: not raised (a broken log refuses every later change anyway) */
        if (cur != NULL)
            json_object_set_new(c->counters, id, json_integer((json_int_t)*previous));
        else
            json_object_del(c->counters, id);
    }
out:
    pthread_rwlock_unlock(&c->cfg);
    coffer_free(type);
    coffer_free(uuid);
    coffer_free(id);
    return r;
}

enum coffer_err coffer_coord_sign_quote(struct coffer_coord *c, const uint8_t *quote, size_t size, uint8_t **sig,
                                        size_t *sig_size, char tcb_status[48])
{
    *sig = NULL;
    *sig_size = 0;
    tcb_status[0] = '\0';
    pthread_rwlock_rdlock(&c->cfg);
    enum coffer_err r = COFFER_OK;
    char *msg = NULL;
    json_t *claims = NULL;
    if (c->manifest == NULL || !c->manifest->gate_sign_quote) {
        r = gate_off("SignQuoteEndpoint");
        goto out;
    }
    if (size == 0 || size > (1u << 20)) {
        r = COFFER_FAIL(COFFER_E_JSON, "$.sgxQuote: %zu bytes", size);
        goto out;
    }
    /* Gramine and Occlum send raw quotes, EGo an OpenEnclave header first:
     * u32 version 1, u32 type 2 (SGX remote), u64 length of what follows */
    const uint8_t *q = quote;
    size_t qn = size;
    struct coffer_rd rd;
    uint32_t version = 0, type = 0;
    uint64_t len = 0;
    coffer_rd_init(&rd, quote, size);
    if (coffer_rd_u32le(&rd, &version) == COFFER_OK && coffer_rd_u32le(&rd, &type) == COFFER_OK &&
        coffer_rd_u64le(&rd, &len) == COFFER_OK && version == 1 && type == 2 && len == coffer_rd_left(&rd) && len > 0 &&
        coffer_rd_bytes(&rd, (size_t)len, &q) == COFFER_OK)
        qn = (size_t)len;
    else
        q = quote;
    coffer_err_clear();
    char buf[4096] = "";
    uint8_t no_binding[64] = {0};
    if ((r = c->verify(c->verify_arg, q, qn, NULL, no_binding, buf, sizeof(buf))) != COFFER_OK) {
        char why[600];
        r = COFFER_FAIL(COFFER_E_POLICY, "quote verification failed: %s", coffer_err_format(r, why, sizeof(why)));
        goto out;
    }
    const char *tcb = NULL;
    if (coffer_json_parse(buf, strlen(buf), sizeof(buf), &claims) != COFFER_OK ||
        coffer_json_get_string(claims, "$", "tcb_status", true, &tcb) != COFFER_OK || strlen(tcb) >= 48) {
        r = COFFER_FAIL(COFFER_E_INTERNAL, "the verifier gave no TCB status");
        goto out;
    }
    snprintf(tcb_status, 48, "%s", tcb);
    size_t b64n = coffer_base64_encoded_len(size), tl = strlen(tcb_status);
    if ((msg = coffer_malloc(b64n + tl + 1)) == NULL) {
        r = COFFER_E_NOMEM;
        goto out;
    }
    coffer_base64_encode(quote, size, msg); /* the quote as sent, header included, as MarbleRun signs it */
    memcpy(msg + b64n, tcb_status, tl);
    r = coffer_pki_sign_root(c->pki, msg, b64n + tl, sig, sig_size);
out:
    pthread_rwlock_unlock(&c->cfg);
    json_decref(claims);
    coffer_free(msg);
    return r;
}
