/* predict_request_fuzz.c — protobuf PredictRequest bytes -> tensors, under
 * small limits, then the signature checks and a response encode/decode
 * round trip of whatever was accepted (which must come back identical).
 * The in-place decoder (predict_view.c) and protobuf-c's unpack alone must
 * give the same answer: the same error and status, or the same request.
 * The same bytes also go through the TensorProto, GetModelMetadataRequest,
 * GetModelStatusRequest and ReloadConfigRequest decoders. */
#include <stdlib.h>
#include <string.h>

#include "coffer/serve.h"
#include "serve_limits.h"
#include "../src/serve/serve_int.h" /* both decoding paths */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct coffer_serve_tensor_info ins[] = {
    {.alias = "input", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 4, .dims = {-1, 224, 224, 3}},
    {.alias = "ids", .dtype = COFFER_SERVE_DT_INT64, .rank = 1, .dims = {-1}},
};
static const struct coffer_serve_tensor_info outs[] = {
    {.alias = "probs", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 2, .dims = {-1, 1000}},
};
static const struct coffer_serve_signature sig = {
    .key = "serving_default", .inputs = ins, .input_count = 2, .outputs = outs, .output_count = 1};

static void same_tensors(const struct coffer_serve_tensor *a, const struct coffer_serve_tensor *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].dtype != b[i].dtype || a[i].count != b[i].count || a[i].rank != b[i].rank ||
            strcmp(a[i].name, b[i].name) != 0)
            abort();
        if (a[i].dtype == COFFER_SERVE_DT_STRING) {
            const struct coffer_serve_bytes *x = a[i].data, *y = b[i].data;
            for (size_t k = 0; k < a[i].count; k++)
                if (x[k].size != y[k].size || (x[k].size && memcmp(x[k].data, y[k].data, x[k].size) != 0))
                    abort();
        } else if (memcmp(a[i].data, b[i].data, a[i].size) != 0) {
            abort();
        }
    }
}

static bool same_str(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* The in-place path's answer (a, sa, ra) is protobuf-c's (b, sb, rb). */
static void same_answer(const struct coffer_serve_predict_request *a, const struct coffer_serve_status *sa,
                        enum coffer_err ra, const struct coffer_serve_predict_request *b,
                        const struct coffer_serve_status *sb, enum coffer_err rb)
{
    if (ra != rb || sa->code != sb->code || strcmp(sa->message, sb->message) != 0)
        abort();
    if (ra != COFFER_OK)
        return;
    if (!same_str(a->spec.name, b->spec.name) || !same_str(a->spec.signature_name, b->spec.signature_name) ||
        !same_str(a->spec.version_label, b->spec.version_label) || a->spec.has_version != b->spec.has_version ||
        a->spec.version != b->spec.version || a->output_filter_count != b->output_filter_count ||
        a->input_count != b->input_count)
        abort();
    for (size_t i = 0; i < a->output_filter_count; i++)
        if (strcmp(a->output_filter[i], b->output_filter[i]) != 0)
            abort();
    for (size_t i = 0; i < a->input_count; i++)
        if (memcmp(a->inputs[i].dims, b->inputs[i].dims, sizeof(a->inputs[i].dims)) != 0 ||
            a->inputs[i].size != b->inputs[i].size)
            abort();
    same_tensors(a->inputs, b->inputs, a->input_count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct coffer_serve_limits lim;
    fuzz_serve_limits(&lim);
    struct coffer_serve_status st, st_slow;
    struct coffer_serve_predict_request req, slow;
    enum coffer_err r = coffer_serve__predict_request_decode(data, size, &lim, true, &req, &st);
    enum coffer_err r_slow = coffer_serve__predict_request_decode(data, size, &lim, false, &slow, &st_slow);
    same_answer(&req, &st, r, &slow, &st_slow, r_slow);
    if (r_slow == COFFER_OK)
        coffer_serve_predict_request_free(&slow);
    if (r == COFFER_OK) {
        const char *names[64];
        for (size_t i = 0; i < req.input_count; i++)
            names[i] = req.inputs[i].name;
        (void)coffer_serve_signature_check_inputs(&sig, names, req.input_count, &st);
        (void)coffer_serve_signature_check_filter(&sig, req.output_filter, req.output_filter_count, &st);
        for (int content = 0; content < 2; content++) {
            uint8_t *out;
            size_t n;
            if (coffer_serve_predict_response_encode(&req.spec, req.inputs, req.input_count, content, &out, &n) !=
                COFFER_OK)
                continue;
            struct coffer_serve_model_spec spec;
            struct coffer_serve_tensor *ts;
            size_t cnt;
            if (coffer_serve_predict_response_decode(out, n, &lim, &spec, &ts, &cnt, &st) != COFFER_OK ||
                cnt != req.input_count)
                abort();
            same_tensors(req.inputs, ts, cnt);
            coffer_serve_tensors_free(ts, cnt);
            coffer_serve_model_spec_free(&spec);
            coffer_free(out);
        }
        coffer_serve_predict_request_free(&req);
    }
    struct coffer_serve_tensor t;
    if (coffer_serve_tensor_decode(data, size, "x", &lim, &t, &st) == COFFER_OK)
        coffer_serve_tensor_free(&t);
    struct coffer_serve_model_spec spec;
    if (coffer_serve_metadata_request_decode(data, size, &spec, &st) == COFFER_OK)
        coffer_serve_model_spec_free(&spec);
    if (coffer_serve_status_request_decode(data, size, &spec, &st) == COFFER_OK)
        coffer_serve_model_spec_free(&spec);
    struct coffer_serve_config cfg;
    if (coffer_serve_reload_request_decode(data, size, &cfg, &st) == COFFER_OK)
        coffer_serve_config_free(&cfg);
    return 0;
}
