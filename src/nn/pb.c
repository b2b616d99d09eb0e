/*
 * pb.c — protocol-buffers wire format over the bounds-checked reader.
 *
 * Design: pb_next reads one key and its value; a length-delimited value is
 * handed back as a child reader over exactly its bytes, so nested messages
 * are parsed with the same cursor discipline and can never read past their
 * parent. Nothing here allocates.
 *
 * Invariants: I1 every byte read goes through coffer_rd_*; I2 field number 0,
 * groups (wire types 3, 4) and wire types 6, 7 are rejected as malformed.
 *
 * Trusts: nothing; the bytes are the model file.
 */
#include "nn_int.h"

enum coffer_err pb_next(struct coffer_rd *rd, struct pb_field *f)
{
    uint64_t key;
    enum coffer_err r = coffer_rd_varint(rd, &key);
    if (r != COFFER_OK)
        return r;
    f->num = (uint32_t)(key >> 3);
    f->wire = (uint32_t)(key & 7);
    f->v = 0;
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return COFFER_FAIL(COFFER_E_MALFORMED, "protobuf: bad field number %llu at offset %zu",
                           (unsigned long long)(key >> 3), rd->pos);
    switch (f->wire) {
    case PB_VARINT:
        return coffer_rd_varint(rd, &f->v);
    case PB_I64:
        return coffer_rd_u64le(rd, &f->v);
    case PB_I32: {
        uint32_t v;
        r = coffer_rd_u32le(rd, &v);
        f->v = v;
        return r;
    }
    case PB_LEN: {
        uint64_t len;
        r = coffer_rd_varint(rd, &len);
        if (r != COFFER_OK)
            return r;
        if (len > coffer_rd_left(rd))
            return COFFER_FAIL(COFFER_E_TRUNCATED, "protobuf: field %u claims %llu bytes at offset %zu, %zu left",
                               f->num, (unsigned long long)len, rd->pos, coffer_rd_left(rd));
        return coffer_rd_sub(rd, (size_t)len, &f->sub);
    }
    default:
        return COFFER_FAIL(COFFER_E_MALFORMED, "protobuf: field %u has unsupported wire type %u", f->num, f->wire);
    }
}

enum coffer_err pb_count(const struct pb_field *f, uint32_t scalar_wire, size_t *n)
{
    *n = 0;
    if (f->wire == scalar_wire) {
        *n = 1;
        return COFFER_OK;
    }
    if (f->wire != PB_LEN)
        return COFFER_FAIL(COFFER_E_MALFORMED, "protobuf: field %u has wire type %u, expected %u or packed",
                           f->num, f->wire, scalar_wire);
    size_t len = f->sub.size - f->sub.pos;
    if (scalar_wire == PB_I32) {
        if (len % 4 != 0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "protobuf: packed field %u of %zu bytes is not whole 32-bit values",
                               f->num, len);
        *n = len / 4;
    } else if (scalar_wire == PB_I64) {
        if (len % 8 != 0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "protobuf: packed field %u of %zu bytes is not whole 64-bit values",
                               f->num, len);
        *n = len / 8;
    } else {
        struct coffer_rd s = f->sub;
        size_t k = 0;
        while (coffer_rd_left(&s) > 0) {
            uint64_t v;
            enum coffer_err r = coffer_rd_varint(&s, &v);
            if (r != COFFER_OK)
                return r;
            k++;
        }
        *n = k;
    }
    return COFFER_OK;
}
