/* rest_predict_fuzz.c — a REST :predict JSON body -> tensors against
 * signatures of every REST dtype, under small limits; whatever is accepted
 * is written back in both response formats. Differential: the same body with
 * an extra top-level key (which TF ignores, and which keeps the parser off
 * its fast path) must give the same tensors, byte for byte. */
#include <stdlib.h>
#include <string.h>

#include "coffer/serve.h"
#include "serve_limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct coffer_serve_tensor_info one[] = {
    {.alias = "x", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 2, .dims = {-1, 3}},
};
static const struct coffer_serve_tensor_info many[] = {
    {.alias = "d", .dtype = COFFER_SERVE_DT_DOUBLE}, {.alias = "i8", .dtype = COFFER_SERVE_DT_INT8},
    {.alias = "u8", .dtype = COFFER_SERVE_DT_UINT8}, {.alias = "i16", .dtype = COFFER_SERVE_DT_INT16},
    {.alias = "u16", .dtype = COFFER_SERVE_DT_UINT16}, {.alias = "i32", .dtype = COFFER_SERVE_DT_INT32},
    {.alias = "u32", .dtype = COFFER_SERVE_DT_UINT32}, {.alias = "i64", .dtype = COFFER_SERVE_DT_INT64},
    {.alias = "u64", .dtype = COFFER_SERVE_DT_UINT64}, {.alias = "b", .dtype = COFFER_SERVE_DT_BOOL},
    {.alias = "s_bytes", .dtype = COFFER_SERVE_DT_STRING}, {.alias = "h", .dtype = COFFER_SERVE_DT_HALF},
};
static const struct coffer_serve_tensor_info strs[] = {
    {.alias = "s", .dtype = COFFER_SERVE_DT_STRING},
};
static const struct coffer_serve_signature sigs[] = {
    {.key = "serving_default", .inputs = one, .input_count = 1},
    {.key = "many", .inputs = many, .input_count = sizeof(many) / sizeof(many[0])},
    {.key = "str", .inputs = strs, .input_count = 1},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct coffer_serve_limits lim;
    fuzz_serve_limits(&lim);
    lim.max_message_size = 1 << 20;
    struct coffer_serve_rest_predict p;
    struct coffer_serve_status st;
    if (coffer_serve_rest_predict_parse(data, size, sigs, 3, &lim, &p, &st) != COFFER_OK) {
        if (st.code == COFFER_SERVE_OK || st.message[0] == '\0')
            abort(); /* every refusal carries a canonical code and a message */
        return 0;
    }
    /* the general parser on the same content: `{"~": 0, ...` */
    size_t i = 0;
    while (i < size && data[i] != '{')
        i++;
    uint8_t *alt = i < size ? malloc(size + 8) : NULL;
    if (alt != NULL) {
        memcpy(alt, data, i + 1);
        memcpy(alt + i + 1, "\"~\":0,", 6);
        memcpy(alt + i + 7, data + i + 1, size - i - 1);
        struct coffer_serve_rest_predict q;
        struct coffer_serve_status st2;
        if (coffer_serve_rest_predict_parse(alt, size + 6, sigs, 3, &lim, &q, &st2) == COFFER_OK) {
            if (q.input_count != p.input_count || q.format != p.format)
                abort();
            for (size_t k = 0; k < p.input_count; k++) {
                const struct coffer_serve_tensor *a = &p.inputs[k], *b = &q.inputs[k];
                if (a->dtype != b->dtype || a->rank != b->rank || a->count != b->count ||
                    memcmp(a->dims, b->dims, a->rank * sizeof(a->dims[0])) != 0 ||
                    (a->dtype != COFFER_SERVE_DT_STRING && memcmp(a->data, b->data, a->size) != 0))
                    abort();
            }
            coffer_serve_rest_predict_free(&q);
        }
        free(alt);
    }
    for (int f = COFFER_SERVE_REST_ROW; f <= COFFER_SERVE_REST_COLUMNAR; f++) {
        char *out;
        size_t n;
        if (coffer_serve_rest_predict_response((enum coffer_serve_rest_format)f, p.inputs, p.input_count, &out, &n,
                                               &st) == COFFER_OK) {
            if (strlen(out) != n)
                abort();
            coffer_free(out);
        }
    }
    coffer_serve_rest_predict_free(&p);
    return 0;
}
