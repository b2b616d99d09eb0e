/*
 * coffer/net.h — TLS servers (HTTP/1.1, HTTP/2, gRPC over HTTP/2), a small
 * Prometheus metrics registry, and an HTTPS client helper.
 *
 * The server runs N worker threads, each with its own libevent loop and its
 * own SO_REUSEPORT listener on the same address; a connection lives on one
 * worker for its whole life. TLS is OpenSSL through the caller's SSL_CTX
 * (certificate, key, client-certificate verification, verify callbacks are
 * the caller's); the server adds only an ALPN selection callback choosing
 * "h2" or "http/1.1". The HTTP/1.1 parser and the gRPC framing are ours and
 * read through struct coffer_rd; HTTP/2 framing is nghttp2.
 *
 * Handlers are called on the worker thread that owns the connection, one
 * request at a time per worker; they must not block for long. Everything a
 * handler is given is borrowed for the duration of the call only.
 *
 * Conventions as in base.h: functions return enum coffer_err, out-params are
 * written on success only.
 */
#ifndef COFFER_NET_H
#define COFFER_NET_H

#include "coffer/base.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

/* ----------------------------------------------------------------- requests */

struct coffer_net_header {
    const char *name;  /* lower case for HTTP/2, as sent for HTTP/1.1 */
    const char *value; /* leading and trailing blanks removed */
};

/* A request as a handler sees it. Everything is borrowed for the call. */
struct coffer_net_request {
    const char *method;   /* "GET", "POST", ... */
    const char *path;     /* the target up to '?' (not percent-decoded) */
    const char *query;    /* after '?', "" when none */
    const struct coffer_net_header *headers;
    size_t header_count;
    const uint8_t *body;  /* de-chunked; never NULL (points at "" when empty) */
    size_t body_size;
    X509 *peer_cert;      /* the client certificate TLS verified, or NULL */
    const char *remote_addr; /* "127.0.0.1:50412" */
    const char *protocol;    /* "HTTP/1.1", "HTTP/1.0" or "HTTP/2" */
};

/* The first header named name (ASCII case-insensitive), or NULL. */
const char *coffer_net_request_header(const struct coffer_net_request *req, const char *name);

/* The response a handler fills. Opaque; status defaults to 200, body to empty. */
struct coffer_net_response;

/* A final status, 200..999 (others are ignored). 204 and 304 go out without
 * a body or Content-Length, whatever was appended. */
void coffer_net_response_set_status(struct coffer_net_response *resp, int status);
/* Add a header (copied). Names and values with CR, LF or NUL are refused
 * (COFFER_E_INVALID_ARG); Content-Length, Transfer-Encoding and Connection
 * are the server's and refused too. */
COFFER_NODISCARD enum coffer_err coffer_net_response_add_header(struct coffer_net_response *resp,
                                                                const char *name, const char *value);
/* Append to the body (copied; capped by the server's max_response_size). */
COFFER_NODISCARD enum coffer_err coffer_net_response_append(struct coffer_net_response *resp,
                                                            const void *data, size_t size);
/* Replace whatever was set with status and {"error":"<message>"} as
 * application/json (the TF-Serving error shape). */
void coffer_net_response_error(struct coffer_net_response *resp, int status, const char *message);

/* Deferred answers: a handler that cannot answer at once (a request waiting
 * for a batch, a call to another service) calls coffer_net_response_defer,
 * returns COFFER_OK, and later, from any thread, fills the pending response
 * and calls coffer_net_pending_finish exactly once. The connection waits
 * (HTTP/1.1: later pipelined requests wait too; HTTP/2: other streams go
 * on); the worker's loop keeps serving other connections. If the client has
 * gone by then, the answer is dropped. Every pending response must be
 * finished before coffer_net_server_free. gRPC handlers: see
 * coffer_net_grpc_reply_defer. */
struct coffer_net_pending;

/* Inside a handler only; resp must not be used afterwards. */
COFFER_NODISCARD enum coffer_err coffer_net_response_defer(struct coffer_net_response *resp,
                                                           struct coffer_net_pending **out);
/* The response to fill (status 200 and empty until changed); valid until
 * coffer_net_pending_finish. */
struct coffer_net_response *coffer_net_pending_response(struct coffer_net_pending *p);
/* Send it (thread-safe; p is gone afterwards). */
void coffer_net_pending_finish(struct coffer_net_pending *p);

/* An HTTP handler. Returning an error (or leaving the response empty after a
 * failure) gives a 500 JSON error, or 503 for COFFER_E_NOMEM; the connection
 * stays usable. */
typedef enum coffer_err (*coffer_net_handler_fn)(void *arg, const struct coffer_net_request *req,
                                                 struct coffer_net_response *resp);

/* -------------------------------------------------------------------- gRPC */

/* gRPC status codes (the canonical codes, 0-16). */
enum coffer_net_grpc_code {
    COFFER_NET_GRPC_OK = 0,
    COFFER_NET_GRPC_CANCELLED = 1,
    COFFER_NET_GRPC_UNKNOWN = 2,
    COFFER_NET_GRPC_INVALID_ARGUMENT = 3,
    COFFER_NET_GRPC_DEADLINE_EXCEEDED = 4,
    COFFER_NET_GRPC_NOT_FOUND = 5,
    COFFER_NET_GRPC_ALREADY_EXISTS = 6,
    COFFER_NET_GRPC_PERMISSION_DENIED = 7,
    COFFER_NET_GRPC_RESOURCE_EXHAUSTED = 8,
    COFFER_NET_GRPC_FAILED_PRECONDITION = 9,
    COFFER_NET_GRPC_ABORTED = 10,
    COFFER_NET_GRPC_OUT_OF_RANGE = 11,
    COFFER_NET_GRPC_UNIMPLEMENTED = 12,
    COFFER_NET_GRPC_INTERNAL = 13,
    COFFER_NET_GRPC_UNAVAILABLE = 14,
    COFFER_NET_GRPC_DATA_LOSS = 15,
    COFFER_NET_GRPC_UNAUTHENTICATED = 16,
};

/* A unary gRPC call as a handler sees it (borrowed for the call). */
struct coffer_net_grpc_call {
    const char *path;         /* "/package.Service/Method" */
    const uint8_t *message;   /* the request message, decompressed */
    size_t message_size;
    uint64_t deadline_ns;     /* coffer_now_ns() clock; 0 when no grpc-timeout */
    const struct coffer_net_header *headers; /* the request headers */
    size_t header_count;
    X509 *peer_cert;
    const char *remote_addr;
};

/* What a gRPC handler answers: a message (sent when the status is OK), a
 * status code and a message (percent-encoded into grpc-message by the
 * server). Opaque. */
struct coffer_net_grpc_reply;

COFFER_NODISCARD enum coffer_err coffer_net_grpc_reply_append(struct coffer_net_grpc_reply *reply,
                                                              const void *data, size_t size);
void coffer_net_grpc_reply_status(struct coffer_net_grpc_reply *reply, enum coffer_net_grpc_code code,
                                  const char *message);

/* gRPC handlers defer the same way: coffer_net_grpc_reply_defer inside the
 * handler (before setting a status), then, from any thread, fill
 * coffer_net_pending_grpc_reply(p) (append, status) and call
 * coffer_net_pending_finish(p) exactly once. The call's grpc-timeout is
 * checked again when the answer goes out (DEADLINE_EXCEEDED past it); a
 * gzip call gets a gzip answer. Other streams of the connection go on. */
COFFER_NODISCARD enum coffer_err coffer_net_grpc_reply_defer(struct coffer_net_grpc_reply *reply,
                                                             struct coffer_net_pending **out);
/* The reply to fill (no status, empty); valid until coffer_net_pending_finish. */
struct coffer_net_grpc_reply *coffer_net_pending_grpc_reply(struct coffer_net_pending *p);

/* Server streaming (a deferred gRPC call over HTTP/2): send one message
 * now, from any thread, before the finish; the response headers go out
 * with the first. The finish then ends the stream with the reply's status
 * as trailers (and its message, if it has one, as a last message). Streamed
 * messages are not compressed. COFFER_E_UNSUPPORTED for HTTP/1.1 or a
 * plain HTTP answer, COFFER_E_STATE after the finish, COFFER_E_TOO_LARGE
 * when more than 1 MiB of sent messages wait for the worker. */
COFFER_NODISCARD enum coffer_err coffer_net_pending_grpc_send(struct coffer_net_pending *p, const void *msg,
                                                              size_t size);
/* Inside the handler: fn(arg, p, stopping) is called once, on the
 * connection's worker thread, when the call cannot go on by itself: the
 * client cancelled it or went away (stopping false: what is sent is
 * dropped), or the server stops gracefully (true: finish it now; what is
 * sent still goes out). The owner must still finish p (fn may do so). fn
 * may come after the owner finished p from another thread (p itself is
 * valid during the call): it should find p among its own calls rather
 * than trust per-call state it may have freed. */
void coffer_net_pending_on_end(struct coffer_net_pending *p,
                               void (*fn)(void *arg, struct coffer_net_pending *p, bool stopping), void *arg);

/* Returning an error without a status set answers INTERNAL
 * (RESOURCE_EXHAUSTED for COFFER_E_NOMEM). */
typedef enum coffer_err (*coffer_net_grpc_handler_fn)(void *arg, const struct coffer_net_grpc_call *call,
                                                      struct coffer_net_grpc_reply *reply);

/* ----------------------------------------------------------------- metrics */

/* A Prometheus registry: counters, gauges and fixed-bucket histograms.
 * Registration takes a lock; updates are lock-free atomics from any thread.
 * Metrics live as long as the registry. Names must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*; labels is "" or a label set body such as
 * `code="2xx",proto="h2"` (the caller's text, validated for shape). Several
 * series may share a name (with different labels) if they share the type. */
struct coffer_net_metrics;
struct coffer_net_counter;
struct coffer_net_gauge;
struct coffer_net_histogram;

COFFER_NODISCARD enum coffer_err coffer_net_metrics_new(struct coffer_net_metrics **out);
void coffer_net_metrics_free(struct coffer_net_metrics *m);
COFFER_NODISCARD enum coffer_err coffer_net_metrics_counter(struct coffer_net_metrics *m, const char *name,
                                                            const char *help, const char *labels,
                                                            struct coffer_net_counter **out);
COFFER_NODISCARD enum coffer_err coffer_net_metrics_gauge(struct coffer_net_metrics *m, const char *name,
                                                          const char *help, const char *labels,
                                                          struct coffer_net_gauge **out);
/* bounds: strictly increasing upper bounds, at most 64; +Inf is implied. */
COFFER_NODISCARD enum coffer_err coffer_net_metrics_histogram(struct coffer_net_metrics *m, const char *name,
                                                              const char *help, const char *labels,
                                                              const double *bounds, size_t bound_count,
                                                              struct coffer_net_histogram **out);
void coffer_net_counter_add(struct coffer_net_counter *c, uint64_t n);
void coffer_net_gauge_set(struct coffer_net_gauge *g, int64_t v);
void coffer_net_gauge_add(struct coffer_net_gauge *g, int64_t delta);
void coffer_net_histogram_observe(struct coffer_net_histogram *h, double v);
uint64_t coffer_net_counter_get(const struct coffer_net_counter *c);
int64_t coffer_net_gauge_get(const struct coffer_net_gauge *g);
/* Text exposition format 0.0.4, appended to out. The content type to serve
 * it with is COFFER_NET_METRICS_CONTENT_TYPE. */
COFFER_NODISCARD enum coffer_err coffer_net_metrics_render(struct coffer_net_metrics *m, struct coffer_buf *out);
#define COFFER_NET_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ------------------------------------------------------------------ server */

struct coffer_net_server_config {
    SSL_CTX *ssl_ctx;           /* required; borrowed, must outlive the server.
                                 * The server installs its ALPN select callback. */
    const char *bind;           /* "host:port" or "[v6]:port" (port 0 picks one), or
                                 * "unix:PATH", a UNIX-domain socket (TLS over it as
                                 * over TCP; a socket already at PATH is replaced, the
                                 * file removed at free; port 0) */
    coffer_net_handler_fn handler;     /* HTTP/1.1 and non-gRPC HTTP/2 requests */
    void *handler_arg;
    coffer_net_grpc_handler_fn grpc_handler; /* NULL: gRPC calls get UNIMPLEMENTED */
    void *grpc_handler_arg;
    int threads;                /* worker loops; 0 = coffer_cpu_count() */
    size_t max_header_size;     /* request line + headers; 0 = 16 KiB */
    size_t max_body_size;       /* de-chunked body; 0 = 4 MiB */
    size_t max_response_size;   /* 0 = 64 MiB */
    size_t max_grpc_message_size; /* decompressed; 0 = max_body_size */
    uint32_t idle_timeout_ms;   /* between requests on a keep-alive connection; 0 = 60 s */
    uint32_t read_timeout_ms;   /* handshake, a started request and writes (inactivity),
                                 * and a request head in all; 0 = 30 s */
    uint32_t max_connections;   /* over all workers; 0 = 10000 */
    bool disable_h2;            /* offer only http/1.1 in ALPN */
    bool shared_listener;       /* one listening socket all loops accept on, instead of
                                 * one SO_REUSEPORT socket per loop (the default) */
    bool decode_gzip_bodies;    /* inflate request bodies sent with Content-Encoding:
                                 * gzip (as TF Serving does) before the handler sees
                                 * them, capped by max_body_size (413 over it, 400 for
                                 * bad data, 415 for other codings); the header stays */
    bool access_log;            /* one coffer_log line per request (info level) */
    struct coffer_net_metrics *metrics; /* optional: the server registers its own metrics here
                                         * (once per registry: a second server in the same
                                         * registry gets COFFER_E_EXISTS); must outlive it */
    /* optional: called on each worker's thread at the end of every turn of
     * its loop (after the callbacks of the events one wait returned, before
     * the next wait; also before the first), as Redis's beforeSleep: work
     * the turn's handlers collected can run here at once, e.g. the requests
     * of every ready connection as one batch. Answers finished on a
     * worker's own thread (here or in a handler) are sent after the hook
     * without a wake-up; the hook is called again while sending them
     * started new requests. */
    void (*turn_hook)(void *arg);
    void *turn_hook_arg;
};

struct coffer_net_server;

/* Validate the configuration and bind the listeners (so the port is known);
 * no thread runs yet. */
COFFER_NODISCARD enum coffer_err coffer_net_server_new(const struct coffer_net_server_config *cfg,
                                                       struct coffer_net_server **out);
/* The bound port (useful with port 0). */
uint16_t coffer_net_server_port(const struct coffer_net_server *s);
/* Start the worker threads. */
COFFER_NODISCARD enum coffer_err coffer_net_server_start(struct coffer_net_server *s);
/* Ask for a graceful stop: stop accepting, let in-flight requests finish
 * within grace_ms, then close everything and end the loops. Thread-safe and
 * async-signal-safe (it only write(2)s to descriptors); idempotent. */
void coffer_net_server_stop(struct coffer_net_server *s, uint32_t grace_ms);
/* Wait for the workers to end (after stop). */
void coffer_net_server_wait(struct coffer_net_server *s);
/* Stop (grace 0) if running, wait, and free. NULL is fine. */
void coffer_net_server_free(struct coffer_net_server *s);

/* ----------------------------------------------------------------- gRPC helpers */

/* Parse a grpc-timeout value ("100m", "5S", at most 8 digits and one unit
 * of H M S m u n) into nanoseconds. */
COFFER_NODISCARD enum coffer_err coffer_net_grpc_timeout_parse(const char *s, uint64_t *out_ns);

/* Parse one length-prefixed gRPC message (flag byte, u32be length, bytes)
 * from rd: on success *compressed, *msg and *msg_size (borrowed from rd's
 * buffer). A length over max_size is COFFER_E_TOO_LARGE; a flag other than
 * 0 or 1 is COFFER_E_MALFORMED; too few bytes is COFFER_E_TRUNCATED. */
COFFER_NODISCARD enum coffer_err coffer_net_grpc_frame_parse(struct coffer_rd *rd, size_t max_size,
                                                             bool *compressed, const uint8_t **msg,
                                                             size_t *msg_size);

/* gunzip at most max_size bytes into out (appended). */
COFFER_NODISCARD enum coffer_err coffer_net_gzip_inflate(const uint8_t *data, size_t size, size_t max_size,
                                                         struct coffer_buf *out);
/* gzip data into out (appended). */
COFFER_NODISCARD enum coffer_err coffer_net_gzip_deflate(const uint8_t *data, size_t size, struct coffer_buf *out);

/* ------------------------------------------------------------------ client */

/* A blocking HTTPS request with libcurl (the CLI -> server direction). */
struct coffer_net_client_opts {
    const char *ca_file;        /* pinned CA (PEM); required */
    const char *cert_file;      /* optional client certificate (PEM) */
    const char *key_file;       /* its key (PEM) */
    uint32_t timeout_ms;        /* 0 = 30 s */
    size_t max_response_size;   /* 0 = 64 MiB */
};

/* method "GET" or "POST" (body sent as application/json). *out_body from
 * coffer_malloc (NUL-terminated, not counted in *out_size). */
COFFER_NODISCARD enum coffer_err coffer_net_client_request(const struct coffer_net_client_opts *opts,
                                                           const char *method, const char *url,
                                                           const void *body, size_t body_size,
                                                           int *out_status, uint8_t **out_body,
                                                           size_t *out_size);

#endif /* COFFER_NET_H */
