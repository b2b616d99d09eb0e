/*
 * coffer/attest.h — attestation evidence: parsing, offline verification,
 * policy, and the providers that produce evidence for this process.
 *
 * Evidence kinds: Intel SGX DCAP quotes (v3), Intel TDX quotes (v4, v5),
 * AMD SEV-SNP attestation reports, and coffer simulation evidence (a
 * statement signed by a local software "platform key"). RA-TLS certificates
 * (Gramine-compatible) carry any of them.
 *
 * Verification never touches the network and never reads the clock: the
 * caller passes the verification time and the collateral (Intel TCB Info,
 * QE Identity, CRLs, the TCB signing chain) explicitly. Trust anchors (the
 * Intel SGX Root CA, the AMD ARKs) are compiled into coffer and pinned; a
 * root carried inside evidence proves nothing by itself.
 *
 * Verification is two steps with one result struct:
 *   1. coffer_attest_evidence_verify: the cryptographic verdict (chains,
 *      signatures, bindings, collateral, TCB status) and the claims;
 *   2. coffer_attest_policy_check: the caller's policy over those claims.
 * A failure names the step (enum coffer_attest_step) and, through
 * coffer_err_detail(), what exactly was wrong.
 *
 * Simulation evidence proves nothing about hardware: claims carry
 * simulation = true, every name printed for it says "simulation", and a
 * policy accepts it only when it says allow_simulation.
 *
 * Conventions as in coffer/base.h: enum coffer_err returns, out-params
 * cleared on entry and written on success.
 */
#ifndef COFFER_ATTEST_H
#define COFFER_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "coffer/base.h"

/* ------------------------------------------------------------------- kinds */

enum coffer_attest_kind {
    COFFER_ATTEST_KIND_NONE = 0,
    COFFER_ATTEST_KIND_SIM = 1, /* coffer simulation evidence: no hardware */
    COFFER_ATTEST_KIND_SGX = 2, /* Intel SGX DCAP ECDSA quote */
    COFFER_ATTEST_KIND_TDX = 3, /* Intel TDX quote */
    COFFER_ATTEST_KIND_SNP = 4, /* AMD SEV-SNP attestation report */
};
#define COFFER_ATTEST_KIND_COUNT 5

/* "sgx", "tdx", "snp", "simulation", "none". */
const char *coffer_attest_kind_name(enum coffer_attest_kind kind);

/* Recognise evidence by its first bytes (does not verify anything). */
enum coffer_attest_kind coffer_attest_evidence_kind(const uint8_t *ev, size_t size);

/* -------------------------------------------------------------- TCB status */

enum coffer_attest_tcb {
    COFFER_ATTEST_TCB_NONE = 0, /* not evaluated (simulation, or no collateral) */
    COFFER_ATTEST_TCB_UP_TO_DATE,
    COFFER_ATTEST_TCB_SW_HARDENING_NEEDED,
    COFFER_ATTEST_TCB_CONFIGURATION_NEEDED,
    COFFER_ATTEST_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
    COFFER_ATTEST_TCB_OUT_OF_DATE,
    COFFER_ATTEST_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
    COFFER_ATTEST_TCB_TD_RELAUNCH_ADVISED,
    COFFER_ATTEST_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED,
    COFFER_ATTEST_TCB_REVOKED,
    COFFER_ATTEST_TCB_NOT_SUPPORTED, /* no TCB level matches the platform */
};
#define COFFER_ATTEST_TCB_COUNT 11

/* Intel's spelling ("UpToDate", "ConfigurationAndSWHardeningNeeded", ...;
 * "None", "NotSupported"). */
const char *coffer_attest_tcb_name(enum coffer_attest_tcb tcb);
/* Parse Intel's spelling (exact); COFFER_E_MALFORMED for anything else. */
COFFER_NODISCARD enum coffer_err coffer_attest_tcb_parse(const char *s, enum coffer_attest_tcb *out);

/* --------------------------------------------------------- verification step */

/* Where verification stopped. Steps are listed in the order they run. */
enum coffer_attest_step {
    COFFER_ATTEST_STEP_NONE = 0,          /* success */
    COFFER_ATTEST_STEP_ARGS,              /* bad arguments */
    COFFER_ATTEST_STEP_PARSE,             /* evidence framing, lengths, fixed fields */
    COFFER_ATTEST_STEP_PCK_CHAIN,         /* PCK leaf <- intermediate <- pinned Intel root, at now */
    COFFER_ATTEST_STEP_PCK_REVOCATION,    /* Root CA CRL / PCK CRL: signature, currency, revoked */
    COFFER_ATTEST_STEP_QE_REPORT_SIGNATURE, /* QE report signed by the PCK key */
    COFFER_ATTEST_STEP_QE_BINDING,        /* SHA-256(attest key || QE auth) = QE REPORTDATA */
    COFFER_ATTEST_STEP_QUOTE_SIGNATURE,   /* quote signed by the attestation key */
    COFFER_ATTEST_STEP_COLLATERAL,        /* no collateral for this platform */
    COFFER_ATTEST_STEP_TCB_SIGNING_CHAIN, /* TCB signing cert <- pinned root, at now, not revoked */
    COFFER_ATTEST_STEP_TCB_INFO_SIGNATURE, /* TCB Info: signature over its exact bytes (and its shape) */
    COFFER_ATTEST_STEP_QE_IDENTITY_SIGNATURE, /* QE Identity: signature (and shape) */
    COFFER_ATTEST_STEP_COLLATERAL_EXPIRED, /* TCB Info / QE Identity not current at now */
    COFFER_ATTEST_STEP_COLLATERAL_MISMATCH, /* FMSPC, PCE-ID, TCB Info id, QE Identity id */
    COFFER_ATTEST_STEP_QE_IDENTITY,       /* QE report against QE Identity */
    COFFER_ATTEST_STEP_TCB_LEVEL,         /* no TCB level matches: TCB not supported */
    COFFER_ATTEST_STEP_TDX_MODULE,        /* TDX module identity */
    COFFER_ATTEST_STEP_SIM_KEY,           /* simulation: not signed by the trusted platform key */
    COFFER_ATTEST_STEP_SIM_SIGNATURE,     /* simulation: statement signature */
    COFFER_ATTEST_STEP_SNP_CHAIN,         /* ARK <- ASK/ASVK <- VCEK/VLEK */
    COFFER_ATTEST_STEP_SNP_SIGNATURE,     /* report signature by the VCEK/VLEK */
    COFFER_ATTEST_STEP_SNP_TCB,           /* VCEK TCB != REPORTED_TCB */
    COFFER_ATTEST_STEP_SNP_CHIP_ID,       /* VCEK hwID != CHIP_ID */
    COFFER_ATTEST_STEP_POLICY,            /* the caller's policy refused valid evidence */
};
#define COFFER_ATTEST_STEP_COUNT 24

/* Stable snake_case name: "quote_signature", "qe_report_signature", ... */
const char *coffer_attest_step_name(enum coffer_attest_step step);

/* ------------------------------------------------------------------ claims */

#define COFFER_ATTEST_REPORT_DATA_SIZE 64
#define COFFER_ATTEST_MAX_ADVISORIES 32
#define COFFER_ATTEST_ADVISORY_SIZE 32 /* "INTEL-SA-00615" + NUL fits easily */

/* What verified evidence says. Plain data, caller-owned, no pointers. Fields
 * of other kinds stay zero. On a failed verification everything is zero
 * except failed_step. */
struct coffer_attest_claims {
    enum coffer_attest_kind kind;
    bool simulation; /* true for simulation evidence: no hardware protection */
    bool debug;      /* SGX ATTRIBUTES.DEBUG, TDX TDATTRIBUTES.DEBUG, SNP POLICY.DEBUG */
    uint8_t report_data[COFFER_ATTEST_REPORT_DATA_SIZE];

    /* SGX (enclave report body) */
    uint8_t mrenclave[32];
    uint8_t mrsigner[32];
    uint16_t isv_prodid;
    uint16_t isv_svn;
    uint8_t attributes[16]; /* flags u64 LE || XFRM u64 LE */
    uint32_t miscselect;
    uint8_t cpusvn[16];

    /* Intel quote header and quoting enclave (QE) */
    uint16_t quote_version;
    uint16_t qe_svn;  /* header QE SVN */
    uint16_t pce_svn; /* header PCE SVN */
    uint8_t qe_mrenclave[32];
    uint8_t qe_mrsigner[32];
    uint16_t qe_isv_prodid;
    uint16_t qe_isv_svn;

    /* Intel platform (from the PCK certificate) */
    uint8_t fmspc[6];
    uint8_t pceid[2];
    uint16_t pcesvn;
    uint8_t pck_tcb[16];

    /* TDX (TD report body) */
    uint8_t mrtd[48];
    uint8_t rtmr[4][48];
    uint8_t mrconfigid[48];
    uint8_t mrowner[48];
    uint8_t mrownerconfig[48];
    uint8_t mrseam[48];
    uint8_t mrservicetd[48]; /* TD report 1.5 only; zero otherwise */
    uint64_t td_attributes;
    uint8_t tee_tcb_svn[16];

    /* SNP */
    uint8_t measurement[48];
    uint8_t host_data[32];
    uint8_t chip_id[64];
    uint8_t family_id[16];
    uint8_t image_id[16];
    uint8_t id_key_digest[48];
    uint8_t author_key_digest[48];
    uint64_t platform_info;
    uint64_t current_tcb;
    uint64_t snp_policy;
    uint32_t vmpl;
    uint32_t guest_svn;
    uint64_t reported_tcb;
    char snp_product[16]; /* "Milan", "Genoa", "Turin": decides the TCB layout */
    /* REPORTED_TCB decoded for snp_product (-1 where the layout has none) */
    int snp_bl_spl, snp_tee_spl, snp_snp_spl, snp_ucode_spl, snp_fmc_spl;
    /* the VCEK/VLEK came from the evidence's own certificate table */
    bool snp_key_from_evidence;

    /* simulation */
    uint8_t exe_sha256[32];
    uint8_t sim_platform_key[64]; /* P-256 x || y of the key that signed */

    /* verdict */
    enum coffer_attest_tcb tcb_status;    /* combined platform status */
    enum coffer_attest_tcb qe_tcb_status; /* Intel QE identity status */
    char advisory_ids[COFFER_ATTEST_MAX_ADVISORIES][COFFER_ATTEST_ADVISORY_SIZE];
    size_t advisory_count;
    bool collateral_checked;   /* TCB status comes from verified collateral */
    bool revocation_checked;   /* both Intel CRLs were applied */
    enum coffer_attest_step failed_step;
};

/* The claims as a JSON object (new reference, NULL on allocation failure):
 * {"kind":..., "simulation":..., "debug":..., "report_data":"hex", ...,
 *  "tcb_status":..., "advisory_ids":[...]}. Only the kind's fields appear. */
json_t *coffer_attest_claims_to_json(const struct coffer_attest_claims *c);

/* -------------------------------------------------------------- collateral */

/* Intel collateral as served by PCS / PCCS (the layout of
 * ../shared/vectors/attest/collateral/<set>/). Any pointer may be NULL
 * (that item is missing). Borrowed during coffer_attest_collateral_parse
 * only. */
struct coffer_attest_collateral_bytes {
    const uint8_t *tcb_info; size_t tcb_info_size;                   /* tcb_info.json */
    const uint8_t *qe_identity; size_t qe_identity_size;             /* qe_identity.json */
    const uint8_t *tcb_signing_chain; size_t tcb_signing_chain_size; /* PEM: signer, root */
    const uint8_t *pck_crl; size_t pck_crl_size;                     /* DER or PEM */
    const uint8_t *root_ca_crl; size_t root_ca_crl_size;             /* DER or PEM */
    const uint8_t *pck_crl_chain; size_t pck_crl_chain_size;         /* PEM: PCK CA, root (optional) */
};

/* Parsed, signature-checked collateral (opaque). Immutable after parse, so
 * one may be shared by threads verifying in parallel. */
struct coffer_attest_collateral;

/* Parse and check the signatures that do not depend on time: the TCB
 * signing cert is issued by the pinned Intel root, the TCB Info and QE
 * Identity JSON signatures verify over their exact value bytes, the Root CA
 * CRL is signed by the pinned root. Currency and the match to a quote are
 * checked by coffer_attest_evidence_verify at its time. *out is freed with
 * coffer_attest_collateral_free. If failed_step is not NULL it receives the
 * step that failed. */
COFFER_NODISCARD enum coffer_err coffer_attest_collateral_parse(const struct coffer_attest_collateral_bytes *in,
                                                                struct coffer_attest_collateral **out,
                                                                enum coffer_attest_step *failed_step);
/* Read DIR/{tcb_info.json, qe_identity.json, tcb_signing_chain.pem,
 * pck_crl.der, root_ca_crl.der, pck_crl_chain.pem} (missing files are
 * missing items) and parse. */
COFFER_NODISCARD enum coffer_err coffer_attest_collateral_load_dir(const char *dir,
                                                                   struct coffer_attest_collateral **out,
                                                                   enum coffer_attest_step *failed_step);
void coffer_attest_collateral_free(struct coffer_attest_collateral *c);

/* ------------------------------------------------------------ verification */

struct coffer_attest_verify_opts {
    time_t now; /* the verification time (required; never read from the clock here) */
    /* Intel collateral sets to choose from by FMSPC (borrowed). With none
     * matching, verification stops at COFFER_ATTEST_STEP_COLLATERAL after
     * every signature check has passed. */
    const struct coffer_attest_collateral *const *collateral;
    size_t collateral_count;
    /* Accept a missing PCK CRL; claims.revocation_checked says false. A
     * supplied CRL is always enforced. */
    bool allow_missing_pck_crl;
    /* Simulation: the trusted platform public key (P-256 x || y). NULL
     * refuses all simulation evidence at COFFER_ATTEST_STEP_SIM_KEY. */
    const uint8_t *sim_platform_key;
    /* SEV-SNP: the VCEK or VLEK certificate (DER) the report is signed with.
     * The ASK/ASVK and ARK are the pinned ones. Extended evidence (report +
     * certificate table) brings its own; when both are there they must be
     * the same certificate, or verification fails at SNP_CHAIN. */
    const uint8_t *snp_key_cert;
    size_t snp_key_cert_size;
    /* SEV-SNP, optional: AMD's CRL for the product (DER, KDS
     * /vcek/v1/<product>/crl): must be signed by the pinned ARK and current,
     * and must not list the ASK/ASVK. */
    const uint8_t *amd_crl;
    size_t amd_crl_size;
};

/* Verify evidence of any kind at opts->now and fill *out with its claims
 * and TCB verdict. Does not apply a policy. On failure *out is zero except
 * out->failed_step, and coffer_err_detail() names what failed. Codes:
 * MALFORMED/TRUNCATED/UNSUPPORTED (parse), CERT, EXPIRED, REVOKED,
 * SIGNATURE, NOT_FOUND (no collateral), POLICY (collateral mismatch or TCB
 * not supported). */
COFFER_NODISCARD enum coffer_err coffer_attest_evidence_verify(const uint8_t *ev, size_t size,
                                                               const struct coffer_attest_verify_opts *opts,
                                                               struct coffer_attest_claims *out);

/* Forget the verifier's memos (PCK chains and QE report signatures already
 * checked, keyed by their exact bytes). Never needed for correctness. */
void coffer_attest_cache_clear(void);

/* Decode evidence without verifying anything (for display and fuzzing):
 * the kind's fields of *out are filled; verdict fields stay zero. */
COFFER_NODISCARD enum coffer_err coffer_attest_evidence_decode(const uint8_t *ev, size_t size,
                                                               struct coffer_attest_claims *out);

/* ------------------------------------------------------------------ policy */

#define COFFER_ATTEST_POLICY_MAX 16

struct coffer_attest_digest {
    uint8_t bytes[48];
    size_t size; /* 32 (MRENCLAVE, MRSIGNER, exe hash) or 48 (MRTD, SNP measurement) */
};

/* What a relying party accepts. Plain data; start from
 * coffer_attest_policy_init (the strict default: hardware only, no debug,
 * UpToDate only, no advisories, VMPL 0, any measurement). */
struct coffer_attest_policy {
    uint32_t kinds; /* bit (1u << kind) per accepted kind; SIM only with allow_simulation */
    bool allow_simulation;
    /* Allowed measurements (MRENCLAVE, MRTD, SNP MEASUREMENT, simulation exe
     * hash); empty = any. */
    struct coffer_attest_digest measurements[COFFER_ATTEST_POLICY_MAX];
    size_t measurement_count;
    /* Allowed signers (SGX MRSIGNER); empty = any. */
    struct coffer_attest_digest signers[COFFER_ATTEST_POLICY_MAX];
    size_t signer_count;
    bool check_isv_prodid;
    uint16_t isv_prodid;
    uint16_t min_isv_svn; /* SGX ISVSVN; SEV-SNP GUEST_SVN */
    bool allow_debug;
    /* bit (1u << status) per accepted TCB status; UpToDate is always
     * accepted for hardware evidence, Revoked and NotSupported never. */
    uint32_t tcb_statuses;
    /* Advisory IDs that may be present; any other fails unless allow_any_advisory. */
    char advisories[COFFER_ATTEST_POLICY_MAX][COFFER_ATTEST_ADVISORY_SIZE];
    size_t advisory_count;
    bool allow_any_advisory;
    /* Accept evidence whose TCB was not evaluated (no collateral). */
    bool allow_no_collateral;
    uint32_t max_vmpl; /* SNP */
    /* SEV-SNP: minimum REPORTED_TCB components (-1 = no minimum; see
     * coffer_attest_policy_init). */
    int min_snp_bl, min_snp_tee, min_snp_snp, min_snp_ucode, min_snp_fmc;
    /* TDX: accept a TD bound to a service TD (MRSERVICETD not zero). */
    bool allow_service_td;
    /* Expected report data (the protocol's binding), compared in constant time. */
    bool check_report_data;
    uint8_t report_data[COFFER_ATTEST_REPORT_DATA_SIZE];
};

void coffer_attest_policy_init(struct coffer_attest_policy *p);

/* Read a policy from JSON:
 *   {"kinds":["sgx","tdx","snp","simulation"], "allow_simulation":false,
 *    "measurements":["hex",...], "signers":["hex",...], "isv_prodid":0,
 *    "min_isv_svn":0, "allow_debug":false,
 *    "tcb_statuses":["UpToDate","SWHardeningNeeded",...],
 *    "advisories":["INTEL-SA-00615",...], "allow_any_advisory":false,
 *    "allow_no_collateral":false, "max_vmpl":0, "allow_service_td":false,
 *    "min_snp_tcb":{"bl":3,"tee":0,"snp":8,"ucode":209,"fmc":0},
 *    "report_data":"hex"}
 * Unknown keys are an error (a typo must not loosen a policy). Members not
 * given keep the defaults of coffer_attest_policy_init. */
COFFER_NODISCARD enum coffer_err coffer_attest_policy_from_json(const json_t *j, struct coffer_attest_policy *out);

/* COFFER_OK when the policy accepts the claims; COFFER_E_POLICY naming the
 * first rule that refused them otherwise. */
COFFER_NODISCARD enum coffer_err coffer_attest_policy_check(const struct coffer_attest_policy *p,
                                                            const struct coffer_attest_claims *c);

/* ------------------------------------------------------------- simulation */

/* Simulation evidence (format in src/attest/sim.c): magic "CFSIMEV1",
 * version, SHA-256 of the running executable, report data, the platform
 * public key, and an ECDSA P-256 signature by the platform key. */
#define COFFER_ATTEST_SIM_SIZE 240

/* The local platform key file: $COFFER_SIM_PLATFORM_KEY, else
 * $HOME/.coffer/sim-platform-key.pem. Writes at most size bytes. */
COFFER_NODISCARD enum coffer_err coffer_attest_sim_key_path(char *buf, size_t size);

/* The public half (x || y) of the platform key at path, creating the key
 * (P-256, file mode 0600, written atomically) when create and it is missing. */
COFFER_NODISCARD enum coffer_err coffer_attest_sim_key_public(const char *path, bool create, uint8_t out[64]);

/* Make simulation evidence for this process: SHA-256 of /proc/self/exe (or
 * exe_path when not NULL) and report_data, signed by the key at key_path
 * (created when missing). *out from coffer_malloc, COFFER_ATTEST_SIM_SIZE bytes. */
COFFER_NODISCARD enum coffer_err coffer_attest_sim_evidence(const char *key_path, const char *exe_path,
                                                            const uint8_t report_data[64],
                                                            uint8_t **out, size_t *out_size);

/* The same, for a process that makes evidence many times: the key is
 * loaded and the executable hashed once, at open. Free wipes the key. */
struct coffer_attest_sim_signer;
COFFER_NODISCARD enum coffer_err coffer_attest_sim_signer_open(const char *key_path, const char *exe_path,
                                                               struct coffer_attest_sim_signer **out);
COFFER_NODISCARD enum coffer_err coffer_attest_sim_signer_sign(struct coffer_attest_sim_signer *s,
                                                               const uint8_t report_data[64], uint8_t **out,
                                                               size_t *out_size);
void coffer_attest_sim_signer_free(struct coffer_attest_sim_signer *s);

/* -------------------------------------------------------------- providers */

enum coffer_attest_provider {
    COFFER_ATTEST_PROVIDER_AUTO = 0, /* hardware if present, else fail unless simulation was asked */
    COFFER_ATTEST_PROVIDER_GRAMINE,  /* SGX via Gramine's /dev/attestation */
    COFFER_ATTEST_PROVIDER_TSM,      /* TDX / SNP via configfs-tsm */
    COFFER_ATTEST_PROVIDER_SIM,      /* simulation, explicitly */
};

/* "auto", "gramine", "tsm", "simulation". */
const char *coffer_attest_provider_name(enum coffer_attest_provider p);
COFFER_NODISCARD enum coffer_err coffer_attest_provider_parse(const char *s, enum coffer_attest_provider *out);

/* Which provider AUTO picks on this machine: GRAMINE when
 * /dev/attestation/quote exists, TSM when /sys/kernel/config/tsm/report
 * exists, else SIM only if $COFFER_ATTEST_PROVIDER says "simulation";
 * otherwise COFFER_E_NOT_FOUND. $COFFER_ATTEST_PROVIDER overrides. */
COFFER_NODISCARD enum coffer_err coffer_attest_provider_detect(enum coffer_attest_provider *out);

/* Evidence for this process with the given report data from provider p
 * (AUTO: detect). A hardware provider that fails is an error; there is no
 * fallback to simulation. On an SEV-SNP guest the report is followed by the
 * host's certificate table (configfs-tsm auxblob) when the host attached
 * one: SNP extended evidence. *out from coffer_malloc. */
COFFER_NODISCARD enum coffer_err coffer_attest_provider_evidence(enum coffer_attest_provider p,
                                                                 const uint8_t report_data[64],
                                                                 uint8_t **out, size_t *out_size);

/* ------------------------------------------------------------------ RA-TLS */

/* OpenSSL types, without pulling OpenSSL's headers into every includer. */
struct x509_st;
struct evp_pkey_st;
struct ssl_ctx_st;

/* A Gramine-compatible RA-TLS certificate (format in src/attest/ratls.c) for
 * a fresh ECDSA P-256 key, with evidence from provider p bound to that key in
 * both of Gramine's extensions (legacy quote, TCG tagged evidence). The
 * caller frees *cert with X509_free and *key with EVP_PKEY_free. */
COFFER_NODISCARD enum coffer_err coffer_attest_ratls_make(enum coffer_attest_provider p, struct x509_st **cert,
                                                          struct evp_pkey_st **key);

/* Verify an RA-TLS certificate: its evidence (with opts: time, collateral,
 * simulation key), the binding of the evidence to the certificate's key,
 * and policy (NULL: none). TCG extension preferred, no fallback to the
 * legacy one when TCG is present but bad. On failure out->failed_step says
 * where (binding failures are COFFER_ATTEST_STEP_POLICY). */
COFFER_NODISCARD enum coffer_err coffer_attest_ratls_verify_x509(struct x509_st *cert,
                                                                 const struct coffer_attest_verify_opts *opts,
                                                                 const struct coffer_attest_policy *policy,
                                                                 struct coffer_attest_claims *out);
COFFER_NODISCARD enum coffer_err coffer_attest_ratls_verify_der(const uint8_t *der, size_t size,
                                                                const struct coffer_attest_verify_opts *opts,
                                                                const struct coffer_attest_policy *policy,
                                                                struct coffer_attest_claims *out);
/* Parse the TCG evidence extension value (CBOR) down to the evidence and
 * the claims, requiring the pubkey-hash claim (exposed for fuzzing). */
COFFER_NODISCARD enum coffer_err coffer_attest_ratls_extensions_parse(const uint8_t *tcg, size_t tcg_size,
                                                                      const uint8_t **ev, size_t *ev_size,
                                                                      const uint8_t **claims, size_t *claims_size);

/* The verification hook for TLS, client or server side: the peer must
 * present exactly one RA-TLS certificate that passes
 * coffer_attest_ratls_verify_x509 with v's options and policy. opts.now = 0
 * means "the time of the handshake". v must outlive ctx; last / last_err
 * hold the latest result (not synchronised: one connection at a time, or
 * one verifier per connection). */
struct coffer_attest_ratls_verifier {
    struct coffer_attest_verify_opts opts;
    struct coffer_attest_policy policy;
    bool policy_set;
    struct coffer_attest_claims last;
    enum coffer_err last_err;
};
COFFER_NODISCARD enum coffer_err coffer_attest_ratls_ctx_set_verify(struct ssl_ctx_st *ctx,
                                                                    struct coffer_attest_ratls_verifier *v);

/* ---------------------------------------------------------------- SEV-SNP */

/* What a VCEK / VLEK certificate says (extensions under 1.3.6.1.4.1.3704.1). */
struct coffer_attest_snp_cert {
    char product[32]; /* productName: "Milan-B0", "Milan", "Turin", ... */
    bool vlek;
    int bl_spl, tee_spl, snp_spl, ucode_spl, fmc_spl; /* -1 when absent */
    uint8_t hwid[64];
    size_t hwid_size; /* 64 (Milan, Genoa), 8 (Turin), 0 (VLEK) */
};

/* Check a VCEK or VLEK alone: ARK (pinned) -> ASK/ASVK (pinned) -> it, at
 * now, for the product its productName names; and decode its extensions. */
COFFER_NODISCARD enum coffer_err coffer_attest_snp_cert_check(const uint8_t *der, size_t size, time_t now,
                                                              struct coffer_attest_snp_cert *out);

/* SEV-SNP extended evidence: the 1184-byte ATTESTATION_REPORT followed by
 * the certificate table the host attached to it (GHCB "SNP extended guest
 * request" certificate data; Linux configfs-tsm `auxblob`, byte for byte).
 * The table is entries of {16-byte GUID, u32 LE offset, u32 LE length},
 * ended by an all-zero entry, offsets counted from the table's start, then
 * the certificates (DER). The GUID bytes are in RFC 4122 order (the order
 * the text form reads), as AMD's sev-guest tool, virtee/sev and go-sev-guest
 * write and read them. Format and rules: docs/attest.md. */
#define COFFER_ATTEST_SNP_REPORT_SIZE 1184
#define COFFER_ATTEST_SNP_CERTS_MAX 16384 /* the kernel's buffer (SEV_FW_BLOB_MAX_SIZE) */
#define COFFER_ATTEST_SNP_CERT_ENTRIES_MAX 32

enum coffer_attest_snp_cert_kind {
    COFFER_ATTEST_SNP_CERT_OTHER = 0, /* a GUID coffer does not use (kept, ignored) */
    COFFER_ATTEST_SNP_CERT_VCEK,      /* 63da758d-e664-4564-adc5-f4b93be8accd */
    COFFER_ATTEST_SNP_CERT_VLEK,      /* a8074bc2-a25a-483e-aae6-39c045a0b8a1 */
    COFFER_ATTEST_SNP_CERT_ASK,       /* 4ab7b379-bbac-4fe4-a02f-05aef327c782 (ASK or ASVK) */
    COFFER_ATTEST_SNP_CERT_ARK,       /* c0b406a4-a803-4952-9743-3fb6014cd0ae */
};

struct coffer_attest_snp_cert_entry {
    uint8_t guid[16];
    enum coffer_attest_snp_cert_kind kind;
    uint32_t offset, length;
    const uint8_t *data; /* borrowed from the table bytes: length bytes at offset */
};

struct coffer_attest_snp_cert_table {
    struct coffer_attest_snp_cert_entry entries[COFFER_ATTEST_SNP_CERT_ENTRIES_MAX];
    size_t count;       /* entries before the all-zero one */
    size_t header_size; /* bytes of entries, the all-zero one included */
};

/* Parse a certificate table (borrowing blob). Fails with a detail naming
 * the entry and what is wrong: no all-zero terminator, an entry that points
 * into the table or past its end, two entries that overlap, a GUID twice, a
 * zero GUID with an offset or length, an empty certificate, a known GUID
 * written in mixed-endian (EFI) byte order, bytes after the last
 * certificate, more than COFFER_ATTEST_SNP_CERTS_MAX bytes or
 * COFFER_ATTEST_SNP_CERT_ENTRIES_MAX entries. The certificates themselves are
 * not decoded here. */
COFFER_NODISCARD enum coffer_err coffer_attest_snp_cert_table_parse(const uint8_t *blob, size_t size,
                                                                    struct coffer_attest_snp_cert_table *out);
/* The entry of that kind, or NULL. */
const struct coffer_attest_snp_cert_entry *coffer_attest_snp_cert_table_find(const struct coffer_attest_snp_cert_table *t,
                                                                            enum coffer_attest_snp_cert_kind kind);
/* "VCEK", "VLEK", "ASK", "ARK", "other". */
const char *coffer_attest_snp_cert_kind_name(enum coffer_attest_snp_cert_kind kind);

/* ----------------------------------------------------------------- anchors */

/* The pinned trust anchors compiled into coffer (DER, borrowed, static). */
const uint8_t *coffer_attest_intel_root_der(size_t *size);
/* COFFER_OK when every pinned AMD chain (Milan, Genoa, Turin, Milan VLEK)
 * parsed and verifies: ARK self-signed, ASK/ASVK signed by the ARK. */
COFFER_NODISCARD enum coffer_err coffer_attest_amd_roots_check(void);

#ifdef COFFER_TESTING
/* Test builds only: pin a test root instead of Intel's (DER; NULL restores
 * Intel's), so tests can build a whole Intel-like PKI with OpenSSL. Clears
 * the PCK chain memo. Not thread-safe against concurrent verification. */
COFFER_NODISCARD enum coffer_err coffer_attest_test_pin_intel_root(const uint8_t *der, size_t size);
/* Test builds only: pin a test ASK and ARK (DER) for product "Milan",
 * "Genoa", "Turin" or "Milan-VLEK"; ask_der NULL restores AMD's. */
COFFER_NODISCARD enum coffer_err coffer_attest_test_pin_amd_chain(const char *product, const uint8_t *ask_der,
                                                                  size_t ask_size, const uint8_t *ark_der,
                                                                  size_t ark_size);
/* Test builds only: called with the configfs-tsm report folder right after
 * the provider made it, so a stand-in folder can be filled the way the
 * kernel fills a real one (inblob, outblob, auxblob, generation). NULL
 * removes the hook. */
void coffer_attest_test_tsm_hook(void (*hook)(const char *report_dir, void *arg), void *arg);
#endif

/* ------------------------------------------------------------------- time */

/* "YYYY-MM-DDThh:mm:ssZ" (or "+00:00" for Z, or a bare date YYYY-MM-DD)
 * to seconds since the epoch, UTC. */
COFFER_NODISCARD enum coffer_err coffer_attest_time_parse(const char *s, time_t *out);

#endif /* COFFER_ATTEST_H */
