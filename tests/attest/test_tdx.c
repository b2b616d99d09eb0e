/* test_tdx.c — TDX quotes v4 (TD report 1.0) and v5 (TD report 1.5): the
 * recorded vectors decode to expected.json and reach the expected verdict
 * (TDX module identity included) at verify_at, are rejected now and in
 * 2053, and the negative vectors fail at their step. */
#include "attest_test.h"

#include <stdio.h>
#include <string.h>

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (s == NULL)
        fail_msg("expected.json: no string %s", k);
    return s;
}

static void check_td_body(const json_t *exp, const struct coffer_attest_claims *c)
{
    const json_t *b = json_object_get(exp, "body");
    char k[8];
    assert_int_equal(c->kind, COFFER_ATTEST_KIND_TDX);
    at_assert_hex(jstr(b, "tee_tcb_svn"), c->tee_tcb_svn, 16);
    at_assert_hex(jstr(b, "mrseam"), c->mrseam, 48);
    at_assert_hex(jstr(b, "mrtd"), c->mrtd, 48);
    at_assert_hex(jstr(b, "mrconfigid"), c->mrconfigid, 48);
    at_assert_hex(jstr(b, "mrowner"), c->mrowner, 48);
    at_assert_hex(jstr(b, "mrownerconfig"), c->mrownerconfig, 48);
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof(k), "rtmr%d", i);
        at_assert_hex(jstr(b, k), c->rtmr[i], 48);
    }
    at_assert_hex(jstr(b, "reportdata"), c->report_data, 64);
    uint8_t attr[8];
    coffer_store_u64le(attr, c->td_attributes);
    at_assert_hex(jstr(b, "tdattributes"), attr, 8);
    assert_int_equal(c->debug, json_is_true(json_object_get(exp, "debug")));
    const json_t *h = json_object_get(exp, "header"), *qe = json_object_get(exp, "qe_report");
    assert_int_equal(c->quote_version, json_integer_value(json_object_get(h, "version")));
    assert_int_equal(c->qe_svn, json_integer_value(json_object_get(h, "qe_svn")));
    assert_int_equal(c->pce_svn, json_integer_value(json_object_get(h, "pce_svn")));
    at_assert_hex(jstr(qe, "mrsigner"), c->qe_mrsigner, 32);
    assert_int_equal(c->qe_isv_prodid, json_integer_value(json_object_get(qe, "isvprodid")));
    assert_int_equal(c->qe_isv_svn, json_integer_value(json_object_get(qe, "isvsvn")));
}

static enum coffer_err verify1(const uint8_t *q, size_t n, struct coffer_attest_collateral *col, time_t now,
                               bool allow_missing_crl, struct coffer_attest_claims *c)
{
    const struct coffer_attest_collateral *list[1] = {col};
    struct coffer_attest_verify_opts o = {.now = now, .collateral = list, .collateral_count = col != NULL,
                                          .allow_missing_pck_crl = allow_missing_crl};
    return coffer_attest_evidence_verify(q, n, &o, c);
}

static const struct {
    const char *vec;
    bool crl; /* a PCK CRL current at verify_at exists */
} vectors[] = {
    {"tdx/phala-v4", true},
    {"tdx/google-v5", true},
    {"tdx/phala-v5-tcb-unsupported", true},
    {"tdx/trustee-v4-outofdate", false},
};

static void test_tdx_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        char rel[128];
        json_t *exp = at_expected(vectors[i].vec);
        snprintf(rel, sizeof(rel), "%s/quote.bin", vectors[i].vec);
        size_t n;
        uint8_t *q = at_read(rel, &n);
        const char *dir = jstr(json_object_get(exp, "collateral"), "dir");
        struct coffer_attest_collateral *col = at_collateral(dir, !vectors[i].crl);
        struct coffer_attest_claims c;
        enum coffer_err r = verify1(q, n, col, at_verify_at(exp), !vectors[i].crl, &c);
        const char *want = jstr(exp, "expected_tcb_status");
        if (strcmp(want, "TcbNotSupported") == 0) {
            at_assert_fails(r, &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_TCB_LEVEL);
            assert_non_null(strstr(coffer_err_detail(), "TCB not supported"));
        } else {
            if (r != COFFER_OK)
                fail_msg("%s: %s at %s", vectors[i].vec, coffer_err_detail(), coffer_attest_step_name(c.failed_step));
            check_td_body(exp, &c);
            const char *st = json_string_value(json_object_get(json_object_get(exp, "body"), "mrservicetd"));
            if (st != NULL)
                at_assert_hex(st, c.mrservicetd, 48);
            assert_string_equal(coffer_attest_tcb_name(c.tcb_status), want);
            assert_string_equal(coffer_attest_tcb_name(c.qe_tcb_status), jstr(exp, "qe_identity_tcb_status"));
            assert_int_equal(c.advisory_count, json_array_size(json_object_get(exp, "expected_advisory_ids")));
            assert_int_equal(c.revocation_checked, vectors[i].crl);
            at_assert_hex(jstr(json_object_get(exp, "pck_extensions"), "fmspc"), c.fmspc, 6);
        }
        /* decode alone gives the body for every vector */
        assert_int_equal(coffer_attest_evidence_decode(q, n, &c), COFFER_OK);
        check_td_body(exp, &c);
        /* now: collateral expired; 2053: certificates expired */
        r = verify1(q, n, col, time(NULL), true, &c);
        assert_int_equal(r, COFFER_E_EXPIRED);
        r = verify1(q, n, col, at_time("2053-01-01T00:00:00Z"), true, &c);
        at_assert_fails(r, &c, COFFER_E_EXPIRED, COFFER_ATTEST_STEP_PCK_CHAIN);
        coffer_attest_collateral_free(col);
        free(q);
        json_decref(exp);
    }
}

static void test_tdx_negative_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *vec, *file;
        enum coffer_err code;
        enum coffer_attest_step step;
    } neg[] = {
        {"tdx/phala-v4", "tdx/phala-v4/neg-body-mrtd.bin", COFFER_E_SIGNATURE, COFFER_ATTEST_STEP_QUOTE_SIGNATURE},
        {"tdx/phala-v4", "tdx/phala-v4/neg-sig.bin", COFFER_E_SIGNATURE, COFFER_ATTEST_STEP_QUOTE_SIGNATURE},
        {"tdx/google-v5", "tdx/google-v5/neg-body-type.bin", COFFER_E_MALFORMED, COFFER_ATTEST_STEP_PARSE},
    };
    for (size_t i = 0; i < sizeof(neg) / sizeof(neg[0]); i++) {
        json_t *exp = at_expected(neg[i].vec);
        struct coffer_attest_collateral *col = at_collateral(jstr(json_object_get(exp, "collateral"), "dir"), false);
        size_t n;
        uint8_t *q = at_read(neg[i].file, &n);
        struct coffer_attest_claims c;
        enum coffer_err r = verify1(q, n, col, at_verify_at(exp), false, &c);
        at_assert_fails(r, &c, neg[i].code, neg[i].step);
        free(q);
        coffer_attest_collateral_free(col);
        json_decref(exp);
    }
}

static void test_tdx_padding_and_cross(void **state)
{
    (void)state;
    json_t *exp = at_expected("tdx/phala-v4");
    size_t n;
    uint8_t *q = at_read("tdx/phala-v4/quote.bin", &n);
    assert_int_equal(n, 5006); /* 70 zero bytes of padding after the signature data */
    struct coffer_attest_collateral *col = at_collateral("collateral/tdx-fmspcB0C06F000000-2025-06-19", false);
    struct coffer_attest_claims c;
    time_t now = at_verify_at(exp);
    assert_int_equal(verify1(q, n, col, now, false, &c), COFFER_OK);
    q[n - 1] = 1; /* padding must stay zero */
    assert_int_equal(verify1(q, n, col, now, false, &c), COFFER_E_TRAILING);
    q[n - 1] = 0;
    /* every bit flip (one per byte) and truncation fails */
    for (size_t i = 0; i < n; i++) {
        q[i] ^= (uint8_t)(1u << (i % 8));
        if (verify1(q, n, col, now, false, &c) == COFFER_OK)
            fail_msg("TDX quote with bit %zu of byte %zu flipped verified", i % 8, i);
        q[i] ^= (uint8_t)(1u << (i % 8));
    }
    for (size_t len = 0; len < 4936; len += (len < 1300 ? 1 : 13))
        assert_int_not_equal(verify1(q, len, col, now, false, &c), COFFER_OK);
    /* TDX quote with SGX collateral for another FMSPC */
    struct coffer_attest_collateral *sgx = at_collateral("collateral/sgx-fmspc00A067110000-2025-06-19", false);
    at_assert_fails(verify1(q, n, sgx, now, false, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_COLLATERAL_MISMATCH);
    coffer_attest_collateral_free(sgx);
    /* the policy sees MRTD as the measurement and refuses a debug TD */
    assert_int_equal(verify1(q, n, col, now, false, &c), COFFER_OK);
    struct coffer_attest_policy p;
    coffer_attest_policy_init(&p);
    p.measurement_count = 1;
    p.measurements[0].size = 48;
    memcpy(p.measurements[0].bytes, c.mrtd, 48);
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    c.debug = true;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    c.debug = false;
    c.mrservicetd[47] = 1; /* bound to a service TD: opt-in only */
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.allow_service_td = true;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    coffer_attest_collateral_free(col);
    free(q);
    json_decref(exp);
}

int at_run_tdx(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tdx_vectors),
        cmocka_unit_test(test_tdx_negative_vectors),
        cmocka_unit_test(test_tdx_padding_and_cross),
    };
    return cmocka_run_group_tests_name("attest_tdx", tests, NULL, NULL);
}
