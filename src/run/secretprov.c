/*
 * secretprov.c — Gramine's secret-provisioning protocol over RA-TLS.
 *
 * Server design: a listening socket and an accept thread; each connection
 * gets its own thread (at most max_connections), with socket timeouts so
 * every thread ends within timeout_ms. The TLS layer requires a client
 * certificate and only checks that the client holds its key; after the
 * handshake the connection's thread verifies the RA-TLS certificate with
 * attest/ (evidence, binding to the certificate's key, policy) on its own,
 * so verdicts never mix between connections. The chain must be exactly the
 * one self-signed certificate. Only then are the 35 request bytes read and
 * the secret sent. Every connection logs one line: remote address, result,
 * and for refusals the step that failed.
 *
 * Client design: a fresh RA-TLS certificate from the provider, servers
 * tried in order, the server certificate verified against the CA file with
 * its host name, then the fixed request and the length-prefixed secret read
 * into secret memory through the bounds-checked reader.
 *
 * Trusts: attest/ for evidence; the CA file (client side).
 * Invariants: I1 the secret is written only after the peer's RA-TLS
 * certificate verified; I2 the secret lives in secret memory on both sides.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coffer/run.h"

#define REQ_SIZE 35
#define RESP_HDR_SIZE 37

struct coffer_secretprov_server {
    int listen_fd;
    int stop_pipe[2];
    uint16_t port;
    SSL_CTX *ssl_ctx;
    struct coffer_secret *secret;
    struct coffer_attest_verify_opts opts;
    struct coffer_attest_policy policy;
    uint32_t max_conns;
    uint32_t timeout_ms;
    pthread_t accept_thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t active;
    atomic_uint_fast64_t released, refused;
};

struct conn {
    struct coffer_secretprov_server *s;
    int fd;
    char remote[64];
};

static enum coffer_err parse_hostport(const char *addr, char *host, size_t hsize, char *port, size_t psize)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || colon[1] == '\0')
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "address \"%s\" is not host:port", addr);
    size_t hn = (size_t)(colon - addr);
    if (addr[0] == '[' && hn >= 2 && addr[hn - 1] == ']') {
        addr++;
        hn -= 2;
    }
    if (hn >= hsize || strlen(colon + 1) >= psize)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "address \"%s\" is too long", addr);
    memcpy(host, addr, hn);
    host[hn] = '\0';
    snprintf(port, psize, "%s", colon + 1);
    return COFFER_OK;
}

enum coffer_err coffer_secretprov_server_new(const struct coffer_secretprov_server_config *cfg,
                                             struct coffer_secretprov_server **out)
{
    *out = NULL;
    if (cfg->ssl_ctx == NULL || cfg->secret == NULL || cfg->secret_size == 0 ||
        cfg->secret_size > COFFER_SECRETPROV_MAX_SECRET)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "a secret provider needs TLS and a secret of 1 byte to 1 MiB");
    char host[256], port[16];
    enum coffer_err r = parse_hostport(cfg->bind ? cfg->bind : "127.0.0.1:4433", host, sizeof(host), port,
                                       sizeof(port));
    if (r != COFFER_OK)
        return r;
    struct coffer_secretprov_server *s = coffer_calloc(1, sizeof(*s));
    if (s == NULL)
        return COFFER_E_NOMEM;
    s->listen_fd = s->stop_pipe[0] = s->stop_pipe[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->ssl_ctx = cfg->ssl_ctx;
    s->opts = cfg->opts;
    s->policy = cfg->policy;
    s->max_conns = cfg->max_connections ? cfg->max_connections : 64;
    s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 30000;
    if ((r = coffer_secret_new(cfg->secret_size, &s->secret)) != COFFER_OK) {
        coffer_secretprov_server_free(s);
        return r;
    }
    memcpy(s->secret->data, cfg->secret, cfg->secret_size);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        coffer_secretprov_server_free(s);
        return COFFER_FAIL(COFFER_E_NET, "cannot resolve %s", cfg->bind);
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        coffer_secretprov_server_free(s);
        return COFFER_FAIL(COFFER_E_NET, "cannot listen on %s: %s", cfg->bind, strerror(e));
    }
    freeaddrinfo(ai);
    s->listen_fd = fd;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    if (pipe2(s->stop_pipe, O_CLOEXEC) != 0) {
        coffer_secretprov_server_free(s);
        return COFFER_FAIL(COFFER_E_IO, "pipe: %s", strerror(errno));
    }
    *out = s;
    return COFFER_OK;
}

uint16_t coffer_secretprov_server_port(const struct coffer_secretprov_server *s) { return s->port; }

static bool io_all(SSL *ssl, void *buf, size_t n, bool write)
{
    size_t done = 0;
    while (done < n) {
        int k = write ? SSL_write(ssl, (uint8_t *)buf + done, (int)(n - done))
                      : SSL_read(ssl, (uint8_t *)buf + done, (int)(n - done));
        if (k <= 0)
            return false;
        done += (size_t)k;
    }
    return true;
}

/* A peer that hangs up must not kill the process with SIGPIPE: block it on
 * this thread while writing to sockets, and discard one that arrived. */
static void sigpipe_block(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

static void sigpipe_restore(const sigset_t *old)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int accept_any(int preverify, X509_STORE_CTX *ctx)
{
    (void)preverify;
    X509_STORE_CTX_set_error(ctx, X509_V_OK); /* the evidence is checked after the handshake */
    return 1;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct coffer_secretprov_server *s = c->s;
    sigset_t old;
    sigpipe_block(&old); /* for the life of this thread */
    struct timeval tv = {.tv_sec = s->timeout_ms / 1000, .tv_usec = (s->timeout_ms % 1000) * 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    SSL *ssl = SSL_new(s->ssl_ctx);
    const char *why = NULL;
    char detail[512] = "";
    struct coffer_attest_claims claims;
    memset(&claims, 0, sizeof(claims));
    X509 *peer = NULL;
    if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1) {
        why = "out of memory";
    } else {
        SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
        if (SSL_accept(ssl) != 1) {
            why = "TLS handshake failed (an RA-TLS client certificate is required)";
        } else if ((peer = SSL_get1_peer_certificate(ssl)) == NULL) {
            why = "no client certificate";
        } else {
            STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
            struct coffer_attest_verify_opts opts = s->opts;
            if (opts.now == 0)
                opts.now = time(NULL);
            if (chain != NULL && sk_X509_num(chain) > 1) {
                why = "the client sent a chain; an RA-TLS certificate stands alone";
            } else if (coffer_attest_ratls_verify_x509(peer, &opts, &s->policy, &claims) != COFFER_OK) {
                why = "evidence refused";
                snprintf(detail, sizeof(detail), "%s: %s", coffer_attest_step_name(claims.failed_step),
                         coffer_err_detail());
            } else {
                uint8_t req[REQ_SIZE];
                if (!io_all(ssl, req, REQ_SIZE, false) ||
                    memcmp(req, COFFER_SECRETPROV_REQUEST, REQ_SIZE) != 0) {
                    why = "not a secret-provisioning request";
                } else {
                    uint8_t hdr[RESP_HDR_SIZE + 4];
                    memcpy(hdr, COFFER_SECRETPROV_RESPONSE, RESP_HDR_SIZE);
                    uint32_t n = (uint32_t)s->secret->size;
                    hdr[37] = (uint8_t)(n >> 24);
                    hdr[38] = (uint8_t)(n >> 16);
                    hdr[39] = (uint8_t)(n >> 8);
                    hdr[40] = (uint8_t)n;
                    if (!io_all(ssl, hdr, sizeof(hdr), true) || !io_all(ssl, s->secret->data, s->secret->size, true))
                        why = "the client went away";
                    else
                        SSL_shutdown(ssl);
                }
            }
        }
    }
    if (why == NULL) {
        atomic_fetch_add(&s->released, 1);
        char m[65] = "";
        if (claims.kind == COFFER_ATTEST_KIND_SGX)
            coffer_hex_encode(claims.mrenclave, 32, m);
        else if (claims.kind == COFFER_ATTEST_KIND_SIM)
            coffer_hex_encode(claims.exe_sha256, 32, m);
        coffer_info("secret-provider remote=%s result=released kind=%s measurement=%s", c->remote,
                    coffer_attest_kind_name(claims.kind), m);
    } else {
        atomic_fetch_add(&s->refused, 1);
        coffer_warn("secret-provider remote=%s result=refused reason=\"%s\"%s%s", c->remote, why,
                    detail[0] ? " detail=" : "", detail);
    }
    X509_free(peer);
    SSL_free(ssl);
    close(c->fd);
    coffer_free(c);
    pthread_mutex_lock(&s->mu);
    s->active--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    ERR_clear_error();
    return NULL;
}

static void *accept_main(void *arg)
{
    struct coffer_secretprov_server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN}, {.fd = s->stop_pipe[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&s->mu);
        bool full = s->active >= s->max_conns;
        if (!full)
            s->active++;
        pthread_mutex_unlock(&s->mu);
        if (full) {
            atomic_fetch_add(&s->refused, 1);
            coffer_warn("secret-provider: %u connections open, refusing another", s->max_conns);
            close(fd);
            continue;
        }
        struct conn *c = coffer_calloc(1, sizeof(*c));
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (c != NULL) {
            c->s = s;
            c->fd = fd;
            char ip[INET6_ADDRSTRLEN] = "?";
            uint16_t port = 0;
            if (ss.ss_family == AF_INET) {
                inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
                port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            } else if (ss.ss_family == AF_INET6) {
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
                port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            }
            snprintf(c->remote, sizeof(c->remote), "%s:%u", ip, port);
        }
        if (c == NULL || pthread_create(&t, &attr, conn_main, c) != 0) {
            coffer_free(c);
            close(fd);
            pthread_mutex_lock(&s->mu);
            s->active--;
            pthread_mutex_unlock(&s->mu);
        }
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

enum coffer_err coffer_secretprov_server_start(struct coffer_secretprov_server *s)
{
    if (pthread_create(&s->accept_thread, NULL, accept_main, s) != 0)
        return COFFER_FAIL(COFFER_E_NOMEM, "cannot start the accept thread");
    s->started = true;
    return COFFER_OK;
}

void coffer_secretprov_server_stop(struct coffer_secretprov_server *s)
{
    ssize_t w = write(s->stop_pipe[1], "x", 1);
    (void)w;
}

void coffer_secretprov_server_wait(struct coffer_secretprov_server *s)
{
    if (s->started) {
        pthread_join(s->accept_thread, NULL);
        s->started = false;
    }
    pthread_mutex_lock(&s->mu);
    while (s->active > 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void coffer_secretprov_server_stats(const struct coffer_secretprov_server *s, uint64_t *released, uint64_t *refused)
{
    *released = atomic_load(&s->released);
    *refused = atomic_load(&s->refused);
}

void coffer_secretprov_server_free(struct coffer_secretprov_server *s)
{
    if (s == NULL)
        return;
    if (s->started) {
        coffer_secretprov_server_stop(s);
        coffer_secretprov_server_wait(s);
    }
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    for (int i = 0; i < 2; i++)
        if (s->stop_pipe[i] >= 0)
            close(s->stop_pipe[i]);
    coffer_secret_free(s->secret);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    coffer_free(s);
}

/* ---- client */

enum coffer_err coffer_secretprov_parse_header(const uint8_t *hdr, size_t size, uint32_t *len)
{
    struct coffer_rd rd;
    const uint8_t *magic;
    uint32_t n = 0;
    coffer_rd_init(&rd, hdr, size);
    enum coffer_err r;
    if ((r = coffer_rd_bytes(&rd, RESP_HDR_SIZE, &magic)) != COFFER_OK || (r = coffer_rd_u32be(&rd, &n)) != COFFER_OK)
        return r;
    if (memcmp(magic, COFFER_SECRETPROV_RESPONSE, RESP_HDR_SIZE) != 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "not a secret-provisioning response");
    if (n == 0 || n > COFFER_SECRETPROV_MAX_SECRET)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "a secret of %u bytes (1 to %u allowed)", n, COFFER_SECRETPROV_MAX_SECRET);
    if ((r = coffer_rd_expect_end(&rd)) != COFFER_OK)
        return r;
    *len = n;
    return COFFER_OK;
}

static int tcp_connect(const char *host, const char *port, uint32_t timeout_ms)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai, *p;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (p = ai; p != NULL && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, p->ai_addr, p->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

enum coffer_err coffer_secretprov_fetch(const char *servers, const char *ca_path, enum coffer_attest_provider p,
                                        uint32_t timeout_ms, struct coffer_secret **out)
{
    *out = NULL;
    if (servers == NULL || ca_path == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "secret provisioning needs servers and a CA file");
    if (timeout_ms == 0)
        timeout_ms = 30000;
    sigset_t old_mask;
    sigpipe_block(&old_mask);
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    enum coffer_err r = coffer_attest_ratls_make(p, &cert, &key);
    if (r != COFFER_OK) {
        coffer_err_context("making the RA-TLS certificate");
        sigpipe_restore(&old_mask);
        return r;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_load_verify_locations(ctx, ca_path, NULL) != 1) {
        r = COFFER_FAIL(COFFER_E_CERT, "setting up TLS with CA file %s failed", ca_path);
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    r = COFFER_FAIL(COFFER_E_NET, "no secret-provisioning server in \"%s\" could be reached", servers);
    char list[1024];
    snprintf(list, sizeof(list), "%s", servers);
    char *save = NULL;
    for (char *tok = strtok_r(list, ",; ", &save); tok != NULL; tok = strtok_r(NULL, ",; ", &save)) {
        char host[256], port[16];
        if (parse_hostport(tok, host, sizeof(host), port, sizeof(port)) != COFFER_OK)
            continue;
        int fd = tcp_connect(host, port, timeout_ms);
        if (fd < 0)
            continue;
        SSL *ssl = SSL_new(ctx);
        if (ssl == NULL) {
            close(fd);
            r = COFFER_E_NOMEM;
            break;
        }
        SSL_set_fd(ssl, fd);
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
        uint8_t hdr[RESP_HDR_SIZE + 4];
        if (SSL_connect(ssl) != 1) {
            long v = SSL_get_verify_result(ssl);
            r = COFFER_FAIL(v != X509_V_OK ? COFFER_E_CERT : COFFER_E_NET, "%s: TLS handshake failed%s%s", tok,
                            v != X509_V_OK ? ": " : " (the server refused our evidence?)",
                            v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
        } else if (!io_all(ssl, (void *)COFFER_SECRETPROV_REQUEST, REQ_SIZE, true) ||
                   !io_all(ssl, hdr, sizeof(hdr), false)) {
            r = COFFER_FAIL(COFFER_E_DENIED, "%s closed the connection: it refused our evidence", tok);
        } else {
            uint32_t n = 0;
            if ((r = coffer_secretprov_parse_header(hdr, sizeof(hdr), &n)) != COFFER_OK)
                coffer_err_context("%s", tok);
            else if ((r = coffer_secret_new(n, out)) == COFFER_OK && !io_all(ssl, (*out)->data, n, false)) {
                coffer_secret_free(*out);
                *out = NULL;
                r = COFFER_FAIL(COFFER_E_TRUNCATED, "%s: the secret was cut short", tok);
            }
            if (r == COFFER_OK)
                SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(fd);
        ERR_clear_error();
        if (r == COFFER_OK || r == COFFER_E_DENIED || r == COFFER_E_CERT)
            break; /* reached a server: its answer stands */
    }
out:
    SSL_CTX_free(ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    sigpipe_restore(&old_mask);
    return r;
}
