/*
 * coffer/coordinator.h — the coordinator: MarbleRun's role in the serving
 * flow. This header has the manifest (MarbleRun's schema, parsed and
 * validated) and the template renderer for marble parameters; the PKI,
 * sealed state and APIs build on them.
 *
 * Manifest compatibility with MarbleRun (shared/research/marblerun.md §1a):
 * keys match case-insensitively (as Go's decoder does), unknown keys are
 * ignored, two keys that differ only in case are rejected as duplicates, and
 * every validation error names the JSON path of the offending field
 * ("$.Marbles.server.Package: no package \"x\"").
 */
#ifndef COFFER_COORDINATOR_H
#define COFFER_COORDINATOR_H

#include "coffer/attest.h"
#include "coffer/base.h"

/* ------------------------------------------------------------- manifest */

enum coffer_tee {
    COFFER_TEE_SGX = 0,
    COFFER_TEE_TDX,
    COFFER_TEE_SNP,
    COFFER_TEE_SIMULATION, /* coffer's software evidence: no hardware protection */
};

enum coffer_secret_type {
    COFFER_SECRET_SYMMETRIC = 0, /* "symmetric-key" */
    COFFER_SECRET_CERT_RSA,      /* "cert-rsa" */
    COFFER_SECRET_CERT_ECDSA,    /* "cert-ecdsa" */
    COFFER_SECRET_CERT_ED25519,  /* "cert-ed25519" */
    COFFER_SECRET_PLAIN,         /* "plain" (user-defined only) */
};

enum coffer_role_resource {
    COFFER_ROLE_PACKAGES = 0,
    COFFER_ROLE_SECRETS,
    COFFER_ROLE_MANIFEST,
};

enum coffer_role_action {
    COFFER_ACTION_READ_SECRET = 1 << 0,
    COFFER_ACTION_WRITE_SECRET = 1 << 1,
    COFFER_ACTION_UPDATE_SECURITY_VERSION = 1 << 2,
    COFFER_ACTION_UPDATE_MANIFEST = 1 << 3,
};

enum coffer_seal_mode {
    COFFER_SEAL_PRODUCT_KEY = 0,
    COFFER_SEAL_UNIQUE_KEY,
    COFFER_SEAL_DISABLED,
};

/* A package: what evidence a marble must present. Byte fields are set when
 * their has_ flag is. */
struct coffer_mf_package {
    const char *name;
    enum coffer_tee tee;
    bool has_unique_id, has_signer_id, has_product_id, has_svn;
    uint8_t unique_id[32];   /* SGX MRENCLAVE, or the simulation executable hash */
    uint8_t signer_id[32];   /* SGX MRSIGNER */
    uint16_t product_id;     /* SGX ISVPRODID */
    uint16_t security_version; /* minimum SGX ISVSVN */
    bool debug;              /* compared for equality, as MarbleRun does */
    const char **accepted_tcb_statuses;
    size_t accepted_tcb_statuses_count;
    const char **accepted_advisories;
    size_t accepted_advisories_count;
    /* TDX */
    bool has_mrtd;
    uint8_t mrtd[48];
    bool has_rtmr[4];
    uint8_t rtmr[4][48];
    /* SNP */
    bool has_measurement;
    uint8_t measurement[48];
    bool has_vmpl;
    uint32_t max_vmpl;
};

/* A file or environment value of a marble's parameters. */
struct coffer_mf_value {
    const char *name;
    const uint8_t *data; /* decoded per its Encoding; may hold NUL bytes (files) */
    size_t size;
    bool no_templates;
};

struct coffer_mf_marble {
    const char *name;
    const char *package;
    uint64_t max_activations; /* 0 = unlimited */
    struct coffer_mf_value *files;
    size_t files_count;
    struct coffer_mf_value *env;
    size_t env_count;
    const char **argv;
    size_t argv_count;
    bool disable_secret_binding;
};

struct coffer_mf_secret {
    const char *name;
    enum coffer_secret_type type;
    uint32_t size_bits;
    bool shared;
    bool user_defined;
    uint32_t valid_for_days; /* certificates; 0 means the default (365) */
    const char *common_name; /* Cert.Subject.CommonName, or NULL */
    const char **dns_names;  /* Cert.DNSNames */
    size_t dns_names_count;
};

struct coffer_mf_role {
    const char *name;
    enum coffer_role_resource resource;
    const char **resource_names;
    size_t resource_names_count;
    unsigned actions; /* enum coffer_role_action bits */
};

struct coffer_mf_user {
    const char *name;
    const uint8_t *cert_der; /* the user's certificate, DER */
    size_t cert_der_size;
    const char **roles;
    size_t roles_count;
};

struct coffer_mf_recovery_key {
    const char *name;
    const char *public_key_pem; /* RSA public key */
};

struct coffer_manifest {
    struct coffer_mf_package *packages;
    size_t packages_count;
    struct coffer_mf_marble *marbles;
    size_t marbles_count;
    struct coffer_mf_secret *secrets;
    size_t secrets_count;
    struct coffer_mf_user *users;
    size_t users_count;
    struct coffer_mf_role *roles;
    size_t roles_count;
    struct coffer_mf_recovery_key *recovery_keys;
    size_t recovery_keys_count;
    enum coffer_seal_mode seal_mode;
    uint32_t update_threshold;
    uint32_t recovery_threshold;
    bool rotate_root_secret;
    bool gate_sign_quote, gate_monotonic_counter;
    /* private */
    struct coffer_arena *arena;
};

/* Largest manifest accepted (bytes). */
#define COFFER_MANIFEST_MAX_SIZE (4u << 20)

/*
 * Parse and validate a manifest (the raw uploaded bytes). Everything the
 * manifest says is checked here, except that templates name existing
 * secrets (coffer_mf_check_templates). Errors are COFFER_E_JSON with the
 * JSON path in the detail. Free with coffer_manifest_free.
 */
COFFER_NODISCARD enum coffer_err coffer_manifest_parse(const void *json, size_t size, struct coffer_manifest **out);
void coffer_manifest_free(struct coffer_manifest *m);

const struct coffer_mf_package *coffer_manifest_package(const struct coffer_manifest *m, const char *name);
const struct coffer_mf_marble *coffer_manifest_marble(const struct coffer_manifest *m, const char *name);
const struct coffer_mf_secret *coffer_manifest_secret(const struct coffer_manifest *m, const char *name);
const struct coffer_mf_role *coffer_manifest_role(const struct coffer_manifest *m, const char *name);
/* The user whose certificate is exactly cert_der, or NULL. */
const struct coffer_mf_user *coffer_manifest_user_by_cert(const struct coffer_manifest *m, const uint8_t *cert_der,
                                                          size_t cert_der_size);
/* Whether user may do action on the named resource (roles are additive). */
bool coffer_manifest_user_may(const struct coffer_manifest *m, const struct coffer_mf_user *user,
                              enum coffer_role_resource resource, const char *name, unsigned action);

/* ------------------------------------------------------------ templates */

/*
 * Marble parameter templates, in the subset of Go text/template syntax that
 * MarbleRun manifests use: text with actions `{{ FUNC PATH }}`, where FUNC
 * is raw, hex, base64, pem or string, and PATH is .Secrets.NAME[.Cert|
 * .Public|.Private], .MarbleRun.MarbleCert.{Cert,Public} (not .Private: a
 * coffer marble's key never leaves it),
 * .MarbleRun.RootCA.Cert, .MarbleRun.CoordinatorRoot.Cert or
 * .MarbleRun.CoordinatorIntermediate.Cert; `{{-` and `-}}` trim the white
 * space beside them. `raw` is for files only, `string` for plain secrets.
 */
enum coffer_tmpl_kind { COFFER_TMPL_FILE, COFFER_TMPL_ENV };

enum coffer_tmpl_form { COFFER_TMPL_BYTES, COFFER_TMPL_CERT, COFFER_TMPL_PUBLIC_KEY, COFFER_TMPL_PRIVATE_KEY };

/* Resolves a PATH to bytes (DER for certificates and keys). Returns
 * COFFER_E_NOT_FOUND for names that do not exist. *secret_type is set for
 * .Secrets values (else -1), so `string` can be limited to plain secrets. */
typedef enum coffer_err (*coffer_tmpl_lookup_fn)(void *arg, const char *path, const uint8_t **data, size_t *size,
                                                 enum coffer_tmpl_form *form, int *secret_type);

/* Render one template into out (a secret buffer is advised: the output
 * holds keys). Errors name the action and its offset. */
COFFER_NODISCARD enum coffer_err coffer_tmpl_render(const uint8_t *tmpl, size_t size, enum coffer_tmpl_kind kind,
                                                    coffer_tmpl_lookup_fn lookup, void *arg, struct coffer_buf *out);

/* Dry-run every template of every marble against the manifest's secrets
 * (MarbleRun renders with dummy values at upload), so that a manifest
 * naming a missing secret or using an illegal encoding is refused. */
COFFER_NODISCARD enum coffer_err coffer_manifest_check_templates(const struct coffer_manifest *m);

/* ------------------------------------------------------------------ PKI */

/*
 * The coordinator's certificate authority (marblerun.md §1c, with P-256
 * keys): a long-lived self-signed root, an intermediate CA signed by the
 * root, and the "marble root": the intermediate's key and name, self-signed,
 * which marbles see as their terminating root. Marble certificates and
 * certificate secrets are signed by the intermediate key. Keys are kept in
 * PKCS#8 DER inside secret memory when serialised.
 */
struct coffer_pki;

/* A fresh root and intermediate. dns_names: comma-separated SANs for the
 * root certificate (the client API's identity), e.g. "localhost,coord.svc".
 * 127.0.0.1 and ::1 are always added. */
COFFER_NODISCARD enum coffer_err coffer_pki_new(const char *dns_names, struct coffer_pki **out);
/* A new intermediate and marble root (on updates), keeping the root. */
COFFER_NODISCARD enum coffer_err coffer_pki_rotate_intermediate(struct coffer_pki *pki);
void coffer_pki_free(struct coffer_pki *pki);

enum coffer_pki_cert { COFFER_PKI_ROOT, COFFER_PKI_INTERMEDIATE, COFFER_PKI_MARBLE_ROOT };
/* PEM of one of the CA certificates into out (appended). */
COFFER_NODISCARD enum coffer_err coffer_pki_cert_pem(const struct coffer_pki *pki, enum coffer_pki_cert which,
                                                     struct coffer_buf *out);
/* DER of one of the CA certificates (borrowed, valid while pki lives). */
const uint8_t *coffer_pki_cert_der(const struct coffer_pki *pki, enum coffer_pki_cert which, size_t *size);

/* A TLS server context presenting the root certificate and key (the
 * identity the quote binds), TLS 1.2+, requesting a client certificate but
 * not requiring one: users are recognised by the exact certificate the
 * handlers compare, so any certificate the client proves it holds is let
 * through TLS. Free with SSL_CTX_free. */
struct ssl_ctx_st;
COFFER_NODISCARD enum coffer_err coffer_pki_tls_server_ctx(const struct coffer_pki *pki, struct ssl_ctx_st **out);
/* Present the root certificate and key on one connection (from a
 * certificate callback, when the root may have changed). */
struct ssl_st;
COFFER_NODISCARD enum coffer_err coffer_pki_tls_use(const struct coffer_pki *pki, struct ssl_st *ssl);

/* Sign bytes with the root key (ECDSA P-256, SHA-256, DER signature):
 * the manifest signature. *sig from coffer_malloc. */
COFFER_NODISCARD enum coffer_err coffer_pki_sign_root(const struct coffer_pki *pki, const void *data, size_t size,
                                                      uint8_t **sig, size_t *sig_size);

/* A marble's TLS client certificate (DER): it must chain to the current
 * marble root (so an intermediate rotated by an update invalidates it) and
 * be valid now; *marble_type (extension 1.3.9903.2.1) and *uuid (CN) from
 * coffer_malloc. COFFER_E_CERT when it is not a marble certificate of this
 * coordinator. */
COFFER_NODISCARD enum coffer_err coffer_pki_verify_marble(const struct coffer_pki *pki, const uint8_t *der, size_t size,
                                                          char **marble_type, char **uuid);

/* A CSR alone, as coffer_pki_certify_csr reads it: signature verified, the
 * SANs it would certify ("DNS:localhost,IP:127.0.0.1,IP:::1" then the CSR's
 * DNS names and IP addresses) and the SubjectPublicKeyInfo DER of the key.
 * openssl_only skips the fast DER path for the common EC CSR and uses
 * OpenSSL's parser (tests and fuzz/csr_fuzz.c compare the two). */
COFFER_NODISCARD enum coffer_err coffer_pki_csr_check(const uint8_t *csr_der, size_t csr_size, bool openssl_only,
                                                      char **sans, uint8_t **spki_der, size_t *spki_size);

/*
 * Certify a marble: csr_der is its PKCS#10 request (signature checked);
 * the certificate carries the CSR's own public key, so the coordinator
 * never holds a marble's private key. CN = uuid; SANs = the CSR's DNS names
 * and IP addresses plus localhost and loopback; server and client usage;
 * the marble type in extension 1.3.9903.2.1 as MarbleRun does. The CSR's
 * SubjectPublicKeyInfo DER is returned too (the caller checks it against
 * the evidence's report data). valid_days 0 means 365.
 */
COFFER_NODISCARD enum coffer_err coffer_pki_certify_csr(const struct coffer_pki *pki, const uint8_t *csr_der,
                                                        size_t csr_size, const char *uuid, const char *marble_type,
                                                        uint32_t valid_days, uint8_t **cert_der, size_t *cert_size,
                                                        uint8_t **spki_der, size_t *spki_size);

/* A certificate secret: a fresh key of the secret's type and size and a
 * certificate for it signed by the intermediate. Outputs: certificate DER
 * (coffer_malloc) and the private key as PKCS#8 DER (secret memory). */
COFFER_NODISCARD enum coffer_err coffer_pki_issue_secret(const struct coffer_pki *pki,
                                                         const struct coffer_mf_secret *spec, uint8_t **cert_der,
                                                         size_t *cert_size, struct coffer_secret **key_pkcs8);

/* Serialise (root key, intermediate key, the three certificates) for the
 * sealed state, and load it back. */
COFFER_NODISCARD enum coffer_err coffer_pki_save(const struct coffer_pki *pki, json_t **out);
COFFER_NODISCARD enum coffer_err coffer_pki_load(const json_t *in, struct coffer_pki **out);

/* ----------------------------------------------------------- coordinator */

/* MarbleRun's state codes (marblerun.md §1b). */
enum coffer_coord_state {
    COFFER_COORD_UNINITIALIZED = 0,
    COFFER_COORD_RECOVERY = 1,
    COFFER_COORD_ACCEPTING_MANIFEST = 2,
    COFFER_COORD_ACCEPTING_MARBLES = 3,
};

#define COFFER_COORD_SEAL_KEY_SIZE 32
#define COFFER_COORD_NONCE_SIZE 32

/*
 * Checks a marble's evidence against its package. report_data is what the
 * evidence must carry: SHA-256 of the marble's public key (SubjectPublicKey
 * Info DER, from its CSR) followed by the coordinator-issued nonce.
 * Returns COFFER_OK, or the error naming the failed check; may fill
 * claims_json (a short JSON object of the verified claims, for the audit
 * log; at most claims_size bytes, NUL-terminated).
 * package NULL (sign-quote): any SGX quote that verifies, whatever its
 * identity, debug flag and TCB status, without a report data binding;
 * claims_json must then carry "tcb_status".
 */
typedef enum coffer_err (*coffer_coord_verify_fn)(void *arg, const uint8_t *evidence, size_t evidence_size,
                                                  const struct coffer_mf_package *package,
                                                  const uint8_t report_data[64], char *claims_json,
                                                  size_t claims_size);

/* Produces evidence for this process with the given report data (the
 * attestation provider); *evidence from coffer_malloc. */
typedef enum coffer_err (*coffer_coord_evidence_fn)(void *arg, const uint8_t report_data[64], uint8_t **evidence,
                                                    size_t *evidence_size);

/*
 * The production verifier: attest/ checks the evidence, then the package's
 * rules as MarbleRun applies them (UniqueID, or SignerID + ProductID +
 * minimum SecurityVersion; Debug compared for equality; accepted TCB
 * statuses, default UpToDate and SWHardeningNeeded; accepted advisories,
 * empty = any). Simulation evidence is accepted only by a simulation
 * coordinator, only for Simulation packages, and only when signed by the
 * platform key it trusts. Pass &verifier as verify_arg with
 * coffer_coord_verify_attest as verify.
 */
struct coffer_coord_verifier {
    bool simulation;
    bool has_sim_key;
    uint8_t sim_key[64];
    struct coffer_attest_collateral **collateral;
    size_t collateral_count;
    bool allow_missing_pck_crl;
};

/* collateral_dir: NULL, or a folder of collateral sets (each a folder in
 * the layout of shared/vectors/attest/collateral/<set>/, or the folder
 * itself being one set). sim_key_path: the simulation platform key whose
 * public half is trusted (simulation only). */
COFFER_NODISCARD enum coffer_err coffer_coord_verifier_init(struct coffer_coord_verifier *v, bool simulation,
                                                            const char *sim_key_path, const char *collateral_dir);
void coffer_coord_verifier_free(struct coffer_coord_verifier *v);
enum coffer_err coffer_coord_verify_attest(void *arg, const uint8_t *evidence, size_t evidence_size,
                                           const struct coffer_mf_package *package, const uint8_t report_data[64],
                                           char *claims_json, size_t claims_size);

struct coffer_coord_config {
    const char *seal_dir;  /* NULL: state in memory only */
    /* The sealing key from the attestation provider (SGX sealing key via
     * Gramine, or the simulation platform's); copied. */
    const uint8_t *seal_key;
    const char *dns_names; /* SANs of the root certificate */
    bool simulation;       /* said in status and in every audit entry */
    coffer_coord_verify_fn verify;
    void *verify_arg;
    coffer_coord_evidence_fn evidence; /* for the quote endpoint; may be NULL */
    void *evidence_arg;
    uint32_t marble_cert_days; /* 0: 365 */
    uint32_t nonce_ttl_s;      /* 0: 300 */
};

struct coffer_coord;

/* Open the coordinator: load the sealed state from seal_dir, or start fresh
 * (new CA, accepting a manifest) when there is none. A state that does not
 * unseal with the given key puts the coordinator in RECOVERY. */
COFFER_NODISCARD enum coffer_err coffer_coord_open(const struct coffer_coord_config *cfg, struct coffer_coord **out);
void coffer_coord_close(struct coffer_coord *c);

enum coffer_coord_state coffer_coord_get_state(struct coffer_coord *c);
/* "status message" for GET /status, e.g. "Coordinator is ready to accept a manifest." */
const char *coffer_coord_state_message(enum coffer_coord_state s);
bool coffer_coord_is_simulation(const struct coffer_coord *c);

/* The root, intermediate and marble-root certificates (PEM, appended). */
COFFER_NODISCARD enum coffer_err coffer_coord_cert_pem(struct coffer_coord *c, enum coffer_pki_cert which,
                                                       struct coffer_buf *out);
/* The TLS server context of the client and marble APIs (see
 * coffer_pki_tls_server_ctx). */
COFFER_NODISCARD enum coffer_err coffer_coord_tls_ctx(struct coffer_coord *c, struct ssl_ctx_st **out);

/* DER of the root certificate (for the quote's report data), copied. */
COFFER_NODISCARD enum coffer_err coffer_coord_root_der(struct coffer_coord *c, uint8_t **der, size_t *size);

/* Set the manifest: while accepting one, or in recovery mode (which starts
 * over: the old state is kept aside, unused). Durable before it returns.
 * recovery_secrets (may be NULL): {key name: base64 of the recovery secret
 * encrypted with RSA-OAEP-SHA256 to that RecoveryKey}, empty without
 * RecoveryKeys; returned once, never stored in the clear. */
COFFER_NODISCARD enum coffer_err coffer_coord_set_manifest(struct coffer_coord *c, const void *raw, size_t size,
                                                           json_t **recovery_secrets);
/* The manifest as uploaded, its SHA-256 and the root's signature over it
 * (all from coffer_malloc). COFFER_E_STATE when none is set. */
COFFER_NODISCARD enum coffer_err coffer_coord_get_manifest(struct coffer_coord *c, uint8_t **raw, size_t *size,
                                                           uint8_t fingerprint[32], uint8_t **sig, size_t *sig_size);

/* Write user-defined secrets. user_cert: the client certificate DER of the
 * connection. request: the "secrets" object {name: {Key | Cert, Private}}.
 * All-or-nothing; E_DENIED for an unknown user or a missing WriteSecret. */
COFFER_NODISCARD enum coffer_err coffer_coord_set_secrets(struct coffer_coord *c, const uint8_t *user_cert,
                                                          size_t user_cert_size, const json_t *request);
/* Read secrets: {name: {Type, Size, Shared, UserDefined, Cert, Private,
 * Public, ...}} as MarbleRun shapes them. */
COFFER_NODISCARD enum coffer_err coffer_coord_get_secrets(struct coffer_coord *c, const uint8_t *user_cert,
                                                          size_t user_cert_size, const char *const *names,
                                                          size_t count, json_t **out);

/* A fresh single-use activation nonce, valid for nonce_ttl_s. */
COFFER_NODISCARD enum coffer_err coffer_coord_nonce(struct coffer_coord *c, uint8_t nonce[COFFER_COORD_NONCE_SIZE]);

struct coffer_coord_activation {
    const char *marble_type;
    const char *uuid;
    const uint8_t *csr_der;
    size_t csr_size;
    const uint8_t *evidence;
    size_t evidence_size;
    const uint8_t *nonce; /* COFFER_COORD_NONCE_SIZE bytes */
};

/*
 * Activate a marble: the nonce must be one this coordinator issued, unused
 * and fresh; the evidence must verify against the marble's package with
 * report data SHA-256(CSR key) || nonce; MaxActivations is enforced. On
 * success *out is {"Certificate": PEM chain (marble, intermediate),
 * "RootCA": marble root PEM, "Parameters": {"Files": {path: b64},
 * "Env": {name: b64}, "Argv": [..]}}; the activation is durable and in the
 * audit log before this returns.
 */
COFFER_NODISCARD enum coffer_err coffer_coord_activate(struct coffer_coord *c,
                                                       const struct coffer_coord_activation *req, json_t **out);

/* Whether cert_der is the certificate of a user of the current manifest. */
bool coffer_coord_is_user(struct coffer_coord *c, const uint8_t *cert_der, size_t size);

/* Evidence over the root certificate: report data = SHA-256(root DER ||
 * nonce) followed by 32 zero bytes. *evidence from coffer_malloc. */
COFFER_NODISCARD enum coffer_err coffer_coord_quote(struct coffer_coord *c, const uint8_t *nonce, size_t nonce_size,
                                                    uint8_t **evidence, size_t *evidence_size);

/* Successful activations of a marble type so far (0 for unknown types). */
uint64_t coffer_coord_activations(struct coffer_coord *c, const char *marble_type);

/* fdatasync calls of the audit log so far (group commit: concurrent
 * activations share one). */
uint64_t coffer_coord_log_syncs(struct coffer_coord *c);

/*
 * Manifest updates (marblerun.md §1b "Update semantics"). user_cert: the
 * client certificate DER of the connection.
 *
 * coffer_coord_update: raw is either a package update ({"Packages": {name:
 * {"SecurityVersion": n}}} and nothing else; needs UpdateSecurityVersion on
 * every package named; no downgrade; applied at once: new intermediate CA,
 * shared certificate secrets reissued), or a full manifest (needs
 * UpdateManifest; becomes the pending update, acknowledged by the updater).
 * A full update is applied when UpdateThreshold users of the current
 * manifest holding UpdateManifest (0: all of them) have acknowledged it:
 * secrets of the same name and kind are kept (generated ones regenerated
 * under RotateRootSecret), counters of marbles of the same name are kept,
 * the intermediate CA is renewed and, with RecoveryKeys, new recovery
 * secrets are returned. *out: {"message", "missingUsers": [...],
 * "missingAcknowledgments": n[, "recoverySecrets": {...}]}.
 */
COFFER_NODISCARD enum coffer_err coffer_coord_update(struct coffer_coord *c, const uint8_t *user_cert,
                                                     size_t user_cert_size, const void *raw, size_t size,
                                                     json_t **out);
/* Acknowledge the pending update: raw must be byte-identical to it. */
COFFER_NODISCARD enum coffer_err coffer_coord_update_ack(struct coffer_coord *c, const uint8_t *user_cert,
                                                         size_t user_cert_size, const void *raw, size_t size,
                                                         json_t **out);
/* Cancel the pending update (a user holding UpdateManifest). */
COFFER_NODISCARD enum coffer_err coffer_coord_update_cancel(struct coffer_coord *c, const uint8_t *user_cert,
                                                            size_t user_cert_size);
/* The pending update: {"manifest": base64, "message", "missingUsers",
 * "missingAcknowledgments"}; COFFER_E_NOT_FOUND when none. */
COFFER_NODISCARD enum coffer_err coffer_coord_update_pending(struct coffer_coord *c, json_t **out);

/*
 * Recovery (recovery mode only): one decrypted recovery secret and its
 * signature (RSA PKCS#1 v1.5, SHA-256 over the secret) by the private half
 * of a RecoveryKey. When enough secrets are in (one key: 1; several: all,
 * or RecoveryThreshold of them) the sealed state is opened with the data
 * key they make, every signature is checked against a distinct
 * RecoveryKey of the recovered manifest, the data key is sealed to this
 * platform, and the coordinator runs with the recovered state.
 * *out: {"remaining": n, "message"}.
 */
COFFER_NODISCARD enum coffer_err coffer_coord_recover(struct coffer_coord *c, const uint8_t *secret,
                                                      size_t secret_size, const uint8_t *sig, size_t sig_size,
                                                      json_t **out);

/* Recovery mode: the DER SubjectPublicKeyInfo of an ephemeral RSA-4096 key
 * (made on the first call of a recovery session, in memory only).
 * coffer_coord_recover takes a secret RSA-OAEP-SHA256-encrypted to it, as
 * MarbleRun's does: a secret that is not 16, 32 or 33 bytes long is
 * decrypted with it first (the signature stays over the plain secret). */
COFFER_NODISCARD enum coffer_err coffer_coord_recovery_public_key(struct coffer_coord *c, uint8_t **der, size_t *size);

/* POST /api/v2/monotonic-counter (Config.FeatureGates MonotonicCounter,
 * else COFFER_E_DENIED): marble_cert is the TLS client certificate of a
 * marble this coordinator certified (COFFER_E_CERT otherwise). The counter
 * named name of that marble (type, UUID) is raised to value when value is
 * larger, never lowered; *previous is its value before (0 for a new one).
 * A raise is audited and sealed before this returns. name: 1 to 256 bytes. */
COFFER_NODISCARD enum coffer_err coffer_coord_monotonic_counter(struct coffer_coord *c, const uint8_t *marble_cert,
                                                                size_t marble_cert_size, const char *name,
                                                                uint64_t value, uint64_t *previous);

/* POST /api/v2/sign-quote (Config.FeatureGates SignQuoteEndpoint, else
 * COFFER_E_DENIED): verify an SGX quote (raw, or behind OpenEnclave's
 * 16-byte header) with the verifier (package NULL), then sign
 * SHA-256(base64(quote) || tcb_status) with the root key (ECDSA, DER).
 * COFFER_E_POLICY with the reason when the quote does not verify. */
COFFER_NODISCARD enum coffer_err coffer_coord_sign_quote(struct coffer_coord *c, const uint8_t *quote, size_t size,
                                                         uint8_t **sig, size_t *sig_size, char tcb_status[48]);

/* The audit log's entries, oldest first, as JSON objects. */
COFFER_NODISCARD enum coffer_err coffer_coord_audit(struct coffer_coord *c, json_t **out);

/* ------------------------------------------------------------------ API */

/*
 * The HTTP APIs, independent of the transport: the server adapts each
 * request to this and sends the response back. Client API (MarbleRun's
 * /api/v2 paths and JSend envelope) and marble API (/api/v2/marble/nonce,
 * /api/v2/marble/activate) share one dispatch table that states, per
 * endpoint, the method, the path, the coordinator states it is allowed in,
 * and whether a user certificate is needed.
 */
struct coffer_coord_request {
    const char *method;
    const char *path;  /* without the query */
    const char *query; /* after '?', or NULL */
    const uint8_t *body;
    size_t body_size;
    const uint8_t *client_cert; /* DER of the verified client certificate, or NULL */
    size_t client_cert_size;
};

struct coffer_coord_response {
    int status;                /* HTTP status */
    const char *content_type;  /* static string */
    struct coffer_buf body;    /* caller frees with coffer_buf_free */
};

#define COFFER_COORD_BODY_MAX (8u << 20)

enum coffer_coord_api { COFFER_COORD_API_CLIENT = 1, COFFER_COORD_API_MARBLE = 2 };

/* Handle one request for the given API. Always fills resp (an error is a
 * 4xx/5xx response, never a crash); returns COFFER_E_NOMEM only when not
 * even the error response could be built. */
COFFER_NODISCARD enum coffer_err coffer_coord_handle(struct coffer_coord *c, enum coffer_coord_api api,
                                                     const struct coffer_coord_request *req,
                                                     struct coffer_coord_response *resp);

#endif /* COFFER_COORDINATOR_H */
