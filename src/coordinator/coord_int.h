/*
 * coord_int.h — private to the coordinator module: the coordinator's state
 * and the helpers its files share (coord.c core and activation, update.c
 * manifest updates, recover.c recovery keys). Nothing outside
 * src/coordinator includes this.
 *
 * Locking (two locks, always taken in this order):
 *  - cfg (a writer-preferring rwlock) guards what a manifest defines: the
 *    state code, the manifest, the PKI, the secrets, the root secret, the
 *    pending update and the recovery material. Activations, reads and
 *    quotes hold it shared; every other change holds it exclusively.
 *  - mu guards the activation counters, the nonces and the audit log's
 *    write side (chain head, the buffer of lines not yet written, group
 *    commit).
 *
 * Durability: an activation is durable when its audit line is on disk
 * (the log is the write-ahead log for activations: lines after the sealed
 * state's checkpoint are replayed at start). Lines of concurrent
 * activations are written with one write and one fdatasync (group commit).
 * Every other change appends its line, waits for it, then seals the whole
 * state (a checkpoint), all under the exclusive lock.
 */
#ifndef COFFER_COORD_INT_H
#define COFFER_COORD_INT_H

#include <pthread.h>

#include "coffer/coordinator.h"

#define COORD_NONCE_SLOTS 4096
#define COORD_STATE_MAX (64u << 20)
#define COORD_RECOVERY_SHARES_MAX 64

struct secret_val {
    bool set;
    struct coffer_secret *key; /* symmetric/plain bytes, or PKCS#8 for certificates */
    uint8_t *cert;             /* DER */
    size_t cert_size;
};

struct nonce_slot {
    uint8_t nonce[COFFER_COORD_NONCE_SIZE];
    uint64_t expires_ns;
    bool live;
};

/* A secret's value from before the last root-secret rotation (for
 * .Previous.Secrets templates). */
struct prev_secret {
    char *name;
    int type; /* enum coffer_secret_type */
    struct coffer_secret *key;
    uint8_t *cert;
    size_t cert_size;
};

/* A full manifest update waiting for acknowledgements. */
struct pending_update {
    uint8_t *raw;
    size_t size;
    struct coffer_manifest *manifest; /* parsed, validated */
    bool *acked;                      /* parallel to the current manifest's users */
};

/* One recovery secret uploaded while in recovery mode. */
struct recovery_share {
    struct coffer_secret *secret;
    uint8_t *sig;
    size_t sig_size;
};

struct coffer_coord {
    pthread_rwlock_t cfg;
    pthread_mutex_t mu;
    pthread_cond_t flushed;

    /* configuration (immutable after open) */
    char *seal_dir;
    struct coffer_secret *seal_key;
    char *dns_names;
    bool simulation;
    coffer_coord_verify_fn verify;
    void *verify_arg;
    coffer_coord_evidence_fn evidence;
    void *evidence_arg;
    uint32_t cert_days;
    uint64_t nonce_ttl_ns;

    /* under cfg */
    enum coffer_coord_state state;
    struct coffer_pki *pki;
    struct coffer_secret *dek;
    struct coffer_secret *root_secret;
    uint8_t *manifest_raw;
    size_t manifest_size;
    struct coffer_manifest *manifest;
    struct secret_val *secrets; /* parallel to manifest->secrets */
    uint16_t *svn;              /* parallel to manifest->packages: SecurityVersion after package updates */
    struct pending_update *pending;
    struct recovery_share shares[COORD_RECOVERY_SHARES_MAX]; /* recovery mode */
    size_t shares_count;
    unsigned tls_root_gen; /* bumped when the root certificate changes (recovery) */
    json_t *counters;      /* monotonic counters: {id: value} (services.c), sealed */
    struct coffer_secret *prev_root_secret; /* before the last RotateRootSecret update; NULL: never rotated */
    struct prev_secret *prev;               /* the secrets set at that time */
    size_t prev_count;
    struct evp_pkey_st *recovery_eph; /* recovery mode: the ephemeral RSA key for encrypted secrets */

    /* under mu */
    uint64_t *activations; /* parallel to manifest->marbles */
    struct nonce_slot *nonces;
    size_t nonce_next;
    int audit_fd;
    uint8_t audit_head[32]; /* hash of the newest line appended */
    uint64_t audit_seq;     /* number of lines appended */
    struct coffer_buf wbuf; /* appended lines not yet written */
    uint64_t durable_seq;   /* lines written and synced */
    bool flushing;
    enum coffer_err broken; /* sticky: a write failed; no more changes */
    uint64_t syncs;         /* fdatasync calls of the log (group commit metric) */
    uint64_t sealed_seq;    /* audit_seq of the last checkpoint */
};

/* ---- helpers (coord.c) */
enum coffer_err coord_ossl(const char *what);
char *coord_path(const struct coffer_coord *c, const char *name);
int coord_json_set_b64(json_t *o, const char *key, const uint8_t *data, size_t size);
enum coffer_err coord_json_get_b64(const json_t *o, const char *path, const char *key, uint8_t **data, size_t *size);
/* AES-256-GCM: out = nonce(12) || ciphertext || tag(16). */
enum coffer_err coord_seal(const uint8_t key[32], const char *aad, const uint8_t *in, size_t size, uint8_t **out,
                           size_t *out_size);
enum coffer_err coord_unseal(const uint8_t key[32], const char *aad, const uint8_t *in, size_t size,
                             struct coffer_secret **out);
const char *coord_type_string(enum coffer_secret_type t);
const struct coffer_mf_user *coord_find_user(struct coffer_coord *c, const uint8_t *cert, size_t size);

/* Append an audit line and wait until it is durable (group commit). Takes
 * mu; the caller holds cfg (shared or exclusive). Consumes fields. */
enum coffer_err coord_log(struct coffer_coord *c, const char *event, json_t *fields);
/* Seal the whole state (checkpoint). The caller holds cfg exclusively. */
enum coffer_err coord_commit(struct coffer_coord *c);
/* Parse, validate and install a manifest with fresh (empty) secrets and
 * zero counters; frees the previous one. Caller holds cfg exclusively. */
enum coffer_err coord_setup_manifest(struct coffer_coord *c, const uint8_t *raw, size_t size);
/* Generate every shared, non-user-defined secret not yet set. */
enum coffer_err coord_generate_secrets(struct coffer_coord *c);
void coord_free_secrets(struct coffer_coord *c);
/* Read the sealed state with c->dek, verify the audit log against it,
 * replay the activations after the checkpoint and open the log. */
enum coffer_err coord_load_sealed(struct coffer_coord *c);
/* Write sealed_key: the DEK sealed under this platform's seal key. */
enum coffer_err coord_write_sealed_key(struct coffer_coord *c);

/* Forget the values from before the last rotation. */
void coord_prev_free(struct coffer_coord *c);
/* Keep the current root secret and a copy of every set secret as the
 * values before a rotation (replacing older ones). Caller holds cfg
 * exclusively; nothing changes on failure. */
enum coffer_err coord_prev_snapshot(struct coffer_coord *c);

/* ---- updates (update.c) */
void coord_pending_free(struct pending_update *p);
enum coffer_err coord_pending_to_json(const struct coffer_coord *c, json_t *state);
enum coffer_err coord_pending_from_json(struct coffer_coord *c, const json_t *state);

/* ---- recovery (recover.c) */
/* Make the recovery secrets for the current manifest's RecoveryKeys
 * ({key name: base64 RSA-OAEP ciphertext}) and write the plain recovery
 * metadata file; *out is an empty object when there are no keys. */
enum coffer_err coord_recovery_secrets(struct coffer_coord *c, json_t **out);
void coord_recovery_clear(struct coffer_coord *c);

#endif /* COFFER_COORD_INT_H */
