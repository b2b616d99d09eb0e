/*
 * pf_int.h — private to pf/: the on-disk layout (pinned by static
 * assertions), the handle, and the crypto helpers.
 *
 * Layout (shared/research/pf-format.md): node 0 is the metadata node; for
 * plaintext over 3072 bytes, node 1 is the root MHT node, then 96 data nodes
 * per MHT node, each MHT node in front of its data nodes. Every node is
 * AES-128-GCM with a fresh random key, zero IV, no AAD.
 */
#ifndef COFFER_PF_INT_H
#define COFFER_PF_INT_H

#include <openssl/evp.h>

#include "coffer/pf.h"

#define PF_NODE 4096u
#define PF_MAGIC_OFF 0
#define PF_MAGIC 0x46505F5346415247ull /* "GRAFS_PF" little-endian */
#define PF_MAJOR_OFF 8
#define PF_MINOR_OFF 9
#define PF_NONCE_OFF 10
#define PF_NONCE_SIZE 32
#define PF_MAC_OFF 42
#define PF_MAC_SIZE 16
#define PF_FLAGS_OFF_V2 58
#define PF_ENC_OFF_V1 58
#define PF_ENC_OFF_V2 59
#define PF_ENC_SIZE 3884u

/* The encrypted header, once decrypted. */
#define PF_HDR_PATH_OFF 0
#define PF_HDR_PATH_SIZE 772
#define PF_HDR_SIZE_OFF 772
#define PF_HDR_ROOTKEY_OFF 780
#define PF_HDR_ROOTMAC_OFF 796
#define PF_HDR_DATA_OFF 812
#define PF_INLINE 3072u

#define PF_DATA_PER_MHT 96u
#define PF_CHILD_PER_MHT 32u
#define PF_REC 32u /* { key[16], mac[16] } */
#define PF_MHT_CHILD_OFF (PF_DATA_PER_MHT * PF_REC)

_Static_assert(PF_HDR_DATA_OFF + PF_INLINE == PF_ENC_SIZE, "encrypted header is 3884 bytes");
_Static_assert(PF_HDR_ROOTMAC_OFF + 16 == PF_HDR_DATA_OFF, "root MAC precedes the inline data");
_Static_assert(PF_ENC_OFF_V2 + PF_ENC_SIZE + 153 == PF_NODE, "v2 metadata node is one node");
_Static_assert(PF_ENC_OFF_V1 + PF_ENC_SIZE + 154 == PF_NODE, "v1 metadata node is one node");
_Static_assert((PF_DATA_PER_MHT + PF_CHILD_PER_MHT) * PF_REC == PF_NODE, "an MHT node is 128 records");
_Static_assert(PF_HDR_PATH_SIZE == COFFER_PF_PATH_MAX + 1, "path field holds the longest path and a NUL");

/* Physical node numbers (pf-format.md §3.1). */
static inline uint64_t pf_phys_data(uint64_t d) { return d + 2 + d / PF_DATA_PER_MHT; }
static inline uint64_t pf_phys_mht(uint64_t l) { return 1 + 97 * l; }

/* Data nodes and MHT nodes for a plaintext size. */
static inline uint64_t pf_data_nodes(uint64_t size)
{
    return size <= PF_INLINE ? 0 : (size - PF_INLINE + PF_NODE - 1) / PF_NODE;
}
static inline uint64_t pf_mht_nodes(uint64_t nd) { return (nd + PF_DATA_PER_MHT - 1) / PF_DATA_PER_MHT; }

/* ---- crypto.c */

/* One GCM context per handle or thread. */
struct pf_gcm {
    EVP_CIPHER_CTX *ctx;
};
enum coffer_err pf_gcm_init(struct pf_gcm *g);
void pf_gcm_free(struct pf_gcm *g);
/* AES-128-GCM with a zero IV (or iv when not NULL), no AAD. */
enum coffer_err pf_gcm_encrypt(struct pf_gcm *g, const uint8_t key[16], const uint8_t *iv, const void *in,
                               size_t size, void *out, uint8_t tag[16]);
/* Returns COFFER_E_AUTH without detail on a tag mismatch (callers name the
 * node) and wipes out. */
enum coffer_err pf_gcm_decrypt(struct pf_gcm *g, const uint8_t key[16], const uint8_t *iv, const void *in,
                               size_t size, void *out, const uint8_t tag[16]);

/* ---- the handle */

#define PF_CACHE_SLOTS 32 /* decrypted nodes kept per reader (128 KiB) */

enum pf_node_kind { PF_SLOT_FREE = 0, PF_SLOT_MHT, PF_SLOT_DATA };

struct pf_slot {
    enum pf_node_kind kind;
    uint64_t index;
    uint64_t last_use;
};

struct coffer_pf {
    const struct coffer_io *io;
    bool writer;
    enum coffer_err poisoned; /* COFFER_OK until an integrity or I/O failure */
    enum coffer_pf_version version;
    struct pf_gcm gcm;
    /* secret: wrap key (16), decrypted header (PF_ENC_SIZE), root MHT node
     * (PF_NODE), node buffer (PF_NODE), then the cache or writer state. */
    struct coffer_secret *sec;
    uint8_t *key;
    uint8_t *hdr;
    uint8_t *root;
    uint8_t *node;
    uint64_t plain_size;
    uint64_t nodes_read;
    uint8_t flags;
    bool padding_nonzero;
    /* reader: the node cache */
    struct pf_slot slots[PF_CACHE_SLOTS];
    uint8_t *slot_data; /* PF_CACHE_SLOTS * PF_NODE, inside sec */
    uint64_t use_clock;
    /* writer */
    uint8_t *recs;       /* the 96 data-node records of the MHT node being filled */
    uint8_t *spill_key;  /* ephemeral key sealing finished MHT data records on disk */
    uint8_t *cipher;     /* ciphertext of the data-node group being filled (96 nodes),
                            then one node of scratch (not secret) */
    uint8_t *keypool;    /* fresh random keys for the group's 96 data nodes */
    size_t node_fill;    /* plaintext bytes in `node` waiting for a full node */
    uint64_t data_nodes; /* data nodes written */
    bool finished;
};

/* ---- reader.c: helpers decrypt_all shares */

/* Check the metadata node's plaintext header; on success say where the
 * encrypted header starts and the version. */
enum coffer_err pf__check_plain_header(const uint8_t node0[PF_NODE], enum coffer_pf_version *version,
                                       size_t *enc_off, uint8_t *flags, bool *padding_nonzero);

/* Open, check and decrypt the metadata node into pf (reader or a
 * decrypt_all pass). */
enum coffer_err pf__open_meta(struct coffer_pf *pf, const char *check_path, uint64_t *file_size);

#endif
