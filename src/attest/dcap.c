/*
 * dcap.c — verification of Intel DCAP quotes (SGX v3; TDX v4/v5) against
 * the pinned Intel SGX Root CA and explicitly supplied collateral, at an
 * explicitly supplied time (attestation.md §2).
 *
 * Design: the steps run in a fixed order and each failure names its step
 * (enum coffer_attest_step) and its cause (COFFER_FAIL detail):
 *   parse -> PCK chain (leaf <- intermediate <- pinned root, at now) ->
 *   QE report signature (PCK key) -> binding SHA-256(att key || QE auth) ->
 *   quote signature (attestation key) -> pick collateral by FMSPC ->
 *   revocation (Root CA CRL, PCK CRL: issuer, signature, currency, serial) ->
 *   TCB signing cert validity -> TCB Info / QE Identity currency ->
 *   collateral matches the platform (FMSPC, PCE-ID, ids) -> QE identity and
 *   QE TCB -> platform TCB level (PCK TCB, not the report CPUSVN) ->
 *   TDX module -> converge statuses and advisories.
 * Every signature check comes before any collateral, so evidence with no
 * collateral stops at "collateral" only after all of them passed.
 *
 * Invariants: I1 claims are written only after every step passed (the
 * caller sees zeros and the failed step otherwise). I2 the root inside
 * the quote is only compared with the pinned one, never trusted. I3 no
 * clock is read: every time comparison uses opts->now. I4 a status
 * "Revoked" is a failure, never a result a policy could accept.
 * Trusts: roots_data.c, OpenSSL, the collateral parser (collateral.c),
 * which already checked the collateral signatures.
 */
#include "attest_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#define FAIL(step, code, ...) coffer_attest__fail(out, (step), COFFER_FAIL((code), __VA_ARGS__))

static bool cert_valid_at(X509 *x, time_t now)
{
    return X509_cmp_time(X509_get0_notBefore(x), &now) < 0 && X509_cmp_time(X509_get0_notAfter(x), &now) > 0;
}

static bool crl_current_at(X509_CRL *crl, time_t now)
{
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
    return next != NULL && X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &now) < 0 && X509_cmp_time(next, &now) > 0;
}

static bool crl_lists(X509_CRL *crl, X509 *cert)
{
    X509_REVOKED *rev = NULL;
    int v = X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(cert));
    return v == 1;
}

static void fmt_time(time_t t, char *buf, size_t size)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "%lld", (long long)t);
}

static void asn1_time_str(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "?");
}

static const struct coffer_attest_collateral *pick_collateral(const struct coffer_attest_verify_opts *opts,
                                                              const struct pck_ext *pck)
{
    if (opts->collateral_count == 1)
        return opts->collateral[0];
    for (size_t i = 0; i < opts->collateral_count; i++) {
        const struct coffer_attest_collateral *c = opts->collateral[i];
        if (c != NULL && c->has_tcb_info && memcmp(c->fmspc, pck->fmspc, 6) == 0)
            return c;
    }
    return NULL;
}

static enum coffer_err revocation(const struct coffer_attest_collateral *c, const struct pck_chain *chain,
                                  const struct coffer_attest_verify_opts *opts, struct coffer_attest_claims *out,
                                  bool *checked)
{
    enum coffer_attest_step S = COFFER_ATTEST_STEP_PCK_REVOCATION;
    X509 *leaf = chain->leaf, *ca = chain->ca;
    char t[32];
    *checked = false;
    if (c->root_crl == NULL) {
        if (!opts->allow_missing_pck_crl)
            return FAIL(S, COFFER_E_NOT_FOUND, "revocation: no Intel Root CA CRL in the collateral");
    } else {
        if (!crl_current_at(c->root_crl, opts->now)) {
            asn1_time_str(X509_CRL_get0_nextUpdate(c->root_crl), t, sizeof(t));
            return FAIL(S, COFFER_E_EXPIRED, "revocation: Root CA CRL is not current (nextUpdate %s)", t);
        }
        if (crl_lists(c->root_crl, ca))
            return FAIL(S, COFFER_E_REVOKED, "revocation: the PCK intermediate CA is revoked by the Root CA CRL");
    }
    if (c->pck_crl == NULL) {
        if (!opts->allow_missing_pck_crl)
            return FAIL(S, COFFER_E_NOT_FOUND, "revocation: no PCK CRL in the collateral");
        return COFFER_OK;
    }
    if (X509_NAME_cmp(X509_CRL_get_issuer(c->pck_crl), X509_get_issuer_name(leaf)) != 0)
        return FAIL(S, COFFER_E_CERT, "revocation: the PCK CRL's issuer is not the PCK certificate's issuer");
    /* the CRL's signature was checked at collateral parse when its issuer
     * (pck_crl_chain.pem) is this very intermediate; otherwise check it now */
    bool issuer_known = c->pck_crl_issuer != NULL && X509_cmp(c->pck_crl_issuer, ca) == 0;
    if (!issuer_known && X509_CRL_verify(c->pck_crl, X509_get0_pubkey(ca)) != 1) {
        ERR_clear_error();
        return FAIL(S, COFFER_E_SIGNATURE, "revocation: PCK CRL signature by the PCK CA does not verify");
    }
    if (!crl_current_at(c->pck_crl, opts->now)) {
        time_t now = opts->now;
        bool early = X509_cmp_time(X509_CRL_get0_lastUpdate(c->pck_crl), &now) >= 0;
        asn1_time_str(early ? X509_CRL_get0_lastUpdate(c->pck_crl) : X509_CRL_get0_nextUpdate(c->pck_crl), t, sizeof(t));
        return FAIL(S, COFFER_E_EXPIRED, early ? "revocation: PCK CRL is not yet valid (thisUpdate %s)"
                                               : "revocation: PCK CRL has expired (nextUpdate %s)", t);
    }
    if (crl_lists(c->pck_crl, leaf))
        return FAIL(S, COFFER_E_REVOKED, "revocation: the PCK certificate is revoked");
    *checked = c->root_crl != NULL;
    return COFFER_OK;
}

/* Intel's converge rule for a QE or TDX-module status over a platform status. */
static enum coffer_attest_tcb converge(enum coffer_attest_tcb platform, enum coffer_attest_tcb other)
{
    if (other == COFFER_ATTEST_TCB_REVOKED)
        return COFFER_ATTEST_TCB_REVOKED;
    if (other == COFFER_ATTEST_TCB_OUT_OF_DATE) {
        switch (platform) {
        case COFFER_ATTEST_TCB_UP_TO_DATE:
        case COFFER_ATTEST_TCB_SW_HARDENING_NEEDED:
            return COFFER_ATTEST_TCB_OUT_OF_DATE;
        case COFFER_ATTEST_TCB_CONFIGURATION_NEEDED:
        case COFFER_ATTEST_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED:
            return COFFER_ATTEST_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
        default:
            return platform;
        }
    }
    return platform;
}

static void add_advisories(struct coffer_attest_claims *c, size_t n, const char adv[][COFFER_ATTEST_ADVISORY_SIZE])
{
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < c->advisory_count && !dup; j++)
            dup = strcmp(c->advisory_ids[j], adv[i]) == 0;
        if (!dup && c->advisory_count < COFFER_ATTEST_MAX_ADVISORIES)
            memcpy(c->advisory_ids[c->advisory_count++], adv[i], COFFER_ATTEST_ADVISORY_SIZE);
    }
}

static const struct qe_level *qe_level_for(const struct qe_level *lv, size_t n, uint16_t isvsvn)
{
    for (size_t i = 0; i < n; i++)
        if (lv[i].isvsvn <= isvsvn)
            return &lv[i];
    return NULL;
}

static bool sgx_level_matches(const struct tcb_level *lv, const struct pck_ext *pck)
{
    for (int i = 0; i < 16; i++)
        if (pck->comp[i] < lv->sgx[i])
            return false;
    return pck->pcesvn >= lv->pcesvn;
}

static bool tdx_level_matches(const struct tcb_level *lv, const uint8_t tee_tcb_svn[16], int from)
{
    for (int i = from; i < 16; i++)
        if (tee_tcb_svn[i] < lv->tdx[i])
            return false;
    return true;
}

/* TDX module identity and status (attestation.md §2 step 11). */
static enum coffer_err tdx_module(const struct coffer_attest_collateral *c, const struct td_report *td,
                                  struct coffer_attest_claims *out, const struct qe_level **mlevel,
                                  const struct tdx_module_identity **module)
{
    enum coffer_attest_step S = COFFER_ATTEST_STEP_TDX_MODULE;
    const uint8_t *mrsigner = c->tdx_mrsigner, *attrs = c->tdx_attributes, *mask = c->tdx_attributes_mask;
    const struct tdx_module_identity *mi = NULL;
    uint8_t v = td->tee_tcb_svn[1];
    *mlevel = NULL;
    *module = NULL;
    if (!c->has_tdx_module)
        return FAIL(S, COFFER_E_MALFORMED, "TDX: the TCB Info has no tdxModule");
    if (v > 0) {
        char id[16];
        snprintf(id, sizeof(id), "TDX_%02X", v);
        for (size_t i = 0; i < c->module_count && mi == NULL; i++)
            if (strcasecmp(c->modules[i].id, id) == 0)
                mi = &c->modules[i];
        if (mi == NULL)
            return FAIL(S, COFFER_E_POLICY, "TDX: no module identity %s in the TCB Info", id);
        mrsigner = mi->mrsigner;
        attrs = mi->attributes;
        mask = mi->attributes_mask;
    }
    if (!coffer_ct_eq(td->mrsignerseam, mrsigner, 48))
        return FAIL(S, COFFER_E_POLICY, "TDX: MRSIGNERSEAM is not the module signer in the TCB Info");
    for (int i = 0; i < 8; i++)
        if (td->seam_attributes[i] != 0 || (td->seam_attributes[i] & mask[i]) != attrs[i])
            return FAIL(S, COFFER_E_POLICY, "TDX: SEAMATTRIBUTES do not match the module identity");
    if (mi != NULL) {
        *module = mi;
        *mlevel = qe_level_for(mi->levels, mi->level_count, td->tee_tcb_svn[0]);
        if (*mlevel == NULL)
            return FAIL(S, COFFER_E_POLICY, "TDX: module %s ISVSVN %u below every level (TCB not supported)", mi->id,
                        td->tee_tcb_svn[0]);
    }
    return COFFER_OK;
}

/* attestation.md §2 step 11, last point: a TD 1.5 quote whose TD is out of
 * date only because it runs an old TDX module, on a platform that is
 * otherwise current, is told to relaunch: TEE_TCB_SVN2 (what the platform
 * now runs) meets the newest TCB level and the newest module level. */
static enum coffer_attest_tcb relaunch(const struct coffer_attest_collateral *c, const struct intel_quote *q,
                                       const struct pck_ext *pck, const struct qe_level *ql, const struct qe_level *ml,
                                       const struct tdx_module_identity *mi, int from, enum coffer_attest_tcb status)
{
    if (!q->td.v15 || ml == NULL || mi == NULL || mi->level_count == 0 || c->level_count == 0 ||
        ql->status != COFFER_ATTEST_TCB_UP_TO_DATE || ml->status != COFFER_ATTEST_TCB_OUT_OF_DATE)
        return status;
    if (status != COFFER_ATTEST_TCB_OUT_OF_DATE && status != COFFER_ATTEST_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED)
        return status;
    const struct tcb_level *sgx_only = NULL;
    for (size_t i = 0; i < c->level_count && sgx_only == NULL; i++)
        if (sgx_level_matches(&c->levels[i], pck))
            sgx_only = &c->levels[i];
    if (sgx_only == NULL || sgx_only->status == COFFER_ATTEST_TCB_OUT_OF_DATE ||
        sgx_only->status == COFFER_ATTEST_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED)
        return status;
    if (!tdx_level_matches(&c->levels[0], q->td.tee_tcb_svn2, from) || q->td.tee_tcb_svn2[0] < mi->levels[0].isvsvn)
        return status;
    return status == COFFER_ATTEST_TCB_OUT_OF_DATE ? COFFER_ATTEST_TCB_TD_RELAUNCH_ADVISED
                                                   : COFFER_ATTEST_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED;
}

static void fill_sgx_claims(const struct sgx_report *s, struct coffer_attest_claims *c)
{
    c->kind = COFFER_ATTEST_KIND_SGX;
    c->debug = (s->flags & 0x2) != 0;
    memcpy(c->report_data, s->report_data, 64);
    memcpy(c->mrenclave, s->mrenclave, 32);
    memcpy(c->mrsigner, s->mrsigner, 32);
    c->isv_prodid = s->isvprodid;
    c->isv_svn = s->isvsvn;
    memcpy(c->attributes, s->attributes, 16);
    c->miscselect = s->miscselect;
    memcpy(c->cpusvn, s->cpusvn, 16);
}

static void fill_td_claims(const struct td_report *t, struct coffer_attest_claims *c)
{
    c->kind = COFFER_ATTEST_KIND_TDX;
    c->debug = (t->td_attributes & 1) != 0;
    memcpy(c->report_data, t->report_data, 64);
    memcpy(c->mrtd, t->mrtd, 48);
    memcpy(c->rtmr, t->rtmr, sizeof(c->rtmr));
    memcpy(c->mrconfigid, t->mrconfigid, 48);
    memcpy(c->mrowner, t->mrowner, 48);
    memcpy(c->mrownerconfig, t->mrownerconfig, 48);
    memcpy(c->mrseam, t->mrseam, 48);
    if (t->v15)
        memcpy(c->mrservicetd, t->mrservicetd, 48);
    c->td_attributes = t->td_attributes;
    memcpy(c->tee_tcb_svn, t->tee_tcb_svn, 16);
}

static void fill_quote_claims(const struct intel_quote *q, struct coffer_attest_claims *c)
{
    if (q->tee_type == INTEL_TEE_SGX)
        fill_sgx_claims(&q->sgx, c);
    else
        fill_td_claims(&q->td, c);
    c->quote_version = q->version;
    c->qe_svn = q->qe_svn;
    c->pce_svn = q->pce_svn;
    memcpy(c->qe_mrenclave, q->qe_report.mrenclave, 32);
    memcpy(c->qe_mrsigner, q->qe_report.mrsigner, 32);
    c->qe_isv_prodid = q->qe_report.isvprodid;
    c->qe_isv_svn = q->qe_report.isvsvn;
}

enum coffer_err coffer_attest__intel_decode(const uint8_t *ev, size_t size, struct coffer_attest_claims *out)
{
    struct intel_quote q;
    enum coffer_err r = coffer_attest__intel_quote_parse(ev, size, &q);
    memset(out, 0, sizeof(*out));
    if (r != COFFER_OK)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_PARSE, r);
    fill_quote_claims(&q, out);
    return COFFER_OK;
}

/* Everything after the signatures: collateral, revocation, TCB. */
static enum coffer_err appraise(const struct intel_quote *q, const struct pck_chain *chain, const struct pck_ext *pck,
                                const struct coffer_attest_verify_opts *opts, struct coffer_attest_claims *res,
                                struct coffer_attest_claims *out)
{
    enum coffer_err r;
    char fm[13], t1[32];
    bool tdx = q->tee_type == INTEL_TEE_TDX;
    coffer_hex_encode(pck->fmspc, 6, fm);
    const struct coffer_attest_collateral *c = pick_collateral(opts, pck);
    if (c == NULL || !c->has_tcb_info)
        return FAIL(COFFER_ATTEST_STEP_COLLATERAL, COFFER_E_NOT_FOUND,
                    "collateral: no TCB Info for FMSPC %s (every signature check passed)", fm);
    if (!c->has_qe_identity)
        return FAIL(COFFER_ATTEST_STEP_COLLATERAL, COFFER_E_NOT_FOUND, "collateral: no QE Identity");
    if (memcmp(c->fmspc, pck->fmspc, 6) != 0)
        return FAIL(COFFER_ATTEST_STEP_COLLATERAL_MISMATCH, COFFER_E_POLICY,
                    "collateral: TCB Info is for another FMSPC than the PCK's %s", fm);

    if ((r = revocation(c, chain, opts, out, &res->revocation_checked)) != COFFER_OK)
        return r;

    if (c->tcb_signer == NULL || !cert_valid_at(c->tcb_signer, opts->now)) {
        asn1_time_str(c->tcb_signer != NULL ? X509_get0_notAfter(c->tcb_signer) : NULL, t1, sizeof(t1));
        return FAIL(COFFER_ATTEST_STEP_TCB_SIGNING_CHAIN, COFFER_E_EXPIRED,
                    "TCB signing cert is not valid at the verification time (notAfter %s)", t1);
    }
    if (c->root_crl != NULL && crl_lists(c->root_crl, c->tcb_signer))
        return FAIL(COFFER_ATTEST_STEP_TCB_SIGNING_CHAIN, COFFER_E_REVOKED, "TCB signing cert is revoked");

    if (opts->now < c->tcb_issue || opts->now > c->tcb_next) {
        fmt_time(c->tcb_next, t1, sizeof(t1));
        return FAIL(COFFER_ATTEST_STEP_COLLATERAL_EXPIRED, COFFER_E_EXPIRED,
                    "collateral: TCB Info is not current (nextUpdate %s)", t1);
    }
    if (opts->now < c->qe_issue || opts->now > c->qe_next) {
        fmt_time(c->qe_next, t1, sizeof(t1));
        return FAIL(COFFER_ATTEST_STEP_COLLATERAL_EXPIRED, COFFER_E_EXPIRED,
                    "collateral: QE Identity is not current (nextUpdate %s)", t1);
    }

    enum coffer_attest_step M = COFFER_ATTEST_STEP_COLLATERAL_MISMATCH;
    if (memcmp(c->pceid, pck->pceid, 2) != 0)
        return FAIL(M, COFFER_E_POLICY, "collateral: PCE-ID of the TCB Info is not the PCK's");
    if (strcmp(c->tcb_id, tdx ? "TDX" : "SGX") != 0)
        return FAIL(M, COFFER_E_POLICY, "collateral: TCB Info id \"%s\" for a %s quote", c->tcb_id,
                    tdx ? "TDX" : "SGX");
    if (tdx && c->tcb_version < 3)
        return FAIL(M, COFFER_E_POLICY, "collateral: TCB Info v%d for a TDX quote", c->tcb_version);
    if (strcmp(c->qe_id, tdx ? "TD_QE" : "QE") != 0)
        return FAIL(M, COFFER_E_POLICY, "collateral: QE Identity id \"%s\" for a %s quote", c->qe_id,
                    tdx ? "TDX" : "SGX");

    enum coffer_attest_step Q = COFFER_ATTEST_STEP_QE_IDENTITY;
    const struct sgx_report *qe = &q->qe_report;
    if (!coffer_ct_eq(qe->mrsigner, c->qe_mrsigner, 32))
        return FAIL(Q, COFFER_E_POLICY, "QE identity: MRSIGNER is not the one in the QE Identity");
    if (qe->isvprodid != c->qe_isvprodid)
        return FAIL(Q, COFFER_E_POLICY, "QE identity: ISVPRODID %u, want %u", qe->isvprodid, c->qe_isvprodid);
    if ((qe->miscselect & c->qe_miscselect_mask) != c->qe_miscselect)
        return FAIL(Q, COFFER_E_POLICY, "QE identity: MISCSELECT does not match under the mask");
    for (int i = 0; i < 16; i++)
        if ((qe->attributes[i] & c->qe_attributes_mask[i]) != c->qe_attributes[i])
            return FAIL(Q, COFFER_E_POLICY, "QE identity: ATTRIBUTES do not match under the mask (byte %d)", i);
    const struct qe_level *ql = qe_level_for(c->qe_levels, c->qe_level_count, qe->isvsvn);
    if (ql == NULL)
        return FAIL(Q, COFFER_E_POLICY, "QE identity: QE ISVSVN %u below every level (TCB not supported)",
                    qe->isvsvn);

    const struct tcb_level *lv = NULL;
    int from = tdx && q->td.tee_tcb_svn[1] > 0 ? 2 : 0;
    for (size_t i = 0; i < c->level_count && lv == NULL; i++)
        if (sgx_level_matches(&c->levels[i], pck) && (!tdx || tdx_level_matches(&c->levels[i], q->td.tee_tcb_svn, from)))
            lv = &c->levels[i];
    if (lv == NULL)
        return FAIL(COFFER_ATTEST_STEP_TCB_LEVEL, COFFER_E_POLICY,
                    "TCB level: no level in the TCB Info matches the platform (TCB not supported)");

    enum coffer_attest_tcb status = lv->status;
    add_advisories(res, lv->advisory_count, lv->advisories);
    if (tdx) {
        const struct qe_level *ml;
        const struct tdx_module_identity *mi;
        if ((r = tdx_module(c, &q->td, out, &ml, &mi)) != COFFER_OK)
            return r;
        if (ml != NULL) {
            status = converge(status, ml->status);
            add_advisories(res, ml->advisory_count, ml->advisories);
        }
        status = relaunch(c, q, pck, ql, ml, mi, from, status);
    }
    status = converge(status, ql->status);
    add_advisories(res, ql->advisory_count, ql->advisories);
    if (status == COFFER_ATTEST_TCB_REVOKED)
        return FAIL(COFFER_ATTEST_STEP_TCB_LEVEL, COFFER_E_REVOKED, "TCB level: the platform TCB is revoked");
    res->tcb_status = status;
    res->qe_tcb_status = ql->status;
    res->collateral_checked = true;
    return COFFER_OK;
}

enum coffer_err coffer_attest__intel_verify(const uint8_t *ev, size_t size, const struct coffer_attest_verify_opts *opts,
                                            struct coffer_attest_claims *out)
{
    enum coffer_err r;
    struct intel_quote q;
    struct pck_chain chain = {0};
    struct coffer_attest_claims *res = coffer_calloc(1, sizeof(*res));
    memset(out, 0, sizeof(*out));
    if (res == NULL)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_ARGS, COFFER_E_NOMEM);

    if ((r = coffer_attest__intel_quote_parse(ev, size, &q)) != COFFER_OK) {
        coffer_attest__fail(out, COFFER_ATTEST_STEP_PARSE, r);
        goto done;
    }
    if ((r = coffer_attest__pck_chain_verify(q.pck_pem, q.pck_pem_size, opts->now, &chain)) != COFFER_OK) {
        coffer_attest__fail(out, COFFER_ATTEST_STEP_PCK_CHAIN, r);
        goto done;
    }
    const struct pck_ext *pck = &chain.pck;
    uint8_t qeh[32], qebuf[SGX_REPORT_SIZE + 64];
    memcpy(qebuf, q.qe_report_raw, SGX_REPORT_SIZE);
    memcpy(qebuf + SGX_REPORT_SIZE, q.qe_report_sig, 64);
    coffer_attest__sha256(qebuf, sizeof(qebuf), qeh);
    if (!coffer_attest__pck_qe_seen(&chain, qeh)) {
        r = coffer_attest__p256_verify(chain.leaf_xy, q.qe_report_sig, q.qe_report_raw, SGX_REPORT_SIZE);
        if (r != COFFER_OK) {
            r = FAIL(COFFER_ATTEST_STEP_QE_REPORT_SIGNATURE, r == COFFER_E_CRYPTO ? r : COFFER_E_SIGNATURE,
                     "QE report signature by the PCK key does not verify");
            goto done;
        }
        coffer_attest__pck_qe_remember(&chain, qeh);
    }
    uint8_t h[32];
    uint8_t *buf = coffer_malloc(64 + q.qe_auth_size);
    if (buf == NULL) {
        r = coffer_attest__fail(out, COFFER_ATTEST_STEP_QE_BINDING, COFFER_E_NOMEM);
        goto done;
    }
    memcpy(buf, q.att_key, 64);
    if (q.qe_auth_size > 0)
        memcpy(buf + 64, q.qe_auth, q.qe_auth_size);
    coffer_attest__sha256(buf, 64 + q.qe_auth_size, h);
    coffer_free(buf);
    static const uint8_t zero[32];
    if (!coffer_ct_eq(h, q.qe_report.report_data, 32) || !coffer_ct_eq(q.qe_report.report_data + 32, zero, 32)) {
        r = FAIL(COFFER_ATTEST_STEP_QE_BINDING, COFFER_E_SIGNATURE,
                 "binding: SHA-256(attestation key || QE auth data) is not the QE report's REPORTDATA");
        goto done;
    }
    r = coffer_attest__p256_verify(q.att_key, q.sig, q.signed_region, q.signed_size);
    if (r != COFFER_OK) {
        r = FAIL(COFFER_ATTEST_STEP_QUOTE_SIGNATURE, r == COFFER_E_CRYPTO ? r : COFFER_E_SIGNATURE, "%s",
                 r == COFFER_E_MALFORMED ? "quote: the attestation key is not a point on P-256"
                                         : "quote signature by the attestation key does not verify");
        goto done;
    }
    fill_quote_claims(&q, res);
    memcpy(res->fmspc, pck->fmspc, 6);
    memcpy(res->pceid, pck->pceid, 2);
    res->pcesvn = pck->pcesvn;
    memcpy(res->pck_tcb, pck->comp, 16);
    if ((r = appraise(&q, &chain, pck, opts, res, out)) != COFFER_OK)
        goto done;
    *out = *res;
done:
    coffer_attest__pck_chain_release(&chain);
    coffer_memzero(res, sizeof(*res));
    coffer_free(res);
    return r;
}
