/*
 * http1.c — the HTTP/1.1 request parser (RFC 9112) and the chunked decoder.
 *
 * Purpose: turn bytes from a TLS connection into a request head and a body,
 * or into a precise error the server maps to 400, 413, 431, 501 or 505.
 *
 * Design: the head parser works on one contiguous slice: it first looks for
 * the blank line (CRLF CRLF) within max_size bytes, then walks the head
 * through a coffer_rd cursor, one byte class at a time. Strings are
 * NUL-terminated in place at delimiter offsets the cursor reported, so the
 * request needs no copies. The chunked decoder is a push state machine: it
 * takes any slice, consumes what it can and appends data to a capped buffer,
 * so a body can arrive in any split.
 *
 * Invariants: I1 no byte outside the given slice is read (all reads go
 * through coffer_rd; offsets written to are < size). I2 strictness where
 * ambiguity enables request smuggling: CRLF line ends only, no obs-fold, no
 * Transfer-Encoding together with Content-Length, Content-Length values all
 * identical and decimal, the only transfer coding is "chunked". I3 the body
 * never grows past its cap: a chunk size is checked against the room left
 * before any data is read.
 *
 * Trusts: nothing in the input. Threading: pure functions over caller state.
 */
#include "net_int.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar. */
static bool is_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_field_vchar(uint8_t c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* Read one byte that must be want. */
static enum coffer_err expect_byte(struct coffer_rd *rd, uint8_t want, const char *what)
{
    uint8_t c;
    if (coffer_rd_u8(rd, &c) != COFFER_OK || c != want)
        return COFFER_FAIL(COFFER_E_MALFORMED, "expected %s at offset %zu", what, rd->pos);
    return COFFER_OK;
}

/* Move past one byte the caller has peeked. */
static void skip1(struct coffer_rd *rd)
{
    uint8_t c;
    if (coffer_rd_u8(rd, &c) != COFFER_OK)
        return;
}

/* Peek the next byte without moving (false at the end). */
static bool peek(const struct coffer_rd *rd, uint8_t *c)
{
    struct coffer_rd t = *rd;
    return coffer_rd_u8(&t, c) == COFFER_OK;
}

static bool token_has(const char *list, const char *tok)
{
    /* comma-separated, case-insensitive, blanks ignored */
    size_t n = strlen(tok);
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *s = p;
        while (*p != '\0' && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == n && strncasecmp(s, tok, n) == 0)
            return true;
    }
    return false;
}

static enum coffer_err parse_length(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    size_t digits = 0;
    for (; *v != '\0'; v++, digits++) {
        if (*v < '0' || *v > '9' || digits >= 18)
            return COFFER_FAIL(COFFER_E_MALFORMED, "Content-Length is not a decimal number");
        n = n * 10 + (uint64_t)(*v - '0');
    }
    if (digits == 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "empty Content-Length");
    *out = n;
    return COFFER_OK;
}

/* see net_int.h */
enum coffer_err coffer_net__http1_parse_head(uint8_t *buf, size_t size, size_t max_size,
                                             struct coffer_net__http1_head *out, size_t *consumed)
{
    *consumed = 0;
    size_t scan = size < max_size ? size : max_size;
    const uint8_t *end = scan >= 4 ? memmem(buf, scan, "\r\n\r\n", 4) : NULL;
    if (end == NULL) {
        if (size >= max_size)
            return COFFER_FAIL(COFFER_E_TOO_LARGE, "request head over %zu bytes", max_size);
        return COFFER_OK; /* incomplete */
    }
    size_t head_size = (size_t)(end - buf) + 4;

    memset(out, 0, sizeof(*out));
    struct coffer_rd rd;
    coffer_rd_init(&rd, buf, head_size);
    uint8_t c;
    enum coffer_err r;

    /* request-line = method SP request-target SP HTTP-version CRLF */
    size_t m0 = rd.pos;
    while (peek(&rd, &c) && is_tchar(c))
        skip1(&rd);
    size_t mlen = rd.pos - m0;
    if (mlen == 0 || mlen > 32)
        return COFFER_FAIL(COFFER_E_MALFORMED, "bad method token");
    size_t m_end = rd.pos;
    if ((r = expect_byte(&rd, ' ', "SP after method")) != COFFER_OK)
        return r;
    size_t t0 = rd.pos, q = 0;
    bool has_q = false;
    while (peek(&rd, &c) && c > 0x20 && c < 0x7f) {
        if (c == '?' && !has_q) {
            has_q = true;
            q = rd.pos;
        }
        skip1(&rd);
    }
    size_t t_end = rd.pos;
    if (t_end == t0 || buf[t0] != '/')
        return COFFER_FAIL(COFFER_E_MALFORMED, "request target must be an absolute path");
    if ((r = expect_byte(&rd, ' ', "SP after target")) != COFFER_OK)
        return r;
    const uint8_t *ver;
    if (coffer_rd_bytes(&rd, 8, &ver) != COFFER_OK || memcmp(ver, "HTTP/1.", 7) != 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "bad HTTP version");
    if (ver[7] != '0' && ver[7] != '1')
        return COFFER_FAIL(COFFER_E_BAD_VERSION, "HTTP version 1.%c not supported", ver[7]);
    out->minor = ver[7] - '0';
    if ((r = expect_byte(&rd, '\r', "CR after version")) != COFFER_OK ||
        (r = expect_byte(&rd, '\n', "LF after version")) != COFFER_OK)
        return r;
    buf[m_end] = '\0';
    buf[t_end] = '\0';
    if (has_q)
        buf[q] = '\0';
    out->method = (char *)buf + m0;
    out->path = (char *)buf + t0;
    out->query = has_q ? (char *)buf + q + 1 : (char *)buf + t_end;

    /* header fields until the empty line */
    for (;;) {
        if (peek(&rd, &c) && c == '\r') {
            if ((r = expect_byte(&rd, '\r', "CR")) != COFFER_OK || (r = expect_byte(&rd, '\n', "LF")) != COFFER_OK)
                return r;
            break;
        }
        if (out->header_count == COFFER_NET__MAX_HEADERS)
            return COFFER_FAIL(COFFER_E_TOO_LARGE, "more than %d header fields", COFFER_NET__MAX_HEADERS);
        size_t n0 = rd.pos;
        while (peek(&rd, &c) && is_tchar(c))
            skip1(&rd);
        size_t n_end = rd.pos;
        if (n_end == n0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "bad header field name at offset %zu", n0);
        if ((r = expect_byte(&rd, ':', "':' after field name")) != COFFER_OK)
            return r;
        while (peek(&rd, &c) && (c == ' ' || c == '\t'))
            skip1(&rd);
        size_t v0 = rd.pos, v_end = rd.pos;
        while (peek(&rd, &c) && is_field_vchar(c)) {
            skip1(&rd);
            if (c != ' ' && c != '\t')
                v_end = rd.pos;
        }
        if ((r = expect_byte(&rd, '\r', "CR after field value")) != COFFER_OK ||
            (r = expect_byte(&rd, '\n', "LF after field value")) != COFFER_OK)
            return r;
        if (peek(&rd, &c) && (c == ' ' || c == '\t'))
            return COFFER_FAIL(COFFER_E_MALFORMED, "obsolete line folding at offset %zu", rd.pos);
        buf[n_end] = '\0';
        buf[v_end] = '\0'; /* v_end <= offset of the CR */
        struct coffer_net_header *h = &out->headers[out->header_count++];
        h->name = (char *)buf + n0;
        h->value = (char *)buf + v0;
    }
    if (COFFER_NEVER(rd.pos != head_size))
        return COFFER_FAIL(COFFER_E_INTERNAL, "head end mismatch");

    /* the fields the framing depends on */
    out->keep_alive = out->minor == 1;
    size_t hosts = 0, te = 0;
    for (size_t i = 0; i < out->header_count; i++) {
        const char *n = out->headers[i].name, *v = out->headers[i].value;
        if (strcasecmp(n, "content-length") == 0) {
            uint64_t len = 0;
            if ((r = parse_length(v, &len)) != COFFER_OK)
                return r;
            if (out->has_length && len != out->content_length)
                return COFFER_FAIL(COFFER_E_MALFORMED, "conflicting Content-Length fields");
            out->has_length = true;
            out->content_length = len;
        } else if (strcasecmp(n, "transfer-encoding") == 0) {
            te++;
            if (strcasecmp(v, "chunked") != 0)
                return COFFER_FAIL(COFFER_E_UNSUPPORTED, "transfer coding other than chunked");
            out->chunked = true;
        } else if (strcasecmp(n, "connection") == 0) {
            if (token_has(v, "close"))
                out->keep_alive = false;
            else if (token_has(v, "keep-alive"))
                out->keep_alive = true;
        } else if (strcasecmp(n, "host") == 0) {
            hosts++;
        } else if (strcasecmp(n, "expect") == 0) {
            if (strcasecmp(v, "100-continue") == 0)
                out->expect_continue = true;
        }
    }
    if (te > 1)
        return COFFER_FAIL(COFFER_E_MALFORMED, "several Transfer-Encoding fields");
    if (out->chunked && out->has_length)
        return COFFER_FAIL(COFFER_E_MALFORMED, "both Transfer-Encoding and Content-Length");
    if (out->minor == 1 && hosts != 1)
        return COFFER_FAIL(COFFER_E_MALFORMED, "HTTP/1.1 needs exactly one Host field");
    *consumed = head_size;
    return COFFER_OK;
}

/* ------------------------------------------------------------------ chunked */

enum {
    CH_SIZE,       /* hex digits of the chunk size */
    CH_EXT,        /* chunk extension, skipped until CR */
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,    /* start of a trailer line, or the final CRLF */
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_FINAL_LF,
};

#define CH_MAX_LINE 4096

void coffer_net__chunked_init(struct coffer_net__chunked *c) { memset(c, 0, sizeof(*c)); }

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* see net_int.h */
enum coffer_err coffer_net__chunked_feed(struct coffer_net__chunked *c, const uint8_t *data, size_t size,
                                         struct coffer_buf *body, size_t *consumed)
{
    struct coffer_rd rd;
    coffer_rd_init(&rd, data, size);
    enum coffer_err r = COFFER_OK;
    uint8_t b;
    while (!c->done && coffer_rd_left(&rd) > 0) {
        if (c->state == CH_DATA) {
            size_t n = coffer_rd_left(&rd);
            if ((uint64_t)n > c->left)
                n = (size_t)c->left;
            const uint8_t *p;
            if ((r = coffer_rd_bytes(&rd, n, &p)) != COFFER_OK || (r = coffer_buf_put(body, p, n)) != COFFER_OK)
                goto out;
            c->left -= n;
            if (c->left == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        if ((r = coffer_rd_u8(&rd, &b)) != COFFER_OK)
            goto out;
        switch (c->state) {
        case CH_SIZE: {
            int h = hexval(b);
            if (h >= 0) {
                if (c->line >= 15) {
                    r = COFFER_FAIL(COFFER_E_TOO_LARGE, "chunk size too long");
                    goto out;
                }
                c->left = c->left * 16 + (uint64_t)h;
                c->line++;
            } else if (c->line > 0 && (b == ';' || b == '\r')) {
                if (c->left > body->max - body->size) {
                    r = COFFER_FAIL(COFFER_E_TOO_LARGE, "chunked body over its cap of %zu bytes", body->max);
                    goto out;
                }
                c->state = b == ';' ? CH_EXT : CH_SIZE_LF;
            } else {
                r = COFFER_FAIL(COFFER_E_MALFORMED, "bad chunk size");
                goto out;
            }
            break;
        }
        case CH_EXT:
            if (b == '\r')
                c->state = CH_SIZE_LF;
            else if (!is_field_vchar(b) || ++c->line > CH_MAX_LINE) {
                r = COFFER_FAIL(COFFER_E_MALFORMED, "bad chunk extension");
                goto out;
            }
            break;
        case CH_SIZE_LF:
            if (b != '\n') {
                r = COFFER_FAIL(COFFER_E_MALFORMED, "expected LF after chunk size");
                goto out;
            }
            c->line = 0;
            c->state = c->left == 0 ? CH_TRAILER : CH_DATA;
            break;
        case CH_DATA_CR:
            if (b != '\r') {
                r = COFFER_FAIL(COFFER_E_MALFORMED, "expected CR after chunk data");
                goto out;
            }
            c->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (b != '\n') {
                r = COFFER_FAIL(COFFER_E_MALFORMED, "expected LF after chunk data");
                goto out;
            }
            c->state = CH_SIZE;
            c->left = 0;
            c->line = 0;
            break;
        case CH_TRAILER:
            if (b == '\r')
                c->state = CH_FINAL_LF;
            else if (is_tchar(b) && ++c->line <= CH_MAX_LINE)
                c->state = CH_TRAILER_LINE;
            else {
                r = COFFER_FAIL(COFFER_E_MALFORMED, "bad trailer field");
                goto out;
            }
            break;
        case CH_TRAILER_LINE:
            if (b == '\r')
                c->state = CH_TRAILER_LF;
            else if (!is_field_vchar(b) || ++c->line > CH_MAX_LINE) {
                r = COFFER_FAIL(COFFER_E_TOO_LARGE, "trailer fields too long");
                goto out;
            }
            break;
        case CH_TRAILER_LF:
        case CH_FINAL_LF:
            if (b != '\n') {
                r = COFFER_FAIL(COFFER_E_MALFORMED, "expected LF in trailer section");
                goto out;
            }
            if (c->state == CH_FINAL_LF)
                c->done = true;
            else
                c->state = CH_TRAILER;
            break;
        default:
            r = COFFER_FAIL(COFFER_E_INTERNAL, "chunked decoder state %d", c->state);
            goto out;
        }
    }
out:
    *consumed = rd.pos;
    return r;
}

const char *coffer_net__reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}
