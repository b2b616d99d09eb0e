/*
 * coord_bench.c — marbles activating against a running coordinator, as
 * fast as they can: T threads, each with one keep-alive HTTPS connection
 * to the marble API, each activation = POST /api/v2/marble/nonce, then
 * simulation evidence binding SHA-256(key) || nonce, then POST
 * /api/v2/marble/activate. The coordinator makes every activation durable
 * before it answers. Prints activations/s and the failures (none expected).
 *
 * Marble keys and CSRs are made before the clock starts (a pool of 256,
 * reused round-robin: the coordinator certifies whatever key a CSR holds,
 * each activation still needs its own nonce and evidence). Evidence is
 * made per activation, inside the timed loop, like a real marble would.
 *
 *   bench_coord --mesh HOST:PORT --exe FILE [--threads T] [--seconds S]
 *
 * FILE is the "executable" whose SHA-256 the manifest's Simulation package
 * names (the evidence measures it); $COFFER_SIM_PLATFORM_KEY signs.
 */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/attest.h"

#define POOL 256

static const char *mesh, *exe;
static int seconds = 10;
static uint8_t *csr[POOL], *spki_hash[POOL];
static size_t csr_n[POOL];
static uint64_t deadline_ns;

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
    for (unsigned long i = 0; coffer_now_ns() < deadline_ns; i++) {
        size_t k = (i * 7 + (size_t)w->id) % POOL;
        long status = 0;
        json_t *j = NULL;
        uint8_t *nonce = NULL, *ev = NULL;
        size_t nonce_n = 0, ev_n = 0;
        bool good = post(h, "/api/v2/marble/nonce", "", &out, &status) && status == 200 &&
                    coffer_json_parse(out.data, out.size, 1 << 20, &j) == COFFER_OK;
        const char *n64 = good ? json_string_value(json_object_get(json_object_get(j, "data"), "nonce")) : NULL;
        good = n64 != NULL && coffer_base64_decode(n64, strlen(n64), &nonce, &nonce_n) == COFFER_OK && nonce_n == 32;
        json_decref(j);
        uint8_t rd[64];
        if (good) {
            memcpy(rd, spki_hash[k], 32);
            memcpy(rd + 32, nonce, 32);
            good = coffer_attest_sim_evidence(NULL, exe, rd, &ev, &ev_n) == COFFER_OK;
        }
        if (good) {
            char *c64 = malloc(coffer_base64_encoded_len(csr_n[k]) + 1), e64[512], n64b[64];
            coffer_base64_encode(csr[k], csr_n[k], c64);
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
        coffer_free(nonce);
        coffer_free(ev);
        if (good)
            w->ok++;
        else
            w->failed++;
    }
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
    for (int i = 0; i < POOL; i++) {
        EVP_PKEY *k = EVP_EC_gen("P-256");
        X509_REQ *req = X509_REQ_new();
        X509_REQ_set_pubkey(req, k);
        X509_REQ_sign(req, k, EVP_sha256());
        csr_n[i] = (size_t)i2d_X509_REQ(req, NULL);
        uint8_t *w = csr[i] = malloc(csr_n[i]);
        i2d_X509_REQ(req, &w);
        uint8_t *spki = NULL;
        int n = i2d_PUBKEY(k, &spki);
        spki_hash[i] = malloc(32);
        SHA256(spki, (size_t)n, spki_hash[i]);
        OPENSSL_free(spki);
        X509_REQ_free(req);
        EVP_PKEY_free(k);
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
    for (int i = 0; i < POOL; i++) {
        free(csr[i]);
        free(spki_hash[i]);
    }
    free(ws);
    curl_global_cleanup();
    return failed == 0 ? 0 : 1;
}
