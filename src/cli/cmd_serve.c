/*
 * cmd_serve.c — `coffer serve`: a TensorFlow-Serving-compatible model server
 * for ONNX models kept as protected files.
 *
 * Design: TF Serving's flags where they apply (--port for gRPC, 8500;
 * --rest_api_port, 8501; --model_name; --model_base_path holding
 * BASE/VERSION/model.onnx). The identity and the model key come either from
 * the coordinator (--coordinator: attested activation in memory, TLS with
 * the marble certificate the coordinator issued for our own key, the model
 * key from the activation's Files, by default the Gramine key file
 * /dev/attestation/keys/default) or from files (--tls-cert, --tls-key,
 * --model-key). The newest version is decrypted into secret memory, with the
 * bound-path check Gramine makes (the path opened must be the path the file
 * was encrypted for; --no-path-check for files encrypted elsewhere), and
 * loaded by nn/; plaintext never touches the disk. REST and gRPC run on net/
 * servers over TLS; both go through one predict path that serialises runs of
 * the model (nn models are not re-entrant) and translates between TF
 * Serving's tensors and nn's. Errors carry TF's canonical codes and
 * messages (serve/). /healthz and Prometheus metrics at
 * /monitoring/prometheus/metrics on the REST port; SIGTERM stops gracefully.
 *
 * Not yet: several models (--model_config_file), batching, hot reload of new
 * versions, client-certificate authentication.
 */
#include <fcntl.h>
#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "coffer/net.h"
#include "coffer/nn.h"
#include "coffer/pf.h"
#include "coffer/serve.h"
#include "marble.h"

void cmd_serve_help(FILE *out)
{
    fprintf(out,
            "usage: coffer serve --model_base_path DIR [--model_name NAME] [--port 8500] [--rest_api_port 8501]\n"
            "                    (--coordinator HOST:PORT --marble-type TYPE [--simulation]\n"
            "                     | --tls-cert CERT --tls-key KEY --model-key KEYFILE)\n"
            "                    [--host ADDR] [--no-path-check] [--plain-model] [--threads N]\n\n"
            "A TensorFlow-Serving-compatible server (gRPC PredictionService and ModelService,\n"
            "REST /v1/models/...) for an ONNX model kept as a Gramine protected file at\n"
            "DIR/VERSION/model.onnx; the newest version is served.\n\n"
            "  --coordinator H:P      activate with the coordinator's marble API: it attests this\n"
            "                         process and returns the TLS certificate and the model key\n"
            "  --marble-type TYPE     the marble in the manifest (EDG_MARBLE_TYPE)\n"
            "  --model-key-file PATH  which activation File holds the key\n"
            "                         (default /dev/attestation/keys/default)\n"
            "  --simulation           simulation evidence, and accept a simulation coordinator\n"
            "  --tls-cert, --tls-key  standalone TLS identity (PEM; the cert file may hold a chain)\n"
            "  --model-key KEYFILE    standalone wrap key (16 raw bytes)\n"
            "  --host ADDR            listen address (default 0.0.0.0)\n"
            "  --rest_api_port 0      no REST\n"
            "  --no-path-check        accept a model encrypted for another path\n"
            "  --plain-model          the model files are NOT encrypted (says so)\n"
            "Endpoints: gRPC on --port; REST, /healthz and /monitoring/prometheus/metrics on\n"
            "--rest_api_port. Both over TLS.\n");
}

struct model {
    char *name;
    int64_t version;
    struct coffer_secret *bytes; /* the decrypted model: nn borrows it */
    struct coffer_nn_model *nn;
    pthread_mutex_t mu;
    struct coffer_serve_tensor_info *inputs, *outputs;
    size_t n_in, n_out;
    struct coffer_serve_signature sig;
    struct coffer_serve_version_status vs;
    struct coffer_net_metrics *metrics;
    struct coffer_net_counter *requests_ok, *requests_failed;
    struct coffer_net_histogram *latency;
    struct coffer_net_gauge *load_ms;
};

static struct coffer_net_server *servers[2];

static void on_signal(int sig)
{
    (void)sig;
    for (int i = 0; i < 2; i++)
        if (servers[i] != NULL)
            coffer_net_server_stop(servers[i], 10000);
}

/* ---- dtypes between TF Serving and ONNX */

static const struct {
    enum coffer_serve_dtype tf;
    enum coffer_nn_dtype onnx;
} dtypes[] = {
    {COFFER_SERVE_DT_FLOAT, COFFER_NN_FLOAT},   {COFFER_SERVE_DT_DOUBLE, COFFER_NN_DOUBLE},
    {COFFER_SERVE_DT_INT32, COFFER_NN_INT32},   {COFFER_SERVE_DT_UINT8, COFFER_NN_UINT8},
    {COFFER_SERVE_DT_INT16, COFFER_NN_INT16},   {COFFER_SERVE_DT_INT8, COFFER_NN_INT8},
    {COFFER_SERVE_DT_INT64, COFFER_NN_INT64},   {COFFER_SERVE_DT_BOOL, COFFER_NN_BOOL},
    {COFFER_SERVE_DT_HALF, COFFER_NN_FLOAT16},  {COFFER_SERVE_DT_UINT16, COFFER_NN_UINT16},
    {COFFER_SERVE_DT_UINT32, COFFER_NN_UINT32}, {COFFER_SERVE_DT_UINT64, COFFER_NN_UINT64},
};

static enum coffer_serve_dtype tf_of(enum coffer_nn_dtype d)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (dtypes[i].onnx == d)
            return dtypes[i].tf;
    return COFFER_SERVE_DT_INVALID;
}

static void info_of(const struct coffer_nn_value_info *v, struct coffer_serve_tensor_info *t)
{
    memset(t, 0, sizeof(*t));
    t->alias = v->name;
    t->tensor_name = v->name;
    t->dtype = tf_of(v->dtype);
    t->rank = (size_t)v->rank;
    for (int i = 0; i < v->rank && i < COFFER_SERVE_MAX_RANK; i++)
        t->dims[i] = v->dims[i];
}

/* ---- the model */

static enum coffer_err model_load(struct model *m, const char *base, const uint8_t *key, bool check, bool plain)
{
    int64_t *versions = NULL;
    size_t count = 0;
    enum coffer_err r = coffer_serve_model_versions_scan(base, &versions, &count);
    if (r != COFFER_OK)
        return r;
    if (count == 0) {
        coffer_free(versions);
        return COFFER_FAIL(COFFER_E_NOT_FOUND, "no version folder (BASE/VERSION/%s) under %s", COFFER_SERVE_MODEL_FILE,
                           base);
    }
    m->version = versions[0];
    coffer_free(versions);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%lld/%s", base, (long long)m->version, COFFER_SERVE_MODEL_FILE);
    uint64_t t0 = coffer_now_ns();
    if (plain) {
        coffer_warn("serving %s as a PLAIN model file: it is not encrypted", path);
        uint8_t *d;
        size_t n;
        if ((r = coffer_file_read_all(path, COFFER_NN_MAX_MODEL_SIZE, &d, &n)) == COFFER_OK &&
            (r = coffer_secret_new(n, &m->bytes)) == COFFER_OK)
            memcpy(m->bytes->data, d, n);
        coffer_free(d);
    } else {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return COFFER_FAIL(COFFER_E_NOT_FOUND, "cannot open %s", path);
        char norm[4096];
        r = coffer_pf_normalize_path(path, norm, sizeof(norm));
        struct coffer_io_fd io;
        coffer_io_fd_init(&io, fd);
        if (r == COFFER_OK)
            r = coffer_pf_decrypt_all(&io.io, key, check ? norm : NULL, 0, &m->bytes);
        close(fd);
    }
    if (r == COFFER_OK)
        r = coffer_nn_model_load(m->bytes->data, m->bytes->size, &m->nn);
    if (r != COFFER_OK) {
        coffer_err_context("model %s", path);
        return r;
    }
    m->n_in = coffer_nn_model_input_count(m->nn);
    m->n_out = coffer_nn_model_output_count(m->nn);
    m->inputs = coffer_calloc(m->n_in + 1, sizeof(*m->inputs));
    m->outputs = coffer_calloc(m->n_out + 1, sizeof(*m->outputs));
    if (m->inputs == NULL || m->outputs == NULL)
        return COFFER_E_NOMEM;
    for (size_t i = 0; i < m->n_in; i++) {
        struct coffer_nn_value_info v;
        if ((r = coffer_nn_model_input(m->nn, i, &v)) != COFFER_OK)
            return r;
        info_of(&v, &m->inputs[i]);
    }
    for (size_t i = 0; i < m->n_out; i++) {
        struct coffer_nn_value_info v;
        if ((r = coffer_nn_model_output(m->nn, i, &v)) != COFFER_OK)
            return r;
        info_of(&v, &m->outputs[i]);
    }
    m->sig = (struct coffer_serve_signature){.key = COFFER_SERVE_DEFAULT_SIGNATURE,
                                             .method_name = COFFER_SERVE_PREDICT_METHOD, .inputs = m->inputs,
                                             .input_count = m->n_in, .outputs = m->outputs, .output_count = m->n_out};
    m->vs = (struct coffer_serve_version_status){.version = m->version, .state = COFFER_SERVE_STATE_AVAILABLE,
                                                 .error_code = COFFER_SERVE_OK};
    double ms = (double)(coffer_now_ns() - t0) / 1e6;
    coffer_net_gauge_set(m->load_ms, (int64_t)ms);
    coffer_info("serve: model %s version %lld loaded in %.1f ms (%zu inputs, %zu outputs)", m->name,
                (long long)m->version, ms, m->n_in, m->n_out);
    return COFFER_OK;
}

/* Which version a request gets (only the loaded one exists). */
static enum coffer_err resolve(struct model *m, const char *name, bool has_version, int64_t version,
                               const char *label, struct coffer_serve_model_spec *out, struct coffer_serve_status *st)
{
    bool ours = name != NULL && strcmp(name, m->name) == 0;
    int64_t v;
    enum coffer_err r = coffer_serve_version_resolve(name ? name : "", ours ? &m->vs : NULL, ours ? 1 : 0, NULL, 0,
                                                     has_version, version, label, &v, st);
    if (r != COFFER_OK)
        return r;
    memset(out, 0, sizeof(*out));
    out->name = m->name;
    out->has_version = true;
    out->version = v;
    out->signature_name = (char *)COFFER_SERVE_DEFAULT_SIGNATURE;
    return COFFER_OK;
}

/* Run the model: inputs in signature order; outputs allocated (owned). */
static enum coffer_err predict(struct model *m, const struct coffer_serve_tensor *in, size_t n_in,
                               struct coffer_serve_tensor **out, struct coffer_serve_status *st)
{
    *out = NULL;
    struct coffer_nn_tensor nin[16], nout[16];
    if (n_in != m->n_in || n_in > 16 || m->n_out > 16)
        return coffer_serve_status_set(st, COFFER_SERVE_INVALID_ARGUMENT, "expected %zu inputs, got %zu", m->n_in,
                                       n_in);
    for (size_t i = 0; i < n_in; i++) {
        if (in[i].dtype != m->inputs[i].dtype)
            return coffer_serve_status_set(st, COFFER_SERVE_INVALID_ARGUMENT,
                                           "Expects arg[%zu] to be %s but %s is provided", i,
                                           coffer_serve_dtype_name(m->inputs[i].dtype),
                                           coffer_serve_dtype_name(in[i].dtype));
        nin[i] = (struct coffer_nn_tensor){.dtype = (enum coffer_nn_dtype)0, .rank = (int)in[i].rank,
                                           .data = in[i].data, .size = in[i].size};
        for (size_t k = 0; k < sizeof(dtypes) / sizeof(dtypes[0]); k++)
            if (dtypes[k].tf == in[i].dtype)
                nin[i].dtype = dtypes[k].onnx;
        for (size_t d = 0; d < in[i].rank && d < COFFER_NN_MAX_RANK; d++)
            nin[i].dims[d] = in[i].dims[d];
    }
    struct coffer_serve_tensor *res = coffer_calloc(m->n_out + 1, sizeof(*res));
    if (res == NULL)
        return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "out of memory");
    pthread_mutex_lock(&m->mu);
    enum coffer_err r = coffer_nn_model_run(m->nn, nin, n_in, nout, m->n_out);
    for (size_t k = 0; k < m->n_out && r == COFFER_OK; k++) {
        size_t rank = (size_t)nout[k].rank;
        if ((r = coffer_serve_tensor_init(&res[k], m->outputs[k].alias, tf_of(nout[k].dtype), rank, nout[k].dims)) ==
            COFFER_OK) {
            if (res[k].size != nout[k].size)
                r = COFFER_FAIL(COFFER_E_INTERNAL, "output %zu: %zu bytes for %zu", k, nout[k].size, res[k].size);
            else
                memcpy(res[k].data, nout[k].data, nout[k].size);
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (r != COFFER_OK) {
        coffer_serve_tensors_free(res, m->n_out);
        char msg[700];
        return coffer_serve_status_set(st, r == COFFER_E_NOMEM ? COFFER_SERVE_RESOURCE_EXHAUSTED
                                           : r == COFFER_E_INTERNAL ? COFFER_SERVE_INTERNAL
                                                                    : COFFER_SERVE_INVALID_ARGUMENT,
                                       "%s", coffer_err_format(r, msg, sizeof(msg)));
    }
    *out = res;
    return COFFER_OK;
}

/* ---- REST */

static void rest_error(struct coffer_net_response *resp, const struct coffer_serve_status *st)
{
    char *body;
    size_t n;
    int http = coffer_serve_code_http(st->code);
    if (coffer_serve_rest_error_json(st->message, &body, &n) == COFFER_OK) {
        coffer_net_response_set_status(resp, http);
        if (coffer_net_response_add_header(resp, "Content-Type", "application/json") != COFFER_OK ||
            coffer_net_response_append(resp, body, n) != COFFER_OK)
            coffer_net_response_error(resp, http, st->message);
        coffer_free(body);
    } else {
        coffer_net_response_error(resp, http, st->message);
    }
}

static enum coffer_err rest_json(struct coffer_net_response *resp, char *body, size_t n)
{
    enum coffer_err r = coffer_net_response_add_header(resp, "Content-Type", "application/json");
    if (r == COFFER_OK)
        r = coffer_net_response_append(resp, body, n);
    coffer_memzero(body, n); /* predictions are user data */
    coffer_free(body);
    return r;
}

static enum coffer_err rest_handler(void *arg, const struct coffer_net_request *req, struct coffer_net_response *resp)
{
    struct model *m = arg;
    uint64_t t0 = coffer_now_ns();
    if (strcmp(req->path, "/healthz") == 0) {
        enum coffer_err r = coffer_net_response_add_header(resp, "Content-Type", "text/plain");
        return r == COFFER_OK ? coffer_net_response_append(resp, "ok\n", 3) : r;
    }
    if (strcmp(req->path, "/monitoring/prometheus/metrics") == 0) {
        struct coffer_buf b;
        coffer_buf_init(&b, 0, false);
        enum coffer_err r = coffer_net_metrics_render(m->metrics, &b);
        if (r == COFFER_OK && (r = coffer_net_response_add_header(resp, "Content-Type",
                                                                  COFFER_NET_METRICS_CONTENT_TYPE)) == COFFER_OK)
            r = coffer_net_response_append(resp, b.data ? b.data : (const uint8_t *)"", b.size);
        coffer_buf_free(&b);
        return r;
    }
    struct coffer_serve_status st;
    coffer_serve_status_clear(&st);
    struct coffer_serve_rest_route route;
    memset(&route, 0, sizeof(route));
    enum coffer_err r = coffer_serve_rest_route_parse(req->method, req->path, strlen(req->path), &route, &st);
    char *body = NULL;
    size_t n = 0;
    struct coffer_serve_model_spec spec;
    if (r == COFFER_OK && route.kind == COFFER_SERVE_REST_NONE) {
        coffer_serve_rest_route_free(&route);
        coffer_net_response_error(resp, 404, "Not Found");
        return COFFER_OK;
    }
    if (r == COFFER_OK) {
        switch (route.kind) {
        case COFFER_SERVE_REST_STATUS: {
            size_t first, count;
            bool ours = strcmp(route.name, m->name) == 0;
            r = coffer_serve_status_select(route.name, ours ? &m->vs : NULL, ours ? 1 : 0, route.has_version,
                                           route.version, &first, &count, &st);
            if (r == COFFER_OK)
                r = coffer_serve_rest_status_json(&m->vs, count, &body, &n);
            break;
        }
        case COFFER_SERVE_REST_METADATA:
            if ((r = resolve(m, route.name, route.has_version, route.version, route.label, &spec, &st)) == COFFER_OK)
                r = coffer_serve_rest_metadata_json(&spec, &m->sig, 1, &body, &n);
            break;
        case COFFER_SERVE_REST_PREDICT: {
            struct coffer_serve_rest_predict p;
            struct coffer_serve_tensor *outs = NULL;
            memset(&p, 0, sizeof(p));
            if ((r = resolve(m, route.name, route.has_version, route.version, route.label, &spec, &st)) == COFFER_OK &&
                (r = coffer_serve_rest_predict_parse(req->body, req->body_size, &m->sig, 1, NULL, &p, &st)) ==
                    COFFER_OK &&
                (r = predict(m, p.inputs, p.input_count, &outs, &st)) == COFFER_OK)
                r = coffer_serve_rest_predict_response(p.format, outs, m->n_out, &body, &n, &st);
            if (outs != NULL)
                coffer_serve_tensors_free(outs, m->n_out);
            coffer_serve_rest_predict_free(&p);
            break;
        }
        default:
            r = coffer_serve_status_set(&st, COFFER_SERVE_UNIMPLEMENTED, "%s is not implemented by coffer serve",
                                        route.kind == COFFER_SERVE_REST_CLASSIFY ? "classify" : "regress");
            break;
        }
    }
    coffer_serve_rest_route_free(&route);
    coffer_net_histogram_observe(m->latency, (double)(coffer_now_ns() - t0) / 1e9);
    if (r == COFFER_OK && body != NULL) {
        coffer_net_counter_add(m->requests_ok, 1);
        return rest_json(resp, body, n);
    }
    coffer_net_counter_add(m->requests_failed, 1);
    if (st.code == COFFER_SERVE_OK)
        coffer_serve_status_set(&st, r == COFFER_E_NOMEM ? COFFER_SERVE_RESOURCE_EXHAUSTED : COFFER_SERVE_INTERNAL,
                                "%s", coffer_strerror(r));
    rest_error(resp, &st);
    return COFFER_OK;
}

/* ---- gRPC */

static enum coffer_err grpc_handler(void *arg, const struct coffer_net_grpc_call *call,
                                    struct coffer_net_grpc_reply *reply)
{
    struct model *m = arg;
    uint64_t t0 = coffer_now_ns();
    struct coffer_serve_status st;
    coffer_serve_status_clear(&st);
    struct coffer_serve_model_spec asked, spec;
    memset(&asked, 0, sizeof(asked));
    uint8_t *out = NULL;
    size_t n = 0;
    enum coffer_err r;
    if (strcmp(call->path, "/tensorflow.serving.PredictionService/Predict") == 0) {
        struct coffer_serve_predict_request req;
        memset(&req, 0, sizeof(req));
        struct coffer_serve_tensor *outs = NULL;
        struct coffer_serve_tensor ordered[16];
        if ((r = coffer_serve_predict_request_decode(call->message, call->message_size, NULL, &req, &st)) ==
                COFFER_OK &&
            (r = resolve(m, req.spec.name, req.spec.has_version, req.spec.version, req.spec.version_label, &spec,
                         &st)) == COFFER_OK) {
            const char *names[16];
            for (size_t i = 0; i < req.input_count && i < 16; i++)
                names[i] = req.inputs[i].name;
            if (req.input_count > 16)
                r = coffer_serve_status_set(&st, COFFER_SERVE_INVALID_ARGUMENT, "too many inputs");
            else
                r = coffer_serve_signature_check_inputs(&m->sig, names, req.input_count, &st);
            if (r == COFFER_OK)
                r = coffer_serve_signature_check_filter(&m->sig, req.output_filter, req.output_filter_count, &st);
            for (size_t i = 0; r == COFFER_OK && i < m->n_in; i++)
                for (size_t k = 0; k < req.input_count; k++)
                    if (strcmp(req.inputs[k].name, m->inputs[i].alias) == 0)
                        ordered[i] = req.inputs[k];
            if (r == COFFER_OK && (r = predict(m, ordered, m->n_in, &outs, &st)) == COFFER_OK) {
                /* output_filter: only those, in the filter's order */
                struct coffer_serve_tensor sel[16];
                size_t ns = 0;
                for (size_t k = 0; k < m->n_out; k++) {
                    bool keep = req.output_filter_count == 0;
                    for (size_t f = 0; f < req.output_filter_count; f++)
                        keep |= strcmp(req.output_filter[f], outs[k].name) == 0;
                    if (keep)
                        sel[ns++] = outs[k];
                }
                r = coffer_serve_predict_response_encode(&spec, sel, ns, false, &out, &n);
            }
        }
        if (outs != NULL)
            coffer_serve_tensors_free(outs, m->n_out);
        coffer_serve_predict_request_free(&req);
    } else if (strcmp(call->path, "/tensorflow.serving.PredictionService/GetModelMetadata") == 0) {
        if ((r = coffer_serve_metadata_request_decode(call->message, call->message_size, &asked, &st)) == COFFER_OK &&
            (r = resolve(m, asked.name, asked.has_version, asked.version, asked.version_label, &spec, &st)) ==
                COFFER_OK)
            r = coffer_serve_metadata_response_encode(&spec, &m->sig, 1, &out, &n);
        coffer_serve_model_spec_free(&asked);
    } else if (strcmp(call->path, "/tensorflow.serving.ModelService/GetModelStatus") == 0) {
        size_t first, count;
        bool ours;
        if ((r = coffer_serve_status_request_decode(call->message, call->message_size, &asked, &st)) == COFFER_OK) {
            ours = asked.name != NULL && strcmp(asked.name, m->name) == 0;
            if ((r = coffer_serve_status_select(asked.name ? asked.name : "", ours ? &m->vs : NULL, ours ? 1 : 0,
                                                asked.has_version, asked.version, &first, &count, &st)) == COFFER_OK)
                r = coffer_serve_status_response_encode(&m->vs, count, &out, &n);
        }
        coffer_serve_model_spec_free(&asked);
    } else {
        r = coffer_serve_status_set(&st, COFFER_SERVE_UNIMPLEMENTED, "Method not found: %s", call->path);
    }
    coffer_net_histogram_observe(m->latency, (double)(coffer_now_ns() - t0) / 1e9);
    if (r == COFFER_OK) {
        coffer_net_counter_add(m->requests_ok, 1);
        r = coffer_net_grpc_reply_append(reply, out, n);
        coffer_memzero(out, n);
        coffer_free(out);
        return r;
    }
    coffer_free(out);
    coffer_net_counter_add(m->requests_failed, 1);
    if (st.code == COFFER_SERVE_OK)
        coffer_serve_status_set(&st, r == COFFER_E_NOMEM ? COFFER_SERVE_RESOURCE_EXHAUSTED : COFFER_SERVE_INTERNAL,
                                "%s", coffer_strerror(r));
    char msg[COFFER_SERVE_GRPC_MSG_SIZE];
    coffer_net_grpc_reply_status(reply, (enum coffer_net_grpc_code)st.code,
                                 coffer_serve_grpc_message(st.message, msg, sizeof(msg)));
    return COFFER_OK;
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

int cmd_serve(int argc, char **argv)
{
    enum { O_PORT = 1000, O_REST, O_NAME, O_BASE, O_COORD, O_TYPE, O_KEYFILE, O_SIM, O_CERT, O_KEY, O_MKEY,
           O_HOST, O_NOCHECK, O_PLAIN, O_THREADS, O_POLICY, O_INSECURE };
    static const struct option longopts[] = {
        {"port", required_argument, NULL, O_PORT},          {"rest_api_port", required_argument, NULL, O_REST},
        {"model_name", required_argument, NULL, O_NAME},    {"model_base_path", required_argument, NULL, O_BASE},
        {"coordinator", required_argument, NULL, O_COORD},  {"marble-type", required_argument, NULL, O_TYPE},
        {"model-key-file", required_argument, NULL, O_KEYFILE}, {"simulation", no_argument, NULL, O_SIM},
        {"tls-cert", required_argument, NULL, O_CERT},      {"tls-key", required_argument, NULL, O_KEY},
        {"model-key", required_argument, NULL, O_MKEY},     {"host", required_argument, NULL, O_HOST},
        {"no-path-check", no_argument, NULL, O_NOCHECK},    {"plain-model", no_argument, NULL, O_PLAIN},
        {"threads", required_argument, NULL, O_THREADS},    {"policy", required_argument, NULL, O_POLICY},
        {"insecure", no_argument, NULL, O_INSECURE},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int grpc_port = 8500, rest_port = 8501, threads = 0;
    const char *name = "default", *base = NULL, *key_file_param = "/dev/attestation/keys/default";
    const char *tls_cert = NULL, *tls_key = NULL, *model_key = NULL, *host = "0.0.0.0";
    bool check = true, plain = false;
    struct marble_opts mo = {0};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_PORT: grpc_port = atoi(optarg); break;
        case O_REST: rest_port = atoi(optarg); break;
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
        case O_THREADS: threads = atoi(optarg); break;
        case O_POLICY: mo.cc.policy_path = optarg; break;
        case O_INSECURE: mo.cc.insecure = true; break;
        case 'h': cmd_serve_help(stdout); return CLI_OK;
        default: return cli_usage("serve", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (base == NULL)
        return cli_usage("serve", "--model_base_path is required");
    bool coordinated = mo.cc.address != NULL;
    if (coordinated == (tls_cert != NULL))
        return cli_usage("serve", "give --coordinator (attested) or --tls-cert/--tls-key/--model-key (standalone)");
    if (!coordinated && (tls_key == NULL || (model_key == NULL && !plain)))
        return cli_usage("serve", "standalone needs --tls-cert, --tls-key and --model-key");
    if (grpc_port <= 0 || grpc_port > 65535 || rest_port < 0 || rest_port > 65535 || rest_port == grpc_port)
        return cli_usage("serve", "--port and --rest_api_port must be different ports (--rest_api_port 0: no REST)");
    if (mo.provider == COFFER_ATTEST_PROVIDER_SIM)
        coffer_log_set_simulation(true);

    struct model m = {.name = (char *)name};
    pthread_mutex_init(&m.mu, NULL);
    struct marble_result act;
    memset(&act, 0, sizeof(act));
    struct coffer_secret *key = NULL;
    SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
    enum coffer_err r = ssl ? COFFER_OK : COFFER_FAIL(COFFER_E_NOMEM, "TLS");
    if (r == COFFER_OK)
        SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    if (r == COFFER_OK && coordinated) {
        marble_opts_defaults(&mo);
        if ((r = marble_activate(&mo, &act)) == COFFER_OK) {
            coffer_info("serve: activated as marble %s (uuid %s)", mo.marble_type, act.uuid);
            if ((r = tls_from_pem(ssl, act.cert_chain_pem, act.key)) == COFFER_OK && !plain)
                r = marble_param(&act, "Files", key_file_param, &key);
        }
    } else if (r == COFFER_OK) {
        if (SSL_CTX_use_certificate_chain_file(ssl, tls_cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ssl, tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ssl) != 1)
            r = COFFER_FAIL(COFFER_E_CERT, "cannot use %s and %s as the TLS identity", tls_cert, tls_key);
        else if (!plain)
            r = coffer_file_read_secret(model_key, 64, &key);
    }
    if (r == COFFER_OK && !plain && key->size != COFFER_PF_KEY_SIZE)
        r = COFFER_FAIL(COFFER_E_MALFORMED, "the model key is %zu bytes, not %d", key->size, COFFER_PF_KEY_SIZE);
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
    if (r == COFFER_OK && (r = coffer_net_metrics_new(&m.metrics)) == COFFER_OK &&
        (r = coffer_net_metrics_counter(m.metrics, "coffer_serve_requests_total", "Model requests answered",
                                        "result=\"ok\"", &m.requests_ok)) == COFFER_OK &&
        (r = coffer_net_metrics_counter(m.metrics, "coffer_serve_requests_total", "Model requests answered",
                                        "result=\"error\"", &m.requests_failed)) == COFFER_OK &&
        (r = coffer_net_metrics_histogram(m.metrics, "coffer_serve_request_seconds", "Model request latency", "",
                                          bounds, sizeof(bounds) / sizeof(bounds[0]), &m.latency)) == COFFER_OK)
        r = coffer_net_metrics_gauge(m.metrics, "coffer_serve_model_load_milliseconds", "Time to decrypt and load "
                                     "the model", "", &m.load_ms);
    if (r == COFFER_OK)
        r = model_load(&m, base, plain ? NULL : key->data, check, plain);
    coffer_secret_free(key); /* the model is decrypted; the key is no longer needed */
    key = NULL;
    char addr[2][300];
    snprintf(addr[0], sizeof(addr[0]), "%s:%d", host, grpc_port);
    snprintf(addr[1], sizeof(addr[1]), "%s:%d", host, rest_port);
    for (int i = 0; i < 2 && r == COFFER_OK; i++) {
        if (i == 1 && rest_port == 0)
            break;
        struct coffer_net_server_config sc = {.ssl_ctx = ssl, .bind = addr[i], .threads = threads,
                                              .access_log = true, .metrics = i == 1 ? m.metrics : NULL,
                                              .handler = rest_handler, .handler_arg = &m,
                                              .grpc_handler = i == 0 ? grpc_handler : NULL, .grpc_handler_arg = &m};
        r = coffer_net_server_new(&sc, &servers[i]);
    }
    if (r == COFFER_OK) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        for (int i = 0; i < 2 && r == COFFER_OK; i++)
            if (servers[i] != NULL)
                r = coffer_net_server_start(servers[i]);
    }
    if (r == COFFER_OK) {
        coffer_info("serve: gRPC on port %u, REST on port %u, model %s version %lld",
                    coffer_net_server_port(servers[0]), servers[1] ? coffer_net_server_port(servers[1]) : 0, name,
                    (long long)m.version);
        for (int i = 0; i < 2; i++)
            if (servers[i] != NULL)
                coffer_net_server_wait(servers[i]);
        coffer_info("serve: stopped");
    }
    for (int i = 0; i < 2; i++) {
        coffer_net_server_free(servers[i]);
        servers[i] = NULL;
    }
    coffer_nn_model_free(m.nn);
    coffer_secret_free(m.bytes);
    coffer_free(m.inputs);
    coffer_free(m.outputs);
    coffer_net_metrics_free(m.metrics);
    pthread_mutex_destroy(&m.mu);
    marble_result_free(&act);
    coord_client_free(&mo.cc);
    SSL_CTX_free(ssl);
    return r == COFFER_OK ? CLI_OK : cli_fail("serve", r);
}
