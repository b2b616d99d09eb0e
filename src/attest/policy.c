/*
 * policy.c — what a relying party accepts, and the matcher every layer
 * above attestation uses (coordinator, RA-TLS, CLI).
 *
 * Design: a policy is plain data (coffer/attest.h) with a strict default:
 * hardware kinds only, no debug, TCB "UpToDate" only, no advisories,
 * VMPL 0, any measurement. The matcher runs the rules in a fixed order and
 * refuses at the first that fails, naming it. The JSON form rejects
 * unknown keys, so a typo cannot silently loosen a policy.
 *
 * Invariants: I1 simulation evidence passes only with allow_simulation (and
 * its kind bit). I2 "Revoked" and "NotSupported" never pass. I3 evidence
 * whose TCB was not evaluated passes only with allow_no_collateral.
 * I4 measurements and report data are compared in constant time.
 * Trusts: the claims, which come from coffer_attest_evidence_verify.
 */
#include "attest_int.h"

#include <string.h>

void coffer_attest_policy_init(struct coffer_attest_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->kinds = (1u << COFFER_ATTEST_KIND_SGX) | (1u << COFFER_ATTEST_KIND_TDX) | (1u << COFFER_ATTEST_KIND_SNP);
    p->tcb_statuses = 1u << COFFER_ATTEST_TCB_UP_TO_DATE;
    p->max_vmpl = 0;
    p->min_snp_bl = p->min_snp_tee = p->min_snp_snp = p->min_snp_ucode = p->min_snp_fmc = -1;
}

static const uint8_t *measurement_of(const struct coffer_attest_claims *c, size_t *size)
{
    switch (c->kind) {
    case COFFER_ATTEST_KIND_SGX:
        *size = 32;
        return c->mrenclave;
    case COFFER_ATTEST_KIND_TDX:
        *size = 48;
        return c->mrtd;
    case COFFER_ATTEST_KIND_SNP:
        *size = 48;
        return c->measurement;
    case COFFER_ATTEST_KIND_SIM:
        *size = 32;
        return c->exe_sha256;
    default:
        *size = 0;
        return NULL;
    }
}

static bool in_list(const struct coffer_attest_digest *list, size_t n, const uint8_t *v, size_t size)
{
    bool found = false;
    for (size_t i = 0; i < n; i++)
        if (list[i].size == size && coffer_ct_eq(list[i].bytes, v, size))
            found = true;
    return found;
}

enum coffer_err coffer_attest_policy_check(const struct coffer_attest_policy *p, const struct coffer_attest_claims *c)
{
    if (p == NULL || c == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "policy check: no policy or claims");
    const char *kn = coffer_attest_kind_name(c->kind);
    if (c->kind == COFFER_ATTEST_KIND_NONE || c->failed_step != COFFER_ATTEST_STEP_NONE)
        return COFFER_FAIL(COFFER_E_POLICY, "policy: the evidence did not verify");
    if (c->kind == COFFER_ATTEST_KIND_SIM || c->simulation) {
        if (!p->allow_simulation || !(p->kinds & (1u << COFFER_ATTEST_KIND_SIM)))
            return COFFER_FAIL(COFFER_E_POLICY, "policy: simulation evidence (no hardware protection) is not allowed");
    } else if ((unsigned)c->kind >= 32 || !(p->kinds & (1u << c->kind))) {
        return COFFER_FAIL(COFFER_E_POLICY, "policy: %s evidence is not allowed", kn);
    }
    size_t ms;
    const uint8_t *m = measurement_of(c, &ms);
    if (p->measurement_count > 0 && (m == NULL || !in_list(p->measurements, p->measurement_count, m, ms)))
        return COFFER_FAIL(COFFER_E_POLICY, "policy: the %s measurement is not in the allowed list", kn);
    if (p->signer_count > 0 &&
        (c->kind != COFFER_ATTEST_KIND_SGX || !in_list(p->signers, p->signer_count, c->mrsigner, 32)))
        return COFFER_FAIL(COFFER_E_POLICY, "policy: the signer (MRSIGNER) is not in the allowed list");
    if (c->kind == COFFER_ATTEST_KIND_SGX) {
        if (p->check_isv_prodid && c->isv_prodid != p->isv_prodid)
            return COFFER_FAIL(COFFER_E_POLICY, "policy: ISVPRODID %u, want %u", c->isv_prodid, p->isv_prodid);
        if (c->isv_svn < p->min_isv_svn)
            return COFFER_FAIL(COFFER_E_POLICY, "policy: ISVSVN %u below the minimum %u", c->isv_svn, p->min_isv_svn);
    }
    if (c->kind == COFFER_ATTEST_KIND_SGX) {
        /* as Gramine's RA-TLS verifier: an initialised 64-bit enclave that
         * holds neither the provisioning key nor the EINITTOKEN key */
        uint8_t f = c->attributes[0];
        if (!(f & 0x01) || !(f & 0x04) || (f & 0x10) || (f & 0x20))
            return COFFER_FAIL(COFFER_E_POLICY,
                               "policy: SGX ATTRIBUTES 0x%02x (want INIT and MODE64BIT, no PROVISIONKEY/EINITTOKEN_KEY)", f);
    }
    if (c->kind == COFFER_ATTEST_KIND_TDX && !p->allow_service_td) {
        static const uint8_t zero[48];
        if (!coffer_ct_eq(c->mrservicetd, zero, 48))
            return COFFER_FAIL(COFFER_E_POLICY, "policy: the TD is bound to a service TD (MRSERVICETD not zero)");
    }
    if (c->kind == COFFER_ATTEST_KIND_SNP) {
        const int have[5] = {c->snp_bl_spl, c->snp_tee_spl, c->snp_snp_spl, c->snp_ucode_spl, c->snp_fmc_spl};
        const int want[5] = {p->min_snp_bl, p->min_snp_tee, p->min_snp_snp, p->min_snp_ucode, p->min_snp_fmc};
        static const char *names[5] = {"boot loader", "TEE", "SNP firmware", "microcode", "FMC"};
        for (int i = 0; i < 5; i++)
            if (want[i] >= 0 && have[i] < want[i])
                return COFFER_FAIL(COFFER_E_POLICY, "policy: reported %s SVN %d below the minimum %d", names[i], have[i],
                                   want[i]);
    }
    if (c->kind == COFFER_ATTEST_KIND_SNP && c->guest_svn < p->min_isv_svn)
        return COFFER_FAIL(COFFER_E_POLICY, "policy: GUEST_SVN %u below the minimum %u", c->guest_svn, p->min_isv_svn);
    if (c->debug && !p->allow_debug)
        return COFFER_FAIL(COFFER_E_POLICY, "policy: a debug %s TEE is not allowed (its memory is readable)", kn);
    if (c->kind == COFFER_ATTEST_KIND_SNP && c->vmpl > p->max_vmpl)
        return COFFER_FAIL(COFFER_E_POLICY, "policy: VMPL %u above the maximum %u", c->vmpl, p->max_vmpl);
    /* Intel: the TCB status from collateral. SNP: the VCEK/VLEK is issued for
     * the REPORTED_TCB, which the verifier bound; there is no status list. */
    if (c->kind == COFFER_ATTEST_KIND_SGX || c->kind == COFFER_ATTEST_KIND_TDX) {
        if (!c->collateral_checked || c->tcb_status == COFFER_ATTEST_TCB_NONE) {
            if (!p->allow_no_collateral)
                return COFFER_FAIL(COFFER_E_POLICY, "policy: the TCB status was not evaluated (no collateral)");
        } else {
            enum coffer_attest_tcb t = c->tcb_status;
            bool ok = t == COFFER_ATTEST_TCB_UP_TO_DATE || ((unsigned)t < 32 && (p->tcb_statuses & (1u << t)));
            if (t == COFFER_ATTEST_TCB_REVOKED || t == COFFER_ATTEST_TCB_NOT_SUPPORTED)
                ok = false;
            if (!ok)
                return COFFER_FAIL(COFFER_E_POLICY, "policy: TCB status %s is not accepted", coffer_attest_tcb_name(t));
            for (size_t i = 0; i < c->advisory_count && !p->allow_any_advisory; i++) {
                bool found = false;
                for (size_t j = 0; j < p->advisory_count && !found; j++)
                    found = strcmp(p->advisories[j], c->advisory_ids[i]) == 0;
                if (!found)
                    return COFFER_FAIL(COFFER_E_POLICY, "policy: advisory %s is not accepted", c->advisory_ids[i]);
            }
        }
    }
    if (p->check_report_data && !coffer_ct_eq(p->report_data, c->report_data, COFFER_ATTEST_REPORT_DATA_SIZE))
        return COFFER_FAIL(COFFER_E_POLICY, "policy: report data is not the expected binding");
    return COFFER_OK;
}

/* ----------------------------------------------------------------- JSON */

static enum coffer_err digest_list(const json_t *j, const char *key, struct coffer_attest_digest *out, size_t *count)
{
    enum coffer_err r;
    json_t *a = NULL;
    if ((r = coffer_json_get_array(j, "$", key, false, &a)) != COFFER_OK || a == NULL)
        return r;
    if (json_array_size(a) > COFFER_ATTEST_POLICY_MAX)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "policy: $.%s holds more than %d entries", key, COFFER_ATTEST_POLICY_MAX);
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        size_t n = s != NULL ? strlen(s) : 0;
        if ((n != 64 && n != 96) || coffer_hex_decode(s, n, out[i].bytes, n / 2) != COFFER_OK)
            return COFFER_FAIL(COFFER_E_JSON, "policy: $.%s[%zu] must be 64 or 96 hex digits", key, i);
        out[i].size = n / 2;
    }
    *count = json_array_size(a);
    return COFFER_OK;
}

static enum coffer_err u16_field(const json_t *j, const char *key, bool *present, uint16_t *out)
{
    int64_t v = -1;
    enum coffer_err r = coffer_json_get_int(j, "$", key, false, &v);
    if (r != COFFER_OK || v == -1)
        return r;
    if (v < 0 || v > 0xffff)
        return COFFER_FAIL(COFFER_E_JSON, "policy: $.%s out of range", key);
    *out = (uint16_t)v;
    if (present != NULL)
        *present = true;
    return COFFER_OK;
}

enum coffer_err coffer_attest_policy_from_json(const json_t *j, struct coffer_attest_policy *out)
{
    static const char *const known[] = {"kinds", "allow_simulation", "measurements", "signers", "isv_prodid",
                                        "min_isv_svn", "allow_debug", "tcb_statuses", "advisories",
                                        "allow_any_advisory", "allow_no_collateral", "max_vmpl", "report_data",
                                        "allow_service_td", "min_snp_tcb"};
    enum coffer_err r;
    struct coffer_attest_policy p;
    coffer_attest_policy_init(&p);
    if (!json_is_object(j))
        return COFFER_FAIL(COFFER_E_JSON, "policy: not a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok)
            return COFFER_FAIL(COFFER_E_JSON, "policy: unknown key \"%.40s\"", key);
    }
    json_t *a = NULL;
    if ((r = coffer_json_get_array(j, "$", "kinds", false, &a)) != COFFER_OK)
        return r;
    if (a != NULL) {
        p.kinds = 0;
        for (size_t i = 0; i < json_array_size(a); i++) {
            const char *s = json_string_value(json_array_get(a, i));
            int k = -1;
            for (int x = 1; x < COFFER_ATTEST_KIND_COUNT && s != NULL; x++)
                if (strcmp(s, coffer_attest_kind_name((enum coffer_attest_kind)x)) == 0)
                    k = x;
            if (k < 0)
                return COFFER_FAIL(COFFER_E_JSON, "policy: $.kinds[%zu] is not sgx, tdx, snp or simulation", i);
            p.kinds |= 1u << k;
        }
    }
    if ((r = coffer_json_get_bool(j, "$", "allow_simulation", false, &p.allow_simulation)) != COFFER_OK ||
        (r = coffer_json_get_bool(j, "$", "allow_debug", false, &p.allow_debug)) != COFFER_OK ||
        (r = coffer_json_get_bool(j, "$", "allow_any_advisory", false, &p.allow_any_advisory)) != COFFER_OK ||
        (r = coffer_json_get_bool(j, "$", "allow_no_collateral", false, &p.allow_no_collateral)) != COFFER_OK ||
        (r = coffer_json_get_bool(j, "$", "allow_service_td", false, &p.allow_service_td)) != COFFER_OK ||
        (r = digest_list(j, "measurements", p.measurements, &p.measurement_count)) != COFFER_OK ||
        (r = digest_list(j, "signers", p.signers, &p.signer_count)) != COFFER_OK ||
        (r = u16_field(j, "isv_prodid", &p.check_isv_prodid, &p.isv_prodid)) != COFFER_OK ||
        (r = u16_field(j, "min_isv_svn", NULL, &p.min_isv_svn)) != COFFER_OK)
        return r;
    if (p.allow_simulation && a == NULL)
        p.kinds |= 1u << COFFER_ATTEST_KIND_SIM;
    a = NULL; /* the getter leaves it alone when the key is absent: not the "kinds" array */
    if ((r = coffer_json_get_array(j, "$", "tcb_statuses", false, &a)) != COFFER_OK)
        return r;
    if (a != NULL) {
        p.tcb_statuses = 1u << COFFER_ATTEST_TCB_UP_TO_DATE;
        for (size_t i = 0; i < json_array_size(a); i++) {
            const char *s = json_string_value(json_array_get(a, i));
            enum coffer_attest_tcb t;
            if (s == NULL || coffer_attest_tcb_parse(s, &t) != COFFER_OK || t == COFFER_ATTEST_TCB_NONE)
                return COFFER_FAIL(COFFER_E_JSON, "policy: $.tcb_statuses[%zu] is not an Intel TCB status", i);
            if (t == COFFER_ATTEST_TCB_REVOKED || t == COFFER_ATTEST_TCB_NOT_SUPPORTED)
                return COFFER_FAIL(COFFER_E_JSON, "policy: $.tcb_statuses[%zu]: %s can never be accepted", i, s);
            p.tcb_statuses |= 1u << t;
        }
    }
    a = NULL;
    if ((r = coffer_json_get_array(j, "$", "advisories", false, &a)) != COFFER_OK)
        return r;
    if (a != NULL) {
        if (json_array_size(a) > COFFER_ATTEST_POLICY_MAX)
            return COFFER_FAIL(COFFER_E_TOO_LARGE, "policy: more than %d advisories", COFFER_ATTEST_POLICY_MAX);
        for (size_t i = 0; i < json_array_size(a); i++) {
            const char *s = json_string_value(json_array_get(a, i));
            if (s == NULL || s[0] == '\0' || strlen(s) >= COFFER_ATTEST_ADVISORY_SIZE)
                return COFFER_FAIL(COFFER_E_JSON, "policy: $.advisories[%zu] is not a short string", i);
            snprintf(p.advisories[i], COFFER_ATTEST_ADVISORY_SIZE, "%s", s);
        }
        p.advisory_count = json_array_size(a);
    }
    json_t *mt = NULL;
    if ((r = coffer_json_get_object(j, "$", "min_snp_tcb", false, &mt)) != COFFER_OK)
        return r;
    if (mt != NULL) {
        static const char *keys[5] = {"bl", "tee", "snp", "ucode", "fmc"};
        int *dst[5] = {&p.min_snp_bl, &p.min_snp_tee, &p.min_snp_snp, &p.min_snp_ucode, &p.min_snp_fmc};
        const char *k;
        json_t *x;
        json_object_foreach(mt, k, x)
        {
            int idx = -1;
            for (int i = 0; i < 5; i++)
                if (strcmp(k, keys[i]) == 0)
                    idx = i;
            if (idx < 0 || !json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 255)
                return COFFER_FAIL(COFFER_E_JSON, "policy: $.min_snp_tcb.%.16s must be one of bl, tee, snp, ucode, fmc "
                                   "with a value 0..255", k);
            *dst[idx] = (int)json_integer_value(x);
        }
    }
    int64_t vmpl = 0;
    if ((r = coffer_json_get_int(j, "$", "max_vmpl", false, &vmpl)) != COFFER_OK)
        return r;
    if (vmpl < 0 || vmpl > 3)
        return COFFER_FAIL(COFFER_E_JSON, "policy: $.max_vmpl must be 0..3");
    p.max_vmpl = (uint32_t)vmpl;
    const char *rd = NULL;
    if ((r = coffer_json_get_string(j, "$", "report_data", false, &rd)) != COFFER_OK)
        return r;
    if (rd != NULL) {
        if (strlen(rd) != 128 || coffer_hex_decode(rd, 128, p.report_data, 64) != COFFER_OK)
            return COFFER_FAIL(COFFER_E_JSON, "policy: $.report_data must be 128 hex digits");
        p.check_report_data = true;
    }
    *out = p;
    return COFFER_OK;
}
