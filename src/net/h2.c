/*
 * h2.c — HTTP/2 on a TLS connection (ALPN "h2") with nghttp2, carrying both
 * plain HTTP requests (same handler as HTTP/1.1) and unary gRPC calls.
 *
 * Design: one nghttp2 server session per connection, fed from the
 * connection's input and writing frames straight into its output
 * bufferevent (send callback), on the connection's worker loop. Each request
 * stream collects its pseudo-headers, headers (copied into a per-stream
 * arena) and body (capped) until END_STREAM, then runs synchronously:
 * content-type application/grpc goes to grpc.c, everything else to the HTTP
 * handler. Responses go out through a data provider reading the stream's
 * buffer; gRPC answers end with trailers (grpc-status, grpc-message), or are
 * Trailers-Only when there is no message. nghttp2 does the framing, HPACK,
 * flow control and the RFC 9113 header checks.
 *
 * Invariants: I1 a stream's memory lives until nghttp2 reports it closed
 * (then it may become one of the connection's few spares, reset).
 * I2 headers and body of a stream are bounded (max_header_size; max body or
 * gRPC message size plus its prefix), and the bodies of all streams of a
 * connection together by that plus three more (at most 48 MiB more, so that
 * a 2 GiB message cap does not mean 8 GiB a connection); bodies grow as
 * their bytes arrive, and a gRPC message whose length prefix is over the cap
 * stops being buffered at once. A stream over a bound is answered with
 * 431/413 or RESOURCE_EXHAUSTED, not buffered. I3 output pending on the
 * connection stays under OUT_HIGH: the send callback says WOULDBLOCK above
 * it and the connection's write callback resumes sending.
 * Trusts: nghttp2 for frame parsing; nothing in header values or bodies.
 * Threading: the connection's worker thread only.
 */
#include "net_int.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#define OUT_HIGH (4u << 20)
#define MAX_STREAMS 128

struct stream {
    struct stream *prev, *next;
    int32_t id;
    struct coffer_arena *arena;
    struct coffer_buf body;
    /* from here on zero for each new request (stream_new) */
    const char *method, *path, *content_type;
    size_t header_count;
    size_t header_bytes;
    bool headers_too_large;
    bool body_too_large;
    bool prefix_checked;  /* gRPC: the length prefix was checked against the cap */
    size_t body_in;
    uint64_t start_ns;
    bool dispatched;
    /* response */
    struct coffer_buf out;
    size_t out_off;
    bool grpc;
    int grpc_code;
    int status;
    struct coffer_net_pending *pending; /* a deferred answer this stream waits for */
    bool streaming;       /* gRPC server streaming: headers out, messages as they come */
    bool stream_done;     /* ... and the trailers follow what is queued */
    /* written before they are read: the first header_count headers, and
     * grpc_msg when the answer is settled */
    struct coffer_net_header headers[COFFER_NET__MAX_HEADERS];
    char grpc_msg[3200];
};

struct coffer_net__h2 {
    struct coffer_net__conn *conn;
    nghttp2_session *session;
    struct stream *streams;
    size_t nstreams;
    uint64_t served;
    size_t buffered;      /* request body bytes held over all streams */
    size_t budget;        /* cap on buffered */
    struct stream *spare; /* closed streams kept for the next requests (linked by next) */
    size_t nspare;
};

static void stream_free(struct stream *st)
{
    coffer_arena_free(st->arena);
    coffer_buf_free(&st->body);
    coffer_buf_free(&st->out);
    coffer_free(st);
}

/* Up to MAX_SPARE closed streams are kept as the connection's spares, each
 * with its arena's first block and (up to SPARE_BODY_MAX) its body storage:
 * a request on a kept connection then does not allocate its stream or arena
 * again (a calloc of ~6 KiB and the arena's 4 KiB before), also when a
 * client such as a gRPC channel has several calls under way on it. At most
 * ~100 KiB a connection. */
#define MAX_SPARE 4
#define SPARE_BODY_MAX (16u << 10)

static void stream_release(struct coffer_net__h2 *h, struct stream *st)
{
    h->buffered -= st->body.size;
    if (h->nspare == MAX_SPARE) {
        stream_free(st);
        return;
    }
    coffer_arena_reset(st->arena);
    if (st->body.cap > SPARE_BODY_MAX)
        coffer_buf_free(&st->body); /* keeps the cap on its size */
    else
        coffer_buf_reset(&st->body);
    coffer_buf_free(&st->out);
    st->next = h->spare;
    h->spare = st;
    h->nspare++;
}

/* A stream for a new request: a spare, or a new one (NULL when out of
 * memory). */
static struct stream *stream_new(struct coffer_net__h2 *h)
{
    struct stream *st = h->spare;
    if (st != NULL) {
        h->spare = st->next;
        h->nspare--;
    } else {
        if ((st = coffer_malloc(sizeof(*st))) == NULL)
            return NULL;
        if (coffer_arena_new(4096, &st->arena) != COFFER_OK) {
            coffer_free(st);
            return NULL;
        }
        const struct coffer_net_server_config *cfg = coffer_net__conn_config(h->conn);
        size_t cap = cfg->max_body_size;
        if (cfg->max_grpc_message_size + 5 > cap)
            cap = cfg->max_grpc_message_size + 5;
        coffer_buf_init(&st->body, cap, false);
    }
    memset(&st->method, 0, offsetof(struct stream, headers) - offsetof(struct stream, method));
    st->prev = st->next = NULL;
    st->grpc_msg[0] = '\0';
    return st;
}

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user)
{
    (void)session;
    (void)flags;
    struct coffer_net__h2 *h = user;
    if (coffer_net__conn_output_pending(h->conn) > OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (coffer_net__conn_write(h->conn, data, length) != COFFER_OK)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)length;
}

static int begin_headers_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct coffer_net__h2 *h = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct stream *st = stream_new(h);
    if (st == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
    coffer_buf_init(&st->out, 0, false);
    st->id = frame->hd.stream_id;
    st->start_ns = coffer_now_ns();
    st->status = 200;
    st->grpc_code = -1;
    st->next = h->streams;
    if (h->streams != NULL)
        h->streams->prev = st;
    h->streams = st;
    h->nstreams++;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    return 0;
}

static const char *arena_str(struct stream *st, const uint8_t *p, size_t n)
{
    char *s = coffer_arena_alloc(st->arena, n + 1, 1);
    if (s != NULL && n > 0)
        memcpy(s, p, n);
    return s;
}

static int header_cb(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    (void)flags;
    struct coffer_net__h2 *h = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    const struct coffer_net_server_config *cfg = coffer_net__conn_config(h->conn);
    st->header_bytes += namelen + valuelen + 32;
    if (st->header_bytes > cfg->max_header_size || st->header_count == COFFER_NET__MAX_HEADERS) {
        st->headers_too_large = true;
        return 0;
    }
    const char *v = arena_str(st, value, valuelen);
    if (v == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (namelen > 0 && name[0] == ':') {
        if (namelen == 7 && memcmp(name, ":method", 7) == 0)
            st->method = v;
        else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
            st->path = v;
        return 0;
    }
    const char *n = arena_str(st, name, namelen);
    if (n == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (namelen == 12 && memcmp(name, "content-type", 12) == 0)
        st->content_type = v;
    st->headers[st->header_count].name = n;
    st->headers[st->header_count].value = v;
    st->header_count++;
    return 0;
}

static int data_chunk_cb(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                         void *user)
{
    (void)flags;
    struct coffer_net__h2 *h = user;
    struct stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (st == NULL)
        return 0;
    st->body_in += len;
    if (st->body_too_large)
        return 0;
    /* Each stream is capped, and so is their sum: many streams each just
     * under the cap must not pile up memory on one connection. */
    if (h->buffered >= h->budget || len > h->budget - h->buffered ||
        coffer_buf_put(&st->body, data, len) != COFFER_OK) {
        st->body_too_large = true;
        h->buffered -= st->body.size;
        coffer_buf_free(&st->body);
        return 0;
    }
    h->buffered += len;
    if (!st->prefix_checked && st->body.size >= 5 && st->content_type != NULL &&
        strncmp(st->content_type, "application/grpc", 16) == 0) {
        /* a message declared over the cap is refused before its bytes come */
        st->prefix_checked = true;
        const uint8_t *b = st->body.data;
        uint32_t n = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
        const struct coffer_net_server_config *cfg = coffer_net__conn_config(h->conn);
        if (n > cfg->max_grpc_message_size) {
            st->body_too_large = true;
            h->buffered -= st->body.size;
            coffer_buf_free(&st->body);
        }
    }
    return 0;
}

/* A grpc-status value: gRPC's 17 codes from a table (every call ends with
 * one; snprintf was 0.4 % of a gRPC server's samples), any other number
 * written into other. */
static const char *grpc_code_text(int code, char other[16])
{
    static const char *const codes[] = {"0", "1",  "2",  "3",  "4",  "5",  "6",  "7",  "8",
                                        "9", "10", "11", "12", "13", "14", "15", "16"};
    if (code >= 0 && code < (int)(sizeof(codes) / sizeof(codes[0])))
        return codes[code];
    snprintf(other, 16, "%d", code);
    return other;
}

static ssize_t read_out_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                           uint32_t *data_flags, nghttp2_data_source *source, void *user)
{
    (void)user;
    (void)session;
    (void)stream_id;
    struct stream *st = source->ptr;
    size_t left = st->out.size - st->out_off;
    size_t n = left < length ? left : length;
    if (n > 0)
        memcpy(buf, st->out.data + st->out_off, n);
    st->out_off += n;
    if (st->out_off == st->out.size && st->streaming && !st->stream_done) {
        /* all sent so far: wait for the next message (h2_deliver resumes) */
        coffer_buf_reset(&st->out);
        st->out_off = 0;
        return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
    }
    if (st->out_off == st->out.size) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->grpc) {
            char other[16];
            const char *code = grpc_code_text(st->grpc_code, other);
            nghttp2_nv tr[2] = {
                {(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), NGHTTP2_NV_FLAG_NONE},
                {(uint8_t *)"grpc-message", (uint8_t *)st->grpc_msg, 12, strlen(st->grpc_msg), NGHTTP2_NV_FLAG_NONE},
            };
            if (nghttp2_submit_trailer(session, st->id, tr, st->grpc_msg[0] != '\0' ? 2 : 1) == 0)
                *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    return (ssize_t)n;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}

static void submit_grpc(struct coffer_net__h2 *h, struct stream *st, struct coffer_net_grpc_reply *reply, bool gzip);

static void respond_grpc(struct coffer_net__h2 *h, struct stream *st)
{
    const struct coffer_net_server_config *cfg = coffer_net__conn_config(h->conn);
    st->grpc = true;
    struct coffer_net_grpc_reply reply;
    memset(&reply, 0, sizeof(reply));
    reply.code = -1;
    coffer_buf_init(&reply.message, cfg->max_response_size, false);
    bool gzip = false;
    if (st->headers_too_large) {
        coffer_net_grpc_reply_status(&reply, COFFER_NET_GRPC_RESOURCE_EXHAUSTED, "request headers too large");
    } else if (st->body_too_large) {
        coffer_net_grpc_reply_status(&reply, COFFER_NET_GRPC_RESOURCE_EXHAUSTED, "request message too large");
    } else if (st->method == NULL || strcmp(st->method, "POST") != 0) {
        coffer_net_grpc_reply_status(&reply, COFFER_NET_GRPC_UNIMPLEMENTED, "gRPC needs POST");
    } else {
        reply.conn = h->conn;
        reply.stream_id = st->id;
        coffer_net__grpc_dispatch(cfg, st->path != NULL ? st->path : "", st->headers, st->header_count,
                                  st->body.data != NULL ? st->body.data : (const uint8_t *)"", st->body.size,
                                  coffer_net__conn_peer(h->conn), coffer_net__conn_remote(h->conn), &reply, &gzip);
        reply.conn = NULL;
    }
    if (reply.deferred != NULL) {
        st->pending = reply.deferred; /* answered by coffer_net__h2_deliver */
        coffer_buf_free(&reply.message);
        return;
    }
    submit_grpc(h, st, &reply, gzip);
    coffer_buf_free(&reply.message);
}

/* Frame and submit a settled reply, and log the call. */
static void submit_grpc(struct coffer_net__h2 *h, struct stream *st, struct coffer_net_grpc_reply *reply, bool gzip)
{
    /* frame the message: flag, u32be length, bytes */
    if (reply->code == COFFER_NET_GRPC_OK) {
        struct coffer_buf z;
        coffer_buf_init(&z, 0, false);
        const struct coffer_buf *m = &reply->message;
        if (gzip && coffer_net_gzip_deflate(reply->message.data, reply->message.size, &z) == COFFER_OK)
            m = &z;
        else
            gzip = false;
        if (m->size > UINT32_MAX || coffer_buf_put_u8(&st->out, gzip ? 1 : 0) != COFFER_OK ||
            coffer_buf_put_u32be(&st->out, (uint32_t)m->size) != COFFER_OK ||
            coffer_buf_put(&st->out, m->data, m->size) != COFFER_OK) {
            coffer_buf_reset(&st->out);
            coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_RESOURCE_EXHAUSTED, "response message too large");
        }
        coffer_buf_free(&z);
    }
    st->grpc_code = reply->code;
    coffer_net__grpc_percent_encode(reply->text, st->grpc_msg, sizeof(st->grpc_msg));
    int rv;
    if (reply->code == COFFER_NET_GRPC_OK) {
        nghttp2_nv nva[3] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                             NV("grpc-encoding", "gzip")};
        nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_out_cb};
        rv = nghttp2_submit_response(h->session, st->id, nva, gzip ? 3 : 2, &dp);
    } else {
        /* Trailers-Only */
        char other[16];
        const char *code = grpc_code_text(reply->code, other);
        nghttp2_nv nva[4] = {NV(":status", "200"), NV("content-type", "application/grpc"), NV("grpc-status", code),
                             NV("grpc-message", st->grpc_msg)};
        rv = nghttp2_submit_response(h->session, st->id, nva, st->grpc_msg[0] != '\0' ? 4 : 3, NULL);
    }
    if (rv != 0)
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    coffer_net__conn_log(h->conn, st->method ? st->method : "-", st->path ? st->path : "-", 200, st->grpc_code,
                         st->body_in, st->out.size, st->start_ns, "HTTP/2+gRPC");
}

static void submit_http(struct coffer_net__h2 *h, struct stream *st, struct coffer_net_response *r);

static void respond_http(struct coffer_net__h2 *h, struct stream *st)
{
    const struct coffer_net_server_config *cfg = coffer_net__conn_config(h->conn);
    struct coffer_net_response resp;
    coffer_net__response_init(&resp, cfg->max_response_size);
    int decode = 0;
    size_t held = st->body.size;
    if (st->headers_too_large) {
        coffer_net_response_error(&resp, 431, "request headers too large");
    } else if (st->body_too_large) {
        coffer_net_response_error(&resp, 413, "request body too large");
    } else if (st->method == NULL || st->path == NULL) {
        coffer_net_response_error(&resp, 400, "missing :method or :path");
    } else if ((decode = coffer_net__decode_body(cfg, st->headers, st->header_count, &st->body)) != 0) {
        coffer_net_response_error(&resp, decode, decode == 413   ? "request body too large"
                                                 : decode == 415 ? "unsupported Content-Encoding"
                                                 : decode == 503 ? "out of memory"
                                                                 : "cannot decode the gzip request body");
    } else {
        char *path = coffer_arena_strdup(st->arena, st->path);
        const char *query = "";
        char *q = path != NULL ? strchr(path, '?') : NULL;
        if (q != NULL) {
            *q = '\0';
            query = q + 1;
        }
        struct coffer_net_request req = {
            .method = st->method,
            .path = path != NULL ? path : st->path,
            .query = query,
            .headers = st->headers,
            .header_count = st->header_count,
            .body = st->body.data != NULL ? st->body.data : (const uint8_t *)"",
            .body_size = st->body.size,
            .peer_cert = coffer_net__conn_peer(h->conn),
            .remote_addr = coffer_net__conn_remote(h->conn),
            .protocol = "HTTP/2",
        };
        resp.conn = h->conn;
        resp.stream_id = st->id;
        coffer_net__call_handler(cfg->handler, cfg->handler_arg, &req, &resp);
        resp.conn = NULL;
    }
    /* the budget counts what the stream holds now */
    h->buffered = h->buffered - held + st->body.size;
    if (resp.deferred != NULL) {
        st->pending = resp.deferred; /* answered by coffer_net__h2_deliver */
        coffer_net__response_free(&resp);
        return;
    }
    submit_http(h, st, &resp);
    coffer_net__response_free(&resp);
}

/* Submit resp (its body moves to the stream) and log the request. */
static void submit_http(struct coffer_net__h2 *h, struct stream *st, struct coffer_net_response *r)
{
    struct coffer_net_response resp = *r; /* a shallow copy: the body is moved out of *r below */
    st->status = resp.status;
    /* headers: :status, content-length, then the handler's, names lower-cased */
    nghttp2_nv nva[2 + COFFER_NET__MAX_RESP_HEADERS];
    size_t n = 0;
    char status[8], length[24];
    snprintf(status, sizeof(status), "%d", resp.status);
    snprintf(length, sizeof(length), "%zu", resp.body.size);
    bool no_body = resp.status == 204 || resp.status == 304;
    nva[n++] = (nghttp2_nv)NV(":status", status);
    if (!no_body)
        nva[n++] = (nghttp2_nv)NV("content-length", length);
    char *hdrs = resp.headers.size > 0 ? coffer_arena_alloc(st->arena, resp.headers.size + 1, 1) : NULL;
    if (hdrs != NULL) {
        memcpy(hdrs, resp.headers.data, resp.headers.size);
        char *line = hdrs;
        while (n < 2 + COFFER_NET__MAX_RESP_HEADERS) {
            char *eol = strstr(line, "\r\n");
            char *colon = eol != NULL ? strchr(line, ':') : NULL;
            if (eol == NULL || colon == NULL || colon > eol)
                break;
            *colon = '\0';
            *eol = '\0';
            for (char *p = line; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            nva[n++] = (nghttp2_nv){(uint8_t *)line, (uint8_t *)v, strlen(line), strlen(v), NGHTTP2_NV_FLAG_NONE};
            line = eol + 2;
        }
    }
    /* the body moves to the stream, which outlives this call */
    coffer_buf_free(&st->out);
    st->out = resp.body;
    coffer_buf_init(&r->body, 0, false);
    bool head_only = no_body || (st->method != NULL && strcmp(st->method, "HEAD") == 0);
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_out_cb};
    if (nghttp2_submit_response(h->session, st->id, nva, n, head_only ? NULL : &dp) != 0)
        nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    coffer_net__conn_log(h->conn, st->method ? st->method : "-", st->path ? st->path : "-", st->status, -1,
                         st->body_in,
                         st->out.size, st->start_ns, "HTTP/2");
}

void coffer_net__h2_deliver(struct coffer_net__h2 *h, struct coffer_net_pending *p, const struct coffer_buf *msgs,
                            bool fin)
{
    struct stream *st = nghttp2_session_get_stream_user_data(h->session, p->stream_id);
    if (st == NULL || st->pending != p)
        return; /* the stream was reset or closed meanwhile */
    if (msgs->size > 0) {
        /* server streaming: the messages go out now, the trailers later;
         * a client that does not read them (its window stays shut) is cut
         * off at OUT_HIGH held for the stream (the reset tells the owner) */
        if (st->out.size - st->out_off + msgs->size > OUT_HIGH ||
            coffer_buf_put(&st->out, msgs->data, msgs->size) != COFFER_OK) {
            nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
            return;
        }
        if (!st->streaming) {
            st->streaming = true;
            st->grpc = true;
            nghttp2_nv nva[2] = {NV(":status", "200"), NV("content-type", "application/grpc")};
            nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_out_cb};
            if (nghttp2_submit_response(h->session, st->id, nva, 2, &dp) != 0) {
                nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
                return;
            }
        } else {
            (void)nghttp2_session_resume_data(h->session, st->id);
        }
    }
    if (!fin)
        return;
    st->pending = NULL;
    if (!p->grpc) {
        submit_http(h, st, &p->resp);
        return;
    }
    bool gzip;
    coffer_net__grpc_settle(&p->reply, COFFER_OK, p->deadline_ns, p->gzip, &gzip);
    if (!st->streaming) {
        submit_grpc(h, st, &p->reply, gzip);
        return;
    }
    /* a streamed call ends: a last message if the reply has one (not
     * compressed: the headers went out without grpc-encoding), then the
     * trailers */
    if (p->reply.code == COFFER_NET_GRPC_OK && p->reply.message.size > 0 &&
        (p->reply.message.size > UINT32_MAX || coffer_buf_put_u8(&st->out, 0) != COFFER_OK ||
         coffer_buf_put_u32be(&st->out, (uint32_t)p->reply.message.size) != COFFER_OK ||
         coffer_buf_put(&st->out, p->reply.message.data, p->reply.message.size) != COFFER_OK))
        coffer_net_grpc_reply_status(&p->reply, COFFER_NET_GRPC_RESOURCE_EXHAUSTED, "response message too large");
    st->grpc_code = p->reply.code;
    coffer_net__grpc_percent_encode(p->reply.text, st->grpc_msg, sizeof(st->grpc_msg));
    st->stream_done = true;
    (void)nghttp2_session_resume_data(h->session, st->id);
    coffer_net__conn_log(h->conn, st->method ? st->method : "-", st->path ? st->path : "-", 200, st->grpc_code,
                         st->body_in, st->out.size, st->start_ns, "HTTP/2+gRPC");
}

static int frame_recv_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct coffer_net__h2 *h = user;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st == NULL || st->dispatched)
        return 0;
    st->dispatched = true;
    h->served++;
    if (st->content_type != NULL && strncmp(st->content_type, "application/grpc", 16) == 0)
        respond_grpc(h, st);
    else
        respond_http(h, st);
    return 0;
}

static int stream_close_cb(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user)
{
    (void)error_code;
    struct coffer_net__h2 *h = user;
    struct stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (st == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    if (st->pending != NULL) {
        /* the client cancelled a call still under way (reset the stream) */
        if (st->streaming)
            coffer_net__conn_log(h->conn, st->method ? st->method : "-", st->path ? st->path : "-", 200,
                                 COFFER_NET_GRPC_CANCELLED, st->body_in, st->out.size, st->start_ns, "HTTP/2+gRPC");
        coffer_net__pending_ended(st->pending, false);
    }
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    h->nstreams--;
    stream_release(h, st);
    return 0;
}

enum coffer_err coffer_net__h2_new(struct coffer_net__conn *c, struct coffer_net__h2 **out)
{
    *out = NULL;
    struct coffer_net__h2 *h = coffer_calloc(1, sizeof(*h));
    if (h == NULL)
        return COFFER_E_NOMEM;
    h->conn = c;
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        coffer_free(h);
        return COFFER_FAIL(COFFER_E_NOMEM, "nghttp2 callbacks");
    }
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, data_chunk_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, frame_recv_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, stream_close_cb);
    int rv = nghttp2_session_server_new(&h->session, cb, h);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) {
        coffer_free(h);
        return COFFER_FAIL(COFFER_E_NOMEM, "nghttp2 session: %s", nghttp2_strerror(rv));
    }
    const struct coffer_net_server_config *cfg = coffer_net__conn_config(c);
    size_t cap = cfg->max_body_size > cfg->max_grpc_message_size + 5 ? cfg->max_body_size
                                                                   : cfg->max_grpc_message_size + 5;
    size_t more = cap < ((size_t)16 << 20) ? cap * 3 : (size_t)48 << 20;
    h->budget = cap > SIZE_MAX - more ? SIZE_MAX : cap + more;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_header_size},
    };
    if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0, 1 << 24) != 0) {
        coffer_net__h2_free(h);
        return COFFER_FAIL(COFFER_E_NOMEM, "nghttp2 settings");
    }
    *out = h;
    return COFFER_OK;
}

bool coffer_net__h2_recv(struct coffer_net__h2 *h, const uint8_t *data, size_t size)
{
    ssize_t n = nghttp2_session_mem_recv(h->session, data, size);
    return n >= 0 && (size_t)n == size;
}

bool coffer_net__h2_flush(struct coffer_net__h2 *h)
{
    if (nghttp2_session_send(h->session) != 0)
        return false;
    return nghttp2_session_want_read(h->session) || nghttp2_session_want_write(h->session);
}

void coffer_net__h2_goaway(struct coffer_net__h2 *h)
{
    (void)nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->session),
                                NGHTTP2_NO_ERROR, NULL, 0);
}

bool coffer_net__h2_idle(const struct coffer_net__h2 *h) { return h->nstreams == 0; }
uint64_t coffer_net__h2_served(const struct coffer_net__h2 *h) { return h->served; }

void coffer_net__h2_free(struct coffer_net__h2 *h)
{
    if (h == NULL)
        return;
    nghttp2_session_del(h->session); /* closes streams through stream_close_cb */
    while (h->streams != NULL) {
        struct stream *st = h->streams;
        h->streams = st->next;
        stream_free(st);
    }
    while (h->spare != NULL) {
        struct stream *st = h->spare;
        h->spare = st->next;
        stream_free(st);
    }
    coffer_free(h);
}
