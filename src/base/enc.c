/*
 * enc.c — hex and base64, strict in what they accept.
 *
 * Design: decoders read through the bounds-checked reader and reject
 * anything but the canonical alphabet; errors name the offending offset.
 * Decoding is not constant-time (it is used for keys read from files; the
 * timing reveals only where a malformed character sits).
 */
#include "coffer/base.h"

#include <string.h>

static const char hexdig[] = "0123456789abcdef";

void coffer_hex_encode(const void *data, size_t size, char *out)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < size; i++) {
        out[2 * i] = hexdig[p[i] >> 4];
        out[2 * i + 1] = hexdig[p[i] & 15];
    }
    out[2 * size] = '\0';
}

int coffer_hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

enum coffer_err coffer_hex_decode(const char *hex, size_t hex_len, void *out, size_t out_size)
{
    if (hex_len > 0 && hex[hex_len - 1] == '\n')
        hex_len--;
    if (hex_len > 0 && hex[hex_len - 1] == '\r')
        hex_len--;
    if (hex_len != 2 * out_size)
        return COFFER_FAIL(COFFER_E_MALFORMED, "hex string has %zu digits, expected %zu", hex_len, 2 * out_size);
    struct coffer_rd rd;
    coffer_rd_init(&rd, hex, hex_len);
    uint8_t *o = out;
    for (size_t i = 0; i < out_size; i++) {
        uint8_t hi, lo;
        enum coffer_err r;
        if ((r = coffer_rd_u8(&rd, &hi)) != COFFER_OK || (r = coffer_rd_u8(&rd, &lo)) != COFFER_OK)
            return r;
        int h = coffer_hex_digit(hi), l = coffer_hex_digit(lo);
        if (h < 0 || l < 0) {
            coffer_memzero(out, out_size);
            return COFFER_FAIL(COFFER_E_MALFORMED, "not a hex digit at offset %zu", h < 0 ? 2 * i : 2 * i + 1);
        }
        o[i] = (uint8_t)(h << 4 | l);
    }
    return COFFER_OK;
}

static const char b64dig[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void coffer_base64_encode(const void *data, size_t size, char *out)
{
    const uint8_t *p = data;
    size_t o = 0, i = 0;
    for (; i + 3 <= size; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64dig[v >> 18];
        out[o++] = b64dig[(v >> 12) & 63];
        out[o++] = b64dig[(v >> 6) & 63];
        out[o++] = b64dig[v & 63];
    }
    if (size - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64dig[v >> 18];
        out[o++] = b64dig[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (size - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64dig[v >> 18];
        out[o++] = b64dig[(v >> 12) & 63];
        out[o++] = b64dig[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
}

static int b64val(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

enum coffer_err coffer_base64_decode(const char *b64, size_t len, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    if (len % 4 != 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "base64 length %zu is not a multiple of 4", len);
    size_t pad = 0;
    if (len >= 1 && b64[len - 1] == '=')
        pad++;
    if (len >= 2 && b64[len - 2] == '=')
        pad++;
    size_t n = len / 4 * 3 - pad;
    uint8_t *o = coffer_malloc(n);
    if (o == NULL)
        return COFFER_E_NOMEM;
    struct coffer_rd rd;
    coffer_rd_init(&rd, b64, len);
    size_t w = 0;
    for (size_t q = 0; q < len / 4; q++) {
        uint32_t v = 0;
        bool last = q == len / 4 - 1;
        for (int k = 0; k < 4; k++) {
            uint8_t c;
            enum coffer_err r = coffer_rd_u8(&rd, &c);
            if (r != COFFER_OK) {
                coffer_free(o);
                return r;
            }
            int d = b64val(c);
            if (d < 0 && !(c == '=' && last && k >= 4 - (int)pad)) {
                coffer_free(o);
                return COFFER_FAIL(COFFER_E_MALFORMED, "invalid base64 character at offset %zu", q * 4 + (size_t)k);
            }
            v = v << 6 | (uint32_t)(d < 0 ? 0 : d);
        }
        uint8_t t[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        size_t take = last ? 3 - pad : 3;
        if (last && pad > 0 && ((pad == 1 && t[2] != 0) || (pad == 2 && t[1] != 0))) {
            coffer_free(o);
            return COFFER_FAIL(COFFER_E_MALFORMED, "non-canonical base64 padding bits");
        }
        memcpy(o + w, t, take);
        w += take;
    }
    *out = o;
    *out_size = n;
    return COFFER_OK;
}

enum coffer_err coffer_pem_append(struct coffer_buf *out, const char *label, const void *der, size_t size)
{
    size_t b64_len = coffer_base64_encoded_len(size);
    char *b64 = coffer_malloc(b64_len + 1);
    if (b64 == NULL)
        return COFFER_E_NOMEM;
    coffer_base64_encode(der, size, b64);
    enum coffer_err r = coffer_buf_printf(out, "-----BEGIN %s-----\n", label);
    for (size_t i = 0; i < b64_len && r == COFFER_OK; i += 64) {
        size_t n = b64_len - i < 64 ? b64_len - i : 64;
        if ((r = coffer_buf_put(out, b64 + i, n)) == COFFER_OK)
            r = coffer_buf_put_u8(out, '\n');
    }
    if (r == COFFER_OK)
        r = coffer_buf_printf(out, "-----END %s-----\n", label);
    coffer_memzero(b64, b64_len); /* the DER may be a private key */
    coffer_free(b64);
    return r;
}
