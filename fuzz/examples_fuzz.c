/* examples_fuzz.c — tf.Example inputs (Classify, Regress, MultiInference,
 * Predict on their signatures): the same bytes as a ClassificationRequest, a
 * MultiInferenceRequest, serialized Examples in a string tensor and a REST
 * :classify body, under small limits. Every refusal carries a
 * canonical code and a message. Whatever is accepted becomes model inputs
 * for two fixed two-input signatures (whose tensors must have the promised
 * shape: [examples, dims[1..]]), and answers built from it (labels taken
 * from the feature names, model specs from the request) are encoded: the
 * protobuf answers unpack back to the same specs, the REST answer parses
 * as JSON. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/serve.h"
#include "serve_limits.h"
#include "tensorflow_serving/apis/inference.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct coffer_serve_tensor_info sig_a[] = {
    {.alias = "x", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 2, .dims = {-1, -1}},
    {.alias = "ids", .dtype = COFFER_SERVE_DT_INT64, .rank = 1, .dims = {-1}},
};
static const struct coffer_serve_tensor_info sig_b[] = {
    {.alias = "x", .dtype = COFFER_SERVE_DT_DOUBLE, .rank = 3, .dims = {-1, 2, 2}},
    {.alias = "ids", .dtype = COFFER_SERVE_DT_INT32, .rank = 0},
};

#define MAX_LABELS 16

static void check_refusal(const struct coffer_serve_status *st)
{
    if (st->code == COFFER_SERVE_OK || st->message[0] == '\0')
        abort();
}

static void to_tensors(const struct coffer_serve_examples *ex, const struct coffer_serve_tensor_info *sig,
                       const struct coffer_serve_limits *lim)
{
    struct coffer_serve_tensor out[2];
    struct coffer_serve_status st;
    if (coffer_serve_examples_to_tensors(ex, sig, 2, lim, out, &st) != COFFER_OK) {
        check_refusal(&st);
        for (size_t i = 0; i < 2; i++)
            if (out[i].data != NULL || out[i].name != NULL)
                abort(); /* on failure nothing needs freeing */
        return;
    }
    for (size_t i = 0; i < 2; i++) {
        const struct coffer_serve_tensor *t = &out[i];
        size_t rank = sig[i].rank < 1 ? 1 : sig[i].rank;
        if (strcmp(t->name, sig[i].alias) != 0 || t->dtype != sig[i].dtype || t->rank != rank ||
            t->dims[0] != (int64_t)ex->count)
            abort();
        size_t count = 1;
        for (size_t d = 0; d < t->rank; d++) {
            if (d > 0 && sig[i].dims[d] >= 0 && t->dims[d] != sig[i].dims[d])
                abort();
            count *= (size_t)t->dims[d];
        }
        if (t->count != count || t->size != count * coffer_serve_dtype_size(t->dtype))
            abort();
        coffer_serve_tensor_free(&out[i]);
    }
}

/* Answers for ex under spec: classify with the first example's feature
 * names as labels, and regress. */
static void answer(const struct coffer_serve_examples *ex, const struct coffer_serve_model_spec *spec)
{
    const char *labels[MAX_LABELS];
    float values[MAX_LABELS];
    size_t classes = 0;
    if (ex->count > 0)
        for (; classes < ex->examples[0].count && classes < MAX_LABELS; classes++) {
            labels[classes] = ex->examples[0].features[classes].name;
            values[classes] = (float)classes / 3.0f;
        }
    struct coffer_serve_inference_result r[2] = {
        {.spec = *spec, .classify = true, .examples = 1, .classes = classes, .labels = labels, .values = values},
        {.spec = *spec, .classify = false, .examples = classes, .values = values},
    };
    for (size_t i = 0; i < 2; i++) {
        char *js;
        size_t n;
        if (coffer_serve_rest_inference_json(&r[i], &js, &n) == COFFER_OK) {
            if (strlen(js) != n)
                abort();
            json_error_t e;
            json_t *v = json_loadb(js, n, 0, &e);
            if (v == NULL)
                abort(); /* what coffer writes is JSON */
            json_decref(v);
            coffer_free(js);
        }
        uint8_t *pb;
        if (coffer_serve_inference_response_encode(&r[i], &pb, &n) == COFFER_OK)
            coffer_free(pb);
    }
    uint8_t *pb;
    size_t n;
    if (coffer_serve_multi_response_encode(r, 2, &pb, &n) != COFFER_OK)
        return;
    Tensorflow__Serving__MultiInferenceResponse *m = tensorflow__serving__multi_inference_response__unpack(NULL, n, pb);
    if (m == NULL || m->n_results != 2)
        abort();
    for (size_t i = 0; i < 2; i++) {
        const Tensorflow__Serving__ModelSpec *ms = m->results[i]->model_spec;
        /* names are protobuf strings: compared up to a NUL they may hold */
        if (ms == NULL || strcmp(ms->name, spec->name != NULL ? spec->name : "") != 0 ||
            (spec->has_version &&
             (ms->version_choice_case != TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION ||
              ms->version->value != spec->version)))
            abort();
    }
    tensorflow__serving__multi_inference_response__free_unpacked(m, NULL);
    coffer_free(pb);
}

static void use(const struct coffer_serve_examples *ex, const struct coffer_serve_model_spec *spec,
                const struct coffer_serve_limits *lim)
{
    to_tensors(ex, sig_a, lim);
    to_tensors(ex, sig_b, lim);
    answer(ex, spec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct coffer_serve_limits lim;
    fuzz_serve_limits(&lim);
    lim.max_message_size = 1 << 20;
    struct coffer_serve_status st;
    struct coffer_serve_model_spec spec;
    struct coffer_serve_examples ex;

    if (coffer_serve_example_request_decode(data, size, &lim, &spec, &ex, &st) == COFFER_OK) {
        if (ex.count == 0)
            abort(); /* `Input is empty.` */
        use(&ex, &spec, &lim);
        coffer_serve_examples_free(&ex);
        coffer_serve_model_spec_free(&spec);
    } else {
        check_refusal(&st);
    }

    struct coffer_serve_multi_request m;
    if (coffer_serve_multi_request_decode(data, size, &lim, &m, &st) == COFFER_OK) {
        if (m.task_count == 0 || m.input.count == 0)
            abort();
        for (size_t i = 0; i < m.task_count; i++)
            if (strcmp(m.tasks[i].method_name, COFFER_SERVE_CLASSIFY_METHOD) != 0 &&
                strcmp(m.tasks[i].method_name, COFFER_SERVE_REGRESS_METHOD) != 0)
                abort();
        use(&m.input, &m.tasks[0].spec, &lim);
        coffer_serve_multi_request_free(&m);
    } else {
        check_refusal(&st);
    }

    /* a Predict on a classify signature: after the first byte, 1-3
     * serialized Examples (the byte picks how many; equal parts) */
    if (size > 0) {
        struct coffer_serve_tensor t;
        int64_t n = data[0] % 3 + 1;
        size_t part = (size - 1) / (size_t)n;
        if (coffer_serve_tensor_init(&t, "inputs", COFFER_SERVE_DT_STRING, 1, &n) != COFFER_OK)
            return 0;
        bool set = true;
        for (int64_t i = 0; i < n && set; i++)
            set = coffer_serve_tensor_set_string(&t, (size_t)i, data + 1 + (size_t)i * part,
                                                 i + 1 == n ? size - 1 - (size_t)i * part : part) == COFFER_OK;
        if (set && coffer_serve_examples_from_tensor(&t, &lim, &ex, &st) == COFFER_OK) {
            if (ex.count != (size_t)n || ex.context.count != 0)
                abort();
            struct coffer_serve_model_spec pspec = {.name = "m", .signature_name = "classification"};
            use(&ex, &pspec, &lim);
            coffer_serve_examples_free(&ex);
        } else if (set) {
            check_refusal(&st);
        }
        coffer_serve_tensor_free(&t);
    }

    char *sig;
    if (coffer_serve_rest_examples_parse(data, size, &lim, &sig, &ex, &st) == COFFER_OK) {
        struct coffer_serve_model_spec rest_spec = {.name = "m", .signature_name = sig};
        use(&ex, &rest_spec, &lim);
        coffer_serve_examples_free(&ex);
        coffer_free(sig);
    } else {
        check_refusal(&st);
    }
    return 0;
}
