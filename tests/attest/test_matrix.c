/* test_matrix.c — the Intel TCB status matrix on a test-only Intel-like PKI
 * that this test builds with OpenSSL: root, PCK CA, PCK leaf with a
 * hand-built SGX extension, TCB signing cert, CRLs, signed TCB Info and QE
 * Identity, and SGX v3 quotes. The test root is pinned through the
 * COFFER_TESTING hook. Covers every platform TCB status, QE status
 * convergence, TCB not supported, revoked PCK and PCK CA, expired CRL,
 * wrong FMSPC / PCE-ID, QE identity mismatch, and the time limits. */
#include "attest_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define T0 1751328000 /* 2025-07-01: verification time */
#define DAY 86400

static const uint8_t FMSPC[6] = {0x00, 0x90, 0x6e, 0xa1, 0x00, 0x00};
static const uint8_t PCK_TCB[16] = {5, 5, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0};
#define PCK_PCESVN 11
#define QE_ISVSVN 8

struct pki {
    EVP_PKEY *root_key, *ca_key, *leaf_key, *tcb_key, *att_key;
    X509 *root, *ca, *leaf, *tcb;
};
static struct pki K;

static EVP_PKEY *p256(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *val)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, val);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* DER helpers for the SGX extension */
static size_t der(uint8_t *out, uint8_t tag, const uint8_t *body, size_t n)
{
    size_t o = 0;
    out[o++] = tag;
    if (n < 128)
        out[o++] = (uint8_t)n;
    else {
        out[o++] = 0x82;
        out[o++] = (uint8_t)(n >> 8);
        out[o++] = (uint8_t)n;
    }
    memcpy(out + o, body, n);
    return o + n;
}

static size_t sgx_elem(uint8_t *out, const uint8_t *suffix, size_t sn, uint8_t vtag, const uint8_t *v, size_t vn)
{
    static const uint8_t base[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};
    uint8_t oid[16], inner[1024];
    memcpy(oid, base, sizeof(base));
    memcpy(oid + sizeof(base), suffix, sn);
    size_t o = der(inner, 0x06, oid, sizeof(base) + sn);
    o += der(inner + o, vtag, v, vn);
    return der(out, 0x30, inner, o);
}

static size_t sgx_extension(uint8_t *out, const uint8_t fmspc[6], const uint8_t pceid[2])
{
    uint8_t body[1024], tcb[1024];
    size_t o = 0, t = 0;
    uint8_t ppid[16] = {1, 2, 3};
    o += sgx_elem(body + o, (const uint8_t[]){1}, 1, 0x04, ppid, 16);
    for (int i = 1; i <= 16; i++) {
        uint8_t v[2] = {0, PCK_TCB[i - 1]};
        bool pad = PCK_TCB[i - 1] & 0x80;
        t += sgx_elem(tcb + t, (const uint8_t[]){2, (uint8_t)i}, 2, 0x02, pad ? v : v + 1, pad ? 2 : 1);
    }
    uint8_t pce[1] = {PCK_PCESVN};
    t += sgx_elem(tcb + t, (const uint8_t[]){2, 17}, 2, 0x02, pce, 1);
    uint8_t cpusvn[16] = {0};
    t += sgx_elem(tcb + t, (const uint8_t[]){2, 18}, 2, 0x04, cpusvn, 16);
    o += sgx_elem(body + o, (const uint8_t[]){2}, 1, 0x30, tcb, t);
    o += sgx_elem(body + o, (const uint8_t[]){3}, 1, 0x04, pceid, 2);
    o += sgx_elem(body + o, (const uint8_t[]){4}, 1, 0x04, fmspc, 6);
    uint8_t type[1] = {0};
    o += sgx_elem(body + o, (const uint8_t[]){5}, 1, 0x0a, type, 1);
    return der(out, 0x30, body, o);
}

static X509 *cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long serial, bool ca,
                  const uint8_t *sgx_ext, size_t sgx_ext_size)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"coffer test", -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    ASN1_TIME_set(X509_getm_notBefore(x), T0 - 365 * DAY);
    ASN1_TIME_set(X509_getm_notAfter(x), T0 + 365 * DAY);
    X509_set_pubkey(x, key);
    X509 *iss = issuer != NULL ? issuer : x;
    add_ext(x, iss, NID_subject_key_identifier, "hash");
    if (issuer != NULL)
        add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
    add_ext(x, iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, iss, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,nonRepudiation");
    if (sgx_ext != NULL) {
        ASN1_OBJECT *o = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
        ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(v, sgx_ext, (int)sgx_ext_size);
        X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, v);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(v);
        ASN1_OBJECT_free(o);
    }
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

static void sign_raw(EVP_PKEY *k, const uint8_t *msg, size_t n, uint8_t rs[64])
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char d[80];
    size_t dl = sizeof(d);
    assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(m, d, &dl, msg, n), 1);
    const unsigned char *p = d;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    BN_bn2binpad(ECDSA_SIG_get0_r(s), rs, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(s), rs + 32, 32);
    ECDSA_SIG_free(s);
    EVP_MD_CTX_free(m);
}

static void pubxy(EVP_PKEY *k, uint8_t xy[64])
{
    uint8_t pt[65];
    size_t n;
    assert_int_equal(EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", pt, sizeof(pt), &n), 1);
    memcpy(xy, pt + 1, 64);
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static char *pem_of(X509 **certs, int n, size_t *size)
{
    BIO *b = BIO_new(BIO_s_mem());
    for (int i = 0; i < n; i++)
        PEM_write_bio_X509(b, certs[i]);
    char *d;
    long l = BIO_get_mem_data(b, &d);
    char *out = malloc((size_t)l + 1);
    memcpy(out, d, (size_t)l);
    out[l] = '\0';
    *size = (size_t)l;
    BIO_free(b);
    return out;
}

/* An SGX v3 quote by the test PKI; qe_isvsvn and qe_mrsigner_byte let tests
 * break the QE identity. */
static uint8_t *make_quote(size_t *size, uint16_t qe_isvsvn, uint8_t qe_mrsigner_byte)
{
    size_t pn;
    X509 *chain[3] = {K.leaf, K.ca, K.root};
    char *pem = pem_of(chain, 3, &pn);
    size_t total = 48 + 384 + 4 + 64 + 64 + 384 + 64 + 2 + 32 + 2 + 4 + pn + 1;
    uint8_t *q = calloc(1, total);
    put16(q, 3);
    put16(q + 2, 2);
    put16(q + 8, 10);
    put16(q + 10, 13);
    static const uint8_t vendor[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                       0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};
    memcpy(q + 12, vendor, 16);
    uint8_t *body = q + 48;
    memset(body + 64, 0xab, 32); /* MRENCLAVE */
    memset(body + 128, 0xcd, 32); /* MRSIGNER */
    body[48] = 0x05;              /* INIT | MODE64 */
    memcpy(body + 320, "matrix", 6);
    coffer_store_u32le(q + 432, (uint32_t)(total - 436));
    uint8_t *sd = q + 436;
    uint8_t *qe = sd + 128;
    qe[48] = 0x11; /* ATTRIBUTES: INIT | PROVISIONKEY */
    memset(qe + 128, 0x8c, 32);
    qe[128] = qe_mrsigner_byte;
    put16(qe + 256, 1); /* ISVPRODID */
    put16(qe + 258, qe_isvsvn);
    uint8_t auth[32];
    memset(auth, 0x5a, 32);
    pubxy(K.att_key, sd + 64);
    uint8_t hb[96];
    memcpy(hb, sd + 64, 64);
    memcpy(hb + 64, auth, 32);
    unsigned int hl = 32;
    assert_int_equal(EVP_Digest(hb, 96, qe + 320, &hl, EVP_sha256(), NULL), 1);
    sign_raw(K.leaf_key, qe, 384, qe + 384);
    uint8_t *a = qe + 448;
    put16(a, 32);
    memcpy(a + 2, auth, 32);
    put16(a + 34, 5);
    coffer_store_u32le(a + 36, (uint32_t)(pn + 1));
    memcpy(a + 40, pem, pn); /* followed by the NUL calloc left */
    sign_raw(K.att_key, q, 432, sd);
    free(pem);
    *size = total;
    return q;
}

static char *hex(const uint8_t *p, size_t n)
{
    static char buf[2][256];
    static int k;
    k ^= 1;
    coffer_hex_encode(p, n, buf[k]);
    return buf[k];
}

static void iso(time_t t, char *buf)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* {"key":VALUE,"signature":"hex"} signed by the TCB signing key */
static char *signed_body(const char *key, const char *value, size_t *size)
{
    uint8_t rs[64];
    sign_raw(K.tcb_key, (const uint8_t *)value, strlen(value), rs);
    size_t n = strlen(value) + 256;
    char *b = malloc(n);
    snprintf(b, n, "{\"%s\":%s,\"signature\":\"%s\"}", key, value, hex(rs, 64));
    *size = strlen(b);
    return b;
}

struct level {
    int comp_delta; /* added to PCK component 1: >0 means this level needs more than the platform has */
    const char *status;
    const char *advisories; /* JSON array text or NULL */
};

static char *tcb_info(const uint8_t fmspc[6], const struct level *lv, int n, time_t issue, time_t next, size_t *size)
{
    char v[8192], is[32], nx[32];
    iso(issue, is);
    iso(next, nx);
    int o = snprintf(v, sizeof(v),
                     "{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\",\"fmspc\":\"%s\","
                     "\"pceId\":\"0000\",\"tcbType\":0,\"tcbEvaluationDataNumber\":17,\"tcbLevels\":[",
                     is, nx, hex(fmspc, 6));
    for (int i = 0; i < n; i++) {
        o += snprintf(v + o, sizeof(v) - (size_t)o, "%s{\"tcb\":{\"sgxtcbcomponents\":[", i ? "," : "");
        for (int c = 0; c < 16; c++)
            o += snprintf(v + o, sizeof(v) - (size_t)o, "%s{\"svn\":%d}", c ? "," : "",
                          PCK_TCB[c] + (c == 0 ? lv[i].comp_delta : 0));
        o += snprintf(v + o, sizeof(v) - (size_t)o,
                      "],\"pcesvn\":%d},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"%s\"%s%s}", PCK_PCESVN,
                      lv[i].status, lv[i].advisories ? ",\"advisoryIDs\":" : "", lv[i].advisories ? lv[i].advisories : "");
    }
    snprintf(v + o, sizeof(v) - (size_t)o, "]}");
    return signed_body("tcbInfo", v, size);
}

static char *qe_identity(const char *status, const char *advisories, time_t issue, time_t next, size_t *size)
{
    char v[2048], is[32], nx[32];
    iso(issue, is);
    iso(next, nx);
    snprintf(v, sizeof(v),
             "{\"id\":\"QE\",\"version\":2,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\",\"tcbEvaluationDataNumber\":17,"
             "\"miscselect\":\"00000000\",\"miscselectMask\":\"FFFFFFFF\","
             "\"attributes\":\"11000000000000000000000000000000\",\"attributesMask\":\"FBFFFFFFFFFFFFFF0000000000000000\","
             "\"mrsigner\":\"%s\",\"isvprodid\":1,\"tcbLevels\":[{\"tcb\":{\"isvsvn\":%d},"
             "\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"%s\"%s%s},{\"tcb\":{\"isvsvn\":2},"
             "\"tcbDate\":\"2019-03-13T00:00:00Z\",\"tcbStatus\":\"OutOfDate\"}]}",
             is, nx, "8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C", QE_ISVSVN, status,
             advisories ? ",\"advisoryIDs\":" : "", advisories ? advisories : "");
    return signed_body("enclaveIdentity", v, size);
}

static uint8_t *crl(X509 *issuer, EVP_PKEY *key, X509 *revoked, time_t last, time_t next, size_t *size)
{
    X509_CRL *c = X509_CRL_new();
    X509_CRL_set_version(c, 1);
    X509_CRL_set_issuer_name(c, X509_get_subject_name(issuer));
    ASN1_TIME *t = ASN1_TIME_set(NULL, last);
    X509_CRL_set1_lastUpdate(c, t);
    ASN1_TIME_set(t, next);
    X509_CRL_set1_nextUpdate(c, t);
    if (revoked != NULL) {
        X509_REVOKED *r = X509_REVOKED_new();
        X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked));
        ASN1_TIME_set(t, last);
        X509_REVOKED_set_revocationDate(r, t);
        X509_CRL_add0_revoked(c, r);
    }
    ASN1_TIME_free(t);
    X509_CRL_sort(c);
    assert_true(X509_CRL_sign(c, key, EVP_sha256()) > 0);
    unsigned char *d = NULL;
    int n = i2d_X509_CRL(c, &d);
    X509_CRL_free(c);
    uint8_t *out = malloc((size_t)n);
    memcpy(out, d, (size_t)n);
    OPENSSL_free(d);
    *size = (size_t)n;
    return out;
}

/* One collateral variant. */
struct variant {
    const uint8_t *fmspc;     /* NULL: the platform's */
    const struct level *lv;
    int nlv;
    const char *qe_status;
    const char *qe_adv;
    X509 *revoke_in_pck_crl;  /* NULL: none */
    X509 *revoke_in_root_crl;
    time_t pck_crl_next;      /* 0: T0 + 30 days */
    time_t tcb_next;          /* 0: T0 + 30 days */
};

static struct coffer_attest_collateral *collateral(const struct variant *v)
{
    size_t tn, qn, sn, pn, rn;
    char *ti = tcb_info(v->fmspc ? v->fmspc : FMSPC, v->lv, v->nlv, T0 - 10 * DAY, v->tcb_next ? v->tcb_next : T0 + 30 * DAY, &tn);
    char *qi = qe_identity(v->qe_status ? v->qe_status : "UpToDate", v->qe_adv, T0 - 10 * DAY, T0 + 30 * DAY, &qn);
    X509 *sc[2] = {K.tcb, K.root};
    char *sig = pem_of(sc, 2, &sn);
    uint8_t *pc = crl(K.ca, K.ca_key, v->revoke_in_pck_crl, T0 - 10 * DAY, v->pck_crl_next ? v->pck_crl_next : T0 + 30 * DAY, &pn);
    uint8_t *rc = crl(K.root, K.root_key, v->revoke_in_root_crl, T0 - 100 * DAY, T0 + 300 * DAY, &rn);
    struct coffer_attest_collateral_bytes b = {(uint8_t *)ti, tn, (uint8_t *)qi, qn, (uint8_t *)sig, sn, pc, pn, rc, rn};
    struct coffer_attest_collateral *c = NULL;
    enum coffer_attest_step step;
    if (coffer_attest_collateral_parse(&b, &c, &step) != COFFER_OK)
        fail_msg("generated collateral: %s at %s", coffer_err_detail(), coffer_attest_step_name(step));
    free(ti);
    free(qi);
    free(sig);
    free(pc);
    free(rc);
    return c;
}

static enum coffer_err verify_with(const struct variant *v, time_t now, struct coffer_attest_claims *c)
{
    size_t n;
    uint8_t *q = make_quote(&n, QE_ISVSVN, 0x8c);
    struct coffer_attest_collateral *col = collateral(v);
    const struct coffer_attest_collateral *list[1] = {col};
    struct coffer_attest_verify_opts o = {.now = now, .collateral = list, .collateral_count = 1};
    enum coffer_err r = coffer_attest_evidence_verify(q, n, &o, c);
    coffer_attest_collateral_free(col);
    free(q);
    return r;
}

static int setup(void **state)
{
    (void)state;
    K.root_key = p256();
    K.ca_key = p256();
    K.leaf_key = p256();
    K.tcb_key = p256();
    K.att_key = p256();
    K.root = cert("Intel SGX Root CA", K.root_key, NULL, K.root_key, 1, true, NULL, 0);
    K.ca = cert("Intel SGX PCK Processor CA", K.ca_key, K.root, K.root_key, 2, true, NULL, 0);
    uint8_t ext[1024];
    size_t en = sgx_extension(ext, FMSPC, (const uint8_t[]){0, 0});
    K.leaf = cert("Intel SGX PCK Certificate", K.leaf_key, K.ca, K.ca_key, 3, false, ext, en);
    K.tcb = cert("Intel SGX TCB Signing", K.tcb_key, K.root, K.root_key, 4, false, NULL, 0);
    unsigned char *d = NULL;
    int n = i2d_X509(K.root, &d);
    enum coffer_err r = coffer_attest_test_pin_intel_root(d, (size_t)n);
    OPENSSL_free(d);
    return r == COFFER_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(coffer_attest_test_pin_intel_root(NULL, 0), COFFER_OK);
    EVP_PKEY *keys[] = {K.root_key, K.ca_key, K.leaf_key, K.tcb_key, K.att_key};
    X509 *certs[] = {K.root, K.ca, K.leaf, K.tcb};
    for (size_t i = 0; i < 5; i++)
        EVP_PKEY_free(keys[i]);
    for (size_t i = 0; i < 4; i++)
        X509_free(certs[i]);
    return 0;
}

static void test_matrix_platform_statuses(void **state)
{
    (void)state;
    static const char *statuses[] = {"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
                                     "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        /* a newer level the platform does not reach, then the one it does */
        struct level lv[2] = {{1, "UpToDate", NULL}, {0, statuses[i], "[\"INTEL-SA-00001\",\"INTEL-SA-00002\"]"}};
        struct variant v = {.lv = lv, .nlv = 2};
        struct coffer_attest_claims c;
        enum coffer_err r = verify_with(&v, T0, &c);
        if (r != COFFER_OK)
            fail_msg("%s: %s at %s", statuses[i], coffer_err_detail(), coffer_attest_step_name(c.failed_step));
        assert_string_equal(coffer_attest_tcb_name(c.tcb_status), statuses[i]);
        assert_int_equal(c.advisory_count, 2);
        assert_string_equal(c.advisory_ids[1], "INTEL-SA-00002");
        assert_true(c.revocation_checked);
        at_assert_hex("abababababababababababababababababababababababababababababababab", c.mrenclave, 32);
    }
    /* Revoked is a failure, never a status a policy could accept */
    struct level rv[1] = {{0, "Revoked", NULL}};
    struct variant v = {.lv = rv, .nlv = 1};
    struct coffer_attest_claims c;
    at_assert_fails(verify_with(&v, T0, &c), &c, COFFER_E_REVOKED, COFFER_ATTEST_STEP_TCB_LEVEL);
    /* no level reached: TCB not supported */
    struct level ns[1] = {{1, "UpToDate", NULL}};
    v = (struct variant){.lv = ns, .nlv = 1};
    at_assert_fails(verify_with(&v, T0, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_TCB_LEVEL);
    /* an unknown status string fails at collateral load (test via parse) */
}

static void test_matrix_qe_convergence(void **state)
{
    (void)state;
    static const struct {
        const char *platform, *qe, *want;
    } rows[] = {
        {"UpToDate", "OutOfDate", "OutOfDate"},
        {"SWHardeningNeeded", "OutOfDate", "OutOfDate"},
        {"ConfigurationNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"},
        {"ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"},
        {"OutOfDate", "OutOfDate", "OutOfDate"},
        {"UpToDate", "UpToDate", "UpToDate"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct level lv[1] = {{0, rows[i].platform, NULL}};
        struct variant v = {.lv = lv, .nlv = 1, .qe_status = rows[i].qe, .qe_adv = "[\"INTEL-SA-00615\"]"};
        struct coffer_attest_claims c;
        enum coffer_err r = verify_with(&v, T0, &c);
        if (r != COFFER_OK)
            fail_msg("%s/%s: %s", rows[i].platform, rows[i].qe, coffer_err_detail());
        assert_string_equal(coffer_attest_tcb_name(c.tcb_status), rows[i].want);
        assert_string_equal(coffer_attest_tcb_name(c.qe_tcb_status), rows[i].qe);
        assert_int_equal(c.advisory_count, 1);
    }
    struct level lv[1] = {{0, "UpToDate", NULL}};
    struct variant v = {.lv = lv, .nlv = 1, .qe_status = "Revoked"};
    struct coffer_attest_claims c;
    at_assert_fails(verify_with(&v, T0, &c), &c, COFFER_E_REVOKED, COFFER_ATTEST_STEP_TCB_LEVEL);
}

static void test_matrix_revocation_and_time(void **state)
{
    (void)state;
    struct level lv[1] = {{0, "UpToDate", NULL}};
    struct coffer_attest_claims c;
    struct variant v = {.lv = lv, .nlv = 1, .revoke_in_pck_crl = K.leaf};
    at_assert_fails(verify_with(&v, T0, &c), &c, COFFER_E_REVOKED, COFFER_ATTEST_STEP_PCK_REVOCATION);
    v = (struct variant){.lv = lv, .nlv = 1, .revoke_in_root_crl = K.ca};
    at_assert_fails(verify_with(&v, T0, &c), &c, COFFER_E_REVOKED, COFFER_ATTEST_STEP_PCK_REVOCATION);
    v = (struct variant){.lv = lv, .nlv = 1, .revoke_in_root_crl = K.tcb};
    at_assert_fails(verify_with(&v, T0, &c), &c, COFFER_E_REVOKED, COFFER_ATTEST_STEP_TCB_SIGNING_CHAIN);
    v = (struct variant){.lv = lv, .nlv = 1, .pck_crl_next = T0 - DAY};
    at_assert_fails(verify_with(&v, T0, &c), &c, COFFER_E_EXPIRED, COFFER_ATTEST_STEP_PCK_REVOCATION);
    v = (struct variant){.lv = lv, .nlv = 1, .tcb_next = T0 - DAY};
    at_assert_fails(verify_with(&v, T0, &c), &c, COFFER_E_EXPIRED, COFFER_ATTEST_STEP_COLLATERAL_EXPIRED);
    v = (struct variant){.lv = lv, .nlv = 1};
    assert_int_equal(verify_with(&v, T0, &c), COFFER_OK);
    /* before the collateral was issued (the PCK CRL is checked first), and
     * after every certificate expired */
    at_assert_fails(verify_with(&v, T0 - 20 * DAY, &c), &c, COFFER_E_EXPIRED, COFFER_ATTEST_STEP_PCK_REVOCATION);
    assert_non_null(strstr(coffer_err_detail(), "not yet valid"));
    at_assert_fails(verify_with(&v, T0 + 400 * DAY, &c), &c, COFFER_E_EXPIRED, COFFER_ATTEST_STEP_PCK_CHAIN);
    /* memoised chain, then a time outside it: still refused */
    assert_int_equal(verify_with(&v, T0, &c), COFFER_OK);
    at_assert_fails(verify_with(&v, T0 + 400 * DAY, &c), &c, COFFER_E_EXPIRED, COFFER_ATTEST_STEP_PCK_CHAIN);
}

static void test_matrix_mismatch(void **state)
{
    (void)state;
    struct level lv[1] = {{0, "UpToDate", NULL}};
    static const uint8_t other[6] = {0x00, 0x90, 0x6e, 0xa1, 0x00, 0x01};
    struct variant v = {.lv = lv, .nlv = 1, .fmspc = other};
    struct coffer_attest_claims c;
    at_assert_fails(verify_with(&v, T0, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_COLLATERAL_MISMATCH);
    /* the QE: wrong MRSIGNER, and an ISVSVN below every level */
    v = (struct variant){.lv = lv, .nlv = 1};
    struct coffer_attest_collateral *col = collateral(&v);
    const struct coffer_attest_collateral *list[1] = {col};
    struct coffer_attest_verify_opts o = {.now = T0, .collateral = list, .collateral_count = 1};
    size_t n;
    uint8_t *q = make_quote(&n, QE_ISVSVN, 0x8d);
    at_assert_fails(coffer_attest_evidence_verify(q, n, &o, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_QE_IDENTITY);
    free(q);
    q = make_quote(&n, 1, 0x8c);
    at_assert_fails(coffer_attest_evidence_verify(q, n, &o, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_QE_IDENTITY);
    free(q);
    /* QE ISVSVN between the levels takes the lower one */
    q = make_quote(&n, 5, 0x8c);
    assert_int_equal(coffer_attest_evidence_verify(q, n, &o, &c), COFFER_OK);
    assert_int_equal(c.qe_tcb_status, COFFER_ATTEST_TCB_OUT_OF_DATE);
    assert_int_equal(c.tcb_status, COFFER_ATTEST_TCB_OUT_OF_DATE);
    free(q);
    coffer_attest_collateral_free(col);
}

/* ------------------------------------------------------------- TDX */

/* A TDX quote (v4: TD report 1.0; v5: body type 3, TD report 1.5). */
static uint8_t *make_td_quote(int version, const uint8_t svn[16], const uint8_t svn2[16], uint8_t mrsignerseam0,
                              size_t *size)
{
    size_t pn;
    X509 *chain[3] = {K.leaf, K.ca, K.root};
    char *pem = pem_of(chain, 3, &pn);
    size_t body = version == 5 ? 648 : 584, off = version == 5 ? 54 : 48;
    size_t signed_size = off + body;
    size_t inner = 384 + 64 + 2 + 32 + 2 + 4 + pn + 1;
    size_t total = signed_size + 4 + 64 + 64 + 2 + 4 + inner;
    uint8_t *q = calloc(1, total);
    put16(q, (uint16_t)version);
    put16(q + 2, 2);
    coffer_store_u32le(q + 4, 0x81);
    static const uint8_t vendor[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                       0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};
    memcpy(q + 12, vendor, 16);
    if (version == 5) {
        put16(q + 48, 3);
        coffer_store_u32le(q + 50, 648);
    }
    uint8_t *b = q + off;
    memcpy(b, svn, 16);
    b[16 + 48] = mrsignerseam0; /* MRSIGNERSEAM byte 0 */
    memset(b + 136, 0x7d, 48);  /* MRTD */
    memcpy(b + 520, "td-matrix", 9);
    if (version == 5)
        memcpy(b + 584, svn2, 16);
    coffer_store_u32le(q + signed_size, (uint32_t)(total - signed_size - 4));
    uint8_t *sd = q + signed_size + 4;
    pubxy(K.att_key, sd + 64);
    put16(sd + 128, 6);
    coffer_store_u32le(sd + 130, (uint32_t)inner);
    uint8_t *qe = sd + 134;
    qe[48] = 0x11;
    memset(qe + 128, 0x8c, 32);
    put16(qe + 256, 2); /* TD_QE ISVPRODID */
    put16(qe + 258, QE_ISVSVN);
    uint8_t auth[32], hb[96];
    memset(auth, 0x5a, 32);
    memcpy(hb, sd + 64, 64);
    memcpy(hb + 64, auth, 32);
    unsigned int hl = 32;
    assert_int_equal(EVP_Digest(hb, 96, qe + 320, &hl, EVP_sha256(), NULL), 1);
    sign_raw(K.leaf_key, qe, 384, qe + 384);
    uint8_t *a = qe + 448;
    put16(a, 32);
    memcpy(a + 2, auth, 32);
    put16(a + 34, 5);
    coffer_store_u32le(a + 36, (uint32_t)(pn + 1));
    memcpy(a + 40, pem, pn);
    sign_raw(K.att_key, q, signed_size, sd);
    free(pem);
    *size = total;
    return q;
}

struct td_level {
    int tdx2; /* tdxtcbcomponents[2] */
    const char *status;
};

static struct coffer_attest_collateral *td_collateral(const struct td_level *lv, int n, const struct td_level *mod,
                                                      int nmod)
{
    char v[16384], is[32], nx[32];
    iso(T0 - 10 * DAY, is);
    iso(T0 + 30 * DAY, nx);
    const char *zero96 = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
    int o = snprintf(v, sizeof(v),
                     "{\"id\":\"TDX\",\"version\":3,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\",\"fmspc\":\"%s\","
                     "\"pceId\":\"0000\",\"tcbType\":0,\"tcbEvaluationDataNumber\":17,"
                     "\"tdxModule\":{\"mrsigner\":\"%s\",\"attributes\":\"0000000000000000\",\"attributesMask\":\"FFFFFFFFFFFFFFFF\"},"
                     "\"tdxModuleIdentities\":[{\"id\":\"TDX_01\",\"mrsigner\":\"%s\",\"attributes\":\"0000000000000000\","
                     "\"attributesMask\":\"FFFFFFFFFFFFFFFF\",\"tcbLevels\":[",
                     is, nx, hex(FMSPC, 6), zero96, zero96);
    for (int i = 0; i < nmod; i++)
        o += snprintf(v + o, sizeof(v) - (size_t)o,
                      "%s{\"tcb\":{\"isvsvn\":%d},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"%s\"}", i ? "," : "",
                      mod[i].tdx2, mod[i].status);
    o += snprintf(v + o, sizeof(v) - (size_t)o, "]}],\"tcbLevels\":[");
    for (int i = 0; i < n; i++) {
        o += snprintf(v + o, sizeof(v) - (size_t)o, "%s{\"tcb\":{\"sgxtcbcomponents\":[", i ? "," : "");
        for (int c = 0; c < 16; c++)
            o += snprintf(v + o, sizeof(v) - (size_t)o, "%s{\"svn\":%d}", c ? "," : "", PCK_TCB[c]);
        o += snprintf(v + o, sizeof(v) - (size_t)o, "],\"pcesvn\":%d,\"tdxtcbcomponents\":[", PCK_PCESVN);
        for (int c = 0; c < 16; c++)
            o += snprintf(v + o, sizeof(v) - (size_t)o, "%s{\"svn\":%d}", c ? "," : "", c == 2 ? lv[i].tdx2 : 0);
        o += snprintf(v + o, sizeof(v) - (size_t)o, "]},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"%s\"}",
                      lv[i].status);
    }
    snprintf(v + o, sizeof(v) - (size_t)o, "]}");
    size_t tn, qn, sn, pn, rn;
    char *ti = signed_body("tcbInfo", v, &tn);
    char q[2048];
    snprintf(q, sizeof(q),
             "{\"id\":\"TD_QE\",\"version\":2,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\",\"tcbEvaluationDataNumber\":17,"
             "\"miscselect\":\"00000000\",\"miscselectMask\":\"FFFFFFFF\","
             "\"attributes\":\"11000000000000000000000000000000\",\"attributesMask\":\"FBFFFFFFFFFFFFFF0000000000000000\","
             "\"mrsigner\":\"8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C8C\",\"isvprodid\":2,"
             "\"tcbLevels\":[{\"tcb\":{\"isvsvn\":%d},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"}]}",
             is, nx, QE_ISVSVN);
    char *qi = signed_body("enclaveIdentity", q, &qn);
    X509 *sc[2] = {K.tcb, K.root};
    char *sig = pem_of(sc, 2, &sn);
    uint8_t *pc = crl(K.ca, K.ca_key, NULL, T0 - 10 * DAY, T0 + 30 * DAY, &pn);
    uint8_t *rc = crl(K.root, K.root_key, NULL, T0 - 100 * DAY, T0 + 300 * DAY, &rn);
    struct coffer_attest_collateral_bytes b = {(uint8_t *)ti, tn, (uint8_t *)qi, qn, (uint8_t *)sig, sn, pc, pn, rc, rn};
    struct coffer_attest_collateral *c = NULL;
    enum coffer_attest_step step;
    if (coffer_attest_collateral_parse(&b, &c, &step) != COFFER_OK)
        fail_msg("generated TDX collateral: %s at %s", coffer_err_detail(), coffer_attest_step_name(step));
    free(ti);
    free(qi);
    free(sig);
    free(pc);
    free(rc);
    return c;
}

static enum coffer_err td_verify(struct coffer_attest_collateral *col, int version, const uint8_t svn[16],
                                 const uint8_t svn2[16], uint8_t mrsignerseam0, struct coffer_attest_claims *c)
{
    size_t n;
    uint8_t *q = make_td_quote(version, svn, svn2, mrsignerseam0, &n);
    const struct coffer_attest_collateral *list[1] = {col};
    struct coffer_attest_verify_opts o = {.now = T0, .collateral = list, .collateral_count = 1};
    enum coffer_err r = coffer_attest_evidence_verify(q, n, &o, c);
    free(q);
    return r;
}

static void test_matrix_tdx(void **state)
{
    (void)state;
    const struct td_level lv[2] = {{3, "UpToDate"}, {2, "OutOfDate"}};
    const struct td_level mod[2] = {{4, "UpToDate"}, {2, "OutOfDate"}};
    struct coffer_attest_collateral *col = td_collateral(lv, 2, mod, 2);
    static const struct {
        int version;
        uint8_t svn[3], svn2[3];
        uint8_t mrsignerseam0;
        enum coffer_err code;
        enum coffer_attest_step step;
        const char *status;
    } rows[] = {
        /* TEE_TCB_SVN = {module isvsvn, module version (TDX_01), tdx comp 2} */
        {4, {4, 1, 3}, {0}, 0, COFFER_OK, 0, "UpToDate"},
        {5, {4, 1, 3}, {4, 1, 3}, 0, COFFER_OK, 0, "UpToDate"},
        {4, {4, 1, 2}, {0}, 0, COFFER_OK, 0, "OutOfDate"},                 /* TDX level out of date */
        {4, {3, 1, 3}, {0}, 0, COFFER_OK, 0, "OutOfDate"},                 /* module out of date converges */
        /* relaunch: old module and TDX level, but the platform now runs what the newest levels want */
        {5, {3, 1, 2}, {4, 1, 3}, 0, COFFER_OK, 0, "TDRelaunchAdvised"},
        {5, {3, 1, 2}, {3, 1, 3}, 0, COFFER_OK, 0, "OutOfDate"},          /* a relaunch would not help */
        {5, {3, 1, 2}, {4, 1, 2}, 0, COFFER_OK, 0, "OutOfDate"},
        {4, {3, 1, 2}, {0}, 0, COFFER_OK, 0, "OutOfDate"},                /* TD report 1.0: no TEE_TCB_SVN2 */
        {5, {4, 1, 2}, {4, 1, 3}, 0, COFFER_OK, 0, "OutOfDate"},          /* module current: not a relaunch case */
        {4, {4, 1, 1}, {0}, 0, COFFER_E_POLICY, COFFER_ATTEST_STEP_TCB_LEVEL, NULL}, /* below every level */
        {4, {1, 1, 3}, {0}, 0, COFFER_E_POLICY, COFFER_ATTEST_STEP_TDX_MODULE, NULL}, /* module below every level */
        {4, {4, 2, 3}, {0}, 0, COFFER_E_POLICY, COFFER_ATTEST_STEP_TDX_MODULE, NULL}, /* TDX_02 unknown */
        {4, {4, 1, 3}, {0}, 1, COFFER_E_POLICY, COFFER_ATTEST_STEP_TDX_MODULE, NULL}, /* MRSIGNERSEAM not Intel's */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint8_t svn[16] = {0}, svn2[16] = {0};
        memcpy(svn, rows[i].svn, 3);
        memcpy(svn2, rows[i].svn2, 3);
        struct coffer_attest_claims c;
        enum coffer_err r = td_verify(col, rows[i].version, svn, svn2, rows[i].mrsignerseam0, &c);
        if (rows[i].code == COFFER_OK) {
            if (r != COFFER_OK)
                fail_msg("row %zu: %s at %s", i, coffer_err_detail(), coffer_attest_step_name(c.failed_step));
            assert_string_equal(coffer_attest_tcb_name(c.tcb_status), rows[i].status);
            assert_int_equal(c.kind, COFFER_ATTEST_KIND_TDX);
            at_assert_hex("7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d",
                          c.mrtd, 48);
        } else {
            at_assert_fails(r, &c, rows[i].code, rows[i].step);
        }
    }
    /* the SGX collateral for this FMSPC with a TDX quote: TCB Info id mismatch */
    struct level sl[1] = {{0, "UpToDate", NULL}};
    struct variant v = {.lv = sl, .nlv = 1};
    struct coffer_attest_collateral *sgx = collateral(&v);
    uint8_t svn[16] = {4, 1, 3};
    struct coffer_attest_claims c;
    at_assert_fails(td_verify(sgx, 4, svn, svn, 0, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_COLLATERAL_MISMATCH);
    coffer_attest_collateral_free(sgx);
    coffer_attest_collateral_free(col);
}

int at_run_matrix(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix_platform_statuses),
        cmocka_unit_test(test_matrix_qe_convergence),
        cmocka_unit_test(test_matrix_revocation_and_time),
        cmocka_unit_test(test_matrix_mismatch),
        cmocka_unit_test(test_matrix_tdx),
    };
    return cmocka_run_group_tests_name("attest_matrix", tests, setup, teardown);
}
