/*
 * reader.c — opening and reading protected files, with random access.
 *
 * Design: open checks, in this order, what can be checked without the key
 * (size a multiple of a node, magic, version), then the metadata MAC, the
 * bound path, that the file holds every node its size needs, and the root
 * MHT node. A read of a range loads only the data nodes of the range and
 * their MHT ancestors, each verified against its parent's record, and keeps
 * decrypted nodes in a small LRU cache in secret memory. Whole aligned
 * nodes are decrypted straight into the caller's buffer.
 *
 * Invariants:
 *  I1 no plaintext byte reaches the caller unless its node's tag verified
 *     under a key that chains up to the metadata MAC.
 *  I2 after any integrity or I/O failure the handle is poisoned: every
 *     later call but close fails with COFFER_E_CORRUPTED.
 *  I3 a failed read leaves nothing of the requested range in the caller's
 *     buffer.
 * Trusts: nothing in the file before its MAC verified; the plaintext header
 * fields that the format leaves unauthenticated (flags, padding) only for
 * reporting.
 */
#include <string.h>

#include "pf_int.h"

enum coffer_err pf__check_plain_header(const uint8_t node0[PF_NODE], enum coffer_pf_version *version,
                                       size_t *enc_off, uint8_t *flags, bool *padding_nonzero)
{
    struct coffer_rd rd;
    uint64_t magic;
    uint8_t major, minor;
    coffer_rd_init(&rd, node0, PF_NODE);
    enum coffer_err r;
    if ((r = coffer_rd_u64le(&rd, &magic)) != COFFER_OK || (r = coffer_rd_u8(&rd, &major)) != COFFER_OK ||
        (r = coffer_rd_u8(&rd, &minor)) != COFFER_OK)
        return r;
    if (magic != PF_MAGIC)
        return COFFER_FAIL(COFFER_E_BAD_HEADER, "not a protected file: the magic is not GRAFS_PF");
    *flags = 0;
    if (major == 1) {
        *version = COFFER_PF_V1;
        *enc_off = PF_ENC_OFF_V1;
    } else if (major == 2) {
        *version = COFFER_PF_V2;
        *enc_off = PF_ENC_OFF_V2;
        *flags = node0[PF_FLAGS_OFF_V2];
    } else {
        return COFFER_FAIL(COFFER_E_BAD_VERSION, "format major version %u (coffer reads 1 and 2)", major);
    }
    /* minor version: 0 in every release, never checked by Gramine */
    *padding_nonzero = false;
    for (size_t i = *enc_off + PF_ENC_SIZE; i < PF_NODE; i++)
        if (node0[i] != 0)
            *padding_nonzero = true;
    return COFFER_OK;
}

static enum coffer_err poison(struct coffer_pf *pf, enum coffer_err r)
{
    if (pf->poisoned == COFFER_OK)
        pf->poisoned = r;
    return r;
}

static enum coffer_err refuse(const struct coffer_pf *pf)
{
    return COFFER_FAIL(COFFER_E_CORRUPTED, "the handle is unusable after an earlier %s",
                       coffer_err_name(pf->poisoned));
}

static enum coffer_err handle_new(const struct coffer_io *io, bool writer, size_t extra, struct coffer_pf **out)
{
    *out = NULL;
    struct coffer_pf *pf = coffer_calloc(1, sizeof(*pf));
    if (pf == NULL)
        return COFFER_E_NOMEM;
    pf->io = io;
    pf->writer = writer;
    size_t size = 16 + PF_ENC_SIZE + 4 + PF_NODE + PF_NODE + extra;
    enum coffer_err r = coffer_secret_new(size, &pf->sec);
    if (r == COFFER_OK)
        r = pf_gcm_init(&pf->gcm);
    if (r != COFFER_OK) {
        coffer_secret_free(pf->sec);
        coffer_free(pf);
        return r;
    }
    pf->key = pf->sec->data;
    pf->hdr = pf->key + 16;
    pf->root = pf->hdr + PF_ENC_SIZE + 4;
    pf->node = pf->root + PF_NODE;
    *out = pf;
    return COFFER_OK;
}

enum coffer_err pf__open_meta(struct coffer_pf *pf, const char *check_path, uint64_t *file_size)
{
    uint64_t size;
    enum coffer_err r = pf->io->ops->get_size(pf->io->ctx, &size);
    if (r != COFFER_OK)
        return r;
    if (size == 0)
        return COFFER_FAIL(COFFER_E_BAD_HEADER, "the file is empty (a protected file has at least one node)");
    if (size % PF_NODE != 0)
        return COFFER_FAIL(COFFER_E_BAD_HEADER, "file size %llu is not a multiple of %u bytes",
                           (unsigned long long)size, PF_NODE);
    uint8_t node0[PF_NODE];
    if ((r = coffer_io_read(pf->io, 0, node0, PF_NODE)) != COFFER_OK)
        return r;
    pf->nodes_read++;
    size_t enc_off;
    if ((r = pf__check_plain_header(node0, &pf->version, &enc_off, &pf->flags, &pf->padding_nonzero)) != COFFER_OK)
        return r;
    if (pf->flags & 1)
        coffer_warn("protected file has the 'pending write' flag set (an interrupted Gramine write); "
                    "reading it anyway, every node is still verified");
    if (pf->flags & ~1u)
        coffer_warn("protected file has unknown feature flags 0x%02x (not authenticated; ignored)", pf->flags);
    uint8_t mkey[16];
    if ((r = coffer_pf_kdf(pf->key, node0 + PF_NONCE_OFF, mkey)) != COFFER_OK)
        return r;
    r = pf_gcm_decrypt(&pf->gcm, mkey, NULL, node0 + enc_off, PF_ENC_SIZE, pf->hdr, node0 + PF_MAC_OFF);
    coffer_memzero(mkey, sizeof(mkey));
    if (r == COFFER_E_AUTH)
        return COFFER_FAIL(COFFER_E_AUTH, "metadata node: MAC mismatch (wrong key, or the header, nonce or MAC "
                                          "was modified)");
    if (r != COFFER_OK)
        return r;

    /* Authenticated; still parsed through the reader (STYLE §3.9). */
    struct coffer_rd rd;
    const uint8_t *path;
    coffer_rd_init(&rd, pf->hdr, PF_ENC_SIZE);
    if ((r = coffer_rd_bytes(&rd, PF_HDR_PATH_SIZE, &path)) != COFFER_OK ||
        (r = coffer_rd_u64le(&rd, &pf->plain_size)) != COFFER_OK)
        return r;
    if (memchr(path, 0, PF_HDR_PATH_SIZE) == NULL)
        return COFFER_FAIL(COFFER_E_MALFORMED, "metadata node: the bound path is not NUL-terminated");
    if (check_path != NULL && strcmp((const char *)path, check_path) != 0)
        return COFFER_FAIL(COFFER_E_BAD_PATH, "the file is bound to \"%s\", not to \"%s\"", (const char *)path,
                           check_path);
    uint64_t need;
    if (!coffer_pf_encrypted_size(pf->plain_size, &need))
        return COFFER_FAIL(COFFER_E_MALFORMED, "metadata node: plaintext size %llu is impossible",
                           (unsigned long long)pf->plain_size);
    if (size < need)
        return COFFER_FAIL(COFFER_E_CORRUPTED, "file is truncated: %llu bytes of plaintext need %llu bytes, the "
                           "file has %llu", (unsigned long long)pf->plain_size, (unsigned long long)need,
                           (unsigned long long)size);
    *file_size = size;
    return COFFER_OK;
}

/* Read and decrypt one node at physical number phys with record rec into out. */
static enum coffer_err load_node(struct coffer_pf *pf, uint64_t phys, const uint8_t rec[PF_REC], uint8_t *out,
                                 const char *what, uint64_t index)
{
    uint8_t ct[PF_NODE];
    enum coffer_err r = coffer_io_read(pf->io, phys * PF_NODE, ct, PF_NODE);
    if (r != COFFER_OK) {
        coffer_err_context("%s %llu (node %llu)", what, (unsigned long long)index, (unsigned long long)phys);
        return r;
    }
    pf->nodes_read++;
    r = pf_gcm_decrypt(&pf->gcm, rec, NULL, ct, PF_NODE, out, rec + 16);
    if (r == COFFER_E_AUTH)
        return COFFER_FAIL(COFFER_E_AUTH, "%s %llu (node %llu at byte %llu): MAC mismatch", what,
                           (unsigned long long)index, (unsigned long long)phys,
                           (unsigned long long)(phys * PF_NODE));
    return r;
}

/* see coffer/pf.h */
enum coffer_err coffer_pf_open(const struct coffer_io *io, const coffer_pf_key key, const char *check_path,
                               struct coffer_pf **out)
{
    *out = NULL;
    if (io == NULL || key == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "no storage or no key");
    struct coffer_pf *pf;
    enum coffer_err r = handle_new(io, false, (size_t)PF_CACHE_SLOTS * PF_NODE, &pf);
    if (r != COFFER_OK)
        return r;
    memcpy(pf->key, key, COFFER_PF_KEY_SIZE);
    pf->slot_data = pf->node + PF_NODE;
    uint64_t file_size;
    r = pf__open_meta(pf, check_path, &file_size);
    if (r == COFFER_OK && pf->plain_size > PF_INLINE)
        r = load_node(pf, 1, pf->hdr + PF_HDR_ROOTKEY_OFF, pf->root, "root MHT node", 0);
    if (r != COFFER_OK) {
        coffer_pf_close(pf);
        return r;
    }
    *out = pf;
    return COFFER_OK;
}

void coffer_pf_get_info(const struct coffer_pf *pf, struct coffer_pf_info *info)
{
    memset(info, 0, sizeof(*info));
    info->version = pf->version;
    info->plain_size = pf->plain_size;
    info->feature_flags = pf->flags;
    info->padding_nonzero = pf->padding_nonzero;
    if (!pf->writer)
        memcpy(info->bound_path, pf->hdr + PF_HDR_PATH_OFF, COFFER_PF_PATH_MAX);
}

uint64_t coffer_pf_size(const struct coffer_pf *pf) { return pf->plain_size; }
uint64_t coffer_pf_nodes_read(const struct coffer_pf *pf) { return pf->nodes_read; }

/* The cache slot holding (kind, index), or NULL. */
static uint8_t *cache_find(struct coffer_pf *pf, enum pf_node_kind kind, uint64_t index)
{
    for (int i = 0; i < PF_CACHE_SLOTS; i++)
        if (pf->slots[i].kind == kind && pf->slots[i].index == index) {
            pf->slots[i].last_use = ++pf->use_clock;
            return pf->slot_data + (size_t)i * PF_NODE;
        }
    return NULL;
}

/* A slot to fill for (kind, index): a free one or the least recently used. */
static uint8_t *cache_claim(struct coffer_pf *pf, enum pf_node_kind kind, uint64_t index)
{
    int victim = 0;
    for (int i = 0; i < PF_CACHE_SLOTS; i++) {
        if (pf->slots[i].kind == PF_SLOT_FREE) {
            victim = i;
            break;
        }
        if (pf->slots[i].last_use < pf->slots[victim].last_use)
            victim = i;
    }
    uint8_t *p = pf->slot_data + (size_t)victim * PF_NODE;
    coffer_memzero(p, PF_NODE);
    pf->slots[victim].kind = PF_SLOT_FREE;
    pf->slots[victim].index = index;
    pf->slots[victim].last_use = ++pf->use_clock;
    (void)kind;
    return p;
}

static void cache_commit(struct coffer_pf *pf, const uint8_t *p, enum pf_node_kind kind)
{
    size_t i = (size_t)(p - pf->slot_data) / PF_NODE;
    pf->slots[i].kind = kind;
}

/* The decrypted MHT node l (root or cached or loaded through its parents). */
static enum coffer_err get_mht(struct coffer_pf *pf, uint64_t l, const uint8_t **out)
{
    if (l == 0) {
        *out = pf->root;
        return COFFER_OK;
    }
    uint8_t *p = cache_find(pf, PF_SLOT_MHT, l);
    if (p != NULL) {
        *out = p;
        return COFFER_OK;
    }
    const uint8_t *parent;
    enum coffer_err r = get_mht(pf, (l - 1) / PF_CHILD_PER_MHT, &parent);
    if (r != COFFER_OK)
        return r;
    uint8_t rec[PF_REC];
    memcpy(rec, parent + PF_MHT_CHILD_OFF + ((l - 1) % PF_CHILD_PER_MHT) * PF_REC, PF_REC);
    p = cache_claim(pf, PF_SLOT_MHT, l);
    r = load_node(pf, pf_phys_mht(l), rec, p, "MHT node", l);
    coffer_memzero(rec, sizeof(rec));
    if (r != COFFER_OK)
        return r;
    cache_commit(pf, p, PF_SLOT_MHT);
    *out = p;
    return COFFER_OK;
}

/* Decrypt data node d into dst (a cache slot or the caller's buffer). The
 * record is fetched first, so loading MHT nodes cannot evict dst. */
static enum coffer_err data_record(struct coffer_pf *pf, uint64_t d, uint8_t rec[PF_REC])
{
    const uint8_t *mht;
    enum coffer_err r = get_mht(pf, d / PF_DATA_PER_MHT, &mht);
    if (r == COFFER_OK)
        memcpy(rec, mht + (d % PF_DATA_PER_MHT) * PF_REC, PF_REC);
    return r;
}

/* see coffer/pf.h */
enum coffer_err coffer_pf_read(struct coffer_pf *pf, uint64_t off, void *buf, size_t size, size_t *got)
{
    *got = 0;
    if (pf->writer)
        return COFFER_FAIL(COFFER_E_STATE, "read from a protected file opened for writing");
    if (pf->poisoned != COFFER_OK)
        return refuse(pf);
    if (off >= pf->plain_size || size == 0)
        return COFFER_OK;
    if (size > pf->plain_size - off)
        size = (size_t)(pf->plain_size - off);
    uint8_t *o = buf;
    size_t done = 0;
    enum coffer_err r = COFFER_OK;
    while (done < size) {
        uint64_t pos = off + done;
        size_t want = size - done;
        if (pos < PF_INLINE) {
            size_t n = PF_INLINE - (size_t)pos < want ? PF_INLINE - (size_t)pos : want;
            memcpy(o + done, pf->hdr + PF_HDR_DATA_OFF + pos, n);
            done += n;
            continue;
        }
        uint64_t d = (pos - PF_INLINE) / PF_NODE;
        size_t in_node = (size_t)((pos - PF_INLINE) % PF_NODE);
        size_t n = PF_NODE - in_node < want ? PF_NODE - in_node : want;
        uint8_t *p = NULL;
        if (!(in_node == 0 && n == PF_NODE))
            p = cache_find(pf, PF_SLOT_DATA, d);
        if (p == NULL) {
            uint8_t rec[PF_REC];
            if ((r = data_record(pf, d, rec)) != COFFER_OK)
                break;
            bool whole = in_node == 0 && n == PF_NODE; /* straight into the caller's buffer */
            uint8_t *dst = whole ? o + done : cache_claim(pf, PF_SLOT_DATA, d);
            r = load_node(pf, pf_phys_data(d), rec, dst, "data node", d);
            coffer_memzero(rec, sizeof(rec));
            if (r != COFFER_OK)
                break;
            if (whole) {
                done += n;
                continue;
            }
            cache_commit(pf, dst, PF_SLOT_DATA);
            p = dst;
        }
        memcpy(o + done, p + in_node, n);
        done += n;
    }
    if (r != COFFER_OK) {
        coffer_memzero(buf, size);
        return poison(pf, r);
    }
    *got = done;
    return COFFER_OK;
}

bool coffer_pf_encrypted_size(uint64_t plain_size, uint64_t *out)
{
    uint64_t nd = pf_data_nodes(plain_size);
    uint64_t nm = pf_mht_nodes(nd);
    uint64_t nodes, bytes;
    if (__builtin_add_overflow(nd, nm, &nodes) || __builtin_add_overflow(nodes, 1, &nodes) ||
        __builtin_mul_overflow(nodes, (uint64_t)PF_NODE, &bytes))
        return false;
    *out = bytes;
    return true;
}

void coffer_pf_close(struct coffer_pf *pf)
{
    if (pf == NULL)
        return;
    pf_gcm_free(&pf->gcm);
    coffer_secret_free(pf->sec); /* wipes key, header, root, cache and writer state */
    coffer_free(pf->cipher);
    coffer_memzero(pf, sizeof(*pf));
    coffer_free(pf);
}

/* handle_new is shared with the writer through this wrapper. */
enum coffer_err pf__handle_new(const struct coffer_io *io, bool writer, size_t extra, struct coffer_pf **out);
enum coffer_err pf__handle_new(const struct coffer_io *io, bool writer, size_t extra, struct coffer_pf **out)
{
    return handle_new(io, writer, extra, out);
}
