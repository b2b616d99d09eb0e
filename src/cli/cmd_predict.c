/*
 * cmd_predict.c — `coffer predict`: the serving flow's client, shaped like TF
 * Serving's ResNet example client (--url, --crt, --batch, --cnum, --loop).
 *
 * Design: the inputs (.npy or ONNX .pb tensor files, PNG or JPEG images made
 * into tensors by the image flags; predict_input.c) fill --batch examples
 * along dimension 0, cycling through them; requests go over gRPC (default: HTTP/2 through
 * libcurl, the 5-byte gRPC framing, grpc-status read from the trailers) or
 * REST (--rest, the row format). The server's TLS certificate must chain to
 * --crt, normally the coordinator's intermediate certificate (a non-root
 * trust anchor, so partial chains are accepted). --cnum threads each send
 * --loop requests; the first reply's top-k classes are printed for each
 * input (with --labels), then latency percentiles and throughput.
 *
 * Trusts: the CA in --crt; replies are parsed by serve/ (protobuf) and
 * jansson.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "coffer/nn.h"
#include "coffer/serve.h"
#include "predict_input.h"

#define PREDICT_MAX_INPUTS 256

void cmd_predict_help(FILE *out)
{
    fprintf(out,
            "usage: coffer predict --url HOST:PORT --crt CA.pem --model NAME -i FILE [-i FILE ...]\n"
            "                      [--rest] [--batch N] [--cnum N] [--loop N] [--labels FILE] [--top K]\n"
            "                      [--input-name NAME] [--output-name NAME] [--timeout S]\n"
            "                      [--cert CERT.pem --key KEY.pem] [image flags]\n\n"
            "Send predictions to a TensorFlow-Serving-compatible server (coffer serve) over\n"
            "gRPC (default) or REST (--rest), TLS verified against CA.pem (the coordinator's\n"
            "intermediate certificate: 'coffer certificate intermediate').\n\n"
            "  -i FILE          one example: a tensor (.npy or ONNX TensorProto .pb) or an image\n"
            "                   (PNG, JPEG); up to %d, cycled through to fill the batch\n"
            "  --batch N        examples per request (default: the number of inputs)\n"
            "  --cnum N         concurrent connections (default 1)\n"
            "  --loop N         requests per connection (default 1)\n"
            "  --labels FILE    class names, one per line, for the top-K listing\n"
            "  --top K          classes listed per input (default 5)\n"
            "  --input-name     the model input's name (default \"image\")\n"
            "  --cert, --key    a client certificate and its key (PEM), for servers that ask\n"
            "                   for one (coffer serve --ssl_client_ca)\n\n"
            "%s",
            PREDICT_MAX_INPUTS, predict_input_help);
}

struct pred_opts {
    const char *url, *crt, *model, *input_name, *output_name, *cert, *key;
    bool rest;
    int batch, cnum, loop, top;
    long timeout;
    struct coffer_serve_tensor input;
};

struct worker {
    const struct pred_opts *o;
    const uint8_t *body;
    size_t body_size;
    double *lat;       /* loop entries */
    int done;
    enum coffer_err err;
    char detail[512];
    struct coffer_buf first; /* first reply body */
    pthread_t thread;
};

struct hdrs {
    int grpc_status;
    char grpc_message[512];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    return coffer_buf_put(arg, p, size * n) == COFFER_OK ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct hdrs *h = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp(p, "grpc-status:", 12) == 0)
        h->grpc_status = atoi(p + 12);
    else if (len > 13 && strncasecmp(p, "grpc-message:", 13) == 0) {
        size_t m = len - 13 < sizeof(h->grpc_message) - 1 ? len - 13 : sizeof(h->grpc_message) - 1;
        memcpy(h->grpc_message, p + 13, m);
        h->grpc_message[m] = '\0';
        char *e = h->grpc_message + strlen(h->grpc_message);
        while (e > h->grpc_message && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
            *--e = '\0';
    }
    return len;
}

static CURL *handle(const struct pred_opts *o, struct curl_slist **hdr, bool grpc)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    char url[1024];
    if (grpc)
        snprintf(url, sizeof(url), "https://%s/tensorflow.serving.PredictionService/Predict", o->url);
    else
        snprintf(url, sizeof(url), "https://%s/v1/models/%s:predict", o->url, o->model);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_CAINFO, o->crt);
    if (o->cert != NULL) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, o->cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, o->key);
    }
    /* a pinned intermediate is a trust anchor (OpenSSL's partial chains, curl's default) */
    curl_easy_setopt(h, CURLOPT_TIMEOUT, o->timeout);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, grpc ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
    *hdr = curl_slist_append(NULL, grpc ? "Content-Type: application/grpc" : "Content-Type: application/json");
    if (grpc)
        *hdr = curl_slist_append(*hdr, "TE: trailers");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdr);
    return h;
}

/* One request on h; the reply body (gRPC: the message, unframed) into out. */
static enum coffer_err send_one(CURL *h, const struct pred_opts *o, const uint8_t *body, size_t n, struct coffer_buf *out)
{
    struct coffer_buf raw;
    coffer_buf_init(&raw, 256u << 20, false);
    struct hdrs hd = {.grpc_status = -1};
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &raw);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hd);
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    enum coffer_err r = COFFER_OK;
    if (rc != CURLE_OK) {
        r = COFFER_FAIL(rc == CURLE_PEER_FAILED_VERIFICATION ? COFFER_E_CERT : COFFER_E_NET, "%s: %s", o->url,
                        err[0] ? err : curl_easy_strerror(rc));
    } else if (!o->rest) {
        if (hd.grpc_status != 0) {
            r = COFFER_FAIL(COFFER_E_NET, "gRPC status %d (%s): %s", hd.grpc_status,
                            hd.grpc_status >= 0 ? coffer_serve_code_name((enum coffer_serve_code)hd.grpc_status)
                                                : "none",
                            hd.grpc_message);
        } else {
            struct coffer_rd rd;
            uint8_t flag;
            uint32_t len;
            const uint8_t *msg;
            coffer_rd_init(&rd, raw.data, raw.size);
            if ((r = coffer_rd_u8(&rd, &flag)) == COFFER_OK && (r = coffer_rd_u32be(&rd, &len)) == COFFER_OK &&
                (r = coffer_rd_bytes(&rd, len, &msg)) == COFFER_OK) {
                if (flag != 0)
                    r = COFFER_FAIL(COFFER_E_UNSUPPORTED, "a compressed gRPC reply");
                else
                    r = coffer_buf_put(out, msg, len);
            }
        }
    } else {
        if (status != 200)
            r = COFFER_FAIL(COFFER_E_NET, "HTTP %ld: %.*s", status, (int)(raw.size < 400 ? raw.size : 400),
                            raw.data ? (const char *)raw.data : "");
        else
            r = coffer_buf_put(out, raw.data, raw.size);
    }
    coffer_buf_free(&raw);
    return r;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct curl_slist *hdr = NULL;
    CURL *h = handle(w->o, &hdr, !w->o->rest);
    if (h == NULL) {
        w->err = COFFER_E_NOMEM;
        return NULL;
    }
    for (int i = 0; i < w->o->loop; i++) {
        struct coffer_buf out;
        coffer_buf_init(&out, 256u << 20, false);
        uint64_t t0 = coffer_now_ns();
        enum coffer_err r = send_one(h, w->o, w->body, w->body_size, &out);
        w->lat[i] = (double)(coffer_now_ns() - t0) / 1e6;
        if (r != COFFER_OK) {
            w->err = r;
            snprintf(w->detail, sizeof(w->detail), "%s", coffer_err_detail());
            coffer_buf_free(&out);
            break;
        }
        if (i == 0) {
            w->first = out;
        } else {
            coffer_buf_free(&out);
        }
        w->done++;
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    return NULL;
}

/* One example as nested JSON lists, by its dims (row-major). */
static enum coffer_err emit_nested(struct coffer_buf *b, const float *f, const int64_t *dims, size_t rank, size_t *pos)
{
    if (rank == 0)
        return coffer_buf_printf(b, "%.9g", (double)f[(*pos)++]);
    enum coffer_err r = coffer_buf_put_u8(b, '[');
    for (int64_t i = 0; i < dims[0] && r == COFFER_OK; i++) {
        if (i > 0)
            r = coffer_buf_put_u8(b, ',');
        if (r == COFFER_OK)
            r = emit_nested(b, f, dims + 1, rank - 1, pos);
    }
    return r == COFFER_OK ? coffer_buf_put_u8(b, ']') : r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int cmd_predict(int argc, char **argv)
{
    enum { O_URL = 1000, O_CRT, O_MODEL, O_REST, O_BATCH, O_CNUM, O_LOOP, O_LABELS, O_TOP, O_IN, O_OUT, O_TIMEOUT,
           O_IMAGE, O_CERT, O_KEY };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, O_URL},        {"crt", required_argument, NULL, O_CRT},
        {"model", required_argument, NULL, O_MODEL},    {"rest", no_argument, NULL, O_REST},
        {"batch", required_argument, NULL, O_BATCH},    {"cnum", required_argument, NULL, O_CNUM},
        {"loop", required_argument, NULL, O_LOOP},      {"labels", required_argument, NULL, O_LABELS},
        {"top", required_argument, NULL, O_TOP},        {"input-name", required_argument, NULL, O_IN},
        {"output-name", required_argument, NULL, O_OUT}, {"timeout", required_argument, NULL, O_TIMEOUT},
        {"size", required_argument, NULL, O_IMAGE},     {"channels", required_argument, NULL, O_IMAGE},
        {"layout", required_argument, NULL, O_IMAGE},   {"scale", required_argument, NULL, O_IMAGE},
        {"mean", required_argument, NULL, O_IMAGE},     {"std", required_argument, NULL, O_IMAGE},
        {"keep-aspect", no_argument, NULL, O_IMAGE},    {"crop-fraction", required_argument, NULL, O_IMAGE},
        {"imagenet", no_argument, NULL, O_IMAGE},       {"help", no_argument, NULL, 'h'},
        {"cert", required_argument, NULL, O_CERT},      {"key", required_argument, NULL, O_KEY},
        {NULL, 0, NULL, 0},
    };
    struct pred_opts o = {.model = "default", .input_name = NULL, .batch = 0, .cnum = 1, .loop = 1, .top = 5,
                          .timeout = 30};
    const char *labels_path = NULL;
    char *inputs[PREDICT_MAX_INPUTS];
    int n_inputs = 0;
    struct predict_input_opts img;
    predict_input_defaults(&img);
    optind = 1;
    opterr = 0;
    int ch, li;
    while ((ch = getopt_long(argc, argv, "i:h", longopts, &li)) != -1) {
        switch (ch) {
        case O_URL: o.url = optarg; break;
        case O_CRT: o.crt = optarg; break;
        case O_MODEL: o.model = optarg; break;
        case O_REST: o.rest = true; break;
        case O_BATCH: o.batch = atoi(optarg); break;
        case O_CNUM: o.cnum = atoi(optarg); break;
        case O_LOOP: o.loop = atoi(optarg); break;
        case O_LABELS: labels_path = optarg; break;
        case O_TOP: o.top = atoi(optarg); break;
        case 'i':
            if (n_inputs == PREDICT_MAX_INPUTS)
                return cli_usage("predict", "at most %d inputs", PREDICT_MAX_INPUTS);
            inputs[n_inputs++] = optarg;
            break;
        case O_IMAGE:
            if (predict_input_option(&img, longopts[li].name, optarg) < 0)
                return CLI_USAGE;
            break;
        case O_IN: o.input_name = optarg; break;
        case O_OUT: o.output_name = optarg; break;
        case O_TIMEOUT: o.timeout = atol(optarg); break;
        case O_CERT: o.cert = optarg; break;
        case O_KEY: o.key = optarg; break;
        case 'h': cmd_predict_help(stdout); return CLI_OK;
        default: return cli_usage("predict", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (o.url == NULL || o.crt == NULL || n_inputs == 0)
        return cli_usage("predict", "--url, --crt and -i are required");
    if ((o.cert == NULL) != (o.key == NULL))
        return cli_usage("predict", "--cert and --key go together");
    if (o.batch == 0)
        o.batch = n_inputs;
    if (o.batch < 1 || o.batch > 4096 || o.cnum < 1 || o.cnum > 256 || o.loop < 1 || o.loop > 1000000 || o.top < 1)
        return cli_usage("predict", "--batch 1..4096, --cnum 1..256, --loop 1..1000000, --top >= 1");
    if (o.input_name == NULL)
        o.input_name = "image";
    enum coffer_err r = predict_inputs_load(inputs, n_inputs, o.input_name, o.batch, &img, &o.input);
    if (r != COFFER_OK)
        return cli_fail("predict", r);
    /* the request body, once */
    uint8_t *body = NULL;
    size_t body_size = 0;
    if (o.rest) {
        /* row format: instances = the batch's examples as nested lists */
        struct coffer_buf b;
        coffer_buf_init(&b, 0, false);
        size_t pos = 0;
        r = coffer_buf_printf(&b, "{\"instances\": [");
        for (int k = 0; k < o.batch && r == COFFER_OK; k++) {
            if (k > 0)
                r = coffer_buf_printf(&b, ",");
            if (r == COFFER_OK)
                r = emit_nested(&b, (const float *)o.input.data, o.input.dims + 1, o.input.rank - 1, &pos);
        }
        if (r == COFFER_OK)
            r = coffer_buf_printf(&b, "]}");
        body_size = b.size;
        body = coffer_buf_steal(&b, NULL);
    } else {
        struct coffer_serve_predict_request req = {.spec = {.name = (char *)o.model, .signature_name = (char *)""},
                                                   .inputs = &o.input, .input_count = 1};
        uint8_t *msg;
        size_t n;
        if ((r = coffer_serve_predict_request_encode(&req, true, &msg, &n)) == COFFER_OK) {
            body = coffer_malloc(n + 5);
            if (body == NULL) {
                r = COFFER_E_NOMEM;
            } else {
                body[0] = 0;
                body[1] = (uint8_t)(n >> 24);
                body[2] = (uint8_t)(n >> 16);
                body[3] = (uint8_t)(n >> 8);
                body[4] = (uint8_t)n;
                memcpy(body + 5, msg, n);
                body_size = n + 5;
            }
            coffer_free(msg);
        }
    }
    coffer_serve_tensor_free(&o.input);
    if (r != COFFER_OK) {
        coffer_free(body);
        return cli_fail("predict", r);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct worker *w = coffer_calloc((size_t)o.cnum, sizeof(*w));
    double *lat = coffer_calloc((size_t)o.cnum * (size_t)o.loop, sizeof(double));
    if (w == NULL || lat == NULL) {
        coffer_free(w);
        coffer_free(lat);
        coffer_free(body);
        return cli_fail("predict", COFFER_E_NOMEM);
    }
    uint64_t t0 = coffer_now_ns();
    int started = 0;
    for (int i = 0; i < o.cnum; i++) {
        w[i] = (struct worker){.o = &o, .body = body, .body_size = body_size, .lat = lat + (size_t)i * o.loop};
        coffer_buf_init(&w[i].first, 0, false);
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0)
            break;
        started++;
    }
    bool tty = isatty(STDERR_FILENO);
    for (int i = 0; i < started; i++) {
        pthread_join(w[i].thread, NULL);
        if (tty)
            fprintf(stderr, "\rconnections finished: %d/%d", i + 1, started);
    }
    if (tty)
        fputc('\n', stderr);
    double secs = (double)(coffer_now_ns() - t0) / 1e9;
    int done = 0, failed = 0;
    for (int i = 0; i < started; i++) {
        done += w[i].done;
        if (w[i].err != COFFER_OK) {
            if (failed++ == 0)
                fprintf(stderr, "coffer predict: %s: %s\n", coffer_strerror(w[i].err), w[i].detail);
        }
    }
    /* the first reply: top-k */
    struct coffer_serve_tensor *outs = NULL;
    size_t n_out = 0;
    struct coffer_buf *first = started > 0 && w[0].done > 0 ? &w[0].first : NULL;
    if (first != NULL) {
        struct coffer_serve_status st;
        /* one row of scores per distinct input (the batch cycles through them) */
        size_t shown = (size_t)(n_inputs < o.batch ? n_inputs : o.batch);
        float *scores = NULL;
        size_t classes = 0;
        json_t *j = NULL;
        if (o.rest) {
            if (coffer_json_parse(first->data, first->size, 256u << 20, &j) == COFFER_OK) {
                json_t *preds = json_object_get(j, "predictions");
                classes = json_array_size(json_array_get(preds, 0));
                scores = coffer_calloc(shown * classes + 1, sizeof(float));
                for (size_t e = 0; scores && e < shown; e++) {
                    json_t *row = json_array_get(preds, e);
                    for (size_t k = 0; k < classes; k++)
                        scores[e * classes + k] = (float)json_number_value(json_array_get(row, k));
                }
            }
        } else {
            struct coffer_serve_model_spec spec;
            memset(&spec, 0, sizeof(spec));
            if (coffer_serve_predict_response_decode(first->data, first->size, NULL, &spec, &outs, &n_out, &st) ==
                    COFFER_OK &&
                n_out > 0 && outs[0].dtype == COFFER_SERVE_DT_FLOAT) {
                size_t pick = 0;
                for (size_t k = 0; o.output_name && k < n_out; k++)
                    if (strcmp(outs[k].name, o.output_name) == 0)
                        pick = k;
                classes = outs[pick].count / (size_t)o.batch;
                scores = coffer_calloc(shown * classes + 1, sizeof(float));
                if (scores)
                    memcpy(scores, outs[pick].data, shown * classes * sizeof(float));
                printf("model %s version %lld\n", spec.name ? spec.name : "?", (long long)spec.version);
            }
            coffer_serve_model_spec_free(&spec);
        }
        char **labels = NULL;
        size_t nl = 0;
        uint8_t *ld = NULL;
        size_t ln = 0;
        if (labels_path != NULL && coffer_file_read_all(labels_path, 1 << 22, &ld, &ln) == COFFER_OK) {
            labels = coffer_calloc(ln + 1, sizeof(char *));
            char *save = NULL;
            for (char *t = strtok_r((char *)ld, "\n", &save); labels && t; t = strtok_r(NULL, "\n", &save))
                labels[nl++] = t;
        }
        for (size_t e = 0; scores != NULL && e < shown; e++) {
            float *row = scores + e * classes;
            if (n_inputs > 1)
                printf("%s\n", inputs[e]);
            for (int k = 0; k < o.top && k < (int)classes; k++) {
                size_t best = 0;
                for (size_t c = 1; c < classes; c++)
                    if (row[c] > row[best])
                        best = c;
                printf("  %d. class %zu%s%s%s  %.6f\n", k + 1, best, labels && best < nl ? " (" : "",
                       labels && best < nl ? labels[best] : "", labels && best < nl ? ")" : "", (double)row[best]);
                row[best] = -INFINITY;
            }
        }
        coffer_free(labels);
        coffer_free(ld);
        coffer_free(scores);
        json_decref(j);
        if (outs != NULL)
            coffer_serve_tensors_free(outs, n_out);
    }
    size_t n = 0;
    for (int i = 0; i < started; i++)
        for (int k = 0; k < w[i].done; k++)
            lat[n++] = w[i].lat[k];
    qsort(lat, n, sizeof(double), cmp_double);
    if (n > 0)
        printf("%d requests (%d x %d, batch %d) in %.2f s: %.1f req/s, %.1f examples/s; latency ms p50 %.2f p90 %.2f "
               "p99 %.2f max %.2f\n",
               done, started, o.loop, o.batch, secs, done / secs, done * o.batch / secs, lat[n / 2],
               lat[(size_t)(n * 0.9)], lat[(size_t)(n * 0.99)], lat[n - 1]);
    for (int i = 0; i < started; i++)
        coffer_buf_free(&w[i].first);
    coffer_free(w);
    coffer_free(lat);
    coffer_free(body);
    curl_global_cleanup();
    return failed == 0 && done > 0 ? CLI_OK : CLI_FAIL;
}
