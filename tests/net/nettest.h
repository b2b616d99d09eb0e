/*
 * nettest.h — shared helpers of the net tests: certificates made on the fly
 * (EC P-256, self-signed), TLS contexts, a test server with a few handlers,
 * libcurl and raw-TLS clients.
 */
#ifndef COFFER_NETTEST_H
#define COFFER_NETTEST_H

#include "testutil.h"

#include "coffer/net.h"

#include <pthread.h>
#include <stdatomic.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

struct nt_cert {
    EVP_PKEY *key;
    X509 *cert;
    char *cert_pem; /* malloc'd PEM text */
    char *key_pem;
};

/* A self-signed P-256 certificate for cn (with IP SAN 127.0.0.1). */
void nt_cert_make(struct nt_cert *c, const char *cn);
void nt_cert_free(struct nt_cert *c);

/* A server context with the server certificate; when client_ca is not NULL,
 * client certificates are verified against it (and required if require). */
SSL_CTX *nt_server_ctx(const struct nt_cert *server, const struct nt_cert *client_ca, bool require);

/* The test server: handlers at /echo, /sleep?ms=N, /fail, /big?n=N, /metrics;
 * gRPC /test.Echo/Echo (echo), /test.Echo/Sleep (sleep 200 ms), others
 * UNIMPLEMENTED. */
/* Deferred plain HTTP answers whose coffer_net_pending_grpc_send was
 * refused with COFFER_E_UNSUPPORTED (the test server tries each). */
extern atomic_int nt_stream_refusals;

struct nt_server {
    struct coffer_net_server *srv;
    pthread_mutex_t lock; /* the threads answering deferred requests */
    pthread_t finishers[64];
    int nfinishers;
    SSL_CTX *ctx;
    struct coffer_net_metrics *metrics;
    uint16_t port;
    char url[64];
};
/* cfg may be NULL; its handler fields are replaced by the test handlers. */
void nt_server_start(struct nt_server *s, SSL_CTX *ctx, const struct coffer_net_server_config *cfg);
void nt_server_stop(struct nt_server *s);

/* The server certificate every test uses (made once). */
const struct nt_cert *nt_server_cert(void);

/* One curl request. version: CURL_HTTP_VERSION_1_1 or _2TLS. */
struct nt_resp {
    long status;
    long http_version;
    char *body;       /* malloc'd, NUL-terminated */
    size_t body_size;
    char *headers;    /* all header lines (and trailers), malloc'd */
    CURLcode rc;
};
void nt_curl(CURL *h, const char *url, const char *method, const void *body, size_t body_size, long version,
             const struct nt_cert *client, struct curl_slist *extra_headers, struct nt_resp *out);
void nt_resp_free(struct nt_resp *r);

/* Raw TLS: connect, send bytes, read until the peer closes or timeout_ms.
 * Returns the bytes read (malloc'd, NUL-terminated). */
char *nt_raw(uint16_t port, const void *data, size_t size, int timeout_ms, size_t *out_size);

#endif
