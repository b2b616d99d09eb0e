/*
 * arena.c — bump allocation in blocks, freed all at once.
 *
 * Design: a linked list of blocks; an allocation that does not fit the
 * current block opens a new one of at least block_size (or of the request,
 * when larger). Sizes and alignment are checked for overflow before any
 * arithmetic (STYLE §3.8).
 * Invariants: I1 every returned pointer lies inside one block and is aligned
 * as asked; I2 reset keeps only the first block, zeroed.
 */
#include "coffer/base.h"

#include <string.h>

struct arena_block {
    struct arena_block *next;
    size_t cap;
    size_t used;
    _Alignas(64) uint8_t data[];
};

struct coffer_arena {
    struct arena_block *head; /* current block (newest) */
    struct arena_block *first;
    size_t block_size;
    size_t total_used;
};

static struct arena_block *block_new(size_t cap)
{
    size_t total;
    if (!coffer_size_add(sizeof(struct arena_block), cap, &total))
        return NULL;
    struct arena_block *b = coffer_calloc(1, total);
    if (b == NULL)
        return NULL;
    b->cap = cap;
    return b;
}

enum coffer_err coffer_arena_new(size_t block_size, struct coffer_arena **out)
{
    *out = NULL;
    if (block_size < 256)
        block_size = 256;
    struct coffer_arena *a = coffer_calloc(1, sizeof(*a));
    if (a == NULL)
        return COFFER_E_NOMEM;
    a->block_size = block_size;
    a->first = a->head = block_new(block_size);
    if (a->first == NULL) {
        coffer_free(a);
        return COFFER_E_NOMEM;
    }
    *out = a;
    return COFFER_OK;
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
    struct arena_block *nb = block_new(need > a->block_size ? need : a->block_size);
    if (nb == NULL)
        return NULL;
    b->next = nb;
    a->head = nb;
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
    struct arena_block *b = a->first->next;
    while (b != NULL) {
        struct arena_block *next = b->next;
        coffer_free(b);
        b = next;
    }
    a->first->next = NULL;
    memset(a->first->data, 0, a->first->used);
    a->first->used = 0;
    a->head = a->first;
    a->total_used = 0;
}

void coffer_arena_free(struct coffer_arena *a)
{
    if (a == NULL)
        return;
    struct arena_block *b = a->first;
    while (b != NULL) {
        struct arena_block *next = b->next;
        coffer_free(b);
        b = next;
    }
    coffer_free(a);
}
