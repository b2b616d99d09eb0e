/*
 * client.c — a blocking HTTPS client for the CLI -> server direction.
 *
 * Design: one libcurl easy handle per call: TLS verification on (peer and
 * host name) against a pinned CA file only, optional client certificate and
 * key, one overall timeout, a response body capped while it arrives (the
 * write callback refuses bytes past the cap, which aborts the transfer).
 * Invariants: I1 the body never grows past max_response_size. I2 TLS
 * verification is never turned off. Trusts: the CA file the caller names.
 * Threading: curl_global_init once (pthread_once); calls are independent.
 */
#include "net_int.h"

#include <pthread.h>
#include <string.h>

#include <curl/curl.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { (void)curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct coffer_buf *b = arg;
    size_t n = size * nmemb;
    if (coffer_buf_put(b, data, n) != COFFER_OK)
        return 0; /* aborts the transfer */
    return n;
}

/* see coffer/net.h */
enum coffer_err coffer_net_client_request(const struct coffer_net_client_opts *opts, const char *method,
                                          const char *url, const void *body, size_t body_size, int *out_status,
                                          uint8_t **out_body, size_t *out_size)
{
    *out_status = 0;
    *out_body = NULL;
    *out_size = 0;
    if (opts == NULL || opts->ca_file == NULL || method == NULL || url == NULL ||
        (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) || (body == NULL && body_size > 0))
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "client request needs a CA file, GET or POST, and a URL");
    pthread_once(&curl_once, curl_init_once);
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "curl_easy_init failed");
    struct coffer_buf resp;
    coffer_buf_init(&resp, opts->max_response_size ? opts->max_response_size : (64u << 20), false);
    struct curl_slist *hdrs = NULL;
    enum coffer_err r = COFFER_OK;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_CAINFO, opts->ca_file);
    curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(opts->timeout_ms ? opts->timeout_ms : 30000));
    if (opts->cert_file != NULL) {
        curl_easy_setopt(curl, CURLOPT_SSLCERT, opts->cert_file);
        if (opts->key_file != NULL)
            curl_easy_setopt(curl, CURLOPT_SSLKEY, opts->key_file);
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    if (strcmp(method, "POST") == 0) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        if (hdrs == NULL) {
            r = COFFER_FAIL(COFFER_E_NOMEM, "curl_slist_append failed");
            goto out;
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_size);
    }
    CURLcode cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        enum coffer_err code = cc == CURLE_OPERATION_TIMEDOUT                        ? COFFER_E_TIMEOUT
                               : cc == CURLE_WRITE_ERROR                             ? COFFER_E_TOO_LARGE
                               : (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE) ? COFFER_E_CERT
                                                                                     : COFFER_E_NET;
        r = COFFER_FAIL(code, "%s %s: %s", method, url, curl_easy_strerror(cc));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if ((r = coffer_buf_put_u8(&resp, 0)) != COFFER_OK)
        goto out;
    size_t size;
    uint8_t *data = coffer_buf_steal(&resp, &size);
    *out_body = data;
    *out_size = size - 1;
    *out_status = (int)status;
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    coffer_buf_free(&resp);
    return r;
}
