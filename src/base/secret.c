/*
 * secret.c — memory for keys and plaintext, wiping, constant-time compare,
 * random bytes.
 *
 * Design: each secret is its own anonymous mapping, so freeing returns it to
 * the kernel after a wipe, and so it can be locked (mlock, best effort: the
 * RLIMIT_MEMLOCK of an unprivileged process is small) and kept out of core
 * dumps (MADV_DONTDUMP). Wiping goes through OPENSSL_cleanse, comparison
 * through CRYPTO_memcmp (STYLE §3.13).
 *
 * Invariants: I1 a freed secret's bytes are zero before the pages are
 * returned. I2 comparisons of MACs, keys and tokens take time independent of
 * their contents.
 */
#include "coffer/base.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)2 << 20)

enum coffer_err coffer_secret_new(size_t size, struct coffer_secret **out)
{
    return coffer_secret_new_flags(size, 0, out);
}

enum coffer_err coffer_secret_new_flags(size_t size, unsigned flags, struct coffer_secret **out)
{
    *out = NULL;
    struct coffer_secret *s = coffer_calloc(1, sizeof(*s));
    if (s == NULL)
        return COFFER_E_NOMEM;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t map_size;
    if (!coffer_size_add(size == 0 ? 1 : size, page - 1, &map_size)) {
        coffer_free(s);
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "secret of %zu bytes is too large", size);
    }
    map_size &= ~(page - 1);
#ifdef COFFER_TESTING
    /* Let allocation fault injection reach secret allocations too. */
    void *probe = coffer_malloc(1);
    if (probe == NULL) {
        coffer_free(s);
        return COFFER_E_NOMEM;
    }
    coffer_free(probe);
#endif
    void *p;
    if (map_size >= HUGE_MIN && !(flags & COFFER_SECRET_SMALL_PAGES)) {
        /* Large secrets (a decrypted model, nn's packed weights and
         * activations): 2 MiB-aligned and backed by transparent huge pages,
         * so faulting them in costs 512 times fewer page faults, and
         * kernels that touch many pages at once miss the TLB less. The
         * mapping ends on a huge page too (a last part on 4 KiB pages took
         * back part of the gain for nn's arenas of a few MiB). */
        size_t whole, padded;
        if (!coffer_size_add(map_size, HUGE_PAGE - 1, &whole) ||
            !coffer_size_add(whole & ~(HUGE_PAGE - 1), HUGE_PAGE, &padded)) {
            coffer_free(s);
            return COFFER_FAIL(COFFER_E_TOO_LARGE, "secret of %zu bytes is too large", size);
        }
        map_size = whole & ~(HUGE_PAGE - 1);
        uint8_t *raw = mmap(NULL, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p = raw;
        if (raw != MAP_FAILED) {
            uint8_t *aligned = (uint8_t *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
            if (aligned > raw)
                munmap(raw, (size_t)(aligned - raw));
            size_t tail = (size_t)(raw + padded - (aligned + map_size));
            if (tail > 0)
                munmap(aligned + map_size, tail);
            p = aligned;
            (void)madvise(p, map_size, MADV_HUGEPAGE);
        }
    } else {
        p = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (p == MAP_FAILED) {
        coffer_free(s);
        return COFFER_FAIL(COFFER_E_NOMEM, "mapping %zu bytes for a secret", map_size);
    }
    (void)madvise(p, map_size, MADV_DONTDUMP);
    /* Locked so plaintext never reaches swap (best effort: the limit may be
     * small). ONFAULT locks pages as they are first touched, so the threads
     * filling a large secret fault in their own ranges in parallel. */
    if (mlock2(p, map_size, MLOCK_ONFAULT) != 0)
        (void)mlock(p, map_size);
#ifdef MADV_POPULATE_WRITE
    /* all pages in one call rather than a fault each (Linux 5.14; best
     * effort: where it fails they fault in as they are written) */
    if (flags & COFFER_SECRET_POPULATE)
        (void)madvise(p, map_size, MADV_POPULATE_WRITE);
#endif
    s->data = p;
    s->size = size;
    s->map_size = map_size;
    *out = s;
    return COFFER_OK;
}

void coffer_secret_free(struct coffer_secret *s)
{
    coffer_secret_free_used(s, s != NULL ? s->size : 0);
}

void coffer_secret_free_used(struct coffer_secret *s, size_t used)
{
    if (s == NULL)
        return;
    if (s->data != NULL) {
        /* the bytes the caller wrote: the rest of the mapping was never
         * written (wiping it would fault in a huge page just to clear it) */
        coffer_memzero(s->data, used < s->size ? used : s->size);
        (void)munlock(s->data, s->map_size);
        munmap(s->data, s->map_size);
    }
    coffer_memzero(s, sizeof(*s));
    coffer_free(s);
}

void coffer_memzero(void *p, size_t size)
{
    if (p != NULL && size > 0)
        OPENSSL_cleanse(p, size);
}

bool coffer_ct_eq(const void *a, const void *b, size_t size)
{
    return CRYPTO_memcmp(a, b, size) == 0;
}

enum coffer_err coffer_random(void *buf, size_t size)
{
    while (size > 0) {
        int chunk = size > (1u << 30) ? (1 << 30) : (int)size;
        if (RAND_bytes(buf, chunk) != 1)
            return COFFER_FAIL(COFFER_E_CRYPTO, "the random generator failed");
        buf = (uint8_t *)buf + chunk;
        size -= (size_t)chunk;
    }
    return COFFER_OK;
}
