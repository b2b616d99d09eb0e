/*
 * buf.c — a growable byte builder with a hard cap.
 *
 * Design: doubling growth; a secret buffer never uses realloc (which could
 * leave a copy behind) but allocates, copies and wipes the old block.
 * Invariants: I1 size <= cap; I2 size <= max; I3 a secret buffer leaves no
 * unwiped block behind.
 */
#include "coffer/base.h"

#include <stdio.h>
#include <string.h>

void coffer_buf_init(struct coffer_buf *b, size_t max, bool secret)
{
    memset(b, 0, sizeof(*b));
    b->max = max == 0 ? SIZE_MAX : max;
    b->secret = secret;
}

enum coffer_err coffer_buf_reserve(struct coffer_buf *b, size_t extra)
{
    size_t want;
    if (!coffer_size_add(b->size, extra, &want) || want > b->max)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "buffer would grow past its cap of %zu bytes", b->max);
    if (want <= b->cap)
        return COFFER_OK;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    if (cap > b->max)
        cap = b->max;
    uint8_t *p;
    if (b->secret) {
        p = coffer_malloc(cap);
        if (p == NULL)
            return COFFER_E_NOMEM;
        if (b->size > 0)
            memcpy(p, b->data, b->size);
        if (b->data != NULL) {
            coffer_memzero(b->data, b->cap);
            coffer_free(b->data);
        }
    } else {
        p = coffer_realloc(b->data, cap);
        if (p == NULL)
            return COFFER_E_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return COFFER_OK;
}

enum coffer_err coffer_buf_put(struct coffer_buf *b, const void *p, size_t n)
{
    enum coffer_err r = coffer_buf_reserve(b, n);
    if (r != COFFER_OK)
        return r;
    if (n > 0)
        memcpy(b->data + b->size, p, n);
    b->size += n;
    return COFFER_OK;
}

enum coffer_err coffer_buf_put_u8(struct coffer_buf *b, uint8_t v) { return coffer_buf_put(b, &v, 1); }

enum coffer_err coffer_buf_put_u16le(struct coffer_buf *b, uint16_t v)
{
    uint8_t t[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return coffer_buf_put(b, t, 2);
}

enum coffer_err coffer_buf_put_u32le(struct coffer_buf *b, uint32_t v)
{
    uint8_t t[4];
    coffer_store_u32le(t, v);
    return coffer_buf_put(b, t, 4);
}

enum coffer_err coffer_buf_put_u64le(struct coffer_buf *b, uint64_t v)
{
    uint8_t t[8];
    coffer_store_u64le(t, v);
    return coffer_buf_put(b, t, 8);
}

enum coffer_err coffer_buf_put_u32be(struct coffer_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return coffer_buf_put(b, t, 4);
}

enum coffer_err coffer_buf_put_varint(struct coffer_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        t[n++] = (uint8_t)(c | (v != 0 ? 0x80 : 0));
    } while (v != 0);
    return coffer_buf_put(b, t, n);
}

enum coffer_err coffer_buf_printf(struct coffer_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "bad format string");
    }
    enum coffer_err r = coffer_buf_reserve(b, (size_t)n + 1);
    if (r != COFFER_OK) {
        va_end(ap2);
        return r;
    }
    vsnprintf((char *)b->data + b->size, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->size += (size_t)n; /* the NUL stays in reserve, not in size */
    return COFFER_OK;
}

void coffer_buf_reset(struct coffer_buf *b)
{
    if (b->secret && b->data != NULL)
        coffer_memzero(b->data, b->cap);
    b->size = 0;
}

uint8_t *coffer_buf_steal(struct coffer_buf *b, size_t *size)
{
    uint8_t *p = b->data;
    if (size != NULL)
        *size = b->size;
    b->data = NULL;
    b->size = b->cap = 0;
    return p;
}

void coffer_buf_free(struct coffer_buf *b)
{
    if (b->data != NULL) {
        if (b->secret)
            coffer_memzero(b->data, b->cap);
        coffer_free(b->data);
    }
    b->data = NULL;
    b->size = b->cap = 0;
}
