/*
 * examples.c — TF Serving's tf.Example APIs: the Classify, Regress and
 * MultiInference requests (gRPC) and the :classify / :regress bodies (REST)
 * into lists of examples; examples into the model's input tensors; the
 * results back out as ClassificationResponse, RegressionResponse,
 * MultiInferenceResponse or TF's REST JSON.
 *
 * Design: gRPC requests are size-checked and unpacked with protobuf-c (as
 * grpc_msgs.c does), REST bodies parsed with coffer_json_parse (jansson);
 * both end in the same neutral struct coffer_serve_examples, each example's
 * features sorted by name so that filling a model input from them is a
 * binary search per example. TF parses an example with its context by
 * concatenating the two serialized messages (protobuf merge: the example's
 * feature wins); coffer_serve_examples_to_tensors looks in the example
 * first, then the context, which is the same. Feature values go to the
 * model's own input dtypes, one row per example.
 *
 * Invariants: I1 every value kept is counted against lim (one feature's
 * values against max_tensor_size, all of a request's against
 * max_total_size) and examples and features per example against their caps
 * before allocation. I2 values (user data) are wiped when freed. I3 on
 * failure the caller has nothing to free.
 *
 * Trusts: protobuf-c's unpack and jansson for syntax; the signatures (from
 * the model registry).
 */
#include "serve_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensorflow_serving/apis/classification.pb-c.h"
#include "tensorflow_serving/apis/inference.pb-c.h"
#include "tensorflow_serving/apis/regression.pb-c.h"

/* ------------------------------------------------------------- the structs */

static void feature_free(struct coffer_serve_feature *f)
{
    coffer_free(f->name);
    if (f->floats != NULL) {
        coffer_memzero(f->floats, f->count * sizeof(*f->floats));
        coffer_free(f->floats);
    }
    if (f->ints != NULL) {
        coffer_memzero(f->ints, f->count * sizeof(*f->ints));
        coffer_free(f->ints);
    }
    memset(f, 0, sizeof(*f));
}

static void example_free(struct coffer_serve_example *e)
{
    for (size_t i = 0; i < e->count; i++)
        feature_free(&e->features[i]);
    coffer_free(e->features);
    memset(e, 0, sizeof(*e));
}

void coffer_serve_examples_free(struct coffer_serve_examples *in)
{
    if (in == NULL)
        return;
    for (size_t i = 0; i < in->count; i++)
        example_free(&in->examples[i]);
    coffer_free(in->examples);
    example_free(&in->context);
    memset(in, 0, sizeof(*in));
}

/* Bytes a request may still decode (I1). */
struct budget {
    const struct coffer_serve_limits *lim;
    size_t left;
};

/* Take n values of esize bytes for feature name of what. */
static enum coffer_err budget_take(struct budget *b, size_t n, size_t esize, const char *name, const char *what,
                                   struct coffer_serve_status *st)
{
    size_t bytes;
    if (!coffer_size_mul(n, esize, &bytes) || bytes > b->lim->max_tensor_size)
        return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED,
                                       "Feature: %s of %s has %zu values, over the limit of %zu bytes", name, what, n,
                                       b->lim->max_tensor_size);
    if (bytes > b->left)
        return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED,
                                       "the examples' values are over the limit of %zu bytes",
                                       b->lim->max_total_size);
    b->left -= bytes;
    return COFFER_OK;
}

/* Order by name, then by position (index), so that of equal names the last
 * sent comes last. */
struct keyed {
    const char *name;
    size_t index;
};

static int keyed_cmp(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* The order to keep n named things in: sorted by name, of a name sent more
 * than once only its last. *order from coffer_malloc (n entries, *kept
 * used). */
static enum coffer_err dedupe(const char *const *names, size_t n, size_t **order, size_t *kept)
{
    *order = NULL;
    *kept = 0;
    struct keyed *k = coffer_calloc(n ? n : 1, sizeof(*k));
    size_t *o = coffer_calloc(n ? n : 1, sizeof(*o));
    if (k == NULL || o == NULL) {
        coffer_free(k);
        coffer_free(o);
        return COFFER_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        k[i] = (struct keyed){.name = names[i], .index = i};
    qsort(k, n, sizeof(*k), keyed_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (i + 1 == n || strcmp(k[i].name, k[i + 1].name) != 0)
            o[m++] = k[i].index;
    coffer_free(k);
    *order = o;
    *kept = m;
    return COFFER_OK;
}

static int feature_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct coffer_serve_feature *)elem)->name);
}

static const struct coffer_serve_feature *feature_find(const struct coffer_serve_example *e, const char *name)
{
    if (e->count == 0)
        return NULL;
    return bsearch(name, e->features, e->count, sizeof(*e->features), feature_cmp);
}

/* ------------------------------------------------------------ from protobuf */

/* n values of esize bytes from src into *dst (owned), counted against b. */
static enum coffer_err values_take(struct budget *b, const void *src, size_t n, size_t esize, const char *name,
                                   const char *what, void **dst, struct coffer_serve_status *st)
{
    enum coffer_err r = budget_take(b, n, esize, name, what, st);
    if (r != COFFER_OK)
        return r;
    if ((*dst = coffer_malloc(n ? n * esize : 1)) == NULL)
        return coffer_serve__nomem(st);
    if (n > 0)
        memcpy(*dst, src, n * esize);
    return COFFER_OK;
}

/* One Feature into f (named name). */
static enum coffer_err feature_from_proto(const char *name, const Tensorflow__Feature *pf, struct budget *b,
                                          const char *what, struct coffer_serve_feature *f,
                                          struct coffer_serve_status *st)
{
    memset(f, 0, sizeof(*f));
    if ((f->name = coffer_strdup(name)) == NULL)
        return coffer_serve__nomem(st);
    if (pf == NULL)
        return COFFER_OK;
    const void *src = NULL;
    size_t n = 0, esize = 0;
    bool listed = false; /* the message has the list (perhaps empty) */
    switch (pf->kind_case) {
    case TENSORFLOW__FEATURE__KIND_FLOAT_LIST:
        f->kind = COFFER_SERVE_FEATURE_FLOAT;
        esize = sizeof(float);
        if ((listed = pf->float_list != NULL)) {
            src = pf->float_list->value;
            n = pf->float_list->n_value;
        }
        break;
    case TENSORFLOW__FEATURE__KIND_INT64_LIST:
        f->kind = COFFER_SERVE_FEATURE_INT64;
        esize = sizeof(int64_t);
        if ((listed = pf->int64_list != NULL)) {
            src = pf->int64_list->value;
            n = pf->int64_list->n_value;
        }
        break;
    case TENSORFLOW__FEATURE__KIND_BYTES_LIST:
        f->kind = COFFER_SERVE_FEATURE_BYTES;
        f->count = pf->bytes_list != NULL ? pf->bytes_list->n_value : 0;
        return COFFER_OK;
    default:
        return COFFER_OK;
    }
    if (!listed)
        return COFFER_OK;
    void *vals = NULL;
    enum coffer_err r = values_take(b, src, n, esize, name, what, &vals, st);
    if (r != COFFER_OK) {
        feature_free(f);
        return r;
    }
    f->count = n;
    if (f->kind == COFFER_SERVE_FEATURE_FLOAT)
        f->floats = vals;
    else
        f->ints = vals;
    return COFFER_OK;
}

static enum coffer_err example_from_proto(const Tensorflow__Example *ex, struct budget *b, const char *what,
                                          struct coffer_serve_example *out, struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    const Tensorflow__Features *fs = ex != NULL ? ex->features : NULL;
    size_t n = fs != NULL ? fs->n_feature : 0;
    if (n == 0)
        return COFFER_OK;
    if (n > COFFER_SERVE_MAX_FEATURES)
        return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED,
                                       "%s has %zu features, over the limit of %d", what, n,
                                       COFFER_SERVE_MAX_FEATURES);
    const char **names = coffer_calloc(n, sizeof(*names));
    if (names == NULL)
        return coffer_serve__nomem(st);
    for (size_t i = 0; i < n; i++)
        names[i] = fs->feature[i]->key != NULL ? fs->feature[i]->key : "";
    size_t *order, kept;
    enum coffer_err r = dedupe(names, n, &order, &kept);
    coffer_free(names);
    if (r != COFFER_OK)
        return coffer_serve__nomem(st);
    struct coffer_serve_example e = {.features = coffer_calloc(kept ? kept : 1, sizeof(*e.features))};
    if (e.features == NULL)
        r = coffer_serve__nomem(st);
    for (size_t i = 0; i < kept && r == COFFER_OK; i++) {
        const Tensorflow__Features__FeatureEntry *fe = fs->feature[order[i]];
        if ((r = feature_from_proto(fe->key != NULL ? fe->key : "", fe->value, b, what, &e.features[i], st)) ==
            COFFER_OK)
            e.count++;
    }
    coffer_free(order);
    if (r != COFFER_OK) {
        example_free(&e);
        return r;
    }
    *out = e;
    return COFFER_OK;
}

/* n Examples (and a context, or NULL) into out, with the caps and limits. */
static enum coffer_err examples_from_list(Tensorflow__Example *const *exs, size_t n, const Tensorflow__Example *ctx,
                                          const struct coffer_serve_limits *lim, struct coffer_serve_examples *out,
                                          struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return SERVE_INVALID(st, "Input is empty.");
    if (n > COFFER_SERVE_MAX_EXAMPLES)
        return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "%zu examples are over the limit of %d",
                                       n, COFFER_SERVE_MAX_EXAMPLES);
    struct budget b = {.lim = lim, .left = lim->max_total_size};
    struct coffer_serve_examples res = {.examples = coffer_calloc(n, sizeof(*res.examples))};
    enum coffer_err r = res.examples == NULL ? coffer_serve__nomem(st) : COFFER_OK;
    char what[48];
    for (size_t i = 0; i < n && r == COFFER_OK; i++) {
        snprintf(what, sizeof(what), "example %zu", i);
        if ((r = example_from_proto(exs[i], &b, what, &res.examples[i], st)) == COFFER_OK)
            res.count++;
    }
    if (r == COFFER_OK && ctx != NULL)
        r = example_from_proto(ctx, &b, "the context", &res.context, st);
    if (r != COFFER_OK) {
        coffer_serve_examples_free(&res);
        return r;
    }
    *out = res;
    return COFFER_OK;
}

static enum coffer_err input_from_proto(const Tensorflow__Serving__Input *in, const struct coffer_serve_limits *lim,
                                        struct coffer_serve_examples *out, struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    size_t n = 0;
    Tensorflow__Example **exs = NULL;
    const Tensorflow__Example *ctx = NULL;
    if (in != NULL && in->kind_case == TENSORFLOW__SERVING__INPUT__KIND_EXAMPLE_LIST && in->example_list != NULL) {
        n = in->example_list->n_examples;
        exs = in->example_list->examples;
    } else if (in != NULL && in->kind_case == TENSORFLOW__SERVING__INPUT__KIND_EXAMPLE_LIST_WITH_CONTEXT &&
               in->example_list_with_context != NULL) {
        n = in->example_list_with_context->n_examples;
        exs = in->example_list_with_context->examples;
        ctx = in->example_list_with_context->context;
    }
    return examples_from_list(exs, n, ctx, lim, out, st);
}

enum coffer_err coffer_serve_example_request_decode(const uint8_t *data, size_t size,
                                                    const struct coffer_serve_limits *lim,
                                                    struct coffer_serve_model_spec *spec,
                                                    struct coffer_serve_examples *out, struct coffer_serve_status *st)
{
    memset(spec, 0, sizeof(*spec));
    memset(out, 0, sizeof(*out));
    struct coffer_serve_limits dl;
    enum coffer_err started = coffer_serve__message_start(size, &lim, &dl, st);
    if (started != COFFER_OK)
        return started;
    /* RegressionRequest has the same fields, numbers and types */
    Tensorflow__Serving__ClassificationRequest *m =
        tensorflow__serving__classification_request__unpack(&coffer_serve__pb_alloc, size, data);
    if (m == NULL)
        return SERVE_INVALID(st, "Could not parse the request: not a valid protobuf message");
    enum coffer_err r;
    struct coffer_serve_model_spec s = {0};
    if (m->model_spec == NULL)
        r = SERVE_INVALID(st, "Missing ModelSpec");
    else if ((r = coffer_serve__spec_from_proto(m->model_spec, &s)) != COFFER_OK)
        r = coffer_serve__nomem(st);
    else
        r = input_from_proto(m->input, lim, out, st);
    tensorflow__serving__classification_request__free_unpacked(m, &coffer_serve__pb_alloc);
    if (r != COFFER_OK) {
        coffer_serve_model_spec_free(&s);
        return r;
    }
    *spec = s;
    return COFFER_OK;
}

void coffer_serve_multi_request_free(struct coffer_serve_multi_request *req)
{
    if (req == NULL)
        return;
    for (size_t i = 0; i < req->task_count; i++) {
        coffer_serve_model_spec_free(&req->tasks[i].spec);
        coffer_free(req->tasks[i].method_name);
    }
    coffer_free(req->tasks);
    coffer_serve_examples_free(&req->input);
    memset(req, 0, sizeof(*req));
}

/* TF's checks of the tasks (multi_inference.cc, in its order). */
static enum coffer_err tasks_check(const struct coffer_serve_inference_task *t, size_t n,
                                   struct coffer_serve_status *st)
{
    if (n == 0)
        return SERVE_INVALID(st, "MultiInferenceRequest must specify at least one task");
    for (size_t i = 0; i < n; i++) {
        if (t[i].spec.name[0] == '\0')
            return SERVE_INVALID(st, "Found ModelSpec with an empty model name.");
        if (strcmp(t[i].spec.name, t[0].spec.name) != 0)
            return SERVE_INVALID(st, "All ModelSpecs in a MultiInferenceRequest must access the same model name.");
        if (strcmp(t[i].method_name, COFFER_SERVE_CLASSIFY_METHOD) != 0 &&
            strcmp(t[i].method_name, COFFER_SERVE_REGRESS_METHOD) != 0)
            return coffer_serve_status_set(st, COFFER_SERVE_UNIMPLEMENTED, "Unsupported signature method_name: %s",
                                           t[i].method_name);
    }
    return COFFER_OK;
}

enum coffer_err coffer_serve_multi_request_decode(const uint8_t *data, size_t size,
                                                  const struct coffer_serve_limits *lim,
                                                  struct coffer_serve_multi_request *out,
                                                  struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    struct coffer_serve_limits dl;
    enum coffer_err started = coffer_serve__message_start(size, &lim, &dl, st);
    if (started != COFFER_OK)
        return started;
    Tensorflow__Serving__MultiInferenceRequest *m =
        tensorflow__serving__multi_inference_request__unpack(&coffer_serve__pb_alloc, size, data);
    if (m == NULL)
        return SERVE_INVALID(st, "Could not parse MultiInferenceRequest: not a valid protobuf message");
    struct coffer_serve_multi_request req = {0};
    enum coffer_err r = COFFER_OK;
    if (m->n_tasks > lim->max_tensors)
        r = SERVE_INVALID(st, "%zu tasks are over the limit of %zu", m->n_tasks, lim->max_tensors);
    else if ((req.tasks = coffer_calloc(m->n_tasks ? m->n_tasks : 1, sizeof(*req.tasks))) == NULL)
        r = coffer_serve__nomem(st);
    for (size_t i = 0; i < m->n_tasks && r == COFFER_OK; i++) {
        const Tensorflow__Serving__InferenceTask *t = m->tasks[i];
        if (t->model_spec == NULL) {
            r = SERVE_INVALID(st, "Missing ModelSpec");
            break;
        }
        struct coffer_serve_inference_task *d = &req.tasks[i];
        if (coffer_serve__spec_from_proto(t->model_spec, &d->spec) != COFFER_OK ||
            (d->method_name = coffer_strdup(t->method_name != NULL ? t->method_name : "")) == NULL) {
            coffer_serve_model_spec_free(&d->spec);
            r = coffer_serve__nomem(st);
            break;
        }
        req.task_count++;
    }
    if (r == COFFER_OK)
        r = tasks_check(req.tasks, req.task_count, st);
    if (r == COFFER_OK)
        r = input_from_proto(m->input, lim, &req.input, st);
    tensorflow__serving__multi_inference_request__free_unpacked(m, &coffer_serve__pb_alloc);
    if (r != COFFER_OK) {
        coffer_serve_multi_request_free(&req);
        return r;
    }
    *out = req;
    return COFFER_OK;
}

enum coffer_err coffer_serve_examples_from_tensor(const struct coffer_serve_tensor *t,
                                                  const struct coffer_serve_limits *lim,
                                                  struct coffer_serve_examples *out, struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    struct coffer_serve_limits dl;
    lim = coffer_serve__limits(lim, &dl);
    if (t->dtype != COFFER_SERVE_DT_STRING)
        return SERVE_INVALID(st, "Expects arg[0] to be string but %s is provided", coffer_serve_dtype_name(t->dtype));
    if (t->rank != 1) {
        char shape[96] = "[";
        for (size_t i = 0; i < t->rank && i < 8; i++)
            snprintf(shape + strlen(shape), sizeof(shape) - strlen(shape), "%s%lld", i ? "," : "",
                     (long long)t->dims[i]);
        snprintf(shape + strlen(shape), sizeof(shape) - strlen(shape), "%s]", t->rank > 8 ? ",..." : "");
        return SERVE_INVALID(st, "Expected serialized to be a vector, got shape: %s", shape);
    }
    if (t->count > COFFER_SERVE_MAX_EXAMPLES) /* before the array below */
        return examples_from_list(NULL, t->count, NULL, lim, out, st);
    const struct coffer_serve_bytes *s = t->data;
    Tensorflow__Example **exs = coffer_calloc(t->count ? t->count : 1, sizeof(*exs));
    if (exs == NULL)
        return coffer_serve__nomem(st);
    enum coffer_err r = COFFER_OK;
    for (size_t i = 0; i < t->count && r == COFFER_OK; i++)
        /* protobuf-c reads within s[i] (its size is the bound); an empty
         * string is an Example without features, as protobuf has it */
        if ((exs[i] = tensorflow__example__unpack(&coffer_serve__pb_alloc, s[i].size, s[i].data)) == NULL)
            r = SERVE_INVALID(st, "Could not parse example input %zu: not a serialized tf.Example", i);
    if (r == COFFER_OK)
        r = examples_from_list(exs, t->count, NULL, lim, out, st);
    for (size_t i = 0; i < t->count && exs[i] != NULL; i++)
        tensorflow__example__free_unpacked(exs[i], &coffer_serve__pb_alloc);
    coffer_free(exs);
    return r;
}

/* -------------------------------------------------------------- from JSON */

/* What one JSON value is as a feature value. */
enum jkind { J_BAD, J_INT, J_REAL, J_BYTES };

static enum jkind leaf_kind(const json_t *v)
{
    if (json_is_integer(v) || json_is_boolean(v))
        return J_INT;
    if (json_is_real(v))
        return J_REAL;
    if (json_is_string(v))
        return J_BYTES;
    if (json_is_object(v) && json_object_size(v) == 1 && json_is_string(json_object_get(v, "b64")))
        return J_BYTES;
    return J_BAD;
}

static double leaf_real(const json_t *v)
{
    return json_is_real(v) ? json_real_value(v) : json_is_integer(v) ? (double)json_integer_value(v)
                                                                     : (double)json_is_true(v);
}

static int64_t leaf_int(const json_t *v)
{
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)json_is_true(v);
}

/* One "name": value of an example object into f. */
static enum coffer_err feature_from_json(const char *name, const json_t *v, struct budget *b, const char *what,
                                         struct coffer_serve_feature *f, struct coffer_serve_status *st)
{
    memset(f, 0, sizeof(*f));
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    enum jkind kind = J_BAD;
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        enum jkind k = leaf_kind(e);
        if (k == J_BAD)
            return SERVE_INVALID(st, "Feature: %s of %s: a value must be a number, a boolean, a string, "
                                     "{\"b64\": ...} or a list of one kind of these",
                                 name, what);
        if (k == J_BYTES && json_is_object(e)) {
            /* the b64 text must decode, as TF decodes it */
            const char *t = json_string_value(json_object_get(e, "b64"));
            uint8_t *raw = NULL;
            size_t rn = 0;
            if (coffer_base64_decode(t, strlen(t), &raw, &rn) != COFFER_OK)
                return SERVE_INVALID(st, "Feature: %s of %s: Unable to base64 decode", name, what);
            coffer_memzero(raw, rn);
            coffer_free(raw);
        }
        if (first)
            kind = k;
        else if (kind != k) {
            if ((kind == J_INT || kind == J_REAL) && (k == J_INT || k == J_REAL))
                kind = J_REAL; /* 1 and 2.5 together: a float_list */
            else
                return SERVE_INVALID(st, "Feature: %s of %s mixes value types (strings with numbers)", name, what);
        }
        first = false;
    }
    if ((f->name = coffer_strdup(name)) == NULL)
        return coffer_serve__nomem(st);
    enum coffer_err r = COFFER_OK;
    if (n == 0) {
        f->kind = COFFER_SERVE_FEATURE_NONE;
    } else if (kind == J_BYTES) {
        f->kind = COFFER_SERVE_FEATURE_BYTES;
        f->count = n;
    } else if (kind == J_REAL) {
        f->kind = COFFER_SERVE_FEATURE_FLOAT;
        if ((r = budget_take(b, n, sizeof(float), name, what, st)) == COFFER_OK &&
            (f->floats = coffer_malloc(n * sizeof(float))) == NULL)
            r = coffer_serve__nomem(st);
        for (size_t i = 0; r == COFFER_OK && i < n; i++)
            f->floats[i] = (float)leaf_real(json_is_array(v) ? json_array_get(v, i) : v);
        f->count = r == COFFER_OK ? n : 0;
    } else {
        f->kind = COFFER_SERVE_FEATURE_INT64;
        if ((r = budget_take(b, n, sizeof(int64_t), name, what, st)) == COFFER_OK &&
            (f->ints = coffer_malloc(n * sizeof(int64_t))) == NULL)
            r = coffer_serve__nomem(st);
        for (size_t i = 0; r == COFFER_OK && i < n; i++)
            f->ints[i] = leaf_int(json_is_array(v) ? json_array_get(v, i) : v);
        f->count = r == COFFER_OK ? n : 0;
    }
    if (r != COFFER_OK)
        feature_free(f);
    return r;
}

static enum coffer_err example_from_json(const json_t *obj, struct budget *b, const char *what,
                                         struct coffer_serve_example *out, struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(obj))
        return SERVE_INVALID(st, "%s must be a JSON object of features", what);
    size_t n = json_object_size(obj);
    if (n == 0)
        return COFFER_OK;
    if (n > COFFER_SERVE_MAX_FEATURES)
        return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED,
                                       "%s has %zu features, over the limit of %d", what, n,
                                       COFFER_SERVE_MAX_FEATURES);
    /* coffer_json_parse refuses duplicate keys: names are unique already */
    const char **names = coffer_calloc(n, sizeof(*names));
    const json_t **vals = coffer_calloc(n, sizeof(*vals));
    size_t *order = NULL, kept = 0;
    enum coffer_err r = names == NULL || vals == NULL ? COFFER_E_NOMEM : COFFER_OK;
    if (r == COFFER_OK) {
        size_t i = 0;
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)obj, key, v)
        {
            names[i] = key;
            vals[i++] = v;
        }
        r = dedupe(names, n, &order, &kept);
    }
    struct coffer_serve_example e = {0};
    if (r == COFFER_OK && (e.features = coffer_calloc(kept ? kept : 1, sizeof(*e.features))) == NULL)
        r = COFFER_E_NOMEM;
    if (r != COFFER_OK)
        r = coffer_serve__nomem(st);
    for (size_t i = 0; i < kept && r == COFFER_OK; i++)
        if ((r = feature_from_json(names[order[i]], vals[order[i]], b, what, &e.features[i], st)) == COFFER_OK)
            e.count++;
    coffer_free(names);
    coffer_free(vals);
    coffer_free(order);
    if (r != COFFER_OK) {
        example_free(&e);
        return r;
    }
    *out = e;
    return COFFER_OK;
}

enum coffer_err coffer_serve_rest_examples_parse(const void *body, size_t size, const struct coffer_serve_limits *lim,
                                                 char **signature_name, struct coffer_serve_examples *out,
                                                 struct coffer_serve_status *st)
{
    *signature_name = NULL;
    memset(out, 0, sizeof(*out));
    coffer_serve_status_clear(st);
    struct coffer_serve_limits dl;
    lim = coffer_serve__limits(lim, &dl);
    if (size > lim->max_message_size)
        return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED,
                                       "JSON body of %zu bytes is over the limit of %zu", size, lim->max_message_size);
    json_t *root = NULL;
    if (coffer_json_parse(body, size, size, &root) != COFFER_OK)
        return SERVE_INVALID(st, "JSON Parse error: %s", coffer_err_detail());
    struct coffer_serve_examples res = {0};
    char *sig = NULL;
    enum coffer_err r = COFFER_OK;
    json_t *sn = NULL, *exs = NULL, *ctx = NULL;
    if (!json_is_object(root)) {
        r = SERVE_INVALID(st, "JSON Parse error: expecting a JSON object at the top level");
        goto out;
    }
    sn = json_object_get(root, "signature_name");
    if (sn != NULL && !json_is_string(sn)) {
        r = SERVE_INVALID(st, "'signature_name' key must be a string value.");
        goto out;
    }
    if ((sig = coffer_strdup(sn != NULL ? json_string_value(sn) : "")) == NULL) {
        r = coffer_serve__nomem(st);
        goto out;
    }
    exs = json_object_get(root, "examples");
    if (exs == NULL) {
        r = SERVE_INVALID(st, "Missing 'examples' key");
        goto out;
    }
    if (!json_is_array(exs)) {
        r = SERVE_INVALID(st, "'examples' key must be a list of JSON objects");
        goto out;
    }
    size_t n = json_array_size(exs);
    if (n == 0) {
        r = SERVE_INVALID(st, "Input is empty.");
        goto out;
    }
    if (n > COFFER_SERVE_MAX_EXAMPLES) {
        r = coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "%zu examples are over the limit of %d", n,
                                    COFFER_SERVE_MAX_EXAMPLES);
        goto out;
    }
    if ((res.examples = coffer_calloc(n, sizeof(*res.examples))) == NULL) {
        r = coffer_serve__nomem(st);
        goto out;
    }
    struct budget b = {.lim = lim, .left = lim->max_total_size};
    char what[48];
    for (size_t i = 0; i < n && r == COFFER_OK; i++) {
        snprintf(what, sizeof(what), "example %zu", i);
        if ((r = example_from_json(json_array_get(exs, i), &b, what, &res.examples[i], st)) == COFFER_OK)
            res.count++;
    }
    ctx = json_object_get(root, "context");
    if (r == COFFER_OK && ctx != NULL)
        r = example_from_json(ctx, &b, "the context", &res.context, st);
out:
    json_decref(root);
    if (r != COFFER_OK) {
        coffer_free(sig);
        coffer_serve_examples_free(&res);
        return r;
    }
    *signature_name = sig;
    *out = res;
    return COFFER_OK;
}

/* ---------------------------------------------------- examples -> tensors */

static const char *kind_name(enum coffer_serve_feature_kind k)
{
    switch (k) {
    case COFFER_SERVE_FEATURE_BYTES: return "a bytes_list";
    case COFFER_SERVE_FEATURE_FLOAT: return "a float_list";
    case COFFER_SERVE_FEATURE_INT64: return "an int64_list";
    default: return "empty";
    }
}

/* Fill row e of t (per values) from f. */
static enum coffer_err fill_row(struct coffer_serve_tensor *t, size_t e, size_t per,
                                const struct coffer_serve_feature *f, struct coffer_serve_status *st)
{
    size_t at = e * per;
    switch (t->dtype) {
    case COFFER_SERVE_DT_FLOAT: {
        float *d = (float *)t->data + at;
        for (size_t i = 0; i < per; i++)
            d[i] = f->kind == COFFER_SERVE_FEATURE_FLOAT ? f->floats[i] : (float)f->ints[i];
        return COFFER_OK;
    }
    case COFFER_SERVE_DT_DOUBLE: {
        double *d = (double *)t->data + at;
        for (size_t i = 0; i < per; i++)
            d[i] = f->kind == COFFER_SERVE_FEATURE_FLOAT ? (double)f->floats[i] : (double)f->ints[i];
        return COFFER_OK;
    }
    case COFFER_SERVE_DT_INT64:
        if (per > 0)
            memcpy((int64_t *)t->data + at, f->ints, per * sizeof(int64_t));
        return COFFER_OK;
    default: { /* INT32 */
        int32_t *d = (int32_t *)t->data + at;
        for (size_t i = 0; i < per; i++) {
            if (f->ints[i] < INT32_MIN || f->ints[i] > INT32_MAX)
                return SERVE_INVALID(st, "Feature: %s of example %zu: value %lld does not fit int32", f->name, e,
                                     (long long)f->ints[i]);
            d[i] = (int32_t)f->ints[i];
        }
        return COFFER_OK;
    }
    }
}

/* Shape text of an input for messages: [-1,1,8,8]. */
static void dims_text(const struct coffer_serve_tensor_info *in, char *out, size_t size)
{
    size_t o = (size_t)snprintf(out, size, "[");
    for (size_t d = 0; d < in->rank && o < size; d++)
        o += (size_t)snprintf(out + o, size - o, "%s%lld", d ? "," : "", (long long)in->dims[d]);
    if (o < size)
        snprintf(out + o, size - o, "]");
}

static enum coffer_err input_from_examples(const struct coffer_serve_examples *in,
                                           const struct coffer_serve_tensor_info *info, size_t *total,
                                           const struct coffer_serve_limits *lim, struct coffer_serve_tensor *t,
                                           struct coffer_serve_status *st)
{
    const char *name = info->alias;
    enum coffer_serve_dtype dt = info->dtype;
    if (dt != COFFER_SERVE_DT_FLOAT && dt != COFFER_SERVE_DT_DOUBLE && dt != COFFER_SERVE_DT_INT32 &&
        dt != COFFER_SERVE_DT_INT64)
        return coffer_serve_status_set(st, COFFER_SERVE_UNIMPLEMENTED,
                                       "input %s has type %s, which no tf.Example feature can fill", name,
                                       coffer_serve_dtype_name(dt));
    bool is_int = dt == COFFER_SERVE_DT_INT32 || dt == COFFER_SERVE_DT_INT64;
    char shape[256];
    dims_text(info, shape, sizeof(shape));
    /* per-example values: the dims after the batch; one unknown one may
     * take its size from the first example */
    size_t rank = info->rank > 0 ? info->rank : 1;
    int64_t dims[COFFER_SERVE_MAX_RANK];
    dims[0] = (int64_t)in->count;
    size_t known = 1, unknown = 0, at = 0;
    for (size_t d = 1; d < info->rank; d++) {
        dims[d] = info->dims[d];
        if (info->dims[d] < 0) {
            unknown++;
            at = d;
        } else if (!coffer_size_mul(known, (size_t)info->dims[d], &known)) {
            return SERVE_INVALID(st, "input %s: shape %s overflows", name, shape);
        }
    }
    if (unknown > 1 || info->unknown_rank)
        return coffer_serve_status_set(st, COFFER_SERVE_UNIMPLEMENTED,
                                       "input %s has shape %s: more than one unknown size per example, which "
                                       "tf.Example features cannot give",
                                       name, shape);
    size_t per = known;
    for (size_t e = 0; e < in->count; e++) {
        const struct coffer_serve_feature *f = feature_find(&in->examples[e], name);
        if (f == NULL)
            f = feature_find(&in->context, name);
        if (f == NULL) {
            coffer_serve_tensor_free(t); /* made at example 0 */
            return SERVE_INVALID(st, "Feature: %s (data type: %s) is required but could not be found in example %zu",
                                 name, coffer_serve_dtype_name(dt), e);
        }
        if (f->kind == COFFER_SERVE_FEATURE_BYTES || (is_int && f->kind == COFFER_SERVE_FEATURE_FLOAT)) {
            coffer_serve_tensor_free(t);
            return SERVE_INVALID(st, "Feature: %s of example %zu is %s; input %s takes %s", name, e,
                                 kind_name(f->kind), name, coffer_serve_dtype_name(dt));
        }
        if (e == 0) {
            if (unknown == 1) {
                if (known == 0 || f->count % known != 0)
                    return SERVE_INVALID(st, "Feature: %s of example 0 has %zu values, which shape %s cannot take",
                                         name, f->count, shape);
                dims[at] = (int64_t)(f->count / known);
                per = f->count;
            }
            size_t elems, bytes;
            if (!coffer_size_mul(per, in->count, &elems) ||
                !coffer_size_mul(elems, coffer_serve_dtype_size(dt), &bytes) || bytes > lim->max_tensor_size ||
                bytes > lim->max_total_size - *total)
                return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED,
                                               "input %s from the examples is over the size limit", name);
            *total += bytes;
            if (coffer_serve__tensor_alloc(t, name, dt, rank, dims, false) != COFFER_OK)
                return coffer_serve__nomem(st);
        }
        if (f->count != per) {
            coffer_serve_tensor_free(t);
            return unknown == 1 ? SERVE_INVALID(st, "Feature: %s of example %zu has %zu values; example 0 has %zu",
                                                name, e, f->count, per)
                                : SERVE_INVALID(st,
                                                "Feature: %s of example %zu has %zu values; input %s (shape %s) "
                                                "takes %zu per example",
                                                name, e, f->count, name, shape, per);
        }
        enum coffer_err r = fill_row(t, e, per, f, st);
        if (r != COFFER_OK) {
            coffer_serve_tensor_free(t);
            return r;
        }
    }
    return COFFER_OK;
}

enum coffer_err coffer_serve_examples_to_tensors(const struct coffer_serve_examples *in,
                                                 const struct coffer_serve_tensor_info *inputs, size_t count,
                                                 const struct coffer_serve_limits *lim, struct coffer_serve_tensor *out,
                                                 struct coffer_serve_status *st)
{
    coffer_serve_status_clear(st);
    for (size_t i = 0; i < count; i++)
        memset(&out[i], 0, sizeof(out[i]));
    struct coffer_serve_limits dl;
    lim = coffer_serve__limits(lim, &dl);
    if (in->count == 0)
        return SERVE_INVALID(st, "Input is empty.");
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        enum coffer_err r = input_from_examples(in, &inputs[i], &total, lim, &out[i], st);
        if (r != COFFER_OK) {
            for (size_t k = 0; k < i; k++)
                coffer_serve_tensor_free(&out[k]);
            return r;
        }
    }
    return COFFER_OK;
}

/* -------------------------------------------------------------- signatures */

static const char *method_noun(const char *method)
{
    return strcmp(method, COFFER_SERVE_CLASSIFY_METHOD) == 0 ? "classification" : "regression";
}

static const char *method_of(const struct coffer_serve_signature *s)
{
    return s->method_name != NULL ? s->method_name : COFFER_SERVE_PREDICT_METHOD;
}

enum coffer_err coffer_serve_signature_for_method(const struct coffer_serve_signature *sigs, size_t count,
                                                  const char *name, const char *method,
                                                  const struct coffer_serve_signature **out,
                                                  struct coffer_serve_status *st)
{
    *out = NULL;
    bool named = name != NULL && name[0] != '\0';
    const char *key = named ? name : COFFER_SERVE_DEFAULT_SIGNATURE;
    const struct coffer_serve_signature *s = NULL;
    for (size_t i = 0; i < count && s == NULL; i++)
        if (strcmp(sigs[i].key, key) == 0)
            s = &sigs[i];
    if (!named && (s == NULL || strcmp(method_of(s), method) != 0)) {
        s = NULL;
        for (size_t i = 0; i < count && s == NULL; i++)
            if (strcmp(method_of(&sigs[i]), method) == 0)
                s = &sigs[i];
        if (s == NULL)
            return coffer_serve_status_set(st, COFFER_SERVE_UNIMPLEMENTED,
                                           "the model has no %s signature (declare one in the ONNX model's "
                                           "metadata_props, docs/serve.md)",
                                           method);
    }
    if (s == NULL)
        return SERVE_INVALID(st, "No signature was found with the name: %s", key);
    if (strcmp(method_of(s), method) != 0)
        return SERVE_INVALID(st, "Expected %s signature method_name to be %s. Was: %s", method_noun(method), method,
                             method_of(s));
    *out = s;
    return COFFER_OK;
}

/* --------------------------------------------------------------- responses */

static enum coffer_err classification_to_proto(const struct coffer_serve_inference_result *r,
                                               struct coffer_serve__scratch *s,
                                               Tensorflow__Serving__ClassificationResult *cr)
{
    tensorflow__serving__classification_result__init(cr);
    size_t cells;
    if (!coffer_size_mul(r->examples, r->classes, &cells))
        return COFFER_E_TOO_LARGE;
    Tensorflow__Serving__Classifications **cp = coffer_serve__scratch_alloc(s, r->examples, sizeof(*cp));
    Tensorflow__Serving__Classifications *cv = coffer_serve__scratch_alloc(s, r->examples, sizeof(*cv));
    Tensorflow__Serving__Class **kp = coffer_serve__scratch_alloc(s, cells, sizeof(*kp));
    Tensorflow__Serving__Class *kv = coffer_serve__scratch_alloc(s, cells, sizeof(*kv));
    if (cp == NULL || cv == NULL || kp == NULL || kv == NULL)
        return COFFER_E_NOMEM;
    for (size_t e = 0; e < r->examples; e++) {
        tensorflow__serving__classifications__init(&cv[e]);
        for (size_t c = 0; c < r->classes; c++) {
            size_t i = e * r->classes + c;
            tensorflow__serving__class__init(&kv[i]);
            kv[i].label = SERVE_STR(r->labels != NULL ? r->labels[c] : NULL);
            kv[i].score = r->values[i];
            kp[i] = &kv[i];
        }
        cv[e].n_classes = r->classes;
        cv[e].classes = kp + e * r->classes;
        cp[e] = &cv[e];
    }
    cr->n_classifications = r->examples;
    cr->classifications = cp;
    return COFFER_OK;
}

static enum coffer_err regression_to_proto(const struct coffer_serve_inference_result *r,
                                           struct coffer_serve__scratch *s, Tensorflow__Serving__RegressionResult *rr)
{
    tensorflow__serving__regression_result__init(rr);
    Tensorflow__Serving__Regression **p = coffer_serve__scratch_alloc(s, r->examples, sizeof(*p));
    Tensorflow__Serving__Regression *v = coffer_serve__scratch_alloc(s, r->examples, sizeof(*v));
    if (p == NULL || v == NULL)
        return COFFER_E_NOMEM;
    for (size_t e = 0; e < r->examples; e++) {
        tensorflow__serving__regression__init(&v[e]);
        v[e].value = r->values[e];
        p[e] = &v[e];
    }
    rr->n_regressions = r->examples;
    rr->regressions = p;
    return COFFER_OK;
}

/* The response's ModelSpec: the resolved version, never a label. */
static enum coffer_err result_spec(const struct coffer_serve_inference_result *r, struct coffer_serve__scratch *s,
                                   Tensorflow__Serving__ModelSpec *ms)
{
    struct coffer_serve_model_spec spec = r->spec;
    spec.version_label = NULL;
    return coffer_serve__spec_to_proto(&spec, s, ms);
}

enum coffer_err coffer_serve_inference_response_encode(const struct coffer_serve_inference_result *r, uint8_t **out,
                                                       size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    struct coffer_serve__scratch s = {0};
    Tensorflow__Serving__ModelSpec ms;
    enum coffer_err e = result_spec(r, &s, &ms);
    if (e == COFFER_OK && r->classify) {
        Tensorflow__Serving__ClassificationResponse m = TENSORFLOW__SERVING__CLASSIFICATION_RESPONSE__INIT;
        Tensorflow__Serving__ClassificationResult cr;
        m.model_spec = &ms;
        if ((e = classification_to_proto(r, &s, &cr)) == COFFER_OK) {
            m.result = &cr;
            e = coffer_serve__pack(&m.base, out, out_size);
        }
    } else if (e == COFFER_OK) {
        Tensorflow__Serving__RegressionResponse m = TENSORFLOW__SERVING__REGRESSION_RESPONSE__INIT;
        Tensorflow__Serving__RegressionResult rr;
        m.model_spec = &ms;
        if ((e = regression_to_proto(r, &s, &rr)) == COFFER_OK) {
            m.result = &rr;
            e = coffer_serve__pack(&m.base, out, out_size);
        }
    }
    coffer_serve__scratch_free(&s);
    return e;
}

enum coffer_err coffer_serve_multi_response_encode(const struct coffer_serve_inference_result *r, size_t count,
                                                   uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    struct coffer_serve__scratch s = {0};
    Tensorflow__Serving__MultiInferenceResponse m = TENSORFLOW__SERVING__MULTI_INFERENCE_RESPONSE__INIT;
    Tensorflow__Serving__InferenceResult **p = coffer_serve__scratch_alloc(&s, count, sizeof(*p));
    Tensorflow__Serving__InferenceResult *v = coffer_serve__scratch_alloc(&s, count, sizeof(*v));
    Tensorflow__Serving__ModelSpec *ms = coffer_serve__scratch_alloc(&s, count, sizeof(*ms));
    enum coffer_err e = p != NULL && v != NULL && ms != NULL ? COFFER_OK : COFFER_E_NOMEM;
    for (size_t i = 0; i < count && e == COFFER_OK; i++) {
        tensorflow__serving__inference_result__init(&v[i]);
        if ((e = result_spec(&r[i], &s, &ms[i])) != COFFER_OK)
            break;
        v[i].model_spec = &ms[i];
        if (r[i].classify) {
            Tensorflow__Serving__ClassificationResult *cr = coffer_serve__scratch_alloc(&s, 1, sizeof(*cr));
            if (cr == NULL || (e = classification_to_proto(&r[i], &s, cr)) != COFFER_OK) {
                e = COFFER_E_NOMEM;
                break;
            }
            v[i].result_case = TENSORFLOW__SERVING__INFERENCE_RESULT__RESULT_CLASSIFICATION_RESULT;
            v[i].classification_result = cr;
        } else {
            Tensorflow__Serving__RegressionResult *rr = coffer_serve__scratch_alloc(&s, 1, sizeof(*rr));
            if (rr == NULL || (e = regression_to_proto(&r[i], &s, rr)) != COFFER_OK) {
                e = COFFER_E_NOMEM;
                break;
            }
            v[i].result_case = TENSORFLOW__SERVING__INFERENCE_RESULT__RESULT_REGRESSION_RESULT;
            v[i].regression_result = rr;
        }
        p[i] = &v[i];
    }
    if (e == COFFER_OK) {
        m.n_results = count;
        m.results = p;
        e = coffer_serve__pack(&m.base, out, out_size);
    }
    coffer_serve__scratch_free(&s);
    return e;
}

enum coffer_err coffer_serve_rest_inference_json(const struct coffer_serve_inference_result *r, char **out,
                                                 size_t *out_size)
{
    *out = NULL;
    if (out_size != NULL)
        *out_size = 0;
    struct coffer_buf b;
    coffer_buf_init(&b, SERVE_JSON_MAX, false);
    /* regress: the values on one line, as TF writes them; classify: an
     * example a line */
    enum coffer_err e = coffer_buf_printf(&b, "{\n    \"results\": [");
    for (size_t i = 0; i < r->examples && e == COFFER_OK; i++) {
        if (!r->classify) {
            if (i > 0)
                e = coffer_buf_put(&b, ", ", 2);
            if (e == COFFER_OK)
                e = coffer_serve__json_real(&b, r->values[i], true);
            continue;
        }
        e = coffer_buf_put(&b, i ? ",\n        " : "\n        ", i ? 10 : 9);
        if (e == COFFER_OK)
            e = coffer_buf_put_u8(&b, '[');
        for (size_t c = 0; c < r->classes && e == COFFER_OK; c++) {
            const char *label = r->labels != NULL && r->labels[c] != NULL ? r->labels[c] : "";
            e = coffer_buf_put(&b, c ? ", [" : "[", c ? 3 : 1);
            if (e == COFFER_OK)
                e = coffer_serve__json_string(&b, label, strlen(label));
            if (e == COFFER_OK)
                e = coffer_buf_put(&b, ", ", 2);
            if (e == COFFER_OK)
                e = coffer_serve__json_real(&b, r->values[i * r->classes + c], true);
            if (e == COFFER_OK)
                e = coffer_buf_put_u8(&b, ']');
        }
        if (e == COFFER_OK)
            e = coffer_buf_put_u8(&b, ']');
    }
    if (e == COFFER_OK)
        e = r->classify ? coffer_buf_put(&b, "\n    ]\n}\n", 9) : coffer_buf_put(&b, "]\n}\n", 4);
    if (e != COFFER_OK) {
        coffer_memzero(b.data, b.size);
        coffer_buf_free(&b);
        return e;
    }
    return coffer_serve__buf_finish(&b, out, out_size);
}
