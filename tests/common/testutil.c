/* testutil.c — see testutil.h. */
#include "testutil.h"

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *tu_shared(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s", COFFER_SHARED_DIR, rel);
    return buf;
}

char *tu_mkdtemp(void)
{
    const char *t = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/coffer-test-XXXXXX", t ? t : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void tu_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint8_t *tu_read(const char *path, size_t *size)
{
    uint8_t *p = NULL;
    enum coffer_err r = coffer_file_read_all(path, (size_t)1 << 32, &p, size);
    if (r != COFFER_OK)
        fail_msg("cannot read %s: %s", path, coffer_err_detail());
    return p;
}

void tu_pattern(uint8_t *buf, size_t size, size_t start)
{
    for (size_t i = 0; i < size; i++)
        buf[i] = (uint8_t)(((start + i) * 31 + 7) % 251);
}

void tu_fault_loop(enum coffer_err (*body)(void *arg), void *arg)
{
#ifdef COFFER_TESTING
    for (long n = 1; n < 100000; n++) {
        coffer_test_fail_alloc_at(n, false);
        enum coffer_err r = body(arg);
        bool fired = coffer_test_alloc_fault_fired();
        coffer_test_fail_alloc_at(0, false);
        if (!fired) {
            assert_int_equal(r, COFFER_OK);
            return;
        }
        if (r == COFFER_OK)
            continue; /* the failure was absorbed (an optional allocation) */
        if (r != COFFER_E_NOMEM)
            fail_msg("allocation fault %ld gave %s (%s), not E_NOMEM", n, coffer_err_name(r), coffer_err_detail());
    }
    fail_msg("fault loop did not finish");
#else
    assert_int_equal(body(arg), COFFER_OK);
#endif
}
