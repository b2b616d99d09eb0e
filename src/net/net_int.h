/*
 * net_int.h — internals shared by the files of src/net only.
 */
#ifndef COFFER_NET_INT_H
#define COFFER_NET_INT_H

#include "coffer/net.h"

/* ------------------------------------------------------------ HTTP/1.1 parse */

#define COFFER_NET__MAX_HEADERS 100

/* A parsed request head. Strings point into the caller's buffer, which the
 * parser NUL-terminates in place (it writes only at delimiter positions). */
struct coffer_net__http1_head {
    char *method;
    char *path;
    char *query;
    int minor;                 /* HTTP/1.<minor>, 0 or 1 */
    struct coffer_net_header headers[COFFER_NET__MAX_HEADERS];
    size_t header_count;
    bool chunked;
    bool has_length;
    uint64_t content_length;
    bool keep_alive;
    bool expect_continue;
};

/* Parse a request head from buf[0..size). On a complete head, *consumed is
 * its length (through the blank line) and the head is filled; when the head
 * is incomplete, returns COFFER_OK with *consumed == 0. Errors:
 * COFFER_E_TOO_LARGE (head over max_size, or too many headers: 431),
 * COFFER_E_MALFORMED (400), COFFER_E_UNSUPPORTED (a transfer coding other
 * than chunked: 501), COFFER_E_BAD_VERSION (HTTP/1.x other than 1.0 and
 * 1.1: 505). buf is modified. */
COFFER_NODISCARD enum coffer_err coffer_net__http1_parse_head(uint8_t *buf, size_t size, size_t max_size,
                                                              struct coffer_net__http1_head *out,
                                                              size_t *consumed);

/* The chunked transfer-coding decoder: feed any slice; it consumes what it
 * can and appends the data to body (whose max is the body cap). */
struct coffer_net__chunked {
    int state;
    uint64_t left;   /* bytes of the current chunk still to come */
    size_t line;     /* bytes of the current size or trailer line seen */
    bool done;
};
void coffer_net__chunked_init(struct coffer_net__chunked *c);
COFFER_NODISCARD enum coffer_err coffer_net__chunked_feed(struct coffer_net__chunked *c, const uint8_t *data,
                                                          size_t size, struct coffer_buf *body,
                                                          size_t *consumed);

/* "OK" for 200 and so on; "" for unknown codes. */
const char *coffer_net__reason(int status);

/* ------------------------------------------------------------------ responses */

#define COFFER_NET__MAX_RESP_HEADERS 32

struct coffer_net__conn;

struct coffer_net_response {
    int status;
    struct coffer_buf body;
    struct coffer_buf headers; /* "Name: value\r\n" lines */
    size_t header_count;
    bool failed;               /* an append or header failed */
    /* set by the dispatcher so a handler can defer (NULL: cannot) */
    struct coffer_net__conn *conn;
    int32_t stream_id;         /* HTTP/2 stream; 0 for HTTP/1.1 */
    struct coffer_net_pending *deferred;
};

struct coffer_net_grpc_reply {
    struct coffer_buf message;
    int code;             /* -1 until set */
    char text[1024];
    bool failed;
    /* set by h2.c so a handler can defer (NULL: cannot) */
    struct coffer_net__conn *conn;
    int32_t stream_id;
    struct coffer_net_pending *deferred;
};

/* A deferred answer (see coffer_net_response_defer, coffer_net_grpc_reply_defer). */
struct coffer_net_pending {
    struct coffer_net__worker *w;
    struct coffer_net__conn *conn;   /* worker thread only; NULL once the connection closed */
    int32_t stream_id;
    struct coffer_net_response resp;
    bool grpc;                       /* a gRPC answer: reply, not resp */
    struct coffer_net_grpc_reply reply;
    uint64_t deadline_ns;            /* the call's grpc-timeout, 0 when none */
    bool gzip;                       /* the call came gzip-encoded */
    struct coffer_net_pending *prev, *next; /* the connection's list (worker thread) */
    struct coffer_net_pending *qnext;       /* the worker's queue or local list */
    /* under the worker's qlock: */
    bool queued;                     /* on the worker's queue or local list */
    bool finished;                   /* coffer_net_pending_finish was called */
    struct coffer_buf msgs;          /* gRPC messages sent (framed), not yet taken by the worker */
    /* worker thread only: */
    void (*on_end)(void *arg, struct coffer_net_pending *p, bool stopping);
    void *on_end_arg;
    bool ended;                      /* on_end was called */
};
/* Tell p's owner the call cannot go on by itself (once; worker thread):
 * the client went (stopping false) or the server stops (true). */
void coffer_net__pending_ended(struct coffer_net_pending *p, bool stopping);
void coffer_net__response_init(struct coffer_net_response *r, size_t max_body);
void coffer_net__response_reset(struct coffer_net_response *r);
void coffer_net__response_free(struct coffer_net_response *r);

/* With cfg->decode_gzip_bodies, replace a gzip request body by its
 * inflation. Returns 0, or the HTTP status to answer instead (413, 400,
 * 415, 503). */
int coffer_net__decode_body(const struct coffer_net_server_config *cfg, const struct coffer_net_header *headers,
                            size_t header_count, struct coffer_buf *body);

/* Run the handler and normalise its result (500/503 on failure). */
void coffer_net__call_handler(coffer_net_handler_fn fn, void *arg, const struct coffer_net_request *req,
                              struct coffer_net_response *resp);

/* ------------------------------------------------------------ server pieces */
struct coffer_net__worker;

struct coffer_net__server_metrics {
    struct coffer_net_counter *by_class[6]; /* [0] other, [1..5] 1xx..5xx */
    struct coffer_net_histogram *duration;
    struct coffer_net_gauge *open_conns;
};

struct coffer_net__conn;
struct coffer_net__worker;

/* What an HTTP/2 session needs from its connection. */
struct coffer_net__h2;
COFFER_NODISCARD enum coffer_err coffer_net__h2_new(struct coffer_net__conn *c, struct coffer_net__h2 **out);
/* Feed received bytes; false when the session must close. */
bool coffer_net__h2_recv(struct coffer_net__h2 *h, const uint8_t *data, size_t size);
/* Push pending frames to the output; false when the session is over. */
bool coffer_net__h2_flush(struct coffer_net__h2 *h);
void coffer_net__h2_goaway(struct coffer_net__h2 *h);
bool coffer_net__h2_idle(const struct coffer_net__h2 *h);
/* Streams answered so far. */
uint64_t coffer_net__h2_served(const struct coffer_net__h2 *h);
void coffer_net__h2_free(struct coffer_net__h2 *h);
/* Send what a deferred answer has for its stream, if the stream still
 * waits for it: gRPC messages streamed since the last call (framed, in
 * msgs), and with fin the answer itself (the trailers of a stream). */
void coffer_net__h2_deliver(struct coffer_net__h2 *h, struct coffer_net_pending *p, const struct coffer_buf *msgs,
                            bool fin);

/* Connection services the h2 layer uses (server.c). */
const struct coffer_net_server_config *coffer_net__conn_config(const struct coffer_net__conn *c);
X509 *coffer_net__conn_peer(const struct coffer_net__conn *c);
const char *coffer_net__conn_remote(const struct coffer_net__conn *c);
COFFER_NODISCARD enum coffer_err coffer_net__conn_write(struct coffer_net__conn *c, const void *data, size_t size);
size_t coffer_net__conn_output_pending(const struct coffer_net__conn *c);
/* Record a finished request (log line and metrics); grpc_status is -1 for
 * plain HTTP. */
void coffer_net__conn_log(struct coffer_net__conn *c, const char *method, const char *path, int status,
                          int grpc_status, size_t in, size_t out, uint64_t start_ns, const char *proto);

/* gRPC: run a call from a complete request body. Fills the reply. */
void coffer_net__grpc_dispatch(const struct coffer_net_server_config *cfg, const char *path,
                               const struct coffer_net_header *headers, size_t header_count,
                               const uint8_t *body, size_t body_size, X509 *peer, const char *remote,
                               struct coffer_net_grpc_reply *reply, bool *gzip_reply);
/* Settle a reply after its handler (r: what it returned; COFFER_OK for a
 * deferred answer): a status when none was set, RESOURCE_EXHAUSTED for a
 * failed append, DEADLINE_EXCEEDED past the deadline; *gzip_reply when the
 * message goes out compressed. */
void coffer_net__grpc_settle(struct coffer_net_grpc_reply *reply, enum coffer_err r, uint64_t deadline, bool gzip,
                             bool *gzip_reply);
/* Percent-encode a grpc-message value (printable ASCII except '%' kept). */
void coffer_net__grpc_percent_encode(const char *in, char *out, size_t out_size);

#endif
