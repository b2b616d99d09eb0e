/*
 * collateral.c — Intel collateral: TCB Info (v2, v3; SGX and TDX), QE
 * Identity (v2), the TCB signing chain and the CRLs, parsed once and
 * checked for everything that does not depend on time or on a quote.
 *
 * Design: a PCS body is {"<key>":VALUE,"signature":"HEX"} and the
 * signature covers the exact bytes of VALUE. A small bounded scanner finds
 * VALUE's span (brace depth outside strings, honouring escapes) and insists
 * that the body is exactly that shape, so the span that is verified and the
 * object jansson parses are the same value; nothing is ever re-serialised.
 * Then the parsed object is read with the typed JSON helpers into fixed
 * structures; TCB levels are sorted newest first (QVL's order: components,
 * then PCESVN, then TDX components) instead of trusting file order.
 *
 * Invariants: I1 a TCB Info / QE Identity is kept only if its signature by
 * the TCB signing key verifies over its exact bytes. I2 the TCB signing
 * cert and the Root CA CRL are kept only when signed by the pinned root.
 * I3 every status string is one Intel defines; anything else fails.
 * Trusts: the pinned root (roots_data.c), OpenSSL, jansson.
 */
#include "attest_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#define COLLATERAL_MAX_SIZE (1u << 20)
#define MAX_LEVELS 256

#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        if ((r = (x)) != COFFER_OK)                                                                                    \
            return r;                                                                                                  \
    } while (0)

static bool is_ws(uint8_t c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

enum coffer_err coffer_attest__signed_span(const uint8_t *body, size_t size, const char *key, size_t *span_off,
                                           size_t *span_size, uint8_t sig[64])
{
    enum coffer_err r;
    struct coffer_rd rd;
    coffer_rd_init(&rd, body, size);
    char prefix[40];
    int pn = snprintf(prefix, sizeof(prefix), "{\"%s\":", key);
    const uint8_t *p;
    if (pn <= 0 || (size_t)pn >= sizeof(prefix))
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "signed span: key too long");
    if (coffer_rd_bytes(&rd, (size_t)pn, &p) != COFFER_OK || memcmp(p, prefix, (size_t)pn) != 0)
        return COFFER_FAIL(COFFER_E_JSON, "%s: body does not start with {\"%s\":", key, key);
    size_t start = rd.pos;
    int depth = 0;
    bool in_str = false, esc = false;
    for (;;) {
        uint8_t c;
        if (coffer_rd_u8(&rd, &c) != COFFER_OK)
            return COFFER_FAIL(COFFER_E_JSON, "%s: value never ends", key);
        if (rd.pos == start + 1 && c != '{')
            return COFFER_FAIL(COFFER_E_JSON, "%s: value is not an object", key);
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0)
                break;
            if (depth < 0)
                return COFFER_FAIL(COFFER_E_JSON, "%s: unbalanced brackets", key);
        }
        if (depth > 64)
            return COFFER_FAIL(COFFER_E_JSON, "%s: nested too deep", key);
    }
    *span_off = start;
    *span_size = rd.pos - start;
    static const char sig_key[] = ",\"signature\":\"";
    if (coffer_rd_bytes(&rd, sizeof(sig_key) - 1, &p) != COFFER_OK || memcmp(p, sig_key, sizeof(sig_key) - 1) != 0)
        return COFFER_FAIL(COFFER_E_JSON, "%s: value is not followed by ,\"signature\":\"", key);
    const uint8_t *hex;
    TRY(coffer_rd_bytes(&rd, 128, &hex));
    if (coffer_hex_decode((const char *)hex, 128, sig, 64) != COFFER_OK)
        return COFFER_FAIL(COFFER_E_JSON, "%s: signature is not 128 hex digits", key);
    if (coffer_rd_bytes(&rd, 2, &p) != COFFER_OK || p[0] != '"' || p[1] != '}')
        return COFFER_FAIL(COFFER_E_JSON, "%s: body does not end after the signature", key);
    while (coffer_rd_left(&rd) > 0) {
        uint8_t c;
        TRY(coffer_rd_u8(&rd, &c));
        if (!is_ws(c))
            return COFFER_FAIL(COFFER_E_TRAILING, "%s: bytes after the body", key);
    }
    return COFFER_OK;
}

static enum coffer_err hex_field(const json_t *o, const char *path, const char *key, uint8_t *out, size_t n)
{
    enum coffer_err r;
    const char *s;
    TRY(coffer_json_get_string(o, path, key, true, &s));
    if (strlen(s) != 2 * n || coffer_hex_decode(s, 2 * n, out, n) != COFFER_OK)
        return COFFER_FAIL(COFFER_E_JSON, "%s.%s: want %zu hex digits", path, key, 2 * n);
    return COFFER_OK;
}

static enum coffer_err date_field(const json_t *o, const char *path, const char *key, time_t *out)
{
    enum coffer_err r;
    const char *s;
    TRY(coffer_json_get_string(o, path, key, true, &s));
    if (coffer_attest_time_parse(s, out) != COFFER_OK)
        return COFFER_FAIL(COFFER_E_JSON, "%s.%s: not an ISO 8601 UTC time", path, key);
    return COFFER_OK;
}

static enum coffer_err int_field(const json_t *o, const char *path, const char *key, int64_t max, int64_t *out)
{
    enum coffer_err r;
    TRY(coffer_json_get_int(o, path, key, true, out));
    if (*out < 0 || *out > max)
        return COFFER_FAIL(COFFER_E_JSON, "%s.%s: %lld out of range 0..%lld", path, key, (long long)*out,
                           (long long)max);
    return COFFER_OK;
}

static enum coffer_err status_and_advisories(const json_t *lvl, const char *path, enum coffer_attest_tcb *status,
                                             size_t *count, char adv[][COFFER_ATTEST_ADVISORY_SIZE])
{
    enum coffer_err r;
    const char *s;
    TRY(coffer_json_get_string(lvl, path, "tcbStatus", true, &s));
    if (coffer_attest_tcb_parse(s, status) != COFFER_OK || *status == COFFER_ATTEST_TCB_NONE ||
        *status == COFFER_ATTEST_TCB_NOT_SUPPORTED || *status == COFFER_ATTEST_TCB_TD_RELAUNCH_ADVISED ||
        *status == COFFER_ATTEST_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED)
        return COFFER_FAIL(COFFER_E_JSON, "%s.tcbStatus: unrecognised status \"%.40s\"", path, s);
    time_t d;
    TRY(date_field(lvl, path, "tcbDate", &d));
    json_t *a = NULL;
    TRY(coffer_json_get_array(lvl, path, "advisoryIDs", false, &a));
    *count = 0;
    if (a == NULL)
        return COFFER_OK;
    if (json_array_size(a) > COFFER_ATTEST_MAX_ADVISORIES)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "%s.advisoryIDs: more than %d", path, COFFER_ATTEST_MAX_ADVISORIES);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        const char *id = json_string_value(v);
        if (id == NULL || strlen(id) == 0 || strlen(id) >= COFFER_ATTEST_ADVISORY_SIZE)
            return COFFER_FAIL(COFFER_E_JSON, "%s.advisoryIDs[%zu]: not a short string", path, i);
        snprintf(adv[i], COFFER_ATTEST_ADVISORY_SIZE, "%s", id);
    }
    *count = json_array_size(a);
    return COFFER_OK;
}

/* 16 components as an array [{"svn":n,...}] (v3). */
static enum coffer_err comp_array(const json_t *tcb, const char *path, const char *key, uint8_t out[16])
{
    enum coffer_err r;
    json_t *a;
    TRY(coffer_json_get_array(tcb, path, key, true, &a));
    if (json_array_size(a) != 16)
        return COFFER_FAIL(COFFER_E_JSON, "%s.%s: want 16 components", path, key);
    for (size_t i = 0; i < 16; i++) {
        json_t *c = json_array_get(a, i);
        int64_t v;
        if (!json_is_object(c))
            return COFFER_FAIL(COFFER_E_JSON, "%s.%s[%zu]: not an object", path, key, i);
        TRY(int_field(c, path, "svn", 255, &v));
        out[i] = (uint8_t)v;
    }
    return COFFER_OK;
}

static int level_cmp(const void *a, const void *b)
{
    const struct tcb_level *x = a, *y = b;
    int c = memcmp(x->sgx, y->sgx, 16);
    if (c == 0)
        c = (int)x->pcesvn - (int)y->pcesvn;
    if (c == 0)
        c = memcmp(x->tdx, y->tdx, 16);
    return -c; /* descending */
}

static int qe_level_cmp(const void *a, const void *b)
{
    const struct qe_level *x = a, *y = b;
    return (int)y->isvsvn - (int)x->isvsvn;
}

static enum coffer_err qe_levels_parse(const json_t *o, const char *path, struct qe_level **out, size_t *count)
{
    enum coffer_err r;
    json_t *a;
    TRY(coffer_json_get_array(o, path, "tcbLevels", true, &a));
    size_t n = json_array_size(a);
    if (n == 0 || n > MAX_LEVELS)
        return COFFER_FAIL(COFFER_E_JSON, "%s.tcbLevels: %zu levels", path, n);
    struct qe_level *lv = coffer_calloc(n, sizeof(*lv));
    if (lv == NULL)
        return COFFER_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(a, i), *tcb;
        int64_t v;
        if (!json_is_object(l) || (r = coffer_json_get_object(l, path, "tcb", true, &tcb)) != COFFER_OK ||
            (r = int_field(tcb, path, "isvsvn", 0xffff, &v)) != COFFER_OK ||
            (r = status_and_advisories(l, path, &lv[i].status, &lv[i].advisory_count, lv[i].advisories)) !=
                COFFER_OK) {
            coffer_free(lv);
            return r != COFFER_OK ? r : COFFER_FAIL(COFFER_E_JSON, "%s.tcbLevels[%zu]: not an object", path, i);
        }
        lv[i].isvsvn = (uint16_t)v;
    }
    qsort(lv, n, sizeof(*lv), qe_level_cmp);
    *out = lv;
    *count = n;
    return COFFER_OK;
}

static enum coffer_err tcb_levels_parse(const json_t *ti, bool v2, bool tdx, struct coffer_attest_collateral *c)
{
    enum coffer_err r;
    json_t *a;
    const char *path = "$.tcbInfo.tcbLevels";
    TRY(coffer_json_get_array(ti, "$.tcbInfo", "tcbLevels", true, &a));
    size_t n = json_array_size(a);
    if (n == 0 || n > MAX_LEVELS)
        return COFFER_FAIL(COFFER_E_JSON, "%s: %zu levels", path, n);
    c->levels = coffer_calloc(n, sizeof(*c->levels));
    if (c->levels == NULL)
        return COFFER_E_NOMEM;
    c->level_count = n;
    for (size_t i = 0; i < n; i++) {
        struct tcb_level *lv = &c->levels[i];
        json_t *l = json_array_get(a, i), *tcb;
        int64_t v;
        if (!json_is_object(l))
            return COFFER_FAIL(COFFER_E_JSON, "%s[%zu]: not an object", path, i);
        TRY(coffer_json_get_object(l, path, "tcb", true, &tcb));
        if (v2) {
            for (int k = 0; k < 16; k++) {
                char name[24];
                snprintf(name, sizeof(name), "sgxtcbcomp%02dsvn", k + 1);
                TRY(int_field(tcb, path, name, 255, &v));
                lv->sgx[k] = (uint8_t)v;
            }
        } else {
            TRY(comp_array(tcb, path, "sgxtcbcomponents", lv->sgx));
        }
        TRY(int_field(tcb, path, "pcesvn", 0xffff, &v));
        lv->pcesvn = (uint16_t)v;
        if (tdx) {
            TRY(comp_array(tcb, path, "tdxtcbcomponents", lv->tdx));
            lv->has_tdx = true;
        }
        TRY(status_and_advisories(l, path, &lv->status, &lv->advisory_count, lv->advisories));
    }
    qsort(c->levels, n, sizeof(*c->levels), level_cmp);
    return COFFER_OK;
}

static enum coffer_err tdx_modules_parse(const json_t *ti, struct coffer_attest_collateral *c)
{
    enum coffer_err r;
    json_t *m, *ids = NULL;
    TRY(coffer_json_get_object(ti, "$.tcbInfo", "tdxModule", true, &m));
    TRY(hex_field(m, "$.tcbInfo.tdxModule", "mrsigner", c->tdx_mrsigner, 48));
    TRY(hex_field(m, "$.tcbInfo.tdxModule", "attributes", c->tdx_attributes, 8));
    TRY(hex_field(m, "$.tcbInfo.tdxModule", "attributesMask", c->tdx_attributes_mask, 8));
    c->has_tdx_module = true;
    TRY(coffer_json_get_array(ti, "$.tcbInfo", "tdxModuleIdentities", false, &ids));
    if (ids == NULL)
        return COFFER_OK;
    if (json_array_size(ids) > TDX_MODULE_MAX)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "$.tcbInfo.tdxModuleIdentities: more than %d", TDX_MODULE_MAX);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        json_t *e = json_array_get(ids, i);
        struct tdx_module_identity *mi = &c->modules[i];
        const char *path = "$.tcbInfo.tdxModuleIdentities[]", *id;
        if (!json_is_object(e))
            return COFFER_FAIL(COFFER_E_JSON, "%s: not an object", path);
        TRY(coffer_json_get_string(e, path, "id", true, &id));
        if (strlen(id) >= sizeof(mi->id))
            return COFFER_FAIL(COFFER_E_JSON, "%s.id: too long", path);
        snprintf(mi->id, sizeof(mi->id), "%s", id);
        TRY(hex_field(e, path, "mrsigner", mi->mrsigner, 48));
        TRY(hex_field(e, path, "attributes", mi->attributes, 8));
        TRY(hex_field(e, path, "attributesMask", mi->attributes_mask, 8));
        c->module_count = i + 1;
        TRY(qe_levels_parse(e, path, &mi->levels, &mi->level_count));
    }
    return COFFER_OK;
}

/* Find the span, check the signature, parse the JSON; *value borrows *doc. */
static enum coffer_err signed_json(const uint8_t *body, size_t size, const char *key, EVP_PKEY *signer, json_t **doc,
                                   json_t **value)
{
    enum coffer_err r;
    size_t off, n;
    uint8_t sig[64];
    *doc = NULL;
    if (size > COLLATERAL_MAX_SIZE)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "%s: %zu bytes", key, size);
    TRY(coffer_attest__signed_span(body, size, key, &off, &n, sig));
    if (signer != NULL) {
        struct coffer_rd rd;
        const uint8_t *span;
        coffer_rd_init(&rd, body, size);
        TRY(coffer_rd_skip(&rd, off));
        TRY(coffer_rd_bytes(&rd, n, &span));
        r = coffer_attest__ecdsa_verify(signer, "SHA256", sig, 32, false, span, n);
        if (r != COFFER_OK)
            return COFFER_FAIL(r, "%s: signature by the TCB signing key does not verify over the signed value", key);
    }
    TRY(coffer_json_parse(body, size, COLLATERAL_MAX_SIZE, doc));
    if ((r = coffer_json_get_object(*doc, "$", key, true, value)) != COFFER_OK) {
        json_decref(*doc);
        *doc = NULL;
    }
    return r;
}

static enum coffer_err tcb_info_fields(const json_t *ti, struct coffer_attest_collateral *c)
{
    enum coffer_err r;
    const char *path = "$.tcbInfo", *id = NULL;
    int64_t v;
    TRY(int_field(ti, path, "version", 100, &v));
    if (v != 2 && v != 3)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "%s.version %lld (coffer reads 2 and 3)", path, (long long)v);
    c->tcb_version = (int)v;
    TRY(coffer_json_get_string(ti, path, "id", v == 3, &id));
    if (v == 2)
        id = "SGX";
    if (strcmp(id, "SGX") != 0 && strcmp(id, "TDX") != 0)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "%s.id \"%.16s\"", path, id);
    snprintf(c->tcb_id, sizeof(c->tcb_id), "%s", id);
    TRY(date_field(ti, path, "issueDate", &c->tcb_issue));
    TRY(date_field(ti, path, "nextUpdate", &c->tcb_next));
    TRY(hex_field(ti, path, "fmspc", c->fmspc, 6));
    TRY(hex_field(ti, path, "pceId", c->pceid, 2));
    TRY(int_field(ti, path, "tcbEvaluationDataNumber", INT32_MAX, &c->tcb_eval_number));
    if (v == 3) {
        TRY(int_field(ti, path, "tcbType", 100, &v));
        if (v != 0)
            return COFFER_FAIL(COFFER_E_UNSUPPORTED, "%s.tcbType %lld", path, (long long)v);
    }
    bool tdx = strcmp(c->tcb_id, "TDX") == 0;
    if (tdx)
        TRY(tdx_modules_parse(ti, c));
    TRY(tcb_levels_parse(ti, c->tcb_version == 2, tdx, c));
    c->has_tcb_info = true;
    return COFFER_OK;
}

enum coffer_err coffer_attest__tcb_info_parse(const uint8_t *body, size_t size, EVP_PKEY *signer,
                                              struct coffer_attest_collateral *c)
{
    enum coffer_err r;
    json_t *doc, *ti;
    TRY(signed_json(body, size, "tcbInfo", signer, &doc, &ti));
    r = tcb_info_fields(ti, c);
    json_decref(doc);
    return r;
}

static enum coffer_err qe_identity_fields(const json_t *qi, struct coffer_attest_collateral *c)
{
    enum coffer_err r;
    const char *path = "$.enclaveIdentity", *id;
    int64_t v;
    uint8_t b4[4];
    TRY(int_field(qi, path, "version", 100, &v));
    if (v != 2)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "%s.version %lld (coffer reads 2)", path, (long long)v);
    TRY(coffer_json_get_string(qi, path, "id", true, &id));
    if (strcmp(id, "QE") != 0 && strcmp(id, "TD_QE") != 0)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "%s.id \"%.16s\" (want QE or TD_QE)", path, id);
    snprintf(c->qe_id, sizeof(c->qe_id), "%s", id);
    TRY(date_field(qi, path, "issueDate", &c->qe_issue));
    TRY(date_field(qi, path, "nextUpdate", &c->qe_next));
    TRY(hex_field(qi, path, "miscselect", b4, 4));
    c->qe_miscselect = (uint32_t)b4[0] << 24 | (uint32_t)b4[1] << 16 | (uint32_t)b4[2] << 8 | b4[3];
    TRY(hex_field(qi, path, "miscselectMask", b4, 4));
    c->qe_miscselect_mask = (uint32_t)b4[0] << 24 | (uint32_t)b4[1] << 16 | (uint32_t)b4[2] << 8 | b4[3];
    TRY(hex_field(qi, path, "attributes", c->qe_attributes, 16));
    TRY(hex_field(qi, path, "attributesMask", c->qe_attributes_mask, 16));
    TRY(hex_field(qi, path, "mrsigner", c->qe_mrsigner, 32));
    TRY(int_field(qi, path, "isvprodid", 0xffff, &v));
    c->qe_isvprodid = (uint16_t)v;
    TRY(qe_levels_parse(qi, path, &c->qe_levels, &c->qe_level_count));
    c->has_qe_identity = true;
    return COFFER_OK;
}

enum coffer_err coffer_attest__qe_identity_parse(const uint8_t *body, size_t size, EVP_PKEY *signer,
                                                 struct coffer_attest_collateral *c)
{
    enum coffer_err r;
    json_t *doc, *qi;
    TRY(signed_json(body, size, "enclaveIdentity", signer, &doc, &qi));
    r = qe_identity_fields(qi, c);
    json_decref(doc);
    return r;
}

void coffer_attest__collateral_clear(struct coffer_attest_collateral *c)
{
    coffer_free(c->levels);
    coffer_free(c->qe_levels);
    for (size_t i = 0; i < TDX_MODULE_MAX; i++)
        coffer_free(c->modules[i].levels);
    X509_free(c->tcb_signer);
    X509_CRL_free(c->root_crl);
    X509_CRL_free(c->pck_crl);
    X509_free(c->pck_crl_issuer);
    memset(c, 0, sizeof(*c));
}

void coffer_attest_collateral_free(struct coffer_attest_collateral *c)
{
    if (c == NULL)
        return;
    coffer_attest__collateral_clear(c);
    coffer_free(c);
}

static enum coffer_err fail_step(enum coffer_attest_step *fs, enum coffer_attest_step step, enum coffer_err err)
{
    if (fs != NULL)
        *fs = step;
    return err;
}

/* The TCB signing chain: exactly [signer, pinned root]; signer signed by the root. */
static enum coffer_err tcb_signer_parse(const uint8_t *pem, size_t size, X509 **out)
{
    enum coffer_err r;
    STACK_OF(X509) *sk;
    *out = NULL;
    TRY(coffer_attest__pem_certs(pem, size, 2, false, &sk));
    X509 *root = coffer_attest__intel_root();
    X509 *signer = sk_X509_value(sk, 0);
    char cn[64];
    coffer_attest__cert_cn(signer, cn, sizeof(cn));
    if (root == NULL)
        r = COFFER_FAIL(COFFER_E_INTERNAL, "the pinned Intel root does not parse");
    else if (X509_cmp(sk_X509_value(sk, 1), root) != 0)
        r = COFFER_FAIL(COFFER_E_CERT, "TCB signing chain: its root is not the pinned Intel SGX Root CA");
    else if (strcmp(cn, "Intel SGX TCB Signing") != 0)
        r = COFFER_FAIL(COFFER_E_CERT, "TCB signing chain: leaf CN \"%s\", want \"Intel SGX TCB Signing\"", cn);
    else if (X509_NAME_cmp(X509_get_issuer_name(signer), X509_get_subject_name(root)) != 0 ||
             X509_verify(signer, X509_get0_pubkey(root)) != 1)
        r = COFFER_FAIL(COFFER_E_CERT, "TCB signing chain: the TCB signing cert is not signed by the pinned root");
    else {
        X509_up_ref(signer);
        *out = signer;
        r = COFFER_OK;
    }
    sk_X509_pop_free(sk, X509_free);
    ERR_clear_error();
    return r;
}

/* pck_crl_chain.pem: [PCK CA, pinned root]; the CA signed by the root and
 * the PCK CRL signed by the CA. Kept so verification need not re-check the
 * CRL's signature for quotes under this same CA. */
static enum coffer_err pck_crl_issuer(const uint8_t *pem, size_t size, struct coffer_attest_collateral *c)
{
    enum coffer_err r;
    STACK_OF(X509) *sk;
    TRY(coffer_attest__pem_certs(pem, size, 2, false, &sk));
    X509 *root = coffer_attest__intel_root(), *ca = sk_X509_value(sk, 0);
    if (root == NULL || X509_cmp(sk_X509_value(sk, 1), root) != 0)
        r = COFFER_FAIL(COFFER_E_CERT, "PCK CRL chain: its root is not the pinned Intel SGX Root CA");
    else if (X509_NAME_cmp(X509_get_issuer_name(ca), X509_get_subject_name(root)) != 0 ||
             X509_verify(ca, X509_get0_pubkey(root)) != 1)
        r = COFFER_FAIL(COFFER_E_CERT, "PCK CRL chain: the PCK CA is not signed by the pinned root");
    else if (X509_NAME_cmp(X509_CRL_get_issuer(c->pck_crl), X509_get_subject_name(ca)) != 0 ||
             X509_CRL_verify(c->pck_crl, X509_get0_pubkey(ca)) != 1)
        r = COFFER_FAIL(COFFER_E_SIGNATURE, "PCK CRL: not signed by the PCK CA of its issuer chain");
    else {
        X509_up_ref(ca);
        c->pck_crl_issuer = ca;
        r = COFFER_OK;
    }
    sk_X509_pop_free(sk, X509_free);
    ERR_clear_error();
    return r;
}

enum coffer_err coffer_attest_collateral_parse(const struct coffer_attest_collateral_bytes *in,
                                               struct coffer_attest_collateral **out,
                                               enum coffer_attest_step *failed_step)
{
    enum coffer_err r;
    *out = NULL;
    if (failed_step != NULL)
        *failed_step = COFFER_ATTEST_STEP_NONE;
    if (in == NULL)
        return fail_step(failed_step, COFFER_ATTEST_STEP_ARGS, COFFER_FAIL(COFFER_E_INVALID_ARG, "no collateral"));
    struct coffer_attest_collateral *c = coffer_calloc(1, sizeof(*c));
    if (c == NULL)
        return COFFER_E_NOMEM;
    enum coffer_attest_step step = COFFER_ATTEST_STEP_TCB_SIGNING_CHAIN;
    if ((in->tcb_info != NULL || in->qe_identity != NULL) && in->tcb_signing_chain == NULL) {
        r = COFFER_FAIL(COFFER_E_NOT_FOUND, "collateral: TCB Info / QE Identity without the TCB signing chain");
        goto fail;
    }
    if (in->tcb_signing_chain != NULL &&
        (r = tcb_signer_parse(in->tcb_signing_chain, in->tcb_signing_chain_size, &c->tcb_signer)) != COFFER_OK)
        goto fail;
    EVP_PKEY *signer = c->tcb_signer != NULL ? X509_get0_pubkey(c->tcb_signer) : NULL;
    if (in->tcb_info != NULL) {
        step = COFFER_ATTEST_STEP_TCB_INFO_SIGNATURE;
        if ((r = coffer_attest__tcb_info_parse(in->tcb_info, in->tcb_info_size, signer, c)) != COFFER_OK)
            goto fail;
    }
    if (in->qe_identity != NULL) {
        step = COFFER_ATTEST_STEP_QE_IDENTITY_SIGNATURE;
        if ((r = coffer_attest__qe_identity_parse(in->qe_identity, in->qe_identity_size, signer, c)) != COFFER_OK)
            goto fail;
    }
    step = COFFER_ATTEST_STEP_PCK_REVOCATION;
    if (in->root_ca_crl != NULL) {
        X509 *root = coffer_attest__intel_root();
        if ((r = coffer_attest__crl_parse(in->root_ca_crl, in->root_ca_crl_size, &c->root_crl)) != COFFER_OK)
            goto fail;
        if (root == NULL || X509_NAME_cmp(X509_CRL_get_issuer(c->root_crl), X509_get_subject_name(root)) != 0 ||
            X509_CRL_verify(c->root_crl, X509_get0_pubkey(root)) != 1) {
            ERR_clear_error();
            r = COFFER_FAIL(COFFER_E_SIGNATURE, "Root CA CRL: not signed by the pinned Intel SGX Root CA");
            goto fail;
        }
    }
    if (in->pck_crl != NULL &&
        (r = coffer_attest__crl_parse(in->pck_crl, in->pck_crl_size, &c->pck_crl)) != COFFER_OK)
        goto fail;
    if (in->pck_crl != NULL && in->pck_crl_chain != NULL &&
        (r = pck_crl_issuer(in->pck_crl_chain, in->pck_crl_chain_size, c)) != COFFER_OK)
        goto fail;
    *out = c;
    return COFFER_OK;
fail:
    coffer_attest_collateral_free(c);
    return fail_step(failed_step, step, r);
}

static enum coffer_err read_opt(const char *dir, const char *name, uint8_t **out, size_t *size)
{
    char path[4096];
    *out = NULL;
    *size = 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return COFFER_FAIL(COFFER_E_PATH_TOO_LONG, "collateral folder path");
    enum coffer_err r = coffer_file_read_all(path, COLLATERAL_MAX_SIZE, out, size);
    if (r == COFFER_E_NOT_FOUND) {
        coffer_err_clear();
        return COFFER_OK;
    }
    if (r != COFFER_OK)
        coffer_err_context("collateral %s", name);
    return r;
}

enum coffer_err coffer_attest_collateral_load_dir(const char *dir, struct coffer_attest_collateral **out,
                                                  enum coffer_attest_step *failed_step)
{
    static const char *names[6] = {"tcb_info.json", "qe_identity.json", "tcb_signing_chain.pem", "pck_crl.der",
                                   "root_ca_crl.der", "pck_crl_chain.pem"};
    uint8_t *d[6] = {0};
    size_t n[6] = {0};
    enum coffer_err r = COFFER_OK;
    *out = NULL;
    if (failed_step != NULL)
        *failed_step = COFFER_ATTEST_STEP_COLLATERAL;
    for (int i = 0; i < 6 && r == COFFER_OK; i++)
        r = read_opt(dir, names[i], &d[i], &n[i]);
    if (r == COFFER_OK) {
        struct coffer_attest_collateral_bytes b = {
            .tcb_info = d[0], .tcb_info_size = n[0], .qe_identity = d[1], .qe_identity_size = n[1],
            .tcb_signing_chain = d[2], .tcb_signing_chain_size = n[2], .pck_crl = d[3], .pck_crl_size = n[3],
            .root_ca_crl = d[4], .root_ca_crl_size = n[4], .pck_crl_chain = d[5], .pck_crl_chain_size = n[5]};
        r = coffer_attest_collateral_parse(&b, out, failed_step);
    }
    for (int i = 0; i < 6; i++)
        coffer_free(d[i]);
    return r;
}
