/*
 * grpc.c — the gRPC layer over HTTP/2 request bodies: length-prefixed
 * message framing, grpc-encoding (identity, gzip), grpc-timeout, status and
 * percent-encoded grpc-message, and the unary call dispatch.
 *
 * Design: h2.c collects a whole request body (capped) and calls
 * coffer_net__grpc_dispatch, which parses exactly one Length-Prefixed-Message
 * through coffer_rd, inflates it when flagged, works out the deadline, calls
 * the handler and leaves a reply (message bytes and a status) for h2.c to
 * frame. Framing errors map to gRPC codes as the gRPC-over-HTTP/2 protocol
 * says: a message over the limit is RESOURCE_EXHAUSTED, an encoding we do not
 * support is UNIMPLEMENTED, a compressed flag without an encoding or a
 * broken frame is INTERNAL; an unknown method is the handler's to answer
 * (UNIMPLEMENTED when no gRPC handler is configured).
 *
 * Invariants: I1 every length comes through coffer_rd and is checked against
 * the cap before anything is allocated for it. I2 inflating stops at
 * max_size (no zip bombs). I3 the handler always sees exactly one message.
 * Trusts: nothing in the request. Threading: pure per call.
 */
#include "net_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

/* see coffer/net.h */
enum coffer_err coffer_net_grpc_frame_parse(struct coffer_rd *rd, size_t max_size, bool *compressed,
                                            const uint8_t **msg, size_t *msg_size)
{
    struct coffer_rd t = *rd;
    uint8_t flag;
    uint32_t len;
    enum coffer_err r;
    if ((r = coffer_rd_u8(&t, &flag)) != COFFER_OK || (r = coffer_rd_u32be(&t, &len)) != COFFER_OK)
        return r;
    if (flag > 1)
        return COFFER_FAIL(COFFER_E_MALFORMED, "gRPC message flag %u", flag);
    if (len > max_size)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "gRPC message of %u bytes over the limit of %zu", len, max_size);
    const uint8_t *p;
    if ((r = coffer_rd_bytes(&t, len, &p)) != COFFER_OK)
        return r;
    *rd = t;
    *compressed = flag == 1;
    *msg = p;
    *msg_size = len;
    return COFFER_OK;
}

/* see coffer/net.h */
enum coffer_err coffer_net_grpc_timeout_parse(const char *s, uint64_t *out_ns)
{
    uint64_t v = 0;
    size_t digits = 0;
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (digits == 8)
            return COFFER_FAIL(COFFER_E_MALFORMED, "grpc-timeout has more than 8 digits");
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (digits == 0 || s[0] == '\0' || s[1] != '\0')
        return COFFER_FAIL(COFFER_E_MALFORMED, "grpc-timeout must be digits and one unit");
    uint64_t mul;
    switch (s[0]) {
    case 'H': mul = 3600ull * 1000000000ull; break;
    case 'M': mul = 60ull * 1000000000ull; break;
    case 'S': mul = 1000000000ull; break;
    case 'm': mul = 1000000ull; break;
    case 'u': mul = 1000ull; break;
    case 'n': mul = 1ull; break;
    default: return COFFER_FAIL(COFFER_E_MALFORMED, "grpc-timeout unit '%c'", s[0]);
    }
    /* 99999999 hours does not fit in 64 bits of nanoseconds: saturate */
    *out_ns = v > UINT64_MAX / mul ? UINT64_MAX : v * mul;
    return COFFER_OK;
}

/* see coffer/net.h */
enum coffer_err coffer_net_gzip_inflate(const uint8_t *data, size_t size, size_t max_size, struct coffer_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return COFFER_FAIL(COFFER_E_NOMEM, "inflateInit2 failed");
    size_t start = out->size;
    enum coffer_err r = COFFER_OK;
    struct coffer_rd rd;
    coffer_rd_init(&rd, data, size);
    const uint8_t *in;
    size_t in_left = coffer_rd_left(&rd);
    if ((r = coffer_rd_bytes(&rd, in_left, &in)) != COFFER_OK) {
        inflateEnd(&z);
        return r;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = 0;
    int zr = Z_OK;
    while (zr != Z_STREAM_END) {
        if (z.avail_in == 0 && in_left > 0) {
            uInt chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            z.avail_in = chunk;
            in_left -= chunk;
        }
        if (out->size - start >= max_size) {
            /* at the cap: one more byte would be too many */
            uint8_t probe;
            z.next_out = &probe;
            z.avail_out = 1;
            zr = inflate(&z, Z_NO_FLUSH);
            if (z.avail_out == 0) {
                r = COFFER_FAIL(COFFER_E_TOO_LARGE, "gzip data inflates past %zu bytes", max_size);
                break;
            }
            if (zr == Z_STREAM_END)
                break;
            if (zr != Z_OK && zr != Z_BUF_ERROR) {
                r = COFFER_FAIL(zr == Z_MEM_ERROR ? COFFER_E_NOMEM : COFFER_E_MALFORMED, "gzip data: %s",
                                z.msg ? z.msg : "inflate failed");
                break;
            }
            if (z.avail_in == 0 && in_left == 0) {
                r = COFFER_FAIL(COFFER_E_TRUNCATED, "gzip data ends early");
                break;
            }
            continue;
        }
        size_t room = max_size - (out->size - start);
        if (room > 65536)
            room = 65536;
        if ((r = coffer_buf_reserve(out, room)) != COFFER_OK)
            break;
        z.next_out = out->data + out->size;
        z.avail_out = (uInt)room;
        zr = inflate(&z, Z_NO_FLUSH);
        out->size += room - z.avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_BUF_ERROR && z.avail_in == 0 && in_left == 0) {
            r = COFFER_FAIL(COFFER_E_TRUNCATED, "gzip data ends early");
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            r = COFFER_FAIL(zr == Z_MEM_ERROR ? COFFER_E_NOMEM : COFFER_E_MALFORMED, "gzip data: %s",
                            z.msg ? z.msg : "inflate failed");
            break;
        }
    }
    if (r == COFFER_OK && (z.avail_in != 0 || in_left != 0))
        r = COFFER_FAIL(COFFER_E_TRAILING, "bytes after the gzip stream");
    inflateEnd(&z);
    if (r != COFFER_OK)
        out->size = start;
    return r;
}

/* see coffer/net.h */
enum coffer_err coffer_net_gzip_deflate(const uint8_t *data, size_t size, struct coffer_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return COFFER_FAIL(COFFER_E_NOMEM, "deflateInit2 failed");
    if (size > UINT32_MAX) {
        deflateEnd(&z);
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "gzip input over 4 GiB");
    }
    size_t start = out->size;
    uLong bound = deflateBound(&z, (uLong)size);
    enum coffer_err r = coffer_buf_reserve(out, bound);
    if (r == COFFER_OK) {
        z.next_in = (Bytef *)(uintptr_t)data;
        z.avail_in = (uInt)size;
        z.next_out = out->data + out->size;
        z.avail_out = (uInt)bound;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END)
            r = COFFER_FAIL(COFFER_E_INTERNAL, "deflate did not finish");
        else
            out->size = start + (bound - z.avail_out);
    }
    deflateEnd(&z);
    return r;
}

void coffer_net__grpc_percent_encode(const char *in, char *out, size_t out_size)
{
    size_t n = 0;
    for (; *in != '\0' && n + 4 < out_size; in++) {
        unsigned char c = (unsigned char)*in;
        if (c >= 0x20 && c <= 0x7e && c != '%')
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, out_size - n, "%%%02X", c);
    }
    out[n] = '\0';
}

enum coffer_err coffer_net_grpc_reply_append(struct coffer_net_grpc_reply *reply, const void *data, size_t size)
{
    enum coffer_err r = coffer_buf_put(&reply->message, data, size);
    if (r != COFFER_OK)
        reply->failed = true;
    return r;
}

void coffer_net_grpc_reply_status(struct coffer_net_grpc_reply *reply, enum coffer_net_grpc_code code,
                                  const char *message)
{
    reply->code = (int)code >= 0 && (int)code <= 16 ? (int)code : COFFER_NET_GRPC_UNKNOWN;
    const char *m = message != NULL ? message : "";
    size_t n = strlen(m);
    if (n > 1024) /* TF Serving's rule: 1024 bytes, then a marker */
        snprintf(reply->text, sizeof(reply->text), "%.*s...TRUNCATED", 1000, m);
    else
        snprintf(reply->text, sizeof(reply->text), "%s", m);
}

static const char *find_header(const struct coffer_net_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0)
            return h[i].value;
    return NULL;
}

/* see net_int.h */
void coffer_net__grpc_dispatch(const struct coffer_net_server_config *cfg, const char *path,
                               const struct coffer_net_header *headers, size_t header_count, const uint8_t *body,
                               size_t body_size, X509 *peer, const char *remote, struct coffer_net_grpc_reply *reply,
                               bool *gzip_reply)
{
    *gzip_reply = false;
    const char *enc = find_header(headers, header_count, "grpc-encoding");
    bool gzip = false;
    if (enc != NULL && strcmp(enc, "identity") != 0) {
        if (strcmp(enc, "gzip") != 0) {
            coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_UNIMPLEMENTED, "grpc-encoding not supported");
            return;
        }
        gzip = true;
    }
    uint64_t deadline = 0;
    const char *tmo = find_header(headers, header_count, "grpc-timeout");
    if (tmo != NULL) {
        uint64_t ns;
        if (coffer_net_grpc_timeout_parse(tmo, &ns) != COFFER_OK) {
            coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_INTERNAL, "malformed grpc-timeout");
            return;
        }
        uint64_t now = coffer_now_ns();
        deadline = ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
    }
    struct coffer_rd rd;
    coffer_rd_init(&rd, body, body_size);
    bool compressed;
    const uint8_t *msg;
    size_t msg_size;
    enum coffer_err r = coffer_net_grpc_frame_parse(&rd, cfg->max_grpc_message_size, &compressed, &msg, &msg_size);
    if (r == COFFER_E_TOO_LARGE) {
        coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_RESOURCE_EXHAUSTED, "request message too large");
        return;
    }
    if (r != COFFER_OK || coffer_rd_left(&rd) != 0) {
        coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_INTERNAL,
                                     r != COFFER_OK ? "malformed request message framing"
                                                    : "unary call with more than one request message");
        return;
    }
    struct coffer_buf plain;
    coffer_buf_init(&plain, cfg->max_grpc_message_size, false);
    if (compressed) {
        if (!gzip) {
            coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_INTERNAL, "compressed message without grpc-encoding");
            return;
        }
        r = coffer_net_gzip_inflate(msg, msg_size, cfg->max_grpc_message_size, &plain);
        if (r != COFFER_OK) {
            coffer_net_grpc_reply_status(reply,
                                         r == COFFER_E_TOO_LARGE ? COFFER_NET_GRPC_RESOURCE_EXHAUSTED
                                                                 : COFFER_NET_GRPC_INTERNAL,
                                         r == COFFER_E_TOO_LARGE ? "request message too large"
                                                                 : "cannot decompress request message");
            coffer_buf_free(&plain);
            return;
        }
        msg = plain.data != NULL ? plain.data : (const uint8_t *)"";
        msg_size = plain.size;
    }
    if (deadline != 0 && coffer_now_ns() >= deadline) {
        coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
        coffer_buf_free(&plain);
        return;
    }
    struct coffer_net_grpc_call call = {
        .path = path,
        .message = msg,
        .message_size = msg_size,
        .deadline_ns = deadline,
        .headers = headers,
        .header_count = header_count,
        .peer_cert = peer,
        .remote_addr = remote,
    };
    if (cfg->grpc_handler == NULL) {
        coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_UNIMPLEMENTED, "no gRPC service here");
        coffer_buf_free(&plain);
        return;
    }
    r = cfg->grpc_handler(cfg->grpc_handler_arg, &call, reply);
    coffer_buf_free(&plain);
    if (reply->deferred != NULL) {
        reply->deferred->deadline_ns = deadline;
        reply->deferred->gzip = gzip;
        return; /* settled when the answer comes */
    }
    coffer_net__grpc_settle(reply, r, deadline, gzip, gzip_reply);
}

void coffer_net__grpc_settle(struct coffer_net_grpc_reply *reply, enum coffer_err r, uint64_t deadline, bool gzip,
                             bool *gzip_reply)
{
    if (reply->code < 0) {
        if (r == COFFER_OK && !reply->failed)
            reply->code = COFFER_NET_GRPC_OK;
        else
            coffer_net_grpc_reply_status(reply,
                                         r == COFFER_E_NOMEM ? COFFER_NET_GRPC_RESOURCE_EXHAUSTED
                                                             : COFFER_NET_GRPC_INTERNAL,
                                         r == COFFER_E_NOMEM ? "out of memory" : "internal error");
    }
    if (reply->code == COFFER_NET_GRPC_OK && reply->failed)
        coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_RESOURCE_EXHAUSTED, "response message too large");
    if (reply->code == COFFER_NET_GRPC_OK && deadline != 0 && coffer_now_ns() >= deadline)
        coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
    *gzip_reply = gzip && reply->code == COFFER_NET_GRPC_OK;
}
