/*
 * test_proto_view.c — the in-place PredictRequest decoder (predict_view.c)
 * against protobuf-c's unpack: the common tensor_content requests take the
 * in-place path, and every request, well-formed, edge or malformed (hand
 * written wire bytes, every truncation and every one-byte change of a
 * request), gets the same answer from both paths: the same error and
 * status, or the same spec, filters and tensors, bytes and all.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "coffer/serve.h"
#include "../../src/serve/serve_int.h"

/* ------------------------------------------------------ wire bytes by hand */

struct wb {
    uint8_t b[8192];
    size_t n;
};

static void put_raw(struct wb *w, const void *p, size_t n)
{
    assert_true(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void put_varint(struct wb *w, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            c |= 0x80;
        put_raw(w, &c, 1);
    } while (v != 0);
}

static void put_tag(struct wb *w, uint32_t field, uint32_t wire) { put_varint(w, (uint64_t)field << 3 | wire); }

static void put_uint(struct wb *w, uint32_t field, uint64_t v)
{
    put_tag(w, field, 0);
    put_varint(w, v);
}

static void put_ld(struct wb *w, uint32_t field, const void *p, size_t n)
{
    put_tag(w, field, 2);
    put_varint(w, n);
    put_raw(w, p, n);
}

static void put_msg(struct wb *w, uint32_t field, const struct wb *m) { put_ld(w, field, m->b, m->n); }
static void put_str(struct wb *w, uint32_t field, const char *s) { put_ld(w, field, s, strlen(s)); }

/* A float TensorProto [d0, d1] in tensor_content, values i / 4. */
static void tensor_content(struct wb *t, int64_t d0, int64_t d1)
{
    memset(t, 0, sizeof(*t));
    put_uint(t, 1, COFFER_SERVE_DT_FLOAT);
    struct wb shape = {0}, dim = {0};
    put_uint(&dim, 1, (uint64_t)d0);
    put_msg(&shape, 2, &dim);
    dim.n = 0;
    put_uint(&dim, 1, (uint64_t)d1);
    put_msg(&shape, 2, &dim);
    put_msg(t, 2, &shape);
    float v[64];
    size_t n = (size_t)(d0 * d1);
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)i / 4.0f;
    put_ld(t, 4, v, n * sizeof(float));
}

/* PredictRequest {model_spec {name, signature_name}, inputs {key, tensor}} */
static void request(struct wb *w, const char *key, const struct wb *tensor)
{
    memset(w, 0, sizeof(*w));
    struct wb spec = {0}, e = {0};
    put_str(&spec, 1, "m");
    put_str(&spec, 3, "serving_default");
    put_msg(w, 1, &spec);
    put_str(&e, 1, key);
    put_msg(&e, 2, tensor);
    put_msg(w, 2, &e);
}

/* --------------------------------------------------------------- comparing */

static void same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

/* Both paths give the same answer for these bytes; returns the in-place
 * decoder's own verdict (COFFER_OK: it took them). Also test_proto.c's,
 * for the request Python writes. */
enum coffer_err serve_view_same_answer(const uint8_t *data, size_t size, const struct coffer_serve_limits *lim);
enum coffer_err serve_view_same_answer(const uint8_t *data, size_t size, const struct coffer_serve_limits *lim)
{
    struct coffer_serve_predict_request a, b;
    struct coffer_serve_status sa, sb;
    enum coffer_err ra = coffer_serve__predict_request_decode(data, size, lim, true, &a, &sa);
    enum coffer_err rb = coffer_serve__predict_request_decode(data, size, lim, false, &b, &sb);
    assert_int_equal(ra, rb);
    assert_int_equal(sa.code, sb.code);
    assert_string_equal(sa.message, sb.message);
    if (ra == COFFER_OK) {
        same_str(a.spec.name, b.spec.name);
        same_str(a.spec.signature_name, b.spec.signature_name);
        same_str(a.spec.version_label, b.spec.version_label);
        assert_int_equal(a.spec.has_version, b.spec.has_version);
        assert_int_equal(a.spec.version, b.spec.version);
        assert_int_equal(a.output_filter_count, b.output_filter_count);
        for (size_t i = 0; i < a.output_filter_count; i++)
            assert_string_equal(a.output_filter[i], b.output_filter[i]);
        assert_int_equal(a.input_count, b.input_count);
        for (size_t i = 0; i < a.input_count; i++) {
            const struct coffer_serve_tensor *x = &a.inputs[i], *y = &b.inputs[i];
            assert_string_equal(x->name, y->name);
            assert_int_equal(x->dtype, y->dtype);
            assert_int_equal(x->rank, y->rank);
            assert_memory_equal(x->dims, y->dims, sizeof(x->dims));
            assert_int_equal(x->count, y->count);
            assert_int_equal(x->size, y->size);
            if (x->dtype == COFFER_SERVE_DT_STRING) {
                const struct coffer_serve_bytes *p = x->data, *q = y->data;
                for (size_t k = 0; k < x->count; k++) {
                    assert_int_equal(p[k].size, q[k].size);
                    if (p[k].size > 0)
                        assert_memory_equal(p[k].data, q[k].data, p[k].size);
                }
            } else if (x->size > 0) {
                assert_memory_equal(x->data, y->data, x->size);
            }
        }
        coffer_serve_predict_request_free(&a);
        coffer_serve_predict_request_free(&b);
    }
    struct coffer_serve__scratch s = {0};
    Tensorflow__Serving__PredictRequest m;
    enum coffer_err rv = coffer_serve__predict_request_view(data, size, &s, &m);
    coffer_serve__scratch_free(&s);
    return rv;
}

/* Every prefix of w, and every byte of w replaced by a few others, agree. */
static void same_answer_mutated(const struct wb *w, const struct coffer_serve_limits *lim)
{
    for (size_t n = 0; n <= w->n; n++)
        (void)serve_view_same_answer(w->b, n, lim);
    static const uint8_t with[] = {0x00, 0x01, 0x02, 0x05, 0x08, 0x0a, 0x12, 0x22, 0x7f, 0x80, 0xff};
    struct wb m = *w;
    for (size_t i = 0; i < w->n; i++) {
        for (size_t k = 0; k < sizeof(with); k++) {
            m.b[i] = with[k];
            (void)serve_view_same_answer(m.b, m.n, lim);
        }
        m.b[i] = w->b[i];
    }
}

/* ------------------------------------------------------------------- tests */

static void test_view_takes_tensor_content(void **state)
{
    (void)state;
    struct wb t, w;
    tensor_content(&t, 2, 3);
    request(&w, "input", &t);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_OK);

    /* what coffer's own encoder writes (the bench's, a TF client's form):
     * version and label, several inputs, an output filter */
    struct coffer_serve_tensor ts[2];
    int64_t d[] = {1, 4}, e[] = {3};
    assert_int_equal(coffer_serve_tensor_init(&ts[0], "input", COFFER_SERVE_DT_FLOAT, 2, d), COFFER_OK);
    assert_int_equal(coffer_serve_tensor_init(&ts[1], "ids", COFFER_SERVE_DT_INT64, 1, e), COFFER_OK);
    for (size_t i = 0; i < 4; i++)
        ((float *)ts[0].data)[i] = (float)i - 1.5f;
    ((int64_t *)ts[1].data)[1] = -7;
    char *filter[] = {"probs", "logits"};
    struct coffer_serve_predict_request req = {
        .spec = {.name = "resnet", .signature_name = "serving_default", .has_version = true, .version = -3},
        .inputs = ts, .input_count = 2, .output_filter = filter, .output_filter_count = 2};
    for (int k = 0; k < 2; k++) {
        uint8_t *pb;
        size_t n;
        assert_int_equal(coffer_serve_predict_request_encode(&req, true, &pb, &n), COFFER_OK);
        assert_int_equal(serve_view_same_answer(pb, n, NULL), COFFER_OK);
        coffer_free(pb);
        /* the typed fields are protobuf-c's */
        assert_int_equal(coffer_serve_predict_request_encode(&req, false, &pb, &n), COFFER_OK);
        assert_int_equal(serve_view_same_answer(pb, n, NULL), COFFER_E_UNSUPPORTED);
        coffer_free(pb);
        req.spec.has_version = false;
        req.spec.version_label = "stable";
    }
    coffer_serve_tensor_free(&ts[0]);
    coffer_serve_tensor_free(&ts[1]);
}

/* Forms the view takes, each the same as protobuf-c reads it. */
static void test_view_edges(void **state)
{
    (void)state;
    struct wb t, w, spec, e, x;

    /* empty message: no ModelSpec */
    assert_int_equal(serve_view_same_answer((const uint8_t *)"", 0, NULL), COFFER_OK);

    /* an empty ModelSpec, no inputs */
    memset(&w, 0, sizeof(w));
    put_ld(&w, 1, "", 0);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_OK);

    /* strings given twice: the last wins; NUL inside a name and invalid
     * UTF-8 read as protobuf-c reads them */
    memset(&spec, 0, sizeof(spec));
    put_str(&spec, 1, "first");
    put_str(&spec, 1, "second");
    put_ld(&spec, 3, "sig\0nature", 10);
    put_ld(&spec, 4, "\xff\xfe-label", 8);
    memset(&w, 0, sizeof(w));
    put_msg(&w, 1, &spec);
    put_ld(&w, 3, "out\0put", 7);
    put_str(&w, 3, "");
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_OK);

    /* version as Int64Value: negative, 10-byte varint; an empty Int64Value */
    memset(&spec, 0, sizeof(spec));
    memset(&x, 0, sizeof(x));
    put_uint(&x, 1, (uint64_t)-42);
    put_msg(&spec, 2, &x);
    memset(&w, 0, sizeof(w));
    put_msg(&w, 1, &spec);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_OK);
    memset(&spec, 0, sizeof(spec));
    put_ld(&spec, 2, "", 0);
    memset(&w, 0, sizeof(w));
    put_msg(&w, 1, &spec);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_OK);

    /* map entries: missing key, missing value, an empty entry, duplicate
     * keys (the last wins), the model spec after the inputs */
    tensor_content(&t, 1, 2);
    memset(&w, 0, sizeof(w));
    memset(&e, 0, sizeof(e));
    put_msg(&e, 2, &t);
    put_msg(&w, 2, &e);
    memset(&e, 0, sizeof(e));
    put_str(&e, 1, "novalue");
    put_msg(&w, 2, &e);
    put_ld(&w, 2, "", 0);
    request(&x, "a", &t);
    put_raw(&w, x.b, x.n); /* spec + entry "a" */
    tensor_content(&t, 2, 1);
    memset(&e, 0, sizeof(e));
    put_str(&e, 1, "a");
    put_msg(&e, 2, &t);
    put_msg(&w, 2, &e);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_OK);

    /* TensorProto: dtype and content twice (last wins), version_number,
     * unknown_rank, dim names, a rank-0 tensor, a negative dim, a dtype
     * coffer does not take, a dtype out of int32's range (protobuf-c keeps
     * the low 32 bits), bool content that is not 0 or 1, a content size that
     * does not match, rank over the limit */
    float f2[2] = {1.0f, 2.0f};
    struct wb shape, dim;
    struct {
        int dtype_first, dtype;
        int64_t dims[8];
        size_t rank;
        bool unknown_rank, dim_name, version_number;
        const void *content;
        size_t content_n;
    } cases[] = {
        {3, COFFER_SERVE_DT_FLOAT, {2}, 1, false, true, true, f2, 8},
        {0, COFFER_SERVE_DT_FLOAT, {0}, 0, false, false, false, f2, 4},
        {0, COFFER_SERVE_DT_FLOAT, {2}, 1, true, false, false, f2, 8},
        {0, COFFER_SERVE_DT_FLOAT, {-2}, 1, false, false, false, f2, 8},
        {0, COFFER_SERVE_DT_FLOAT, {3}, 1, false, false, false, f2, 8},
        {0, COFFER_SERVE_DT_FLOAT, {1, 1, 1, 1, 1, 1, 1, 2}, 8, false, false, false, f2, 8},
        {0, 7 /* DT_STRING */, {1}, 1, false, false, false, "ab", 2},
        {0, 20 /* DT_RESOURCE */, {1}, 1, false, false, false, f2, 4},
        {0, -1, {1}, 1, false, false, false, f2, 4},
        {0, COFFER_SERVE_DT_BOOL, {2}, 1, false, false, false, "\x01\x02", 2},
        {0, COFFER_SERVE_DT_BOOL, {2}, 1, false, false, false, "\x01\x00", 2},
        {0, COFFER_SERVE_DT_INT64, {1}, 1, false, false, false, "\xff\xff\xff\xff\xff\xff\xff\xff", 8},
        {0, COFFER_SERVE_DT_FLOAT, {2}, 1, false, false, false, NULL, 0},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        memset(&t, 0, sizeof(t));
        if (cases[c].dtype_first != 0)
            put_uint(&t, 1, (uint64_t)cases[c].dtype_first);
        put_uint(&t, 1, (uint64_t)(int64_t)cases[c].dtype);
        if (cases[c].version_number)
            put_uint(&t, 3, 7);
        if (cases[c].content != NULL)
            put_ld(&t, 4, "zz", 2); /* replaced by the next */
        memset(&shape, 0, sizeof(shape));
        for (size_t i = 0; i < cases[c].rank; i++) {
            memset(&dim, 0, sizeof(dim));
            put_uint(&dim, 1, (uint64_t)cases[c].dims[i]);
            if (cases[c].dim_name)
                put_str(&dim, 2, "batch");
            put_msg(&shape, 2, &dim);
        }
        if (cases[c].unknown_rank)
            put_uint(&shape, 3, 1);
        put_msg(&t, 2, &shape);
        if (cases[c].content != NULL)
            put_ld(&t, 4, cases[c].content, cases[c].content_n);
        request(&w, "x", &t);
        assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_OK);
    }

    /* over the limits: tensors, inputs, filters, message size */
    struct coffer_serve_limits lim;
    coffer_serve_limits_default(&lim);
    lim.max_tensors = 1;
    lim.max_tensor_size = 4;
    tensor_content(&t, 1, 2);
    request(&w, "a", &t);
    assert_int_equal(serve_view_same_answer(w.b, w.n, &lim), COFFER_OK);
    put_str(&w, 3, "f1");
    put_str(&w, 3, "f2");
    assert_int_equal(serve_view_same_answer(w.b, w.n, &lim), COFFER_OK);
    lim.max_message_size = w.n - 1;
    assert_int_equal(serve_view_same_answer(w.b, w.n, &lim), COFFER_OK);
}

/* Forms the view leaves to protobuf-c, which gives the answer. */
static void test_view_declines(void **state)
{
    (void)state;
    struct wb t, w, spec, x;
    tensor_content(&t, 1, 2);
    request(&w, "a", &t);
    struct {
        const char *what;
        const uint8_t *bytes;
        size_t n;
    } tails[] = {
        {"a second ModelSpec (protobuf-c merges them)", (const uint8_t *)"\x0a\x03\x0a\x01z", 5},
        {"an unknown field", (const uint8_t *)"\x78\x01", 2},
        {"a fixed32 field", (const uint8_t *)"\x7d\x01\x02\x03\x04", 5},
        {"a fixed64 field", (const uint8_t *)"\x79\x01\x02\x03\x04\x05\x06\x07\x08", 9},
        {"a group", (const uint8_t *)"\x7b\x7c", 2},
        {"field 0", (const uint8_t *)"\x02\x00", 2},
        {"output_filter as a varint", (const uint8_t *)"\x18\x01", 2},
        {"a tag in 6 bytes", (const uint8_t *)"\x9a\x80\x80\x80\x80\x00\x00", 7},
        {"a length in 6 bytes", (const uint8_t *)"\x1a\x80\x80\x80\x80\x80\x00", 7},
        {"a length past the end", (const uint8_t *)"\x1a\x05" "ab", 4},
        {"a truncated tag", (const uint8_t *)"\x9a", 1},
        {"predict_streamed_options", (const uint8_t *)"\x2a\x00", 2},
        {"client_id", (const uint8_t *)"\x32\x01z", 3},
    };
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        struct wb m = w;
        put_raw(&m, tails[i].bytes, tails[i].n);
        if (serve_view_same_answer(m.b, m.n, NULL) != COFFER_E_UNSUPPORTED)
            fail_msg("the view took %s", tails[i].what);
    }

    /* typed values, a second tensor_shape, a second value in an entry, both
     * version choices, a version given twice, an unknown field in a dim */
    memset(&x, 0, sizeof(x));
    put_uint(&x, 1, COFFER_SERVE_DT_FLOAT);
    put_tag(&x, 5, 5);
    put_raw(&x, "\x00\x00\x80\x3f", 4);
    request(&w, "a", &x);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_E_UNSUPPORTED);
    x = t;
    put_ld(&x, 2, "", 0);
    request(&w, "a", &x);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_E_UNSUPPORTED);
    struct wb e = {0};
    put_str(&e, 1, "a");
    put_msg(&e, 2, &t);
    put_msg(&e, 2, &t);
    memset(&w, 0, sizeof(w));
    put_msg(&w, 2, &e);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_E_UNSUPPORTED);
    struct wb v = {0};
    put_uint(&v, 1, 5);
    memset(&spec, 0, sizeof(spec));
    put_msg(&spec, 2, &v);
    put_str(&spec, 4, "stable");
    memset(&w, 0, sizeof(w));
    put_msg(&w, 1, &spec);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_E_UNSUPPORTED);
    memset(&spec, 0, sizeof(spec));
    put_msg(&spec, 2, &v);
    put_msg(&spec, 2, &v);
    memset(&w, 0, sizeof(w));
    put_msg(&w, 1, &spec);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_E_UNSUPPORTED);
    memset(&x, 0, sizeof(x));
    struct wb shape = {0}, dim = {0};
    put_uint(&dim, 1, 2);
    put_uint(&dim, 9, 2);
    put_msg(&shape, 2, &dim);
    put_msg(&x, 2, &shape);
    request(&w, "a", &x);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_E_UNSUPPORTED);
    /* a varint over 64 bits (protobuf-c drops the high bits; coffer_rd refuses) */
    memset(&x, 0, sizeof(x));
    put_tag(&x, 1, 0);
    put_raw(&x, "\x81\x80\x80\x80\x80\x80\x80\x80\x80\x7f", 10);
    request(&w, "a", &x);
    assert_int_equal(serve_view_same_answer(w.b, w.n, NULL), COFFER_E_UNSUPPORTED);
}

/* Every truncation and one-byte change of two requests: the same answers. */
static void test_view_mutations(void **state)
{
    (void)state;
    struct wb t, w, spec = {0}, v = {0};
    tensor_content(&t, 1, 2);
    request(&w, "a", &t);
    put_str(&w, 3, "probs");
    same_answer_mutated(&w, NULL);
    put_uint(&v, 1, 3);
    put_msg(&spec, 2, &v);
    put_str(&spec, 1, "m");
    memset(&w, 0, sizeof(w));
    put_msg(&w, 1, &spec);
    struct wb e = {0};
    put_str(&e, 1, "bb");
    put_msg(&e, 2, &t);
    put_msg(&w, 2, &e);
    struct coffer_serve_limits lim;
    coffer_serve_limits_default(&lim);
    lim.max_tensors = 2;
    same_answer_mutated(&w, &lim);
}

/* Allocation failures in the in-place path: an error or a fallback, no leak
 * (the body is test_proto.c's, which also encodes the response). */
enum coffer_err serve_predict_fault_body(void *arg);

static void test_view_alloc_faults(void **state)
{
    (void)state;
    struct wb t, w;
    tensor_content(&t, 2, 2);
    request(&w, "input", &t);
    put_str(&w, 3, "probs");
    struct coffer_serve_bytes pb = {.data = w.b, .size = w.n};
    tu_fault_loop(serve_predict_fault_body, &pb);
}

/* The scratch the view and the encoders build in: pieces from the struct
 * until it is full, then from the heap; each zeroed, aligned, apart from the
 * others; a free empties it for reuse. */
static void test_scratch_inline_then_heap(void **state)
{
    (void)state;
    struct coffer_serve__scratch s = {0};
    static const size_t sizes[] = {1, 24, 100, 1000, 1, 900, 300, 17, 4000, 8};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    unsigned char *p[N];
    size_t inl = 0;
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < N; i++) {
            p[i] = coffer_serve__scratch_alloc(&s, 1, sizes[i]);
            assert_non_null(p[i]);
            assert_int_equal((uintptr_t)p[i] % _Alignof(max_align_t), 0);
            for (size_t k = 0; k < sizes[i]; k++)
                assert_int_equal(p[i][k], 0);
            memset(p[i], (int)(i + 1), sizes[i]);
            if (p[i] >= s.inline_mem && p[i] < s.inline_mem + sizeof(s.inline_mem)) {
                assert_true(p[i] + sizes[i] <= s.inline_mem + sizeof(s.inline_mem));
                inl++;
            }
        }
        for (size_t i = 0; i < N; i++)
            for (size_t k = 0; k < sizes[i]; k++)
                assert_int_equal(p[i][k], (unsigned char)(i + 1));
        assert_true(s.count > 0); /* some came from the heap */
        assert_null(coffer_serve__scratch_alloc(&s, SIZE_MAX, 2));
        coffer_serve__scratch_free(&s);
        assert_int_equal(s.count, 0);
        assert_int_equal(s.used, 0);
    }
    assert_int_equal(inl, 2 * 8); /* all but 900 (past the end then) and 4000 */
    /* the edge: a piece that fills the struct exactly, then one past it */
    unsigned char *whole = coffer_serve__scratch_alloc(&s, 1, sizeof(s.inline_mem));
    assert_ptr_equal(whole, s.inline_mem);
    coffer_serve__scratch_free(&s);
    unsigned char *a = coffer_serve__scratch_alloc(&s, 1, sizeof(s.inline_mem) - 8);
    unsigned char *b = coffer_serve__scratch_alloc(&s, 1, 16);
    assert_ptr_equal(a, s.inline_mem);
    assert_non_null(b);
    assert_true(b < s.inline_mem || b >= s.inline_mem + sizeof(s.inline_mem));
    assert_int_equal(s.count, 1);
    coffer_serve__scratch_free(&s);
}

int test_proto_view_main(void);
int test_proto_view_main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view_takes_tensor_content),
        cmocka_unit_test(test_view_edges),
        cmocka_unit_test(test_view_declines),
        cmocka_unit_test(test_view_mutations),
        cmocka_unit_test(test_view_alloc_faults),
        cmocka_unit_test(test_scratch_inline_then_heap),
    };
    return cmocka_run_group_tests_name("serve_proto_view", tests, NULL, NULL);
}
