/*
 * test_rest.c — the REST side of serve/: URL grammar and its exact
 * "Malformed request" messages, the :predict body in row and columnar form
 * (typing from the signature, b64, NaN/Infinity, ragged lists, TF's error
 * messages), the response writer's number format, and the status, metadata
 * and error JSON documents (parsed back with jansson to check their shape).
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/serve.h"
#include "../../src/serve/serve_int.h" /* the number writer */

/* ------------------------------------------------------------------- URLs */

static enum coffer_err route(const char *method, const char *path, struct coffer_serve_rest_route *r,
                             struct coffer_serve_status *st)
{
    return coffer_serve_rest_route_parse(method, path, strlen(path), r, st);
}

static void test_url_grammar(void **state)
{
    (void)state;
    struct coffer_serve_rest_route r;
    struct coffer_serve_status st;

    assert_int_equal(route("POST", "/v1/models/resnet:predict", &r, &st), COFFER_OK);
    assert_int_equal(r.kind, COFFER_SERVE_REST_PREDICT);
    assert_string_equal(r.name, "resnet");
    assert_false(r.has_version);
    assert_null(r.label);
    coffer_serve_rest_route_free(&r);

    assert_int_equal(route("POST", "/V1/Models/resnet/VERSIONS/42:Predict", &r, &st), COFFER_OK);
    assert_int_equal(r.kind, COFFER_SERVE_REST_PREDICT);
    assert_true(r.has_version);
    assert_int_equal(r.version, 42);
    coffer_serve_rest_route_free(&r);

    assert_int_equal(route("POST", "/v1/models/my%20model/labels/can%2Fary:classify", &r, &st), COFFER_OK);
    assert_int_equal(r.kind, COFFER_SERVE_REST_CLASSIFY);
    assert_string_equal(r.name, "my model");
    assert_string_equal(r.label, "can/ary");
    coffer_serve_rest_route_free(&r);

    assert_int_equal(route("POST", "/v1/models/m:regress", &r, &st), COFFER_OK);
    assert_int_equal(r.kind, COFFER_SERVE_REST_REGRESS);
    coffer_serve_rest_route_free(&r);

    assert_int_equal(route("GET", "/v1/models/m", &r, &st), COFFER_OK);
    assert_int_equal(r.kind, COFFER_SERVE_REST_STATUS);
    assert_string_equal(r.name, "m");
    coffer_serve_rest_route_free(&r);

    assert_int_equal(route("GET", "/v1/models/m/versions/3?x=1", &r, &st), COFFER_OK);
    assert_int_equal(r.kind, COFFER_SERVE_REST_STATUS);
    assert_int_equal(r.version, 3);
    coffer_serve_rest_route_free(&r);

    assert_int_equal(route("GET", "/v1/models/m/labels/stable/metadata", &r, &st), COFFER_OK);
    assert_int_equal(r.kind, COFFER_SERVE_REST_METADATA);
    assert_string_equal(r.label, "stable");
    coffer_serve_rest_route_free(&r);

    assert_int_equal(route("GET", "/v1/models/m/metadata", &r, &st), COFFER_OK);
    assert_int_equal(r.kind, COFFER_SERVE_REST_METADATA);
    coffer_serve_rest_route_free(&r);

    /* not under /v1/: not ours (the HTTP layer's bare 404) */
    assert_int_equal(route("GET", "/monitoring/prometheus/metrics", &r, &st), COFFER_OK);
    assert_int_equal(r.kind, COFFER_SERVE_REST_NONE);
    assert_int_equal(route("GET", "/v2/models/m", &r, &st), COFFER_OK);
    assert_int_equal(r.kind, COFFER_SERVE_REST_NONE);
}

static void test_url_errors(void **state)
{
    (void)state;
    struct coffer_serve_rest_route r;
    struct coffer_serve_status st;
    static const struct {
        const char *method, *path, *message;
    } cases[] = {
        {"POST", "/v1/models/foo/metadata", "Malformed request: POST /v1/models/foo/metadata"},
        {"GET", "/v1/models/foo/label/x", "Malformed request: GET /v1/models/foo/label/x"},
        {"GET", "/v1/models/foo/versions/x1", "Malformed request: GET /v1/models/foo/versions/x1"},
        {"PUT", "/v1/models/foo", "Malformed request: PUT /v1/models/foo"},
        {"GET", "/v1/models/foo:predict", "Malformed request: GET /v1/models/foo:predict"},
        {"POST", "/v1/models/foo:explain", "Malformed request: POST /v1/models/foo:explain"},
        {"POST", "/v1/models/foo/versions/1/labels/x:predict",
         "Malformed request: POST /v1/models/foo/versions/1/labels/x:predict"},
        {"GET", "/v1/models/foo/versions/", "Malformed request: GET /v1/models/foo/versions/"},
        {"GET", "/v1/models/f%zz", "Malformed request: GET /v1/models/f%zz"},
        {"GET", "/v1/models", "Missing model name in request."},
        {"GET", "/v1/models/versions/3", "Missing model name in request."},
        {"GET", "/v1/models/labels/x", "Missing model name in request."},
        {"GET", "/v1/models/m/versions/99999999999999999999",
         "Failed to convert version: 99999999999999999999 to numeric."},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(route(cases[i].method, cases[i].path, &r, &st), COFFER_E_MALFORMED);
        assert_int_equal(st.code, COFFER_SERVE_INVALID_ARGUMENT);
        assert_string_equal(st.message, cases[i].message);
        assert_null(r.name);
    }
    /* NUL, raw or escaped, never reaches a name */
    assert_int_equal(coffer_serve_rest_route_parse("GET", "/v1/models/a\0b", 14, &r, &st), COFFER_E_MALFORMED);
    assert_null(r.name);
    assert_int_equal(route("GET", "/v1/models/a%00b", &r, &st), COFFER_E_MALFORMED);
    assert_null(r.name);
    /* the largest int64 is a version */
    assert_int_equal(route("GET", "/v1/models/m/versions/9223372036854775807", &r, &st), COFFER_OK);
    assert_int_equal(r.version, INT64_MAX);
    coffer_serve_rest_route_free(&r);
    /* the status pattern's "labels" with a name called labels */
    assert_int_equal(route("GET", "/v1/models/labels", &r, &st), COFFER_OK);
    assert_string_equal(r.name, "labels");
    coffer_serve_rest_route_free(&r);
}

/* -------------------------------------------------------------- predict */

static const struct coffer_serve_tensor_info one_in[] = {
    {.alias = "x", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 2, .dims = {-1, 3}},
};
static const struct coffer_serve_tensor_info two_in[] = {
    {.alias = "ids", .dtype = COFFER_SERVE_DT_INT32, .rank = 1, .dims = {-1}},
    {.alias = "img_bytes", .dtype = COFFER_SERVE_DT_STRING, .rank = 1, .dims = {-1}},
};
static const struct coffer_serve_tensor_info half_in[] = {
    {.alias = "h", .dtype = COFFER_SERVE_DT_HALF, .rank = 1, .dims = {-1}},
};
static const struct coffer_serve_tensor_info outs[] = {
    {.alias = "y", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 1, .dims = {-1}},
};
static const struct coffer_serve_signature sigs[] = {
    {.key = "serving_default", .inputs = one_in, .input_count = 1, .outputs = outs, .output_count = 1},
    {.key = "two", .inputs = two_in, .input_count = 2, .outputs = outs, .output_count = 1},
    {.key = "half", .inputs = half_in, .input_count = 1, .outputs = outs, .output_count = 1},
};

static enum coffer_err predict(const char *body, struct coffer_serve_rest_predict *p, struct coffer_serve_status *st)
{
    return coffer_serve_rest_predict_parse(body, strlen(body), sigs, 3, NULL, p, st);
}

static void test_predict_row(void **state)
{
    (void)state;
    struct coffer_serve_rest_predict p;
    struct coffer_serve_status st;
    assert_int_equal(predict("{\"instances\": [[1, 2.5, -3], [4, 5, 6e1]]}", &p, &st), COFFER_OK);
    assert_int_equal(p.format, COFFER_SERVE_REST_ROW);
    assert_string_equal(p.signature->key, "serving_default");
    assert_int_equal(p.input_count, 1);
    struct coffer_serve_tensor *t = &p.inputs[0];
    assert_string_equal(t->name, "x");
    assert_int_equal(t->rank, 2);
    assert_int_equal(t->dims[0], 2);
    assert_int_equal(t->dims[1], 3);
    float want[] = {1, 2.5f, -3, 4, 5, 60};
    assert_memory_equal(t->data, want, sizeof(want));
    coffer_serve_rest_predict_free(&p);

    /* one input, named per instance: the same tensor */
    assert_int_equal(predict("{\"instances\": [{\"x\": [1, 2.5, -3]}, {\"x\": [4, 5, 60]}]}", &p, &st), COFFER_OK);
    assert_int_equal(p.inputs[0].dims[0], 2);
    assert_int_equal(p.inputs[0].dims[1], 3);
    assert_memory_equal(p.inputs[0].data, want, sizeof(want));
    coffer_serve_rest_predict_free(&p);

    /* several inputs: one object per instance, b64 for binary */
    assert_int_equal(predict("{\"signature_name\": \"two\", \"instances\": ["
                             "{\"ids\": 1, \"img_bytes\": {\"b64\": \"AAEC\"}},"
                             "{\"ids\": 2, \"img_bytes\": \"plain\"}]}",
                             &p, &st),
                     COFFER_OK);
    assert_string_equal(p.signature_name, "two");
    assert_int_equal(p.input_count, 2);
    assert_int_equal(p.inputs[0].dims[0], 2);
    assert_int_equal(((int32_t *)p.inputs[0].data)[1], 2);
    const struct coffer_serve_bytes *s = p.inputs[1].data;
    assert_int_equal(s[0].size, 3);
    assert_memory_equal(s[0].data, "\0\1\2", 3);
    assert_int_equal(s[1].size, 5);
    assert_memory_equal(s[1].data, "plain", 5);
    coffer_serve_rest_predict_free(&p);
}

static void test_predict_columnar(void **state)
{
    (void)state;
    struct coffer_serve_rest_predict p;
    struct coffer_serve_status st;
    assert_int_equal(predict("{\"inputs\": [[NaN, Infinity, -Infinity]]}", &p, &st), COFFER_OK);
    assert_int_equal(p.format, COFFER_SERVE_REST_COLUMNAR);
    const float *f = p.inputs[0].data;
    assert_true(isnan(f[0]));
    assert_true(isinf(f[1]) && f[1] > 0);
    assert_true(isinf(f[2]) && f[2] < 0);
    coffer_serve_rest_predict_free(&p);

    /* the tokens inside strings are left alone */
    assert_int_equal(predict("{\"signature_name\": \"two\", \"inputs\": {\"ids\": [7], \"img_bytes\": [\"NaN\"]}}",
                             &p, &st),
                     COFFER_OK);
    const struct coffer_serve_bytes *s = p.inputs[1].data;
    assert_int_equal(s[0].size, 3);
    assert_memory_equal(s[0].data, "NaN", 3);
    coffer_serve_rest_predict_free(&p);

    /* a scalar is rank 0; inputs need not share dimension 0 */
    assert_int_equal(predict("{\"signature_name\": \"two\", \"inputs\": {\"ids\": 7, \"img_bytes\": {\"b64\": \"\"}}}",
                             &p, &st),
                     COFFER_OK);
    assert_int_equal(p.inputs[0].rank, 0);
    assert_int_equal(p.inputs[0].count, 1);
    assert_int_equal(*(int32_t *)p.inputs[0].data, 7);
    assert_int_equal(p.inputs[1].rank, 0);
    coffer_serve_rest_predict_free(&p);

    /* empty lists give a zero dimension */
    assert_int_equal(predict("{\"inputs\": [[], []]}", &p, &st), COFFER_OK);
    assert_int_equal(p.inputs[0].rank, 2);
    assert_int_equal(p.inputs[0].dims[1], 0);
    assert_int_equal(p.inputs[0].count, 0);
    coffer_serve_rest_predict_free(&p);
}

static void test_predict_errors(void **state)
{
    (void)state;
    struct coffer_serve_rest_predict p;
    struct coffer_serve_status st;
    static const struct {
        const char *body;
        enum coffer_serve_code code;
        const char *message; /* exact, or a prefix when ending in '*' */
    } cases[] = {
        {"", COFFER_SERVE_INVALID_ARGUMENT, "JSON Parse error: The document is empty"},
        {"  \n", COFFER_SERVE_INVALID_ARGUMENT, "JSON Parse error: The document is empty"},
        {"{\"instances\": [1,", COFFER_SERVE_INVALID_ARGUMENT, "JSON Parse error: *"},
        {"{}", COFFER_SERVE_INVALID_ARGUMENT, "Missing 'inputs' or 'instances' key"},
        {"{\"inputs\": [1], \"instances\": [1]}", COFFER_SERVE_INVALID_ARGUMENT,
         "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"},
        {"{\"signature_name\": 3, \"inputs\": [1]}", COFFER_SERVE_INVALID_ARGUMENT,
         "'signature_name' key must be a string value."},
        {"{\"signature_name\": \"nope\", \"inputs\": [1]}", COFFER_SERVE_FAILED_PRECONDITION,
         "Serving signature key \"nope\" not found."},
        {"{\"signature_name\": \"two\", \"instances\": [{\"ids\": 1.0, \"img_bytes\": \"a\"}]}",
         COFFER_SERVE_INVALID_ARGUMENT, "JSON Value: 1.0 Type: Number is not of expected type: int32"},
        {"{\"signature_name\": \"two\", \"inputs\": {\"ids\": [3000000000], \"img_bytes\": [\"a\"]}}",
         COFFER_SERVE_INVALID_ARGUMENT, "JSON Value: 3000000000 Type: Number is not of expected type: int32"},
        {"{\"inputs\": [[\"a\"]]}", COFFER_SERVE_INVALID_ARGUMENT,
         "JSON Value: \"a\" Type: String is not of expected type: float"},
        {"{\"inputs\": [{\"b64\": \"AAAA\"}]}", COFFER_SERVE_INVALID_ARGUMENT,
         "JSON Value: {\"b64\":\"AAAA\"} Type: Object is not of expected type: float"},
        {"{\"signature_name\": \"two\", \"inputs\": {\"ids\": [1], \"img_bytes\": [{\"b64\": \"_-8=\"}]}}",
         COFFER_SERVE_INVALID_ARGUMENT, "Unable to base64 decode*"},
        {"{\"instances\": [[1, 2], [3]]}", COFFER_SERVE_INVALID_ARGUMENT,
         "Failed to process input: x. Error: expecting tensors in list to have the same shape*"},
        {"{\"instances\": [[1, 2], 3]}", COFFER_SERVE_INVALID_ARGUMENT,
         "Failed to process input: x. Error: expecting tensors in list to have the same shape*"},
        {"{\"inputs\": [1, [2]]}", COFFER_SERVE_INVALID_ARGUMENT,
         "Failed to process input: x. Error: expecting tensors in list to have the same shape*"},
        {"{\"instances\": []}", COFFER_SERVE_INVALID_ARGUMENT, "Expecting 'instances' to be a non-empty list/array"},
        {"{\"instances\": 5}", COFFER_SERVE_INVALID_ARGUMENT, "Expecting 'instances' to be an list/array"},
        {"{\"signature_name\": \"two\", \"instances\": [{\"ids\": 1}]}", COFFER_SERVE_INVALID_ARGUMENT,
         "input size does not match signature: 1!=2 len({ids}) != len({ids,img_bytes}). Sent extra: {}. Missing but "
         "required: {img_bytes}."},
        {"{\"signature_name\": \"two\", \"instances\": [{\"ids\": 1, \"img_bytes\": \"a\"}, [1]]}",
         COFFER_SERVE_INVALID_ARGUMENT, "Expecting object but got list at item 1 of 'instances' list"},
        {"{\"instances\": [[1,2,3], {\"x\": [1,2,3]}]}", COFFER_SERVE_INVALID_ARGUMENT,
         "Expecting value/list but got object at item 1 of 'instances' list"},
        {"{\"signature_name\": \"half\", \"inputs\": [1]}", COFFER_SERVE_UNIMPLEMENTED,
         "Conversion of JSON Value to type: half is not supported (input: h)"},
        {"{\"inputs\": {\"x\": [[1, 2, 3]], \"z\": 1}}", COFFER_SERVE_INVALID_ARGUMENT,
         "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. Missing but required: {}."},
        {"{\"instances\": [{\"x\": [1, 2, 3]}, {\"x\": [1, 2]}]}", COFFER_SERVE_INVALID_ARGUMENT,
         "Failed to process input: x. Error: expecting tensors in list to have the same shape*"},
        {"[1]", COFFER_SERVE_INVALID_ARGUMENT, "JSON Parse error: expecting a JSON object at the top level"},
        {"{\"inputs\": [1], \"inputs\": [2]}", COFFER_SERVE_INVALID_ARGUMENT, "JSON Parse error: *"},
        {"{\"inputs\": [NaNa]}", COFFER_SERVE_INVALID_ARGUMENT, "JSON Parse error: *"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum coffer_err r = predict(cases[i].body, &p, &st);
        if (r == COFFER_OK)
            fail_msg("case %zu accepted: %s", i, cases[i].body);
        assert_null(p.inputs);
        if (st.code != cases[i].code)
            fail_msg("case %zu: code %s, want %s (%s)", i, coffer_serve_code_name(st.code),
                     coffer_serve_code_name(cases[i].code), st.message);
        size_t n = strlen(cases[i].message);
        if (cases[i].message[n - 1] == '*') {
            if (strncmp(st.message, cases[i].message, n - 1) != 0)
                fail_msg("case %zu: message \"%s\", want prefix \"%.*s\"", i, st.message, (int)n - 1, cases[i].message);
        } else if (strcmp(st.message, cases[i].message) != 0) {
            fail_msg("case %zu: message \"%s\", want \"%s\"", i, st.message, cases[i].message);
        }
    }
    assert_int_equal(coffer_serve_code_http(COFFER_SERVE_UNIMPLEMENTED), 501);
}

static void test_predict_limits(void **state)
{
    (void)state;
    struct coffer_serve_limits lim;
    coffer_serve_limits_default(&lim);
    lim.max_tensor_size = 8;
    struct coffer_serve_rest_predict p;
    struct coffer_serve_status st;
    const char *body = "{\"inputs\": [1, 2, 3]}";
    assert_int_equal(coffer_serve_rest_predict_parse(body, strlen(body), sigs, 3, &lim, &p, &st), COFFER_E_MALFORMED);
    assert_non_null(strstr(st.message, "over the size limit"));
    lim.max_tensor_size = 12;
    assert_int_equal(coffer_serve_rest_predict_parse(body, strlen(body), sigs, 3, &lim, &p, &st), COFFER_OK);
    coffer_serve_rest_predict_free(&p);
    lim.max_rank = 2;
    body = "{\"inputs\": [[[1]]]}";
    assert_int_equal(coffer_serve_rest_predict_parse(body, strlen(body), sigs, 3, &lim, &p, &st), COFFER_E_MALFORMED);
    assert_non_null(strstr(st.message, "nested deeper than 2"));
}

/* ------------------------------------------------------------- responses */

static json_t *parse_back(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, 0, &e);
    if (v == NULL)
        fail_msg("not JSON (%s): %s", e.text, s);
    return v;
}

static void test_predict_response(void **state)
{
    (void)state;
    struct coffer_serve_tensor t[2];
    int64_t d2[] = {2, 2}, d1[] = {2};
    assert_int_equal(coffer_serve_tensor_init(&t[0], "scores", COFFER_SERVE_DT_FLOAT, 2, d2), COFFER_OK);
    float f[] = {3.0f, 0.1f, NAN, -INFINITY};
    memcpy(t[0].data, f, sizeof(f));
    assert_int_equal(coffer_serve_tensor_init(&t[1], "img_bytes", COFFER_SERVE_DT_STRING, 1, d1), COFFER_OK);
    assert_int_equal(coffer_serve_tensor_set_string(&t[1], 0, "\x00\x01\x02", 3), COFFER_OK);
    assert_int_equal(coffer_serve_tensor_set_string(&t[1], 1, "ok", 2), COFFER_OK);
    char *out;
    size_t n;
    struct coffer_serve_status st;

    /* one output, columnar: the bare tensor; TF's number format */
    assert_int_equal(coffer_serve_rest_predict_response(COFFER_SERVE_REST_COLUMNAR, t, 1, &out, &n, &st), COFFER_OK);
    assert_int_equal(strlen(out), n);
    assert_non_null(strstr(out, "\"outputs\": [[3.0, 0.1], [NaN, -Infinity]]"));
    coffer_free(out);

    /* row, two outputs: one object per batch item, _bytes as b64 */
    assert_int_equal(coffer_serve_rest_predict_response(COFFER_SERVE_REST_ROW, t, 2, &out, &n, &st), COFFER_OK);
    assert_non_null(strstr(out, "{\"scores\": [3.0, 0.1], \"img_bytes\": {\"b64\": \"AAEC\"}}"));
    assert_non_null(strstr(out, "{\"scores\": [NaN, -Infinity], \"img_bytes\": {\"b64\": \"b2s=\"}}"));
    coffer_free(out);

    /* row, one output: bare values per item; and the result is valid JSON once finite */
    float g[] = {3.5f, 4.0f, 5.5f, 1e-7f};
    memcpy(t[0].data, g, sizeof(g));
    assert_int_equal(coffer_serve_rest_predict_response(COFFER_SERVE_REST_ROW, t, 1, &out, &n, &st), COFFER_OK);
    json_t *v = parse_back(out);
    json_t *pr = json_object_get(v, "predictions");
    assert_int_equal(json_array_size(pr), 2);
    assert_true(json_real_value(json_array_get(json_array_get(pr, 0), 0)) == 3.5);
    assert_true((float)json_real_value(json_array_get(json_array_get(pr, 1), 1)) == 1e-7f);
    json_decref(v);
    assert_non_null(strstr(out, "[3.5, 4.0]"));
    coffer_free(out);

    /* a float that needs 9 digits keeps them */
    float h = 0.1f + 0.2f;
    memcpy(t[0].data, &h, 4);
    assert_int_equal(coffer_serve_rest_predict_response(COFFER_SERVE_REST_COLUMNAR, t, 1, &out, &n, &st), COFFER_OK);
    v = parse_back(out);
    assert_true((float)json_real_value(json_array_get(json_array_get(json_object_get(v, "outputs"), 0), 0)) == h);
    json_decref(v);
    coffer_free(out);

    /* inconsistent batch sizes and scalars in row form */
    coffer_serve_tensor_free(&t[1]);
    int64_t d3[] = {3};
    assert_int_equal(coffer_serve_tensor_init(&t[1], "classes", COFFER_SERVE_DT_INT64, 1, d3), COFFER_OK);
    assert_int_equal(coffer_serve_rest_predict_response(COFFER_SERVE_REST_ROW, t, 2, &out, &n, &st), COFFER_E_MALFORMED);
    assert_string_equal(st.message, "Tensor name: classes has inconsistent batch size: 3 expecting: 2");
    /* columnar does not care; int64 is a JSON number here */
    ((int64_t *)t[1].data)[2] = -9;
    assert_int_equal(coffer_serve_rest_predict_response(COFFER_SERVE_REST_COLUMNAR, t, 2, &out, &n, &st), COFFER_OK);
    assert_non_null(strstr(out, "\"classes\": [0, 0, -9]"));
    coffer_free(out);
    coffer_serve_tensor_free(&t[1]);
    assert_int_equal(coffer_serve_tensor_init(&t[1], "s", COFFER_SERVE_DT_INT32, 0, NULL), COFFER_OK);
    assert_int_equal(coffer_serve_rest_predict_response(COFFER_SERVE_REST_ROW, &t[1], 1, &out, &n, &st),
                     COFFER_E_MALFORMED);
    assert_string_equal(st.message, "Tensor name: s has no shape information");
    coffer_serve_tensor_free(&t[0]);
    coffer_serve_tensor_free(&t[1]);
}

/* TF's float text as printf writes it: 6 digits when they read back, else
 * 9, ".0" on whole numbers. */
static void float_reference(float f, char *s)
{
    snprintf(s, 48, "%.6g", (double)f);
    if (strtof(s, NULL) != f)
        snprintf(s, 48, "%.9g", (double)f);
    if (strpbrk(s, ".eEn") == NULL)
        strcat(s, ".0");
}

static void check_float_text(float f)
{
    char want[48];
    float_reference(f, want);
    struct coffer_buf b;
    coffer_buf_init(&b, 0, false);
    assert_int_equal(coffer_serve__json_real(&b, f, true), COFFER_OK);
    if (b.size != strlen(want) || memcmp(b.data, want, b.size) != 0)
        fail_msg("float %a: wrote %.*s, printf gives %s", (double)f, (int)b.size, (const char *)b.data, want);
    coffer_buf_free(&b);
}

/* The float writer works without printf (integer digits of the exact
 * value); it must give printf's text for every float: the edges of its
 * range and of the binades, ties, the 6-vs-9-digit decision, and a spread
 * of bit patterns (tools: an exhaustive run over every 61st float agreed). */
static void test_float_text(void **state)
{
    (void)state;
    static const float edge[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.1f, 0.2f, 0.3f, 1e6f, 999999.5f, 9999995.0f,
                                 123456.5f, 1234567.0f, 1024.125f, 0.5f, 3.5f, 1e-7f, 1e-5f, 1e-4f, 0.0001f,
                                 0.00099999f, 100000.0f, 16777216.0f, 16777215.0f, 3.4028235e38f, 1.17549435e-38f,
                                 4.76837158e-7f /* 2^-21 */, 4.76837130e-7f, 1e-45f, 0.103539437f, 1e38f, 1e10f};
    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
        check_float_text(edge[i]);
    /* both sides of every power of two and of ten in range */
    for (int e = -126; e < 128; e++) {
        float p = ldexpf(1.0f, e);
        check_float_text(p);
        check_float_text(nextafterf(p, 0.0f));
        check_float_text(nextafterf(p, INFINITY));
    }
    for (int e = -38; e <= 38; e++) {
        float p = (float)pow(10.0, e);
        check_float_text(p);
        check_float_text(nextafterf(p, 0.0f));
        check_float_text(nextafterf(p, INFINITY));
    }
    /* a spread of bit patterns (a fixed LCG), and small decimals as clients send them */
    uint32_t x = 12345;
    for (int i = 0; i < 300000; i++) {
        x = x * 1664525u + 1013904223u;
        float f;
        memcpy(&f, &x, 4);
        if (!isnan(f) && !isinf(f))
            check_float_text(f);
    }
    for (int i = 0; i < 100000; i++)
        check_float_text((float)i / 10000.0f);
}

/* A REST body round trip: parse a request, write it back as the response. */
static void test_rest_round_trip(void **state)
{
    (void)state;
    struct coffer_serve_rest_predict p;
    struct coffer_serve_status st;
    const char *body = "{\"instances\": [[1.5, -2.0, 1e10], [0.25, 3.0, -0.0]]}";
    assert_int_equal(predict(body, &p, &st), COFFER_OK);
    char *out;
    size_t n;
    assert_int_equal(coffer_serve_rest_predict_response(COFFER_SERVE_REST_ROW, p.inputs, 1, &out, &n, &st), COFFER_OK);
    json_t *v = parse_back(out), *want = parse_back("{\"predictions\": [[1.5, -2.0, 1e10], [0.25, 3.0, -0.0]]}");
    assert_true(json_equal(v, want));
    json_decref(v);
    json_decref(want);
    coffer_free(out);
    coffer_serve_rest_predict_free(&p);
}

static void test_status_metadata_error_json(void **state)
{
    (void)state;
    char *out;
    size_t n;
    assert_int_equal(coffer_serve_rest_error_json("Malformed request: POST /v1/models/\"x\"\n", &out, &n), COFFER_OK);
    json_t *v = parse_back(out);
    assert_string_equal(json_string_value(json_object_get(v, "error")), "Malformed request: POST /v1/models/\"x\"\n");
    json_decref(v);
    coffer_free(out);
    /* bytes that are not UTF-8 still give valid JSON */
    assert_int_equal(coffer_serve_rest_error_json("bad \xff name", &out, &n), COFFER_OK);
    v = parse_back(out);
    assert_string_equal(json_string_value(json_object_get(v, "error")), "bad \xef\xbf\xbd name");
    json_decref(v);
    coffer_free(out);

    struct coffer_serve_version_status vs[] = {
        {.version = 123, .state = COFFER_SERVE_STATE_AVAILABLE},
        {.version = 7, .state = COFFER_SERVE_STATE_END, .error_code = COFFER_SERVE_UNKNOWN, .error_message = "load failed"},
    };
    assert_int_equal(coffer_serve_rest_status_json(vs, 2, &out, &n), COFFER_OK);
    v = parse_back(out);
    json_t *arr = json_object_get(v, "model_version_status");
    assert_int_equal(json_array_size(arr), 2);
    json_t *e0 = json_array_get(arr, 0), *e1 = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(e0, "version")), "123");
    assert_string_equal(json_string_value(json_object_get(e0, "state")), "AVAILABLE");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e0, "status"), "error_code")), "OK");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e0, "status"), "error_message")), "");
    assert_string_equal(json_string_value(json_object_get(e1, "state")), "END");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e1, "status"), "error_code")), "UNKNOWN");
    json_decref(v);
    coffer_free(out);

    static const struct coffer_serve_tensor_info in[] = {
        {.alias = "x", .tensor_name = "x:0", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 2, .dims = {-1, 1}},
    };
    static const struct coffer_serve_tensor_info o[] = {
        {.alias = "y", .dtype = COFFER_SERVE_DT_FLOAT, .unknown_rank = true},
    };
    struct coffer_serve_signature s = {.key = "serving_default", .inputs = in, .input_count = 1, .outputs = o,
                                       .output_count = 1};
    struct coffer_serve_model_spec spec = {.name = "half_plus_two", .has_version = true, .version = 123,
                                           .signature_name = ""};
    assert_int_equal(coffer_serve_rest_metadata_json(&spec, &s, 1, &out, &n), COFFER_OK);
    v = parse_back(out);
    json_t *ms = json_object_get(v, "model_spec");
    assert_string_equal(json_string_value(json_object_get(ms, "name")), "half_plus_two");
    assert_string_equal(json_string_value(json_object_get(ms, "version")), "123");
    assert_string_equal(json_string_value(json_object_get(ms, "signature_name")), "");
    json_t *sd = json_object_get(json_object_get(json_object_get(json_object_get(v, "metadata"), "signature_def"),
                                                 "signature_def"),
                                 "serving_default");
    assert_non_null(sd);
    json_t *x = json_object_get(json_object_get(sd, "inputs"), "x");
    assert_string_equal(json_string_value(json_object_get(x, "dtype")), "DT_FLOAT");
    assert_string_equal(json_string_value(json_object_get(x, "name")), "x:0");
    json_t *dims = json_object_get(json_object_get(x, "tensor_shape"), "dim");
    assert_int_equal(json_array_size(dims), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(dims, 0), "size")), "-1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(dims, 1), "size")), "1");
    assert_true(json_is_false(json_object_get(json_object_get(x, "tensor_shape"), "unknown_rank")));
    json_t *y = json_object_get(json_object_get(sd, "outputs"), "y");
    assert_true(json_is_true(json_object_get(json_object_get(y, "tensor_shape"), "unknown_rank")));
    assert_string_equal(json_string_value(json_object_get(sd, "method_name")), "tensorflow/serving/predict");
    assert_true(json_is_object(json_object_get(sd, "defaults")));
    json_decref(v);
    coffer_free(out);
}

static enum coffer_err rest_fault_body(void *arg)
{
    (void)arg;
    /* jansson allocates with malloc, outside the fault hook; everything
     * coffer allocates (NaN rewrite, tensors, b64, strings, output) is hit */
    const char *body = "{\"signature_name\": \"two\", \"instances\": [{\"ids\": 1, \"img_bytes\": {\"b64\": \"AAEC\"}},"
                       "{\"ids\": 2, \"img_bytes\": \"NaN\"}], \"x\": NaN}";
    struct coffer_serve_rest_predict p;
    struct coffer_serve_status st;
    enum coffer_err r = predict(body, &p, &st);
    if (r != COFFER_OK)
        return r;
    char *out;
    size_t n;
    r = coffer_serve_rest_predict_response(COFFER_SERVE_REST_ROW, p.inputs, p.input_count, &out, &n, &st);
    if (r == COFFER_OK)
        coffer_free(out);
    coffer_serve_rest_predict_free(&p);
    return r;
}

static void test_rest_alloc_faults(void **state)
{
    (void)state;
    tu_fault_loop(rest_fault_body, NULL);
}


/* The fast path (one float input, plain nested numbers) against the general
 * parser on the same content: an extra top-level key (which TF ignores)
 * keeps a body off the fast path. Same tensors, byte for byte, for numbers
 * of every form, and the same answers for the forms the fast path leaves
 * to the general parser. */
static void same_as_general(const struct coffer_serve_signature *sig, const char *body)
{
    struct coffer_serve_rest_predict a, b;
    struct coffer_serve_status sa, sb;
    char alt[4096];
    const char *brace = strchr(body, '{');
    assert_non_null(brace);
    snprintf(alt, sizeof(alt), "%.*s{\"~\": 0, %s", (int)(brace - body), body, brace + 1);
    enum coffer_err ra = coffer_serve_rest_predict_parse(body, strlen(body), sig, 1, NULL, &a, &sa);
    enum coffer_err rb = coffer_serve_rest_predict_parse(alt, strlen(alt), sig, 1, NULL, &b, &sb);
    if (ra != rb)
        fail_msg("%s: %d vs %d (%s | %s)", body, ra, rb, sa.message, sb.message);
    if (ra != COFFER_OK) {
        assert_int_equal(sa.code, sb.code);
        if (strstr(sa.message, "column") == NULL) /* the extra key moves the columns */
            assert_string_equal(sa.message, sb.message);
        return;
    }
    assert_int_equal(a.format, b.format);
    assert_int_equal(a.input_count, 1);
    assert_string_equal(a.inputs[0].name, b.inputs[0].name);
    assert_int_equal(a.inputs[0].rank, b.inputs[0].rank);
    assert_memory_equal(a.inputs[0].dims, b.inputs[0].dims, a.inputs[0].rank * sizeof(int64_t));
    assert_int_equal(a.inputs[0].size, b.inputs[0].size);
    if (memcmp(a.inputs[0].data, b.inputs[0].data, a.inputs[0].size) != 0)
        fail_msg("%s: values differ", body);
    coffer_serve_rest_predict_free(&a);
    coffer_serve_rest_predict_free(&b);
}

static void test_predict_fast_path(void **state)
{
    (void)state;
    static const struct coffer_serve_tensor_info fin = {.alias = "x", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 2,
                                                        .dims = {-1, 3}};
    static const struct coffer_serve_tensor_info din = {.alias = "x", .dtype = COFFER_SERVE_DT_DOUBLE, .rank = 2,
                                                        .dims = {-1, 3}};
    const struct coffer_serve_signature sf = {.key = "serving_default", .inputs = &fin, .input_count = 1};
    const struct coffer_serve_signature sd = {.key = "serving_default", .inputs = &din, .input_count = 1};
    static const char *numbers[] = {
        "0", "-0", "1", "-1", "0.1", "-0.0", "3.14159", "1e5", "1E+5", "1e-5", "2.5e-3", "123456789",
        "9007199254740993", "9007199254740992.5", "12345678901234567890", "-9223372036854775808",
        "9223372036854775807", "9223372036854775808", "1234567890123456789012345", "0.1234567890123456789012",
        "1e22", "1e23", "1e-22", "1e-23", "4.9e-324", "1e-400", "1.7976931348623157e308", "1e309", "3.4028235e38",
        "3.4028236e38", "1e39", "1.00000005960464477539", "0.30000000000000004", "123.456e-7", "00", "1.",
        ".5", "-", "1e", "+1", "0x10", "NaN", "Infinity", "-Infinity", "1e99999", "2.2250738585072011e-308",
    };
    char body[512];
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        snprintf(body, sizeof(body), "{\"instances\": [[%s, 2, 3]]}", numbers[i]);
        same_as_general(&sf, body);
        same_as_general(&sd, body);
        snprintf(body, sizeof(body), " {\"inputs\":[[1,2,3],[4,5,%s]], \"signature_name\": \"\"}\n", numbers[i]);
        same_as_general(&sf, body);
        same_as_general(&sd, body);
    }
    static const char *forms[] = {
        "{\"instances\": [[1, 2, 3], [4, 5, 6]]}",
        "{\"instances\": [1, 2, 3]}",
        "{\"instances\": [[[1], [2]], [[3], [4]]]}",
        "{\"inputs\": [[1, 2, 3]], \"signature_name\": \"serving_default\"}",
        "{\"signature_name\": \"serving_default\", \"inputs\": [[1, 2, 3]]}",
        "{\"signature_name\": \"other\", \"inputs\": [[1, 2, 3]]}",
        "{\"instances\": [[1, 2, 3], [4, 5]]}",
        "{\"instances\": [[1, 2, 3], 4]}",
        "{\"instances\": [[1, [2], 3]]}",
        "{\"instances\": [[]]}",
        "{\"instances\": []}",
        "{\"instances\": [[1, 2, 3]], \"inputs\": [[1, 2, 3]]}",
        "{\"instances\": [[1, 2, 3]], \"instances\": [[1, 2, 3]]}",
        "{\"instances\": [[1, 2, 3],]}",
        "{\"instances\": [[1 2 3]]}",
        "{\"instances\": [[1, 2, 3]]} x",
        "{\"instances\": [[1, 2, 3]]",
        "{\"instances\": [{\"x\": [1, 2, 3]}]}",
        "{\"instances\": [[\"a\", 2, 3]]}",
        "{\"inputs\": {\"x\": [[1, 2, 3]]}}",
        "{\"inputs\": 5}",
        "{\"instances\": [[true, 2, 3]]}",
        "{\"sig\\u006eature_name\": \"\", \"instances\": [[1, 2, 3]]}",
        "{\"instances\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        same_as_general(&sf, forms[i]);
        same_as_general(&sd, forms[i]);
    }
}

/* The fast path's numbers against the general parser's (strtod, then
 * (float) for a float input), many at a time: random floats written with
 * 1-17 significant digits or 1-12 decimals, integers of up to 19 digits,
 * and decimals at or near the point halfway between two floats, where the
 * fast path's multiplication must not round to the other float (it divides
 * there). Float and double inputs both. */
static void test_predict_fast_numbers(void **state)
{
    (void)state;
    enum { COLS = 48 };
    static const struct coffer_serve_tensor_info fin = {.alias = "x", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 2,
                                                        .dims = {-1, COLS}};
    static const struct coffer_serve_tensor_info din = {.alias = "x", .dtype = COFFER_SERVE_DT_DOUBLE, .rank = 2,
                                                        .dims = {-1, COLS}};
    const struct coffer_serve_signature sf = {.key = "serving_default", .inputs = &fin, .input_count = 1};
    const struct coffer_serve_signature sd = {.key = "serving_default", .inputs = &din, .input_count = 1};
    uint64_t rng = 0x9e3779b97f4a7c15u;
    char body[4096];
    for (int round = 0; round < 400; round++) {
        size_t len = (size_t)snprintf(body, sizeof(body), "{\"instances\": [[");
        for (int i = 0; i < COLS; i++) {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            uint32_t r = (uint32_t)(rng >> 32);
            float f;
            uint32_t fb = r & 0x7fffffffu; /* a random finite float's bits */
            memcpy(&f, &fb, sizeof(f));
            if (!isfinite(f) || fabsf(f) > 1e15f || fabsf(f) < 1e-12f)
                f = (float)(r % 100000u) / 997.0f;
            const char *sign = (r >> 7) & 1 ? "-" : "";
            switch ((round + i) % 5) {
            case 0: /* a float with 1-17 significant digits */
                len += (size_t)snprintf(body + len, sizeof(body) - len, "%s%.*g", sign, 1 + (int)(r % 17), (double)f);
                break;
            case 1: /* a decimal in [0, 1000) with 1-12 decimals */
                len += (size_t)snprintf(body + len, sizeof(body) - len, "%s%.*f", sign, 1 + (int)(r % 12),
                                        (double)((r >> 3) % 1000000u) / 1000.0 + (double)(r & 7) / 8191.0);
                break;
            case 2: { /* halfway between two floats, 15-17 significant digits */
                float g = nextafterf(fabsf(f), INFINITY);
                double mid = ((double)fabsf(f) + (double)g) / 2;
                len += (size_t)snprintf(body + len, sizeof(body) - len, "%s%.*g", sign, 15 + (int)(r % 3), mid);
                break;
            }
            case 3: { /* exactly halfway between two floats of [2^(23-k), 2^(24-k)), k + 1 decimals */
                int k = (int)(r % 11);
                double lo = ldexp(1.0, 23 - k), mid = lo + ldexp((double)(rng % (1u << 23)), -k) + ldexp(1.0, -k - 1);
                len += (size_t)snprintf(body + len, sizeof(body) - len, "%s%.*f", sign, k + 1, mid);
                break;
            }
            default: /* an integer of 1-19 digits */
                len += (size_t)snprintf(body + len, sizeof(body) - len, "%s%llu", sign,
                                        (unsigned long long)(rng % 10000000000000000000u) >> (r % 60));
                break;
            }
            len += (size_t)snprintf(body + len, sizeof(body) - len, i + 1 < COLS ? (r & 0x100 ? "," : ", ") : "]]}");
        }
        assert_true(len < sizeof(body) - 16);
        same_as_general(&sf, body);
        same_as_general(&sd, body);
    }
}

int test_rest_main(void);
int test_rest_main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_grammar),
        cmocka_unit_test(test_url_errors),
        cmocka_unit_test(test_predict_row),
        cmocka_unit_test(test_predict_columnar),
        cmocka_unit_test(test_predict_fast_path),
        cmocka_unit_test(test_predict_fast_numbers),
        cmocka_unit_test(test_predict_errors),
        cmocka_unit_test(test_predict_limits),
        cmocka_unit_test(test_predict_response),
        cmocka_unit_test(test_float_text),
        cmocka_unit_test(test_rest_round_trip),
        cmocka_unit_test(test_status_metadata_error_json),
        cmocka_unit_test(test_rest_alloc_faults),
    };
    return cmocka_run_group_tests_name("serve_rest", tests, NULL, NULL);
}
