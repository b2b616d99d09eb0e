/*
 * coord_client.c — HTTPS to the coordinator's client API, with the trust
 * flow MarbleRun's CLI uses (marblerun.md "How clients verify the
 * Coordinator"): fetch /api/v2/quote with a fresh nonce without TLS
 * verification; split the certificate chain into root and intermediate;
 * verify the quote's evidence (report data = SHA-256(root DER || nonce))
 * against the expected policy; from then on pin the root for TLS. The
 * verified certificates are cached so later commands can pin them.
 *
 * Trusts: nothing from the network before the evidence verified, except
 * under --insecure, which is said on stderr every time.
 */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_client.h"

#define REPLY_MAX (16u << 20)

void coord_client_init(struct coord_client *c)
{
    if (c->address == NULL)
        c->address = getenv("COFFER_COORDINATOR");
    if (c->address == NULL)
        c->address = "localhost:4433";
    if (c->timeout_s <= 0)
        c->timeout_s = 30;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct coffer_buf *b = arg;
    return coffer_buf_put(b, p, size * n) == COFFER_OK ? size * n : 0;
}

/* One HTTPS request. verify: pin the root (else no TLS verification). */
static enum coffer_err request(struct coord_client *c, const char *method, const char *path, const char *body,
                               bool verify, long *status, struct coffer_buf *out)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "libcurl could not start");
    char url[1024];
    snprintf(url, sizeof(url), "https://%s%s", c->address, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (verify && c->root_pem != NULL) {
        struct curl_blob ca = {.data = c->root_pem, .len = strlen(c->root_pem), .flags = CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    } else {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->cert_path != NULL) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_path);
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_path ? c->key_path : c->cert_path);
    }
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    CURLcode rc = curl_easy_perform(h);
    enum coffer_err r = COFFER_OK;
    if (rc != CURLE_OK)
        r = COFFER_FAIL(rc == CURLE_OPERATION_TIMEDOUT ? COFFER_E_TIMEOUT
                        : (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) ? COFFER_E_CERT
                                                                                                   : COFFER_E_NET,
                        "%s %s: %s", method, url, err[0] ? err : curl_easy_strerror(rc));
    else
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return r;
}

static enum coffer_err parse_reply(struct coffer_buf *b, long status, struct coord_reply *reply)
{
    memset(reply, 0, sizeof(*reply));
    reply->http_status = status;
    enum coffer_err r = coffer_json_parse(b->data ? b->data : (const uint8_t *)"", b->size, REPLY_MAX, &reply->json);
    if (r != COFFER_OK)
        return COFFER_FAIL(COFFER_E_NET, "the coordinator answered %ld with a body that is not JSON", status);
    reply->data = json_object_get(reply->json, "data");
    reply->message = json_string_value(json_object_get(reply->json, "message"));
    if (status < 200 || status > 299)
        return COFFER_FAIL(status == 401 || status == 403 ? COFFER_E_DENIED : COFFER_E_NET, "coordinator: %ld: %s",
                           status, reply->message ? reply->message : "(no message)");
    return COFFER_OK;
}

enum coffer_err coord_client_call(struct coord_client *c, const char *method, const char *path, const char *body,
                                  struct coord_reply *reply)
{
    memset(reply, 0, sizeof(*reply));
    if (c->root_pem == NULL) {
        enum coffer_err r = coord_client_verify(c);
        if (r != COFFER_OK)
            return r;
    }
    struct coffer_buf b;
    coffer_buf_init(&b, REPLY_MAX, true);
    long status = 0;
    enum coffer_err r = request(c, method, path, body, true, &status, &b);
    if (r == COFFER_OK)
        r = parse_reply(&b, status, reply);
    coffer_buf_free(&b);
    return r;
}

void coord_reply_free(struct coord_reply *r)
{
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* Split "root PEM + intermediate PEM" into two strings. */
static enum coffer_err split_chain(const char *chain, char **root, char **inter, X509 **root_x)
{
    BIO *b = BIO_new_mem_buf(chain, -1);
    X509 *x1 = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    X509 *x2 = x1 ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    enum coffer_err r = COFFER_OK;
    if (x1 == NULL || x2 == NULL) {
        r = COFFER_FAIL(COFFER_E_CERT, "the coordinator's certificate chain is not two PEM certificates");
    } else {
        char *out[2] = {NULL, NULL};
        X509 *xs[2] = {x1, x2};
        for (int i = 0; i < 2 && r == COFFER_OK; i++) {
            BIO *w = BIO_new(BIO_s_mem());
            char *p;
            long n;
            if (w == NULL || PEM_write_bio_X509(w, xs[i]) != 1 || (n = BIO_get_mem_data(w, &p)) <= 0 ||
                (out[i] = coffer_malloc((size_t)n + 1)) == NULL)
                r = COFFER_E_NOMEM;
            else {
                memcpy(out[i], p, (size_t)n);
                out[i][n] = '\0';
            }
            BIO_free(w);
        }
        if (r == COFFER_OK) {
            *root = out[0];
            *inter = out[1];
            *root_x = x1;
            x1 = NULL;
        } else {
            coffer_free(out[0]);
            coffer_free(out[1]);
        }
    }
    X509_free(x1);
    X509_free(x2);
    return r;
}

/* The check of the coordinator's evidence. */
enum coffer_err coord_client_check_evidence(const struct coord_client *c, const uint8_t *evidence, size_t size,
                                            const uint8_t report_data[64]);

enum coffer_err coord_client_verify(struct coord_client *c)
{
    uint8_t nonce[16];
    enum coffer_err r = coffer_random(nonce, sizeof(nonce));
    if (r != COFFER_OK)
        return r;
    char nonce64[32], path[128];
    coffer_base64_encode(nonce, sizeof(nonce), nonce64);
    for (char *p = nonce64; *p; p++) /* base64url, no padding */
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p == '=' ? '\0' : *p;
    snprintf(path, sizeof(path), "/api/v2/quote?nonce=%s", nonce64);
    struct coffer_buf b;
    coffer_buf_init(&b, REPLY_MAX, false);
    long status = 0;
    struct coord_reply reply;
    memset(&reply, 0, sizeof(reply));
    if ((r = request(c, "GET", path, NULL, false, &status, &b)) != COFFER_OK ||
        (r = parse_reply(&b, status, &reply)) != COFFER_OK) {
        coffer_buf_free(&b);
        coord_reply_free(&reply);
        return r;
    }
    coffer_buf_free(&b);
    const char *chain = json_string_value(json_object_get(reply.data, "cert"));
    const char *quote = json_string_value(json_object_get(reply.data, "quote"));
    X509 *root = NULL;
    uint8_t *ev = NULL;
    size_t ev_n = 0;
    if (chain == NULL || quote == NULL) {
        r = COFFER_FAIL(COFFER_E_NET, "the coordinator's quote reply lacks cert or quote");
    } else if ((r = split_chain(chain, &c->root_pem, &c->intermediate_pem, &root)) == COFFER_OK &&
               (r = coffer_base64_decode(quote, strlen(quote), &ev, &ev_n)) == COFFER_OK) {
        uint8_t *der = NULL;
        int n = i2d_X509(root, &der);
        uint8_t report_data[64] = {0};
        uint8_t *cat = n > 0 ? coffer_malloc((size_t)n + sizeof(nonce)) : NULL;
        if (cat == NULL) {
            r = COFFER_E_NOMEM;
        } else {
            memcpy(cat, der, (size_t)n);
            memcpy(cat + n, nonce, sizeof(nonce));
            SHA256(cat, (size_t)n + sizeof(nonce), report_data);
            coffer_free(cat);
            if (c->insecure)
                fprintf(stderr, "coffer: WARNING: --insecure: the coordinator's evidence is NOT verified; anyone on "
                                "the path could be answering\n");
            else
                r = coord_client_check_evidence(c, ev, ev_n, report_data);
        }
        OPENSSL_free(der);
    }
    if (json_is_true(json_object_get(reply.data, "simulation")))
        fprintf(stderr, "coffer: note: the coordinator runs in SIMULATION mode: no hardware protection\n");
    coffer_free(ev);
    X509_free(root);
    coord_reply_free(&reply);
    if (r == COFFER_OK && c->cache_path != NULL) {
        size_t a = strlen(c->root_pem), i = strlen(c->intermediate_pem);
        char *both = coffer_malloc(a + i + 1);
        if (both != NULL) {
            memcpy(both, c->root_pem, a);
            memcpy(both + a, c->intermediate_pem, i + 1);
            if (coffer_file_write_atomic(c->cache_path, both, a + i, 0644) != COFFER_OK)
                fprintf(stderr, "coffer: could not cache the coordinator's certificates in %s\n", c->cache_path);
            coffer_free(both);
        }
    }
    if (r != COFFER_OK) {
        coffer_free(c->root_pem);
        coffer_free(c->intermediate_pem);
        c->root_pem = c->intermediate_pem = NULL;
    }
    return r;
}

void coord_client_free(struct coord_client *c)
{
    coffer_free(c->root_pem);
    coffer_free(c->intermediate_pem);
    c->root_pem = c->intermediate_pem = NULL;
}
