/*
 * tensor.c — the neutral tensor: allocation, string elements, freeing.
 *
 * Design: a tensor owns its name and one data block; DT_STRING tensors own
 * an array of (pointer, size) elements, each separately allocated. Shapes
 * are validated (dims >= 0, product fits size_t) before anything is
 * allocated from them.
 *
 * Invariants: I1 count == product(dims[0..rank)); I2 numeric data holds
 * exactly count * dtype_size bytes; I3 a freed tensor is all zeros, so a
 * second free is harmless.
 *
 * Trusts: callers to have capped dims against their limits (the decoders
 * do); this file only guards against overflow.
 */
#include "serve_int.h"

#include <string.h>

enum coffer_err coffer_serve_tensor_init(struct coffer_serve_tensor *t, const char *name,
                                         enum coffer_serve_dtype dtype, size_t rank, const int64_t *dims)
{
    return coffer_serve__tensor_alloc(t, name, dtype, rank, dims, true);
}

/* see serve_int.h */
enum coffer_err coffer_serve__tensor_alloc(struct coffer_serve_tensor *t, const char *name,
                                           enum coffer_serve_dtype dtype, size_t rank, const int64_t *dims, bool zero)
{
    memset(t, 0, sizeof(*t));
    if (!coffer_serve_dtype_supported((int)dtype))
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "tensor: unsupported dtype %d", (int)dtype);
    if (rank > COFFER_SERVE_MAX_RANK)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "tensor: rank %zu over %d", rank, COFFER_SERVE_MAX_RANK);
    size_t count;
    if (!coffer_serve__dims_count(dims, rank, &count))
        return COFFER_FAIL(COFFER_E_SHAPE, "tensor: negative dimension or element count overflow");
    size_t esize = dtype == COFFER_SERVE_DT_STRING ? sizeof(struct coffer_serve_bytes) : coffer_serve_dtype_size(dtype);
    size_t size;
    if (!coffer_size_mul(count, esize, &size))
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "tensor: %zu elements overflow the size", count);
    struct coffer_serve_tensor n = {.dtype = dtype, .rank = rank, .count = count, .size = size};
    if (rank > 0)
        memcpy(n.dims, dims, rank * sizeof(dims[0]));
    if (name != NULL && (n.name = coffer_strdup(name)) == NULL)
        return COFFER_E_NOMEM;
    /* STRING elements are always zeroed: empty strings until set */
    n.data = zero || dtype == COFFER_SERVE_DT_STRING ? coffer_calloc(size ? size : 1, 1) : coffer_malloc(size);
    if (n.data == NULL) {
        coffer_free(n.name);
        return COFFER_E_NOMEM;
    }
    *t = n;
    return COFFER_OK;
}

enum coffer_err coffer_serve_tensor_set_string(struct coffer_serve_tensor *t, size_t i, const void *data, size_t size)
{
    if (t->dtype != COFFER_SERVE_DT_STRING || i >= t->count)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "tensor: string element %zu of %zu", i, t->count);
    struct coffer_serve_bytes *e = (struct coffer_serve_bytes *)t->data + i;
    uint8_t *copy = coffer_malloc(size ? size : 1);
    if (copy == NULL)
        return COFFER_E_NOMEM;
    if (size)
        memcpy(copy, data, size);
    coffer_free(e->data);
    e->data = copy;
    e->size = size;
    return COFFER_OK;
}

void coffer_serve_tensor_free(struct coffer_serve_tensor *t)
{
    if (t == NULL)
        return;
    /* tensors carry user data: wiped before they are freed */
    if (t->dtype == COFFER_SERVE_DT_STRING && t->data != NULL) {
        struct coffer_serve_bytes *e = t->data;
        for (size_t i = 0; i < t->count; i++) {
            if (e[i].data != NULL)
                coffer_memzero(e[i].data, e[i].size);
            coffer_free(e[i].data);
        }
    }
    if (t->data != NULL)
        coffer_memzero(t->data, t->size);
    coffer_free(t->data);
    coffer_free(t->name);
    memset(t, 0, sizeof(*t));
}

void coffer_serve_tensors_free(struct coffer_serve_tensor *ts, size_t count)
{
    if (ts == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        coffer_serve_tensor_free(&ts[i]);
    coffer_free(ts);
}

void coffer_serve_model_spec_free(struct coffer_serve_model_spec *spec)
{
    if (spec == NULL)
        return;
    coffer_free(spec->name);
    coffer_free(spec->version_label);
    coffer_free(spec->signature_name);
    memset(spec, 0, sizeof(*spec));
}
