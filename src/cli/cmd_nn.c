/*
 * cmd_nn.c — `coffer infer` and `coffer inspect`: the inference runtime
 * from the command line.
 *
 *   coffer infer MODEL.onnx -i IN_0 [-i IN_1 ...] -o OUTDIR [--npy]
 *   coffer inspect MODEL.onnx
 *
 * The model is read into secret memory (locked, wiped on free) and never
 * written anywhere; infer writes only the outputs, each atomically.
 * Inputs are ONNX TensorProto .pb files or NumPy .npy files, told apart by
 * their content.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coffer/nn.h"

#define MAX_INPUT_FILE ((size_t)4 << 30)

void cmd_infer_help(FILE *out)
{
    fprintf(out, "usage: coffer infer MODEL.onnx -i INPUT [-i INPUT ...] -o OUTDIR [--npy]\n\n"
                 "Run an ONNX model once. Inputs are TensorProto (.pb) or NumPy (.npy) files,\n"
                 "one per graph input, in the model's input order. Writes OUTDIR/output_N.pb\n"
                 "(and OUTDIR/output_N.npy with --npy) for each graph output.\n");
}

void cmd_inspect_help(FILE *out)
{
    fprintf(out, "usage: coffer inspect MODEL.onnx\n\n"
                 "Load and validate an ONNX model; print its inputs, outputs, op histogram,\n"
                 "parameter count, opset and the planned activation arena size.\n");
}

static enum coffer_err load_model(const char *path, struct coffer_secret **bytes, struct coffer_nn_model **m)
{
    enum coffer_err r = coffer_file_read_secret(path, COFFER_NN_MAX_MODEL_SIZE, bytes);
    if (r != COFFER_OK)
        return r;
    r = coffer_nn_model_load((*bytes)->data, (*bytes)->size, m);
    if (r != COFFER_OK) {
        coffer_secret_free(*bytes);
        *bytes = NULL;
    }
    return r;
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
    if (in_paths == NULL)
        return cli_fail("infer", COFFER_E_NOMEM);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-i") == 0 || strcmp(a, "--input") == 0) && i + 1 < argc) {
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
    struct coffer_secret *bytes = NULL;
    struct coffer_nn_model *m = NULL;
    struct coffer_nn_tensor *in = calloc(n_in + 1, sizeof(*in)), *out = NULL;
    enum coffer_err r = in ? load_model(model, &bytes, &m) : COFFER_E_NOMEM;
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
    coffer_secret_free(bytes);
    return rc;
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
    struct coffer_secret *bytes = NULL;
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
    }
    coffer_nn_model_free(m);
    coffer_secret_free(bytes);
    return r == COFFER_OK ? CLI_OK : cli_fail("inspect", r);
}
