/*
 * attest_int.h — private to src/attest: the parsed forms of Intel quotes,
 * PCK extensions and collateral, the DER walker, and the OpenSSL helpers
 * the verifiers share. Names follow coffer_attest__name (cross-file, not API).
 */
#ifndef COFFER_ATTEST_INT_H
#define COFFER_ATTEST_INT_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "coffer/attest.h"

/* ------------------------------------------------------------- constants */

#define INTEL_QUOTE_HEADER_SIZE 48
#define SGX_REPORT_SIZE 384
#define TD_REPORT10_SIZE 584
#define TD_REPORT15_SIZE 648
#define INTEL_QUOTE_MAX_SIZE (64u * 1024u)
#define INTEL_TEE_SGX 0x00000000u
#define INTEL_TEE_TDX 0x00000081u

/* Offsets inside an SGX report body (attestation.md §1.2), pinned by
 * _Static_assert in quote.c against the reader order. */
#define SGX_REPORT_OFF_ATTRIBUTES 48
#define SGX_REPORT_OFF_MRENCLAVE 64
#define SGX_REPORT_OFF_MRSIGNER 128
#define SGX_REPORT_OFF_ISVPRODID 256
#define SGX_REPORT_OFF_REPORTDATA 320

/* ----------------------------------------------------------------- roots */

extern const uint8_t coffer_attest__root_intel_sgx_root_ca[];
extern const size_t coffer_attest__root_intel_sgx_root_ca_size;
extern const uint8_t coffer_attest__root_amd_milan_ask_ark[];
extern const size_t coffer_attest__root_amd_milan_ask_ark_size;
extern const uint8_t coffer_attest__root_amd_milan_asvk_ark[];
extern const size_t coffer_attest__root_amd_milan_asvk_ark_size;
extern const uint8_t coffer_attest__root_amd_genoa_ask_ark[];
extern const size_t coffer_attest__root_amd_genoa_ask_ark_size;
extern const uint8_t coffer_attest__root_amd_turin_ask_ark[];
extern const size_t coffer_attest__root_amd_turin_ask_ark_size;

/* The pinned Intel SGX Root CA, parsed once (process lifetime, shared,
 * never freed by callers). NULL only if the embedded DER fails to parse. */
X509 *coffer_attest__intel_root(void);

/* ------------------------------------------------------------------- DER */

/* Read one DER TLV: single-byte tag (no high-tag form), definite length in
 * minimal form up to 4 length bytes; *body covers the value. */
COFFER_NODISCARD enum coffer_err coffer_attest__der_next(struct coffer_rd *rd, uint8_t *tag, struct coffer_rd *body);
/* A DER INTEGER body as a small non-negative value (<= max). */
COFFER_NODISCARD enum coffer_err coffer_attest__der_uint(const struct coffer_rd *body, uint64_t max, uint64_t *out);

/* ------------------------------------------------------- Intel structures */

/* The fields of an SGX report body (also the QE report). */
struct sgx_report {
    uint8_t cpusvn[16];
    uint32_t miscselect;
    uint8_t isvextprodid[16];
    uint8_t attributes[16];
    uint64_t flags;
    uint8_t mrenclave[32];
    uint8_t mrsigner[32];
    uint8_t configid[64];
    uint16_t isvprodid;
    uint16_t isvsvn;
    uint16_t configsvn;
    uint8_t isvfamilyid[16];
    uint8_t report_data[64];
};

struct td_report {
    uint8_t tee_tcb_svn[16];
    uint8_t mrseam[48];
    uint8_t mrsignerseam[48];
    uint8_t seam_attributes[8];
    uint64_t td_attributes;
    uint64_t xfam;
    uint8_t mrtd[48];
    uint8_t mrconfigid[48];
    uint8_t mrowner[48];
    uint8_t mrownerconfig[48];
    uint8_t rtmr[4][48];
    uint8_t report_data[64];
    bool v15;
    uint8_t tee_tcb_svn2[16];
    uint8_t mrservicetd[48];
};

/* An Intel quote, framed: pointers borrow the input buffer. */
struct intel_quote {
    uint16_t version;
    uint16_t key_type;
    uint32_t tee_type;
    uint16_t qe_svn;
    uint16_t pce_svn;
    uint16_t body_type; /* 1 SGX, 2 TD 1.0, 3 TD 1.5 */
    const uint8_t *signed_region;
    size_t signed_size;
    struct sgx_report sgx; /* when tee_type == SGX */
    struct td_report td;   /* when tee_type == TDX */
    const uint8_t *sig;     /* 64: r || s big-endian */
    const uint8_t *att_key; /* 64: x || y big-endian */
    const uint8_t *qe_report_raw; /* 384 */
    struct sgx_report qe_report;
    const uint8_t *qe_report_sig; /* 64 */
    const uint8_t *qe_auth;
    size_t qe_auth_size;
    const uint8_t *pck_pem; /* certification data type 5, trailing NUL stripped */
    size_t pck_pem_size;
    size_t trailing_size; /* bytes after the signature data (all zero) */
};

/* Parse and frame an Intel quote (v3 SGX, v4/v5 SGX or TDX). */
COFFER_NODISCARD enum coffer_err coffer_attest__intel_quote_parse(const uint8_t *q, size_t size, struct intel_quote *out);

/* The SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1). */
struct pck_ext {
    uint8_t ppid[16];
    uint8_t comp[16];
    uint16_t pcesvn;
    uint8_t cpusvn[16];
    uint8_t pceid[2];
    uint8_t fmspc[6];
    int sgx_type;
};

/* Parse the extension's value (the DER SEQUENCE). */
COFFER_NODISCARD enum coffer_err coffer_attest__pck_ext_parse(const uint8_t *der, size_t size, struct pck_ext *out);
/* Find the one SGX extension in cert and parse it. */
COFFER_NODISCARD enum coffer_err coffer_attest__pck_ext_from_cert(X509 *cert, struct pck_ext *out);

/* ------------------------------------------------------------ collateral */

struct tcb_level {
    uint8_t sgx[16];
    uint16_t pcesvn;
    uint8_t tdx[16];
    bool has_tdx;
    enum coffer_attest_tcb status;
    size_t advisory_count;
    char advisories[COFFER_ATTEST_MAX_ADVISORIES][COFFER_ATTEST_ADVISORY_SIZE];
};

struct qe_level {
    uint16_t isvsvn;
    enum coffer_attest_tcb status;
    size_t advisory_count;
    char advisories[COFFER_ATTEST_MAX_ADVISORIES][COFFER_ATTEST_ADVISORY_SIZE];
};

#define TDX_MODULE_MAX 8

struct tdx_module_identity {
    char id[16]; /* "TDX_01" */
    uint8_t mrsigner[48];
    uint8_t attributes[8];
    uint8_t attributes_mask[8];
    struct qe_level *levels; /* sorted by isvsvn, descending */
    size_t level_count;
};

struct coffer_attest_collateral {
    bool has_tcb_info;
    char tcb_id[8]; /* "SGX" / "TDX" ("SGX" for v2) */
    int tcb_version;
    time_t tcb_issue, tcb_next;
    uint8_t fmspc[6];
    uint8_t pceid[2];
    int64_t tcb_eval_number;
    struct tcb_level *levels; /* sorted, newest first */
    size_t level_count;
    bool has_tdx_module;
    uint8_t tdx_mrsigner[48];
    uint8_t tdx_attributes[8];
    uint8_t tdx_attributes_mask[8];
    struct tdx_module_identity modules[TDX_MODULE_MAX];
    size_t module_count;

    bool has_qe_identity;
    char qe_id[8]; /* "QE" / "TD_QE" */
    time_t qe_issue, qe_next;
    uint32_t qe_miscselect, qe_miscselect_mask;
    uint8_t qe_attributes[16], qe_attributes_mask[16];
    uint8_t qe_mrsigner[32];
    uint16_t qe_isvprodid;
    struct qe_level *qe_levels; /* sorted by isvsvn, descending */
    size_t qe_level_count;

    X509 *tcb_signer; /* owned; signature by the pinned root already checked */
    X509_CRL *root_crl; /* owned; signature by the pinned root already checked */
    X509_CRL *pck_crl;  /* owned; checked against the quote's intermediate at verify */
    X509 *pck_crl_issuer; /* owned; from pck_crl_chain.pem, signed by the pinned root,
                             and the PCK CRL's signature by it already checked */
};

/* Parse one JSON body {"<key>":{...},"signature":"hex"}: find the exact
 * value span, verify the signature over it with signer, parse it. Exposed
 * for the fuzz targets (signer NULL: skip the signature check). */
COFFER_NODISCARD enum coffer_err coffer_attest__tcb_info_parse(const uint8_t *body, size_t size, EVP_PKEY *signer,
                                                               struct coffer_attest_collateral *c);
COFFER_NODISCARD enum coffer_err coffer_attest__qe_identity_parse(const uint8_t *body, size_t size, EVP_PKEY *signer,
                                                                  struct coffer_attest_collateral *c);
/* The byte span of the value of `key` in body {"key":VALUE,"signature":"HEX"}
 * and the signature. */
COFFER_NODISCARD enum coffer_err coffer_attest__signed_span(const uint8_t *body, size_t size, const char *key,
                                                            size_t *span_off, size_t *span_size, uint8_t sig[64]);
/* Release what c owns (not c itself). */
void coffer_attest__collateral_clear(struct coffer_attest_collateral *c);

/* ------------------------------------------------------------- verifiers */

COFFER_NODISCARD enum coffer_err coffer_attest__intel_verify(const uint8_t *ev, size_t size,
                                                             const struct coffer_attest_verify_opts *opts,
                                                             struct coffer_attest_claims *out);
COFFER_NODISCARD enum coffer_err coffer_attest__intel_decode(const uint8_t *ev, size_t size,
                                                             struct coffer_attest_claims *out);
COFFER_NODISCARD enum coffer_err coffer_attest__snp_verify(const uint8_t *ev, size_t size,
                                                           const struct coffer_attest_verify_opts *opts,
                                                           struct coffer_attest_claims *out);
COFFER_NODISCARD enum coffer_err coffer_attest__snp_decode(const uint8_t *ev, size_t size,
                                                           struct coffer_attest_claims *out);
COFFER_NODISCARD enum coffer_err coffer_attest__sim_verify(const uint8_t *ev, size_t size,
                                                           const struct coffer_attest_verify_opts *opts,
                                                           struct coffer_attest_claims *out);
COFFER_NODISCARD enum coffer_err coffer_attest__sim_decode(const uint8_t *ev, size_t size,
                                                           struct coffer_attest_claims *out);

/* --------------------------------------------------------------- OpenSSL */

/* A P-256 public key from raw x || y (big-endian, 64 bytes); checks the
 * point is on the curve. */
COFFER_NODISCARD enum coffer_err coffer_attest__p256_key(const uint8_t xy[64], EVP_PKEY **out);
/* Verify an ECDSA signature given as raw r || s (each half bytes, big-endian
 * unless le) over msg with digest md ("SHA256", "SHA384"). COFFER_OK,
 * COFFER_E_SIGNATURE (does not verify), or COFFER_E_CRYPTO. Records no
 * failure detail: the caller names the step. */
enum coffer_err coffer_attest__ecdsa_verify(EVP_PKEY *key, const char *md, const uint8_t *rs, size_t half, bool le,
                                            const uint8_t *msg, size_t msg_size);
/* ECDSA P-256 / SHA-256 with a raw key x || y and raw r || s (big-endian),
 * the fast path (p256.c). COFFER_OK, COFFER_E_SIGNATURE, COFFER_E_MALFORMED
 * (not a point on the curve) or COFFER_E_CRYPTO; records no detail. */
enum coffer_err coffer_attest__p256_verify(const uint8_t xy[64], const uint8_t rs[64], const uint8_t *msg, size_t n);
/* The raw x || y of an EC P-256 public key. */
COFFER_NODISCARD enum coffer_err coffer_attest__p256_xy(EVP_PKEY *pk, uint8_t xy[64]);

/* A verified PCK chain from a quote (pck_cache.c): the leaf and intermediate
 * (references held; release with coffer_attest__pck_chain_release), the
 * leaf's SGX extension and raw key. */
struct pck_chain {
    uint8_t key[32]; /* memo key: SHA-256 of the PEM text */
    X509 *leaf;
    X509 *ca;
    struct pck_ext pck;
    uint8_t leaf_xy[64];
};
/* Verify the PEM chain of a quote at now: exactly [leaf, PCK CA, pinned
 * root], canonical PEM, CNs, signatures, X509 strict checks, validity of all
 * three at now. The time-independent part is memoised per PEM text. On
 * failure *step says where (PCK_CHAIN) and the detail why. */
COFFER_NODISCARD enum coffer_err coffer_attest__pck_chain_verify(const uint8_t *pem, size_t size, time_t now,
                                                                 struct pck_chain *out);
void coffer_attest__pck_chain_release(struct pck_chain *c);
/* Forget every memoised chain. */
void coffer_attest__pck_cache_clear(void);
/* Whether h = SHA-256(QE report || signature) already verified under c's key. */
bool coffer_attest__pck_qe_seen(const struct pck_chain *c, const uint8_t h[32]);
void coffer_attest__pck_qe_remember(const struct pck_chain *c, const uint8_t h[32]);

/* Certificates from concatenated PEM (at most 8); exactly `want` unless 0.
 * With canonical, the text must be exactly their canonical PEM encoding
 * (plus trailing whitespace). */
COFFER_NODISCARD enum coffer_err coffer_attest__pem_certs(const uint8_t *pem, size_t size, size_t want,
                                                          bool canonical, STACK_OF(X509) **out);
/* The subject CN of cert into buf ("" if none). */
void coffer_attest__cert_cn(X509 *cert, char *buf, size_t size);
/* A CRL from DER or PEM. */
COFFER_NODISCARD enum coffer_err coffer_attest__crl_parse(const uint8_t *data, size_t size, X509_CRL **out);
void coffer_attest__sha256(const void *data, size_t size, uint8_t out[32]);
/* Fill in claims' verdict-independent failure: zero *out, set the step. */
enum coffer_err coffer_attest__fail(struct coffer_attest_claims *out, enum coffer_attest_step step, enum coffer_err err);

#endif
