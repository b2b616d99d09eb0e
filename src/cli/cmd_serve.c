/*
 * cmd_serve.c — `coffer serve`: a TensorFlow-Serving-compatible model server
 * for ONNX models kept as protected files.
 *
 * Design: TF Serving's flags where they apply (--port for gRPC, 8500;
 * --rest_api_port, 8501; --model_name and --model_base_path holding
 * BASE/VERSION/model.onnx, or --model_config_file for several models with
 * version policies and labels, re-read when it changes with
 * --model_config_file_poll_wait_seconds; --file_system_poll_wait_seconds;
 * --enable_batching with --batching_parameters_file; --ssl_config_file;
 * --monitoring_config_file). The identity and the model key come either from
 * the coordinator (--coordinator: attested activation in memory, TLS with
 * the marble certificate the coordinator issued for our own key, the model
 * key from the activation's Files, by default the Gramine key file
 * /dev/attestation/keys/default) or from files (--tls-cert, --tls-key or
 * --ssl_config_file, and --model-key). Models are decrypted into secret
 * memory with the bound-path check Gramine makes (--no-path-check for files
 * encrypted elsewhere) and loaded by nn/; plaintext never touches the disk.
 * The model key stays in secret memory while the server runs, to decrypt
 * versions that appear later. --ssl_client_ca (or client_verify in the SSL
 * config) makes both ports require client certificates from that CA.
 *
 * The pieces: serve/registry.c (versions, policies, hot reload, the config
 * file watch),
 * serve/batch.c (batching), serve_model.c (loading and running),
 * serve_api.c (REST and gRPC handlers), net/ (TLS, HTTP/1.1, HTTP/2, gRPC).
 * SIGTERM stops gracefully: in-flight requests finish (10 s at most), queued
 * batches run, then the models are unloaded.
 */
#include <getopt.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coffer/pf.h"
#include "marble.h"
#include "serve_cli.h"

void cmd_serve_help(FILE *out)
{
    fprintf(out,
            "usage: coffer serve (--model_base_path DIR [--model_name NAME] | --model_config_file FILE)\n"
            "                    [--port 8500] [--rest_api_port 8501] [--host ADDR] [--grpc_socket_path PATH]\n"
            "                    (--coordinator HOST:PORT --marble-type TYPE [--simulation]\n"
            "                     | (--tls-cert CERT --tls-key KEY | --ssl_config_file FILE) --model-key KEYFILE)\n"
            "                    [--ssl_client_ca CA.pem] [--enable_batching [--batching_parameters_file FILE]]\n"
            "                    [--file_system_poll_wait_seconds 1] [--model_config_file_poll_wait_seconds S]\n"
            "                    [--model_instances N] [--model_threads N]\n"
            "                    [--threads N] [--rest_api_num_threads N] [--grpc_max_threads N]\n"
            "                    [--rest_api_timeout_in_ms 30000] [--rest_api_enable_cors_support]\n"
            "                    [--tensorflow_intra_op_parallelism N]\n"
            "                    [--monitoring_config_file FILE] [--enable_serialization_as_tensor_content]\n"
            "                    [--grpc_channel_arguments K=V,...] [--rest_api_max_body_bytes N]\n"
            "                    [--enable_model_warmup[=false]] [--num_request_iterations_for_warmup N]\n"
            "                    [--enable_per_model_batching_parameters] [--allow_reload_config]\n"
            "                    [--aspired_version_policy availability_preserving|resource_preserving]\n"
            "                    [--max_num_load_retries 5] [--load_retry_interval_micros 60000000]\n"
            "                    [--no-path-check] [--plain-model]\n\n"
            "A TensorFlow-Serving-compatible server (gRPC PredictionService and ModelService,\n"
            "REST /v1/models/...) for ONNX models kept as Gramine protected files at\n"
            "BASE/VERSION/model.onnx. New versions dropped into BASE are served without a restart.\n\n"
            "  --model_config_file F  TF Serving's ModelServerConfig text format: several models,\n"
            "                         model_version_policy (latest/all/specific), version_labels\n"
            "  --file_system_poll_wait_seconds S  how often BASE is scanned for versions\n"
            "                         (default 1; 0: only at start)\n"
            "  --max_num_load_retries N, --load_retry_interval_micros U  a version that fails to\n"
            "                         load while serving is tried again up to N times, U apart\n"
            "                         (TF's; default 5, 1 min; on the scans); a changed file at\n"
            "                         once. A failure at start-up is reported at once\n"
            "  --model_config_file_poll_wait_seconds S  re-read --model_config_file every S\n"
            "                         seconds and serve what it says when it changed (default 0:\n"
            "                         read once); a file that does not parse changes nothing\n"
            "  --coordinator H:P      activate with the coordinator's marble API: it attests this\n"
            "                         process and returns the TLS certificate and the model key\n"
            "  --marble-type TYPE     the marble in the manifest (EDG_MARBLE_TYPE)\n"
            "  --model-key-file PATH  which activation File holds the key\n"
            "                         (default /dev/attestation/keys/default)\n"
            "  --simulation           simulation evidence, and accept a simulation coordinator\n"
            "  --tls-cert, --tls-key  standalone TLS identity (PEM; the cert file may hold a chain)\n"
            "  --ssl_config_file F    TF Serving's SSLConfig (server_key, server_cert inline PEM;\n"
            "                         custom_ca with client_verify: true asks for client certificates)\n"
            "  --ssl_client_ca CA     require client certificates issued by CA (PEM) on both ports\n"
            "  --model-key KEYFILE    standalone wrap key (16 raw bytes)\n"
            "  --enable_batching      merge concurrent predicts into one run (off by default)\n"
            "  --batching_parameters_file F  TF's BatchingParameters: max_batch_size,\n"
            "                         batch_timeout_micros, num_batch_threads, max_enqueued_batches,\n"
            "                         allowed_batch_sizes\n"
            "  --enable_per_model_batching_parameters  each version batches with its own\n"
            "                         VERSION/batching_params.pbtxt (TF's; plain text); a version\n"
            "                         without one does not batch; num_batch_threads stays the server's\n"
            "  --model_instances N    copies of each model that run requests in parallel without\n"
            "                         batching (default 1; each copy costs its weights and arena)\n"
            "  --model_threads N      kernel threads of each copy (default 0: one per CPU; for a\n"
            "                         small model: --model_instances CPUs --model_threads 1)\n"
            "  --threads N            worker threads per port (default: the number of CPUs)\n"
            "  --rest_api_num_threads N, --grpc_max_threads N  the REST or gRPC port's own\n"
            "                         (TF's names; each an event loop here, not a blocking pool)\n"
            "  --rest_api_timeout_in_ms T  a REST predict not run within T ms of its arrival is\n"
            "                         answered 504 DEADLINE_EXCEEDED (default 30000, TF's; 0: none)\n"
            "  --rest_api_enable_cors_support[=false]  CORS headers on REST answers (Allow-Origin *,\n"
            "                         TF's); OPTIONS preflights under /v1/ are answered either way\n"
            "  --tensorflow_intra_op_parallelism N  TF's name for --model_threads;\n"
            "                         --tensorflow_inter_op_parallelism is accepted (nodes run in order)\n"
            "  --version              print the version\n"
            "  --monitoring_config_file F  TF's MonitoringConfig (prometheus_config { enable path })\n"
            "  --enable_serialization_as_tensor_content  gRPC outputs in tensor_content\n"
            "  --grpc_channel_arguments K=V,...  as TF Serving: grpc.max_receive_message_length\n"
            "                         and grpc.max_send_message_length (bytes; default and -1:\n"
            "                         2147483647, TF Serving's); other keys are logged and ignored\n"
            "  --rest_api_max_body_bytes N  REST request body cap (default 268435456, 256 MiB)\n"
            "  --enable_model_warmup[=false]  replay VERSION/assets.extra/tf_serving_warmup_requests\n"
            "                         (TF's TFRecord of PredictionLogs; protected like the model)\n"
            "                         before a version is AVAILABLE (default on, as TF)\n"
            "  --num_request_iterations_for_warmup N  run each warm-up record N times on each\n"
            "                         copy (default: once)\n"
            "  --aspired_version_policy P  how a new version replaces the old: availability_preserving\n"
            "                         (default, TF's: the new one loads first; both in memory for a\n"
            "                         while) or resource_preserving (the old one unloads first, once\n"
            "                         idle: one version's memory; no version served in between)\n"
            "  --enable_grpc_healthcheck_service  accepted; grpc.health.v1.Health is always on\n"
            "  --allow_reload_config  answer ModelService/HandleReloadConfigRequest (replace the\n"
            "                         served models); needs client certificates (--ssl_client_ca)\n"
            "  --host ADDR            listen address (default 0.0.0.0)\n"
            "  --rest_api_port 0      no REST\n"
            "  --grpc_socket_path P   gRPC also on a UNIX socket at P (TF's; TLS as on --port;\n"
            "                         --port 0: only there)\n"
            "  --no-path-check        accept a model encrypted for another path\n"
            "  --plain-model          the model files are NOT encrypted (says so)\n"
            "Endpoints: gRPC on --port; REST, /healthz and /monitoring/prometheus/metrics on\n"
            "--rest_api_port. Both over TLS.\n");
}

/* gRPC on --port, REST, gRPC on --grpc_socket_path */
static struct coffer_net_server *servers[3];

static void on_signal(int sig)
{
    (void)sig;
    for (int i = 0; i < 3; i++)
        if (servers[i] != NULL)
            coffer_net_server_stop(servers[i], 10000);
}

/* ---- TLS identity */

static enum coffer_err tls_from_pem(SSL_CTX *ctx, const char *chain_pem, EVP_PKEY *key)
{
    BIO *b = BIO_new_mem_buf(chain_pem, -1);
    X509 *leaf = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    enum coffer_err r = COFFER_OK;
    if (leaf == NULL || SSL_CTX_use_certificate(ctx, leaf) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        r = COFFER_FAIL(COFFER_E_CERT, "the marble certificate does not fit its key");
    X509 *x;
    while (r == COFFER_OK && b != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
            X509_free(x);
            r = COFFER_FAIL(COFFER_E_CERT, "adding the certificate chain");
        }
    X509_free(leaf);
    BIO_free(b);
    return r;
}

/* Read a small text file for one of TF's config parsers. */
static enum coffer_err read_text(const char *path, uint8_t **data, size_t *n)
{
    enum coffer_err r = coffer_file_read_all(path, COFFER_SERVE_CONFIG_MAX, data, n);
    if (r != COFFER_OK)
        coffer_err_context("%s", path);
    return r;
}

/* The TLS identity and client-certificate policy from an SSLConfig. */
static enum coffer_err tls_from_ssl_config(SSL_CTX *ssl, const char *path, bool *client_verify)
{
    uint8_t *text;
    size_t n;
    struct coffer_serve_ssl_config sc;
    enum coffer_err r = read_text(path, &text, &n);
    if (r != COFFER_OK)
        return r;
    r = coffer_serve_ssl_config_parse(text, n, &sc);
    coffer_memzero(text, n); /* it holds the private key */
    coffer_free(text);
    if (r != COFFER_OK) {
        coffer_err_context("%s", path);
        return r;
    }
    BIO *kb = BIO_new_mem_buf(sc.server_key, -1);
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    BIO_free(kb);
    if (key == NULL)
        r = COFFER_FAIL(COFFER_E_CERT, "%s: server_key is not a PEM private key", path);
    else
        r = tls_from_pem(ssl, sc.server_cert, key);
    EVP_PKEY_free(key);
    if (r == COFFER_OK && sc.custom_ca[0] != '\0') {
        BIO *b = BIO_new_mem_buf(sc.custom_ca, -1);
        X509_STORE *store = SSL_CTX_get_cert_store(ssl);
        STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
        X509 *x;
        int count = 0;
        while (b != NULL && names != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
            X509_STORE_add_cert(store, x);
            X509_NAME *nm = X509_NAME_dup(X509_get_subject_name(x));
            if (nm != NULL)
                sk_X509_NAME_push(names, nm);
            X509_free(x);
            count++;
        }
        BIO_free(b);
        if (count == 0) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            r = COFFER_FAIL(COFFER_E_CERT, "%s: custom_ca holds no PEM certificate", path);
        } else {
            SSL_CTX_set_client_CA_list(ssl, names);
        }
    }
    if (r == COFFER_OK && sc.client_verify)
        *client_verify = true;
    coffer_serve_ssl_config_free(&sc);
    ERR_clear_error();
    return r;
}

/* Register the server's metrics: TF's request series per API, and per
 * model the load time and (batching) the queue. */
static const double latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};

static enum coffer_err metrics_setup(struct serve_ctx *ctx)
{
    static const double *bounds = latency_bounds;
    static const char *api[2] = {"rest", "grpc"};
    enum coffer_err r = coffer_net_metrics_new(&ctx->metrics);
    char labels[600];
    for (int a = 0; a < 2 && r == COFFER_OK; a++) {
        snprintf(labels, sizeof(labels), "api=\"%s\",result=\"ok\"", api[a]);
        if ((r = coffer_net_metrics_counter(ctx->metrics, "coffer_serve_requests_total", "Model requests answered",
                                            labels, &ctx->ok[a])) != COFFER_OK)
            break;
        snprintf(labels, sizeof(labels), "api=\"%s\",result=\"error\"", api[a]);
        if ((r = coffer_net_metrics_counter(ctx->metrics, "coffer_serve_requests_total", "Model requests answered",
                                            labels, &ctx->failed[a])) != COFFER_OK)
            break;
        snprintf(labels, sizeof(labels), "api=\"%s\"", api[a]);
        r = coffer_net_metrics_histogram(ctx->metrics, "coffer_serve_request_seconds", "Model request latency",
                                         labels, bounds, sizeof(latency_bounds) / sizeof(latency_bounds[0]),
                                         &ctx->latency[a]);
    }
    return r;
}

/* see serve_cli.h */
struct serve_model_metrics *serve_metrics_for(struct serve_ctx *ctx, const char *model)
{
    static const double sizes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
    pthread_mutex_lock(&ctx->mm_mu);
    struct serve_model_metrics *m = ctx->mm;
    while (m != NULL && strcmp(m->name, model) != 0)
        m = m->next;
    if (m != NULL || (m = coffer_calloc(1, sizeof(*m))) == NULL || (m->name = coffer_strdup(model)) == NULL) {
        if (m != NULL && m->name == NULL) {
            coffer_free(m);
            m = NULL;
        }
        pthread_mutex_unlock(&ctx->mm_mu);
        return m;
    }
    /* the model name as a label value: only what needs no escaping */
    char name[256], labels[300];
    size_t k = 0;
    for (const char *p = model; *p && k + 1 < sizeof(name); p++)
        name[k++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) ? '_' : *p;
    name[k] = '\0';
    snprintf(labels, sizeof(labels), "model=\"%s\"", name);
    enum coffer_err r = coffer_net_metrics_gauge(ctx->metrics, "coffer_serve_model_load_milliseconds",
                                                 "Time to decrypt and load the model's last version", labels,
                                                 &m->load_ms);
    if (r == COFFER_OK && ctx->batching &&
        (r = coffer_net_metrics_gauge(ctx->metrics, "coffer_serve_batch_queue_depth",
                                      "Predict requests waiting for a batch", labels, &m->queue_depth)) == COFFER_OK &&
        (r = coffer_net_metrics_histogram(ctx->metrics, "coffer_serve_batch_size", "Items per batched run", labels,
                                          sizes, sizeof(sizes) / sizeof(sizes[0]), &m->batch_size)) == COFFER_OK)
        r = coffer_net_metrics_histogram(ctx->metrics, "coffer_serve_batch_queue_seconds",
                                         "Time a request waited for its batch", labels, latency_bounds,
                                         sizeof(latency_bounds) / sizeof(latency_bounds[0]), &m->queue_wait);
    if (r != COFFER_OK) { /* the registry keeps what was registered */
        coffer_free(m->name);
        coffer_free(m);
        m = NULL;
    } else {
        m->next = ctx->mm;
        ctx->mm = m;
    }
    pthread_mutex_unlock(&ctx->mm_mu);
    return m;
}

/* --model_name/--model_base_path as a one-model config. */
static enum coffer_err single_model(struct coffer_serve_config *c, const char *name, const char *base)
{
    memset(c, 0, sizeof(*c));
    c->models = coffer_calloc(1, sizeof(*c->models));
    if (c->models == NULL)
        return COFFER_E_NOMEM;
    c->model_count = 1;
    c->models[0].name = coffer_strdup(name);
    c->models[0].base_path = coffer_strdup(base);
    c->models[0].platform = coffer_strdup("");
    if (c->models[0].name == NULL || c->models[0].base_path == NULL || c->models[0].platform == NULL)
        return COFFER_E_NOMEM;
    return COFFER_OK;
}

/* --grpc_channel_arguments: TF Serving passes K=V,... to gRPC core; of
 * those, the message caps mean something here (TF Serving's own default for
 * both is INT32_MAX, and -1 is gRPC's "unlimited", capped to the same). */
static enum coffer_err grpc_channel_args(const char *text, size_t *recv, size_t *send)
{
    char *copy = coffer_strdup(text);
    if (copy == NULL)
        return COFFER_E_NOMEM;
    enum coffer_err r = COFFER_OK;
    char *save = NULL;
    for (char *kv = strtok_r(copy, ",", &save); kv != NULL && r == COFFER_OK; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == NULL) {
            r = COFFER_FAIL(COFFER_E_INVALID_ARG, "--grpc_channel_arguments: '%s' is not KEY=VALUE", kv);
            break;
        }
        *eq = '\0';
        size_t *dst = strcmp(kv, "grpc.max_receive_message_length") == 0 ? recv
                      : strcmp(kv, "grpc.max_send_message_length") == 0  ? send
                                                                          : NULL;
        if (dst == NULL) {
            coffer_warn("serve: --grpc_channel_arguments: %s is not used by coffer serve (ignored)", kv);
            continue;
        }
        char *end;
        long long v = strtoll(eq + 1, &end, 10);
        if (eq[1] == '\0' || *end != '\0' || v < -1 || v == 0 || v > INT32_MAX)
            r = COFFER_FAIL(COFFER_E_INVALID_ARG, "--grpc_channel_arguments: %s must be 1..%d or -1", kv, INT32_MAX);
        else
            *dst = v == -1 ? (size_t)INT32_MAX : (size_t)v;
    }
    coffer_free(copy);
    return r;
}

/* Decoding caps for messages of up to max bytes: a tensor may be as large
 * as its message. */
static void limits_for(size_t max, struct coffer_serve_limits *lim)
{
    coffer_serve_limits_default(lim);
    lim->max_message_size = max;
    if (lim->max_tensor_size < max)
        lim->max_tensor_size = max;
    if (lim->max_total_size < max)
        lim->max_total_size = max;
}

static int parse_count(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    enum { O_PORT = 1000, O_REST, O_NAME, O_BASE, O_COORD, O_TYPE, O_KEYFILE, O_SIM, O_CERT, O_KEY, O_MKEY,
           O_HOST, O_NOCHECK, O_PLAIN, O_THREADS, O_POLICY, O_INSECURE, O_CONFIG, O_POLL, O_BATCH, O_BATCHFILE,
           O_INSTANCES, O_CLIENTCA, O_SSLCFG, O_MONCFG, O_CONTENT, O_MTHREADS, O_CHANARGS, O_RESTMAX, O_WARMUP,
           O_HEALTH, O_RELOAD, O_CFGPOLL, O_PERMODEL, O_WARMITER, O_VPOLICY, O_RESTTIMEOUT, O_RESTTHREADS,
           O_GRPCTHREADS, O_INTRA, O_INTER, O_VERSION, O_CORS, O_SOCKET, O_RETRIES, O_RETRYUS };
    static const struct option longopts[] = {
        {"port", required_argument, NULL, O_PORT},          {"rest_api_port", required_argument, NULL, O_REST},
        {"model_name", required_argument, NULL, O_NAME},    {"model_base_path", required_argument, NULL, O_BASE},
        {"coordinator", required_argument, NULL, O_COORD},  {"marble-type", required_argument, NULL, O_TYPE},
        {"model-key-file", required_argument, NULL, O_KEYFILE}, {"simulation", no_argument, NULL, O_SIM},
        {"tls-cert", required_argument, NULL, O_CERT},      {"tls-key", required_argument, NULL, O_KEY},
        {"model-key", required_argument, NULL, O_MKEY},     {"host", required_argument, NULL, O_HOST},
        {"no-path-check", no_argument, NULL, O_NOCHECK},    {"plain-model", no_argument, NULL, O_PLAIN},
        {"threads", required_argument, NULL, O_THREADS},    {"policy", required_argument, NULL, O_POLICY},
        {"insecure", no_argument, NULL, O_INSECURE},        {"model_config_file", required_argument, NULL, O_CONFIG},
        {"file_system_poll_wait_seconds", required_argument, NULL, O_POLL},
        {"model_config_file_poll_wait_seconds", required_argument, NULL, O_CFGPOLL},
        {"enable_batching", no_argument, NULL, O_BATCH},
        {"batching_parameters_file", required_argument, NULL, O_BATCHFILE},
        {"model_instances", required_argument, NULL, O_INSTANCES},
        {"model_threads", required_argument, NULL, O_MTHREADS},
        {"ssl_client_ca", required_argument, NULL, O_CLIENTCA},
        {"ssl_config_file", required_argument, NULL, O_SSLCFG},
        {"monitoring_config_file", required_argument, NULL, O_MONCFG},
        {"enable_serialization_as_tensor_content", no_argument, NULL, O_CONTENT},
        {"grpc_channel_arguments", required_argument, NULL, O_CHANARGS},
        {"rest_api_max_body_bytes", required_argument, NULL, O_RESTMAX},
        {"enable_model_warmup", optional_argument, NULL, O_WARMUP},
        {"num_request_iterations_for_warmup", required_argument, NULL, O_WARMITER},
        {"enable_per_model_batching_parameters", optional_argument, NULL, O_PERMODEL},
        {"aspired_version_policy", required_argument, NULL, O_VPOLICY},
        {"rest_api_timeout_in_ms", required_argument, NULL, O_RESTTIMEOUT},
        {"rest_api_enable_cors_support", optional_argument, NULL, O_CORS},
        {"grpc_socket_path", required_argument, NULL, O_SOCKET},
        {"max_num_load_retries", required_argument, NULL, O_RETRIES},
        {"load_retry_interval_micros", required_argument, NULL, O_RETRYUS},
        {"rest_api_num_threads", required_argument, NULL, O_RESTTHREADS},
        {"grpc_max_threads", required_argument, NULL, O_GRPCTHREADS},
        {"tensorflow_intra_op_parallelism", required_argument, NULL, O_INTRA},
        {"tensorflow_inter_op_parallelism", required_argument, NULL, O_INTER},
        {"version", no_argument, NULL, O_VERSION},
        {"allow_reload_config", no_argument, NULL, O_RELOAD},
        {"enable_grpc_healthcheck_service", optional_argument, NULL, O_HEALTH},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int grpc_port = 8500, rest_port = 8501, threads = 0, poll_s = 1, instances = 1, model_threads = 0, cfg_poll_s = 0;
    int warm_iter = 0, rest_timeout_ms = 30000, port_threads[2] = {0, 0}, intra = -1, retries = 5;
    long long retry_us = 60000000; /* TF's defaults: 5 retries, a minute apart */
    const char *name = "default", *base = NULL, *key_file_param = "/dev/attestation/keys/default";
    const char *tls_cert = NULL, *tls_key = NULL, *model_key = NULL, *host = "0.0.0.0";
    const char *config_file = NULL, *batch_file = NULL, *client_ca = NULL, *ssl_config = NULL, *mon_file = NULL;
    bool check = true, plain = false, batching = false, content = false, warm = true, reload = false;
    bool per_model = false, resource_preserving = false, cors = false;
    const char *chan_args = NULL, *socket_path = NULL;
    size_t grpc_recv = INT32_MAX, grpc_send = INT32_MAX, rest_max = (size_t)256 << 20;
    struct marble_opts mo = {0};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_PORT:
            if (parse_count(optarg, 0, 65535, &grpc_port) != 0)
                return cli_usage("serve", "--port must be a port number (0: gRPC on --grpc_socket_path only)");
            break;
        case O_RETRIES:
            if (parse_count(optarg, 0, 1000, &retries) != 0)
                return cli_usage("serve", "--max_num_load_retries must be 0..1000");
            break;
        case O_RETRYUS: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v > 86400000000LL)
                return cli_usage("serve", "--load_retry_interval_micros must be at most 86400000000 (a day; "
                                 "negative: no wait)");
            retry_us = v < 0 ? 0 : v; /* TF: negative, no wait */
            break;
        }
        case O_SOCKET:
            if (optarg[0] == '\0')
                return cli_usage("serve", "--grpc_socket_path needs a path");
            socket_path = optarg;
            break;
        case O_REST:
            if (parse_count(optarg, 0, 65535, &rest_port) != 0)
                return cli_usage("serve", "--rest_api_port must be a port number (0: no REST)");
            break;
        case O_NAME: name = optarg; break;
        case O_BASE: base = optarg; break;
        case O_COORD: mo.cc.address = optarg; break;
        case O_TYPE: mo.marble_type = optarg; break;
        case O_KEYFILE: key_file_param = optarg; break;
        case O_SIM:
            mo.provider = COFFER_ATTEST_PROVIDER_SIM;
            mo.cc.simulation = true;
            break;
        case O_CERT: tls_cert = optarg; break;
        case O_KEY: tls_key = optarg; break;
        case O_MKEY: model_key = optarg; break;
        case O_HOST: host = optarg; break;
        case O_NOCHECK: check = false; break;
        case O_PLAIN: plain = true; break;
        case O_THREADS:
            if (parse_count(optarg, 1, 1024, &threads) != 0)
                return cli_usage("serve", "--threads must be 1..1024");
            break;
        case O_POLICY: mo.cc.policy_path = optarg; break;
        case O_INSECURE: mo.cc.insecure = true; break;
        case O_CONFIG: config_file = optarg; break;
        case O_POLL:
            if (parse_count(optarg, 0, 86400, &poll_s) != 0)
                return cli_usage("serve", "--file_system_poll_wait_seconds must be 0..86400");
            break;
        case O_CFGPOLL:
            if (parse_count(optarg, 0, 86400, &cfg_poll_s) != 0)
                return cli_usage("serve", "--model_config_file_poll_wait_seconds must be 0..86400");
            break;
        case O_BATCH: batching = true; break;
        case O_BATCHFILE: batch_file = optarg; break;
        case O_INSTANCES:
            if (parse_count(optarg, 1, 256, &instances) != 0)
                return cli_usage("serve", "--model_instances must be 1..256");
            break;
        case O_MTHREADS:
            if (parse_count(optarg, 0, COFFER_NN_MAX_THREADS, &model_threads) != 0)
                return cli_usage("serve", "--model_threads must be 0..%d (0: one per CPU)", COFFER_NN_MAX_THREADS);
            break;
        case O_CLIENTCA: client_ca = optarg; break;
        case O_SSLCFG: ssl_config = optarg; break;
        case O_MONCFG: mon_file = optarg; break;
        case O_CONTENT: content = true; break;
        case O_CHANARGS: chan_args = optarg; break;
        case O_RELOAD: reload = true; break;
        case O_RESTTIMEOUT:
            /* TF's default: 30 s; 0: none */
            if (parse_count(optarg, 0, 86400000, &rest_timeout_ms) != 0)
                return cli_usage("serve", "--rest_api_timeout_in_ms must be 0..86400000 (0: no timeout)");
            break;
        case O_GRPCTHREADS:
        case O_RESTTHREADS:
            if (parse_count(optarg, 1, 1024, &port_threads[ch == O_RESTTHREADS]) != 0)
                return cli_usage("serve", "--%s must be 1..1024",
                                 ch == O_RESTTHREADS ? "rest_api_num_threads" : "grpc_max_threads");
            break;
        case O_INTRA:
            if (parse_count(optarg, 0, COFFER_NN_MAX_THREADS, &intra) != 0)
                return cli_usage("serve", "--tensorflow_intra_op_parallelism must be 0..%d (0: one per CPU)",
                                 COFFER_NN_MAX_THREADS);
            break;
        case O_INTER: {
            int inter;
            if (parse_count(optarg, 0, 1024, &inter) != 0)
                return cli_usage("serve", "--tensorflow_inter_op_parallelism must be 0..1024");
            if (inter > 1)
                coffer_warn("serve: --tensorflow_inter_op_parallelism %d has no effect: coffer runs a model's "
                            "nodes one after another, each on --model_threads threads", inter);
            break;
        }
        case O_VERSION: printf("coffer %s (serve: TensorFlow Serving APIs)\n", COFFER_VERSION_STRING); return CLI_OK;
        case O_WARMITER:
            /* TF: used only when > 0 (0: TF's default, once) */
            if (parse_count(optarg, 0, 1000, &warm_iter) != 0)
                return cli_usage("serve", "--num_request_iterations_for_warmup must be 0..1000");
            break;
        case O_VPOLICY:
            if (strcmp(optarg, "availability_preserving") == 0)
                resource_preserving = false;
            else if (strcmp(optarg, "resource_preserving") == 0)
                resource_preserving = true;
            else
                return cli_usage("serve", "--aspired_version_policy is availability_preserving or "
                                 "resource_preserving");
            break;
        case O_WARMUP:
        case O_PERMODEL:
        case O_CORS:
        case O_HEALTH: {
            /* TF's boolean flags: --flag, --flag=true, --flag=false */
            bool v = optarg == NULL || strcmp(optarg, "true") == 0 || strcmp(optarg, "1") == 0;
            if (!v && strcmp(optarg, "false") != 0 && strcmp(optarg, "0") != 0)
                return cli_usage("serve", "--%s takes true or false",
                                 ch == O_WARMUP     ? "enable_model_warmup"
                                 : ch == O_PERMODEL ? "enable_per_model_batching_parameters"
                                 : ch == O_CORS     ? "rest_api_enable_cors_support"
                                                    : "enable_grpc_healthcheck_service");
            if (ch == O_WARMUP)
                warm = v;
            else if (ch == O_PERMODEL)
                per_model = v;
            else if (ch == O_CORS)
                cors = v;
            else if (!v)
                coffer_warn("serve: the gRPC health service is always on in coffer serve");
            break;
        }
        case O_RESTMAX: {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || v < 1024 || v > INT32_MAX)
                return cli_usage("serve", "--rest_api_max_body_bytes must be 1024..%d", INT32_MAX);
            rest_max = (size_t)v;
            break;
        }
        case 'h': cmd_serve_help(stdout); return CLI_OK;
        default: return cli_usage("serve", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if ((base == NULL) == (config_file == NULL))
        return cli_usage("serve", "give --model_base_path (one model) or --model_config_file (several)");
    if (grpc_port == 0 && socket_path == NULL)
        return cli_usage("serve", "--port 0 leaves gRPC only on --grpc_socket_path: give one (as TF Serving)");
    if (cfg_poll_s > 0 && config_file == NULL)
        return cli_usage("serve", "--model_config_file_poll_wait_seconds watches --model_config_file: give one");
    bool coordinated = mo.cc.address != NULL;
    bool standalone_tls = tls_cert != NULL || ssl_config != NULL;
    if (coordinated == standalone_tls)
        return cli_usage("serve", "give --coordinator (attested) or --tls-cert/--tls-key or --ssl_config_file, "
                         "with --model-key (standalone)");
    if (tls_cert != NULL && ssl_config != NULL)
        return cli_usage("serve", "--tls-cert and --ssl_config_file are two ways to say the same: give one");
    if (!coordinated && ((tls_cert != NULL && tls_key == NULL) || (model_key == NULL && !plain)))
        return cli_usage("serve", "standalone needs --tls-cert and --tls-key (or --ssl_config_file), and --model-key");
    if (rest_port == grpc_port && rest_port != 0)
        return cli_usage("serve", "--port and --rest_api_port must be different ports (--rest_api_port 0: no REST)");
    if (batch_file != NULL && !batching)
        return cli_usage("serve", "--batching_parameters_file needs --enable_batching");
    if (intra >= 0 && model_threads != 0 && intra != model_threads)
        return cli_usage("serve", "--tensorflow_intra_op_parallelism and --model_threads say the same: give one");
    if (intra >= 0)
        model_threads = intra;
    if (per_model && !batching)
        return cli_usage("serve", "--enable_per_model_batching_parameters needs --enable_batching");
    if (chan_args != NULL && grpc_channel_args(chan_args, &grpc_recv, &grpc_send) != COFFER_OK)
        return cli_usage("serve", "%s", coffer_err_detail());
    if (mo.provider == COFFER_ATTEST_PROVIDER_SIM)
        coffer_log_set_simulation(true);
    if (threads == 0)
        threads = coffer_cpu_count();
    for (int i = 0; i < 2; i++)
        if (port_threads[i] == 0)
            port_threads[i] = threads;

    struct serve_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    pthread_mutex_init(&ctx.mm_mu, NULL);
    pthread_mutex_init(&ctx.watch_mu, NULL);
    ctx.check_path = check;
    ctx.plain = plain;
    ctx.tensor_content = content;
    ctx.batching = batching;
    ctx.per_model_batching = per_model;
    ctx.metrics_path = COFFER_SERVE_PROMETHEUS_PATH;
    /* one copy of each model by default: memory is what an enclave is short
     * of; more copies run requests in parallel (each adds its own packed
     * weights and activations) */
    ctx.instances = (size_t)instances;
    ctx.model_threads = model_threads;
    ctx.warmup = warm;
    ctx.warmup_iterations = warm_iter > 0 ? (size_t)warm_iter : 1;
    ctx.allow_reload = reload;
    ctx.rest_timeout_ns = (uint64_t)rest_timeout_ms * 1000000u;
    ctx.cors = cors;
    limits_for(grpc_recv, &ctx.grpc_lim);
    limits_for(rest_max, &ctx.rest_lim);
    struct marble_result act;
    memset(&act, 0, sizeof(act));
    struct coffer_serve_monitoring_config mon = {0};
    bool client_verify = client_ca != NULL;
    uint8_t *text = NULL, *cfg_text = NULL;
    size_t text_n = 0, cfg_text_n = 0;
    enum coffer_err r = COFFER_OK;
    /* the config files first: a typo fails before anything starts */
    if (config_file != NULL) {
        /* (the model config's bytes are kept for its watch: a change
         * between this read and the watch's first look is still seen) */
        if ((r = read_text(config_file, &cfg_text, &cfg_text_n)) == COFFER_OK &&
            (r = coffer_serve_config_parse(cfg_text, cfg_text_n, &ctx.models)) != COFFER_OK)
            coffer_err_context("%s", config_file);
        if (r == COFFER_OK && ctx.models.model_count == 0)
            r = COFFER_FAIL(COFFER_E_INVALID_ARG, "%s configures no model", config_file);
    } else {
        r = single_model(&ctx.models, name, base);
    }
    if (r == COFFER_OK && batching) {
        if (batch_file == NULL) {
            r = coffer_serve_batching_config_parse("", 0, &ctx.bcfg); /* TF's defaults */
        } else if ((r = read_text(batch_file, &text, &text_n)) == COFFER_OK) {
            if ((r = coffer_serve_batching_config_parse(text, text_n, &ctx.bcfg)) != COFFER_OK)
                coffer_err_context("%s", batch_file);
            coffer_free(text);
        }
        if (r == COFFER_OK && (r = serve_batching_check(&ctx.bcfg)) != COFFER_OK && batch_file != NULL)
            coffer_err_context("%s", batch_file);
    }
    if (r == COFFER_OK && mon_file != NULL && (r = read_text(mon_file, &text, &text_n)) == COFFER_OK) {
        if ((r = coffer_serve_monitoring_config_parse(text, text_n, &mon)) != COFFER_OK)
            coffer_err_context("%s", mon_file);
        else
            ctx.metrics_path = mon.prometheus_enable ? mon.prometheus_path : NULL;
        coffer_free(text);
    }
    SSL_CTX *ssl = r == COFFER_OK ? SSL_CTX_new(TLS_server_method()) : NULL;
    if (r == COFFER_OK && ssl == NULL)
        r = COFFER_FAIL(COFFER_E_NOMEM, "TLS");
    if (r == COFFER_OK)
        SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    if (r == COFFER_OK && coordinated) {
        marble_opts_defaults(&mo);
        if ((r = marble_activate(&mo, &act)) == COFFER_OK) {
            coffer_info("serve: activated as marble %s (uuid %s)", mo.marble_type, act.uuid);
            if ((r = tls_from_pem(ssl, act.cert_chain_pem, act.key)) == COFFER_OK && !plain)
                r = marble_param(&act, "Files", key_file_param, &ctx.key);
        }
    } else if (r == COFFER_OK) {
        if (ssl_config != NULL)
            r = tls_from_ssl_config(ssl, ssl_config, &client_verify);
        else if (SSL_CTX_use_certificate_chain_file(ssl, tls_cert) != 1 ||
                 SSL_CTX_use_PrivateKey_file(ssl, tls_key, SSL_FILETYPE_PEM) != 1 ||
                 SSL_CTX_check_private_key(ssl) != 1)
            r = COFFER_FAIL(COFFER_E_CERT, "cannot use %s and %s as the TLS identity", tls_cert, tls_key);
        if (r == COFFER_OK && !plain)
            r = coffer_file_read_secret(model_key, 64, &ctx.key);
    }
    if (r == COFFER_OK && client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names == NULL || SSL_CTX_load_verify_locations(ssl, client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            r = COFFER_FAIL(COFFER_E_CERT, "--ssl_client_ca %s: no PEM CA certificate there", client_ca);
        } else {
            SSL_CTX_set_client_CA_list(ssl, names);
        }
    }
    if (r == COFFER_OK && reload && !client_verify)
        r = COFFER_FAIL(COFFER_E_INVALID_ARG, "--allow_reload_config lets a client change the served models: it "
                        "needs client certificates (--ssl_client_ca, or client_verify in --ssl_config_file)");
    if (r == COFFER_OK && client_verify) {
        /* with client verification a resumed session needs a session id
         * context, or OpenSSL refuses the resumption with internal_error */
        static const unsigned char sid_ctx[] = "coffer serve";
        SSL_CTX_set_session_id_context(ssl, sid_ctx, sizeof(sid_ctx) - 1);
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        coffer_info("serve: clients must present a certificate from the configured CA");
    }
    if (r == COFFER_OK && !plain && ctx.key->size != COFFER_PF_KEY_SIZE)
        r = COFFER_FAIL(COFFER_E_MALFORMED, "the model key is %zu bytes, not %d", ctx.key->size, COFFER_PF_KEY_SIZE);
    if (r == COFFER_OK)
        r = metrics_setup(&ctx);
    struct coffer_serve_loader loader = serve_loader;
    loader.arg = &ctx;
    loader.changed = serve_health_changed;
    if (r == COFFER_OK && (r = coffer_serve_registry_new(&ctx.models, &loader, &ctx.reg)) == COFFER_OK) {
        coffer_serve_registry_set_transition(ctx.reg, resource_preserving ? COFFER_SERVE_RESOURCE_PRESERVING
                                                                           : COFFER_SERVE_AVAILABILITY_PRESERVING);
        coffer_serve_registry_set_load_retries(ctx.reg, (unsigned)retries, (uint64_t)retry_us * 1000u);
    }
    /* the poll thread runs even with --file_system_poll_wait_seconds 0: it
     * unloads the versions a config reload retires once they are idle */
    if (r == COFFER_OK && (r = coffer_serve_registry_load(ctx.reg)) == COFFER_OK)
        r = coffer_serve_registry_start_polling(ctx.reg, (uint32_t)poll_s * 1000u);
    if (r == COFFER_OK && cfg_poll_s > 0)
        r = coffer_serve_registry_watch_config(ctx.reg, config_file, cfg_text, cfg_text_n,
                                               (uint32_t)cfg_poll_s * 1000u);
    coffer_free(cfg_text);
    cfg_text = NULL;
    char addr[3][300];
    snprintf(addr[0], sizeof(addr[0]), "%s:%d", host, grpc_port);
    snprintf(addr[1], sizeof(addr[1]), "%s:%d", host, rest_port);
    if (socket_path != NULL && (size_t)snprintf(addr[2], sizeof(addr[2]), "unix:%s", socket_path) >= sizeof(addr[2]))
        r = COFFER_FAIL(COFFER_E_INVALID_ARG, "--grpc_socket_path is too long");
    for (int i = 0; i < 3 && r == COFFER_OK; i++) {
        if ((i == 0 && grpc_port == 0) || (i == 1 && rest_port == 0) || (i == 2 && socket_path == NULL))
            continue;
        /* the socket: gRPC as on --port, with the same TLS identity (TF's) */
        bool grpc = i != 1;
        struct coffer_net_server_config sc = {.ssl_ctx = ssl, .bind = addr[i], .threads = port_threads[grpc ? 0 : 1],
                                              .access_log = true, .metrics = i == 1 ? ctx.metrics : NULL,
                                              .decode_gzip_bodies = true, .handler = serve_rest_handler,
                                              .handler_arg = &ctx,
                                              .grpc_handler = grpc ? serve_grpc_handler : NULL,
                                              .grpc_handler_arg = &ctx,
                                              /* batching: a turn's requests are queued together */
                                              .turn_hook = ctx.batching ? serve_turn_end : NULL};
        if (grpc) {
            /* gRPC: TF Serving's caps (INT32_MAX both ways unless told);
             * memory is bounded per connection by net/ (h2.c) */
            sc.max_grpc_message_size = grpc_recv;
            sc.max_response_size = grpc_send;
        } else {
            sc.max_body_size = rest_max;
        }
        r = coffer_net_server_new(&sc, &servers[i]);
    }
    if (r == COFFER_OK) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        for (int i = 0; i < 3 && r == COFFER_OK; i++)
            if (servers[i] != NULL)
                r = coffer_net_server_start(servers[i]);
    }
    if (r == COFFER_OK) {
        if (servers[2] != NULL)
            coffer_info("serve: gRPC on UNIX socket %s", socket_path);
        coffer_info("serve: gRPC on port %u (%d thread%s), REST on port %u (%d thread%s), %zu model%s%s",
                    servers[0] ? coffer_net_server_port(servers[0]) : 0, port_threads[0],
                    port_threads[0] == 1 ? "" : "s",
                    servers[1] ? coffer_net_server_port(servers[1]) : 0, servers[1] ? port_threads[1] : 0,
                    servers[1] && port_threads[1] == 1 ? "" : "s",
                    ctx.models.model_count,
                    ctx.models.model_count == 1 ? "" : "s", batching ? ", batching on" : "");
        for (int i = 0; i < 3; i++)
            if (servers[i] != NULL)
                coffer_net_server_wait(servers[i]);
    }
    /* the loops have ended: queued batches answer into the servers' queues,
     * which still exist, before the servers go */
    coffer_serve_registry_free(ctx.reg);
    for (int i = 0; i < 3; i++) {
        coffer_net_server_free(servers[i]);
        servers[i] = NULL;
    }
    if (r == COFFER_OK)
        coffer_info("serve: stopped");
    coffer_secret_free(ctx.key);
    while (ctx.mm != NULL) {
        struct serve_model_metrics *next = ctx.mm->next;
        coffer_free(ctx.mm->name);
        coffer_free(ctx.mm);
        ctx.mm = next;
    }
    pthread_mutex_destroy(&ctx.mm_mu);
    pthread_mutex_destroy(&ctx.watch_mu);
    coffer_net_metrics_free(ctx.metrics);
    coffer_serve_config_free(&ctx.models);
    coffer_serve_batching_config_free(&ctx.bcfg);
    coffer_serve_monitoring_config_free(&mon);
    marble_result_free(&act);
    coord_client_free(&mo.cc);
    SSL_CTX_free(ssl);
    return r == COFFER_OK ? CLI_OK : cli_fail("serve", r);
}
