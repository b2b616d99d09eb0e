/*
 * coffer/pf.h — Gramine-compatible protected files.
 *
 * A protected file (PF) is the encrypted, integrity-protected file format of
 * Gramine's encrypted mounts and of gramine-sgx-pf-crypt. coffer reads both
 * format versions (v1: Gramine 1.0–1.8, v2: 1.9+) and writes either (v2 by
 * default). The layout is in shared/research/pf-format.md; docs/pf.md says
 * what coffer decides where Gramine is lax.
 *
 * Keys: the 16-byte wrap key (Gramine's KDK) never encrypts data itself; it
 * derives the metadata key. Plaintext read through this API lands only in
 * the caller's buffers or in coffer_secret memory.
 *
 * Handles: a reader or a writer, never both. A handle that hits an
 * integrity or I/O failure is poisoned: every later call but close fails
 * with COFFER_E_CORRUPTED. Handles are not thread-safe; decrypt_all uses
 * threads internally.
 */
#ifndef COFFER_PF_H
#define COFFER_PF_H

#include "coffer/base.h"

#define COFFER_PF_KEY_SIZE 16
#define COFFER_PF_NODE_SIZE 4096
/* Longest bound path in bytes (772-byte field, NUL-terminated). */
#define COFFER_PF_PATH_MAX 771

typedef uint8_t coffer_pf_key[COFFER_PF_KEY_SIZE];

enum coffer_pf_version {
    COFFER_PF_V1 = 1, /* Gramine 1.0 to 1.8 */
    COFFER_PF_V2 = 2, /* Gramine 1.9 and later */
};

struct coffer_pf;

/* What the plaintext header and the authenticated metadata say. */
struct coffer_pf_info {
    enum coffer_pf_version version;
    uint64_t plain_size;
    uint8_t feature_flags;  /* v2 only; not authenticated by the format */
    bool padding_nonzero;   /* header padding not zero; not authenticated */
    char bound_path[COFFER_PF_PATH_MAX + 1];
};

/* ---- reading */

/*
 * Open a PF for reading over io (borrowed; must outlive the handle).
 * check_path: when not NULL, the path the file must be bound to, compared
 * byte for byte (callers normalise first, as Gramine does); NULL skips the
 * check, like pf-crypt without -V. Verifies, in order: size a multiple of
 * 4096, magic, version, the metadata MAC, the bound path, that the file
 * holds every node its size needs, and the root MHT node's MAC.
 * Errors: E_BAD_HEADER, E_BAD_VERSION, E_AUTH, E_BAD_PATH, E_CORRUPTED
 * (truncated), E_IO, E_NOMEM. The key is copied into secret memory.
 */
COFFER_NODISCARD enum coffer_err coffer_pf_open(const struct coffer_io *io, const coffer_pf_key key,
                                                const char *check_path, struct coffer_pf **out);

/* Header facts of an open reader. */
void coffer_pf_get_info(const struct coffer_pf *pf, struct coffer_pf_info *info);
uint64_t coffer_pf_size(const struct coffer_pf *pf);

/*
 * Read up to size bytes of plaintext at offset off. *got is less than size
 * only at the end of the file. Touches only the nodes that hold the range
 * and their MHT ancestors; decrypted nodes stay in a bounded cache. On
 * failure nothing of the range is left in buf (it is wiped) and the handle
 * is poisoned. Errors: E_AUTH (names the node), E_CORRUPTED, E_IO.
 */
COFFER_NODISCARD enum coffer_err coffer_pf_read(struct coffer_pf *pf, uint64_t off, void *buf, size_t size,
                                                size_t *got);

/* Number of nodes read from storage so far (for tests and diagnostics). */
uint64_t coffer_pf_nodes_read(const struct coffer_pf *pf);

/*
 * Decrypt a whole PF into secret memory: what the model server uses.
 * threads: 0 means one per available CPU. On any failure *out stays NULL
 * and no plaintext survives. Caller frees with coffer_secret_free.
 */
COFFER_NODISCARD enum coffer_err coffer_pf_decrypt_all(const struct coffer_io *io, const coffer_pf_key key,
                                                       const char *check_path, int threads,
                                                       struct coffer_secret **out);

/* ---- writing */

/*
 * Create a PF over io (borrowed), bound to bound_path (stored as given;
 * callers normalise first). Data is appended with coffer_pf_write, in any
 * chunk sizes, streaming: memory use does not grow with the file beyond
 * 32 bytes per 384 KiB. Nothing is valid until coffer_pf_finish returns.
 * Errors: E_PATH_TOO_LONG, E_INVALID_ARG, E_NOMEM.
 */
COFFER_NODISCARD enum coffer_err coffer_pf_create(const struct coffer_io *io, const coffer_pf_key key,
                                                  const char *bound_path, enum coffer_pf_version version,
                                                  struct coffer_pf **out);
COFFER_NODISCARD enum coffer_err coffer_pf_write(struct coffer_pf *pf, const void *buf, size_t size);
/* Write the MHT nodes and the metadata node, truncate to the exact size,
 * and sync. After it, only close is allowed. */
COFFER_NODISCARD enum coffer_err coffer_pf_finish(struct coffer_pf *pf);

/* Close a reader or writer; wipes every key and plaintext it holds. A writer
 * closed before finish leaves an invalid file behind (callers remove it). */
void coffer_pf_close(struct coffer_pf *pf);

/* ---- helpers */

/* Encrypted size of a PF holding plain_size bytes; false on overflow. */
bool coffer_pf_encrypted_size(uint64_t plain_size, uint64_t *out);

/*
 * Normalise a path the way Gramine does before binding or checking it:
 * keep a leading '/', drop empty and '.' parts, let "x/.." remove x, keep
 * leading ".." of relative paths, "/.." is "/", no trailing slash, and "."
 * becomes "". out must hold strlen(in)+1 bytes.
 */
COFFER_NODISCARD enum coffer_err coffer_pf_normalize_path(const char *in, char *out, size_t out_size);

/* Derive the metadata-node key (exposed for known-answer tests). */
COFFER_NODISCARD enum coffer_err coffer_pf_kdf(const coffer_pf_key kdk, const uint8_t nonce[32], coffer_pf_key out);

#endif /* COFFER_PF_H */
