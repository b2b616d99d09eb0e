/*
 * test_conformance.c — the ONNX backend test data (Debian's
 * libonnx-testdata) run through coffer_nn.
 *
 * Every case of the node, pytorch-converted, pytorch-operator and simple
 * suites is loaded; a case whose model or inputs coffer reports as
 * unsupported (COFFER_E_UNSUPPORTED: an op, an attribute value, a dtype) is
 * skipped with that reason printed. Every other case must load, run and
 * match each output_N.pb: same dtype and shape, and values within the
 * backend suite's tolerances (|got - want| <= atol + rtol * |want|,
 * rtol 1e-3, atol 1e-7; NaN matches NaN; integers and booleans exactly).
 * The closing line prints passed, failed and skipped counts; the test fails
 * when any case fails.
 */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coffer/nn.h"
#include "../../src/nn/nn_int.h" /* which ISA the run uses */

#define DATA_DIR "/usr/share/libonnx-testdata/data"
#define RTOL 1e-3
#define ATOL 1e-7

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the entries of dir starting with prefix. */
static char **list_dir(const char *dir, const char *prefix, size_t *n)
{
    DIR *d = opendir(dir);
    *n = 0;
    if (d == NULL)
        return NULL;
    size_t cap = 64;
    char **v = malloc(cap * sizeof(char *));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (*n == cap)
            v = realloc(v, (cap *= 2) * sizeof(char *));
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(v, *n, sizeof(char *), cmp_names);
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

enum outcome { PASS, FAIL, SKIP };

static enum outcome compare(const struct coffer_nn_tensor *got, const struct coffer_nn_tensor *want, char *why,
                            size_t wn)
{
    if (got->dtype != want->dtype) {
        snprintf(why, wn, "dtype %s, expected %s", coffer_nn_dtype_name(got->dtype), coffer_nn_dtype_name(want->dtype));
        return FAIL;
    }
    if (got->rank != want->rank || memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)got->rank) != 0) {
        snprintf(why, wn, "shape differs (rank %d vs %d)", got->rank, want->rank);
        return FAIL;
    }
    size_t n = coffer_nn_tensor_count(want);
    for (size_t i = 0; i < n; i++) {
        if (want->dtype == COFFER_NN_FLOAT) {
            float a = ((const float *)got->data)[i], b = ((const float *)want->data)[i];
            if (isnan(a) && isnan(b))
                continue;
            if (isinf(b) && a == b)
                continue;
            if (!(fabs((double)a - b) <= ATOL + RTOL * fabs((double)b))) {
                snprintf(why, wn, "element %zu is %.9g, expected %.9g", i, (double)a, (double)b);
                return FAIL;
            }
        } else if (want->dtype == COFFER_NN_INT64) {
            if (((const int64_t *)got->data)[i] != ((const int64_t *)want->data)[i]) {
                snprintf(why, wn, "element %zu is %lld, expected %lld", i, (long long)((const int64_t *)got->data)[i],
                         (long long)((const int64_t *)want->data)[i]);
                return FAIL;
            }
        } else if ((((const uint8_t *)got->data)[i] != 0) != (((const uint8_t *)want->data)[i] != 0)) {
            snprintf(why, wn, "element %zu differs", i);
            return FAIL;
        }
    }
    return PASS;
}

static enum outcome read_tensor(const char *path, struct coffer_nn_tensor *t, char *why, size_t wn)
{
    size_t size;
    uint8_t *b = tu_read(path, &size);
    enum coffer_err r = coffer_nn_tensor_read_pb(b, size, t, NULL);
    free(b);
    if (r != COFFER_OK) {
        char msg[512];
        snprintf(why, wn, "%s: %s", strrchr(path, '/') + 1, coffer_err_format(r, msg, sizeof(msg)));
        return r == COFFER_E_UNSUPPORTED ? SKIP : FAIL;
    }
    return PASS;
}

static enum outcome run_dataset(struct coffer_nn_model *m, const char *dir, char *why, size_t wn)
{
    size_t nin = coffer_nn_model_input_count(m), nout = coffer_nn_model_output_count(m);
    size_t fin, fout;
    char **ins = list_dir(dir, "input_", &fin), **outs = list_dir(dir, "output_", &fout);
    struct coffer_nn_tensor *in = calloc(fin + 1, sizeof(*in)), *want = calloc(fout + 1, sizeof(*want)),
                            *got = calloc(nout + 1, sizeof(*got));
    enum outcome oc = PASS;
    char path[4096];
    if (fin != nin || fout != nout) {
        snprintf(why, wn, "data set has %zu inputs and %zu outputs, model %zu and %zu", fin, fout, nin, nout);
        oc = FAIL;
        goto out;
    }
    for (size_t i = 0; i < fin && oc == PASS; i++) {
        snprintf(path, sizeof(path), "%s/input_%zu.pb", dir, i);
        oc = read_tensor(path, &in[i], why, wn);
    }
    for (size_t i = 0; i < fout && oc == PASS; i++) {
        snprintf(path, sizeof(path), "%s/output_%zu.pb", dir, i);
        oc = read_tensor(path, &want[i], why, wn);
    }
    if (oc != PASS)
        goto out;
    enum coffer_err r = coffer_nn_model_run(m, in, nin, got, nout);
    if (r != COFFER_OK) {
        char msg[512];
        snprintf(why, wn, "run: %s", coffer_err_format(r, msg, sizeof(msg)));
        oc = r == COFFER_E_UNSUPPORTED ? SKIP : FAIL;
        goto out;
    }
    for (size_t i = 0; i < nout && oc == PASS; i++) {
        oc = compare(&got[i], &want[i], why, wn);
        if (oc != PASS) {
            char tmp[400];
            snprintf(tmp, sizeof(tmp), "output %zu: %s", i, why);
            snprintf(why, wn, "%s", tmp);
        }
    }
out:
    for (size_t i = 0; i < fin; i++)
        coffer_nn_tensor_release(&in[i]);
    for (size_t i = 0; i < fout; i++)
        coffer_nn_tensor_release(&want[i]);
    free(in);
    free(want);
    free(got);
    free_list(ins, fin);
    free_list(outs, fout);
    return oc;
}

static enum outcome run_case(const char *case_dir, char *why, size_t wn)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.onnx", case_dir);
    if (!exists(path)) {
        snprintf(why, wn, "no model.onnx");
        return FAIL;
    }
    size_t size;
    uint8_t *bytes = tu_read(path, &size);
    struct coffer_nn_model *m = NULL;
    enum coffer_err r = coffer_nn_model_load(bytes, size, &m);
    if (r != COFFER_OK) {
        char msg[512];
        snprintf(why, wn, "load: %s", coffer_err_format(r, msg, sizeof(msg)));
        free(bytes);
        return r == COFFER_E_UNSUPPORTED ? SKIP : FAIL;
    }
    size_t nsets;
    char **sets = list_dir(case_dir, "test_data_set_", &nsets);
    enum outcome oc = nsets ? PASS : FAIL;
    if (nsets == 0)
        snprintf(why, wn, "no test data sets");
    for (size_t i = 0; i < nsets && oc == PASS; i++) {
        snprintf(path, sizeof(path), "%s/%s", case_dir, sets[i]);
        oc = run_dataset(m, path, why, wn);
    }
    free_list(sets, nsets);
    coffer_nn_model_free(m);
    free(bytes);
    return oc;
}

void test_nn_conformance(void **state);

void test_nn_conformance(void **state)
{
    (void)state;
    if (!exists(DATA_DIR))
        skip(); /* libonnx-testdata is in tools/packages.txt; without it nothing can be checked */
    const char *no_isa;
    const struct nn_isa *isa = nn_isa_default(&no_isa);
    if (isa == NULL) { /* COFFER_NN_ISA names an ISA this CPU lacks: nothing to check here */
        printf("nn conformance: skipped: %s\n", no_isa);
        skip();
    }
    static const char *suites[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};
    const char *only = getenv("COFFER_NN_CONFORMANCE_ONLY"); /* a substring filter, for debugging */
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    bool verbose = getenv("COFFER_NN_VERBOSE") != NULL;
    coffer_log_set_level(COFFER_LOG_OFF);
    for (size_t s = 0; s < sizeof(suites) / sizeof(suites[0]); s++) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/%s", DATA_DIR, suites[s]);
        size_t n;
        char **cases = list_dir(dir, "test_", &n);
        int sp = 0, sf = 0, ss = 0;
        for (size_t i = 0; i < n; i++) {
            if (only != NULL && strstr(cases[i], only) == NULL)
                continue;
            char case_dir[4096 + 256], why[1024] = "";
            snprintf(case_dir, sizeof(case_dir), "%s/%s", dir, cases[i]);
            if (verbose)
                printf("nn conformance: run %s\n", case_dir);
            enum outcome oc = run_case(case_dir, why, sizeof(why));
            if (oc == PASS) {
                sp++;
            } else if (oc == SKIP) {
                ss++;
                printf("nn conformance: skip %s/%s: %s\n", suites[s], cases[i], why);
            } else {
                sf++;
                printf("nn conformance: FAIL %s/%s: %s\n", suites[s], cases[i], why);
            }
        }
        printf("nn conformance: suite %s: %d passed, %d failed, %d skipped\n", suites[s], sp, sf, ss);
        passed += sp;
        failed += sf;
        skipped += ss;
        free_list(cases, n);
    }
    coffer_log_set_level(COFFER_LOG_INFO);
    printf("nn conformance (%s kernels): %d passed, %d failed, %d skipped\n", isa->name, passed, failed, skipped);
    fflush(stdout);
    assert_int_equal(failed, 0);
    assert_true(passed > 0 || only != NULL);
}
