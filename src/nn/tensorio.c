/*
 * tensorio.c — tensors in and out of files: ONNX TensorProto (.pb) and
 * NumPy .npy.
 *
 * Design: a .pb is parsed with the importer's own TensorProto reader
 * (onnx.c) into a scratch arena and then copied into one coffer_malloc
 * block the caller owns. A .npy header is a small Python dict literal; we
 * accept exactly the keys descr, fortran_order and shape, with the three
 * descriptors coffer computes in ('<f4', '<i8', '|b1'), and check that the
 * data that follows has exactly the announced size.
 *
 * Trusts: nothing in the bytes.
 */
#include "nn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void coffer_nn_tensor_release(struct coffer_nn_tensor *t)
{
    if (t == NULL)
        return;
    coffer_free(t->data);
    memset(t, 0, sizeof(*t));
}

static enum coffer_err copy_out(const struct nn_tdata *td, struct coffer_nn_tensor *out)
{
    size_t bytes = td->count * coffer_nn_dtype_size(td->dtype);
    void *p = coffer_malloc(bytes ? bytes : 1);
    if (p == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "tensor of %zu bytes", bytes);
    memcpy(p, td->data, bytes);
    out->dtype = td->dtype;
    out->rank = td->rank;
    memcpy(out->dims, td->dims, sizeof(out->dims));
    out->data = p;
    out->size = bytes;
    return COFFER_OK;
}

enum coffer_err coffer_nn_tensor_read_pb(const void *bytes, size_t size, struct coffer_nn_tensor *out, char **name)
{
    memset(out, 0, sizeof(*out));
    if (name)
        *name = NULL;
    struct coffer_arena *a;
    enum coffer_err r = coffer_arena_new(4096, &a);
    if (r != COFFER_OK)
        return r;
    struct coffer_rd rd;
    coffer_rd_init(&rd, bytes, size);
    struct nn_tdata td;
    size_t copied = 0;
    r = nn_tensor_parse(a, &rd, &td, &copied, false);
    if (r == COFFER_OK)
        r = copy_out(&td, out);
    if (r == COFFER_OK && name) {
        *name = coffer_strdup(td.name);
        if (*name == NULL) {
            coffer_nn_tensor_release(out);
            r = COFFER_FAIL(COFFER_E_NOMEM, "tensor name");
        }
    }
    coffer_arena_free(a);
    if (r != COFFER_OK)
        coffer_err_context("reading TensorProto");
    return r;
}

/* ----------------------------------------------------------------- npy */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\t'))
        p++;
    return p;
}

static enum coffer_err npy_header(const char *h, size_t len, struct coffer_nn_tensor *out)
{
    const char *end = h + len, *p = skip_ws(h, end);
    bool got_descr = false, got_order = false, got_shape = false;
    if (p >= end || *p++ != '{')
        return COFFER_FAIL(COFFER_E_MALFORMED, "npy: header is not a dict");
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == '}')
            break;
        char key[32];
        size_t k = 0;
        if (p >= end || *p != '\'')
            return COFFER_FAIL(COFFER_E_MALFORMED, "npy: expected a quoted key");
        for (p++; p < end && *p != '\'' && k < sizeof(key) - 1; p++)
            key[k++] = *p;
        key[k] = 0;
        if (p >= end || *p != '\'')
            return COFFER_FAIL(COFFER_E_MALFORMED, "npy: bad key");
        p = skip_ws(p + 1, end);
        if (p >= end || *p++ != ':')
            return COFFER_FAIL(COFFER_E_MALFORMED, "npy: expected ':'");
        p = skip_ws(p, end);
        if (strcmp(key, "descr") == 0) {
            char d[16];
            k = 0;
            if (p >= end || *p != '\'')
                return COFFER_FAIL(COFFER_E_MALFORMED, "npy: descr is not a string");
            for (p++; p < end && *p != '\'' && k < sizeof(d) - 1; p++)
                d[k++] = *p;
            d[k] = 0;
            if (p >= end)
                return COFFER_FAIL(COFFER_E_MALFORMED, "npy: bad descr");
            p++;
            if (strcmp(d, "<f4") == 0)
                out->dtype = COFFER_NN_FLOAT;
            else if (strcmp(d, "<i8") == 0)
                out->dtype = COFFER_NN_INT64;
            else if (strcmp(d, "|b1") == 0)
                out->dtype = COFFER_NN_BOOL;
            else
                return COFFER_FAIL(COFFER_E_UNSUPPORTED, "npy: dtype '%s' is not supported (<f4, <i8, |b1 are)", d);
            got_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (end - p >= 5 && memcmp(p, "False", 5) == 0)
                p += 5;
            else if (end - p >= 4 && memcmp(p, "True", 4) == 0)
                return COFFER_FAIL(COFFER_E_UNSUPPORTED, "npy: Fortran order is not supported");
            else
                return COFFER_FAIL(COFFER_E_MALFORMED, "npy: bad fortran_order");
            got_order = true;
        } else if (strcmp(key, "shape") == 0) {
            if (p >= end || *p++ != '(')
                return COFFER_FAIL(COFFER_E_MALFORMED, "npy: shape is not a tuple");
            out->rank = 0;
            for (;;) {
                p = skip_ws(p, end);
                if (p < end && *p == ')') {
                    p++;
                    break;
                }
                if (p >= end || *p < '0' || *p > '9')
                    return COFFER_FAIL(COFFER_E_MALFORMED, "npy: bad shape");
                if (out->rank >= COFFER_NN_MAX_RANK)
                    return COFFER_FAIL(COFFER_E_UNSUPPORTED, "npy: rank over %d", COFFER_NN_MAX_RANK);
                int64_t v = 0;
                while (p < end && *p >= '0' && *p <= '9') {
                    if (v > (INT64_MAX - 9) / 10)
                        return COFFER_FAIL(COFFER_E_TOO_LARGE, "npy: dimension too large");
                    v = v * 10 + (*p++ - '0');
                }
                out->dims[out->rank++] = v;
                p = skip_ws(p, end);
                if (p < end && *p == ',')
                    p++;
            }
            got_shape = true;
        } else {
            return COFFER_FAIL(COFFER_E_MALFORMED, "npy: unknown header key '%s'", key);
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p++;
    }
    if (!got_descr || !got_order || !got_shape)
        return COFFER_FAIL(COFFER_E_MALFORMED, "npy: header lacks descr, fortran_order or shape");
    return COFFER_OK;
}

enum coffer_err coffer_nn_tensor_read_npy(const void *bytes, size_t size, struct coffer_nn_tensor *out)
{
    memset(out, 0, sizeof(*out));
    struct coffer_rd rd;
    coffer_rd_init(&rd, bytes, size);
    const uint8_t *magic;
    uint8_t major, minor;
    enum coffer_err r = coffer_rd_bytes(&rd, 6, &magic);
    if (r != COFFER_OK)
        return r;
    if (memcmp(magic, "\x93NUMPY", 6) != 0)
        return COFFER_FAIL(COFFER_E_BAD_HEADER, "npy: bad magic");
    if ((r = coffer_rd_u8(&rd, &major)) != COFFER_OK || (r = coffer_rd_u8(&rd, &minor)) != COFFER_OK)
        return r;
    size_t hlen;
    if (major == 1) {
        uint16_t h;
        if ((r = coffer_rd_u16le(&rd, &h)) != COFFER_OK)
            return r;
        hlen = h;
    } else if (major == 2 || major == 3) {
        uint32_t h;
        if ((r = coffer_rd_u32le(&rd, &h)) != COFFER_OK)
            return r;
        hlen = h;
    } else {
        return COFFER_FAIL(COFFER_E_BAD_VERSION, "npy: version %u.%u", major, minor);
    }
    const uint8_t *h;
    if ((r = coffer_rd_bytes(&rd, hlen, &h)) != COFFER_OK)
        return r;
    struct coffer_nn_tensor t = {0};
    if ((r = npy_header((const char *)h, hlen, &t)) != COFFER_OK)
        return r;
    size_t n = coffer_nn_tensor_count(&t), nbytes;
    if (n == SIZE_MAX || n > COFFER_NN_MAX_ELEMS || !coffer_size_mul(n, coffer_nn_dtype_size(t.dtype), &nbytes))
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "npy: too many elements");
    if (coffer_rd_left(&rd) != nbytes)
        return COFFER_FAIL(COFFER_E_MALFORMED, "npy: %zu data nbytes, shape needs %zu", coffer_rd_left(&rd), nbytes);
    t.data = coffer_malloc(nbytes ? nbytes : 1);
    if (t.data == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "npy data");
    memcpy(t.data, rd.data + rd.pos, nbytes);
    t.size = nbytes;
    *out = t;
    return COFFER_OK;
}

enum coffer_err coffer_nn_tensor_read_any(const void *bytes, size_t size, struct coffer_nn_tensor *out)
{
    if (size >= 6 && memcmp(bytes, "\x93NUMPY", 6) == 0)
        return coffer_nn_tensor_read_npy(bytes, size, out);
    return coffer_nn_tensor_read_pb(bytes, size, out, NULL);
}

enum coffer_err coffer_nn_tensor_write_pb(const struct coffer_nn_tensor *t, const char *name, struct coffer_buf *b)
{
    enum coffer_err r = COFFER_OK;
    for (int k = 0; k < t->rank && r == COFFER_OK; k++) {
        r = coffer_buf_put_varint(b, (1 << 3) | PB_VARINT);
        if (r == COFFER_OK)
            r = coffer_buf_put_varint(b, (uint64_t)t->dims[k]);
    }
    if (r == COFFER_OK)
        r = coffer_buf_put_varint(b, (2 << 3) | PB_VARINT);
    if (r == COFFER_OK)
        r = coffer_buf_put_varint(b, (uint64_t)t->dtype);
    if (r == COFFER_OK && name != NULL && name[0] != '\0') {
        r = coffer_buf_put_varint(b, (8 << 3) | PB_LEN);
        if (r == COFFER_OK)
            r = coffer_buf_put_varint(b, strlen(name));
        if (r == COFFER_OK)
            r = coffer_buf_put(b, name, strlen(name));
    }
    if (r == COFFER_OK)
        r = coffer_buf_put_varint(b, (9 << 3) | PB_LEN);
    if (r == COFFER_OK)
        r = coffer_buf_put_varint(b, t->size);
    if (r == COFFER_OK)
        r = coffer_buf_put(b, t->data, t->size);
    return r;
}

enum coffer_err coffer_nn_tensor_write_npy(const struct coffer_nn_tensor *t, struct coffer_buf *b)
{
    const char *descr = t->dtype == COFFER_NN_FLOAT ? "<f4" : t->dtype == COFFER_NN_INT64 ? "<i8"
                        : t->dtype == COFFER_NN_BOOL ? "|b1" : NULL;
    if (descr == NULL)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "npy: dtype %s", coffer_nn_dtype_name(t->dtype));
    char h[256];
    int n = snprintf(h, sizeof(h), "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int k = 0; k < t->rank; k++)
        n += snprintf(h + n, sizeof(h) - (size_t)n, "%lld%s", (long long)t->dims[k],
                      (t->rank == 1 || k + 1 < t->rank) ? ", " : "");
    n += snprintf(h + n, sizeof(h) - (size_t)n, "), }");
    /* pad with spaces so that magic + header is a multiple of 64, ending in \n */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    enum coffer_err r = coffer_buf_put(b, "\x93NUMPY\x01\x00", 8);
    if (r == COFFER_OK)
        r = coffer_buf_put_u16le(b, (uint16_t)((size_t)n + pad + 1));
    if (r == COFFER_OK)
        r = coffer_buf_put(b, h, (size_t)n);
    for (size_t i = 0; i < pad && r == COFFER_OK; i++)
        r = coffer_buf_put_u8(b, ' ');
    if (r == COFFER_OK)
        r = coffer_buf_put_u8(b, '\n');
    if (r == COFFER_OK)
        r = coffer_buf_put(b, t->data, t->size);
    return r;
}
