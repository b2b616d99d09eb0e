/*
 * decrypt_all.c — decrypt a whole protected file into secret memory, fast.
 *
 * Design: one pass over the MHT nodes in index order (a parent always has a
 * smaller index than its children) verifies the tree and collects the
 * (key, MAC) record of every data node into secret memory; then the data
 * nodes are decrypted in parallel, each thread over a contiguous range,
 * straight into the output buffer. When the storage offers a view (a PF
 * already in memory) ciphertext is read in place; otherwise each thread
 * reads whole MHT groups (96 contiguous data nodes) with one positional
 * read.
 *
 * Invariants:
 *  I1 on any failure the output is freed (wiped) and *out stays NULL: no
 *     partial plaintext survives.
 *  I2 every data node's tag is checked against a record that chains up to
 *     the metadata MAC before the result is handed out.
 * Threading: workers share nothing writable but disjoint output ranges;
 * each has its own cipher context.
 */
#include <pthread.h>
#include <string.h>

#include "pf_int.h"

enum coffer_err pf__handle_new(const struct coffer_io *io, bool writer, size_t extra, struct coffer_pf **out);

struct worker {
    const struct coffer_io *io;
    const uint8_t *view; /* whole file, or NULL */
    uint8_t *out;        /* plaintext buffer (plain_size bytes) */
    uint64_t plain_size;
    const uint8_t *recs; /* PF_REC per data node */
    uint64_t d_begin, d_end;
    enum coffer_err r;
    char detail[256];
    pthread_t thread;
};

#define GROUP_BYTES ((size_t)PF_DATA_PER_MHT * PF_NODE)

static enum coffer_err decrypt_range(struct worker *w)
{
    struct pf_gcm gcm;
    enum coffer_err r = pf_gcm_init(&gcm);
    if (r != COFFER_OK)
        return r;
    uint8_t *group = NULL;
    uint8_t *tail = NULL;
    struct coffer_secret *tail_sec = NULL;
    if (w->view == NULL && (group = coffer_malloc(GROUP_BYTES)) == NULL) {
        pf_gcm_free(&gcm);
        return COFFER_E_NOMEM;
    }
    uint64_t d = w->d_begin;
    while (d < w->d_end && r == COFFER_OK) {
        /* the run of contiguous data nodes up to the end of this MHT group */
        uint64_t group_end = (d / PF_DATA_PER_MHT + 1) * PF_DATA_PER_MHT;
        uint64_t run_end = group_end < w->d_end ? group_end : w->d_end;
        size_t run = (size_t)(run_end - d);
        const uint8_t *ct;
        if (w->view != NULL) {
            ct = w->view + pf_phys_data(d) * PF_NODE;
        } else {
            r = coffer_io_read(w->io, pf_phys_data(d) * PF_NODE, group, run * PF_NODE);
            if (r != COFFER_OK) {
                coffer_err_context("data nodes %llu..%llu", (unsigned long long)d,
                                   (unsigned long long)(run_end - 1));
                break;
            }
            ct = group;
        }
        for (size_t i = 0; i < run && r == COFFER_OK; i++, d++) {
            uint64_t pos = PF_INLINE + d * PF_NODE;
            const uint8_t *rec = w->recs + d * PF_REC;
            uint64_t left = w->plain_size - pos;
            uint8_t *dst = w->out + pos;
            if (left < PF_NODE) {
                /* the last node: only its head is plaintext we keep */
                if (tail == NULL) {
                    if ((r = coffer_secret_new(PF_NODE, &tail_sec)) != COFFER_OK)
                        break;
                    tail = tail_sec->data;
                }
                dst = tail;
            }
            r = pf_gcm_decrypt(&gcm, rec, NULL, ct + i * PF_NODE, PF_NODE, dst, rec + 16);
            if (r == COFFER_E_AUTH)
                r = COFFER_FAIL(COFFER_E_AUTH, "data node %llu (node %llu at byte %llu): MAC mismatch",
                                (unsigned long long)d, (unsigned long long)pf_phys_data(d),
                                (unsigned long long)(pf_phys_data(d) * PF_NODE));
            else if (r == COFFER_OK && dst == tail)
                memcpy(w->out + pos, tail, (size_t)left);
        }
    }
    coffer_secret_free(tail_sec);
    coffer_free(group);
    pf_gcm_free(&gcm);
    return r;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->r = decrypt_range(w);
    if (w->r != COFFER_OK)
        snprintf(w->detail, sizeof(w->detail), "%s", coffer_err_detail());
    return NULL;
}

/* Verify every MHT node and gather the data-node records. */
static enum coffer_err walk_tree(struct coffer_pf *pf, uint64_t nd, uint8_t *recs, uint8_t *mrecs)
{
    uint64_t nm = pf_mht_nodes(nd);
    memcpy(mrecs, pf->hdr + PF_HDR_ROOTKEY_OFF, PF_REC); /* the root's record */
    for (uint64_t l = 0; l < nm; l++) {
        uint8_t ct[PF_NODE];
        uint64_t phys = pf_phys_mht(l);
        enum coffer_err r = coffer_io_read(pf->io, phys * PF_NODE, ct, PF_NODE);
        if (r != COFFER_OK) {
            coffer_err_context("MHT node %llu", (unsigned long long)l);
            return r;
        }
        const uint8_t *rec = mrecs + l * PF_REC;
        r = pf_gcm_decrypt(&pf->gcm, rec, NULL, ct, PF_NODE, pf->node, rec + 16);
        if (r == COFFER_E_AUTH)
            return COFFER_FAIL(COFFER_E_AUTH, "%s %llu (node %llu at byte %llu): MAC mismatch",
                               l == 0 ? "root MHT node" : "MHT node", (unsigned long long)l,
                               (unsigned long long)phys, (unsigned long long)(phys * PF_NODE));
        if (r != COFFER_OK)
            return r;
        uint64_t first = l * PF_DATA_PER_MHT;
        uint64_t count = nd - first < PF_DATA_PER_MHT ? nd - first : PF_DATA_PER_MHT;
        memcpy(recs + first * PF_REC, pf->node, (size_t)count * PF_REC);
        for (uint64_t j = 0; j < PF_CHILD_PER_MHT; j++) {
            uint64_t child = PF_CHILD_PER_MHT * l + 1 + j;
            if (child >= nm)
                break;
            memcpy(mrecs + child * PF_REC, pf->node + PF_MHT_CHILD_OFF + j * PF_REC, PF_REC);
        }
    }
    coffer_memzero(pf->node, PF_NODE);
    return COFFER_OK;
}

/* see coffer/pf.h */
enum coffer_err coffer_pf_decrypt_all(const struct coffer_io *io, const coffer_pf_key key, const char *check_path,
                                      int threads, struct coffer_secret **out)
{
    *out = NULL;
    if (io == NULL || key == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "no storage or no key");
    struct coffer_pf *pf;
    enum coffer_err r = pf__handle_new(io, false, 0, &pf);
    if (r != COFFER_OK)
        return r;
    memcpy(pf->key, key, COFFER_PF_KEY_SIZE);
    uint64_t file_size;
    struct coffer_secret *plain = NULL, *recs = NULL;
    if ((r = pf__open_meta(pf, check_path, &file_size)) != COFFER_OK)
        goto out;
    if (pf->plain_size > SIZE_MAX) {
        r = COFFER_FAIL(COFFER_E_TOO_LARGE, "plaintext of %llu bytes does not fit in memory",
                        (unsigned long long)pf->plain_size);
        goto out;
    }
    if ((r = coffer_secret_new((size_t)pf->plain_size, &plain)) != COFFER_OK)
        goto out;
    size_t inline_size = pf->plain_size < PF_INLINE ? (size_t)pf->plain_size : PF_INLINE;
    memcpy(plain->data, pf->hdr + PF_HDR_DATA_OFF, inline_size);

    uint64_t nd = pf_data_nodes(pf->plain_size);
    if (nd > 0) {
        uint64_t nm = pf_mht_nodes(nd);
        if ((r = coffer_secret_new((size_t)(nd + nm) * PF_REC, &recs)) != COFFER_OK)
            goto out;
        if ((r = walk_tree(pf, nd, recs->data, recs->data + nd * PF_REC)) != COFFER_OK)
            goto out;
        uint64_t view_size = 0;
        const uint8_t *view = io->ops->view ? io->ops->view(io->ctx, &view_size) : NULL;
        if (view != NULL && view_size != file_size)
            view = NULL;
        if (threads <= 0)
            threads = coffer_cpu_count();
        if (threads > 64)
            threads = 64;
        /* at least 64 nodes (256 KiB) per thread, else threads cost more than they give */
        if ((uint64_t)threads > nd / 64 + 1)
            threads = (int)(nd / 64 + 1);
        struct worker w[64];
        int started = 0;
        for (int t = 0; t < threads; t++) {
            w[t] = (struct worker){
                .io = io, .view = view, .out = plain->data, .plain_size = pf->plain_size,
                .recs = recs->data, .d_begin = nd * (uint64_t)t / (uint64_t)threads,
                .d_end = nd * (uint64_t)(t + 1) / (uint64_t)threads,
            };
        }
        for (int t = 1; t < threads; t++) {
            if (pthread_create(&w[t].thread, NULL, worker_main, &w[t]) != 0)
                break;
            started = t;
        }
        /* what could not be started runs here, after the first range */
        worker_main(&w[0]);
        for (int t = started + 1; t < threads; t++)
            worker_main(&w[t]);
        for (int t = 1; t <= started; t++)
            pthread_join(w[t].thread, NULL);
        for (int t = 0; t < threads && r == COFFER_OK; t++)
            if (w[t].r != COFFER_OK)
                r = COFFER_FAIL(w[t].r, "%s", w[t].detail);
    }
out:
    coffer_secret_free(recs);
    coffer_pf_close(pf);
    if (r != COFFER_OK) {
        coffer_secret_free(plain);
        return r;
    }
    *out = plain;
    return COFFER_OK;
}
