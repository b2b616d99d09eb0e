/*
 * cmd_nn.c — `coffer infer` and `coffer inspect`: the inference runtime
 * from the command line.
 *
 *   coffer infer MODEL.onnx -i IN_0 [-i IN_1 ...] -o OUTDIR [--npy] [--threads T] [--precision P]
 *                [--calibration TABLE]
 *   coffer inspect MODEL.onnx
 *   coffer bench MODEL.onnx [--batch N] [--threads T] [--runs R] [--warmup W] [--precision P]
 *                [--calibration TABLE] [--input ONE.f32] [--ref OUT.f32] [--profile]
 *   coffer calibrate MODEL.onnx --input SAMPLES.f32 -o TABLE [--batch N] [--threads T]
 *
 * The model is read into secret memory (locked, wiped on free) and never
 * written anywhere; infer writes only the outputs, each atomically.
 * Inputs are ONNX TensorProto .pb files or NumPy .npy files, told apart by
 * their content.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "coffer/nn.h"

#define MAX_INPUT_FILE ((size_t)4 << 30)

#define PRECISION_HELP                                                                                         \
    "--precision bf16: the direct convolutions on the blocked channel layout take\n"                            \
    "bfloat16 inputs and weights with float32 sums (needs AVX512_BF16); the rest stays\n"                       \
    "float32. --precision int8: the same convolutions (3x3 ones too, instead of\n"                              \
    "Winograd) in 8-bit integers (needs AVX512_VNNI), their inputs quantized with the\n"                        \
    "ranges of --calibration TABLE (coffer calibrate writes one; default:\n"                                    \
    "COFFER_NN_CALIBRATION). Default: COFFER_NN_PRECISION from the environment, else f32.\n"

void cmd_infer_help(FILE *out)
{
    fprintf(out, "usage: coffer infer MODEL.onnx -i INPUT [-i INPUT ...] -o OUTDIR [--npy] [--threads T]\n"
                 "                    [--precision f32|bf16|int8] [--calibration TABLE]\n\n"
                 "Run an ONNX model once. Inputs are TensorProto (.pb) or NumPy (.npy) files,\n"
                 "one per graph input, in the model's input order. Writes OUTDIR/output_N.pb\n"
                 "(and OUTDIR/output_N.npy with --npy) for each graph output. --threads: kernel\n"
                 "threads (default: one per CPU this process may run on).\n"
                 PRECISION_HELP);
}

void cmd_inspect_help(FILE *out)
{
    fprintf(out, "usage: coffer inspect MODEL.onnx\n\n"
                 "Load and validate an ONNX model; print its inputs, outputs, op histogram,\n"
                 "parameter count, opset and the planned activation arena size.\n");
}

void cmd_bench_help(FILE *out)
{
    fprintf(out, "usage: coffer bench MODEL.onnx [--batch N] [--threads T] [--runs R] [--warmup W]\n"
                 "                    [--input ONE.f32] [--ref OUT.f32] [--profile] [--precision f32|bf16|int8]\n"
                 "                    [--calibration TABLE]\n\n"
                 "Time inference of a one-input float model: W untimed runs (default 5), then R\n"
                 "timed runs (default 20) at batch N (the model's first dimension; default: the\n"
                 "model's own if fixed, else 1).\n"
                 "The input is sin(i) * 0.5, or --input (raw float32 of one item, repeated for\n"
                 "each item of the batch). --ref compares output 0 with a raw float32 file.\n"
                 "Prints one JSON line: median_ms, min_ms, p90_ms (per batch), ms_per_img,\n"
                 "img_per_s, peak_rss_mb, load_ms (parse, plan, pack weights), isa, threads,\n"
                 "precision.\n"
                 "--profile: also time every node over the timed runs and print to stderr the\n"
                 "time per op type and kernel, and the slowest nodes, with GFLOP/s.\n" PRECISION_HELP);
}

void cmd_calibrate_help(FILE *out)
{
    fprintf(out, "usage: coffer calibrate MODEL.onnx --input SAMPLES.f32 -o TABLE [--batch N] [--threads T]\n\n"
                 "Write the calibration table that --precision int8 needs: run a one-input float\n"
                 "model in float32 on representative inputs (SAMPLES.f32: raw float32, one item\n"
                 "after another, the model's input shape without its batch dimension) in batches\n"
                 "of N (default 1), recording the range of every value a convolution on the\n"
                 "blocked channel layout reads; TABLE gets one 'LO HI NAME' line a value. The\n"
                 "ranges are as wide as the samples make them: give inputs like those the model\n"
                 "will serve (a few dozen to a few hundred).\n");
}

/* threads = 0: the library's default. The model file is mapped, not read into fresh memory: these commands
 * take a plain ONNX file that is already on disk in the clear (protected
 * models go through coffer serve or coffer run, into secret memory). Fresh
 * memory is what a load waits on where a VM's host backs a page only when
 * it is first touched (200 MiB in 175-315 ms after a few idle seconds,
 * 20 ms straight after another process freed some): resnet50 (97 MiB)
 * loaded in 342-666 ms read, 135-386 mapped after 6 s idle, and in
 * 163-346 against 129-169 ms back to back. Once loaded, the mapping's
 * pages leave the resident set (coffer_file_map_release): the packed
 * weights are what the runs read, and a re-plan for another shape faults
 * the raw ones back in (resnet50 b8 peak RSS 390 -> 315 MiB). */
struct load_opts {
    int threads;
    enum coffer_nn_precision prec;
    const char *calib_path; /* the calibration table's file, or NULL */
    bool calibrate;
};

static enum coffer_err load_model_threads(const char *path, const struct load_opts *lo,
                                          struct coffer_file_map *bytes, struct coffer_nn_model **m)
{
    struct coffer_nn_options opts = {.threads = lo->threads, .precision = lo->prec, .calibrate = lo->calibrate};
    uint8_t *calib = NULL;
    enum coffer_err r = COFFER_OK;
    if (lo->calib_path != NULL) {
        if ((r = coffer_file_read_all(lo->calib_path, 16 << 20, &calib, &opts.calibration_size)) != COFFER_OK) {
            coffer_err_context("--calibration");
            return r;
        }
        opts.calibration = (const char *)calib;
    }
    r = coffer_file_map(path, COFFER_NN_MAX_MODEL_SIZE, bytes);
    if (r != COFFER_OK) {
        coffer_free(calib);
        return r;
    }
    r = coffer_nn_model_load_opts(bytes->data, bytes->size, &opts, m);
    coffer_free(calib);
    if (r != COFFER_OK)
        coffer_file_unmap(bytes);
    else /* the weights are packed; the raw bytes are read again only by a re-plan */
        coffer_file_map_release(bytes);
    return r;
}

static enum coffer_err load_model(const char *path, struct coffer_file_map *bytes, struct coffer_nn_model **m)
{
    struct load_opts lo = {.prec = COFFER_NN_DEFAULT};
    return load_model_threads(path, &lo, bytes, m);
}

/* --precision's value, or -1 after a usage message. */
static int parse_precision(const char *cmd, const char *v)
{
    if (strcmp(v, "f32") == 0)
        return COFFER_NN_F32;
    if (strcmp(v, "bf16") == 0)
        return COFFER_NN_BF16;
    if (strcmp(v, "int8") == 0)
        return COFFER_NN_PREC_INT8;
    cli_usage(cmd, "--precision: '%s' (expected f32, bf16 or int8)", v);
    return -1;
}

/* A whole number in [lo, hi] for option opt, or -1 after a usage message. */
static long parse_count(const char *cmd, const char *opt, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi) {
        cli_usage(cmd, "%s wants a whole number from %ld to %ld, got '%s'", opt, lo, hi, v);
        return -1;
    }
    return n;
}

static void print_dims(FILE *f, int rank, const int64_t *dims)
{
    fputc('[', f);
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0)
            fprintf(f, "%s?", k ? ", " : "");
        else
            fprintf(f, "%s%lld", k ? ", " : "", (long long)dims[k]);
    }
    fputc(']', f);
}

static enum coffer_err write_out(const char *dir, size_t i, const char *ext, const struct coffer_nn_tensor *t,
                                 const char *name)
{
    struct coffer_buf b;
    coffer_buf_init(&b, 0, false);
    enum coffer_err r = strcmp(ext, "npy") == 0 ? coffer_nn_tensor_write_npy(t, &b) : coffer_nn_tensor_write_pb(t, name, &b);
    if (r == COFFER_OK) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/output_%zu.%s", dir, i, ext);
        r = coffer_file_write_atomic(path, b.data, b.size, 0600);
        if (r == COFFER_OK)
            printf("%s\n", path);
    }
    coffer_buf_free(&b);
    return r;
}

int cmd_infer(int argc, char **argv)
{
    const char *model = NULL, *outdir = NULL;
    const char **in_paths = calloc((size_t)argc + 1, sizeof(char *));
    size_t n_in = 0;
    bool npy = false;
    int rc = CLI_FAIL;
    long threads = 0;
    int prec = COFFER_NN_DEFAULT;
    const char *calib = NULL;
    if (in_paths == NULL)
        return cli_fail("infer", COFFER_E_NOMEM);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--precision") == 0 && i + 1 < argc) {
            if ((prec = parse_precision("infer", argv[++i])) < 0) {
                free(in_paths);
                return CLI_USAGE;
            }
        } else if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
            if ((threads = parse_count("infer", a, argv[++i], 1, COFFER_NN_MAX_THREADS)) < 0) {
                free(in_paths);
                return CLI_USAGE;
            }
        } else if (strcmp(a, "--calibration") == 0 && i + 1 < argc) {
            calib = argv[++i];
        } else if ((strcmp(a, "-i") == 0 || strcmp(a, "--input") == 0) && i + 1 < argc) {
            in_paths[n_in++] = argv[++i];
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && i + 1 < argc) {
            outdir = argv[++i];
        } else if (strcmp(a, "--npy") == 0) {
            npy = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cmd_infer_help(stdout);
            free(in_paths);
            return CLI_OK;
        } else if (a[0] == '-' || model != NULL) {
            free(in_paths);
            return cli_usage("infer", "unexpected argument '%s'", a);
        } else {
            model = a;
        }
    }
    if (model == NULL || outdir == NULL) {
        free(in_paths);
        return cli_usage("infer", "MODEL and -o OUTDIR are required");
    }
    struct coffer_file_map bytes = {0};
    struct coffer_nn_model *m = NULL;
    struct coffer_nn_tensor *in = calloc(n_in + 1, sizeof(*in)), *out = NULL;
    struct load_opts lo = {.threads = (int)threads, .prec = (enum coffer_nn_precision)prec, .calib_path = calib};
    enum coffer_err r = in ? load_model_threads(model, &lo, &bytes, &m) : COFFER_E_NOMEM;
    if (r != COFFER_OK) {
        cli_fail("infer", r);
        goto done;
    }
    size_t need = coffer_nn_model_input_count(m), nout = coffer_nn_model_output_count(m);
    if (n_in != need) {
        rc = cli_usage("infer", "the model has %zu inputs, %zu given with -i", need, n_in);
        goto done;
    }
    for (size_t i = 0; i < n_in; i++) {
        uint8_t *data;
        size_t size;
        r = coffer_file_read_all(in_paths[i], MAX_INPUT_FILE, &data, &size);
        if (r == COFFER_OK) {
            r = coffer_nn_tensor_read_any(data, size, &in[i]);
            coffer_free(data);
        }
        if (r != COFFER_OK) {
            coffer_err_context("input %zu (%s)", i, in_paths[i]);
            cli_fail("infer", r);
            goto done;
        }
    }
    out = calloc(nout + 1, sizeof(*out));
    if (out == NULL || (r = coffer_nn_model_run(m, in, n_in, out, nout)) != COFFER_OK) {
        cli_fail("infer", out ? r : COFFER_E_NOMEM);
        goto done;
    }
    if ((r = coffer_mkdir_p(outdir, 0700)) != COFFER_OK) {
        cli_fail("infer", r);
        goto done;
    }
    for (size_t i = 0; i < nout; i++) {
        struct coffer_nn_value_info vi;
        if ((r = coffer_nn_model_output(m, i, &vi)) != COFFER_OK || (r = write_out(outdir, i, "pb", &out[i], vi.name)) ||
            (npy && (r = write_out(outdir, i, "npy", &out[i], vi.name)))) {
            cli_fail("infer", r);
            goto done;
        }
    }
    rc = CLI_OK;
done:
    for (size_t i = 0; i < n_in && in; i++)
        coffer_nn_tensor_release(&in[i]);
    free(in);
    free(out);
    free(in_paths);
    coffer_nn_model_free(m);
    coffer_file_unmap(&bytes);
    return rc;
}

/* One metadata_props entry: a value of several lines (a label list) as its
 * first line and the count; long values cut. */
static void print_meta(const char *key, const char *value, void *arg)
{
    (void)arg;
    size_t first = strcspn(value, "\n"), lines = 1;
    for (const char *p = value; (p = strchr(p, '\n')) != NULL; p++)
        lines += p[1] != '\0';
    int show = first > 60 ? 60 : (int)first;
    printf("metadata: %s = %.*s%s", key, show, value, first > 60 ? "..." : "");
    if (lines > 1)
        printf(" (%zu lines)", lines);
    printf("\n");
}

static void print_op(const char *op, size_t count, void *arg)
{
    (void)arg;
    printf("  %-24s %zu\n", op, count);
}

static void print_value(const struct coffer_nn_value_info *vi)
{
    printf("  %-24s %-8s ", vi->name, coffer_nn_dtype_name(vi->dtype));
    if (vi->rank < 0)
        printf("(unknown shape)");
    else
        print_dims(stdout, vi->rank, vi->dims);
    printf("\n");
}

int cmd_inspect(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        cmd_inspect_help(stdout);
        return CLI_OK;
    }
    if (argc != 2 || argv[1][0] == '-')
        return cli_usage("inspect", "expected exactly one MODEL.onnx");
    struct coffer_file_map bytes = {0};
    struct coffer_nn_model *m = NULL;
    enum coffer_err r = load_model(argv[1], &bytes, &m);
    if (r != COFFER_OK)
        return cli_fail("inspect", r);
    struct coffer_nn_info info;
    r = coffer_nn_model_info(m, &info);
    if (r == COFFER_OK) {
        printf("model: %s\n", argv[1]);
        printf("ir_version: %lld\nopset: %lld\nproducer: %s\n", (long long)info.ir_version, (long long)info.opset,
               info.producer[0] ? info.producer : "(none)");
        if (r == COFFER_OK)
            r = coffer_nn_model_metadata_each(m, print_meta, NULL);
        printf("inputs:\n");
        for (size_t i = 0; i < coffer_nn_model_input_count(m); i++) {
            struct coffer_nn_value_info vi;
            if (coffer_nn_model_input(m, i, &vi) == COFFER_OK)
                print_value(&vi);
        }
        printf("outputs:\n");
        for (size_t i = 0; i < coffer_nn_model_output_count(m); i++) {
            struct coffer_nn_value_info vi;
            if (coffer_nn_model_output(m, i, &vi) == COFFER_OK)
                print_value(&vi);
        }
        printf("ops (%zu nodes):\n", info.node_count);
        coffer_nn_model_ops(m, print_op, NULL);
        printf("parameters: %zu (%zu bytes; %zu bytes copied for alignment, the rest used in place)\n",
               info.param_count, info.param_size, info.weights_copied);
        if (info.arena_size > 0 || info.live_node_count > 0)
            printf("nodes after folding and dead-node removal: %zu\n", info.live_node_count);
        printf("arena: %zu bytes (planned for the declared input shapes, symbolic dimensions as 1)\n",
               info.arena_size);
        printf("work: %.4g multiply-adds per run (as planned)\n", info.work);
        printf("kernels: %s, %d thread%s; %zu bytes of packed weights\n", info.isa, info.threads,
               info.threads == 1 ? "" : "s", info.packed_size);
    }
    coffer_nn_model_free(m);
    coffer_file_unmap(&bytes);
    return r == COFFER_OK ? CLI_OK : cli_fail("inspect", r);
}

/* ------------------------------------------------------------------ bench */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Fill t (float32, dims set) from a raw float32 file of one item, repeated. */
static enum coffer_err fill_input(struct coffer_nn_tensor *t, size_t per_item, const char *path)
{
    float *x = t->data;
    size_t n = t->size / sizeof(float);
    if (path == NULL) {
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(sin((double)i) * 0.5);
        return COFFER_OK;
    }
    uint8_t *data;
    size_t size;
    enum coffer_err r = coffer_file_read_all(path, MAX_INPUT_FILE, &data, &size);
    if (r != COFFER_OK)
        return r;
    if (size < per_item * sizeof(float)) {
        coffer_free(data);
        return COFFER_FAIL(COFFER_E_SHAPE, "%s: %zu bytes, one item needs %zu", path, size, per_item * sizeof(float));
    }
    for (size_t i = 0; per_item > 0 && i < n; i += per_item)
        memcpy(x + i, data, per_item * sizeof(float));
    coffer_free(data);
    return COFFER_OK;
}

/* --profile: per (op type, kernel) totals and the slowest nodes */
#define PROF_GROUPS 64
#define PROF_TOP 25
struct prof {
    struct {
        char key[64];
        double ms, work;
        int n;
    } grp[PROF_GROUPS];
    int n_grp;
    struct coffer_nn_node_time top[PROF_TOP];
    int n_top;
    double total;
};

static void prof_node(const struct coffer_nn_node_time *t, void *arg)
{
    struct prof *p = arg;
    p->total += t->ms;
    char key[64];
    snprintf(key, sizeof(key), "%s/%s", t->op_type, t->kernel);
    int g = 0;
    while (g < p->n_grp && strcmp(p->grp[g].key, key) != 0)
        g++;
    if (g == p->n_grp && g < PROF_GROUPS)
        snprintf(p->grp[p->n_grp++].key, sizeof(p->grp[0].key), "%s", key);
    if (g < p->n_grp) {
        p->grp[g].ms += t->ms;
        p->grp[g].work += t->work;
        p->grp[g].n++;
    }
    int i = p->n_top < PROF_TOP ? p->n_top++ : PROF_TOP - 1;
    if (i == PROF_TOP - 1 && p->n_top == PROF_TOP && p->top[i].ms >= t->ms)
        return;
    for (; i > 0 && p->top[i - 1].ms < t->ms; i--)
        p->top[i] = p->top[i - 1];
    p->top[i] = *t;
}

static double gflops(double work, double ms)
{
    return ms > 0 ? 2.0 * work / ms / 1e6 : 0.0;
}

static void prof_print(const struct coffer_nn_model *m)
{
    struct prof *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return;
    coffer_nn_model_profile(m, prof_node, p);
    fprintf(stderr, "profile: %.3f ms per run in nodes\n%-36s %5s %10s %6s %8s\n", p->total, "op/kernel", "nodes",
            "ms/run", "%", "GFLOP/s");
    for (int g = 0; g < p->n_grp; g++)
        fprintf(stderr, "%-36s %5d %10.3f %6.1f %8.1f\n", p->grp[g].key, p->grp[g].n, p->grp[g].ms,
                p->total > 0 ? 100.0 * p->grp[g].ms / p->total : 0.0, gflops(p->grp[g].work, p->grp[g].ms));
    fprintf(stderr, "%-36s %-20s %10s %6s %8s\n", "slowest nodes", "op/kernel", "ms/run", "%", "GFLOP/s");
    for (int i = 0; i < p->n_top; i++) {
        char key[64];
        snprintf(key, sizeof(key), "%s/%s", p->top[i].op_type, p->top[i].kernel);
        char name[40];
        if (p->top[i].name[0] != '\0')
            snprintf(name, sizeof(name), "%s", p->top[i].name);
        else
            snprintf(name, sizeof(name), "(node %zu)", p->top[i].index);
        fprintf(stderr, "%-36.36s %-20s %10.3f %6.1f %8.1f\n", name, key, p->top[i].ms,
                p->total > 0 ? 100.0 * p->top[i].ms / p->total : 0.0, gflops(p->top[i].work, p->top[i].ms));
    }
    free(p);
}

int cmd_bench(int argc, char **argv)
{
    const char *model = NULL, *in_path = NULL, *ref_path = NULL;
    long batch = 0, threads = 0, runs = 20, warmup = 5; /* batch 0: the model's, or 1 */
    bool profile = false;
    int prec = COFFER_NN_DEFAULT;
    const char *calib = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long *dst = strcmp(a, "--batch") == 0 ? &batch : strcmp(a, "--threads") == 0 ? &threads
                    : strcmp(a, "--runs") == 0  ? &runs
                    : strcmp(a, "--warmup") == 0 ? &warmup : NULL;
        long hi = dst == &threads ? COFFER_NN_MAX_THREADS : 1000000;
        if (dst != NULL && i + 1 < argc) {
            if ((*dst = parse_count("bench", a, argv[++i], dst == &warmup ? 0 : 1, hi)) < 0)
                return CLI_USAGE;
        } else if (strcmp(a, "--input") == 0 && i + 1 < argc) {
            in_path = argv[++i];
        } else if (strcmp(a, "--ref") == 0 && i + 1 < argc) {
            ref_path = argv[++i];
        } else if (strcmp(a, "--profile") == 0) {
            profile = true;
        } else if (strcmp(a, "--calibration") == 0 && i + 1 < argc) {
            calib = argv[++i];
        } else if (strcmp(a, "--precision") == 0 && i + 1 < argc) {
            if ((prec = parse_precision("bench", argv[++i])) < 0)
                return CLI_USAGE;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cmd_bench_help(stdout);
            return CLI_OK;
        } else if (a[0] == '-' || model != NULL) {
            return cli_usage("bench", "unexpected argument '%s'", a);
        } else {
            model = a;
        }
    }
    if (model == NULL)
        return cli_usage("bench", "MODEL is required");
    struct coffer_file_map bytes = {0};
    struct coffer_nn_model *m = NULL;
    double *times = NULL;
    struct coffer_nn_tensor in = {0};
    int rc = CLI_FAIL;
    double t0 = now_ms();
    struct load_opts lo = {.threads = (int)threads, .prec = (enum coffer_nn_precision)prec, .calib_path = calib};
    enum coffer_err r = load_model_threads(model, &lo, &bytes, &m);
    double load_ms = now_ms() - t0;
    if (r != COFFER_OK)
        return cli_fail("bench", r);
    struct coffer_nn_value_info vi;
    struct coffer_nn_info info;
    if (coffer_nn_model_input_count(m) != 1 || coffer_nn_model_output_count(m) < 1 ||
        coffer_nn_model_input(m, 0, &vi) != COFFER_OK || vi.dtype != COFFER_NN_FLOAT || vi.rank < 1) {
        rc = cli_usage("bench", "the model must have one float32 input with a batch dimension");
        goto done;
    }
    if (batch == 0)
        batch = vi.dims[0] > 0 ? vi.dims[0] : 1;
    in.dtype = COFFER_NN_FLOAT;
    in.rank = vi.rank;
    size_t per_item = 1;
    for (int k = 0; k < vi.rank; k++) {
        in.dims[k] = k == 0 ? batch : (vi.dims[k] < 0 ? 1 : vi.dims[k]);
        if (k > 0)
            per_item *= (size_t)in.dims[k];
    }
    if (vi.dims[0] >= 0 && vi.dims[0] != batch) {
        rc = cli_usage("bench", "the model's batch dimension is fixed at %lld", (long long)vi.dims[0]);
        goto done;
    }
    in.size = per_item * (size_t)batch * sizeof(float);
    times = calloc((size_t)runs, sizeof(double));
    if (times == NULL || (in.data = coffer_malloc(in.size ? in.size : 1)) == NULL) {
        r = COFFER_E_NOMEM;
        cli_fail("bench", r);
        goto done;
    }
    if ((r = fill_input(&in, per_item, in_path)) != COFFER_OK) {
        cli_fail("bench", r);
        goto done;
    }
    struct coffer_nn_tensor out;
    for (long i = 0; i < warmup + runs; i++) {
        if (profile && i == warmup)
            coffer_nn_model_set_profiling(m, true);
        double s = now_ms();
        if ((r = coffer_nn_model_run(m, &in, 1, &out, 1)) != COFFER_OK) {
            cli_fail("bench", r);
            goto done;
        }
        if (i >= warmup)
            times[i - warmup] = now_ms() - s;
    }
    if (warmup + runs == 0)
        goto done;
    char err_s[64] = "null";
    if (ref_path != NULL) {
        uint8_t *data;
        size_t size;
        if ((r = coffer_file_read_all(ref_path, MAX_INPUT_FILE, &data, &size)) != COFFER_OK) {
            cli_fail("bench", r);
            goto done;
        }
        const float *y = out.data;
        size_t n = size / sizeof(float), have = out.size / sizeof(float);
        double e = 0;
        for (size_t i = 0; i < n && i < have; i++) {
            float w;
            memcpy(&w, data + i * sizeof(float), sizeof(w));
            e = fmax(e, fabs((double)y[i] - (double)w));
        }
        coffer_free(data);
        snprintf(err_s, sizeof(err_s), "%.6g", e);
    }
    qsort(times, (size_t)runs, sizeof(double), cmp_double);
    double med = times[runs / 2];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (coffer_nn_model_info(m, &info) != COFFER_OK)
        goto done;
    const char *slash = strrchr(model, '/');
    printf("{\"runtime\":\"coffer %s\",\"model\":\"%s\",\"batch\":%ld,\"threads\":%d,\"isa\":\"%s\","
           "\"precision\":\"%s\","
           "\"median_ms\":%.3f,\"min_ms\":%.3f,\"p90_ms\":%.3f,\"ms_per_img\":%.3f,\"img_per_s\":%.1f,"
           "\"peak_rss_mb\":%.1f,\"load_ms\":%.1f,\"max_abs_err_vs_torch\":%s}\n",
           COFFER_VERSION_STRING, slash ? slash + 1 : model, batch, info.threads, info.isa, info.precision, med,
           times[0],
           times[(size_t)((double)runs * 0.9)], med / (double)batch, 1000.0 * (double)batch / med,
           (double)ru.ru_maxrss / 1024.0, load_ms, err_s);
    if (profile)
        prof_print(m);
    rc = CLI_OK;
done:
    coffer_free(in.data);
    free(times);
    coffer_nn_model_free(m);
    coffer_file_unmap(&bytes);
    return rc;
}

int cmd_calibrate(int argc, char **argv)
{
    const char *model = NULL, *in_path = NULL, *out_path = NULL;
    long batch = 1, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--batch") == 0 || strcmp(a, "--threads") == 0) && i + 1 < argc) {
            long *dst = a[2] == 'b' ? &batch : &threads;
            if ((*dst = parse_count("calibrate", a, argv[++i], 1, a[2] == 'b' ? 1000000 : COFFER_NN_MAX_THREADS)) < 0)
                return CLI_USAGE;
        } else if ((strcmp(a, "-i") == 0 || strcmp(a, "--input") == 0) && i + 1 < argc) {
            in_path = argv[++i];
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cmd_calibrate_help(stdout);
            return CLI_OK;
        } else if (a[0] == '-' || model != NULL) {
            return cli_usage("calibrate", "unexpected argument '%s'", a);
        } else {
            model = a;
        }
    }
    if (model == NULL || in_path == NULL || out_path == NULL)
        return cli_usage("calibrate", "MODEL, --input SAMPLES.f32 and -o TABLE are required");
    struct coffer_file_map bytes = {0};
    struct coffer_nn_model *m = NULL;
    uint8_t *samples = NULL;
    char *table = NULL;
    int rc = CLI_FAIL;
    struct load_opts lo = {.threads = (int)threads, .prec = COFFER_NN_F32, .calibrate = true};
    enum coffer_err r = load_model_threads(model, &lo, &bytes, &m);
    if (r != COFFER_OK)
        return cli_fail("calibrate", r);
    struct coffer_nn_value_info vi;
    if (coffer_nn_model_input_count(m) != 1 || coffer_nn_model_input(m, 0, &vi) != COFFER_OK ||
        vi.dtype != COFFER_NN_FLOAT || vi.rank < 1) {
        rc = cli_usage("calibrate", "the model must have one float32 input with a batch dimension");
        goto done;
    }
    size_t per_item = 1, size = 0;
    for (int k = 1; k < vi.rank; k++)
        per_item *= (size_t)(vi.dims[k] < 0 ? 1 : vi.dims[k]);
    if ((r = coffer_file_read_all(in_path, MAX_INPUT_FILE, &samples, &size)) != COFFER_OK) {
        coffer_err_context("--input");
        cli_fail("calibrate", r);
        goto done;
    }
    size_t item_bytes = per_item * sizeof(float), items = size / item_bytes;
    if (size == 0 || size % item_bytes != 0) {
        rc = cli_usage("calibrate", "%s: %zu bytes, not a whole number of items of %zu floats", in_path, size,
                       per_item);
        goto done;
    }
    if (vi.dims[0] > 0)
        batch = vi.dims[0];
    if (items % (size_t)batch != 0 && vi.dims[0] > 0) {
        rc = cli_usage("calibrate", "%zu items do not fill whole batches of %ld (the model's)", items, batch);
        goto done;
    }
    struct coffer_progress prog;
    coffer_progress_init(&prog, "calibrate", items);
    for (size_t off = 0; off < items; off += (size_t)batch) {
        size_t nb = items - off < (size_t)batch ? items - off : (size_t)batch;
        struct coffer_nn_tensor in = {.dtype = COFFER_NN_FLOAT, .rank = vi.rank,
                                      .data = samples + off * item_bytes, .size = nb * item_bytes};
        for (int k = 0; k < vi.rank; k++)
            in.dims[k] = k == 0 ? (int64_t)nb : (vi.dims[k] < 0 ? 1 : vi.dims[k]);
        struct coffer_nn_tensor out;
        if ((r = coffer_nn_model_run(m, &in, 1, &out, 0)) != COFFER_OK) {
            coffer_progress_finish(&prog);
            cli_fail("calibrate", r);
            goto done;
        }
        coffer_progress_update(&prog, off + nb);
    }
    coffer_progress_finish(&prog);
    size_t tsize;
    if ((r = coffer_nn_calibration_table(m, &table, &tsize)) != COFFER_OK ||
        (r = coffer_file_write_atomic(out_path, table, tsize, 0644)) != COFFER_OK) {
        cli_fail("calibrate", r);
        goto done;
    }
    size_t ranges = 0;
    for (size_t i = 0; i < tsize; i++)
        ranges += table[i] == '\n';
    fprintf(stderr, "calibrate: %zu items in batches of %ld, %zu ranges -> %s\n", items, batch, ranges - 1, out_path);
    rc = CLI_OK;
done:
    coffer_free(table);
    coffer_free(samples);
    coffer_nn_model_free(m);
    coffer_file_unmap(&bytes);
    return rc;
}
