/*
 * verify.c — marble evidence against a manifest package, through attest/.
 *
 * Design: translate the package into an attest policy (kind, measurement,
 * signer, product id, minimum SVN, TCB statuses, advisories, VMPL, report
 * data), let attest verify the evidence at the current time with the
 * loaded collateral, apply the policy, then the rules attest's policy does
 * not express: MarbleRun's Debug equality and the TDX RTMRs. The verified
 * claims go back as JSON for the audit log.
 *
 * Trusts: attest/ for evidence; the manifest as validated.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "coffer/coordinator.h"

static enum coffer_err add_collateral(struct coffer_coord_verifier *v, const char *dir)
{
    struct coffer_attest_collateral *col;
    enum coffer_attest_step step;
    enum coffer_err r = coffer_attest_collateral_load_dir(dir, &col, &step);
    if (r != COFFER_OK) {
        coffer_err_context("collateral in %s", dir);
        return r;
    }
    struct coffer_attest_collateral **a =
        coffer_realloc(v->collateral, (v->collateral_count + 1) * sizeof(*v->collateral));
    if (a == NULL) {
        coffer_attest_collateral_free(col);
        return COFFER_E_NOMEM;
    }
    v->collateral = a;
    v->collateral[v->collateral_count++] = col;
    return COFFER_OK;
}

enum coffer_err coffer_coord_verifier_init(struct coffer_coord_verifier *v, bool simulation, const char *sim_key_path,
                                           const char *collateral_dir)
{
    memset(v, 0, sizeof(*v));
    v->simulation = simulation;
    enum coffer_err r = COFFER_OK;
    if (simulation) {
        char path[1024];
        if (sim_key_path == NULL && (r = coffer_attest_sim_key_path(path, sizeof(path))) != COFFER_OK)
            return r;
        if ((r = coffer_attest_sim_key_public(sim_key_path ? sim_key_path : path, true, v->sim_key)) != COFFER_OK)
            return r;
        v->has_sim_key = true;
    }
    if (collateral_dir != NULL) {
        char probe[1200];
        snprintf(probe, sizeof(probe), "%s/tcb_info.json", collateral_dir);
        struct stat st;
        if (stat(probe, &st) == 0)
            return add_collateral(v, collateral_dir);
        DIR *d = opendir(collateral_dir);
        if (d == NULL)
            return COFFER_FAIL(COFFER_E_NOT_FOUND, "cannot open collateral folder %s", collateral_dir);
        struct dirent *e;
        while (r == COFFER_OK && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char sub[1200];
            snprintf(sub, sizeof(sub), "%s/%s", collateral_dir, e->d_name);
            snprintf(probe, sizeof(probe), "%s/tcb_info.json", sub);
            if (stat(probe, &st) == 0)
                r = add_collateral(v, sub);
        }
        closedir(d);
    }
    if (r != COFFER_OK)
        coffer_coord_verifier_free(v);
    return r;
}

void coffer_coord_verifier_free(struct coffer_coord_verifier *v)
{
    for (size_t i = 0; i < v->collateral_count; i++)
        coffer_attest_collateral_free(v->collateral[i]);
    coffer_free(v->collateral);
    memset(v, 0, sizeof(*v));
}

static void digest(struct coffer_attest_digest *d, const uint8_t *bytes, size_t size)
{
    memcpy(d->bytes, bytes, size);
    d->size = size;
}

static void claims_out(const struct coffer_attest_claims *c, char *claims_json, size_t claims_size)
{
    json_t *j = coffer_attest_claims_to_json(c);
    char *s = NULL;
    size_t n = 0;
    if (j != NULL && coffer_json_dump(j, &s, &n) == COFFER_OK && n < claims_size)
        memcpy(claims_json, s, n + 1);
    coffer_free(s);
    json_decref(j);
}

/* sign-quote: an SGX quote that verifies against the collateral, whatever
 * it measures and whatever its TCB status (which goes into the signature). */
static enum coffer_err verify_any_sgx(const struct coffer_coord_verifier *v, const uint8_t *evidence,
                                      size_t evidence_size, char *claims_json, size_t claims_size)
{
    if (coffer_attest_evidence_kind(evidence, evidence_size) != COFFER_ATTEST_KIND_SGX)
        return COFFER_FAIL(COFFER_E_MALFORMED, "not an SGX quote");
    struct coffer_attest_verify_opts opts = {
        .now = time(NULL),
        .collateral = (const struct coffer_attest_collateral *const *)v->collateral,
        .collateral_count = v->collateral_count,
        .allow_missing_pck_crl = v->allow_missing_pck_crl,
    };
    struct coffer_attest_claims c;
    enum coffer_err r = coffer_attest_evidence_verify(evidence, evidence_size, &opts, &c);
    if (r != COFFER_OK) {
        coffer_err_context("SGX quote (%s)", coffer_attest_step_name(c.failed_step));
        return r;
    }
    claims_out(&c, claims_json, claims_size);
    return COFFER_OK;
}

enum coffer_err coffer_coord_verify_attest(void *arg, const uint8_t *evidence, size_t evidence_size,
                                           const struct coffer_mf_package *pkg, const uint8_t report_data[64],
                                           char *claims_json, size_t claims_size)
{
    const struct coffer_coord_verifier *v = arg;
    struct coffer_attest_policy p;
    coffer_attest_policy_init(&p);
    if (pkg == NULL)
        return verify_any_sgx(v, evidence, evidence_size, claims_json, claims_size);
    p.check_report_data = true;
    memcpy(p.report_data, report_data, 64);
    p.allow_debug = pkg->debug;
    switch (pkg->tee) {
    case COFFER_TEE_SGX:
        p.kinds = 1u << COFFER_ATTEST_KIND_SGX;
        if (pkg->has_unique_id)
            digest(&p.measurements[p.measurement_count++], pkg->unique_id, 32);
        if (pkg->has_signer_id)
            digest(&p.signers[p.signer_count++], pkg->signer_id, 32);
        p.check_isv_prodid = pkg->has_product_id;
        p.isv_prodid = pkg->product_id;
        p.min_isv_svn = pkg->has_svn ? pkg->security_version : 0;
        break;
    case COFFER_TEE_TDX:
        p.kinds = 1u << COFFER_ATTEST_KIND_TDX;
        digest(&p.measurements[p.measurement_count++], pkg->mrtd, 48);
        break;
    case COFFER_TEE_SNP:
        p.kinds = 1u << COFFER_ATTEST_KIND_SNP;
        digest(&p.measurements[p.measurement_count++], pkg->measurement, 48);
        p.max_vmpl = pkg->has_vmpl ? pkg->max_vmpl : 0;
        break;
    case COFFER_TEE_SIMULATION:
        if (!v->simulation)
            return COFFER_FAIL(COFFER_E_POLICY, "package %s takes simulation evidence, but this coordinator was not "
                               "started in simulation mode", pkg->name);
        p.kinds = 1u << COFFER_ATTEST_KIND_SIM;
        p.allow_simulation = true;
        digest(&p.measurements[p.measurement_count++], pkg->unique_id, 32);
        break;
    }
    /* TCB statuses: UpToDate always; the list, or MarbleRun's default */
    p.tcb_statuses = 1u << COFFER_ATTEST_TCB_UP_TO_DATE;
    if (pkg->accepted_tcb_statuses_count == 0)
        p.tcb_statuses |= 1u << COFFER_ATTEST_TCB_SW_HARDENING_NEEDED;
    for (size_t i = 0; i < pkg->accepted_tcb_statuses_count; i++) {
        enum coffer_attest_tcb t;
        if (coffer_attest_tcb_parse(pkg->accepted_tcb_statuses[i], &t) == COFFER_OK)
            p.tcb_statuses |= 1u << t;
    }
    if (pkg->accepted_advisories_count == 0) {
        p.allow_any_advisory = true;
    } else {
        for (size_t i = 0; i < pkg->accepted_advisories_count && i < COFFER_ATTEST_POLICY_MAX; i++)
            snprintf(p.advisories[p.advisory_count++], COFFER_ATTEST_ADVISORY_SIZE, "%s", pkg->accepted_advisories[i]);
    }
    struct coffer_attest_verify_opts opts = {
        .now = time(NULL),
        .collateral = (const struct coffer_attest_collateral *const *)v->collateral,
        .collateral_count = v->collateral_count,
        .allow_missing_pck_crl = v->allow_missing_pck_crl,
        .sim_platform_key = v->has_sim_key ? v->sim_key : NULL,
    };
    struct coffer_attest_claims c;
    enum coffer_err r = coffer_attest_evidence_verify(evidence, evidence_size, &opts, &c);
    if (r != COFFER_OK) {
        coffer_err_context("evidence (%s)", coffer_attest_step_name(c.failed_step));
        return r;
    }
    if ((r = coffer_attest_policy_check(&p, &c)) != COFFER_OK)
        return r;
    if (c.debug != pkg->debug)
        return COFFER_FAIL(COFFER_E_POLICY, "package %s wants %s, the evidence is from a %s", pkg->name,
                           pkg->debug ? "a debug enclave (Debug: true)" : "a production enclave (Debug: false)",
                           c.debug ? "debug one" : "production one");
    if (pkg->tee == COFFER_TEE_TDX)
        for (int i = 0; i < 4; i++)
            if (pkg->has_rtmr[i] && !coffer_ct_eq(pkg->rtmr[i], c.rtmr[i], 48))
                return COFFER_FAIL(COFFER_E_POLICY, "RTMR%d is not the one package %s allows", i, pkg->name);
    claims_out(&c, claims_json, claims_size);
    return COFFER_OK;
}
