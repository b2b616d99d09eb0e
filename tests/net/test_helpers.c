/*
 * test_helpers.c — helpers for the net tests (see nettest.h). No tests here.
 */
#include "nettest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static char *bio_text(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

void nt_cert_make(struct nt_cert *c, const char *cn)
{
    memset(c, 0, sizeof(*c));
    c->key = EVP_EC_gen("P-256");
    assert_non_null(c->key);
    X509 *x = X509_new();
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(coffer_now_ns() & 0x7fffffff));
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, c->key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"subjectAltName", "IP:127.0.0.1,DNS:localhost"},
                             {"basicConstraints", "critical,CA:TRUE"},
                             {"keyUsage", "critical,digitalSignature,keyCertSign"}};
    for (size_t i = 0; i < 3; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
        assert_non_null(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, c->key, EVP_sha256()) > 0);
    c->cert = x;
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    c->cert_pem = bio_text(b);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, c->key, NULL, NULL, 0, NULL, NULL);
    c->key_pem = bio_text(b);
    BIO_free(b);
}

void nt_cert_free(struct nt_cert *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->cert);
    free(c->cert_pem);
    free(c->key_pem);
    memset(c, 0, sizeof(*c));
}

static struct nt_cert server_cert;
static pthread_once_t server_cert_once = PTHREAD_ONCE_INIT;
static void make_server_cert(void) { nt_cert_make(&server_cert, "coffer-test-server"); }

const struct nt_cert *nt_server_cert(void)
{
    pthread_once(&server_cert_once, make_server_cert);
    return &server_cert;
}

SSL_CTX *nt_server_ctx(const struct nt_cert *server, const struct nt_cert *client_ca, bool require)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_use_certificate(ctx, server->cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, server->key), 1);
    if (client_ca != NULL) {
        X509_STORE *st = SSL_CTX_get_cert_store(ctx);
        assert_int_equal(X509_STORE_add_cert(st, client_ca->cert), 1);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    }
    return ctx;
}

/* ------------------------------------------------------------- handlers */

static long query_num(const char *q, const char *key, long dflt)
{
    const char *p = strstr(q, key);
    if (p == NULL || p[strlen(key)] != '=')
        return dflt;
    return strtol(p + strlen(key) + 1, NULL, 10);
}

atomic_int nt_stream_refusals;

struct defer_job {
    struct coffer_net_pending *p;
    long ms;
    bool grpc;          /* a gRPC echo of msg */
    int stream;         /* gRPC: msg sent this many times, 20 ms apart, then the finish */
    uint8_t msg[64];
    size_t msg_size;
};

/* Answers a deferred request from another thread after ms. */
static void *finisher(void *arg)
{
    struct defer_job *j = arg;
    usleep((useconds_t)j->ms * 1000);
    if (j->grpc && j->stream > 0) {
        struct coffer_net_grpc_reply *reply = coffer_net_pending_grpc_reply(j->p);
        for (int i = 0; i < j->stream; i++) {
            if (i > 0)
                usleep(20 * 1000);
            if (coffer_net_pending_grpc_send(j->p, j->msg, j->msg_size) != COFFER_OK)
                coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_INTERNAL, "cannot stream");
        }
        coffer_net_pending_finish(j->p);
        free(j);
        return NULL;
    }
    if (j->grpc) {
        struct coffer_net_grpc_reply *reply = coffer_net_pending_grpc_reply(j->p);
        if (coffer_net_grpc_reply_append(reply, j->msg, j->msg_size) != COFFER_OK)
            coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_INTERNAL, "cannot build the deferred answer");
        coffer_net_pending_finish(j->p);
        free(j);
        return NULL;
    }
    /* a plain HTTP answer cannot stream */
    if (coffer_net_pending_grpc_send(j->p, "x", 1) == COFFER_E_UNSUPPORTED)
        atomic_fetch_add(&nt_stream_refusals, 1);
    struct coffer_net_response *resp = coffer_net_pending_response(j->p);
    coffer_net_response_set_status(resp, 202);
    if (coffer_net_response_add_header(resp, "Content-Type", "text/plain") != COFFER_OK ||
        coffer_net_response_append(resp, "deferred", 8) != COFFER_OK)
        coffer_net_response_error(resp, 500, "cannot build the deferred answer");
    coffer_net_pending_finish(j->p);
    free(j);
    return NULL;
}

/* Run j on a finisher thread of s (or at once when none is left). */
static void start_finisher(struct nt_server *s, struct defer_job *j)
{
    pthread_mutex_lock(&s->lock);
    if (s->nfinishers == 64 || pthread_create(&s->finishers[s->nfinishers], NULL, finisher, j) != 0) {
        pthread_mutex_unlock(&s->lock);
        j->ms = 0;
        finisher(j); /* answer at once rather than never */
        return;
    }
    s->nfinishers++;
    pthread_mutex_unlock(&s->lock);
}

static enum coffer_err test_handler(void *arg, const struct coffer_net_request *req, struct coffer_net_response *resp)
{
    struct nt_server *s = arg;
    if (strcmp(req->path, "/defer") == 0) {
        struct defer_job *j = calloc(1, sizeof(*j));
        if (j == NULL)
            return COFFER_FAIL(COFFER_E_NOMEM, "defer job");
        j->ms = query_num(req->query, "ms", 100);
        enum coffer_err r = coffer_net_response_defer(resp, &j->p);
        if (r != COFFER_OK) {
            free(j);
            return r;
        }
        start_finisher(s, j);
        return COFFER_OK;
    }
    if (strcmp(req->path, "/fail") == 0)
        return COFFER_FAIL(COFFER_E_INTERNAL, "asked to fail");
    if (strcmp(req->path, "/metrics") == 0) {
        struct coffer_buf b;
        coffer_buf_init(&b, 0, false);
        enum coffer_err r = coffer_net_metrics_render(s->metrics, &b);
        if (r == COFFER_OK)
            r = coffer_net_response_append(resp, b.data, b.size);
        coffer_buf_free(&b);
        if (r == COFFER_OK)
            r = coffer_net_response_add_header(resp, "Content-Type", COFFER_NET_METRICS_CONTENT_TYPE);
        return r;
    }
    if (strcmp(req->path, "/big") == 0) {
        long n = query_num(req->query, "n", 1000);
        for (long i = 0; i < n; i++) {
            char c = (char)('a' + i % 26);
            enum coffer_err r = coffer_net_response_append(resp, &c, 1);
            if (r != COFFER_OK)
                return r;
        }
        return COFFER_OK;
    }
    if (strcmp(req->path, "/status") == 0) {
        coffer_net_response_set_status(resp, (int)query_num(req->query, "code", 200));
        return coffer_net_response_append(resp, "dropped", 7);
    }
    if (strcmp(req->path, "/sleep") == 0)
        usleep((useconds_t)query_num(req->query, "ms", 100) * 1000);
    if (strcmp(req->path, "/echo") != 0 && strcmp(req->path, "/sleep") != 0) {
        coffer_net_response_error(resp, 404, "not found");
        return COFFER_OK;
    }
    /* {"method":..,"path":..,"query":..,"body_size":..,"body":..,"peer":..,"proto":..} */
    char cn[128] = "";
    if (req->peer_cert != NULL)
        X509_NAME_get_text_by_NID(X509_get_subject_name(req->peer_cert), NID_commonName, cn, sizeof(cn));
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:s%,s:s,s:s,s:s}", "method", req->method, "path", req->path, "query",
                          req->query, "body_size", (json_int_t)req->body_size, "body", (const char *)req->body,
                          req->body_size, "peer", cn, "proto", req->protocol, "remote", req->remote_addr);
    if (o == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "json_pack");
    const char *x = coffer_net_request_header(req, "x-test");
    if (x != NULL)
        json_object_set_new(o, "x_test", json_string(x));
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (text == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "json_dumps");
    enum coffer_err r = coffer_net_response_append(resp, text, strlen(text));
    free(text);
    if (r == COFFER_OK)
        r = coffer_net_response_add_header(resp, "Content-Type", "application/json");
    return r;
}

static enum coffer_err test_grpc(void *arg, const struct coffer_net_grpc_call *call, struct coffer_net_grpc_reply *reply)
{
    struct nt_server *s = arg;
    if (strcmp(call->path, "/test.Echo/Later") == 0 || strcmp(call->path, "/test.Echo/Stream") == 0) {
        /* echo from another thread 100 ms later (Stream: three times, then the trailers) */
        struct defer_job *j = calloc(1, sizeof(*j));
        if (j == NULL || call->message_size > sizeof(j->msg)) {
            free(j);
            return COFFER_FAIL(COFFER_E_NOMEM, "defer job");
        }
        j->ms = 100;
        j->grpc = true;
        j->stream = strcmp(call->path, "/test.Echo/Stream") == 0 ? 3 : 0;
        memcpy(j->msg, call->message, call->message_size);
        j->msg_size = call->message_size;
        enum coffer_err r = coffer_net_grpc_reply_defer(reply, &j->p);
        if (r != COFFER_OK) {
            free(j);
            return r;
        }
        start_finisher(s, j);
        return COFFER_OK;
    }
    if (strcmp(call->path, "/test.Echo/Sleep") == 0) {
        usleep(200 * 1000);
        return coffer_net_grpc_reply_append(reply, call->message, call->message_size);
    }
    if (strcmp(call->path, "/test.Echo/Echo") == 0)
        return coffer_net_grpc_reply_append(reply, call->message, call->message_size);
    if (strcmp(call->path, "/test.Echo/Fail") == 0) {
        coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_INVALID_ARGUMENT, "bad input: 100% wrong\nline");
        return COFFER_OK;
    }
    coffer_net_grpc_reply_status(reply, COFFER_NET_GRPC_UNIMPLEMENTED, "unknown method");
    return COFFER_OK;
}

void nt_server_start(struct nt_server *s, SSL_CTX *ctx, const struct coffer_net_server_config *cfg)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    struct coffer_net_server_config c = {0};
    if (cfg != NULL)
        c = *cfg;
    s->ctx = ctx;
    assert_int_equal(coffer_net_metrics_new(&s->metrics), COFFER_OK);
    c.ssl_ctx = ctx;
    c.bind = "127.0.0.1:0";
    c.handler = test_handler;
    c.handler_arg = s;
    c.grpc_handler = test_grpc;
    c.grpc_handler_arg = s;
    c.metrics = s->metrics;
    if (c.threads == 0)
        c.threads = 2;
    assert_int_equal(coffer_net_server_new(&c, &s->srv), COFFER_OK);
    s->port = coffer_net_server_port(s->srv);
    assert_true(s->port != 0);
    snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%u", s->port);
    assert_int_equal(coffer_net_server_start(s->srv), COFFER_OK);
}

void nt_server_stop(struct nt_server *s)
{
    /* every deferred answer is finished before the server goes */
    pthread_mutex_lock(&s->lock);
    int n = s->nfinishers;
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n; i++)
        pthread_join(s->finishers[i], NULL);
    pthread_mutex_destroy(&s->lock);
    coffer_net_server_stop(s->srv, 1000);
    coffer_net_server_wait(s->srv);
    coffer_net_server_free(s->srv);
    coffer_net_metrics_free(s->metrics);
    SSL_CTX_free(s->ctx);
    memset(s, 0, sizeof(*s));
}

/* ---------------------------------------------------------------- curl */

struct grow {
    char *p;
    size_t n;
};

static size_t grow_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct grow *g = arg;
    size_t n = size * nmemb;
    char *p = realloc(g->p, g->n + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + g->n, data, n);
    g->n += n;
    p[g->n] = '\0';
    g->p = p;
    return n;
}

void nt_curl(CURL *h, const char *url, const char *method, const void *body, size_t body_size, long version,
             const struct nt_cert *client, struct curl_slist *extra_headers, struct nt_resp *out)
{
    memset(out, 0, sizeof(*out));
    struct grow b = {0}, hd = {0};
    const struct nt_cert *sc = nt_server_cert();
    struct curl_blob ca = {.data = sc->cert_pem, .len = strlen(sc->cert_pem), .flags = CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, version);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, grow_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hd);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, extra_headers);
    if (client != NULL) {
        struct curl_blob cb = {.data = client->cert_pem, .len = strlen(client->cert_pem), .flags = CURL_BLOB_COPY};
        struct curl_blob kb = {.data = client->key_pem, .len = strlen(client->key_pem), .flags = CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_size);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    out->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &out->http_version);
    out->body = b.p != NULL ? b.p : strdup("");
    out->body_size = b.n;
    out->headers = hd.p != NULL ? hd.p : strdup("");
}

void nt_resp_free(struct nt_resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------------- raw TLS */

char *nt_raw(uint16_t port, const void *data, size_t size, int timeout_ms, size_t *out_size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), nt_server_cert()->cert);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    assert_int_equal(SSL_connect(ssl), 1);
    if (size > 0)
        assert_int_equal(SSL_write(ssl, data, (int)size), (int)size);
    struct grow g = {0};
    char buf[4096];
    for (;;) {
        int n = SSL_read(ssl, buf, sizeof(buf));
        if (n <= 0)
            break;
        assert_int_equal(grow_cb(buf, 1, (size_t)n, &g), (size_t)n);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    ERR_clear_error();
    *out_size = g.n;
    return g.p != NULL ? g.p : strdup("");
}
