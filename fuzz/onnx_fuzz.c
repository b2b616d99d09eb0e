/* onnx_fuzz.c — the ONNX importer and planner (nn/onnx.c, nn/plan.c) over
 * arbitrary bytes; a model that loads is run once on zero inputs of its
 * declared shapes when the plan is small, so shape inference and the
 * kernels see what the validator let through. The same bytes also go to
 * the TensorProto and .npy readers. */
#include <stdlib.h>
#include <string.h>

#include "coffer/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RUN_ARENA_CAP ((size_t)4 << 20)
#define RUN_INPUT_CAP ((size_t)1 << 18)
#define RUN_WORK_CAP 2e6 /* the fuzz build runs kernels 50-100x slower */

static void try_run(struct coffer_nn_model *m)
{
    struct coffer_nn_info info;
    if (coffer_nn_model_info(m, &info) != COFFER_OK || info.arena_size > RUN_ARENA_CAP || info.work > RUN_WORK_CAP)
        return;
    size_t nin = coffer_nn_model_input_count(m), nout = coffer_nn_model_output_count(m);
    if (nin > 16 || nout > 16)
        return;
    struct coffer_nn_tensor in[16], out[16];
    memset(in, 0, sizeof(in));
    size_t total = 0;
    bool ok = true;
    for (size_t i = 0; i < nin && ok; i++) {
        struct coffer_nn_value_info vi;
        if (coffer_nn_model_input(m, i, &vi) != COFFER_OK || vi.rank < 0) {
            ok = false;
            break;
        }
        in[i].dtype = vi.dtype;
        in[i].rank = vi.rank;
        size_t n = 1;
        for (int k = 0; k < vi.rank; k++) {
            in[i].dims[k] = vi.dims[k] < 0 ? 1 : vi.dims[k];
            if (in[i].dims[k] > (int64_t)RUN_INPUT_CAP || (n *= (size_t)in[i].dims[k]) > RUN_INPUT_CAP)
                ok = false;
        }
        total += n;
        if (!ok || total > RUN_INPUT_CAP)
            break;
        in[i].size = n * coffer_nn_dtype_size(vi.dtype);
        in[i].data = calloc(1, in[i].size + 1);
    }
    if (ok && total <= RUN_INPUT_CAP) {
        enum coffer_err r = coffer_nn_model_run(m, in, nin, out, nout);
        (void)r;
    }
    for (size_t i = 0; i < nin; i++)
        free(in[i].data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct coffer_nn_model *m;
    if (coffer_nn_model_load(data, size, &m) == COFFER_OK) {
        try_run(m);
        coffer_nn_model_free(m);
    }
    struct coffer_nn_tensor t;
    char *name;
    if (coffer_nn_tensor_read_pb(data, size, &t, &name) == COFFER_OK) {
        coffer_free(name);
        coffer_nn_tensor_release(&t);
    }
    if (coffer_nn_tensor_read_npy(data, size, &t) == COFFER_OK)
        coffer_nn_tensor_release(&t);
    return 0;
}
