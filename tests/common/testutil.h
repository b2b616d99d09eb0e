/*
 * testutil.h — helpers shared by the cmocka test binaries: cmocka's headers
 * in the right order, paths to the shared vectors, temporary folders, and
 * the allocation fault loop (STYLE §3.18).
 */
#ifndef COFFER_TESTUTIL_H
#define COFFER_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "coffer/base.h"

/* "<shared>/<rel>" in a static buffer (one at a time). */
const char *tu_shared(const char *rel);
/* A fresh temporary folder under $TMPDIR; removed by tu_rmtree. */
char *tu_mkdtemp(void);
void tu_rmtree(const char *path);
/* Read a whole file or fail the test. */
uint8_t *tu_read(const char *path, size_t *size);
/* The vectors' plaintext pattern: byte i is (i*31+7) mod 251. */
void tu_pattern(uint8_t *buf, size_t size, size_t start);

/* Run body with allocation n = 1, 2, ... failing until a run completes with
 * no fault injected. body returns COFFER_OK or an error; every failing run
 * must return one of the errors in ok_errs (NOMEM is always allowed). */
void tu_fault_loop(enum coffer_err (*body)(void *arg), void *arg);

#endif
