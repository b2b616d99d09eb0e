/*
 * alloc.c — the one allocator of coffer, with fault injection for tests.
 *
 * Design: thin wrappers over malloc. In COFFER_TESTING builds a counter lets
 * a test make the Nth allocation fail (once, or from then on), the way
 * SQLite's faultsim does, so every error path that allocation can reach gets
 * exercised (STYLE §3.18).
 * Threading: the fault counter is atomic; tests arm it from one thread.
 */
#include "coffer/base.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef COFFER_TESTING
static atomic_long fault_countdown; /* 0: disarmed */
static atomic_bool fault_persistent;
static atomic_bool fault_fired;

void coffer_test_fail_alloc_at(long n, bool persistent)
{
    atomic_store(&fault_persistent, persistent);
    atomic_store(&fault_fired, false);
    atomic_store(&fault_countdown, n);
}

bool coffer_test_alloc_fault_fired(void) { return atomic_load(&fault_fired); }

static bool fault_now(void)
{
    long c = atomic_load(&fault_countdown);
    if (c <= 0)
        return false;
    if (c == 1) {
        atomic_store(&fault_fired, true);
        if (!atomic_load(&fault_persistent))
            atomic_store(&fault_countdown, 0);
        return true;
    }
    atomic_fetch_sub(&fault_countdown, 1);
    return false;
}
#else
static inline bool fault_now(void) { return false; }
#endif

void *coffer_malloc(size_t size)
{
    if (fault_now())
        return NULL;
    void *p = malloc(size == 0 ? 1 : size);
    if (p == NULL)
        COFFER_FAIL(COFFER_E_NOMEM, "allocating %zu bytes", size);
    return p;
}

void *coffer_calloc(size_t count, size_t size)
{
    if (fault_now())
        return NULL;
    void *p = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
    if (p == NULL)
        COFFER_FAIL(COFFER_E_NOMEM, "allocating %zu x %zu bytes", count, size);
    return p;
}

void *coffer_realloc(void *ptr, size_t size)
{
    if (fault_now())
        return NULL;
    void *p = realloc(ptr, size == 0 ? 1 : size);
    if (p == NULL)
        COFFER_FAIL(COFFER_E_NOMEM, "reallocating to %zu bytes", size);
    return p;
}

void *coffer_mallocarray(size_t count, size_t size)
{
    size_t total;
    if (!coffer_size_mul(count, size, &total)) {
        COFFER_FAIL(COFFER_E_TOO_LARGE, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    return coffer_malloc(total);
}

char *coffer_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = coffer_malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

void coffer_free(void *ptr) { free(ptr); }
