/* test_sim_policy.c — simulation evidence and the local platform key, the
 * policy type, its JSON form and matcher, providers, times. */
#include "attest_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

static char *tmpdir;
static char keypath[512];

static int setup(void **state)
{
    (void)state;
    tmpdir = tu_mkdtemp();
    snprintf(keypath, sizeof(keypath), "%s/sub/platform.pem", tmpdir);
    setenv("COFFER_SIM_PLATFORM_KEY", keypath, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(tmpdir);
    free(tmpdir);
    unsetenv("COFFER_SIM_PLATFORM_KEY");
    return 0;
}

static void sim_make(uint8_t rd[64], uint8_t **ev, size_t *n)
{
    for (int i = 0; i < 64; i++)
        rd[i] = (uint8_t)(i * 7 + 1);
    enum coffer_err r = coffer_attest_sim_evidence(keypath, NULL, rd, ev, n);
    if (r != COFFER_OK)
        fail_msg("sim evidence: %s", coffer_err_detail());
    assert_int_equal(*n, COFFER_ATTEST_SIM_SIZE);
}

/* sim_make, and the platform's public key. */
static void sim_make_pub(uint8_t rd[64], uint8_t **ev, size_t *n, uint8_t pub[64])
{
    sim_make(rd, ev, n);
    assert_int_equal(coffer_attest_sim_key_public(keypath, false, pub), COFFER_OK);
}

static void test_sim_roundtrip(void **state)
{
    (void)state;
    uint8_t rd[64], pub[64], pub2[64];
    uint8_t *ev;
    size_t n;
    sim_make(rd, &ev, &n);
    /* the key was created on first use, private to its owner, and is reused */
    struct stat st;
    assert_int_equal(stat(keypath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(coffer_attest_sim_key_public(keypath, false, pub), COFFER_OK);
    uint8_t *ev2;
    size_t n2;
    assert_int_equal(coffer_attest_sim_evidence(keypath, NULL, rd, &ev2, &n2), COFFER_OK);
    assert_int_equal(coffer_attest_sim_key_public(keypath, false, pub2), COFFER_OK);
    assert_memory_equal(pub, pub2, 64);
    free(ev2);

    assert_int_equal(coffer_attest_evidence_kind(ev, n), COFFER_ATTEST_KIND_SIM);
    struct coffer_attest_verify_opts o = {.now = time(NULL), .sim_platform_key = pub};
    struct coffer_attest_claims c;
    enum coffer_err r = coffer_attest_evidence_verify(ev, n, &o, &c);
    if (r != COFFER_OK)
        fail_msg("%s", coffer_err_detail());
    assert_int_equal(c.kind, COFFER_ATTEST_KIND_SIM);
    assert_true(c.simulation);
    assert_memory_equal(c.report_data, rd, 64);
    assert_memory_equal(c.sim_platform_key, pub, 64);
    /* the measured executable is this test binary */
    uint8_t *self;
    size_t sn;
    assert_int_equal(coffer_file_read_all("/proc/self/exe", (size_t)1 << 31, &self, &sn), COFFER_OK);
    uint8_t h[32];
    unsigned int hl = 32;
    assert_int_equal(EVP_Digest(self, sn, h, &hl, EVP_sha256(), NULL), 1);
    coffer_free(self);
    assert_memory_equal(c.exe_sha256, h, 32);
    /* everything that rests on it says simulation */
    json_t *j = coffer_attest_claims_to_json(&c);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "simulation");
    assert_string_equal(json_string_value(json_object_get(j, "tcb_status")), "simulation");
    assert_true(json_is_true(json_object_get(j, "simulation")));
    json_decref(j);
    free(ev);
}

static void test_sim_key_refused(void **state)
{
    (void)state;
    uint8_t rd[64], pub[64];
    uint8_t *ev;
    size_t n;
    sim_make(rd, &ev, &n);
    assert_int_equal(coffer_attest_sim_key_public(keypath, false, pub), COFFER_OK);
    struct coffer_attest_claims c;
    /* no trusted key: refused */
    struct coffer_attest_verify_opts o = {.now = time(NULL)};
    at_assert_fails(coffer_attest_evidence_verify(ev, n, &o, &c), &c, COFFER_E_CERT, COFFER_ATTEST_STEP_SIM_KEY);
    /* another platform's key: refused */
    char other[600];
    uint8_t opub[64];
    snprintf(other, sizeof(other), "%s/other.pem", tmpdir);
    assert_int_equal(coffer_attest_sim_key_public(other, true, opub), COFFER_OK);
    assert_memory_not_equal(opub, pub, 64);
    o.sim_platform_key = opub;
    at_assert_fails(coffer_attest_evidence_verify(ev, n, &o, &c), &c, COFFER_E_CERT, COFFER_ATTEST_STEP_SIM_KEY);
    /* a statement re-signed by another key but claiming ours fails the signature */
    o.sim_platform_key = pub;
    ev[200] ^= 1;
    at_assert_fails(coffer_attest_evidence_verify(ev, n, &o, &c), &c, COFFER_E_SIGNATURE,
                    COFFER_ATTEST_STEP_SIM_SIGNATURE);
    ev[200] ^= 1;
    /* key file missing and create=false */
    char none[600];
    snprintf(none, sizeof(none), "%s/none.pem", tmpdir);
    assert_int_equal(coffer_attest_sim_key_public(none, false, opub), COFFER_E_NOT_FOUND);
    free(ev);
}

/* A signer made once signs many statements: each verifies, binds its own
 * report data, and carries the same executable hash and key as the one-shot
 * call; a verifier that has the platform key memoised still checks every
 * signature. */
static void test_sim_signer(void **state)
{
    (void)state;
    uint8_t rd[64], pub[64];
    uint8_t *ev;
    size_t n;
    sim_make_pub(rd, &ev, &n, pub);
    struct coffer_attest_sim_signer *s;
    assert_int_equal(coffer_attest_sim_signer_open(keypath, NULL, &s), COFFER_OK);
    struct coffer_attest_verify_opts o = {.now = time(NULL), .sim_platform_key = pub};
    struct coffer_attest_claims c;
    for (int k = 0; k < 3; k++) {
        uint8_t rd2[64], *ev2;
        size_t n2;
        memset(rd2, 0x30 + k, sizeof(rd2));
        assert_int_equal(coffer_attest_sim_signer_sign(s, rd2, &ev2, &n2), COFFER_OK);
        assert_int_equal(n2, COFFER_ATTEST_SIM_SIZE);
        assert_memory_equal(ev2, ev, 48);          /* magic, version, executable */
        assert_memory_equal(ev2 + 112, ev + 112, 64); /* platform key */
        assert_int_equal(coffer_attest_evidence_verify(ev2, n2, &o, &c), COFFER_OK);
        assert_memory_equal(c.report_data, rd2, 64);
        ev2[60] ^= 1; /* the report data is signed */
        at_assert_fails(coffer_attest_evidence_verify(ev2, n2, &o, &c), &c, COFFER_E_SIGNATURE,
                        COFFER_ATTEST_STEP_SIM_SIGNATURE);
        free(ev2);
    }
    uint8_t *none;
    size_t nn;
    assert_int_equal(coffer_attest_sim_signer_sign(s, NULL, &none, &nn), COFFER_E_INVALID_ARG);
    coffer_attest_sim_signer_free(s);
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/no-such-exe", tmpdir);
    assert_int_equal(coffer_attest_sim_signer_open(keypath, missing, &s), COFFER_E_NOT_FOUND);
    assert_null(s);
    free(ev);
}

static void test_sim_mutations(void **state)
{
    (void)state;
    uint8_t rd[64], pub[64];
    uint8_t *ev;
    size_t n;
    sim_make(rd, &ev, &n);
    assert_int_equal(coffer_attest_sim_key_public(keypath, false, pub), COFFER_OK);
    struct coffer_attest_verify_opts o = {.now = time(NULL), .sim_platform_key = pub};
    struct coffer_attest_claims c;
    for (size_t i = 0; i < n * 8; i++) {
        ev[i / 8] ^= (uint8_t)(1u << (i % 8));
        if (coffer_attest_evidence_verify(ev, n, &o, &c) == COFFER_OK)
            fail_msg("bit %zu flipped verified", i);
        ev[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    for (size_t len = 0; len < n; len++)
        assert_int_not_equal(coffer_attest_evidence_verify(ev, len, &o, &c), COFFER_OK);
    uint8_t longer[COFFER_ATTEST_SIM_SIZE + 1] = {0};
    memcpy(longer, ev, n);
    assert_int_equal(coffer_attest_evidence_verify(longer, n + 1, &o, &c), COFFER_E_TRAILING);
    assert_int_equal(coffer_attest_evidence_verify(ev, n, &o, &c), COFFER_OK);
    free(ev);
}

static void test_policy_simulation_opt_in(void **state)
{
    (void)state;
    uint8_t rd[64], pub[64];
    uint8_t *ev;
    size_t n;
    sim_make(rd, &ev, &n);
    assert_int_equal(coffer_attest_sim_key_public(keypath, false, pub), COFFER_OK);
    struct coffer_attest_verify_opts o = {.now = time(NULL), .sim_platform_key = pub};
    struct coffer_attest_claims c;
    assert_int_equal(coffer_attest_evidence_verify(ev, n, &o, &c), COFFER_OK);
    struct coffer_attest_policy p;
    coffer_attest_policy_init(&p);
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    assert_non_null(strstr(coffer_err_detail(), "simulation"));
    p.allow_simulation = true; /* the kind bit is still missing */
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.kinds |= 1u << COFFER_ATTEST_KIND_SIM;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    /* measurement = executable hash */
    p.measurement_count = 1;
    p.measurements[0].size = 32;
    memset(p.measurements[0].bytes, 0xaa, 32);
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    memcpy(p.measurements[0].bytes, c.exe_sha256, 32);
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    p.check_report_data = true;
    memcpy(p.report_data, rd, 64);
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    p.report_data[63] ^= 1;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    /* failed claims never pass */
    struct coffer_attest_claims bad;
    memset(&bad, 0, sizeof(bad));
    bad.failed_step = COFFER_ATTEST_STEP_QUOTE_SIGNATURE;
    assert_int_equal(coffer_attest_policy_check(&p, &bad), COFFER_E_POLICY);
    free(ev);
}

static void test_policy_statuses_and_vmpl(void **state)
{
    (void)state;
    struct coffer_attest_policy p;
    coffer_attest_policy_init(&p);
    struct coffer_attest_claims c;
    memset(&c, 0, sizeof(c));
    c.kind = COFFER_ATTEST_KIND_SNP;
    c.collateral_checked = true;
    c.tcb_status = COFFER_ATTEST_TCB_UP_TO_DATE;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    c.guest_svn = 2;
    p.min_isv_svn = 3;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.min_isv_svn = 2;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    c.vmpl = 1;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.max_vmpl = 1;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    c.debug = true;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.allow_debug = true;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
    c.kind = COFFER_ATTEST_KIND_SGX;
    c.attributes[0] = 0x05; /* INIT | MODE64BIT */
    p.min_isv_svn = 0;
    for (int t = COFFER_ATTEST_TCB_UP_TO_DATE; t < COFFER_ATTEST_TCB_COUNT; t++) {
        c.tcb_status = (enum coffer_attest_tcb)t;
        p.tcb_statuses = 0xffffffffu; /* even "everything" never admits Revoked / NotSupported */
        enum coffer_err want = t == COFFER_ATTEST_TCB_REVOKED || t == COFFER_ATTEST_TCB_NOT_SUPPORTED
                                   ? COFFER_E_POLICY : COFFER_OK;
        assert_int_equal(coffer_attest_policy_check(&p, &c), want);
        p.tcb_statuses = 0;
        want = t == COFFER_ATTEST_TCB_UP_TO_DATE ? COFFER_OK : COFFER_E_POLICY;
        assert_int_equal(coffer_attest_policy_check(&p, &c), want);
    }
    c.tcb_status = COFFER_ATTEST_TCB_NONE;
    c.collateral_checked = false;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_E_POLICY);
    p.allow_no_collateral = true;
    assert_int_equal(coffer_attest_policy_check(&p, &c), COFFER_OK);
}

static void test_policy_json(void **state)
{
    (void)state;
    const char *txt = "{\"kinds\":[\"sgx\",\"simulation\"],\"allow_simulation\":true,"
                      "\"measurements\":[\"33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb\"],"
                      "\"signers\":[\"815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6\"],"
                      "\"isv_prodid\":0,\"min_isv_svn\":0,\"allow_debug\":false,"
                      "\"tcb_statuses\":[\"SWHardeningNeeded\",\"ConfigurationAndSWHardeningNeeded\"],"
                      "\"advisories\":[\"INTEL-SA-00289\",\"INTEL-SA-00615\"],\"max_vmpl\":0}";
    json_t *j;
    assert_int_equal(coffer_json_parse(txt, strlen(txt), 1 << 16, &j), COFFER_OK);
    struct coffer_attest_policy p;
    assert_int_equal(coffer_attest_policy_from_json(j, &p), COFFER_OK);
    json_decref(j);
    assert_true(p.allow_simulation);
    assert_int_equal(p.kinds, (1u << COFFER_ATTEST_KIND_SGX) | (1u << COFFER_ATTEST_KIND_SIM));
    assert_int_equal(p.measurement_count, 1);
    assert_int_equal(p.measurements[0].size, 32);
    assert_int_equal(p.measurements[0].bytes[0], 0x33);
    assert_int_equal(p.signer_count, 1);
    assert_true(p.check_isv_prodid);
    assert_int_equal(p.advisory_count, 2);
    assert_string_equal(p.advisories[1], "INTEL-SA-00615");
    assert_true(p.tcb_statuses & (1u << COFFER_ATTEST_TCB_SW_HARDENING_NEEDED));
    assert_int_equal(p.min_snp_ucode, -1);
    const char *snp = "{\"min_snp_tcb\":{\"bl\":3,\"ucode\":209}}";
    json_t *sj;
    assert_int_equal(coffer_json_parse(snp, strlen(snp), 1 << 16, &sj), COFFER_OK);
    struct coffer_attest_policy sp;
    assert_int_equal(coffer_attest_policy_from_json(sj, &sp), COFFER_OK);
    json_decref(sj);
    assert_int_equal(sp.min_snp_bl, 3);
    assert_int_equal(sp.min_snp_ucode, 209);
    assert_int_equal(sp.min_snp_tee, -1);
    /* "kinds" without "tcb_statuses" or "advisories" (what deploy/gramine/sgx-package.py writes) */
    const char *kinds_only = "{\"kinds\":[\"sgx\"],\"measurements\":"
                             "[\"33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb\"]}";
    assert_int_equal(coffer_json_parse(kinds_only, strlen(kinds_only), 1 << 16, &sj), COFFER_OK);
    assert_int_equal(coffer_attest_policy_from_json(sj, &sp), COFFER_OK);
    json_decref(sj);
    assert_int_equal(sp.tcb_statuses, 1u << COFFER_ATTEST_TCB_UP_TO_DATE);
    assert_int_equal(sp.advisory_count, 0);
    assert_true(p.tcb_statuses & (1u << COFFER_ATTEST_TCB_UP_TO_DATE));
    assert_false(p.tcb_statuses & (1u << COFFER_ATTEST_TCB_OUT_OF_DATE));
    static const char *bad[] = {
        "{\"measurement\":[]}",                 /* typo: unknown key */
        "{\"tcb_statuses\":[\"Revoked\"]}",     /* never acceptable */
        "{\"tcb_statuses\":[\"Fine\"]}",        /* not a status */
        "{\"measurements\":[\"abcd\"]}",        /* wrong length */
        "{\"kinds\":[\"epid\"]}",               /* not a kind */
        "{\"max_vmpl\":7}",
        "{\"min_snp_tcb\":{\"microcode\":1}}",
        "{\"min_snp_tcb\":{\"ucode\":256}}",
        "{\"report_data\":\"00\"}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(coffer_json_parse(bad[i], strlen(bad[i]), 1 << 16, &j), COFFER_OK);
        if (coffer_attest_policy_from_json(j, &p) == COFFER_OK)
            fail_msg("accepted policy %s", bad[i]);
        json_decref(j);
    }
}

static void test_providers(void **state)
{
    (void)state;
    enum coffer_attest_provider p;
    assert_int_equal(coffer_attest_provider_parse("tsm", &p), COFFER_OK);
    assert_int_equal(p, COFFER_ATTEST_PROVIDER_TSM);
    assert_int_equal(coffer_attest_provider_parse("sgx-please", &p), COFFER_E_INVALID_ARG);
    setenv("COFFER_ATTEST_PROVIDER", "simulation", 1);
    assert_int_equal(coffer_attest_provider_detect(&p), COFFER_OK);
    assert_int_equal(p, COFFER_ATTEST_PROVIDER_SIM);
    setenv("COFFER_ATTEST_PROVIDER", "gramine", 1);
    assert_int_equal(coffer_attest_provider_detect(&p), COFFER_OK);
    assert_int_equal(p, COFFER_ATTEST_PROVIDER_GRAMINE);
    uint8_t rd[64] = {1, 2, 3};
    uint8_t *ev;
    size_t n;
    struct stat st;
    if (stat("/dev/attestation/quote", &st) != 0) {
        /* asked for hardware, none here: an error, never simulation */
        assert_int_not_equal(coffer_attest_provider_evidence(COFFER_ATTEST_PROVIDER_AUTO, rd, &ev, &n), COFFER_OK);
        assert_null(ev);
    }
    if (stat("/sys/kernel/config/tsm/report", &st) != 0) {
        assert_int_not_equal(coffer_attest_provider_evidence(COFFER_ATTEST_PROVIDER_TSM, rd, &ev, &n), COFFER_OK);
        assert_null(ev);
    }
    unsetenv("COFFER_ATTEST_PROVIDER");
    if (stat("/dev/attestation/quote", &st) != 0 && stat("/sys/kernel/config/tsm/report", &st) != 0)
        assert_int_equal(coffer_attest_provider_detect(&p), COFFER_E_NOT_FOUND);
    /* explicit simulation works and says so */
    assert_int_equal(coffer_attest_provider_evidence(COFFER_ATTEST_PROVIDER_SIM, rd, &ev, &n), COFFER_OK);
    assert_int_equal(coffer_attest_evidence_kind(ev, n), COFFER_ATTEST_KIND_SIM);
    free(ev);
}

/* Stand-in folders for /dev/attestation and configfs-tsm: detection order,
 * the Gramine write-then-read flow, and no fallback when hardware fails. */
static void test_providers_stand_in(void **state)
{
    (void)state;
    char g[600], t[600], p[700];
    snprintf(g, sizeof(g), "%s/gramine", tmpdir);
    snprintf(t, sizeof(t), "%s/tsm", tmpdir);
    assert_int_equal(coffer_mkdir_p(g, 0700), COFFER_OK);
    setenv("COFFER_GRAMINE_ATTESTATION_DIR", g, 1);
    setenv("COFFER_TSM_REPORT_DIR", t, 1);
    unsetenv("COFFER_ATTEST_PROVIDER");
    enum coffer_attest_provider pr;
    assert_int_equal(coffer_attest_provider_detect(&pr), COFFER_E_NOT_FOUND);
    /* configfs-tsm appears: detected; a report that never comes is an error */
    assert_int_equal(coffer_mkdir_p(t, 0700), COFFER_OK);
    assert_int_equal(coffer_attest_provider_detect(&pr), COFFER_OK);
    assert_int_equal(pr, COFFER_ATTEST_PROVIDER_TSM);
    uint8_t rd[64] = {0xee};
    uint8_t *ev = (uint8_t *)"x";
    size_t n = 1;
    assert_int_not_equal(coffer_attest_provider_evidence(COFFER_ATTEST_PROVIDER_AUTO, rd, &ev, &n), COFFER_OK);
    assert_null(ev);
    assert_int_equal(n, 0);
    /* Gramine appears (it wins): the quote file is returned after report data was written */
    size_t qn;
    uint8_t *q = at_read("sgx/phala-v3/quote.bin", &qn);
    snprintf(p, sizeof(p), "%s/quote", g);
    assert_int_equal(coffer_file_write_atomic(p, q, qn, 0600), COFFER_OK);
    snprintf(p, sizeof(p), "%s/attestation_type", g);
    assert_int_equal(coffer_file_write_atomic(p, "dcap", 4, 0600), COFFER_OK);
    snprintf(p, sizeof(p), "%s/user_report_data", g);
    assert_int_equal(coffer_file_write_atomic(p, "", 0, 0600), COFFER_OK);
    assert_int_equal(coffer_attest_provider_detect(&pr), COFFER_OK);
    assert_int_equal(pr, COFFER_ATTEST_PROVIDER_GRAMINE);
    assert_int_equal(coffer_attest_provider_evidence(COFFER_ATTEST_PROVIDER_AUTO, rd, &ev, &n), COFFER_OK);
    assert_int_equal(n, qn);
    assert_memory_equal(ev, q, qn);
    free(ev);
    uint8_t *written;
    size_t wn;
    snprintf(p, sizeof(p), "%s/user_report_data", g);
    assert_int_equal(coffer_file_read_all(p, 4096, &written, &wn), COFFER_OK);
    assert_int_equal(wn, 64);
    assert_memory_equal(written, rd, 64);
    coffer_free(written);
    /* attestation type "none": refused, not simulated */
    snprintf(p, sizeof(p), "%s/attestation_type", g);
    assert_int_equal(coffer_file_write_atomic(p, "none", 4, 0600), COFFER_OK);
    assert_int_equal(coffer_attest_provider_evidence(COFFER_ATTEST_PROVIDER_GRAMINE, rd, &ev, &n), COFFER_E_UNSUPPORTED);
    /* the explicit override still wins over detection */
    setenv("COFFER_ATTEST_PROVIDER", "tsm", 1);
    assert_int_equal(coffer_attest_provider_detect(&pr), COFFER_OK);
    assert_int_equal(pr, COFFER_ATTEST_PROVIDER_TSM);
    unsetenv("COFFER_ATTEST_PROVIDER");
    unsetenv("COFFER_GRAMINE_ATTESTATION_DIR");
    unsetenv("COFFER_TSM_REPORT_DIR");
    free(q);
}

static void test_time_parse(void **state)
{
    (void)state;
    time_t t;
    assert_int_equal(coffer_attest_time_parse("2025-07-01T00:00:00Z", &t), COFFER_OK);
    assert_int_equal(t, 1751328000);
    assert_int_equal(coffer_attest_time_parse("2025-07-01T00:00:00+00:00", &t), COFFER_OK);
    assert_int_equal(t, 1751328000);
    assert_int_equal(coffer_attest_time_parse("2025-07-01", &t), COFFER_OK);
    assert_int_equal(t, 1751328000);
    static const char *bad[] = {"", "2025-07-01T00:00:00", "2025-13-01T00:00:00Z", "2025-07-01T00:00:00+01:00",
                                "2025-07-01 00:00:00Z", "20250701", "2025-07-01T00:00:00Zx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(coffer_attest_time_parse(bad[i], &t), COFFER_E_MALFORMED);
}

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < COFFER_ATTEST_STEP_COUNT; i++)
        assert_string_not_equal(coffer_attest_step_name((enum coffer_attest_step)i), "unknown");
    for (int i = 0; i < COFFER_ATTEST_TCB_COUNT; i++) {
        enum coffer_attest_tcb t;
        assert_int_equal(coffer_attest_tcb_parse(coffer_attest_tcb_name((enum coffer_attest_tcb)i), &t), COFFER_OK);
        assert_int_equal(t, i);
    }
    assert_int_equal(coffer_attest_evidence_kind((const uint8_t *)"xx", 2), COFFER_ATTEST_KIND_NONE);
}

int at_run_sim_policy(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_roundtrip),
        cmocka_unit_test(test_sim_key_refused),
        cmocka_unit_test(test_sim_signer),
        cmocka_unit_test(test_sim_mutations),
        cmocka_unit_test(test_policy_simulation_opt_in),
        cmocka_unit_test(test_policy_statuses_and_vmpl),
        cmocka_unit_test(test_policy_json),
        cmocka_unit_test(test_providers),
        cmocka_unit_test(test_providers_stand_in),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("attest_sim_policy", tests, setup, teardown);
}
