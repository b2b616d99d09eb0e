/* calib_fuzz.c — the int8 calibration table reader (nn/calib.c) over
 * arbitrary bytes, against a model of a few named values (one name with
 * spaces, one a prefix of another): a table it takes holds only finite
 * ranges, lo <= hi, each of one of those values. */
#include <math.h>
#include <string.h>

#include "nn_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"input", "conv1 out", "/layer1/Relu_output_0", "/layer1/Relu_output_00"};
    struct nn_val vals[4];
    memset(vals, 0, sizeof(vals));
    for (size_t i = 0; i < 4; i++)
        vals[i].name = names[i];
    struct coffer_nn_model *m = coffer_calloc(1, sizeof(*m));
    if (m == NULL)
        return 0;
    m->g.vals = vals;
    m->g.n_vals = 4;
    if (nn_calib_parse(m, data, size) == COFFER_OK) {
        size_t set = 0;
        for (size_t i = 0; i < 4; i++) {
            const struct nn_qrange *q = &m->qr[i];
            if (q->set && (!isfinite(q->lo) || !isfinite(q->hi) || q->lo > q->hi))
                __builtin_trap();
            set += q->set;
        }
        if (set == 0)
            __builtin_trap(); /* a table with no range is refused */
    }
    coffer_free(m->qr);
    coffer_free(m);
    return 0;
}
