/*
 * coord_bench.c — marbles activating against a running coordinator, as
 * fast as they can: T threads, each with one keep-alive HTTPS connection
 * to the marble API, each activation = POST /api/v2/marble/nonce, then
 * simulation evidence binding SHA-256(key) || nonce, then POST
 * /api/v2/marble/activate. The coordinator makes every activation durable
 * before it answers. Prints activations/s and the failures (none expected).
 *
 * Each activation is what a marble does: a fresh P-256 key, a CSR for it
 * (with a DNS SAN, as coffer activate makes), a nonce, simulation evidence
 * binding SHA-256(SubjectPublicKeyInfo) || nonce, and the activation; all
 * inside the timed loop. Only the platform key is loaded once, before the
 * clock starts (a marble process would load it once too). The client runs
 * on the same machine, so its work counts against the rate.
 *
 *   bench_coord --mesh HOST:PORT --exe FILE [--threads T] [--seconds S]
 *
 * FILE is the "executable" whose SHA-256 the manifest's Simulation package
 * names (the evidence measures it); $COFFER_SIM_PLATFORM_KEY signs.
 */
#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/attest.h"

static const char *mesh, *exe;
static int seconds = 10;
static uint64_t deadline_ns;
static struct coffer_attest_sim_signer *signer; /* the platform key, loaded once (a marble process would too) */

struct worker {
    pthread_t t;
    int id;
    unsigned long ok, failed;
    char last_error[300];
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    return coffer_buf_put(arg, p, size * n) == COFFER_OK ? size * n : 0;
}

static bool post(CURL *h, const char *path, const char *body, struct coffer_buf *out, long *status)
{
    char url[300];
    snprintf(url, sizeof(url), "https://%s%s", mesh, path);
    coffer_buf_reset(out);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    if (curl_easy_perform(h) != CURLE_OK)
        return false;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return true;
}

/* The request's SubjectPublicKeyInfo for a P-256 key, set from the key's
 * point (the same DER X509_REQ_set_pubkey makes; that one goes through
 * OpenSSL 3.0's encoder and cost more than the rest of the client). */
static bool set_p256_spki(X509_REQ *req, EVP_PKEY *k)
{
    unsigned char *pt = OPENSSL_malloc(65);
    size_t n = 0;
    if (pt == NULL || EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, 65, &n) != 1 ||
        X509_PUBKEY_set0_param(X509_REQ_get_X509_PUBKEY(req), OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                               OBJ_nid2obj(NID_X9_62_prime256v1), pt, (int)n) != 1) {
        OPENSSL_free(pt);
        return false;
    }
    return true;
}

/* A fresh marble key and its CSR; spki_hash = SHA-256 of the key's
 * SubjectPublicKeyInfo DER. */
static bool make_csr(X509_EXTENSION *san, uint8_t **csr, size_t *csr_n, uint8_t spki_hash[32])
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    bool ok = k != NULL && req != NULL && exts != NULL && set_p256_spki(req, k) &&
              sk_X509_EXTENSION_push(exts, san) > 0 && X509_REQ_add_extensions(req, exts) == 1 &&
              X509_REQ_sign(req, k, EVP_sha256()) > 0;
    int n = ok ? i2d_X509_REQ(req, NULL) : 0;
    uint8_t *spki = NULL, *w = n > 0 ? malloc((size_t)n) : NULL;
    int sn = 0;
    if (w != NULL) {
        *csr = w;
        *csr_n = (size_t)n;
        i2d_X509_REQ(req, &w);
        sn = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), &spki);
    }
    ok = sn > 0;
    if (ok)
        SHA256(spki, (size_t)sn, spki_hash);
    else if (w != NULL) {
        free(*csr);
        *csr = NULL;
    }
    OPENSSL_free(spki);
    sk_X509_EXTENSION_free(exts); /* san is the caller's */
    X509_REQ_free(req);
    EVP_PKEY_free(k);
    return ok;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L); /* load test: the coordinator is ours, on loopback */
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    struct coffer_buf out;
    coffer_buf_init(&out, 1 << 24, false);
    char *body = malloc(1 << 16), uuid[64];
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, (char *)"DNS:localhost");
    for (unsigned long i = 0; san != NULL && coffer_now_ns() < deadline_ns; i++) {
        uint8_t *csr = NULL, spki_hash[32];
        size_t csr_n = 0;
        long status = 0;
        json_t *j = NULL;
        uint8_t *nonce = NULL, *ev = NULL;
        size_t nonce_n = 0, ev_n = 0;
        bool good = make_csr(san, &csr, &csr_n, spki_hash) && post(h, "/api/v2/marble/nonce", "", &out, &status) &&
                    status == 200 &&
                    coffer_json_parse(out.data, out.size, 1 << 20, &j) == COFFER_OK;
        const char *n64 = good ? json_string_value(json_object_get(json_object_get(j, "data"), "nonce")) : NULL;
        good = n64 != NULL && coffer_base64_decode(n64, strlen(n64), &nonce, &nonce_n) == COFFER_OK && nonce_n == 32;
        json_decref(j);
        uint8_t rd[64];
        if (good) {
            memcpy(rd, spki_hash, 32);
            memcpy(rd + 32, nonce, 32);
            good = coffer_attest_sim_signer_sign(signer, rd, &ev, &ev_n) == COFFER_OK;
        }
        if (good) {
            char *c64 = malloc(coffer_base64_encoded_len(csr_n) + 1), e64[512], n64b[64];
            coffer_base64_encode(csr, csr_n, c64);
            coffer_base64_encode(ev, ev_n, e64);
            coffer_base64_encode(nonce, 32, n64b);
            snprintf(uuid, sizeof(uuid), "bench-%d-%lu", w->id, i);
            snprintf(body, 1 << 16,
                     "{\"marbleType\": \"bench\", \"uuid\": \"%s\", \"csr\": \"%s\", \"evidence\": \"%s\", "
                     "\"nonce\": \"%s\"}", uuid, c64, e64, n64b);
            free(c64);
            good = post(h, "/api/v2/marble/activate", body, &out, &status) && status == 200;
            if (!good && out.size > 0)
                snprintf(w->last_error, sizeof(w->last_error), "%ld %.*s", status, (int)(out.size < 250 ? out.size : 250),
                         (const char *)out.data);
        }
        free(csr);
        coffer_free(nonce);
        coffer_free(ev);
        if (good)
            w->ok++;
        else
            w->failed++;
    }
    X509_EXTENSION_free(san);
    free(body);
    coffer_buf_free(&out);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mesh") == 0)
            mesh = argv[i + 1];
        else if (strcmp(argv[i], "--exe") == 0)
            exe = argv[i + 1];
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atoi(argv[i + 1]);
    }
    if (mesh == NULL || exe == NULL || threads < 1 || threads > 256) {
        fprintf(stderr, "usage: bench_coord --mesh HOST:PORT --exe FILE [--threads T] [--seconds S]\n");
        return 2;
    }
    coffer_log_set_level(COFFER_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (coffer_attest_sim_signer_open(NULL, exe, &signer) != COFFER_OK) {
        fprintf(stderr, "bench_coord: simulation key: %s\n", coffer_err_detail());
        return 1;
    }
    struct worker *ws = calloc((size_t)threads, sizeof(*ws));
    uint64_t start = coffer_now_ns();
    deadline_ns = start + (uint64_t)seconds * 1000000000ull;
    for (int i = 0; i < threads; i++) {
        ws[i].id = i;
        pthread_create(&ws[i].t, NULL, run, &ws[i]);
    }
    unsigned long ok = 0, failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ws[i].t, NULL);
        ok += ws[i].ok;
        failed += ws[i].failed;
        if (ws[i].last_error[0])
            fprintf(stderr, "thread %d: last failure: %s\n", i, ws[i].last_error);
    }
    double secs = (double)(coffer_now_ns() - start) / 1e9;
    printf("activations=%lu failed=%lu seconds=%.2f per_second=%.1f\n", ok, failed, secs, (double)ok / secs);
    free(ws);
    coffer_attest_sim_signer_free(signer);
    curl_global_cleanup();
    return failed == 0 ? 0 : 1;
}
