/*
 * bench_attest.c — verifications per second of an SGX DCAP quote with the
 * collateral already parsed (issue 4, item 7).
 *
 *   bench_attest [--threads N] [--seconds S] [--shared DIR] [--cold]
 *
 * Design: the collateral set is parsed once and shared read-only by N
 * threads (coffer_attest_collateral is immutable after parse); each thread
 * verifies the recorded sgx/phala-v3 quote at its verify_at in a loop for S
 * seconds and counts successes. --cold clears the verifier's memos (PCK
 * chains, QE report signatures) before every verification, as if every
 * quote came from a platform never seen before. Every verification is checked to succeed
 * with the expected status, so a fast failure can never count. Prints one
 * JSON line.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/attest.h"

struct job {
    const uint8_t *quote;
    size_t size;
    const struct coffer_attest_collateral *col;
    time_t now;
    double seconds;
    uint64_t done;
    int failed;
    int cold;
};

static void *worker(void *arg)
{
    struct job *j = arg;
    const struct coffer_attest_collateral *list[1] = {j->col};
    struct coffer_attest_verify_opts o = {.now = j->now, .collateral = list, .collateral_count = 1};
    uint64_t start = coffer_now_ns(), end = start + (uint64_t)(j->seconds * 1e9);
    while (coffer_now_ns() < end) {
        for (int k = 0; k < 16; k++) {
            struct coffer_attest_claims c;
            if (j->cold)
                coffer_attest_cache_clear();
            if (coffer_attest_evidence_verify(j->quote, j->size, &o, &c) != COFFER_OK ||
                c.tcb_status != COFFER_ATTEST_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED) {
                j->failed = 1;
                return NULL;
            }
            j->done++;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = 2;
    double seconds = 5;
    const char *shared = COFFER_SHARED_DIR;
    int cold = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--shared") == 0 && i + 1 < argc)
            shared = argv[++i];
        else if (strcmp(argv[i], "--cold") == 0)
            cold = 1;
        else {
            fprintf(stderr, "usage: bench_attest [--threads N] [--seconds S] [--shared DIR] [--cold]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 256 || seconds <= 0)
        return 2;
    coffer_log_set_level(COFFER_LOG_ERROR);
    char path[4096];
    uint8_t *q;
    size_t qn;
    snprintf(path, sizeof(path), "%s/vectors/attest/sgx/phala-v3/quote.bin", shared);
    if (coffer_file_read_all(path, 1 << 20, &q, &qn) != COFFER_OK) {
        fprintf(stderr, "bench_attest: %s: %s\n", path, coffer_err_detail());
        return 1;
    }
    snprintf(path, sizeof(path), "%s/vectors/attest/collateral/sgx-fmspc00A067110000-2025-06-19", shared);
    struct coffer_attest_collateral *col;
    if (coffer_attest_collateral_load_dir(path, &col, NULL) != COFFER_OK) {
        fprintf(stderr, "bench_attest: collateral: %s\n", coffer_err_detail());
        return 1;
    }
    time_t now;
    if (coffer_attest_time_parse("2025-07-01T00:00:00Z", &now) != COFFER_OK)
        return 1;
    struct job *jobs = calloc((size_t)threads, sizeof(*jobs));
    pthread_t *tids = calloc((size_t)threads, sizeof(*tids));
    uint64_t t0 = coffer_now_ns();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct job){.quote = q, .size = qn, .col = col, .now = now, .seconds = seconds, .cold = cold};
        pthread_create(&tids[i], NULL, worker, &jobs[i]);
    }
    uint64_t total = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        total += jobs[i].done;
        failed |= jobs[i].failed;
    }
    double el = (double)(coffer_now_ns() - t0) / 1e9;
    if (failed) {
        fprintf(stderr, "bench_attest: a verification failed: %s\n", coffer_err_detail());
        return 1;
    }
    printf("{\"bench\":\"sgx_quote_verify%s\",\"threads\":%d,\"seconds\":%.2f,\"verifications\":%llu,"
           "\"per_second\":%.0f,\"per_second_per_thread\":%.0f}\n",
           cold ? "_cold" : "", threads, el, (unsigned long long)total, (double)total / el, (double)total / el / threads);
    coffer_attest_collateral_free(col);
    coffer_free(q);
    free(jobs);
    free(tids);
    return 0;
}
