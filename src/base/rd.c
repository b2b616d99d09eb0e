/*
 * rd.c — the bounds-checked reader every parser of outside bytes uses.
 *
 * Design: a cursor (data, size, pos) over borrowed bytes. Each primitive
 * checks the bytes left before it reads, and on failure returns an error
 * naming the offset and how much was needed, without moving the cursor.
 * Errors are per call, not sticky (STYLE §3.8): code cannot act on a value
 * that was never read.
 *
 * Invariants: I1 pos <= size at all times. I2 no byte outside
 * [data, data+size) is ever read.
 */
#include "coffer/base.h"

#include <string.h>

void coffer_rd_init(struct coffer_rd *rd, const void *data, size_t size)
{
    rd->data = data;
    rd->size = data != NULL ? size : 0;
    rd->pos = 0;
}

static enum coffer_err need(const struct coffer_rd *rd, size_t n)
{
    if (n > rd->size - rd->pos)
        return COFFER_FAIL(COFFER_E_TRUNCATED, "need %zu bytes at offset %zu, %zu left", n, rd->pos,
                           rd->size - rd->pos);
    return COFFER_OK;
}

enum coffer_err coffer_rd_u8(struct coffer_rd *rd, uint8_t *out)
{
    enum coffer_err r = need(rd, 1);
    if (r != COFFER_OK)
        return r;
    *out = rd->data[rd->pos++];
    return COFFER_OK;
}

#define RD_LE(name, type, nbytes)                                   \
    enum coffer_err name(struct coffer_rd *rd, type *out)           \
    {                                                               \
        enum coffer_err r = need(rd, nbytes);                       \
        if (r != COFFER_OK)                                         \
            return r;                                               \
        type v = 0;                                                 \
        for (int i = (nbytes) - 1; i >= 0; i--)                     \
            v = (type)((v << 8) | rd->data[rd->pos + (size_t)i]);   \
        rd->pos += nbytes;                                          \
        *out = v;                                                   \
        return COFFER_OK;                                           \
    }
#define RD_BE(name, type, nbytes)                                   \
    enum coffer_err name(struct coffer_rd *rd, type *out)           \
    {                                                               \
        enum coffer_err r = need(rd, nbytes);                       \
        if (r != COFFER_OK)                                         \
            return r;                                               \
        type v = 0;                                                 \
        for (size_t i = 0; i < (nbytes); i++)                       \
            v = (type)((v << 8) | rd->data[rd->pos + i]);           \
        rd->pos += nbytes;                                          \
        *out = v;                                                   \
        return COFFER_OK;                                           \
    }

RD_LE(coffer_rd_u16le, uint16_t, 2)
RD_LE(coffer_rd_u32le, uint32_t, 4)
RD_LE(coffer_rd_u64le, uint64_t, 8)
RD_BE(coffer_rd_u16be, uint16_t, 2)
RD_BE(coffer_rd_u32be, uint32_t, 4)
RD_BE(coffer_rd_u64be, uint64_t, 8)

enum coffer_err coffer_rd_bytes(struct coffer_rd *rd, size_t n, const uint8_t **out)
{
    enum coffer_err r = need(rd, n);
    if (r != COFFER_OK)
        return r;
    *out = rd->data + rd->pos;
    rd->pos += n;
    return COFFER_OK;
}

enum coffer_err coffer_rd_copy(struct coffer_rd *rd, void *dst, size_t n)
{
    enum coffer_err r = need(rd, n);
    if (r != COFFER_OK)
        return r;
    if (n > 0)
        memcpy(dst, rd->data + rd->pos, n);
    rd->pos += n;
    return COFFER_OK;
}

enum coffer_err coffer_rd_skip(struct coffer_rd *rd, size_t n)
{
    enum coffer_err r = need(rd, n);
    if (r != COFFER_OK)
        return r;
    rd->pos += n;
    return COFFER_OK;
}

enum coffer_err coffer_rd_sub(struct coffer_rd *rd, size_t n, struct coffer_rd *child)
{
    enum coffer_err r = need(rd, n);
    if (r != COFFER_OK)
        return r;
    coffer_rd_init(child, rd->data + rd->pos, n);
    rd->pos += n;
    return COFFER_OK;
}

enum coffer_err coffer_rd_varint(struct coffer_rd *rd, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = rd->pos;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (rd->pos >= rd->size) {
            rd->pos = start;
            return COFFER_FAIL(COFFER_E_TRUNCATED, "varint at offset %zu runs past the end", start);
        }
        uint8_t b = rd->data[rd->pos++];
        if (shift == 63 && (b & 0x7e) != 0) {
            rd->pos = start;
            return COFFER_FAIL(COFFER_E_MALFORMED, "varint at offset %zu overflows 64 bits", start);
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return COFFER_OK;
        }
    }
    rd->pos = start;
    return COFFER_FAIL(COFFER_E_MALFORMED, "varint at offset %zu is longer than 10 bytes", start);
}

enum coffer_err coffer_rd_expect_end(const struct coffer_rd *rd)
{
    if (rd->pos != rd->size)
        return COFFER_FAIL(COFFER_E_TRAILING, "%zu unexpected bytes at offset %zu", rd->size - rd->pos, rd->pos);
    return COFFER_OK;
}
