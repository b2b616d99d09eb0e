/*
 * rest_parse_bench.c — REST :predict body parsing, coffer's fast path
 * (src/serve/rest_fast.c) beside the general parser (jansson, rest_predict.c)
 * on the same numbers, in one run: a row-format body of BATCH instances of
 * 784 floats written with 4 to 9 decimals (as Python's json.dumps of
 * rounded or raw floats gives them), parsed RUNS times per round; the
 * general parser gets the same body with one extra top-level key, which TF
 * ignores and which keeps the fast path off. Rounds alternate the order.
 * Prints each side's best round median (ns per number) and the ratio.
 *   build/bench/bench/bench_rest_parse [--rounds 7] [--runs 200] [--batch 1]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coffer/serve.h"

#define ITEM 784

static const struct coffer_serve_tensor_info in[] = {
    {.alias = "input", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 2, .dims = {-1, ITEM}}};
static const struct coffer_serve_signature sig = {.key = "serving_default", .inputs = in, .input_count = 1};

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median ns per body over runs parses of body. */
static double time_parse(const char *body, size_t n, int runs, double *samples)
{
    for (int i = 0; i < runs; i++) {
        struct coffer_serve_rest_predict p;
        struct coffer_serve_status st;
        double t0 = now_ns();
        if (coffer_serve_rest_predict_parse(body, n, &sig, 1, NULL, &p, &st) != COFFER_OK) {
            fprintf(stderr, "parse failed: %s\n", st.message);
            exit(1);
        }
        samples[i] = now_ns() - t0;
        coffer_serve_rest_predict_free(&p);
    }
    qsort(samples, (size_t)runs, sizeof(double), cmp);
    return samples[runs / 2];
}

int main(int argc, char **argv)
{
    int rounds = 7, runs = 200, batch = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = atoi(argv[i + 1]);
    }
    if (rounds < 1 || runs < 1 || batch < 1 || batch > 4096) {
        fprintf(stderr, "usage: bench_rest_parse [--rounds N] [--runs N] [--batch 1..4096]\n");
        return 2;
    }
    coffer_log_set_level(COFFER_LOG_OFF);
    size_t cap = (size_t)batch * ITEM * 16 + 64;
    char *fast = malloc(cap), *general = malloc(cap + 16);
    double *samples = malloc(sizeof(double) * (size_t)runs);
    if (fast == NULL || general == NULL || samples == NULL)
        return 1;
    size_t n = (size_t)snprintf(fast, cap, "{\"instances\": [");
    unsigned x = 12345;
    for (int b = 0; b < batch; b++) {
        n += (size_t)snprintf(fast + n, cap - n, "%s[", b ? ", " : "");
        for (int i = 0; i < ITEM; i++) {
            x = x * 1103515245u + 12345u; /* a fixed LCG: the same body every run */
            double v = (double)(x >> 8) / 16777216.0;
            n += (size_t)snprintf(fast + n, cap - n, "%s%.*f", i ? ", " : "", 4 + (int)(x % 6), v);
        }
        n += (size_t)snprintf(fast + n, cap - n, "]");
    }
    n += (size_t)snprintf(fast + n, cap - n, "]}");
    int g = snprintf(general, cap + 16, "{\"x\": 0, %s", fast + 1);
    size_t gn = (size_t)g;
    double best_fast = 0, best_general = 0;
    for (int r = 0; r < rounds; r++) {
        double f, j;
        if (r % 2 == 0) {
            f = time_parse(fast, n, runs, samples);
            j = time_parse(general, gn, runs, samples);
        } else {
            j = time_parse(general, gn, runs, samples);
            f = time_parse(fast, n, runs, samples);
        }
        if (r == 0 || f < best_fast)
            best_fast = f;
        if (r == 0 || j < best_general)
            best_general = j;
        fprintf(stderr, "round %d: fast path %.1f ns/number, general (jansson) %.1f ns/number\n", r + 1,
                f / (batch * ITEM), j / (batch * ITEM));
    }
    printf("{\"body_bytes\":%zu,\"numbers\":%d,\"fast_ns_per_number\":%.2f,\"general_ns_per_number\":%.2f,"
           "\"fast_over_general\":%.3f}\n",
           n, batch * ITEM, best_fast / (batch * ITEM), best_general / (batch * ITEM), best_fast / best_general);
    free(fast);
    free(general);
    free(samples);
    return 0;
}
