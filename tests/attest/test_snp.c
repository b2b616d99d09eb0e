/* test_snp.c — AMD SEV-SNP reports: the recorded Milan reports (v2 VCEK,
 * v5 VCEK, v3 VLEK) decode to expected.json and verify at verify_at under
 * the pinned ARK/ASK chains; negatives, cross-pairings, time limits, and
 * the policy rules that matter for SNP (debug, VMPL). */
#include "attest_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (s == NULL)
        fail_msg("expected.json: no string %s", k);
    return s;
}

static enum coffer_err verify1(const uint8_t *r, size_t n, const uint8_t *cert, size_t cn, time_t now,
                               struct coffer_attest_claims *c)
{
    struct coffer_attest_verify_opts o = {.now = now, .snp_key_cert = cert, .snp_key_cert_size = cn};
    return coffer_attest_evidence_verify(r, n, &o, c);
}

static void check_report(const json_t *exp, const struct coffer_attest_claims *c)
{
    const json_t *r = json_object_get(exp, "report");
    assert_int_equal(c->kind, COFFER_ATTEST_KIND_SNP);
    at_assert_hex(jstr(r, "measurement"), c->measurement, 48);
    at_assert_hex(jstr(r, "report_data"), c->report_data, 64);
    at_assert_hex(jstr(r, "host_data"), c->host_data, 32);
    at_assert_hex(jstr(r, "chip_id"), c->chip_id, 64);
    at_assert_hex(jstr(r, "family_id"), c->family_id, 16);
    at_assert_hex(jstr(r, "image_id"), c->image_id, 16);
    at_assert_hex(jstr(r, "id_key_digest"), c->id_key_digest, 48);
    at_assert_hex(jstr(r, "author_key_digest"), c->author_key_digest, 48);
    assert_int_equal(c->platform_info, strtoull(jstr(r, "platform_info"), NULL, 16));
    const json_t *ct = json_object_get(r, "current_tcb");
    uint8_t cb[8];
    coffer_store_u64le(cb, c->current_tcb);
    assert_int_equal(cb[0], json_integer_value(json_object_get(ct, "bl")));
    assert_int_equal(cb[7], json_integer_value(json_object_get(ct, "ucode")));
    assert_int_equal(c->vmpl, json_integer_value(json_object_get(r, "vmpl")));
    assert_int_equal(c->guest_svn, json_integer_value(json_object_get(r, "guest_svn")));
    assert_int_equal(c->snp_policy, strtoull(jstr(r, "policy"), NULL, 16));
    assert_int_equal(c->debug, json_is_true(json_object_get(json_object_get(r, "policy_decoded"), "debug")));
    const json_t *t = json_object_get(r, "reported_tcb");
    uint8_t b[8];
    coffer_store_u64le(b, c->reported_tcb);
    assert_int_equal(b[0], json_integer_value(json_object_get(t, "bl")));
    assert_int_equal(b[1], json_integer_value(json_object_get(t, "tee")));
    assert_int_equal(b[6], json_integer_value(json_object_get(t, "snp")));
    assert_int_equal(b[7], json_integer_value(json_object_get(t, "ucode")));
}

static const char *vecs[][2] = {{"snp/gsev-milan-v2", "vcek.der"},
                                {"snp/gcp-milan-v5", "vcek.der"},
                                {"snp/trustee-milan-v3-vlek", "vlek.der"}};

static void test_snp_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        char rel[128];
        size_t n, cn;
        json_t *exp = at_expected(vecs[i][0]);
        snprintf(rel, sizeof(rel), "%s/report.bin", vecs[i][0]);
        uint8_t *rep = at_read(rel, &n);
        snprintf(rel, sizeof(rel), "%s/%s", vecs[i][0], vecs[i][1]);
        uint8_t *cert = at_read(rel, &cn);
        struct coffer_attest_claims c;
        enum coffer_err r = verify1(rep, n, cert, cn, at_verify_at(exp), &c);
        if (r != COFFER_OK)
            fail_msg("%s: %s at %s", vecs[i][0], coffer_err_detail(), coffer_attest_step_name(c.failed_step));
        check_report(exp, &c);
        assert_int_equal(coffer_attest_evidence_decode(rep, n, &c), COFFER_OK);
        check_report(exp, &c);
        /* 2053: every VCEK/VLEK has expired */
        r = verify1(rep, n, cert, cn, at_time("2053-01-01T00:00:00Z"), &c);
        at_assert_fails(r, &c, COFFER_E_EXPIRED, COFFER_ATTEST_STEP_SNP_CHAIN);
        /* now: VCEKs are still valid (7 years), the VLEK expired 2025-12-10 */
        r = verify1(rep, n, cert, cn, time(NULL), &c);
        if (i == 2)
            at_assert_fails(r, &c, COFFER_E_EXPIRED, COFFER_ATTEST_STEP_SNP_CHAIN);
        else
            assert_int_equal(r, COFFER_OK);
        /* no certificate given */
        at_assert_fails(verify1(rep, n, NULL, 0, at_verify_at(exp), &c), &c, COFFER_E_NOT_FOUND,
                        COFFER_ATTEST_STEP_SNP_CHAIN);
        free(rep);
        free(cert);
        json_decref(exp);
    }
}

static void test_snp_negatives_and_cross(void **state)
{
    (void)state;
    json_t *exp = at_expected("snp/gsev-milan-v2");
    time_t now = at_verify_at(exp);
    size_t n, cn, gn;
    uint8_t *cert = at_read("snp/gsev-milan-v2/vcek.der", &cn);
    uint8_t *gcert = at_read("snp/gcp-milan-v5/vcek.der", &gn);
    struct coffer_attest_claims c;
    static const char *negs[] = {"snp/gsev-milan-v2/neg-body-measurement.bin", "snp/gsev-milan-v2/neg-sig.bin"};
    for (int i = 0; i < 2; i++) {
        uint8_t *rep = at_read(negs[i], &n);
        at_assert_fails(verify1(rep, n, cert, cn, now, &c), &c, COFFER_E_SIGNATURE, COFFER_ATTEST_STEP_SNP_SIGNATURE);
        free(rep);
    }
    uint8_t *rep = at_read("snp/gsev-milan-v2/report.bin", &n);
    /* another chip's VCEK: the signature fails */
    at_assert_fails(verify1(rep, n, gcert, gn, now, &c), &c, COFFER_E_SIGNATURE, COFFER_ATTEST_STEP_SNP_SIGNATURE);
    size_t tn;
    uint8_t *tcert = at_read("snp/virtee-turin-vcek/vcek.der", &tn);
    /* a v2 report carries no CPUID, so the Turin VCEK picks the (valid)
     * Turin chain; its key did not sign this report */
    at_assert_fails(verify1(rep, n, tcert, tn, now, &c), &c, COFFER_E_SIGNATURE, COFFER_ATTEST_STEP_SNP_SIGNATURE);
    /* a v5 Milan report (CPUID says Milan) with the Turin VCEK: product mismatch */
    size_t g5n;
    uint8_t *g5 = at_read("snp/gcp-milan-v5/report.bin", &g5n);
    at_assert_fails(verify1(g5, g5n, tcert, tn, now, &c), &c, COFFER_E_CERT, COFFER_ATTEST_STEP_SNP_CHAIN);
    free(g5);
    free(tcert);
    /* every bit flip (one per byte) and truncation fails */
    for (size_t i = 0; i < n; i++) {
        rep[i] ^= (uint8_t)(1u << (i % 8));
        if (verify1(rep, n, cert, cn, now, &c) == COFFER_OK)
            fail_msg("SNP report with bit %zu of byte %zu flipped verified", i % 8, i);
        rep[i] ^= (uint8_t)(1u << (i % 8));
    }
    for (size_t len = 0; len < n; len++)
        assert_int_not_equal(verify1(rep, len, cert, cn, now, &c), COFFER_OK);
    /* the policy: gsev has DEBUG set */
    assert_int_equal(verify1(rep, n, cert, cn, now, &c), COFFER_OK);
    assert_true(c.debug);
    struct coffer_attest_policy p;
    coffer_attest_policy_init(&p);
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.allow_debug = true;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    free(rep);
    /* the VLEK report runs at VMPL 1 */
    json_t *vexp = at_expected("snp/trustee-milan-v3-vlek");
    size_t vn, vcn;
    uint8_t *vrep = at_read("snp/trustee-milan-v3-vlek/report.bin", &vn);
    uint8_t *vcert = at_read("snp/trustee-milan-v3-vlek/vlek.der", &vcn);
    assert_int_equal(verify1(vrep, vn, vcert, vcn, at_verify_at(vexp), &c), COFFER_OK);
    coffer_attest_policy_init(&p);
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.max_vmpl = 1;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    /* a VLEK-signed report with a VCEK certificate: key type mismatch */
    at_assert_fails(verify1(vrep, vn, gcert, gn, at_verify_at(vexp), &c), &c, COFFER_E_CERT,
                    COFFER_ATTEST_STEP_SNP_CHAIN);
    free(vrep);
    free(vcert);
    json_decref(vexp);
    free(cert);
    free(gcert);
    json_decref(exp);
}

static void test_snp_pinned_chains_and_turin_vcek(void **state)
{
    (void)state;
    assert_int_equal(coffer_attest_amd_roots_check(), COFFER_OK);
    json_t *exp = at_expected("snp/virtee-turin-vcek");
    size_t n;
    uint8_t *der = at_read("snp/virtee-turin-vcek/vcek.der", &n);
    struct coffer_attest_snp_cert sc;
    enum coffer_err r = coffer_attest_snp_cert_check(der, n, at_verify_at(exp), &sc);
    if (r != COFFER_OK)
        fail_msg("%s", coffer_err_detail());
    assert_string_equal(sc.product, "Turin");
    assert_false(sc.vlek);
    /* the Turin set: fmcSPL present, 8-byte hwID */
    const json_t *ext = json_object_get(json_object_get(exp, "key_cert"), "extensions_hex");
    assert_string_equal(json_string_value(json_object_get(ext, "1.3.6.1.4.1.3704.1.3.9")), "020100");
    assert_int_equal(sc.fmc_spl, 0);
    assert_int_equal(sc.ucode_spl, 9); /* .3.8 = 020109 */
    assert_int_equal(sc.hwid_size, 8);
    at_assert_hex(json_string_value(json_object_get(ext, "1.3.6.1.4.1.3704.1.4")), sc.hwid, 8);
    assert_int_equal(coffer_attest_snp_cert_check(der, n, at_time("2053-01-01T00:00:00Z"), &sc), COFFER_E_EXPIRED);
    free(der);
    json_decref(exp);
    /* the Milan VCEK (DER-wrapped or raw hwID) and the VLEK */
    der = at_read("snp/gsev-milan-v2/vcek.der", &n);
    assert_int_equal(coffer_attest_snp_cert_check(der, n, at_time("2026-01-01T00:00:00Z"), &sc), COFFER_OK);
    assert_string_equal(sc.product, "Milan-B0");
    assert_int_equal(sc.hwid_size, 64);
    assert_int_equal(sc.ucode_spl, 68);
    free(der);
    der = at_read("snp/trustee-milan-v3-vlek/vlek.der", &n);
    assert_int_equal(coffer_attest_snp_cert_check(der, n, at_time("2025-06-01T00:00:00Z"), &sc), COFFER_OK);
    assert_true(sc.vlek);
    assert_int_equal(sc.hwid_size, 0);
    assert_int_equal(sc.ucode_spl, 217);
    free(der);
}

int at_run_snp(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snp_vectors),
        cmocka_unit_test(test_snp_negatives_and_cross),
        cmocka_unit_test(test_snp_pinned_chains_and_turin_vcek),
    };
    return cmocka_run_group_tests_name("attest_snp", tests, NULL, NULL);
}
