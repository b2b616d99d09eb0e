/*
 * server.c — the TLS server: listeners, worker loops, connections, the
 * HTTP/1.1 request cycle, graceful stop, access log and server metrics.
 *
 * Design: N workers, each a thread running its own libevent event_base with
 * its own SO_REUSEPORT listening socket on the same address, so the kernel
 * spreads connections and no state is shared between loops except atomics
 * (connection count, metrics). (shared_listener: one socket, each loop
 * accepting on a dup of it; kept to measure against, see docs/net.md.) A connection is a bufferevent_openssl over the
 * accepted socket with an SSL made from the caller's SSL_CTX; after the
 * handshake, ALPN decides HTTP/2 (h2.c) or HTTP/1.1 (here). HTTP/1.1 runs a
 * small state machine per connection: head (parsed by http1.c from a copy of
 * at most max_header_size bytes), then a Content-Length or chunked body into
 * a capped buffer, then the handler, then one write of status line, headers
 * and body. Keep-alive and pipelining fall out of looping while input is
 * complete. Timeouts are the bufferevent read timeouts: read_timeout while a
 * handshake or a request is under way (408 when it fires mid-request),
 * idle_timeout between requests.
 *
 * Deferred answers: a handler may defer; the answer is finished on any
 * thread into the worker's mutex-guarded queue plus a byte on its wake pipe,
 * and sent by the worker (an HTTP/1.1 connection stops reading meanwhile).
 * An answer finished on the worker's own thread goes into a list only that
 * thread touches and is sent when the loop turn ends, without a wake-up.
 * The loop runs a turn at a time (EVLOOP_ONCE: one wait, its callbacks);
 * after each, the caller's turn hook runs (work the turn's handlers
 * collected, such as one batch of every ready connection's request), then
 * the answers finished on the thread are sent.
 * Sending: bufferevent_openssl writes a socket's output only when the loop
 * reports the socket writable, so every answer cost a turn, an epoll_wait
 * and two epoll_ctl (EPOLLOUT on, then off). Instead, a connection whose
 * output grew during a turn is queued (an evbuffer callback on its output)
 * and sent at the end of the turn by running the bufferevent's own write
 * event callback, as the loop would on EPOLLOUT: everything a turn answered
 * on a connection goes out in one write, and the write interest that was
 * switched on and off within the turn never reaches epoll (the changelist).
 * A socket that takes only part of it leaves the rest to the usual
 * EPOLLOUT path.
 * A pending answer holds no reference to its connection: the connection
 * clears the pending's pointer when it closes, so a late answer is dropped.
 *
 * Stop: coffer_net_server_stop stores the grace period in an atomic and
 * writes one byte to each worker's pipe (async-signal-safe). The worker then
 * closes its listener, closes idle connections, lets busy ones finish with
 * "Connection: close" (HTTP/2: GOAWAY), and breaks its loop when none are
 * left or when the grace timer fires, whichever is first.
 *
 * Invariants: I1 a connection belongs to one worker and is touched only on
 * that worker's thread. I2 a connection is freed only from a callback of its
 * own bufferevent or from its worker's stop path, and nothing touches it
 * after conn_close. I3 every request that got a head gets exactly one
 * response or the connection closes. I4 input and output held per
 * connection are bounded: the head by max_header_size, the body by
 * max_body_size (and allocated as its bytes arrive, never from a
 * Content-Length alone), pending output by pausing reads above OUT_HIGH.
 *
 * Trusts: the caller's SSL_CTX for TLS policy (a peer certificate is handed
 * to handlers only when verification succeeded). Nothing from the network.
 * Threading: described above; the server object is read-only after start
 * except for its atomics.
 */
#include "net_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h> /* the write event, for send_conn */
#include <event2/event.h>
#include <event2/listener.h>

#include <openssl/err.h>

#define OUT_HIGH (4u << 20) /* stop reading while this much output is pending */
#define BODY_FIRST ((size_t)1 << 20) /* a body's first allocation, at most */

enum h1_state { H1_HEAD, H1_BODY_LENGTH, H1_BODY_CHUNKED, H1_WAIT /* for a deferred answer */ };

struct coffer_net__conn {
    struct coffer_net__worker *w;
    struct coffer_net__conn *prev, *next;
    struct bufferevent *bev;
    SSL *ssl;
    X509 *peer;
    char remote[64];
    bool handshake_done;
    bool broken;        /* EOF or error seen: no close_notify */
    bool closing;       /* close once output has drained */
    bool read_paused;
    bool in_request;    /* bytes of a request have arrived */
    uint64_t served;    /* HTTP/1.1 requests answered */
    size_t scanned;     /* input bytes known to hold no end of head */
    int crlf_skipped;   /* empty lines ignored before this request line */
    struct coffer_net__h2 *h2;
    /* HTTP/1.1 */
    enum h1_state state;
    uint8_t *hbuf;      /* max_header_size + 1 bytes: a copy of the head */
    struct coffer_net__http1_head head;
    size_t head_size;
    uint64_t body_left;
    struct coffer_net__chunked chunk;
    struct coffer_buf body;
    uint64_t start_ns;
    struct coffer_net_pending *pendings; /* deferred answers not delivered yet */
    struct evbuffer_cb_entry *out_cb;    /* queues the connection for sending */
    struct coffer_net__conn *sprev, *snext; /* in the worker's send queue */
    bool send_queued;
    bool in_send;   /* its write callback runs from send_queued_conns */
    bool dead;      /* closed during that run: freed once it returns */
};

struct coffer_net__worker {
    struct coffer_net_server *srv;
    int index;
    struct event_base *base;
    struct evconnlistener *lis;
    int stop_pipe[2];
    struct event *stop_ev;
    struct event *deadline_ev;
    struct event *resume_ev;
    /* finished deferred answers, handed over by coffer_net_pending_finish */
    pthread_mutex_t qlock;
    bool qlock_ready;
    struct coffer_net_pending *queue;
    struct coffer_net_pending *local; /* handed over on this worker's own thread (no wake-up) */
    bool stop_loop;                   /* the loop must end (worker_break) */
    int wake_pipe[2];
    struct event *wake_ev;
    pthread_t thread;
    bool thread_started;
    struct coffer_net__conn *conns;
    size_t nconns;
    struct coffer_net__conn *sendq; /* output added this turn, sent at its end */
    bool draining;
    struct coffer_net_response resp;
    time_t date_t;
    char date[64];
};

struct coffer_net_server {
    struct coffer_net_server_config cfg;
    char *bind;
    int nworkers;
    struct coffer_net__worker *workers;
    uint16_t port;
    atomic_int open_conns;
    atomic_uint grace_ms;
    atomic_bool stop_requested;
    bool started;
    bool joined;
    bool have_metrics;
    struct coffer_net__server_metrics m;
    char *unix_path; /* a "unix:PATH" bind: the socket file, removed at free */
};

/* ------------------------------------------------------------ small helpers */

static struct timeval ms_tv(uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (long)(ms % 1000) * 1000};
    return tv;
}

static void set_read_timeout(struct coffer_net__conn *c, uint32_t ms)
{
    struct timeval rt = ms_tv(ms);
    struct timeval wt = ms_tv(c->w->srv->cfg.read_timeout_ms);
    bufferevent_set_timeouts(c->bev, &rt, &wt);
}

const struct coffer_net_server_config *coffer_net__conn_config(const struct coffer_net__conn *c)
{
    return &c->w->srv->cfg;
}
X509 *coffer_net__conn_peer(const struct coffer_net__conn *c) { return c->peer; }
const char *coffer_net__conn_remote(const struct coffer_net__conn *c) { return c->remote; }

enum coffer_err coffer_net__conn_write(struct coffer_net__conn *c, const void *data, size_t size)
{
    if (bufferevent_write(c->bev, data, size) != 0)
        return COFFER_FAIL(COFFER_E_NOMEM, "cannot queue %zu bytes of output", size);
    return COFFER_OK;
}

size_t coffer_net__conn_output_pending(const struct coffer_net__conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* Copy s into out for a key=value log line: printable ASCII except '"' and
 * '\\' kept, everything else %XX. */
static void log_escape(const char *s, char *out, size_t size)
{
    size_t n = 0;
    for (; *s != '\0' && n + 4 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            out[n++] = (char)ch;
        else
            n += (size_t)snprintf(out + n, size - n, "%%%02X", ch);
    }
    out[n] = '\0';
}

void coffer_net__conn_log(struct coffer_net__conn *c, const char *method, const char *path, int status,
                          int grpc_status, size_t in, size_t out, uint64_t start_ns, const char *proto)
{
    struct coffer_net_server *s = c->w->srv;
    uint64_t dur_ns = coffer_now_ns() - start_ns;
    if (s->have_metrics) {
        int cls = status / 100;
        coffer_net_counter_add(s->m.by_class[cls >= 1 && cls <= 5 ? cls : 0], 1);
        coffer_net_histogram_observe(s->m.duration, (double)dur_ns / 1e9);
    }
    if (s->cfg.access_log && coffer_log_get_level() <= COFFER_LOG_INFO) {
        char m[40], p[512];
        log_escape(method, m, sizeof(m));
        log_escape(path, p, sizeof(p));
        char g[24] = "";
        if (grpc_status >= 0)
            snprintf(g, sizeof(g), " grpc_status=%d", grpc_status);
        coffer_info("request proto=%s method=%s path=\"%s\" status=%d%s bytes_in=%zu bytes_out=%zu duration_us=%llu "
                    "remote=%s",
                    proto, m, p, status, g, in, out, (unsigned long long)(dur_ns / 1000), c->remote);
    }
}

/* ------------------------------------------------------------- connections */

/* End the worker's loop. worker_main runs the loop a turn at a time, so a
 * break from outside event_base_loop (from the turn's end) is kept too. */
static void worker_break(struct coffer_net__worker *w)
{
    w->stop_loop = true;
    event_base_loopbreak(w->base);
}

static void sendq_unlink(struct coffer_net__conn *c)
{
    if (!c->send_queued)
        return;
    if (c->sprev != NULL)
        c->sprev->snext = c->snext;
    else
        c->w->sendq = c->snext;
    if (c->snext != NULL)
        c->snext->sprev = c->sprev;
    c->sprev = c->snext = NULL;
    c->send_queued = false;
}

static void conn_close(struct coffer_net__conn *c)
{
    struct coffer_net__worker *w = c->w;
    if (c->in_send) {
        c->dead = true; /* send_conn frees it when the write callback returns */
        return;
    }
    sendq_unlink(c);
    if (c->out_cb != NULL)
        (void)evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub(&w->srv->open_conns, 1);
    if (w->srv->have_metrics)
        coffer_net_gauge_add(w->srv->m.open_conns, -1);
    for (struct coffer_net_pending *p = c->pendings; p != NULL; p = p->next)
        p->conn = NULL; /* its answer will be dropped */
    for (struct coffer_net_pending *p = c->pendings; p != NULL; p = p->next)
        coffer_net__pending_ended(p, false); /* (its owner may finish it: that only queues it) */
    if (c->h2 != NULL)
        coffer_net__h2_free(c->h2);
    if (c->handshake_done && !c->broken && c->ssl != NULL)
        (void)SSL_shutdown(c->ssl); /* best effort close_notify */
    X509_free(c->peer);
    bufferevent_free(c->bev); /* frees the SSL and closes the socket */
    coffer_free(c->hbuf);
    coffer_buf_free(&c->body);
    coffer_free(c);
    ERR_clear_error();
    if (w->draining && w->nconns == 0)
        worker_break(w);
}

/* Close now if nothing is pending, otherwise once output drains. */
static void conn_close_after_write(struct coffer_net__conn *c)
{
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    if (coffer_net__conn_output_pending(c) == 0)
        conn_close(c);
}

static void h1_reset(struct coffer_net__conn *c)
{
    c->state = H1_HEAD;
    c->in_request = false;
    c->head_size = 0;
    c->scanned = 0;
    c->crlf_skipped = 0;
    c->body_left = 0;
    c->start_ns = 0;
    if (c->body.cap > 65536) {
        coffer_buf_free(&c->body);
        coffer_buf_init(&c->body, c->w->srv->cfg.max_body_size, false);
    } else {
        coffer_buf_reset(&c->body);
    }
}

static void update_date(struct coffer_net__worker *w)
{
    time_t now = time(NULL);
    if (now == w->date_t && w->date[0] != '\0')
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(w->date, sizeof(w->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    w->date_t = now;
}

/* Copy s to p; returns the end. */
static char *put_s(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* The decimal digits of v at p; returns the end. */
static char *put_u(char *p, uint64_t v)
{
    char t[20];
    int i = 0;
    do
        t[i++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (i > 0)
        *p++ = t[--i];
    return p;
}

/* Queue one HTTP/1.1 response; returns the bytes queued. The head is put
 * together with copies, not snprintf (every answer takes this path). */
static size_t h1_send(struct coffer_net__conn *c, const struct coffer_net_response *resp, bool head_only,
                      bool close)
{
    struct coffer_net__worker *w = c->w;
    update_date(w);
    char line[256];
    /* 1xx, 204 and 304 have no body and no Content-Length (RFC 9110 8.6) */
    bool no_body = resp->status < 200 || resp->status == 204 || resp->status == 304;
    if (no_body)
        head_only = true;
    const char *reason = coffer_net__reason(resp->status);
    size_t rn = strlen(reason), dn = strlen(w->date);
    /* "HTTP/1.1 " 3 digits " " reason CRLF "Date: " date CRLF
     * "Content-Length: " 20 digits CRLF "Connection: close" CRLF */
    if (COFFER_NEVER(resp->status < 100 || resp->status > 999 || rn + dn + 80 > sizeof(line))) {
        c->closing = true;
        return 0;
    }
    char *p = put_s(line, "HTTP/1.1 ", 9);
    p = put_u(p, (uint64_t)resp->status);
    *p++ = ' ';
    p = put_s(p, reason, rn);
    p = put_s(p, "\r\nDate: ", 8);
    p = put_s(p, w->date, dn);
    p = put_s(p, "\r\n", 2);
    if (!no_body) {
        p = put_s(p, "Content-Length: ", 16);
        p = put_u(p, (uint64_t)resp->body.size);
        p = put_s(p, "\r\n", 2);
    }
    if (close)
        p = put_s(p, "Connection: close\r\n", 19);
    size_t n = (size_t)(p - line);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t total = (size_t)n + resp->headers.size + 2;
    size_t body = head_only ? 0 : resp->body.size;
    int rc = evbuffer_expand(out, total + body);
    rc |= evbuffer_add(out, line, (size_t)n);
    if (resp->headers.size > 0)
        rc |= evbuffer_add(out, resp->headers.data, resp->headers.size);
    rc |= evbuffer_add(out, "\r\n", 2);
    if (!head_only && resp->body.size > 0) {
        rc |= evbuffer_add(out, resp->body.data, resp->body.size);
        total += resp->body.size;
    }
    if (rc != 0)
        c->closing = true; /* output is incomplete: the connection cannot carry on */
    return total;
}

/* Answer an error the server found itself and close. */
static void h1_fail(struct coffer_net__conn *c, int status, const char *message)
{
    struct coffer_net_response *resp = &c->w->resp;
    coffer_net_response_error(resp, status, message);
    (void)h1_send(c, resp, false, true);
    if (c->in_request)
        coffer_net__conn_log(c, c->head_size > 0 ? c->head.method : "-", c->head_size > 0 ? c->head.path : "-",
                             status, -1, c->body.size, resp->body.size, c->start_ns ? c->start_ns : coffer_now_ns(),
                             "HTTP/1.1");
    conn_close_after_write(c);
}

static int status_for(enum coffer_err r)
{
    switch (r) {
    case COFFER_E_TOO_LARGE: return 431;
    case COFFER_E_UNSUPPORTED: return 501;
    case COFFER_E_BAD_VERSION: return 505;
    case COFFER_E_NOMEM: return 503;
    default: return 400;
    }
}

static bool h1_finish(struct coffer_net__conn *c, const struct coffer_net_response *resp);

/* Run the handler on a complete request and queue the response (or wait for
 * a deferred one). Returns false when the connection was closed. */
static bool h1_dispatch(struct coffer_net__conn *c)
{
    struct coffer_net__worker *w = c->w;
    struct coffer_net_server *s = w->srv;
    struct coffer_net_response *resp = &w->resp;
    coffer_net__response_reset(resp);
    resp->conn = c;
    resp->stream_id = 0;
    int decode = coffer_net__decode_body(&s->cfg, c->head.headers, c->head.header_count, &c->body);
    if (decode != 0) {
        h1_fail(c, decode, decode == 413   ? "request body too large"
                           : decode == 415 ? "unsupported Content-Encoding"
                           : decode == 503 ? "out of memory"
                                           : "cannot decode the gzip request body");
        return false;
    }
    static const uint8_t empty[1] = {0};
    struct coffer_net_request req = {
        .method = c->head.method,
        .path = c->head.path,
        .query = c->head.query,
        .headers = c->head.headers,
        .header_count = c->head.header_count,
        .body = c->body.size > 0 ? c->body.data : empty,
        .body_size = c->body.size,
        .peer_cert = c->peer,
        .remote_addr = c->remote,
        .protocol = c->head.minor == 1 ? "HTTP/1.1" : "HTTP/1.0",
    };
    coffer_net__call_handler(s->cfg.handler, s->cfg.handler_arg, &req, resp);
    c->served++;
    resp->conn = NULL;
    if (resp->deferred != NULL) {
        /* the head and body stay as they are until the answer comes */
        resp->deferred = NULL;
        c->state = H1_WAIT;
        bufferevent_disable(c->bev, EV_READ);
        return true;
    }
    return h1_finish(c, resp);
}

/* Queue the response to the request in c->head and go on to the next one.
 * Returns false when the connection was closed. */
static bool h1_finish(struct coffer_net__conn *c, const struct coffer_net_response *resp)
{
    struct coffer_net__worker *w = c->w;
    struct coffer_net_server *s = w->srv;
    const char *protocol = c->head.minor == 1 ? "HTTP/1.1" : "HTTP/1.0";
    bool close = !c->head.keep_alive || w->draining;
    bool head_only = strcmp(c->head.method, "HEAD") == 0;
    (void)h1_send(c, resp, head_only, close);
    coffer_net__conn_log(c, c->head.method, c->head.path, resp->status, -1, c->body.size, head_only ? 0 : resp->body.size,
                         c->start_ns, protocol);
    if (close || c->closing) {
        conn_close_after_write(c);
        return false;
    }
    h1_reset(c);
    set_read_timeout(c, s->cfg.idle_timeout_ms);
    return true;
}

/* Drive the HTTP/1.1 state machine over the input. Returns false when the
 * connection was closed. */
static bool h1_process(struct coffer_net__conn *c)
{
    struct coffer_net_server *s = c->w->srv;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (!c->closing && c->state != H1_WAIT) {
        size_t avail = evbuffer_get_length(in);
        if (coffer_net__conn_output_pending(c) > OUT_HIGH) {
            c->read_paused = true;
            bufferevent_disable(c->bev, EV_READ);
            return true;
        }
        if (c->state == H1_HEAD) {
            if (avail == 0)
                return true;
            /* The read timeout is about inactivity; a head that trickles in
             * a byte at a time must also arrive within read_timeout in all. */
            if (c->in_request && coffer_now_ns() - c->start_ns > (uint64_t)s->cfg.read_timeout_ms * 1000000u) {
                h1_fail(c, 408, "request head took too long");
                return false;
            }
            if (!c->in_request && avail >= 2) {
                /* RFC 9112 2.2: ignore an empty line before a request line
                 * (some clients send CRLF after a POST body) */
                char crlf[2];
                if (evbuffer_copyout(in, crlf, 2) == 2 && crlf[0] == '\r' && crlf[1] == '\n' && c->crlf_skipped < 4) {
                    evbuffer_drain(in, 2);
                    c->crlf_skipped++;
                    continue;
                }
            }
            if (!c->in_request) {
                c->in_request = true;
                c->start_ns = coffer_now_ns();
                set_read_timeout(c, s->cfg.read_timeout_ms);
            }
            if (c->hbuf == NULL && (c->hbuf = coffer_malloc(s->cfg.max_header_size + 1)) == NULL) {
                h1_fail(c, 503, "out of memory");
                return false;
            }
            /* Look for the blank line only in bytes not searched before, so a
             * head that trickles in costs linear time; parse once it is here. */
            size_t limit = avail < s->cfg.max_header_size ? avail : s->cfg.max_header_size;
            size_t n = 0;
            if (limit >= 4) {
                struct evbuffer_ptr from, to;
                if (evbuffer_ptr_set(in, &from, c->scanned > 3 ? c->scanned - 3 : 0, EVBUFFER_PTR_SET) == 0 &&
                    evbuffer_ptr_set(in, &to, limit, EVBUFFER_PTR_SET) == 0) {
                    struct evbuffer_ptr f = evbuffer_search_range(in, "\r\n\r\n", 4, &from, &to);
                    if (f.pos >= 0)
                        n = (size_t)f.pos + 4;
                }
            }
            if (n == 0 || n > limit) {
                c->scanned = limit;
                if (avail >= s->cfg.max_header_size) {
                    h1_fail(c, 431, "request head too large");
                    return false;
                }
                return true;
            }
            if (evbuffer_copyout(in, c->hbuf, n) != (ev_ssize_t)n) {
                h1_fail(c, 500, "internal error");
                return false;
            }
            size_t consumed;
            enum coffer_err r = coffer_net__http1_parse_head(c->hbuf, n, s->cfg.max_header_size, &c->head, &consumed);
            if (r != COFFER_OK) {
                h1_fail(c, status_for(r), coffer_err_detail());
                return false;
            }
            if (consumed == 0)
                return true;
            evbuffer_drain(in, consumed);
            c->scanned = 0;
            c->head_size = consumed;
            coffer_buf_reset(&c->body);
            if (c->head.chunked) {
                coffer_net__chunked_init(&c->chunk);
                c->state = H1_BODY_CHUNKED;
            } else if (c->head.has_length && c->head.content_length > 0) {
                if (c->head.content_length > s->cfg.max_body_size) {
                    h1_fail(c, 413, "request body too large");
                    return false;
                }
                c->body_left = c->head.content_length;
                /* room for the first MiB only: the rest grows as the bytes
                 * arrive, so a large Content-Length costs nothing until sent */
                if (coffer_buf_reserve(&c->body, c->body_left < BODY_FIRST ? (size_t)c->body_left : BODY_FIRST) !=
                    COFFER_OK) {
                    h1_fail(c, 503, "out of memory");
                    return false;
                }
                c->state = H1_BODY_LENGTH;
            } else {
                if (!h1_dispatch(c))
                    return false;
                continue;
            }
            if (c->head.expect_continue && evbuffer_get_length(in) == 0)
                bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            continue;
        }
        if (c->state == H1_BODY_LENGTH) {
            size_t take = avail < c->body_left ? avail : (size_t)c->body_left;
            if (take == 0)
                return true;
            if (coffer_buf_reserve(&c->body, take) != COFFER_OK) {
                h1_fail(c, 503, "out of memory");
                return false;
            }
            if (evbuffer_remove(in, c->body.data + c->body.size, take) != (int)take) {
                h1_fail(c, 500, "internal error");
                return false;
            }
            c->body.size += take;
            c->body_left -= take;
            if (c->body_left == 0 && !h1_dispatch(c))
                return false;
            continue;
        }
        /* H1_BODY_CHUNKED */
        if (avail == 0)
            return true;
        struct evbuffer_iovec v[8];
        int nv = evbuffer_peek(in, -1, NULL, v, 8);
        size_t used = 0;
        enum coffer_err r = COFFER_OK;
        for (int i = 0; i < nv && i < 8 && !c->chunk.done && r == COFFER_OK; i++) {
            size_t k;
            r = coffer_net__chunked_feed(&c->chunk, v[i].iov_base, v[i].iov_len, &c->body, &k);
            used += k;
        }
        evbuffer_drain(in, used);
        if (r != COFFER_OK) {
            h1_fail(c, r == COFFER_E_TOO_LARGE ? 413 : r == COFFER_E_NOMEM ? 503 : 400, coffer_err_detail());
            return false;
        }
        if (c->chunk.done) {
            if (!h1_dispatch(c))
                return false;
        } else if (used == 0) {
            return true;
        }
    }
    return true;
}

static bool h2_pump(struct coffer_net__conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (evbuffer_get_length(in) > 0) {
        if (coffer_net__conn_output_pending(c) > OUT_HIGH) {
            /* the peer does not read its responses: stop taking requests */
            c->read_paused = true;
            bufferevent_disable(c->bev, EV_READ);
            break;
        }
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t n = v.iov_len;
        bool ok = coffer_net__h2_recv(c->h2, v.iov_base, n);
        evbuffer_drain(in, n);
        if (!ok) {
            conn_close_after_write(c);
            return false;
        }
    }
    if (!coffer_net__h2_flush(c->h2)) {
        conn_close_after_write(c);
        return false;
    }
    if (c->w->draining && coffer_net__h2_idle(c->h2) && coffer_net__h2_served(c->h2) > 0) {
        coffer_net__h2_goaway(c->h2);
        (void)coffer_net__h2_flush(c->h2);
        conn_close_after_write(c);
        return false;
    }
    return true;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct coffer_net__conn *c = arg;
    if (c->closing)
        return;
    if (c->h2 != NULL)
        (void)h2_pump(c);
    else
        (void)h1_process(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct coffer_net__conn *c = arg;
    if (c->closing) {
        if (coffer_net__conn_output_pending(c) == 0)
            conn_close(c);
        return;
    }
    if (c->h2 != NULL) {
        if (c->read_paused && coffer_net__conn_output_pending(c) <= OUT_HIGH / 2) {
            c->read_paused = false;
            bufferevent_enable(c->bev, EV_READ);
        }
        (void)h2_pump(c);
        return;
    }
    if (c->read_paused && coffer_net__conn_output_pending(c) <= OUT_HIGH / 2) {
        c->read_paused = false;
        bufferevent_enable(c->bev, EV_READ);
        (void)h1_process(c);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct coffer_net__conn *c = arg;
    struct coffer_net_server *s = c->w->srv;
    if (what & BEV_EVENT_CONNECTED) {
        c->handshake_done = true;
        if (SSL_get_verify_result(c->ssl) == X509_V_OK)
            c->peer = SSL_get1_peer_certificate(c->ssl);
        const unsigned char *alpn = NULL;
        unsigned int alpn_len = 0;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
        set_read_timeout(c, s->cfg.idle_timeout_ms);
        if (alpn_len == 2 && memcmp(alpn, "h2", 2) == 0) {
            if (coffer_net__h2_new(c, &c->h2) != COFFER_OK) {
                conn_close(c);
                return;
            }
            (void)h2_pump(c);
        }
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && c->h2 == NULL && c->in_request && !c->closing) {
        h1_fail(c, 408, "request timed out");
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && c->h2 != NULL && !c->closing) {
        /* an idle HTTP/2 connection: say GOAWAY before closing (writes still work) */
        coffer_net__h2_goaway(c->h2);
        (void)coffer_net__h2_flush(c->h2);
        conn_close_after_write(c);
        return;
    }
    /* EOF, error, or an idle or handshake timeout */
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        c->broken = true;
    conn_close(c);
}

/* Output was added to a connection: send it when the turn ends. */
static void out_added_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    if (info->n_added == 0)
        return;
    struct coffer_net__conn *c = arg;
    if (c->send_queued || !c->handshake_done)
        return;
    c->send_queued = true;
    c->sprev = NULL;
    c->snext = c->w->sendq;
    if (c->w->sendq != NULL)
        c->w->sendq->sprev = c;
    c->w->sendq = c;
}

/* Write a connection's output now, by the bufferevent's own write event
 * callback (what the loop runs on EPOLLOUT; for a socket that is not
 * writable after all it keeps the rest and waits for EPOLLOUT as usual).
 * Our write callback is kept out of it (libevent would defer it to the
 * next turn, one more epoll_wait) and run here once the output is empty. */
static void send_conn(struct coffer_net__conn *c)
{
    struct bufferevent *bev = c->bev;
    struct event *wev = &bev->ev_write;
    event_callback_fn fn = event_get_callback(wev);
    if (fn == NULL || coffer_net__conn_output_pending(c) == 0)
        return;
    bufferevent_setcb(bev, read_cb, NULL, event_cb, c);
    c->in_send = true;
    fn(event_get_fd(wev), EV_WRITE, event_get_callback_arg(wev));
    c->in_send = false;
    if (c->dead) { /* an error closed it from inside */
        conn_close(c);
        return;
    }
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
    if (coffer_net__conn_output_pending(c) == 0)
        write_cb(bev, c);
}

/* Send every connection the turn gave output (sending may answer more). */
static void send_queued_conns(struct coffer_net__worker *w)
{
    struct coffer_net__conn *c;
    while ((c = w->sendq) != NULL) {
        sendq_unlink(c);
        send_conn(c);
    }
}

static void format_addr(const struct sockaddr *sa, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(out, size, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(out, size, "[%s]:%u", host, port);
    } else if (sa->sa_family == AF_UNIX) {
        snprintf(out, size, "unix");
    } else {
        snprintf(out, size, "unknown");
    }
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)lis;
    (void)salen;
    struct coffer_net__worker *w = arg;
    struct coffer_net_server *s = w->srv;
    if (w->draining || atomic_load(&s->open_conns) >= (int)s->cfg.max_connections) {
        close(fd);
        return;
    }
    int one = 1;
    if (s->unix_path == NULL)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct coffer_net__conn *c = coffer_calloc(1, sizeof(*c));
    SSL *ssl = c != NULL ? SSL_new(s->cfg.ssl_ctx) : NULL;
    if (ssl == NULL) {
        coffer_free(c);
        close(fd);
        ERR_clear_error();
        return;
    }
    c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        SSL_free(ssl);
        coffer_free(c);
        close(fd);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    c->ssl = ssl;
    c->w = w;
    format_addr(sa, c->remote, sizeof(c->remote));
    coffer_buf_init(&c->body, s->cfg.max_body_size, false);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    atomic_fetch_add(&s->open_conns, 1);
    if (s->have_metrics)
        coffer_net_gauge_add(s->m.open_conns, 1);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    c->out_cb = evbuffer_add_cb(bufferevent_get_output(c->bev), out_added_cb, c);
    set_read_timeout(c, s->cfg.read_timeout_ms);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ------------------------------------------------------- deferred answers */

static struct coffer_net_pending *pending_new(struct coffer_net__conn *c, int32_t stream_id, size_t max_body)
{
    struct coffer_net_pending *p = coffer_calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->w = c->w;
    p->conn = c;
    p->stream_id = stream_id;
    coffer_net__response_init(&p->resp, max_body);
    coffer_buf_init(&p->msgs, 0, false);
    p->next = c->pendings;
    if (c->pendings != NULL)
        c->pendings->prev = p;
    c->pendings = p;
    return p;
}

/* see coffer/net.h */
enum coffer_err coffer_net_response_defer(struct coffer_net_response *resp, struct coffer_net_pending **out)
{
    *out = NULL;
    if (resp == NULL || resp->conn == NULL || resp->deferred != NULL)
        return COFFER_FAIL(COFFER_E_STATE, "a response can be deferred once, from inside its handler");
    struct coffer_net_pending *p = pending_new(resp->conn, resp->stream_id, resp->body.max);
    if (p == NULL)
        return COFFER_E_NOMEM;
    resp->deferred = p;
    *out = p;
    return COFFER_OK;
}

/* see coffer/net.h */
enum coffer_err coffer_net_grpc_reply_defer(struct coffer_net_grpc_reply *reply, struct coffer_net_pending **out)
{
    *out = NULL;
    if (reply == NULL || reply->conn == NULL || reply->deferred != NULL || reply->code >= 0)
        return COFFER_FAIL(COFFER_E_STATE, "a gRPC reply can be deferred once, from inside its handler, before "
                           "a status is set");
    struct coffer_net_pending *p = pending_new(reply->conn, reply->stream_id, 0);
    if (p == NULL)
        return COFFER_E_NOMEM;
    p->grpc = true;
    p->reply.code = -1;
    coffer_buf_init(&p->reply.message, reply->message.max, false);
    reply->deferred = p;
    *out = p;
    return COFFER_OK;
}

struct coffer_net_grpc_reply *coffer_net_pending_grpc_reply(struct coffer_net_pending *p) { return &p->reply; }

struct coffer_net_response *coffer_net_pending_response(struct coffer_net_pending *p) { return &p->resp; }

/* The worker whose loop runs on this thread (NULL elsewhere). */
static _Thread_local struct coffer_net__worker *this_worker;

#define STREAM_PENDING_MAX ((size_t)1 << 20) /* sent messages a worker has not taken yet */

/* Hand p to its worker (finished, or with messages to send). Under
 * w->qlock; returns whether the wake pipe must be written. On the worker's
 * own thread (in a callback or at the turn's end) p goes into a list only
 * that thread reads, sent when the turn ends without a wake-up. */
static bool pending_push(struct coffer_net_pending *p)
{
    struct coffer_net__worker *w = p->w;
    if (p->queued)
        return false; /* it is on its way: the worker takes what is new with it */
    p->queued = true;
    if (w == this_worker) {
        p->qnext = w->local;
        w->local = p;
        return false;
    }
    /* one wake-up per batch of answers: the worker takes the whole queue
     * after reading the pipe, so only a push onto an empty queue needs one */
    bool first = w->queue == NULL;
    p->qnext = w->queue;
    w->queue = p;
    return first;
}

static void wake_worker(struct coffer_net__worker *w)
{
    ssize_t n = write(w->wake_pipe[1], "p", 1);
    (void)n; /* a full pipe already holds a wake-up */
}

/* see coffer/net.h */
void coffer_net_pending_finish(struct coffer_net_pending *p)
{
    if (p == NULL)
        return;
    struct coffer_net__worker *w = p->w;
    pthread_mutex_lock(&w->qlock);
    p->finished = true;
    bool wake = pending_push(p);
    pthread_mutex_unlock(&w->qlock);
    if (wake)
        wake_worker(w);
}

/* see coffer/net.h */
enum coffer_err coffer_net_pending_grpc_send(struct coffer_net_pending *p, const void *msg, size_t size)
{
    if (p == NULL || !p->grpc || p->stream_id == 0)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "streaming answers need a gRPC call over HTTP/2");
    struct coffer_net__worker *w = p->w;
    enum coffer_err r = COFFER_OK;
    pthread_mutex_lock(&w->qlock);
    if (p->finished)
        r = COFFER_FAIL(COFFER_E_STATE, "the call is finished");
    else if (size > UINT32_MAX || p->msgs.size + 5 + size > STREAM_PENDING_MAX)
        r = COFFER_FAIL(COFFER_E_TOO_LARGE, "%zu bytes of streamed messages waiting", p->msgs.size + 5 + size);
    else {
        /* the frame goes in whole or not at all */
        size_t mark = p->msgs.size;
        if ((r = coffer_buf_put_u8(&p->msgs, 0)) != COFFER_OK ||
            (r = coffer_buf_put_u32be(&p->msgs, (uint32_t)size)) != COFFER_OK ||
            (r = coffer_buf_put(&p->msgs, msg, size)) != COFFER_OK)
            p->msgs.size = mark;
    }
    bool wake = r == COFFER_OK && pending_push(p);
    pthread_mutex_unlock(&w->qlock);
    if (wake)
        wake_worker(w);
    return r;
}

/* see coffer/net.h */
void coffer_net_pending_on_end(struct coffer_net_pending *p,
                               void (*fn)(void *arg, struct coffer_net_pending *p, bool stopping), void *arg)
{
    p->on_end = fn;
    p->on_end_arg = arg;
}

/* see net_int.h */
void coffer_net__pending_ended(struct coffer_net_pending *p, bool stopping)
{
    if (p->on_end != NULL && !p->ended) {
        p->ended = true;
        p->on_end(p->on_end_arg, p, stopping);
    }
}

static void pending_free(struct coffer_net_pending *p)
{
    coffer_net__response_free(&p->resp);
    coffer_buf_free(&p->reply.message);
    coffer_buf_free(&p->msgs);
    coffer_free(p);
}

static void deliver(struct coffer_net_pending *p)
{
    struct coffer_net__worker *w = p->w;
    pthread_mutex_lock(&w->qlock);
    p->queued = false;
    bool fin = p->finished;
    struct coffer_buf msgs = p->msgs; /* what was sent since the last delivery */
    coffer_buf_init(&p->msgs, 0, false);
    pthread_mutex_unlock(&w->qlock);
    struct coffer_net__conn *c = p->conn;
    if (c != NULL && fin) {
        if (p->prev != NULL)
            p->prev->next = p->next;
        else
            c->pendings = p->next;
        if (p->next != NULL)
            p->next->prev = p->prev;
    }
    if (c == NULL) {
        /* the client has gone: what it was sent is dropped */
    } else if (p->stream_id == 0) {
        if (fin && COFFER_ALWAYS(c->state == H1_WAIT) && !c->closing) {
            c->state = H1_HEAD;
            if (h1_finish(c, &p->resp)) {
                bufferevent_enable(c->bev, EV_READ);
                (void)h1_process(c);
            }
        }
    } else if (c->h2 != NULL && !c->closing) {
        coffer_net__h2_deliver(c->h2, p, &msgs, fin);
        (void)h2_pump(c);
    }
    coffer_buf_free(&msgs);
    if (fin)
        pending_free(p);
}

/* Send a newest-first list of finished answers, oldest first. */
static void deliver_list(struct coffer_net_pending *list)
{
    struct coffer_net_pending *fifo = NULL;
    while (list != NULL) {
        struct coffer_net_pending *next = list->qnext;
        list->qnext = fifo;
        fifo = list;
        list = next;
    }
    while (fifo != NULL) {
        struct coffer_net_pending *next = fifo->qnext;
        deliver(fifo);
        fifo = next;
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct coffer_net__worker *w = arg;
    char b[64];
    while (read(fd, b, sizeof(b)) > 0) {
    }
    pthread_mutex_lock(&w->qlock);
    struct coffer_net_pending *list = w->queue;
    w->queue = NULL;
    pthread_mutex_unlock(&w->qlock);
    deliver_list(list);
}

/* The end of a loop turn: the turn hook (which may finish answers, e.g.
 * batches it runs), then the answers finished on this thread, then the
 * output of every connection that got some; delivering and sending may
 * start pipelined requests, so again until nothing is left. */
static void turn_end(struct coffer_net__worker *w)
{
    const struct coffer_net_server_config *cfg = &w->srv->cfg;
    for (;;) {
        if (cfg->turn_hook != NULL)
            cfg->turn_hook(cfg->turn_hook_arg);
        struct coffer_net_pending *list = w->local;
        w->local = NULL;
        if (list != NULL) {
            deliver_list(list);
            continue;
        }
        if (w->sendq == NULL)
            break;
        send_queued_conns(w);
    }
}

/* accept() failed (EMFILE, ENFILE, ENOMEM...): the listening socket stays
 * readable, so pause accepting for a moment instead of spinning. */
static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
    struct coffer_net__worker *w = arg;
    coffer_warn("net: accept failed: %s; pausing accepts for 100 ms", strerror(errno));
    evconnlistener_disable(lis);
    struct timeval tv = ms_tv(100);
    evtimer_add(w->resume_ev, &tv);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct coffer_net__worker *w = arg;
    if (w->lis != NULL && !w->draining)
        evconnlistener_enable(w->lis);
}

/* ------------------------------------------------------------------- stop */

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct coffer_net__worker *w = arg;
    while (w->conns != NULL)
        conn_close(w->conns);
    worker_break(w);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct coffer_net__worker *w = arg;
    char b[16];
    while (read(fd, b, sizeof(b)) > 0) {
    }
    if (w->draining)
        return;
    w->draining = true;
    if (w->lis != NULL) {
        evconnlistener_free(w->lis);
        w->lis = NULL;
    }
    /* Close keep-alive connections that sit idle after a request; busy ones
     * close after their response. A connection that has not carried a
     * request yet (handshake under way, or its first request still in the
     * socket) is most likely bringing one: it is served, with
     * "Connection: close", until the grace period ends. */
    /* calls that go on by themselves (server streaming) are told to end:
     * their owners finish them, and what they send still goes out */
    for (struct coffer_net__conn *k = w->conns; k != NULL; k = k->next)
        for (struct coffer_net_pending *p = k->pendings; p != NULL; p = p->next)
            coffer_net__pending_ended(p, true);
    struct coffer_net__conn *c = w->conns;
    while (c != NULL) {
        struct coffer_net__conn *next = c->next;
        if (c->h2 != NULL) {
            if (coffer_net__h2_served(c->h2) > 0) {
                coffer_net__h2_goaway(c->h2);
                (void)h2_pump(c);
            }
        } else if (!c->in_request && !c->closing && c->served > 0) {
            conn_close_after_write(c);
        }
        c = next;
    }
    if (w->nconns == 0) {
        worker_break(w);
        return;
    }
    struct timeval tv = ms_tv(atomic_load(&w->srv->grace_ms));
    evtimer_add(w->deadline_ev, &tv);
}

void coffer_net_server_stop(struct coffer_net_server *s, uint32_t grace_ms)
{
    if (s == NULL)
        return;
    if (!atomic_exchange(&s->stop_requested, true))
        atomic_store(&s->grace_ms, grace_ms);
    for (int i = 0; i < s->nworkers; i++) {
        ssize_t n = write(s->workers[i].stop_pipe[1], "s", 1);
        (void)n; /* a full pipe already holds a stop request */
    }
}

/* ----------------------------------------------------------------- set-up */

static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg)
{
    (void)ssl;
    bool allow_h2 = arg != NULL;
    static const unsigned char protos_h2[] = "\x02h2\x08http/1.1";
    static const unsigned char protos_h1[] = "\x08http/1.1";
    const unsigned char *srv = allow_h2 ? protos_h2 : protos_h1;
    unsigned srv_len = allow_h2 ? sizeof(protos_h2) - 1 : sizeof(protos_h1) - 1;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, srv, srv_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no overlap: carry on without ALPN (HTTP/1.1) */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static enum coffer_err split_bind(const char *bind, char *host, size_t host_size, char *port, size_t port_size)
{
    const char *colon;
    const char *h = bind;
    size_t hlen;
    if (bind[0] == '[') {
        const char *close = strchr(bind, ']');
        if (close == NULL || close[1] != ':')
            return COFFER_FAIL(COFFER_E_INVALID_ARG, "bind address %s: expected [v6]:port", bind);
        h = bind + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(bind, ':');
        if (colon == NULL)
            return COFFER_FAIL(COFFER_E_INVALID_ARG, "bind address %s: expected host:port", bind);
        hlen = (size_t)(colon - bind);
    }
    if (hlen == 0 || hlen >= host_size || strlen(colon + 1) == 0 || strlen(colon + 1) >= port_size)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "bind address %s: bad host or port", bind);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9')
            return COFFER_FAIL(COFFER_E_INVALID_ARG, "bind address %s: bad port", bind);
    return COFFER_OK;
}

static enum coffer_err open_listener(const struct addrinfo *ai, uint16_t port, bool reuseport, int *out_fd,
                                     uint16_t *bound)
{
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return COFFER_FAIL(COFFER_E_NET, "socket: %s", strerror(errno));
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        return COFFER_FAIL(COFFER_E_NET, "bind/listen on port %u: %s", port, strerror(e));
    }
    struct sockaddr_storage got;
    socklen_t len = sizeof(got);
    if (getsockname(fd, (struct sockaddr *)&got, &len) != 0) {
        close(fd);
        return COFFER_FAIL(COFFER_E_NET, "getsockname: %s", strerror(errno));
    }
    *bound = got.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&got)->sin_port)
                                      : ntohs(((struct sockaddr_in6 *)&got)->sin6_port);
    *out_fd = fd;
    return COFFER_OK;
}

/* A listening UNIX-domain socket at path (a "unix:PATH" bind, as gRPC
 * names one). A socket left there by an earlier run is replaced (gRPC
 * servers do the same); any other file there is an error. */
static enum coffer_err open_unix_listener(const char *path, int *out_fd)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(sa.sun_path))
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "UNIX socket path must be 1..%zu bytes", sizeof(sa.sun_path) - 1);
    memcpy(sa.sun_path, path, n + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return COFFER_FAIL(COFFER_E_EXISTS, "%s exists and is not a socket", path);
        if (unlink(path) != 0)
            return COFFER_FAIL(COFFER_E_NET, "cannot replace the old socket %s: %s", path, strerror(errno));
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return COFFER_FAIL(COFFER_E_NET, "socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        return COFFER_FAIL(COFFER_E_NET, "bind/listen on %s: %s", path, strerror(e));
    }
    *out_fd = fd;
    return COFFER_OK;
}

static const double duration_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};

static enum coffer_err register_metrics(struct coffer_net_server *s)
{
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    enum coffer_err r;
    for (int i = 0; i < 6; i++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "class=\"%s\"", classes[i]);
        if ((r = coffer_net_metrics_counter(s->cfg.metrics, "coffer_http_requests_total",
                                            "HTTP and gRPC requests answered, by status class", labels,
                                            &s->m.by_class[i])) != COFFER_OK)
            return r;
    }
    if ((r = coffer_net_metrics_histogram(s->cfg.metrics, "coffer_http_request_duration_seconds",
                                          "Time from the first byte of a request to its response being queued", "",
                                          duration_buckets, sizeof(duration_buckets) / sizeof(duration_buckets[0]),
                                          &s->m.duration)) != COFFER_OK)
        return r;
    if ((r = coffer_net_metrics_gauge(s->cfg.metrics, "coffer_http_open_connections", "Open TLS connections", "",
                                      &s->m.open_conns)) != COFFER_OK)
        return r;
    s->have_metrics = true;
    return COFFER_OK;
}

static void worker_teardown(struct coffer_net__worker *w)
{
    while (w->conns != NULL)
        conn_close(w->conns);
    if (w->lis != NULL)
        evconnlistener_free(w->lis);
    w->lis = NULL;
    if (w->stop_ev != NULL)
        event_free(w->stop_ev);
    if (w->deadline_ev != NULL)
        event_free(w->deadline_ev);
    if (w->resume_ev != NULL)
        event_free(w->resume_ev);
    w->stop_ev = w->deadline_ev = w->resume_ev = NULL;
    if (w->wake_ev != NULL)
        event_free(w->wake_ev);
    w->wake_ev = NULL;
    if (w->qlock_ready) {
        /* answers finished after the loop ended: their connections are gone */
        pthread_mutex_lock(&w->qlock);
        struct coffer_net_pending *p = w->queue;
        w->queue = NULL;
        pthread_mutex_unlock(&w->qlock);
        while (p != NULL) {
            struct coffer_net_pending *next = p->qnext;
            pending_free(p);
            p = next;
        }
        pthread_mutex_destroy(&w->qlock);
        w->qlock_ready = false;
    }
    while (w->local != NULL) {
        struct coffer_net_pending *next = w->local->qnext;
        pending_free(w->local);
        w->local = next;
    }
    for (int i = 0; i < 2; i++)
        if (w->wake_pipe[i] >= 0)
            close(w->wake_pipe[i]);
    w->wake_pipe[0] = w->wake_pipe[1] = -1;
    if (w->base != NULL)
        event_base_free(w->base);
    w->base = NULL;
    for (int i = 0; i < 2; i++)
        if (w->stop_pipe[i] >= 0)
            close(w->stop_pipe[i]);
    w->stop_pipe[0] = w->stop_pipe[1] = -1;
    coffer_net__response_free(&w->resp);
}

/* see coffer/net.h */
enum coffer_err coffer_net_server_new(const struct coffer_net_server_config *cfg, struct coffer_net_server **out)
{
    *out = NULL;
    if (cfg == NULL || cfg->ssl_ctx == NULL || cfg->bind == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "server config needs ssl_ctx and bind");
    char host[256] = "", port[8] = "0";
    const char *unix_path = strncmp(cfg->bind, "unix:", 5) == 0 ? cfg->bind + 5 : NULL;
    enum coffer_err r = unix_path != NULL ? COFFER_OK : split_bind(cfg->bind, host, sizeof(host), port, sizeof(port));
    if (r != COFFER_OK)
        return r;
    long want_port = strtol(port, NULL, 10);
    if (want_port > 65535)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "port %ld out of range", want_port);

    struct coffer_net_server *s = coffer_calloc(1, sizeof(*s));
    if (s == NULL)
        return COFFER_E_NOMEM;
    s->cfg = *cfg;
    struct coffer_net_server_config *c = &s->cfg;
    if (c->threads <= 0)
        c->threads = coffer_cpu_count();
    if (c->threads > 256)
        c->threads = 256;
    if (c->max_header_size == 0)
        c->max_header_size = 16384;
    if (c->max_body_size == 0)
        c->max_body_size = 4u << 20;
    if (c->max_response_size == 0)
        c->max_response_size = 64u << 20;
    if (c->max_grpc_message_size == 0)
        c->max_grpc_message_size = c->max_body_size;
    if (c->idle_timeout_ms == 0)
        c->idle_timeout_ms = 60000;
    if (c->read_timeout_ms == 0)
        c->read_timeout_ms = 30000;
    if (c->max_connections == 0)
        c->max_connections = 10000;
    if (c->max_connections > INT32_MAX)
        c->max_connections = INT32_MAX;
    s->bind = coffer_strdup(cfg->bind);
    s->workers = coffer_calloc((size_t)c->threads, sizeof(*s->workers));
    if (s->bind == NULL || s->workers == NULL) {
        r = COFFER_E_NOMEM;
        goto fail;
    }
    c->bind = s->bind;
    for (int i = 0; i < c->threads; i++) {
        s->workers[i].stop_pipe[0] = s->workers[i].stop_pipe[1] = -1;
        s->workers[i].wake_pipe[0] = s->workers[i].wake_pipe[1] = -1;
        s->workers[i].qlock_ready = pthread_mutex_init(&s->workers[i].qlock, NULL) == 0;
        coffer_net__response_init(&s->workers[i].resp, c->max_response_size);
    }
    s->nworkers = c->threads;
    if (c->metrics != NULL && (r = register_metrics(s)) != COFFER_OK)
        goto fail;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (unix_path != NULL) {
        /* one socket (SO_REUSEPORT is for TCP), every loop accepting on it */
        c->shared_listener = true;
    } else {
        int gai = getaddrinfo(host, port, &hints, &ai);
        if (gai != 0 || ai == NULL) {
            r = COFFER_FAIL(COFFER_E_NET, "cannot resolve bind host %s: %s", host, gai_strerror(gai));
            goto fail;
        }
    }
    uint16_t bound = (uint16_t)want_port;
    int first_fd = -1; /* owned by worker 0's listener once it exists */
    for (int i = 0; i < s->nworkers && r == COFFER_OK; i++) {
        struct coffer_net__worker *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        int fd = -1;
        if (c->shared_listener && i > 0) {
            /* one socket, every loop accepting on its own descriptor of it */
            fd = fcntl(first_fd, F_DUPFD_CLOEXEC, 0);
            if (fd < 0) {
                r = COFFER_FAIL(COFFER_E_NET, "dup of the listening socket: %s", strerror(errno));
                break;
            }
        } else if (unix_path != NULL) {
            if ((r = open_unix_listener(unix_path, &fd)) != COFFER_OK)
                break;
            if ((s->unix_path = coffer_strdup(unix_path)) == NULL) {
                close(fd);
                r = COFFER_E_NOMEM;
                break;
            }
        } else if ((r = open_listener(ai, bound, !c->shared_listener, &fd, &bound)) != COFFER_OK) {
            break;
        }
        if (i == 0)
            first_fd = fd;
        /* epoll changes are applied at the next wait, so interest that
         * is switched off and on again within a turn (a deferred answer
         * stops reading until it is sent; the write event of an answer)
         * costs no epoll_ctl: 2 a request instead of 4 on the REST bench */
        struct event_config *ec = event_config_new();
        if (ec != NULL) {
            (void)event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
            w->base = event_base_new_with_config(ec);
            event_config_free(ec);
        }
        if (w->base == NULL || !w->qlock_ready || pipe2(w->stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0 ||
            pipe2(w->wake_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
            close(fd);
            r = COFFER_FAIL(COFFER_E_NET, "cannot create an event loop");
            break;
        }
        w->lis = evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
        w->stop_ev = event_new(w->base, w->stop_pipe[0], EV_READ | EV_PERSIST, stop_cb, w);
        w->deadline_ev = evtimer_new(w->base, deadline_cb, w);
        w->resume_ev = evtimer_new(w->base, resume_cb, w);
        w->wake_ev = event_new(w->base, w->wake_pipe[0], EV_READ | EV_PERSIST, wake_cb, w);
        if (w->lis != NULL)
            evconnlistener_set_error_cb(w->lis, accept_error_cb);
        if (w->lis == NULL) {
            close(fd);
            r = COFFER_FAIL(COFFER_E_NET, "cannot create a listener");
        } else if (w->stop_ev == NULL || w->deadline_ev == NULL || w->resume_ev == NULL || w->wake_ev == NULL ||
                   event_add(w->stop_ev, NULL) != 0 || event_add(w->wake_ev, NULL) != 0) {
            r = COFFER_FAIL(COFFER_E_NET, "cannot create loop events");
        }
    }
    if (ai != NULL)
        freeaddrinfo(ai);
    if (r != COFFER_OK)
        goto fail;
    s->port = unix_path != NULL ? 0 : bound;
    SSL_CTX_set_alpn_select_cb(c->ssl_ctx, alpn_select_cb, c->disable_h2 ? NULL : (void *)1);
    *out = s;
    return COFFER_OK;
fail:
    coffer_net_server_free(s);
    return r;
}

uint16_t coffer_net_server_port(const struct coffer_net_server *s) { return s != NULL ? s->port : 0; }

/* The worker's loop, a turn at a time (each turn waits for events and runs
 * their callbacks), with turn_end after each, as Redis's beforeSleep. */
static void *worker_main(void *arg)
{
    struct coffer_net__worker *w = arg;
    this_worker = w;
    for (;;) {
        turn_end(w);
        if (w->stop_loop || event_base_loop(w->base, EVLOOP_ONCE) != 0)
            break;
    }
    turn_end(w);
    /* A bufferevent freed from inside one of its own callbacks is finalized
     * by a callback the loop runs later; the loop broke before that, so run
     * what is pending once more (without waiting). */
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    turn_end(w);
    this_worker = NULL;
    return NULL;
}

enum coffer_err coffer_net_server_start(struct coffer_net_server *s)
{
    if (s == NULL || s->started)
        return COFFER_FAIL(COFFER_E_STATE, "server already started");
    s->started = true;
    /* Workers run with every signal blocked: process signals (SIGTERM...)
     * go to the caller's threads, and a write to a connection the peer has
     * closed fails with EPIPE instead of raising SIGPIPE. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    enum coffer_err r = COFFER_OK;
    for (int i = 0; i < s->nworkers && r == COFFER_OK; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0)
            r = COFFER_FAIL(COFFER_E_NET, "cannot start worker thread %d", i);
        else
            s->workers[i].thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != COFFER_OK) {
        coffer_net_server_stop(s, 0);
        coffer_net_server_wait(s);
    }
    return r;
}

void coffer_net_server_wait(struct coffer_net_server *s)
{
    if (s == NULL || s->joined)
        return;
    for (int i = 0; i < s->nworkers; i++)
        if (s->workers[i].thread_started)
            pthread_join(s->workers[i].thread, NULL);
    s->joined = true;
}

void coffer_net_server_free(struct coffer_net_server *s)
{
    if (s == NULL)
        return;
    if (s->started && !s->joined) {
        coffer_net_server_stop(s, 0);
        coffer_net_server_wait(s);
    }
    if (s->workers != NULL) {
        for (int i = 0; i < s->nworkers; i++)
            worker_teardown(&s->workers[i]);
        coffer_free(s->workers);
    }
    if (s->unix_path != NULL) {
        (void)unlink(s->unix_path);
        coffer_free(s->unix_path);
    }
    coffer_free(s->bind);
    coffer_free(s);
}
