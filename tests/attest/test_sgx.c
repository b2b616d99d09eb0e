/* test_sgx.c — SGX DCAP v3 quotes: the recorded vectors decode to their
 * expected.json values and reach the expected verdict at verify_at, are
 * rejected now and in 2053, every negative vector fails at the step the
 * vectors' README names, and single-bit flips / truncations never verify. */
#include "attest_test.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (s == NULL)
        fail_msg("expected.json: no string %s", k);
    return s;
}

static int64_t jint(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        fail_msg("expected.json: no integer %s", k);
    return json_integer_value(v);
}

/* The decoded fields of an SGX quote against expected.json. */
static void check_sgx_body(const json_t *exp, const struct coffer_attest_claims *c)
{
    const json_t *b = json_object_get(exp, "body");
    assert_int_equal(c->kind, COFFER_ATTEST_KIND_SGX);
    at_assert_hex(jstr(b, "mrenclave"), c->mrenclave, 32);
    at_assert_hex(jstr(b, "mrsigner"), c->mrsigner, 32);
    at_assert_hex(jstr(b, "attributes"), c->attributes, 16);
    at_assert_hex(jstr(b, "cpusvn"), c->cpusvn, 16);
    at_assert_hex(jstr(b, "report_data"), c->report_data, 64);
    assert_int_equal(c->isv_prodid, jint(b, "isvprodid"));
    assert_int_equal(c->isv_svn, jint(b, "isvsvn"));
    assert_int_equal(c->miscselect, jint(b, "miscselect"));
    assert_int_equal(c->debug, json_is_true(json_object_get(exp, "debug")));
    const json_t *h = json_object_get(exp, "header"), *qe = json_object_get(exp, "qe_report");
    assert_int_equal(c->quote_version, jint(h, "version"));
    assert_int_equal(c->qe_svn, jint(h, "qe_svn"));
    assert_int_equal(c->pce_svn, jint(h, "pce_svn"));
    at_assert_hex(jstr(qe, "mrenclave"), c->qe_mrenclave, 32);
    at_assert_hex(jstr(qe, "mrsigner"), c->qe_mrsigner, 32);
    assert_int_equal(c->qe_isv_prodid, jint(qe, "isvprodid"));
    assert_int_equal(c->qe_isv_svn, jint(qe, "isvsvn"));
}

static void check_sgx_platform(const json_t *exp, const struct coffer_attest_claims *c)
{
    const json_t *p = json_object_get(exp, "pck_extensions");
    at_assert_hex(jstr(p, "fmspc"), c->fmspc, 6);
    at_assert_hex(jstr(p, "pceid"), c->pceid, 2);
    assert_int_equal(c->pcesvn, jint(p, "pcesvn"));
    json_t *comps = json_object_get(p, "tcb_comp_svns");
    assert_int_equal(json_array_size(comps), 16);
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(c->pck_tcb[i], json_integer_value(json_array_get(comps, i)));
}

static void check_verdict(const json_t *exp, const struct coffer_attest_claims *c)
{
    assert_string_equal(coffer_attest_tcb_name(c->tcb_status), jstr(exp, "expected_tcb_status"));
    assert_string_equal(coffer_attest_tcb_name(c->qe_tcb_status), jstr(exp, "qe_identity_tcb_status"));
    json_t *adv = json_object_get(exp, "expected_advisory_ids");
    assert_int_equal(c->advisory_count, json_array_size(adv));
    for (size_t i = 0; i < c->advisory_count; i++) {
        bool found = false;
        for (size_t j = 0; j < json_array_size(adv); j++)
            found |= strcmp(c->advisory_ids[i], json_string_value(json_array_get(adv, j))) == 0;
        if (!found)
            fail_msg("unexpected advisory %s", c->advisory_ids[i]);
    }
    assert_true(c->collateral_checked);
    assert_false(c->simulation);
    assert_int_equal(c->failed_step, COFFER_ATTEST_STEP_NONE);
}

static enum coffer_err verify1(const uint8_t *q, size_t n, struct coffer_attest_collateral *col, time_t now,
                               bool allow_missing_crl, struct coffer_attest_claims *c)
{
    const struct coffer_attest_collateral *list[1] = {col};
    struct coffer_attest_verify_opts o = {.now = now, .collateral = list, .collateral_count = col != NULL,
                                          .allow_missing_pck_crl = allow_missing_crl};
    return coffer_attest_evidence_verify(q, n, &o, c);
}

static void test_sgx_phala_verifies(void **state)
{
    (void)state;
    json_t *exp = at_expected("sgx/phala-v3");
    size_t n;
    uint8_t *q = at_read("sgx/phala-v3/quote.bin", &n);
    assert_int_equal(n, jint(exp, "size"));
    struct coffer_attest_collateral *col = at_collateral("collateral/sgx-fmspc00A067110000-2025-06-19", false);
    struct coffer_attest_claims c;
    enum coffer_err r = verify1(q, n, col, at_verify_at(exp), false, &c);
    if (r != COFFER_OK)
        fail_msg("phala: %s at %s", coffer_err_detail(), coffer_attest_step_name(c.failed_step));
    check_sgx_body(exp, &c);
    check_sgx_platform(exp, &c);
    check_verdict(exp, &c);
    assert_true(c.revocation_checked);
    /* decode gives the same body without a verdict */
    struct coffer_attest_claims d;
    assert_int_equal(coffer_attest_evidence_decode(q, n, &d), COFFER_OK);
    check_sgx_body(exp, &d);
    assert_int_equal(d.tcb_status, COFFER_ATTEST_TCB_NONE);
    /* JSON view names the status */
    json_t *j = coffer_attest_claims_to_json(&c);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "tcb_status")), "ConfigurationAndSWHardeningNeeded");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "sgx");
    json_decref(j);
    coffer_attest_collateral_free(col);
    free(q);
    json_decref(exp);
}

static void test_sgx_mobilecoin_stale_pck_crl(void **state)
{
    (void)state;
    json_t *exp = at_expected("sgx/mobilecoin-v3");
    size_t n;
    uint8_t *q = at_read("sgx/mobilecoin-v3/quote.bin", &n);
    const char *dir = "collateral/sgx-fmspc00906ED50000-2023-07-12";
    struct coffer_attest_claims c;
    /* revocation on: the shipped PCK CRL is stale at verify_at */
    struct coffer_attest_collateral *col = at_collateral(dir, false);
    enum coffer_err r = verify1(q, n, col, at_verify_at(exp), true, &c);
    at_assert_fails(r, &c, COFFER_E_EXPIRED, COFFER_ATTEST_STEP_PCK_REVOCATION);
    assert_non_null(strstr(coffer_err_detail(), "PCK CRL has expired"));
    coffer_attest_collateral_free(col);
    /* no PCK CRL and no explicit permission: refused */
    col = at_collateral(dir, true);
    r = verify1(q, n, col, at_verify_at(exp), false, &c);
    at_assert_fails(r, &c, COFFER_E_NOT_FOUND, COFFER_ATTEST_STEP_PCK_REVOCATION);
    /* revocation data explicitly unavailable: the expected verdict, reported as unchecked */
    r = verify1(q, n, col, at_verify_at(exp), true, &c);
    if (r != COFFER_OK)
        fail_msg("mobilecoin: %s at %s", coffer_err_detail(), coffer_attest_step_name(c.failed_step));
    check_sgx_body(exp, &c);
    check_sgx_platform(exp, &c);
    check_verdict(exp, &c);
    assert_false(c.revocation_checked);
    coffer_attest_collateral_free(col);
    free(q);
    json_decref(exp);
}

static void test_sgx_rejected_now_and_2053(void **state)
{
    (void)state;
    static const char *vec[][2] = {{"sgx/phala-v3", "collateral/sgx-fmspc00A067110000-2025-06-19"},
                                   {"sgx/mobilecoin-v3", "collateral/sgx-fmspc00906ED50000-2023-07-12"}};
    for (size_t i = 0; i < 2; i++) {
        char rel[128];
        snprintf(rel, sizeof(rel), "%s/quote.bin", vec[i][0]);
        size_t n;
        uint8_t *q = at_read(rel, &n);
        struct coffer_attest_collateral *col = at_collateral(vec[i][1], true);
        struct coffer_attest_claims c;
        /* the real current time: collateral (or the old TCB signing cert) expired */
        enum coffer_err r = verify1(q, n, col, time(NULL), true, &c);
        assert_int_equal(r, COFFER_E_EXPIRED);
        assert_true(c.failed_step == COFFER_ATTEST_STEP_PCK_REVOCATION ||
                    c.failed_step == COFFER_ATTEST_STEP_TCB_SIGNING_CHAIN ||
                    c.failed_step == COFFER_ATTEST_STEP_COLLATERAL_EXPIRED);
        /* one year after verify_at: still expired collateral */
        json_t *exp = at_expected(vec[i][0]);
        r = verify1(q, n, col, at_verify_at(exp) + 366 * 86400, true, &c);
        assert_int_equal(r, COFFER_E_EXPIRED);
        json_decref(exp);
        /* far future: the PCK certificate itself has expired */
        r = verify1(q, n, col, at_time("2053-01-01T00:00:00Z"), true, &c);
        at_assert_fails(r, &c, COFFER_E_EXPIRED, COFFER_ATTEST_STEP_PCK_CHAIN);
        coffer_attest_collateral_free(col);
        free(q);
    }
}

static void test_sgx_occlum_debug_no_collateral(void **state)
{
    (void)state;
    json_t *exp = at_expected("sgx/occlum-v3-debug");
    size_t n;
    uint8_t *q = at_read("sgx/occlum-v3-debug/quote.bin", &n);
    struct coffer_attest_claims c;
    /* every signature check passes, then appraisal stops at "no collateral" */
    enum coffer_err r = verify1(q, n, NULL, at_verify_at(exp), false, &c);
    at_assert_fails(r, &c, COFFER_E_NOT_FOUND, COFFER_ATTEST_STEP_COLLATERAL);
    assert_non_null(strstr(coffer_err_detail(), "00606a000000"));
    /* collateral for other platforms does not help */
    struct coffer_attest_collateral *a = at_collateral("collateral/sgx-fmspc00A067110000-2025-06-19", false);
    struct coffer_attest_collateral *b = at_collateral("collateral/sgx-fmspc00906ED50000-2023-07-12", false);
    const struct coffer_attest_collateral *list[2] = {a, b};
    struct coffer_attest_verify_opts o = {.now = at_verify_at(exp), .collateral = list, .collateral_count = 2};
    r = coffer_attest_evidence_verify(q, n, &o, &c);
    at_assert_fails(r, &c, COFFER_E_NOT_FOUND, COFFER_ATTEST_STEP_COLLATERAL);
    /* now: still refused (no collateral exists for this platform) */
    assert_int_not_equal(verify1(q, n, NULL, time(NULL), false, &c), COFFER_OK);
    /* the chain is checked before anything else: in 2053 it fails there */
    r = verify1(q, n, NULL, at_time("2053-01-01T00:00:00Z"), false, &c);
    at_assert_fails(r, &c, COFFER_E_EXPIRED, COFFER_ATTEST_STEP_PCK_CHAIN);
    /* decoded claims; a policy that forbids debug refuses it */
    assert_int_equal(coffer_attest_evidence_decode(q, n, &c), COFFER_OK);
    check_sgx_body(exp, &c);
    assert_true(c.debug);
    struct coffer_attest_policy p;
    coffer_attest_policy_init(&p);
    p.allow_no_collateral = true;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    assert_non_null(strstr(coffer_err_detail(), "debug"));
    coffer_attest_collateral_free(a);
    coffer_attest_collateral_free(b);
    free(q);
    json_decref(exp);
}

static void test_sgx_negative_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        enum coffer_err code;
        enum coffer_attest_step step;
    } neg[] = {
        {"sgx/phala-v3/neg-body-mrenclave.bin", COFFER_E_SIGNATURE, COFFER_ATTEST_STEP_QUOTE_SIGNATURE},
        {"sgx/phala-v3/neg-sig.bin", COFFER_E_SIGNATURE, COFFER_ATTEST_STEP_QUOTE_SIGNATURE},
        {"sgx/phala-v3/neg-qe-report.bin", COFFER_E_SIGNATURE, COFFER_ATTEST_STEP_QE_REPORT_SIGNATURE},
        {"sgx/phala-v3/neg-qe-auth.bin", COFFER_E_SIGNATURE, COFFER_ATTEST_STEP_QE_BINDING},
    };
    json_t *exp = at_expected("sgx/phala-v3");
    struct coffer_attest_collateral *col = at_collateral("collateral/sgx-fmspc00A067110000-2025-06-19", false);
    for (size_t i = 0; i < sizeof(neg) / sizeof(neg[0]); i++) {
        size_t n;
        uint8_t *q = at_read(neg[i].file, &n);
        struct coffer_attest_claims c;
        enum coffer_err r = verify1(q, n, col, at_verify_at(exp), false, &c);
        at_assert_fails(r, &c, neg[i].code, neg[i].step);
        free(q);
    }
    coffer_attest_collateral_free(col);
    json_decref(exp);
}

static void test_sgx_tampered_tcb_info(void **state)
{
    (void)state;
    const char *dir = "vectors/attest/collateral/sgx-fmspc00A067110000-2025-06-19";
    char p[512];
    size_t tn, sn;
    snprintf(p, sizeof(p), "%s/neg-tcb_info-tampered.json", dir);
    uint8_t *ti = tu_read(tu_shared(p), &tn);
    snprintf(p, sizeof(p), "%s/tcb_signing_chain.pem", dir);
    uint8_t *sc = tu_read(tu_shared(p), &sn);
    struct coffer_attest_collateral_bytes b = {.tcb_info = ti, .tcb_info_size = tn, .tcb_signing_chain = sc,
                                               .tcb_signing_chain_size = sn};
    struct coffer_attest_collateral *c = NULL;
    enum coffer_attest_step step;
    assert_int_equal(coffer_attest_collateral_parse(&b, &c, &step), COFFER_E_SIGNATURE);
    assert_int_equal(step, COFFER_ATTEST_STEP_TCB_INFO_SIGNATURE);
    assert_null(c);
    /* the same file without its signing chain is refused too */
    b.tcb_signing_chain = NULL;
    assert_int_equal(coffer_attest_collateral_parse(&b, &c, &step), COFFER_E_NOT_FOUND);
    free(ti);
    free(sc);
}

static void test_sgx_cross_pairing(void **state)
{
    (void)state;
    json_t *exp = at_expected("sgx/phala-v3");
    size_t n;
    uint8_t *q = at_read("sgx/phala-v3/quote.bin", &n);
    struct coffer_attest_claims c;
    /* SGX quote with a TDX collateral set: FMSPC (and id) do not match */
    struct coffer_attest_collateral *col = at_collateral("collateral/tdx-fmspcB0C06F000000-2025-06-19", false);
    enum coffer_err r = verify1(q, n, col, at_verify_at(exp), false, &c);
    at_assert_fails(r, &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_COLLATERAL_MISMATCH);
    coffer_attest_collateral_free(col);
    /* SGX quote with another platform's SGX collateral */
    col = at_collateral("collateral/sgx-fmspc00906ED50000-2023-07-12", false);
    r = verify1(q, n, col, at_verify_at(exp), false, &c);
    at_assert_fails(r, &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_COLLATERAL_MISMATCH);
    coffer_attest_collateral_free(col);
    free(q);
    json_decref(exp);
}

/* STYLE §3.19: every single-bit flip (one bit per byte, rotating) and every
 * truncation of a good quote fails; nothing crashes, nothing verifies. */
static void test_sgx_mutations_never_verify(void **state)
{
    (void)state;
    json_t *exp = at_expected("sgx/phala-v3");
    size_t n;
    uint8_t *q = at_read("sgx/phala-v3/quote.bin", &n);
    struct coffer_attest_collateral *col = at_collateral("collateral/sgx-fmspc00A067110000-2025-06-19", false);
    time_t now = at_verify_at(exp);
    struct coffer_attest_claims c;
    assert_int_equal(verify1(q, n, col, now, false, &c), COFFER_OK);
    for (size_t i = 0; i < n; i++) {
        q[i] ^= (uint8_t)(1u << (i % 8));
        enum coffer_err r = verify1(q, n, col, now, false, &c);
        if (r == COFFER_OK)
            fail_msg("quote with bit %zu of byte %zu flipped verified", i % 8, i);
        assert_int_not_equal(c.failed_step, COFFER_ATTEST_STEP_NONE);
        q[i] ^= (uint8_t)(1u << (i % 8));
    }
    for (size_t len = 0; len < n; len += (len < 1100 ? 1 : 7)) {
        enum coffer_err r = verify1(q, len, col, now, false, &c);
        if (r == COFFER_OK)
            fail_msg("quote truncated to %zu bytes verified", len);
    }
    /* appended non-zero bytes are refused; zero padding is tolerated */
    uint8_t *big = calloc(1, n + 16);
    memcpy(big, q, n);
    assert_int_equal(verify1(big, n + 16, col, now, false, &c), COFFER_OK);
    big[n + 3] = 1;
    assert_int_equal(verify1(big, n + 16, col, now, false, &c), COFFER_E_TRAILING);
    free(big);
    coffer_attest_collateral_free(col);
    free(q);
    json_decref(exp);
}

static void test_sgx_policy(void **state)
{
    (void)state;
    json_t *exp = at_expected("sgx/phala-v3");
    size_t n;
    uint8_t *q = at_read("sgx/phala-v3/quote.bin", &n);
    struct coffer_attest_collateral *col = at_collateral("collateral/sgx-fmspc00A067110000-2025-06-19", false);
    struct coffer_attest_claims c;
    assert_int_equal(verify1(q, n, col, at_verify_at(exp), false, &c), COFFER_OK);
    struct coffer_attest_policy p;
    coffer_attest_policy_init(&p);
    /* strict default: only UpToDate */
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    assert_non_null(strstr(coffer_err_detail(), "ConfigurationAndSWHardeningNeeded"));
    p.tcb_statuses |= 1u << COFFER_ATTEST_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED;
    /* status accepted, advisories not yet */
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    assert_non_null(strstr(coffer_err_detail(), "INTEL-SA-"));
    snprintf(p.advisories[0], sizeof(p.advisories[0]), "INTEL-SA-00289");
    snprintf(p.advisories[1], sizeof(p.advisories[1]), "INTEL-SA-00615");
    p.advisory_count = 2;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    /* measurement list */
    p.measurement_count = 1;
    p.measurements[0].size = 32;
    memcpy(p.measurements[0].bytes, c.mrenclave, 32);
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    p.measurements[0].bytes[0] ^= 1;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.measurements[0].bytes[0] ^= 1;
    /* signer, product, SVN */
    p.signer_count = 1;
    p.signers[0].size = 32;
    memcpy(p.signers[0].bytes, c.mrsigner, 32);
    p.check_isv_prodid = true;
    p.isv_prodid = 0;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    p.isv_prodid = 1;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.isv_prodid = 0;
    p.min_isv_svn = 1;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.min_isv_svn = 0;
    /* report data binding: "Hello, world!" */
    p.check_report_data = true;
    memset(p.report_data, 0, 64);
    memcpy(p.report_data, "Hello, world!", 13);
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    p.report_data[0] = 'h';
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.report_data[0] = 'H';
    /* Gramine's attribute rules: PROVISIONKEY set, or INIT clear, is refused */
    c.attributes[0] |= 0x10;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    c.attributes[0] = 0x04;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    c.attributes[0] = 0x05;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    /* SGX not among the kinds */
    p.kinds = 1u << COFFER_ATTEST_KIND_TDX;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    coffer_attest_collateral_free(col);
    free(q);
    json_decref(exp);
}

static void test_pinned_roots_match_vectors(void **state)
{
    (void)state;
    size_t n, en;
    uint8_t *d = at_read("roots/intel_sgx_root_ca.der", &n);
    const uint8_t *e = coffer_attest_intel_root_der(&en);
    assert_int_equal(n, en);
    assert_memory_equal(d, e, n);
    uint8_t h[32];
    unsigned int hl = 32;
    assert_int_equal(EVP_Digest(e, en, h, &hl, EVP_sha256(), NULL), 1);
    at_assert_hex("44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3", h, 32);
    free(d);
}

/* STYLE §3.18: every allocation coffer makes while loading collateral and
 * verifying a quote can fail; each run ends in success or E_NOMEM and leaks
 * nothing (ASan). */
static enum coffer_err fault_body(void *arg)
{
    (void)arg;
    struct coffer_attest_collateral *col;
    enum coffer_err r = coffer_attest_collateral_load_dir(
        tu_shared("vectors/attest/collateral/sgx-fmspc00A067110000-2025-06-19"), &col, NULL);
    if (r != COFFER_OK)
        return r;
    uint8_t *q;
    size_t n;
    r = coffer_file_read_all(tu_shared("vectors/attest/sgx/phala-v3/quote.bin"), 1 << 20, &q, &n);
    if (r == COFFER_OK) {
        const struct coffer_attest_collateral *list[1] = {col};
        struct coffer_attest_verify_opts o = {.now = 1751328000, .collateral = list, .collateral_count = 1};
        struct coffer_attest_claims c;
        r = coffer_attest_evidence_verify(q, n, &o, &c);
        coffer_free(q);
    }
    coffer_attest_collateral_free(col);
    return r;
}

static void test_sgx_allocation_faults(void **state)
{
    (void)state;
    tu_fault_loop(fault_body, NULL);
}

int at_run_sgx(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned_roots_match_vectors),
        cmocka_unit_test(test_sgx_phala_verifies),
        cmocka_unit_test(test_sgx_mobilecoin_stale_pck_crl),
        cmocka_unit_test(test_sgx_rejected_now_and_2053),
        cmocka_unit_test(test_sgx_occlum_debug_no_collateral),
        cmocka_unit_test(test_sgx_negative_vectors),
        cmocka_unit_test(test_sgx_tampered_tcb_info),
        cmocka_unit_test(test_sgx_cross_pairing),
        cmocka_unit_test(test_sgx_policy),
        cmocka_unit_test(test_sgx_mutations_never_verify),
        cmocka_unit_test(test_sgx_allocation_faults),
    };
    return cmocka_run_group_tests_name("attest_sgx", tests, NULL, NULL);
}
