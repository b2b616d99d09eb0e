/*
 * pool_bench.c — what nn's thread pool (src/nn/kernels/pool.c) costs to
 * hand out one run, beside the same tasks run one after the other on the
 * calling thread, in one run: for each case (tasks a run, spin iterations a
 * task, fixed or plain mode) ROUNDS rounds of RUNS pool runs, each round
 * followed by the same runs' tasks done serially. Prints each side's best
 * round (ns a run) and the pool's time over half the serial time (1.0: a
 * perfect split over 2 threads; the overhead shows at small tasks).
 *   build/bench/bench/bench_pool [--rounds 5] [--runs 20000] [--threads 2]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/nn/kernels/kern.h"

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

struct work {
    int iters;
    volatile float sink[64 * 16]; /* one line a task slot: the tasks write apart */
};

static void task(void *arg, int64_t t, int tid)
{
    (void)tid;
    struct work *w = arg;
    float a = (float)t;
    for (int i = 0; i < w->iters; i++)
        a = a * 0.999f + 1.0f;
    w->sink[(t % 64) * 16] = a;
}

int main(int argc, char **argv)
{
    int rounds = 5, runs = 20000, threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_pool [--rounds N] [--runs N] [--threads N]\n");
            return 2;
        }
    }
    if (rounds < 1 || runs < 1 || threads < 2) {
        fprintf(stderr, "bench_pool: rounds and runs must be >= 1, threads >= 2\n");
        return 2;
    }
    struct nn_pool *p = nn_pool_new(threads);
    if (p == NULL || nn_pool_size(p) < threads) {
        fprintf(stderr, "bench_pool: no pool of %d threads\n", threads);
        nn_pool_free(p);
        return 1;
    }
    /* tasks a run, spin iterations a task (200: ~0.2 us), fixed mode */
    static const int cases[][3] = {{2, 0, 1}, {2, 0, 0}, {6, 200, 1}, {20, 200, 1}, {20, 200, 0}, {20, 2000, 1}};
    printf("%-6s %-6s %-6s %12s %12s %10s\n", "tasks", "iters", "mode", "pool ns/run", "serial ns", "pool/(s/2)");
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        static struct work w;
        w.iters = cases[c][1];
        int ntasks = cases[c][0];
        bool fixed = cases[c][2];
        double best_pool = 1e30, best_serial = 1e30;
        for (int r = 0; r < rounds; r++) {
            double t0 = now_ns();
            for (int k = 0; k < runs; k++)
                (fixed ? nn_pool_run_fixed : nn_pool_run)(p, threads, ntasks, task, &w);
            double t1 = now_ns();
            for (int k = 0; k < runs; k++)
                for (int t = 0; t < ntasks; t++)
                    task(&w, t, 0);
            double t2 = now_ns();
            if ((t1 - t0) / runs < best_pool)
                best_pool = (t1 - t0) / runs;
            if ((t2 - t1) / runs < best_serial)
                best_serial = (t2 - t1) / runs;
        }
        printf("%-6d %-6d %-6s %12.0f %12.0f", ntasks, w.iters, fixed ? "fixed" : "plain", best_pool, best_serial);
        if (best_serial >= 100) /* (empty tasks: the run's cost alone, no ratio) */
            printf(" %10.2f\n", best_pool / (best_serial / threads));
        else
            printf(" %10s\n", "-");
        fflush(stdout);
    }
    nn_pool_free(p);
    return 0;
}
