/* test_snp_matrix.c — SEV-SNP field checks on a test-only AMD-like PKI the
 * test builds with OpenSSL (ARK and ASK: RSA with RSASSA-PSS/SHA-384; VCEK:
 * P-384 with the AMD TCB and hwID extensions) and reports it signs: the
 * REPORTED_TCB binding (Milan and Turin layouts), CHIP_ID against hwID (raw
 * and OCTET STRING forms, MASK_CHIP_KEY), key-type mismatch, reserved
 * fields, VMPL and DEBUG through the policy. The test chain is pinned with
 * the COFFER_TESTING hook. */
#include "attest_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#define NOW 1767225600 /* 2026-01-01 */

static EVP_PKEY *ark_key, *ask_key, *vcek_key;
static X509 *ark, *ask;

static void pss_sign(X509 *x, EVP_PKEY *k)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    assert_int_equal(EVP_DigestSignInit(m, &pc, EVP_sha384(), NULL, k), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 48), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha384()), 1);
    assert_true(X509_sign_ctx(x, m) > 0);
    EVP_MD_CTX_free(m);
}

static X509 *new_cert(const char *cn, EVP_PKEY *key, X509 *issuer, long serial, bool ca)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    ASN1_TIME_set(X509_getm_notBefore(x), NOW - 365 * 86400);
    ASN1_TIME_set(X509_getm_notAfter(x), NOW + 365 * 86400);
    X509_set_pubkey(x, key);
    if (ca) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    return x;
}

static void add_raw_ext(X509 *x, const char *oid, const uint8_t *v, size_t n)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *s = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(s, v, (int)n);
    X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, s);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(s);
    ASN1_OBJECT_free(o);
}

struct vcek_spec {
    const char *product; /* productName */
    const char *cn;      /* SEV-VCEK / SEV-VLEK */
    int bl, tee, snp, ucode, fmc; /* -1: absent */
    const uint8_t *hwid;
    size_t hwid_size;
    bool hwid_wrapped;
};

static uint8_t *vcek(const struct vcek_spec *v, size_t *size)
{
    X509 *x = new_cert(v->cn, vcek_key, ask, 0, false);
    uint8_t b[80];
    b[0] = 0x16;
    b[1] = (uint8_t)strlen(v->product);
    memcpy(b + 2, v->product, strlen(v->product));
    add_raw_ext(x, "1.3.6.1.4.1.3704.1.2", b, 2 + strlen(v->product));
    int spl[10] = {-1, v->bl, v->tee, v->snp, -1, -1, -1, -1, v->ucode, v->fmc};
    for (int arc = 1; arc <= 9; arc++) {
        if (spl[arc] < 0)
            continue;
        char oid[40];
        snprintf(oid, sizeof(oid), "1.3.6.1.4.1.3704.1.3.%d", arc);
        uint8_t in[4] = {0x02, 1, (uint8_t)spl[arc]};
        size_t n = 3;
        if (spl[arc] >= 0x80) { /* positive INTEGER needs a leading zero */
            in[1] = 2, in[2] = 0, in[3] = (uint8_t)spl[arc];
            n = 4;
        }
        add_raw_ext(x, oid, in, n);
    }
    if (v->hwid != NULL) {
        uint8_t w[80];
        if (v->hwid_wrapped) {
            w[0] = 0x04, w[1] = (uint8_t)v->hwid_size;
            memcpy(w + 2, v->hwid, v->hwid_size);
            add_raw_ext(x, "1.3.6.1.4.1.3704.1.4", w, v->hwid_size + 2);
        } else {
            add_raw_ext(x, "1.3.6.1.4.1.3704.1.4", v->hwid, v->hwid_size);
        }
    }
    pss_sign(x, ask_key);
    uint8_t *out = at_x509_der(x, size);
    X509_free(x);
    return out;
}

struct report_spec {
    uint32_t version;
    uint8_t fam, mod;
    uint64_t policy;
    uint32_t vmpl, signer;
    uint8_t tcb[8]; /* REPORTED_TCB bytes */
    const uint8_t *chip_id;
    bool reserved_dirty;
};

static void report(const struct report_spec *r, uint8_t out[1184])
{
    memset(out, 0, 1184);
    coffer_store_u32le(out, r->version);
    coffer_store_u64le(out + 0x08, r->policy);
    coffer_store_u32le(out + 0x30, r->vmpl);
    coffer_store_u32le(out + 0x34, 1);
    coffer_store_u32le(out + 0x48, r->signer);
    memcpy(out + 0x50, "snp-matrix", 10);
    memset(out + 0x90, 0x4d, 48); /* MEASUREMENT */
    memcpy(out + 0x180, r->tcb, 8);
    if (r->version >= 3) {
        out[0x188] = r->fam;
        out[0x189] = r->mod;
    }
    if (r->reserved_dirty)
        out[0x200 + 0x10] = 1;
    if (r->chip_id != NULL)
        memcpy(out + 0x1a0, r->chip_id, 64);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char d[128];
    size_t dl = sizeof(d);
    assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha384(), NULL, vcek_key), 1);
    assert_int_equal(EVP_DigestSign(m, d, &dl, out, 0x2a0), 1);
    const unsigned char *p = d;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    BN_bn2lebinpad(ECDSA_SIG_get0_r(s), out + 0x2a0, 72);
    BN_bn2lebinpad(ECDSA_SIG_get0_s(s), out + 0x2e8, 72);
    ECDSA_SIG_free(s);
    EVP_MD_CTX_free(m);
}

static int setup(void **state)
{
    (void)state;
    ark_key = EVP_RSA_gen(2048);
    ask_key = EVP_RSA_gen(2048);
    vcek_key = EVP_EC_gen("P-384");
    if (ark_key == NULL || ask_key == NULL || vcek_key == NULL)
        return -1;
    ark = new_cert("ARK-Test", ark_key, NULL, 0x10000, true);
    pss_sign(ark, ark_key);
    ask = new_cert("SEV-Test", ask_key, ark, 0x10001, true);
    pss_sign(ask, ark_key);
    unsigned char *a = NULL, *k = NULL;
    int an = i2d_X509(ask, &a), kn = i2d_X509(ark, &k);
    static const char *products[] = {"Milan", "Turin", "Milan-VLEK"};
    int rc = 0;
    for (int i = 0; i < 3; i++)
        if (coffer_attest_test_pin_amd_chain(products[i], a, (size_t)an, k, (size_t)kn) != COFFER_OK)
            rc = -1;
    OPENSSL_free(a);
    OPENSSL_free(k);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    static const char *products[] = {"Milan", "Turin", "Milan-VLEK"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(coffer_attest_test_pin_amd_chain(products[i], NULL, 0, NULL, 0), COFFER_OK);
    X509_free(ark);
    X509_free(ask);
    EVP_PKEY_free(ark_key);
    EVP_PKEY_free(ask_key);
    EVP_PKEY_free(vcek_key);
    return 0;
}

static enum coffer_err check(const struct report_spec *rs, const struct vcek_spec *vs, struct coffer_attest_claims *c)
{
    uint8_t rep[1184];
    size_t cn;
    report(rs, rep);
    uint8_t *cert = vcek(vs, &cn);
    struct coffer_attest_verify_opts o = {.now = NOW, .snp_key_cert = cert, .snp_key_cert_size = cn};
    enum coffer_err r = coffer_attest_evidence_verify(rep, sizeof(rep), &o, c);
    /* the same certificate inside extended evidence (report + certificate
     * table) must meet exactly the same checks, with the same verdict */
    struct at_cert_entry e = {((rs->signer >> 2) & 7) == 1 ? AT_GUID_VLEK : AT_GUID_VCEK, cert, cn};
    size_t tn, en;
    uint8_t *t = at_snp_table(&e, 1, &tn), *ev = at_concat(rep, sizeof(rep), t, tn, &en);
    struct coffer_attest_verify_opts o2 = {.now = NOW};
    struct coffer_attest_claims c2;
    enum coffer_err r2 = coffer_attest_evidence_verify(ev, en, &o2, &c2);
    if (r2 != r || c2.failed_step != c->failed_step)
        fail_msg("extended evidence: %s at %s, the bare report: %s at %s", coffer_err_name(r2),
                 coffer_attest_step_name(c2.failed_step), coffer_err_name(r), coffer_attest_step_name(c->failed_step));
    if (r == COFFER_OK) {
        assert_true(c2.snp_key_from_evidence);
        assert_false(c->snp_key_from_evidence);
        c2.snp_key_from_evidence = false;
        assert_memory_equal(&c2, c, sizeof(c2));
    }
    /* the bare report's error detail is what callers assert on */
    r = coffer_attest_evidence_verify(rep, sizeof(rep), &o, c);
    free(t);
    free(ev);
    free(cert);
    return r;
}

static void test_snp_matrix(void **state)
{
    (void)state;
    uint8_t chip[64], other[64], turin_chip[64] = {0};
    memset(chip, 0xc1, 64);
    memset(other, 0xc2, 64);
    memset(turin_chip, 0x71, 8);
    /* Milan: TCB bytes bl, tee, 0, 0, 0, 0, snp, ucode */
    const struct report_spec milan = {3, 0x19, 0x01, 0x30000, 0, 0, {3, 0, 0, 0, 0, 0, 8, 0xd1}, chip, false};
    const struct vcek_spec mv = {"Milan-B0", "SEV-VCEK", 3, 0, 8, 0xd1, -1, chip, 64, false};
    struct coffer_attest_claims c;
    enum coffer_err r = check(&milan, &mv, &c);
    if (r != COFFER_OK)
        fail_msg("%s at %s", coffer_err_detail(), coffer_attest_step_name(c.failed_step));
    assert_int_equal(c.kind, COFFER_ATTEST_KIND_SNP);
    assert_int_equal(c.reported_tcb >> 56, 0xd1);
    assert_string_equal(c.snp_product, "Milan");
    assert_int_equal(c.snp_bl_spl, 3);
    assert_int_equal(c.snp_snp_spl, 8);
    assert_int_equal(c.snp_ucode_spl, 0xd1);
    assert_int_equal(c.snp_fmc_spl, -1);
    /* minimum reported TCB in the policy */
    struct coffer_attest_policy mp;
    coffer_attest_policy_init(&mp);
    assert_int_equal(coffer_attest_policy_check(&mp, &c), COFFER_OK);
    mp.min_snp_ucode = 0xd2;
    assert_int_equal(coffer_attest_policy_check(&mp, &c), COFFER_E_POLICY);
    mp.min_snp_ucode = 0xd1;
    mp.min_snp_snp = 8;
    assert_int_equal(coffer_attest_policy_check(&mp, &c), COFFER_OK);
    mp.min_snp_fmc = 0; /* Milan has no FMC SVN: a minimum cannot be met */
    assert_int_equal(coffer_attest_policy_check(&mp, &c), COFFER_E_POLICY);
    /* hwID wrapped in an OCTET STRING is read the same */
    struct vcek_spec v = mv;
    v.hwid_wrapped = true;
    assert_int_equal(check(&milan, &v, &c), COFFER_OK);
    /* each SPL that differs from REPORTED_TCB */
    int *spl[4] = {&v.bl, &v.tee, &v.snp, &v.ucode};
    for (int i = 0; i < 4; i++) {
        v = mv;
        (*spl[i])++;
        at_assert_fails(check(&milan, &v, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_SNP_TCB);
    }
    /* another chip's hwID; MASK_CHIP_KEY (signer bit 1) with CHIP_ID zero passes */
    v = mv;
    v.hwid = other;
    at_assert_fails(check(&milan, &v, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_SNP_CHIP_ID);
    struct report_spec rs = milan;
    rs.signer = 2;
    rs.chip_id = NULL;
    assert_int_equal(check(&rs, &v, &c), COFFER_OK);
    /* the report says VLEK, the certificate is a VCEK */
    rs = milan;
    rs.signer = 1 << 2;
    at_assert_fails(check(&rs, &mv, &c), &c, COFFER_E_CERT, COFFER_ATTEST_STEP_SNP_CHAIN);
    /* a VLEK: no hwID, chip id not compared */
    v = mv;
    v.cn = "SEV-VLEK";
    v.product = "Milan";
    v.hwid = NULL;
    rs.chip_id = NULL;
    assert_int_equal(check(&rs, &v, &c), COFFER_OK);
    /* reserved bytes, POLICY bit 17, unknown signing key */
    rs = milan;
    rs.reserved_dirty = true;
    at_assert_fails(check(&rs, &mv, &c), &c, COFFER_E_MALFORMED, COFFER_ATTEST_STEP_PARSE);
    rs = milan;
    rs.policy = 0x10000;
    at_assert_fails(check(&rs, &mv, &c), &c, COFFER_E_MALFORMED, COFFER_ATTEST_STEP_PARSE);
    rs = milan;
    rs.signer = 3 << 2;
    at_assert_fails(check(&rs, &mv, &c), &c, COFFER_E_MALFORMED, COFFER_ATTEST_STEP_PARSE);
    /* CPUID says Genoa, the certificate says Milan */
    rs = milan;
    rs.mod = 0x11;
    at_assert_fails(check(&rs, &mv, &c), &c, COFFER_E_CERT, COFFER_ATTEST_STEP_SNP_CHAIN);
    /* VMPL 2 and DEBUG verify; the default policy refuses them */
    rs = milan;
    rs.vmpl = 2;
    rs.policy = 0x30000 | (1u << 19);
    assert_int_equal(check(&rs, &mv, &c), COFFER_OK);
    assert_true(c.debug);
    assert_int_equal(c.vmpl, 2);
    struct coffer_attest_policy p;
    coffer_attest_policy_init(&p);
    p.allow_debug = true;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.max_vmpl = 2;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);

    /* Turin: TCB bytes fmc, bl, tee, snp, 0, 0, 0, ucode; 8-byte hwID */
    const struct report_spec turin = {3, 0x1a, 0x02, 0x30000, 0, 0, {1, 3, 0, 5, 0, 0, 0, 0x49}, turin_chip, false};
    const struct vcek_spec tv = {"Turin", "SEV-VCEK", 3, 0, 5, 0x49, 1, turin_chip, 8, false};
    r = check(&turin, &tv, &c);
    if (r != COFFER_OK)
        fail_msg("turin: %s at %s", coffer_err_detail(), coffer_attest_step_name(c.failed_step));
    assert_string_equal(c.snp_product, "Turin");
    assert_int_equal(c.snp_fmc_spl, 1);
    assert_int_equal(c.snp_bl_spl, 3);
    assert_int_equal(c.snp_snp_spl, 5);
    assert_int_equal(c.snp_ucode_spl, 0x49);
    v = tv;
    v.fmc = 2;
    at_assert_fails(check(&turin, &v, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_SNP_TCB);
    /* the Milan reading of the same bytes would not match: the layout matters */
    v = tv;
    v.bl = 1;
    at_assert_fails(check(&turin, &v, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_SNP_TCB);
    /* CHIP_ID bytes past the 8-byte Turin hwID must be zero */
    uint8_t tail[64];
    memcpy(tail, turin_chip, 64);
    tail[9] = 1;
    rs = turin;
    rs.chip_id = tail;
    at_assert_fails(check(&rs, &tv, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_SNP_CHIP_ID);
}

static uint8_t *amd_crl(EVP_PKEY *signer, X509 *revoked, time_t last, time_t next, size_t *size)
{
    X509_CRL *c = X509_CRL_new();
    X509_CRL_set_version(c, 1);
    X509_CRL_set_issuer_name(c, X509_get_subject_name(ark));
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
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    assert_int_equal(EVP_DigestSignInit(m, &pc, EVP_sha384(), NULL, signer), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 48), 1);
    assert_true(X509_CRL_sign_ctx(c, m) > 0);
    EVP_MD_CTX_free(m);
    unsigned char *d = NULL;
    int n = i2d_X509_CRL(c, &d);
    X509_CRL_free(c);
    uint8_t *out = malloc((size_t)n);
    memcpy(out, d, (size_t)n);
    OPENSSL_free(d);
    *size = (size_t)n;
    return out;
}

static void test_snp_amd_crl(void **state)
{
    (void)state;
    uint8_t chip[64], rep[1184];
    memset(chip, 0xc1, 64);
    const struct report_spec milan = {3, 0x19, 0x01, 0x30000, 0, 0, {3, 0, 0, 0, 0, 0, 8, 0xd1}, chip, false};
    const struct vcek_spec mv = {"Milan-B0", "SEV-VCEK", 3, 0, 8, 0xd1, -1, chip, 64, false};
    report(&milan, rep);
    size_t cn, ln;
    uint8_t *cert = vcek(&mv, &cn);
    struct coffer_attest_verify_opts o = {.now = NOW, .snp_key_cert = cert, .snp_key_cert_size = cn};
    struct coffer_attest_claims c;
    /* a current CRL from the pinned ARK that lists nothing */
    uint8_t *crl = amd_crl(ark_key, NULL, NOW - 86400, NOW + 86400, &ln);
    o.amd_crl = crl;
    o.amd_crl_size = ln;
    assert_int_equal(coffer_attest_evidence_verify(rep, sizeof(rep), &o, &c), COFFER_OK);
    free(crl);
    /* it lists the ASK */
    crl = amd_crl(ark_key, ask, NOW - 86400, NOW + 86400, &ln);
    o.amd_crl = crl;
    o.amd_crl_size = ln;
    at_assert_fails(coffer_attest_evidence_verify(rep, sizeof(rep), &o, &c), &c, COFFER_E_REVOKED,
                    COFFER_ATTEST_STEP_SNP_CHAIN);
    free(crl);
    /* stale */
    crl = amd_crl(ark_key, NULL, NOW - 10 * 86400, NOW - 86400, &ln);
    o.amd_crl = crl;
    o.amd_crl_size = ln;
    at_assert_fails(coffer_attest_evidence_verify(rep, sizeof(rep), &o, &c), &c, COFFER_E_EXPIRED,
                    COFFER_ATTEST_STEP_SNP_CHAIN);
    free(crl);
    /* signed by a key that is not the pinned ARK (same issuer name) */
    crl = amd_crl(ask_key, NULL, NOW - 86400, NOW + 86400, &ln);
    o.amd_crl = crl;
    o.amd_crl_size = ln;
    at_assert_fails(coffer_attest_evidence_verify(rep, sizeof(rep), &o, &c), &c, COFFER_E_SIGNATURE,
                    COFFER_ATTEST_STEP_SNP_CHAIN);
    free(crl);
    free(cert);
}

int at_run_snp_matrix(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snp_matrix),
        cmocka_unit_test(test_snp_amd_crl),
    };
    return cmocka_run_group_tests_name("attest_snp_matrix", tests, setup, teardown);
}
