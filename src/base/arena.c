/*
 * arena.c — bump allocation in blocks, freed all at once.
 *
 * Design: a linked list of blocks; an allocation that does not fit the
 * current block opens a new one of at least block_size (or of the request,
 * when larger). Sizes and alignment are checked for overflow before any
 * arithmetic (STYLE §3.8). A secret arena's blocks are secrets (secret.c)
 * on 4 KiB pages; a request of more than a quarter of block_size (a
 * model's tensor) gets a block of its own (the solo list), its pages
 * faulted in with one call, while the current block goes on serving.
 * (resnet50's load after another process freed 400 MiB, 10 alternating
 * runs: with the tensors in blocks on 2 MiB pages 117-625 ms, 5 of them
 * over 250, fresh huge pages often slow to come; on 4 KiB pages 144-241
 * ms.) Only the bytes a block handed out are wiped when it
 * is freed: the rest of a fresh mapping was never written.
 * Invariants: I1 every returned pointer lies inside one block and is aligned
 * as asked; I2 reset keeps only the first block, zeroed; I3 a secret
 * block's bytes past its `used` are untouched (zero).
 */
#include "coffer/base.h"

#include <stddef.h>
#include <string.h>

struct arena_block {
    struct arena_block *next;
    struct coffer_secret *sec; /* the mapping the block lives in (secret arenas) */
    size_t cap;
    size_t used;
    _Alignas(64) uint8_t data[];
};

struct coffer_arena {
    struct arena_block *head; /* current block (newest) */
    struct arena_block *first;
    struct arena_block *solo; /* secret arenas: blocks of one large allocation each */
    size_t block_size;
    size_t total_used;
    bool secret;
};

static struct arena_block *block_new(bool secret, bool solo, size_t cap)
{
    size_t total;
    if (!coffer_size_add(sizeof(struct arena_block), cap, &total))
        return NULL;
    if (secret) {
        struct coffer_secret *s;
        if (coffer_secret_new_flags(total, COFFER_SECRET_SMALL_PAGES | (solo ? COFFER_SECRET_POPULATE : 0), &s) !=
            COFFER_OK)
            return NULL;
        struct arena_block *b = (struct arena_block *)s->data; /* zero, page-aligned */
        b->sec = s;
        b->cap = cap;
        return b;
    }
    struct arena_block *b = coffer_calloc(1, total);
    if (b == NULL)
        return NULL;
    b->cap = cap;
    return b;
}

static void block_free(struct arena_block *b)
{
    if (b->sec != NULL)
        coffer_secret_free_used(b->sec, offsetof(struct arena_block, data) + b->used); /* I3 */
    else
        coffer_free(b);
}

static void blocks_free(struct arena_block *b)
{
    while (b != NULL) {
        struct arena_block *next = b->next;
        block_free(b);
        b = next;
    }
}

static enum coffer_err arena_new(size_t block_size, bool secret, struct coffer_arena **out)
{
    *out = NULL;
    if (block_size < 256)
        block_size = 256;
    struct coffer_arena *a = coffer_calloc(1, sizeof(*a));
    if (a == NULL)
        return COFFER_E_NOMEM;
    a->block_size = block_size;
    a->secret = secret;
    a->first = a->head = block_new(secret, false, block_size);
    if (a->first == NULL) {
        coffer_free(a);
        return COFFER_E_NOMEM;
    }
    *out = a;
    return COFFER_OK;
}

enum coffer_err coffer_arena_new(size_t block_size, struct coffer_arena **out)
{
    return arena_new(block_size, false, out);
}

enum coffer_err coffer_arena_new_secret(size_t block_size, struct coffer_arena **out)
{
    return arena_new(block_size, true, out);
}

void *coffer_arena_alloc(struct coffer_arena *a, size_t size, size_t align)
{
    if (align == 0)
        align = 1;
    if ((align & (align - 1)) != 0 || align > 4096) {
        COFFER_FAIL(COFFER_E_INVALID_ARG, "arena alignment %zu is not a power of two up to 4096", align);
        return NULL;
    }
    struct arena_block *b = a->head;
    uintptr_t base = (uintptr_t)b->data;
    size_t off = (size_t)(((base + b->used + align - 1) & ~(uintptr_t)(align - 1)) - base);
    size_t end;
    if (off <= b->cap && coffer_size_add(off, size, &end) && end <= b->cap) {
        b->used = end;
        a->total_used += size;
        return b->data + off;
    }
    size_t need;
    if (!coffer_size_add(size, align, &need)) {
        COFFER_FAIL(COFFER_E_TOO_LARGE, "arena allocation of %zu bytes overflows", size);
        return NULL;
    }
    size_t cap = a->block_size;
    bool solo = a->secret && need > cap / 4;
    struct arena_block *nb = block_new(a->secret, solo, need > cap || solo ? need : cap);
    if (nb == NULL)
        return NULL;
    if (solo) {
        nb->next = a->solo;
        a->solo = nb;
    } else {
        b->next = nb;
        a->head = nb;
    }
    base = (uintptr_t)nb->data;
    off = (size_t)(((base + align - 1) & ~(uintptr_t)(align - 1)) - base);
    nb->used = off + size;
    a->total_used += size;
    return nb->data + off;
}

char *coffer_arena_strdup(struct coffer_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = coffer_arena_alloc(a, n, 1);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

size_t coffer_arena_used(const struct coffer_arena *a) { return a->total_used; }

void coffer_arena_reset(struct coffer_arena *a)
{
    blocks_free(a->first->next);
    blocks_free(a->solo);
    a->solo = NULL;
    a->first->next = NULL;
    if (a->secret)
        coffer_memzero(a->first->data, a->first->used);
    else
        memset(a->first->data, 0, a->first->used);
    a->first->used = 0;
    a->head = a->first;
    a->total_used = 0;
}

void coffer_arena_free(struct coffer_arena *a)
{
    if (a == NULL)
        return;
    blocks_free(a->first);
    blocks_free(a->solo);
    coffer_free(a);
}
