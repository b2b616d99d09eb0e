/*
 * der.c — a small bounded DER reader for the certificate extensions coffer
 * parses itself (the SGX PCK extension, AMD VCEK values, RA-TLS).
 *
 * Design: one primitive, der_next, reads a tag-length-value through the
 * base/ cursor and hands back a child cursor over the value. Only what DER
 * allows: low-tag-number form, definite lengths in minimal encoding, at
 * most 4 length bytes. Callers walk nested structures with child cursors
 * and call coffer_rd_expect_end to reject trailing bytes.
 *
 * Invariants: I1 no byte outside the input is read (coffer_rd). I2 an
 * indefinite or non-minimal length is an error, never guessed at.
 * Trusts: nothing; input is attacker-controlled.
 */
#include "attest_int.h"

enum coffer_err coffer_attest__der_next(struct coffer_rd *rd, uint8_t *tag, struct coffer_rd *body)
{
    size_t start = rd->pos;
    uint8_t t, l0;
    enum coffer_err r;
    if ((r = coffer_rd_u8(rd, &t)) != COFFER_OK || (r = coffer_rd_u8(rd, &l0)) != COFFER_OK)
        goto fail;
    if ((t & 0x1f) == 0x1f) {
        r = COFFER_FAIL(COFFER_E_UNSUPPORTED, "DER: high tag number form at offset %zu", start);
        goto fail;
    }
    size_t len = l0;
    if (l0 & 0x80) {
        unsigned n = l0 & 0x7f;
        if (n == 0 || n > 4) {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "DER: %s length at offset %zu", n == 0 ? "indefinite" : "oversized",
                            start);
            goto fail;
        }
        len = 0;
        for (unsigned i = 0; i < n; i++) {
            uint8_t b;
            if ((r = coffer_rd_u8(rd, &b)) != COFFER_OK)
                goto fail;
            if (i == 0 && b == 0) {
                r = COFFER_FAIL(COFFER_E_MALFORMED, "DER: non-minimal length at offset %zu", start);
                goto fail;
            }
            len = (len << 8) | b;
        }
        if (len < 0x80) {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "DER: non-minimal length at offset %zu", start);
            goto fail;
        }
    }
    if ((r = coffer_rd_sub(rd, len, body)) != COFFER_OK)
        goto fail;
    *tag = t;
    return COFFER_OK;
fail:
    rd->pos = start;
    return r;
}

enum coffer_err coffer_attest__der_uint(const struct coffer_rd *body, uint64_t max, uint64_t *out)
{
    struct coffer_rd b = *body;
    size_t n = coffer_rd_left(&b);
    if (n == 0 || n > 9)
        return COFFER_FAIL(COFFER_E_MALFORMED, "DER INTEGER of %zu bytes", n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t x;
        if (coffer_rd_u8(&b, &x) != COFFER_OK)
            return COFFER_E_TRUNCATED;
        if (i == 0 && (x & 0x80))
            return COFFER_FAIL(COFFER_E_MALFORMED, "DER INTEGER is negative");
        if (i == 1 && v == 0 && !(x & 0x80))
            return COFFER_FAIL(COFFER_E_MALFORMED, "DER INTEGER is not minimal");
        if (i == 8 && v > (UINT64_MAX >> 8))
            return COFFER_FAIL(COFFER_E_RANGE, "DER INTEGER too large");
        v = (v << 8) | x;
    }
    if (v > max)
        return COFFER_FAIL(COFFER_E_RANGE, "DER INTEGER %llu over %llu", (unsigned long long)v,
                           (unsigned long long)max);
    *out = v;
    return COFFER_OK;
}
