/*
 * verify.c — the front door of evidence verification: recognise the kind,
 * dispatch to its verifier, and the shared vocabulary (kind, TCB status and
 * step names, ISO 8601 times, claims as JSON).
 *
 * Design: kinds are told apart by fixed leading bytes only (simulation
 * magic; Intel version + key type + vendor); nothing is trusted because of
 * the kind: every verifier re-parses in full. Name tables are designated
 * initialisers checked against the enums' counts.
 *
 * Invariants: I1 on failure the claims are all zero except failed_step.
 * I2 the verifier never reads the clock: opts->now is required.
 * Trusts: the per-kind verifiers.
 */
#include "attest_int.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[COFFER_ATTEST_KIND_COUNT] = {
    [COFFER_ATTEST_KIND_NONE] = "none", [COFFER_ATTEST_KIND_SIM] = "simulation", [COFFER_ATTEST_KIND_SGX] = "sgx",
    [COFFER_ATTEST_KIND_TDX] = "tdx",   [COFFER_ATTEST_KIND_SNP] = "snp",
};
_Static_assert(sizeof(kind_names) / sizeof(kind_names[0]) == COFFER_ATTEST_KIND_COUNT, "kind names");

static const char *const tcb_names[COFFER_ATTEST_TCB_COUNT] = {
    [COFFER_ATTEST_TCB_NONE] = "None",
    [COFFER_ATTEST_TCB_UP_TO_DATE] = "UpToDate",
    [COFFER_ATTEST_TCB_SW_HARDENING_NEEDED] = "SWHardeningNeeded",
    [COFFER_ATTEST_TCB_CONFIGURATION_NEEDED] = "ConfigurationNeeded",
    [COFFER_ATTEST_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] = "ConfigurationAndSWHardeningNeeded",
    [COFFER_ATTEST_TCB_OUT_OF_DATE] = "OutOfDate",
    [COFFER_ATTEST_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] = "OutOfDateConfigurationNeeded",
    [COFFER_ATTEST_TCB_TD_RELAUNCH_ADVISED] = "TDRelaunchAdvised",
    [COFFER_ATTEST_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED] = "TDRelaunchAdvisedConfigurationNeeded",
    [COFFER_ATTEST_TCB_REVOKED] = "Revoked",
    [COFFER_ATTEST_TCB_NOT_SUPPORTED] = "NotSupported",
};

static const char *const step_names[COFFER_ATTEST_STEP_COUNT] = {
    [COFFER_ATTEST_STEP_NONE] = "none",
    [COFFER_ATTEST_STEP_ARGS] = "arguments",
    [COFFER_ATTEST_STEP_PARSE] = "parse",
    [COFFER_ATTEST_STEP_PCK_CHAIN] = "pck_chain",
    [COFFER_ATTEST_STEP_PCK_REVOCATION] = "pck_revocation",
    [COFFER_ATTEST_STEP_QE_REPORT_SIGNATURE] = "qe_report_signature",
    [COFFER_ATTEST_STEP_QE_BINDING] = "qe_report_data_binding",
    [COFFER_ATTEST_STEP_QUOTE_SIGNATURE] = "quote_signature",
    [COFFER_ATTEST_STEP_COLLATERAL] = "collateral",
    [COFFER_ATTEST_STEP_TCB_SIGNING_CHAIN] = "tcb_signing_chain",
    [COFFER_ATTEST_STEP_TCB_INFO_SIGNATURE] = "tcb_info_signature",
    [COFFER_ATTEST_STEP_QE_IDENTITY_SIGNATURE] = "qe_identity_signature",
    [COFFER_ATTEST_STEP_COLLATERAL_EXPIRED] = "collateral_expired",
    [COFFER_ATTEST_STEP_COLLATERAL_MISMATCH] = "collateral_mismatch",
    [COFFER_ATTEST_STEP_QE_IDENTITY] = "qe_identity",
    [COFFER_ATTEST_STEP_TCB_LEVEL] = "tcb_level",
    [COFFER_ATTEST_STEP_TDX_MODULE] = "tdx_module",
    [COFFER_ATTEST_STEP_SIM_KEY] = "simulation_platform_key",
    [COFFER_ATTEST_STEP_SIM_SIGNATURE] = "simulation_signature",
    [COFFER_ATTEST_STEP_SNP_CHAIN] = "snp_chain",
    [COFFER_ATTEST_STEP_SNP_SIGNATURE] = "snp_report_signature",
    [COFFER_ATTEST_STEP_SNP_TCB] = "snp_reported_tcb",
    [COFFER_ATTEST_STEP_SNP_CHIP_ID] = "snp_chip_id",
    [COFFER_ATTEST_STEP_POLICY] = "policy",
};

const char *coffer_attest_kind_name(enum coffer_attest_kind k)
{
    return (unsigned)k < COFFER_ATTEST_KIND_COUNT ? kind_names[k] : "unknown";
}

const char *coffer_attest_tcb_name(enum coffer_attest_tcb t)
{
    return (unsigned)t < COFFER_ATTEST_TCB_COUNT ? tcb_names[t] : "Unknown";
}

const char *coffer_attest_step_name(enum coffer_attest_step s)
{
    return (unsigned)s < COFFER_ATTEST_STEP_COUNT && step_names[s] != NULL ? step_names[s] : "unknown";
}

enum coffer_err coffer_attest_tcb_parse(const char *s, enum coffer_attest_tcb *out)
{
    for (int i = 0; i < COFFER_ATTEST_TCB_COUNT; i++)
        if (strcmp(s, tcb_names[i]) == 0) {
            *out = (enum coffer_attest_tcb)i;
            return COFFER_OK;
        }
    return COFFER_FAIL(COFFER_E_MALFORMED, "unrecognised TCB status \"%.40s\"", s);
}

enum coffer_err coffer_attest__fail(struct coffer_attest_claims *out, enum coffer_attest_step step, enum coffer_err err)
{
    memset(out, 0, sizeof(*out));
    out->failed_step = step;
    return err;
}

enum coffer_attest_kind coffer_attest_evidence_kind(const uint8_t *ev, size_t size)
{
    struct coffer_rd rd;
    const uint8_t *p;
    uint16_t version, key_type;
    uint32_t tee;
    coffer_rd_init(&rd, ev, size);
    if (coffer_rd_bytes(&rd, 8, &p) == COFFER_OK && memcmp(p, "CFSIMEV1", 8) == 0)
        return COFFER_ATTEST_KIND_SIM;
    coffer_rd_init(&rd, ev, size);
    if (coffer_rd_u16le(&rd, &version) != COFFER_OK || coffer_rd_u16le(&rd, &key_type) != COFFER_OK ||
        coffer_rd_u32le(&rd, &tee) != COFFER_OK)
        return COFFER_ATTEST_KIND_NONE;
    if (version >= 3 && version <= 5 && key_type == 2) {
        if (version == 3 || tee == INTEL_TEE_SGX)
            return COFFER_ATTEST_KIND_SGX;
        if (tee == INTEL_TEE_TDX)
            return COFFER_ATTEST_KIND_TDX;
    }
    /* a report, or extended evidence: a report then its certificate table */
    if (size >= COFFER_ATTEST_SNP_REPORT_SIZE && version >= 2 && version <= 5 && key_type == 0)
        return COFFER_ATTEST_KIND_SNP;
    return COFFER_ATTEST_KIND_NONE;
}

enum coffer_err coffer_attest_evidence_verify(const uint8_t *ev, size_t size, const struct coffer_attest_verify_opts *opts,
                                              struct coffer_attest_claims *out)
{
    memset(out, 0, sizeof(*out));
    if (ev == NULL || opts == NULL || opts->now <= 0 || (opts->collateral_count > 0 && opts->collateral == NULL))
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_ARGS,
                                   COFFER_FAIL(COFFER_E_INVALID_ARG, "verify: evidence and a verification time are required"));
    switch (coffer_attest_evidence_kind(ev, size)) {
    case COFFER_ATTEST_KIND_SIM:
        return coffer_attest__sim_verify(ev, size, opts, out);
    case COFFER_ATTEST_KIND_SGX:
    case COFFER_ATTEST_KIND_TDX:
        return coffer_attest__intel_verify(ev, size, opts, out);
    case COFFER_ATTEST_KIND_SNP:
        return coffer_attest__snp_verify(ev, size, opts, out);
    default:
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_PARSE,
                                   COFFER_FAIL(COFFER_E_BAD_HEADER, "evidence of %zu bytes is of no kind coffer knows", size));
    }
}

enum coffer_err coffer_attest_evidence_decode(const uint8_t *ev, size_t size, struct coffer_attest_claims *out)
{
    memset(out, 0, sizeof(*out));
    if (ev == NULL)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_ARGS, COFFER_FAIL(COFFER_E_INVALID_ARG, "no evidence"));
    switch (coffer_attest_evidence_kind(ev, size)) {
    case COFFER_ATTEST_KIND_SIM:
        return coffer_attest__sim_decode(ev, size, out);
    case COFFER_ATTEST_KIND_SGX:
    case COFFER_ATTEST_KIND_TDX:
        return coffer_attest__intel_decode(ev, size, out);
    case COFFER_ATTEST_KIND_SNP:
        return coffer_attest__snp_decode(ev, size, out);
    default:
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_PARSE,
                                   COFFER_FAIL(COFFER_E_BAD_HEADER, "evidence of %zu bytes is of no kind coffer decodes", size));
    }
}

/* ---------------------------------------------------------------- time */

static enum coffer_err digits(struct coffer_rd *rd, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        uint8_t c;
        if (coffer_rd_u8(rd, &c) != COFFER_OK || c < '0' || c > '9')
            return COFFER_E_MALFORMED;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return COFFER_OK;
}

static enum coffer_err expect(struct coffer_rd *rd, char want)
{
    uint8_t c;
    if (coffer_rd_u8(rd, &c) != COFFER_OK || c != (uint8_t)want)
        return COFFER_E_MALFORMED;
    return COFFER_OK;
}

enum coffer_err coffer_attest_time_parse(const char *s, time_t *out)
{
    struct coffer_rd rd;
    int Y, M, D, h = 0, m = 0, sec = 0;
    coffer_rd_init(&rd, s, strlen(s));
    if (digits(&rd, 4, &Y) || expect(&rd, '-') || digits(&rd, 2, &M) || expect(&rd, '-') || digits(&rd, 2, &D))
        goto bad;
    if (coffer_rd_left(&rd) > 0) {
        if (expect(&rd, 'T') || digits(&rd, 2, &h) || expect(&rd, ':') || digits(&rd, 2, &m) || expect(&rd, ':') ||
            digits(&rd, 2, &sec))
            goto bad;
        const uint8_t *z;
        if (coffer_rd_left(&rd) == 1) {
            if (coffer_rd_bytes(&rd, 1, &z) != COFFER_OK || *z != 'Z')
                goto bad;
        } else if (coffer_rd_left(&rd) == 6) {
            if (coffer_rd_bytes(&rd, 6, &z) != COFFER_OK || memcmp(z, "+00:00", 6) != 0)
                goto bad;
        } else {
            goto bad;
        }
    }
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 || Y < 1970)
        goto bad;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        goto bad;
    *out = t;
    return COFFER_OK;
bad:
    return COFFER_FAIL(COFFER_E_MALFORMED, "time \"%.40s\" is not ISO 8601 UTC (YYYY-MM-DDThh:mm:ssZ)", s);
}

/* --------------------------------------------------------------- JSON */

static int put_hex(json_t *o, const char *key, const uint8_t *p, size_t n)
{
    char buf[2 * 64 + 1];
    coffer_hex_encode(p, n, buf);
    return json_object_set_new(o, key, json_string(buf));
}

/* u64 values as "0x..." strings: JSON numbers beyond 2^53 (or 2^63) do not
 * survive readers. */
static int put_u64(json_t *o, const char *key, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "0x%016llx", (unsigned long long)v);
    return json_object_set_new(o, key, json_string(buf));
}

json_t *coffer_attest_claims_to_json(const struct coffer_attest_claims *c)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int e = 0;
    e |= json_object_set_new(o, "kind", json_string(coffer_attest_kind_name(c->kind)));
    e |= json_object_set_new(o, "simulation", json_boolean(c->simulation));
    e |= json_object_set_new(o, "debug", json_boolean(c->debug));
    e |= put_hex(o, "report_data", c->report_data, 64);
    switch (c->kind) {
    case COFFER_ATTEST_KIND_SGX:
        e |= put_hex(o, "mrenclave", c->mrenclave, 32);
        e |= put_hex(o, "mrsigner", c->mrsigner, 32);
        e |= json_object_set_new(o, "isv_prodid", json_integer(c->isv_prodid));
        e |= json_object_set_new(o, "isv_svn", json_integer(c->isv_svn));
        e |= put_hex(o, "attributes", c->attributes, 16);
        e |= json_object_set_new(o, "miscselect", json_integer(c->miscselect));
        break;
    case COFFER_ATTEST_KIND_TDX:
        e |= put_hex(o, "mrtd", c->mrtd, 48);
        for (int i = 0; i < 4; i++) {
            char k[8];
            snprintf(k, sizeof(k), "rtmr%d", i);
            e |= put_hex(o, k, c->rtmr[i], 48);
        }
        e |= put_hex(o, "mrconfigid", c->mrconfigid, 48);
        e |= put_hex(o, "mrowner", c->mrowner, 48);
        e |= put_hex(o, "mrownerconfig", c->mrownerconfig, 48);
        e |= put_hex(o, "mrseam", c->mrseam, 48);
        e |= put_hex(o, "mrservicetd", c->mrservicetd, 48);
        e |= put_u64(o, "td_attributes", c->td_attributes);
        e |= put_hex(o, "tee_tcb_svn", c->tee_tcb_svn, 16);
        break;
    case COFFER_ATTEST_KIND_SNP:
        e |= put_hex(o, "measurement", c->measurement, 48);
        e |= put_hex(o, "host_data", c->host_data, 32);
        e |= put_hex(o, "chip_id", c->chip_id, 64);
        e |= put_u64(o, "snp_policy", c->snp_policy);
        e |= json_object_set_new(o, "vmpl", json_integer(c->vmpl));
        e |= json_object_set_new(o, "guest_svn", json_integer(c->guest_svn));
        e |= put_u64(o, "reported_tcb", c->reported_tcb);
        if (c->snp_product[0] != '\0') {
            json_t *t = json_pack("{s:s,s:i,s:i,s:i,s:i}", "product", c->snp_product, "bl", c->snp_bl_spl, "tee",
                                  c->snp_tee_spl, "snp", c->snp_snp_spl, "ucode", c->snp_ucode_spl);
            if (t != NULL && c->snp_fmc_spl >= 0)
                e |= json_object_set_new(t, "fmc", json_integer(c->snp_fmc_spl));
            e |= t == NULL ? -1 : json_object_set_new(o, "reported_tcb_decoded", t);
        }
        e |= json_object_set_new(o, "snp_key_from_evidence", json_boolean(c->snp_key_from_evidence));
        e |= put_u64(o, "current_tcb", c->current_tcb);
        e |= put_u64(o, "platform_info", c->platform_info);
        e |= put_hex(o, "family_id", c->family_id, 16);
        e |= put_hex(o, "image_id", c->image_id, 16);
        e |= put_hex(o, "id_key_digest", c->id_key_digest, 48);
        e |= put_hex(o, "author_key_digest", c->author_key_digest, 48);
        break;
    case COFFER_ATTEST_KIND_SIM:
        e |= put_hex(o, "exe_sha256", c->exe_sha256, 32);
        e |= put_hex(o, "platform_key", c->sim_platform_key, 64);
        e |= json_object_set_new(o, "warning", json_string("simulation: no hardware protection"));
        break;
    default:
        break;
    }
    if (c->kind == COFFER_ATTEST_KIND_SGX || c->kind == COFFER_ATTEST_KIND_TDX) {
        e |= json_object_set_new(o, "quote_version", json_integer(c->quote_version));
        e |= put_hex(o, "qe_mrsigner", c->qe_mrsigner, 32);
        e |= json_object_set_new(o, "qe_isv_svn", json_integer(c->qe_isv_svn));
        e |= put_hex(o, "fmspc", c->fmspc, 6);
        e |= json_object_set_new(o, "pcesvn", json_integer(c->pcesvn));
    }
    e |= json_object_set_new(o, "tcb_status", json_string(c->kind == COFFER_ATTEST_KIND_SIM
                                                               ? "simulation"
                                                               : coffer_attest_tcb_name(c->tcb_status)));
    if (c->kind == COFFER_ATTEST_KIND_SGX || c->kind == COFFER_ATTEST_KIND_TDX)
        e |= json_object_set_new(o, "qe_tcb_status", json_string(coffer_attest_tcb_name(c->qe_tcb_status)));
    json_t *adv = json_array();
    for (size_t i = 0; adv != NULL && i < c->advisory_count; i++)
        e |= json_array_append_new(adv, json_string(c->advisory_ids[i]));
    e |= adv == NULL ? -1 : json_object_set_new(o, "advisory_ids", adv);
    e |= json_object_set_new(o, "collateral_checked", json_boolean(c->collateral_checked));
    e |= json_object_set_new(o, "revocation_checked", json_boolean(c->revocation_checked));
    if (e != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
