/*
 * writer.c — creating protected files, streaming, of any size.
 *
 * Design: plaintext is appended. The first 3072 bytes go to the metadata
 * node's inline area; after that every full 4096 bytes become a data node,
 * encrypted under a fresh random key; the 96 data nodes of one MHT group
 * are contiguous on storage and are written with one write, their keys drawn
 * with one call to the random generator. Each node's (key, MAC)
 * record goes into the 96-record block of the MHT node being filled. When a
 * block is complete it is sealed with an ephemeral AES-GCM key that lives
 * only in this process (IV = the MHT index) and parked in the MHT node's own
 * slot on disk, so memory does not grow with the file. finish() then builds
 * the MHT nodes from the highest index down (children before parents; only
 * one 32-byte record per MHT node is kept in memory), and writes the
 * metadata node last, truncates to the exact size and syncs.
 *
 * Invariants:
 *  I1 no node key is ever used twice, and no record is written to storage
 *     unsealed.
 *  I2 the file is valid only after finish() succeeded; on any failure the
 *     handle is poisoned and callers remove the file (the CLI writes to a
 *     temporary file and renames it only on success).
 *  I3 plaintext and keys live only in secret memory and are wiped as soon as
 *     their node is written.
 */
#include <string.h>

#include "pf_int.h"

enum coffer_err pf__handle_new(const struct coffer_io *io, bool writer, size_t extra, struct coffer_pf **out);

#define SPILL_SIZE (PF_MHT_CHILD_OFF + 16) /* 96 records + tag */
#define GROUP_SIZE ((size_t)PF_DATA_PER_MHT * PF_NODE)
#define KEYPOOL_SIZE (PF_DATA_PER_MHT * 16)

static enum coffer_err wpoison(struct coffer_pf *pf, enum coffer_err r)
{
    if (pf->poisoned == COFFER_OK)
        pf->poisoned = r;
    return r;
}

static enum coffer_err check_writable(const struct coffer_pf *pf)
{
    if (!pf->writer)
        return COFFER_FAIL(COFFER_E_STATE, "write to a protected file opened for reading");
    if (pf->poisoned != COFFER_OK)
        return COFFER_FAIL(COFFER_E_CORRUPTED, "the handle is unusable after an earlier %s",
                           coffer_err_name(pf->poisoned));
    if (pf->finished)
        return COFFER_FAIL(COFFER_E_STATE, "the protected file is already finished");
    return COFFER_OK;
}

/* see coffer/pf.h */
enum coffer_err coffer_pf_create(const struct coffer_io *io, const coffer_pf_key key, const char *bound_path,
                                 enum coffer_pf_version version, struct coffer_pf **out)
{
    *out = NULL;
    if (io == NULL || key == NULL || bound_path == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "no storage, key or path");
    if (version != COFFER_PF_V1 && version != COFFER_PF_V2)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "format version %d (coffer writes 1 and 2)", (int)version);
    size_t len = strlen(bound_path);
    if (len > COFFER_PF_PATH_MAX)
        return COFFER_FAIL(COFFER_E_PATH_TOO_LONG, "bound path of %zu bytes (at most %d)", len,
                           COFFER_PF_PATH_MAX);
    struct coffer_pf *pf;
    enum coffer_err r = pf__handle_new(io, true, PF_MHT_CHILD_OFF + 16 + KEYPOOL_SIZE, &pf);
    if (r != COFFER_OK)
        return r;
    pf->cipher = coffer_malloc(GROUP_SIZE + PF_NODE);
    if (pf->cipher == NULL) {
        coffer_pf_close(pf);
        return COFFER_E_NOMEM;
    }
    memcpy(pf->key, key, COFFER_PF_KEY_SIZE);
    pf->version = version;
    pf->recs = pf->node + PF_NODE;
    pf->spill_key = pf->recs + PF_MHT_CHILD_OFF;
    pf->keypool = pf->spill_key + 16;
    memcpy(pf->hdr + PF_HDR_PATH_OFF, bound_path, len);
    if ((r = coffer_random(pf->spill_key, 16)) != COFFER_OK) {
        coffer_pf_close(pf);
        return r;
    }
    *out = pf;
    return COFFER_OK;
}

static void spill_iv(uint64_t l, uint8_t iv[12])
{
    memset(iv, 0, 12);
    coffer_store_u64le(iv, l);
}

/* Seal and park the finished record block of MHT node l. */
static enum coffer_err spill_records(struct coffer_pf *pf, uint64_t l)
{
    uint8_t iv[12];
    uint8_t *scratch = pf->cipher + GROUP_SIZE;
    spill_iv(l, iv);
    enum coffer_err r = pf_gcm_encrypt(&pf->gcm, pf->spill_key, iv, pf->recs, PF_MHT_CHILD_OFF, scratch,
                                       scratch + PF_MHT_CHILD_OFF);
    coffer_memzero(pf->recs, PF_MHT_CHILD_OFF);
    if (r == COFFER_OK)
        r = coffer_io_write(pf->io, pf_phys_mht(l) * PF_NODE, scratch, SPILL_SIZE);
    return r;
}

/* Write the encrypted data nodes of the current group that are not on
 * storage yet (they are contiguous). */
static enum coffer_err write_group(struct coffer_pf *pf)
{
    uint64_t nodes = pf->data_nodes % PF_DATA_PER_MHT;
    if (nodes == 0 && pf->data_nodes > 0)
        nodes = PF_DATA_PER_MHT;
    if (nodes == 0)
        return COFFER_OK;
    uint64_t first = pf->data_nodes - nodes;
    return coffer_io_write(pf->io, pf_phys_data(first) * PF_NODE, pf->cipher, (size_t)nodes * PF_NODE);
}

static enum coffer_err flush_data_node(struct coffer_pf *pf)
{
    uint64_t d = pf->data_nodes;
    size_t slot = (size_t)(d % PF_DATA_PER_MHT);
    enum coffer_err r = COFFER_OK;
    if (slot == 0)
        r = coffer_random(pf->keypool, KEYPOOL_SIZE);
    uint8_t *rec = pf->recs + slot * PF_REC;
    memcpy(rec, pf->keypool + slot * 16, 16);
    coffer_memzero(pf->keypool + slot * 16, 16);
    if (r == COFFER_OK)
        r = pf_gcm_encrypt(&pf->gcm, rec, NULL, pf->node, PF_NODE, pf->cipher + slot * PF_NODE, rec + 16);
    coffer_memzero(pf->node, PF_NODE);
    pf->node_fill = 0;
    if (r != COFFER_OK)
        return r;
    pf->data_nodes++;
    if (slot == PF_DATA_PER_MHT - 1) {
        if ((r = write_group(pf)) != COFFER_OK)
            return r;
        return spill_records(pf, d / PF_DATA_PER_MHT);
    }
    return COFFER_OK;
}

/* see coffer/pf.h */
enum coffer_err coffer_pf_write(struct coffer_pf *pf, const void *buf, size_t size)
{
    enum coffer_err r = check_writable(pf);
    if (r != COFFER_OK)
        return r;
    const uint8_t *in = buf;
    if (pf->plain_size + size < pf->plain_size)
        return wpoison(pf, COFFER_FAIL(COFFER_E_TOO_LARGE, "protected file would exceed 2^64 bytes"));
    while (size > 0) {
        size_t n;
        if (pf->plain_size < PF_INLINE) {
            n = PF_INLINE - (size_t)pf->plain_size;
            n = n < size ? n : size;
            memcpy(pf->hdr + PF_HDR_DATA_OFF + pf->plain_size, in, n);
        } else {
            n = PF_NODE - pf->node_fill;
            n = n < size ? n : size;
            memcpy(pf->node + pf->node_fill, in, n);
            pf->node_fill += n;
            if (pf->node_fill == PF_NODE && (r = flush_data_node(pf)) != COFFER_OK)
                return wpoison(pf, r);
        }
        pf->plain_size += n;
        in += n;
        size -= n;
    }
    return COFFER_OK;
}

/* Build, encrypt and write every MHT node, children before parents. */
static enum coffer_err write_tree(struct coffer_pf *pf)
{
    uint64_t nd = pf->data_nodes;
    uint64_t nm = pf_mht_nodes(nd);
    struct coffer_secret *child = NULL; /* one record per MHT node, filled as nodes are written */
    enum coffer_err r = coffer_secret_new((size_t)nm * PF_REC, &child);
    if (r != COFFER_OK)
        return r;
    uint8_t *mht = pf->root; /* scratch: the plaintext of the node being built */
    uint8_t *scratch = pf->cipher + GROUP_SIZE;
    for (uint64_t l = nm; l-- > 0 && r == COFFER_OK;) {
        memset(mht, 0, PF_NODE);
        bool in_memory = l == nm - 1 && nd % PF_DATA_PER_MHT != 0;
        if (in_memory) {
            memcpy(mht, pf->recs, PF_MHT_CHILD_OFF);
            coffer_memzero(pf->recs, PF_MHT_CHILD_OFF);
        } else {
            uint8_t iv[12];
            spill_iv(l, iv);
            r = coffer_io_read(pf->io, pf_phys_mht(l) * PF_NODE, scratch, SPILL_SIZE);
            if (r == COFFER_OK)
                r = pf_gcm_decrypt(&pf->gcm, pf->spill_key, iv, scratch, PF_MHT_CHILD_OFF, mht,
                                   scratch + PF_MHT_CHILD_OFF);
            if (r == COFFER_E_AUTH)
                r = COFFER_FAIL(COFFER_E_CORRUPTED, "MHT node %llu's records changed on storage while writing",
                                (unsigned long long)l);
            if (r != COFFER_OK)
                break;
        }
        for (uint64_t j = 0; j < PF_CHILD_PER_MHT; j++) {
            uint64_t c = PF_CHILD_PER_MHT * l + 1 + j;
            if (c >= nm)
                break;
            memcpy(mht + PF_MHT_CHILD_OFF + j * PF_REC, child->data + c * PF_REC, PF_REC);
        }
        uint8_t *rec = l == 0 ? pf->hdr + PF_HDR_ROOTKEY_OFF : child->data + l * PF_REC;
        if ((r = coffer_random(rec, 16)) != COFFER_OK)
            break;
        if ((r = pf_gcm_encrypt(&pf->gcm, rec, NULL, mht, PF_NODE, scratch, rec + 16)) != COFFER_OK)
            break;
        r = coffer_io_write(pf->io, pf_phys_mht(l) * PF_NODE, scratch, PF_NODE);
    }
    coffer_memzero(mht, PF_NODE);
    coffer_secret_free(child);
    return r;
}

static enum coffer_err write_meta(struct coffer_pf *pf)
{
    coffer_store_u64le(pf->hdr + PF_HDR_SIZE_OFF, pf->plain_size);
    uint8_t node0[PF_NODE];
    memset(node0, 0, sizeof(node0));
    coffer_store_u64le(node0 + PF_MAGIC_OFF, PF_MAGIC);
    node0[PF_MAJOR_OFF] = (uint8_t)pf->version;
    node0[PF_MINOR_OFF] = 0;
    size_t enc_off = pf->version == COFFER_PF_V1 ? PF_ENC_OFF_V1 : PF_ENC_OFF_V2;
    uint8_t mkey[16];
    enum coffer_err r = coffer_random(node0 + PF_NONCE_OFF, PF_NONCE_SIZE);
    if (r == COFFER_OK)
        r = coffer_pf_kdf(pf->key, node0 + PF_NONCE_OFF, mkey);
    if (r == COFFER_OK)
        r = pf_gcm_encrypt(&pf->gcm, mkey, NULL, pf->hdr, PF_ENC_SIZE, node0 + enc_off, node0 + PF_MAC_OFF);
    coffer_memzero(mkey, sizeof(mkey));
    if (r == COFFER_OK)
        r = coffer_io_write(pf->io, 0, node0, PF_NODE);
    return r;
}

/* see coffer/pf.h */
enum coffer_err coffer_pf_finish(struct coffer_pf *pf)
{
    enum coffer_err r = check_writable(pf);
    if (r != COFFER_OK)
        return r;
    if (pf->node_fill > 0 && (r = flush_data_node(pf)) != COFFER_OK) /* zero-padded last node */
        return wpoison(pf, r);
    if (pf->data_nodes % PF_DATA_PER_MHT != 0 && (r = write_group(pf)) != COFFER_OK) /* a partial last group */
        return wpoison(pf, r);
    if (COFFER_NEVER(pf->data_nodes != pf_data_nodes(pf->plain_size)))
        return wpoison(pf, COFFER_FAIL(COFFER_E_INTERNAL, "data node count does not match the size"));
    uint64_t size;
    if (!coffer_pf_encrypted_size(pf->plain_size, &size))
        return wpoison(pf, COFFER_FAIL(COFFER_E_TOO_LARGE, "protected file too large"));
    if ((pf->data_nodes > 0 && (r = write_tree(pf)) != COFFER_OK) || (r = write_meta(pf)) != COFFER_OK ||
        (r = pf->io->ops->truncate(pf->io->ctx, size)) != COFFER_OK || (r = pf->io->ops->sync(pf->io->ctx)) != COFFER_OK)
        return wpoison(pf, r);
    coffer_memzero(pf->hdr, PF_ENC_SIZE);
    pf->finished = true;
    return COFFER_OK;
}
