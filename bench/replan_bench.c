/*
 * replan_bench.c — what a re-plan for a new batch size costs a run: a
 * model run at batch sizes A and B in turn (every run re-plans), beside
 * the same model run at A alone and at B alone, with and without
 * keep_packs (coffer_nn_options: packed weights of the other batch size's
 * kernels kept), in one run. Per round, the order alternating, each side
 * loads the model and times RUNS runs after WARMUP untimed ones; the best
 * round's mean per run is kept. Prints, per side, the mean ms a run and
 * the re-plan cost: the alternating mean less the mean of the two fixed
 * sides.
 *   build/bench/bench/bench_replan MODEL.onnx [--batches 3,5] [--threads 1]
 *                                  [--rounds 3] [--runs 12] [--warmup 2]
 * MODEL's first input is float with a free batch dimension; its items are
 * sin(i) * 0.5.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coffer/base.h"
#include "coffer/nn.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

struct side {
    const char *name;
    int64_t a, b; /* batch sizes in turn (a == b: fixed) */
    bool keep;
    double best;
};

/* One round of a side: load, WARMUP + RUNS runs, the mean of the timed. */
static int round_of(const uint8_t *bytes, size_t size, int threads, struct side *s, int runs, int warmup,
                    const float *x, int64_t item)
{
    struct coffer_nn_options o = {.threads = threads, .keep_packs = s->keep};
    struct coffer_nn_model *m;
    if (coffer_nn_model_load_opts(bytes, size, &o, &m) != COFFER_OK) {
        fprintf(stderr, "bench_replan: load: %s\n", coffer_err_detail());
        return -1;
    }
    struct coffer_nn_value_info vi;
    if (coffer_nn_model_input(m, 0, &vi) != COFFER_OK || vi.rank < 1) {
        coffer_nn_model_free(m);
        return -1;
    }
    double sum = 0;
    for (int r = 0; r < warmup + runs; r++) {
        int64_t n = r % 2 ? s->b : s->a;
        struct coffer_nn_tensor in = {.dtype = COFFER_NN_FLOAT, .rank = vi.rank, .data = (void *)x};
        in.dims[0] = n;
        for (int k = 1; k < vi.rank; k++)
            in.dims[k] = vi.dims[k];
        in.size = (size_t)(n * item) * sizeof(float);
        struct coffer_nn_tensor out;
        double t0 = now_ms();
        if (coffer_nn_model_run(m, &in, 1, &out, 1) != COFFER_OK) {
            fprintf(stderr, "bench_replan: run: %s\n", coffer_err_detail());
            coffer_nn_model_free(m);
            return -1;
        }
        if (r >= warmup)
            sum += now_ms() - t0;
    }
    coffer_nn_model_free(m);
    double mean = sum / runs;
    if (s->best == 0 || mean < s->best)
        s->best = mean;
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int64_t a = 3, b = 5;
    int threads = 1, rounds = 3, runs = 12, warmup = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
            long long x, y;
            if (sscanf(argv[++i], "%lld,%lld", &x, &y) != 2 || x < 1 || y < 1 || x > 64 || y > 64)
                return fprintf(stderr, "bench_replan: --batches A,B (1 to 64)\n"), 2;
            a = x;
            b = y;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc) {
            warmup = atoi(argv[++i]);
        } else if (argv[i][0] != '-' && path == NULL) {
            path = argv[i];
        } else {
            return fprintf(stderr, "usage: bench_replan MODEL.onnx [--batches A,B] [--threads T] [--rounds R] "
                                   "[--runs N] [--warmup W]\n"),
                   2;
        }
    }
    if (path == NULL || threads < 1 || rounds < 1 || runs < 2 || warmup < 0)
        return fprintf(stderr, "usage: bench_replan MODEL.onnx [--batches A,B] [--threads T] [--rounds R] "
                               "[--runs N] [--warmup W]\n"),
               2;
    uint8_t *bytes;
    size_t size;
    if (coffer_file_read_all(path, (size_t)1 << 31, &bytes, &size) != COFFER_OK)
        return fprintf(stderr, "bench_replan: %s: %s\n", path, coffer_err_detail()), 1;
    struct coffer_nn_model *m;
    struct coffer_nn_value_info vi;
    if (coffer_nn_model_load(bytes, size, &m) != COFFER_OK || coffer_nn_model_input(m, 0, &vi) != COFFER_OK)
        return fprintf(stderr, "bench_replan: %s: %s\n", path, coffer_err_detail()), 1;
    coffer_nn_model_free(m);
    int64_t item = 1;
    for (int k = 1; k < vi.rank; k++)
        item *= vi.dims[k] > 0 ? vi.dims[k] : 1;
    int64_t nmax = a > b ? a : b;
    float *x = malloc((size_t)(nmax * item) * sizeof(float));
    if (x == NULL)
        return 1;
    for (int64_t i = 0; i < nmax * item; i++)
        x[i] = 0.5f * sinf((float)i);
    struct side sides[] = {
        {"fixed A", a, a, false, 0},      {"fixed B", b, b, false, 0},
        {"A,B in turn", a, b, false, 0},  {"A,B in turn, keep_packs", a, b, true, 0},
    };
    int n_sides = (int)(sizeof(sides) / sizeof(sides[0]));
    for (int r = 0; r < rounds; r++) {
        fprintf(stderr, "\rround %d/%d", r + 1, rounds);
        for (int k = 0; k < n_sides; k++) {
            int s = r % 2 ? n_sides - 1 - k : k; /* the order alternating */
            if (round_of(bytes, size, threads, &sides[s], runs, warmup, x, item) != 0)
                return 1;
        }
    }
    fprintf(stderr, "\n");
    double fixed = (sides[0].best + sides[1].best) / 2;
    printf("%s, batches %lld and %lld, %d thread%s, %d rounds of %d runs (best round's mean ms a run):\n", path,
           (long long)a, (long long)b, threads, threads == 1 ? "" : "s", rounds, runs);
    for (int k = 0; k < n_sides; k++) {
        printf("  %-26s %9.3f ms", sides[k].name, sides[k].best);
        if (sides[k].a != sides[k].b)
            printf("   re-plan: %+.3f ms a run", sides[k].best - fixed);
        printf("\n");
    }
    free(x);
    coffer_free(bytes);
    return 0;
}
