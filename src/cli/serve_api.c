/*
 * serve_api.c — the TF Serving APIs of `coffer serve` over net/: REST
 * (/v1/models/..., /healthz, the Prometheus metrics) and gRPC
 * (PredictionService, ModelService).
 *
 * Design: a handler decodes the request (serve/ does the protocol), takes a
 * reference on the version TF's rules pick (the registry), and for predict
 * builds a job that owns its input tensors. Without batching the job runs at
 * once on the worker thread and answers into the handler's response; with
 * batching the handler defers its response first and the batch thread that
 * runs the job answers through the pending response. serve_job_finish
 * writes the answer (TF's JSON or protobuf, or TF's error with its code),
 * counts it, and drops the reference.
 *
 * Invariants: I1 a job is finished exactly once, and the reference it holds
 * is released there. I2 prediction bodies (user data) are wiped before they
 * are freed. Trusts: nothing in the requests (serve/ validates them).
 */
#include <string.h>
#include <strings.h>

#include "serve_cli.h"

/* ---- answering */

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

/* --rest_api_enable_cors_support: TF's three headers on every answer under
 * /v1/ (a browser page from another origin may then call the model). */
static void rest_cors(const struct serve_ctx *ctx, struct coffer_net_response *resp)
{
    if (ctx->cors && (coffer_net_response_add_header(resp, "Access-Control-Allow-Origin", "*") != COFFER_OK ||
                      coffer_net_response_add_header(resp, "Access-Control-Allow-Methods", "POST, GET") != COFFER_OK ||
                      coffer_net_response_add_header(resp, "Access-Control-Allow-Headers", "Content-Type") !=
                          COFFER_OK))
        coffer_net_response_error(resp, 503, "out of memory");
}

static void rest_answer(const struct serve_ctx *ctx, struct coffer_net_response *resp, char *body, size_t n,
                        struct coffer_serve_status *st)
{
    if (body != NULL && (coffer_net_response_add_header(resp, "Content-Type", "application/json") != COFFER_OK ||
                         coffer_net_response_append(resp, body, n) != COFFER_OK))
        coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "response too large");
    if (body != NULL) {
        coffer_memzero(body, n); /* predictions are user data */
        coffer_free(body);
    }
    if (st->code != COFFER_SERVE_OK)
        rest_error(resp, st);
    rest_cors(ctx, resp);
}

static void grpc_answer(struct coffer_net_grpc_reply *reply, uint8_t *out, size_t n,
                        struct coffer_serve_status *st)
{
    if (st->code == COFFER_SERVE_OK && coffer_net_grpc_reply_append(reply, out, n) != COFFER_OK)
        coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "response message too large");
    if (out != NULL) {
        coffer_memzero(out, n);
        coffer_free(out);
    }
    if (st->code != COFFER_SERVE_OK) {
        char msg[COFFER_SERVE_GRPC_MSG_SIZE];
        coffer_net_grpc_reply_status(reply, (enum coffer_net_grpc_code)st->code,
                                     coffer_serve_grpc_message(st->message, msg, sizeof(msg)));
    }
}

/* A failure without a TF status gets one from the coffer error. */
static void settle(struct coffer_serve_status *st, enum coffer_err r)
{
    if (r != COFFER_OK && st->code == COFFER_SERVE_OK)
        coffer_serve_status_set(st, r == COFFER_E_NOMEM ? COFFER_SERVE_RESOURCE_EXHAUSTED : COFFER_SERVE_INTERNAL,
                                "%s", coffer_strerror(r));
}

static void count(struct serve_ctx *ctx, int api, uint64_t t0, bool ok)
{
    coffer_net_counter_add(ok ? ctx->ok[api] : ctx->failed[api], 1);
    coffer_net_histogram_observe(ctx->latency[api], (double)(coffer_now_ns() - t0) / 1e9);
}

/* The answers of a Classify, Regress or MultiInference job, one per task,
 * read off the model's outputs (the signatures' checks at load hold for
 * the declared shapes; a model that gives others is an INTERNAL error). */
static enum coffer_err inference_results(struct serve_job *job, struct coffer_serve_inference_result *res)
{
    const struct serve_loaded *ld = job->ld;
    for (size_t i = 0; i < job->n_tasks; i++) {
        const struct serve_task *t = &job->tasks[i];
        const struct coffer_serve_tensor *o = &job->out[t->classify ? ld->cls_scores : ld->reg_values];
        size_t per = t->classify ? ld->n_classes : 1;
        if (o->dtype != COFFER_SERVE_DT_FLOAT || o->rank < 1 || o->dims[0] != (int64_t)job->n_examples ||
            o->count != job->n_examples * per)
            return coffer_serve_status_set(&job->st, COFFER_SERVE_INTERNAL,
                                           "output %s of the model does not have the shape its %s signature "
                                           "declares for %zu examples",
                                           o->name ? o->name : "", t->signature_name, job->n_examples);
        res[i] = (struct coffer_serve_inference_result){
            .spec = {.name = (char *)job->sv->model, .has_version = true, .version = job->sv->version,
                     .signature_name = t->signature_name},
            .classify = t->classify,
            .examples = job->n_examples,
            .classes = ld->n_classes,
            .labels = (const char *const *)ld->labels,
            .values = o->data,
        };
    }
    return COFFER_OK;
}

/* The outputs of a Predict on a classify or regress signature, from its
 * one task's result r, as the signature declares them: "classes" (the
 * labels, string [examples, classes]) and "scores" (float, the same shape),
 * or "outputs" (float [examples] or [examples, 1]). out[0..2) are cleared
 * first; on failure nothing needs freeing. */
static enum coffer_err predict_outputs(const struct serve_job *job, const struct coffer_serve_inference_result *r,
                                       struct coffer_serve_tensor *out, size_t *n)
{
    memset(out, 0, 2 * sizeof(*out));
    *n = 0;
    int64_t dims[2] = {(int64_t)r->examples, r->classify ? (int64_t)r->classes : 1};
    enum coffer_err e;
    if (r->classify) {
        e = coffer_serve_tensor_init(&out[0], "classes", COFFER_SERVE_DT_STRING, 2, dims);
        for (size_t i = 0; e == COFFER_OK && i < r->examples * r->classes; i++)
            e = coffer_serve_tensor_set_string(&out[0], i, r->labels[i % r->classes],
                                               strlen(r->labels[i % r->classes]));
        if (e == COFFER_OK)
            e = coffer_serve_tensor_init(&out[1], "scores", COFFER_SERVE_DT_FLOAT, 2, dims);
    } else {
        e = coffer_serve_tensor_init(&out[0], "outputs", COFFER_SERVE_DT_FLOAT, job->ld->reg_out.rank, dims);
    }
    if (e != COFFER_OK) {
        coffer_serve_tensor_free(&out[0]);
        return e;
    }
    *n = r->classify ? 2 : 1;
    memcpy(out[*n - 1].data, r->values, out[*n - 1].size);
    return COFFER_OK;
}

/* see serve_cli.h */
void serve_job_finish(struct serve_job *job)
{
    struct serve_ctx *ctx = job->ctx;
    size_t n_out = job->ld->n_out;
    enum coffer_err r = COFFER_OK;
    if (job->st.code == COFFER_SERVE_OK && job->out == NULL)
        coffer_serve_status_set(&job->st, COFFER_SERVE_INTERNAL, "the model gave no outputs");
    struct coffer_serve_inference_result res[SERVE_MAX_IO];
    if (job->st.code == COFFER_SERVE_OK && job->kind != SERVE_JOB_PREDICT)
        (void)inference_results(job, res); /* sets job->st on failure */
    /* what a PredictResponse holds: the model's outputs, or those a
     * classify or regress signature makes of them */
    const struct coffer_serve_tensor *outs = job->out;
    size_t n_outs = n_out, n_made = 0;
    struct coffer_serve_tensor made[2];
    const char *sig_key = COFFER_SERVE_DEFAULT_SIGNATURE;
    if (job->predict_form) {
        memset(made, 0, sizeof(made));
        if (job->st.code == COFFER_SERVE_OK)
            settle(&job->st, predict_outputs(job, res, made, &n_made));
        outs = made;
        n_outs = n_made;
        sig_key = job->tasks[0].signature_name;
    }
    if (job->kind != SERVE_JOB_PREDICT && !job->predict_form) {
        uint8_t *out = NULL;
        char *body = NULL;
        size_t n = 0;
        if (job->st.code == COFFER_SERVE_OK) {
            r = !job->grpc                       ? coffer_serve_rest_inference_json(res, &body, &n)
                : job->kind == SERVE_JOB_MULTI ? coffer_serve_multi_response_encode(res, job->n_tasks, &out, &n)
                                                 : coffer_serve_inference_response_encode(res, &out, &n);
            settle(&job->st, r);
        }
        if (job->grpc)
            grpc_answer(job->pending ? coffer_net_pending_grpc_reply(job->pending) : job->reply, out, n, &job->st);
        else
            rest_answer(ctx, job->pending ? coffer_net_pending_response(job->pending) : job->resp, body, n,
                        &job->st);
    } else if (job->grpc) {
        struct coffer_net_grpc_reply *reply = job->pending ? coffer_net_pending_grpc_reply(job->pending) : job->reply;
        uint8_t *out = NULL;
        size_t n = 0;
        if (job->st.code == COFFER_SERVE_OK) {
            /* output_filter: only those, in the model's order */
            struct coffer_serve_tensor sel[SERVE_MAX_IO];
            size_t ns = 0;
            for (size_t k = 0; k < n_outs; k++) {
                bool keep = job->n_filter == 0;
                for (size_t f = 0; f < job->n_filter; f++)
                    keep |= strcmp(job->output_filter[f], outs[k].name) == 0;
                if (keep)
                    sel[ns++] = outs[k];
            }
            struct coffer_serve_model_spec spec = {.name = (char *)job->sv->model, .has_version = true,
                                                   .version = job->sv->version, .signature_name = (char *)sig_key};
            r = coffer_serve_predict_response_encode(&spec, sel, ns, ctx->tensor_content, &out, &n);
            settle(&job->st, r);
        }
        grpc_answer(reply, out, n, &job->st);
    } else {
        struct coffer_net_response *resp = job->pending ? coffer_net_pending_response(job->pending) : job->resp;
        char *body = NULL;
        size_t n = 0;
        if (job->st.code == COFFER_SERVE_OK) {
            r = coffer_serve_rest_predict_response(job->format, outs, n_outs, &body, &n, &job->st);
            settle(&job->st, r);
        }
        rest_answer(ctx, resp, body, n, &job->st);
    }
    count(ctx, job->grpc ? 1 : 0, job->t0, job->st.code == COFFER_SERVE_OK);
    if (job->pending != NULL)
        coffer_net_pending_finish(job->pending);
    if (job->out != NULL)
        coffer_serve_tensors_free(job->out, n_out);
    for (size_t i = 0; i < n_made; i++)
        coffer_serve_tensor_free(&made[i]);
    for (size_t i = 0; i < job->n_in; i++)
        coffer_serve_tensor_free(&job->in[i]);
    for (size_t i = 0; i < job->n_tasks; i++)
        coffer_free(job->tasks[i].signature_name);
    for (size_t i = 0; i < job->n_filter; i++)
        coffer_free(job->output_filter[i]);
    coffer_free(job->output_filter);
    coffer_serve_registry_release(ctx->reg, job->sv);
    coffer_free(job);
}

/* A job for a predict on sv (whose reference it takes over). */
static struct serve_job *job_new(struct serve_ctx *ctx, const struct coffer_serve_servable *sv, bool grpc,
                                 uint64_t t0)
{
    struct serve_job *job = coffer_calloc(1, sizeof(*job));
    if (job == NULL)
        return NULL;
    job->ctx = ctx;
    job->sv = sv;
    job->ld = sv->handle;
    job->grpc = grpc;
    job->t0 = t0;
    return job;
}

/* Run the job, answering into the handler's response (resp or reply); with
 * batching the answer is deferred first and comes from a batch thread. */
static void job_start(struct serve_job *job, struct coffer_net_response *resp, struct coffer_net_grpc_reply *reply)
{
    job->resp = resp;
    job->reply = reply;
    if (job->ld->batcher != NULL &&
        (job->grpc ? coffer_net_grpc_reply_defer(reply, &job->pending)
                   : coffer_net_response_defer(resp, &job->pending)) != COFFER_OK) {
        coffer_serve_status_set(&job->st, COFFER_SERVE_INTERNAL, "cannot defer the answer");
        serve_job_finish(job);
        return;
    }
    serve_job_run(job);
}

/* A Classify, Regress or MultiInference job on sv (its reference taken
 * over; released on failure): each task's signature resolved (names[i],
 * classify[i]), the model's inputs made from the examples. */
static enum coffer_err example_job(struct serve_ctx *ctx, const struct coffer_serve_servable *sv, bool grpc,
                                   uint64_t t0, const struct coffer_serve_examples *ex,
                                   const struct coffer_serve_limits *lim, const char *const *names,
                                   const bool *classify, size_t n_tasks, enum serve_job_kind kind,
                                   struct serve_job **out, struct coffer_serve_status *st)
{
    *out = NULL;
    const struct coffer_serve_signature *sig[SERVE_MAX_IO];
    enum coffer_err r = serve_resolve_tasks(sv->sigs, sv->sig_count, names, classify, n_tasks, sig, st);
    struct serve_job *job = NULL;
    if (r == COFFER_OK && (job = job_new(ctx, sv, grpc, t0)) == NULL)
        r = coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "out of memory");
    if (r == COFFER_OK)
        r = serve_job_examples(job, ex, lim, sig, classify, n_tasks, kind, st);
    if (r != COFFER_OK) {
        coffer_free(job);
        coffer_serve_registry_release(ctx->reg, sv);
        return r;
    }
    *out = job;
    return COFFER_OK;
}

/* ---- REST */

static enum coffer_err rest_status(struct serve_ctx *ctx, const struct coffer_serve_rest_route *route, char **body,
                                   size_t *n, struct coffer_serve_status *st)
{
    struct coffer_serve_version_status *vs;
    size_t count, first, sel;
    enum coffer_err r = coffer_serve_registry_status(ctx->reg, route->name, &vs, &count);
    if (r == COFFER_OK && (r = coffer_serve_status_select(route->name, vs, count, route->has_version, route->version,
                                                          &first, &sel, st)) == COFFER_OK)
        r = coffer_serve_rest_status_json(vs + first, sel, body, n);
    coffer_free(vs);
    return r;
}

static enum coffer_err rest_predict(struct serve_ctx *ctx, const struct coffer_net_request *req,
                                    const struct coffer_serve_rest_route *route, struct coffer_net_response *resp,
                                    uint64_t t0, struct coffer_serve_status *st, bool *answered)
{
    const struct coffer_serve_servable *sv;
    enum coffer_err r = coffer_serve_registry_acquire(ctx->reg, route->name, route->has_version, route->version,
                                                      route->label, &sv, st);
    if (r != COFFER_OK)
        return r;
    struct coffer_serve_rest_predict p;
    if ((r = coffer_serve_rest_predict_parse(req->body, req->body_size, sv->sigs, sv->sig_count, &ctx->rest_lim, &p,
                                                 st)) !=
        COFFER_OK) {
        coffer_serve_registry_release(ctx->reg, sv);
        return r;
    }
    struct serve_job *job = job_new(ctx, sv, false, t0);
    if (job != NULL && ctx->rest_timeout_ns != 0)
        job->deadline_ns = t0 + ctx->rest_timeout_ns; /* TF: the run's timeout_in_ms */
    if (job == NULL || p.input_count > SERVE_MAX_IO) {
        coffer_serve_rest_predict_free(&p);
        coffer_serve_registry_release(ctx->reg, sv);
        coffer_free(job);
        return job == NULL ? coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "out of memory")
                           : coffer_serve_status_set(st, COFFER_SERVE_INVALID_ARGUMENT, "too many inputs");
    }
    job->format = p.format;
    if (coffer_serve_signature_takes_examples(p.signature)) {
        r = serve_job_predict_examples(job, p.signature, &p.inputs[0], &ctx->rest_lim, st);
        coffer_serve_rest_predict_free(&p);
        if (r != COFFER_OK) {
            coffer_serve_registry_release(ctx->reg, sv);
            coffer_free(job);
            return r;
        }
    } else {
        job->n_in = p.input_count;
        for (size_t i = 0; i < p.input_count; i++) {
            job->in[i] = p.inputs[i]; /* moved */
            memset(&p.inputs[i], 0, sizeof(p.inputs[i]));
        }
        coffer_serve_rest_predict_free(&p);
    }
    *answered = true;
    job_start(job, resp, NULL);
    return COFFER_OK;
}

/* :classify or :regress */
static enum coffer_err rest_examples(struct serve_ctx *ctx, const struct coffer_net_request *req,
                                     const struct coffer_serve_rest_route *route, bool classify,
                                     struct coffer_net_response *resp, uint64_t t0, struct coffer_serve_status *st,
                                     bool *answered)
{
    const struct coffer_serve_servable *sv;
    enum coffer_err r = coffer_serve_registry_acquire(ctx->reg, route->name, route->has_version, route->version,
                                                      route->label, &sv, st);
    if (r != COFFER_OK)
        return r;
    char *name = NULL;
    struct coffer_serve_examples ex;
    if ((r = coffer_serve_rest_examples_parse(req->body, req->body_size, &ctx->rest_lim, &name, &ex, st)) !=
        COFFER_OK) {
        coffer_serve_registry_release(ctx->reg, sv);
        return r;
    }
    struct serve_job *job;
    const char *names[1] = {name};
    r = example_job(ctx, sv, false, t0, &ex, &ctx->rest_lim, names, &classify, 1,
                    classify ? SERVE_JOB_CLASSIFY : SERVE_JOB_REGRESS, &job, st);
    coffer_serve_examples_free(&ex);
    coffer_free(name);
    if (r != COFFER_OK)
        return r;
    if (ctx->rest_timeout_ns != 0)
        job->deadline_ns = t0 + ctx->rest_timeout_ns;
    *answered = true;
    job_start(job, resp, NULL);
    return COFFER_OK;
}

/* see serve_cli.h */
enum coffer_err serve_rest_handler(void *arg, const struct coffer_net_request *req, struct coffer_net_response *resp)
{
    struct serve_ctx *ctx = arg;
    uint64_t t0 = coffer_now_ns();
    if (strcmp(req->path, "/healthz") == 0) {
        enum coffer_err r = coffer_net_response_add_header(resp, "Content-Type", "text/plain");
        return r == COFFER_OK ? coffer_net_response_append(resp, "ok\n", 3) : r;
    }
    if (ctx->metrics_path != NULL && strcmp(req->path, ctx->metrics_path) == 0) {
        struct coffer_buf b;
        coffer_buf_init(&b, 0, false);
        enum coffer_err r = coffer_net_metrics_render(ctx->metrics, &b);
        if (r == COFFER_OK && (r = coffer_net_response_add_header(resp, "Content-Type",
                                                                  COFFER_NET_METRICS_CONTENT_TYPE)) == COFFER_OK)
            r = coffer_net_response_append(resp, b.data ? b.data : (const uint8_t *)"", b.size);
        coffer_buf_free(&b);
        return r;
    }
    struct coffer_serve_status st;
    coffer_serve_status_clear(&st);
    if (strcmp(req->method, "OPTIONS") == 0 && strncasecmp(req->path, "/v1/", 4) == 0) {
        /* a CORS preflight, answered as TF answers it (with or without
         * --rest_api_enable_cors_support; only then with the headers) */
        const char *origin = coffer_net_request_header(req, "Origin");
        if (origin == NULL || (strstr(origin, "http://") == NULL && strstr(origin, "https://") == NULL))
            coffer_serve_status_set(&st, COFFER_SERVE_FAILED_PRECONDITION,
                                    "Origin header is missing in CORS preflight");
        count(ctx, 0, t0, st.code == COFFER_SERVE_OK);
        rest_answer(ctx, resp, NULL, 0, &st);
        return COFFER_OK;
    }
    struct coffer_serve_rest_route route;
    memset(&route, 0, sizeof(route));
    enum coffer_err r = coffer_serve_rest_route_parse(req->method, req->path, strlen(req->path), &route, &st);
    if (r == COFFER_OK && route.kind == COFFER_SERVE_REST_NONE) {
        coffer_serve_rest_route_free(&route);
        coffer_net_response_error(resp, 404, "Not Found");
        return COFFER_OK;
    }
    char *body = NULL;
    size_t n = 0;
    bool answered = false;
    if (r == COFFER_OK) {
        switch (route.kind) {
        case COFFER_SERVE_REST_STATUS:
            r = rest_status(ctx, &route, &body, &n, &st);
            break;
        case COFFER_SERVE_REST_METADATA: {
            const struct coffer_serve_servable *sv;
            if ((r = coffer_serve_registry_acquire(ctx->reg, route.name, route.has_version, route.version,
                                                   route.label, &sv, &st)) == COFFER_OK) {
                struct coffer_serve_model_spec spec = {.name = (char *)sv->model, .has_version = true,
                                                       .version = sv->version, .signature_name = (char *)""};
                r = coffer_serve_rest_metadata_json(&spec, sv->sigs, sv->sig_count, &body, &n);
                coffer_serve_registry_release(ctx->reg, sv);
            }
            break;
        }
        case COFFER_SERVE_REST_PREDICT:
            r = rest_predict(ctx, req, &route, resp, t0, &st, &answered);
            break;
        case COFFER_SERVE_REST_CLASSIFY:
        case COFFER_SERVE_REST_REGRESS:
            r = rest_examples(ctx, req, &route, route.kind == COFFER_SERVE_REST_CLASSIFY, resp, t0, &st, &answered);
            break;
        default:
            r = coffer_serve_status_set(&st, COFFER_SERVE_INTERNAL, "unknown route");
            break;
        }
    }
    coffer_serve_rest_route_free(&route);
    if (answered)
        return COFFER_OK; /* the job answered, or will */
    settle(&st, r);
    count(ctx, 0, t0, st.code == COFFER_SERVE_OK);
    rest_answer(ctx, resp, body, n, &st);
    return COFFER_OK;
}

/* ---- gRPC */

#define PREDICTION_SERVICE "/tensorflow.serving.PredictionService/"
#define MODEL_SERVICE "/tensorflow.serving.ModelService/"

static enum coffer_err grpc_predict(struct serve_ctx *ctx, const struct coffer_net_grpc_call *call,
                                    struct coffer_net_grpc_reply *reply, uint64_t t0, struct coffer_serve_status *st,
                                    bool *answered)
{
    struct coffer_serve_predict_request req;
    const struct coffer_serve_servable *sv = NULL;
    enum coffer_err r = coffer_serve_predict_request_decode(call->message, call->message_size, &ctx->grpc_lim, &req,
                                                                    st);
    if (r != COFFER_OK)
        return r;
    const struct coffer_serve_signature *sig = NULL;
    const char *names[SERVE_MAX_IO];
    if ((r = coffer_serve_registry_acquire(ctx->reg, req.spec.name, req.spec.has_version, req.spec.version,
                                           req.spec.version_label, &sv, st)) == COFFER_OK &&
        (r = coffer_serve_signature_find(sv->sigs, sv->sig_count, req.spec.signature_name, &sig, st)) == COFFER_OK) {
        if (req.input_count > SERVE_MAX_IO)
            r = coffer_serve_status_set(st, COFFER_SERVE_INVALID_ARGUMENT, "too many inputs: %zu",
                                        req.input_count);
        for (size_t i = 0; r == COFFER_OK && i < req.input_count; i++)
            names[i] = req.inputs[i].name;
        if (r == COFFER_OK)
            r = coffer_serve_signature_check_inputs(sig, names, req.input_count, st);
        if (r == COFFER_OK)
            r = coffer_serve_signature_check_filter(sig, req.output_filter, req.output_filter_count, st);
    }
    struct serve_job *job = NULL;
    if (r == COFFER_OK && (job = job_new(ctx, sv, true, t0)) == NULL)
        r = coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "out of memory");
    if (r == COFFER_OK && coffer_serve_signature_takes_examples(sig))
        r = serve_job_predict_examples(job, sig, &req.inputs[0], &ctx->grpc_lim, st);
    else if (r == COFFER_OK) /* inputs in signature order, moved into the job */
        serve_job_take_inputs(job, sig, &req);
    if (r != COFFER_OK) {
        coffer_free(job);
        coffer_serve_registry_release(ctx->reg, sv);
        coffer_serve_predict_request_free(&req);
        return r;
    }
    job->output_filter = req.output_filter;
    job->n_filter = req.output_filter_count;
    req.output_filter = NULL;
    req.output_filter_count = 0;
    coffer_serve_predict_request_free(&req);
    job->deadline_ns = call->deadline_ns;
    *answered = true;
    job_start(job, NULL, reply);
    return COFFER_OK;
}

/* Start a gRPC job made with outcome r (none when r failed). */
static enum coffer_err grpc_job_start(struct serve_job *job, enum coffer_err r,
                                      const struct coffer_net_grpc_call *call, struct coffer_net_grpc_reply *reply,
                                      bool *answered)
{
    if (r != COFFER_OK)
        return r;
    job->deadline_ns = call->deadline_ns;
    *answered = true;
    job_start(job, NULL, reply);
    return COFFER_OK;
}

/* Classify or Regress */
static enum coffer_err grpc_examples(struct serve_ctx *ctx, const struct coffer_net_grpc_call *call, bool classify,
                                     struct coffer_net_grpc_reply *reply, uint64_t t0, struct coffer_serve_status *st,
                                     bool *answered)
{
    struct coffer_serve_model_spec spec;
    struct coffer_serve_examples ex;
    enum coffer_err r =
        coffer_serve_example_request_decode(call->message, call->message_size, &ctx->grpc_lim, &spec, &ex, st);
    if (r != COFFER_OK)
        return r;
    const struct coffer_serve_servable *sv;
    struct serve_job *job = NULL;
    const char *names[1] = {spec.signature_name};
    if ((r = coffer_serve_registry_acquire(ctx->reg, spec.name, spec.has_version, spec.version, spec.version_label,
                                           &sv, st)) == COFFER_OK)
        r = example_job(ctx, sv, true, t0, &ex, &ctx->grpc_lim, names, &classify, 1,
                        classify ? SERVE_JOB_CLASSIFY : SERVE_JOB_REGRESS, &job, st);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);
    return grpc_job_start(job, r, call, reply, answered);
}

/* MultiInference: the tasks' signatures of one model, one run. */
static enum coffer_err grpc_multi(struct serve_ctx *ctx, const struct coffer_net_grpc_call *call,
                                  struct coffer_net_grpc_reply *reply, uint64_t t0, struct coffer_serve_status *st,
                                  bool *answered)
{
    struct coffer_serve_multi_request req;
    enum coffer_err r = coffer_serve_multi_request_decode(call->message, call->message_size, &ctx->grpc_lim, &req, st);
    if (r != COFFER_OK)
        return r;
    const char *names[SERVE_MAX_IO];
    bool classify[SERVE_MAX_IO];
    if (req.task_count > SERVE_MAX_IO)
        r = coffer_serve_status_set(st, COFFER_SERVE_INVALID_ARGUMENT, "%zu tasks; at most %d", req.task_count,
                                    SERVE_MAX_IO);
    for (size_t i = 0; i < req.task_count && r == COFFER_OK; i++) {
        names[i] = req.tasks[i].spec.signature_name;
        classify[i] = strcmp(req.tasks[i].method_name, COFFER_SERVE_CLASSIFY_METHOD) == 0;
    }
    const struct coffer_serve_model_spec *spec = &req.tasks[0].spec; /* the servable: the first task's, as TF */
    const struct coffer_serve_servable *sv;
    struct serve_job *job = NULL;
    if (r == COFFER_OK && (r = coffer_serve_registry_acquire(ctx->reg, spec->name, spec->has_version, spec->version,
                                                             spec->version_label, &sv, st)) == COFFER_OK)
        r = example_job(ctx, sv, true, t0, &req.input, &ctx->grpc_lim, names, classify, req.task_count,
                        SERVE_JOB_MULTI, &job, st);
    coffer_serve_multi_request_free(&req);
    return grpc_job_start(job, r, call, reply, answered);
}

#define HEALTH_SERVICE "/grpc.health.v1.Health/"

/* Every configured model has an AVAILABLE version. */
static bool all_models_available(struct serve_ctx *ctx)
{
    for (size_t i = 0; i < coffer_serve_registry_model_count(ctx->reg); i++) {
        const struct coffer_serve_model_config *m = coffer_serve_registry_model(ctx->reg, i);
        struct coffer_serve_version_status *vs;
        size_t count;
        bool ok = false;
        if (m == NULL)
            continue; /* removed by a config reload */
        if (coffer_serve_registry_status(ctx->reg, m->name, &vs, &count) != COFFER_OK)
            return false;
        for (size_t k = 0; k < count && !ok; k++)
            ok = vs[k].state == COFFER_SERVE_STATE_AVAILABLE;
        coffer_free(vs);
        if (!ok)
            return false;
    }
    return true;
}

/* The serving status of a service, as grpc.health.v1 reports it: the
 * services TF Serving names ("ModelService", "PredictionService"), also
 * fully qualified, the health service itself, and "" for the server. The
 * prediction service and the server are SERVING only while every model has
 * an AVAILABLE version (readiness); another name is SERVICE_UNKNOWN. *avail
 * caches all_models_available (-1: not known yet). */
static enum coffer_serve_health health_of(struct serve_ctx *ctx, const char *service, int *avail)
{
    if (strcmp(service, "ModelService") == 0 || strcmp(service, "tensorflow.serving.ModelService") == 0 ||
        strcmp(service, "grpc.health.v1.Health") == 0)
        return COFFER_SERVE_HEALTH_SERVING;
    if (service[0] == '\0' || strcmp(service, "PredictionService") == 0 ||
        strcmp(service, "tensorflow.serving.PredictionService") == 0) {
        if (*avail < 0)
            *avail = all_models_available(ctx);
        return *avail ? COFFER_SERVE_HEALTH_SERVING : COFFER_SERVE_HEALTH_NOT_SERVING;
    }
    return COFFER_SERVE_HEALTH_SERVICE_UNKNOWN;
}

/* grpc.health.v1.Health/Check: health_of; an unknown service is NOT_FOUND,
 * as gRPC's health service answers. */
static enum coffer_err grpc_health(struct serve_ctx *ctx, const struct coffer_net_grpc_call *call, uint8_t **out,
                                   size_t *n, struct coffer_serve_status *st)
{
    char *service;
    enum coffer_err r = coffer_serve_health_request_decode(call->message, call->message_size, &service, st);
    if (r != COFFER_OK)
        return r;
    int avail = -1;
    enum coffer_serve_health h = health_of(ctx, service, &avail);
    if (h == COFFER_SERVE_HEALTH_SERVICE_UNKNOWN)
        r = coffer_serve_status_set(st, COFFER_SERVE_NOT_FOUND, "unknown service %.200s", service);
    coffer_free(service);
    if (r == COFFER_OK && (r = coffer_serve_health_response_encode(h, out, n)) != COFFER_OK)
        r = coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "out of memory");
    return r;
}

/* ---- grpc.health.v1.Health/Watch
 *
 * A server-streaming call (net/ sends the messages of a deferred call as
 * they come): the current status at once, then one message each time the
 * service's status changes (the registry's changed hook, after its polls
 * and reloads), until the client cancels or the server stops. An unknown
 * service gets SERVICE_UNKNOWN as a message and the call stays open, as the
 * protocol says (coffer's set of services is fixed, so it stays unknown). At
 * a graceful stop every watcher gets NOT_SERVING (as gRPC's own health
 * service does at shutdown) and the call ends with UNAVAILABLE. At most
 * SERVE_MAX_WATCHES calls at once (RESOURCE_EXHAUSTED beyond). The list is
 * under ctx->watch_mu; a watcher leaves it before its call is finished. */

#define SERVE_MAX_WATCHES 1024

struct serve_watch {
    struct serve_watch *next;
    struct serve_ctx *ctx;
    struct coffer_net_pending *p;
    char *service;
    enum coffer_serve_health sent; /* the last status sent */
};

/* Send h to w (under watch_mu); false when the client does not take its
 * messages (over net/'s cap): then the caller ends the call. */
static bool watch_send(struct serve_watch *w, enum coffer_serve_health h)
{
    uint8_t *msg;
    size_t n;
    if (coffer_serve_health_response_encode(h, &msg, &n) != COFFER_OK)
        return false;
    enum coffer_err r = coffer_net_pending_grpc_send(w->p, msg, n);
    coffer_free(msg);
    if (r == COFFER_OK)
        w->sent = h;
    return r == COFFER_OK;
}

/* Unlink w (under watch_mu); false when it was not in the list. */
static bool watch_unlink(struct serve_watch *w)
{
    struct serve_ctx *ctx = w->ctx;
    for (struct serve_watch **l = &ctx->watches; *l != NULL; l = &(*l)->next)
        if (*l == w) {
            *l = w->next;
            ctx->n_watches--;
            return true;
        }
    return false;
}

/* End the call with code (w is unlinked) and free w. */
static void watch_finish(struct serve_watch *w, enum coffer_net_grpc_code code, const char *msg)
{
    struct coffer_net_grpc_reply *reply = coffer_net_pending_grpc_reply(w->p);
    coffer_net_grpc_reply_status(reply, code, msg);
    /* counted as a call, but kept out of the latency histogram: a watch
     * lasts as long as its client wants */
    bool ok = code == COFFER_NET_GRPC_OK || code == COFFER_NET_GRPC_UNAVAILABLE || code == COFFER_NET_GRPC_CANCELLED;
    coffer_net_counter_add(ok ? w->ctx->ok[1] : w->ctx->failed[1], 1);
    coffer_net_pending_finish(w->p);
    coffer_free(w->service);
    coffer_free(w);
}

/* net/: the client went, or the server stops (worker thread). The watcher
 * is looked up by its call: one that is no longer listed is being (or was)
 * finished elsewhere, and may be freed already. */
static void watch_end(void *arg, struct coffer_net_pending *p, bool stopping)
{
    struct serve_ctx *ctx = arg;
    struct serve_watch *w = NULL;
    pthread_mutex_lock(&ctx->watch_mu);
    for (struct serve_watch *k = ctx->watches; k != NULL && w == NULL; k = k->next)
        if (k->p == p)
            w = k;
    if (w != NULL) {
        (void)watch_unlink(w);
        if (stopping && w->sent != COFFER_SERVE_HEALTH_NOT_SERVING)
            (void)watch_send(w, COFFER_SERVE_HEALTH_NOT_SERVING);
    }
    pthread_mutex_unlock(&ctx->watch_mu);
    if (w != NULL)
        watch_finish(w, stopping ? COFFER_NET_GRPC_UNAVAILABLE : COFFER_NET_GRPC_CANCELLED,
                     stopping ? "the server is shutting down" : "cancelled");
}

/* see serve_cli.h */
void serve_health_changed(void *arg)
{
    struct serve_ctx *ctx = arg;
    struct serve_watch *dead = NULL;
    int avail = -1;
    pthread_mutex_lock(&ctx->watch_mu);
    for (struct serve_watch *w = ctx->watches, *next; w != NULL; w = next) {
        next = w->next;
        enum coffer_serve_health h = health_of(ctx, w->service, &avail);
        if (h != w->sent && !watch_send(w, h)) {
            (void)watch_unlink(w);
            w->next = dead;
            dead = w;
        }
    }
    pthread_mutex_unlock(&ctx->watch_mu);
    while (dead != NULL) {
        struct serve_watch *next = dead->next;
        watch_finish(dead, COFFER_NET_GRPC_RESOURCE_EXHAUSTED, "the client does not read its health updates");
        dead = next;
    }
}

static enum coffer_err grpc_watch(struct serve_ctx *ctx, const struct coffer_net_grpc_call *call,
                                  struct coffer_net_grpc_reply *reply, struct coffer_serve_status *st, bool *answered)
{
    char *service;
    enum coffer_err r = coffer_serve_health_request_decode(call->message, call->message_size, &service, st);
    if (r != COFFER_OK)
        return r;
    struct serve_watch *w = coffer_calloc(1, sizeof(*w));
    if (w == NULL) {
        coffer_free(service);
        return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "out of memory");
    }
    w->ctx = ctx;
    w->service = service;
    w->sent = COFFER_SERVE_HEALTH_UNKNOWN;
    int avail = -1;
    pthread_mutex_lock(&ctx->watch_mu);
    if (ctx->n_watches >= SERVE_MAX_WATCHES)
        r = coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "too many health watchers (%d)",
                                    SERVE_MAX_WATCHES);
    else if (coffer_net_grpc_reply_defer(reply, &w->p) != COFFER_OK)
        r = coffer_serve_status_set(st, COFFER_SERVE_INTERNAL, "cannot defer the answer");
    if (r == COFFER_OK) {
        coffer_net_pending_on_end(w->p, watch_end, ctx);
        w->next = ctx->watches;
        ctx->watches = w;
        ctx->n_watches++;
        if (!watch_send(w, health_of(ctx, service, &avail))) {
            (void)watch_unlink(w);
            pthread_mutex_unlock(&ctx->watch_mu);
            *answered = true;
            watch_finish(w, COFFER_NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return COFFER_OK;
        }
    }
    pthread_mutex_unlock(&ctx->watch_mu);
    if (r != COFFER_OK) {
        coffer_free(w->service);
        coffer_free(w);
        return r;
    }
    *answered = true;
    return COFFER_OK;
}

/* ModelService/HandleReloadConfigRequest, as TF Serving: the new
 * ModelServerConfig replaces the served models, and the call returns once
 * their versions have loaded (on this worker thread). Only with
 * --allow_reload_config, which needs client certificates. */
static enum coffer_err grpc_reload(struct serve_ctx *ctx, const struct coffer_net_grpc_call *call, uint8_t **out,
                                   size_t *n, struct coffer_serve_status *st)
{
    if (!ctx->allow_reload)
        return coffer_serve_status_set(st, COFFER_SERVE_UNIMPLEMENTED,
                                       "HandleReloadConfigRequest is off: start coffer serve with "
                                       "--allow_reload_config (and client certificates) to allow it");
    struct coffer_serve_config cfg;
    enum coffer_err r = coffer_serve_reload_request_decode(call->message, call->message_size, &cfg, st);
    if (r == COFFER_OK) {
        coffer_info("serve: config reload of %zu model%s asked by %s", cfg.model_count,
                    cfg.model_count == 1 ? "" : "s", call->remote_addr ? call->remote_addr : "?");
        r = coffer_serve_registry_reload(ctx->reg, &cfg, st); /* takes cfg */
    }
    if (r == COFFER_OK && (r = coffer_serve_reload_response_encode(st, out, n)) != COFFER_OK)
        r = coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "out of memory");
    return r;
}

/* see serve_cli.h */
enum coffer_err serve_grpc_handler(void *arg, const struct coffer_net_grpc_call *call,
                                   struct coffer_net_grpc_reply *reply)
{
    struct serve_ctx *ctx = arg;
    uint64_t t0 = coffer_now_ns();
    struct coffer_serve_status st;
    coffer_serve_status_clear(&st);
    struct coffer_serve_model_spec asked;
    memset(&asked, 0, sizeof(asked));
    uint8_t *out = NULL;
    size_t n = 0;
    enum coffer_err r;
    bool answered = false;
    if (strcmp(call->path, PREDICTION_SERVICE "Predict") == 0) {
        r = grpc_predict(ctx, call, reply, t0, &st, &answered);
    } else if (strcmp(call->path, PREDICTION_SERVICE "GetModelMetadata") == 0) {
        const struct coffer_serve_servable *sv;
        if ((r = coffer_serve_metadata_request_decode(call->message, call->message_size, &asked, &st)) == COFFER_OK &&
            (r = coffer_serve_registry_acquire(ctx->reg, asked.name, asked.has_version, asked.version,
                                               asked.version_label, &sv, &st)) == COFFER_OK) {
            struct coffer_serve_model_spec spec = {.name = (char *)sv->model, .has_version = true,
                                                   .version = sv->version, .signature_name = (char *)""};
            r = coffer_serve_metadata_response_encode(&spec, sv->sigs, sv->sig_count, &out, &n);
            coffer_serve_registry_release(ctx->reg, sv);
        }
    } else if (strcmp(call->path, MODEL_SERVICE "GetModelStatus") == 0) {
        struct coffer_serve_version_status *vs = NULL;
        size_t count, first, sel;
        if ((r = coffer_serve_status_request_decode(call->message, call->message_size, &asked, &st)) == COFFER_OK &&
            (r = coffer_serve_registry_status(ctx->reg, asked.name, &vs, &count)) == COFFER_OK &&
            (r = coffer_serve_status_select(asked.name ? asked.name : "", vs, count, asked.has_version,
                                            asked.version, &first, &sel, &st)) == COFFER_OK)
            r = coffer_serve_status_response_encode(vs + first, sel, &out, &n);
        coffer_free(vs);
    } else if (strcmp(call->path, PREDICTION_SERVICE "Classify") == 0 ||
               strcmp(call->path, PREDICTION_SERVICE "Regress") == 0) {
        r = grpc_examples(ctx, call, strcmp(call->path, PREDICTION_SERVICE "Classify") == 0, reply, t0, &st,
                          &answered);
    } else if (strcmp(call->path, PREDICTION_SERVICE "MultiInference") == 0) {
        r = grpc_multi(ctx, call, reply, t0, &st, &answered);
    } else if (strcmp(call->path, HEALTH_SERVICE "Check") == 0) {
        r = grpc_health(ctx, call, &out, &n, &st);
    } else if (strcmp(call->path, HEALTH_SERVICE "Watch") == 0) {
        r = grpc_watch(ctx, call, reply, &st, &answered);
    } else if (strcmp(call->path, MODEL_SERVICE "HandleReloadConfigRequest") == 0) {
        r = grpc_reload(ctx, call, &out, &n, &st);
    } else {
        r = coffer_serve_status_set(&st, COFFER_SERVE_UNIMPLEMENTED, "Method not found: %s", call->path);
    }
    coffer_serve_model_spec_free(&asked);
    if (answered)
        return COFFER_OK;
    settle(&st, r);
    count(ctx, 1, t0, st.code == COFFER_SERVE_OK);
    grpc_answer(reply, out, n, &st);
    return COFFER_OK;
}
