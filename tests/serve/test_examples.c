/*
 * test_examples.c — the tf.Example side of serve/ (Classify, Regress,
 * MultiInference): ClassificationRequest/RegressionRequest and
 * MultiInferenceRequest decoding with TF's request checks and messages,
 * duplicate feature keys (the last wins, as protobuf maps merge), the
 * limits and caps on an Input, the REST :classify/:regress body (JSON
 * value kinds to feature kinds), examples -> model input tensors (context
 * features, conversions, shape and type errors), the choice of a classify
 * or regress signature, and the responses (protobuf, unpacked back with the
 * generated protobuf-c code, and REST JSON, parsed back with jansson).
 * Messages are built with the generated protobuf-c structs, as a client
 * library would.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/serve.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "tensorflow/core/example/example.pb-c.h"
#include "tensorflow/core/example/feature.pb-c.h"
#include "tensorflow_serving/apis/classification.pb-c.h"
#include "tensorflow_serving/apis/inference.pb-c.h"
#include "tensorflow_serving/apis/input.pb-c.h"
#include "tensorflow_serving/apis/regression.pb-c.h"

/* ------------------------------------------------------------- builders */

#define FB_MAX 8

/* One tf.Example under construction (not to be copied once initialised:
 * it points into itself). */
struct fb {
    Tensorflow__Example ex;
    Tensorflow__Features features;
    Tensorflow__Features__FeatureEntry entry[FB_MAX];
    Tensorflow__Features__FeatureEntry *entryp[FB_MAX];
    Tensorflow__Feature feat[FB_MAX];
    Tensorflow__FloatList fl[FB_MAX];
    Tensorflow__Int64List il[FB_MAX];
    Tensorflow__BytesList bl[FB_MAX];
};

static void fb_init(struct fb *b)
{
    memset(b, 0, sizeof(*b));
    tensorflow__example__init(&b->ex);
    tensorflow__features__init(&b->features);
    b->features.feature = b->entryp;
    b->ex.features = &b->features;
}

static Tensorflow__Feature *fb_add(struct fb *b, const char *name)
{
    size_t i = b->features.n_feature++;
    assert_true(i < FB_MAX);
    tensorflow__features__feature_entry__init(&b->entry[i]);
    tensorflow__feature__init(&b->feat[i]);
    b->entry[i].key = (char *)name;
    b->entry[i].value = &b->feat[i];
    b->entryp[i] = &b->entry[i];
    return &b->feat[i];
}

static void fb_float(struct fb *b, const char *name, const float *v, size_t n)
{
    size_t i = b->features.n_feature;
    Tensorflow__Feature *f = fb_add(b, name);
    tensorflow__float_list__init(&b->fl[i]);
    b->fl[i].n_value = n;
    b->fl[i].value = (float *)v;
    f->kind_case = TENSORFLOW__FEATURE__KIND_FLOAT_LIST;
    f->float_list = &b->fl[i];
}

static void fb_int(struct fb *b, const char *name, const int64_t *v, size_t n)
{
    size_t i = b->features.n_feature;
    Tensorflow__Feature *f = fb_add(b, name);
    tensorflow__int64_list__init(&b->il[i]);
    b->il[i].n_value = n;
    b->il[i].value = (int64_t *)v;
    f->kind_case = TENSORFLOW__FEATURE__KIND_INT64_LIST;
    f->int64_list = &b->il[i];
}

static void fb_bytes(struct fb *b, const char *name, const ProtobufCBinaryData *v, size_t n)
{
    size_t i = b->features.n_feature;
    Tensorflow__Feature *f = fb_add(b, name);
    tensorflow__bytes_list__init(&b->bl[i]);
    b->bl[i].n_value = n;
    b->bl[i].value = (ProtobufCBinaryData *)v;
    f->kind_case = TENSORFLOW__FEATURE__KIND_BYTES_LIST;
    f->bytes_list = &b->bl[i];
}

/* An Input: an ExampleList, or an ExampleListWithContext when ctx. */
struct ib {
    Tensorflow__Serving__Input in;
    Tensorflow__Serving__ExampleList list;
    Tensorflow__Serving__ExampleListWithContext wctx;
};

static void ib_init(struct ib *b, Tensorflow__Example **ex, size_t n, Tensorflow__Example *ctx)
{
    tensorflow__serving__input__init(&b->in);
    tensorflow__serving__example_list__init(&b->list);
    tensorflow__serving__example_list_with_context__init(&b->wctx);
    if (ctx != NULL) {
        b->wctx.n_examples = n;
        b->wctx.examples = ex;
        b->wctx.context = ctx;
        b->in.kind_case = TENSORFLOW__SERVING__INPUT__KIND_EXAMPLE_LIST_WITH_CONTEXT;
        b->in.example_list_with_context = &b->wctx;
    } else {
        b->list.n_examples = n;
        b->list.examples = ex;
        b->in.kind_case = TENSORFLOW__SERVING__INPUT__KIND_EXAMPLE_LIST;
        b->in.example_list = &b->list;
    }
}

static void spec_init(Tensorflow__Serving__ModelSpec *ms, Google__Protobuf__Int64Value *ver, const char *name,
                      const char *sig, int64_t version)
{
    tensorflow__serving__model_spec__init(ms);
    ms->name = (char *)name;
    ms->signature_name = (char *)(sig != NULL ? sig : "");
    if (ver != NULL) {
        google__protobuf__int64_value__init(ver);
        ver->value = version;
        ms->version_choice_case = TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION;
        ms->version = ver;
    }
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*n + 1);
    assert_non_null(b);
    assert_int_equal(protobuf_c_message_pack(m, b), *n);
    return b;
}

/* A ClassificationRequest of spec (may be NULL) and in (may be NULL). */
static uint8_t *pack_classify(Tensorflow__Serving__ModelSpec *spec, Tensorflow__Serving__Input *in, size_t *n)
{
    Tensorflow__Serving__ClassificationRequest req;
    tensorflow__serving__classification_request__init(&req);
    req.model_spec = spec;
    req.input = in;
    return pack(&req.base, n);
}

/* Append field `field` (length-delimited) holding p[0..n) to dst; returns
 * the bytes written. */
static size_t put_ld(uint8_t *dst, uint32_t field, const uint8_t *p, size_t n)
{
    size_t k = 0;
    dst[k++] = (uint8_t)(field << 3 | 2);
    size_t v = n;
    while (v >= 0x80) {
        dst[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    dst[k++] = (uint8_t)v;
    memcpy(dst + k, p, n);
    return k + n;
}

/* ----------------------------------------------------------- lookups */

static const struct coffer_serve_feature *feat(const struct coffer_serve_example *ex, const char *name)
{
    const struct coffer_serve_feature *f = NULL;
    for (size_t i = 0; i < ex->count; i++) {
        assert_non_null(ex->features[i].name);
        if (strcmp(ex->features[i].name, name) == 0) {
            if (f != NULL)
                fail_msg("feature %s appears twice", name);
            f = &ex->features[i];
        }
    }
    if (f == NULL)
        fail_msg("feature %s missing", name);
    return f;
}

static void want_floats(const struct coffer_serve_example *ex, const char *name, const float *v, size_t n)
{
    const struct coffer_serve_feature *f = feat(ex, name);
    if (f->kind != COFFER_SERVE_FEATURE_FLOAT)
        fail_msg("feature %s: kind %d, want FLOAT", name, (int)f->kind);
    assert_int_equal(f->count, n);
    for (size_t i = 0; i < n; i++)
        if (f->floats[i] != v[i])
            fail_msg("feature %s[%zu]: %g, want %g", name, i, (double)f->floats[i], (double)v[i]);
}

static void want_ints(const struct coffer_serve_example *ex, const char *name, const int64_t *v, size_t n)
{
    const struct coffer_serve_feature *f = feat(ex, name);
    if (f->kind != COFFER_SERVE_FEATURE_INT64)
        fail_msg("feature %s: kind %d, want INT64", name, (int)f->kind);
    assert_int_equal(f->count, n);
    for (size_t i = 0; i < n; i++)
        if (f->ints[i] != v[i])
            fail_msg("feature %s[%zu]: %lld, want %lld", name, i, (long long)f->ints[i], (long long)v[i]);
}

static void want_kind(const struct coffer_serve_example *ex, const char *name, enum coffer_serve_feature_kind kind,
                      size_t n)
{
    const struct coffer_serve_feature *f = feat(ex, name);
    if (f->kind != kind)
        fail_msg("feature %s: kind %d, want %d", name, (int)f->kind, (int)kind);
    assert_int_equal(f->count, n);
}

/* A failed call: return value, canonical code, message (exact, or a prefix
 * when it ends in '*'; NULL: any non-empty message). */
static void want_error(enum coffer_err r, const struct coffer_serve_status *st, enum coffer_err want_r,
                       enum coffer_serve_code code, const char *message)
{
    if (r == COFFER_OK)
        fail_msg("accepted; want %s (%s)", coffer_serve_code_name(code), message ? message : "");
    if (st->code != code)
        fail_msg("code %s, want %s (message: %s)", coffer_serve_code_name(st->code), coffer_serve_code_name(code),
                 st->message);
    if (r != want_r)
        fail_msg("returned %s, want %s (message: %s)", coffer_err_name(r), coffer_err_name(want_r), st->message);
    if (message == NULL) {
        assert_true(st->message[0] != '\0');
        return;
    }
    size_t n = strlen(message);
    if (n > 0 && message[n - 1] == '*') {
        if (strncmp(st->message, message, n - 1) != 0)
            fail_msg("message \"%s\", want prefix \"%.*s\"", st->message, (int)n - 1, message);
    } else if (strcmp(st->message, message) != 0) {
        fail_msg("message \"%s\", want \"%s\"", st->message, message);
    }
}

static void want_invalid(enum coffer_err r, const struct coffer_serve_status *st, const char *message)
{
    want_error(r, st, COFFER_E_MALFORMED, COFFER_SERVE_INVALID_ARGUMENT, message);
}

/* INVALID_ARGUMENT whose message names what (a feature). */
static void want_invalid_naming(enum coffer_err r, const struct coffer_serve_status *st, const char *what)
{
    want_invalid(r, st, NULL);
    if (strstr(st->message, what) == NULL)
        fail_msg("message \"%s\" does not name %s", st->message, what);
}

static void want_cleared_examples(const struct coffer_serve_examples *ex)
{
    assert_null(ex->examples);
    assert_int_equal(ex->count, 0);
    assert_null(ex->context.features);
    assert_int_equal(ex->context.count, 0);
}

/* ------------------------------------------- Classify/Regress requests */

static enum coffer_err decode_ex(const uint8_t *b, size_t n, const struct coffer_serve_limits *lim,
                                 struct coffer_serve_model_spec *spec, struct coffer_serve_examples *ex,
                                 struct coffer_serve_status *st)
{
    return coffer_serve_example_request_decode(b, n, lim, spec, ex, st);
}

static void test_example_request_decode(void **state)
{
    (void)state;
    static const float f0[] = {1.5f, -2.0f}, f1[] = {3.0f};
    static const int64_t i0[] = {7, -8, 9}, i1[] = {INT64_MIN, INT64_MAX};
    const ProtobufCBinaryData b0[] = {{2, (uint8_t *)"ab"}, {1, (uint8_t *)"c"}};
    const ProtobufCBinaryData b1[] = {{3, (uint8_t *)"\x00\x01\x02"}};
    struct fb e0, e1, e2;
    fb_init(&e0);
    fb_float(&e0, "f", f0, 2);
    fb_int(&e0, "i", i0, 3);
    fb_bytes(&e0, "b", b0, 2);
    fb_init(&e1);
    fb_float(&e1, "f", f1, 1);
    fb_int(&e1, "i", i1, 2);
    fb_bytes(&e1, "b", b1, 1);
    fb_int(&e1, "empty", NULL, 0);   /* an int64_list with no value */
    fb_add(&e1, "unset");            /* a Feature with no list at all */
    fb_init(&e2);                    /* an Example with no feature */
    Tensorflow__Example *exs[] = {&e0.ex, &e1.ex, &e2.ex};
    struct ib in;
    ib_init(&in, exs, 3, NULL);
    Tensorflow__Serving__ModelSpec ms;
    Google__Protobuf__Int64Value ver;
    spec_init(&ms, &ver, "census", "cls", 5);
    size_t n;
    uint8_t *b = pack_classify(&ms, &in.in, &n);

    struct coffer_serve_model_spec spec;
    struct coffer_serve_examples ex;
    struct coffer_serve_status st;
    assert_int_equal(decode_ex(b, n, NULL, &spec, &ex, &st), COFFER_OK);
    assert_string_equal(spec.name, "census");
    assert_true(spec.has_version);
    assert_int_equal(spec.version, 5);
    assert_null(spec.version_label);
    assert_string_equal(spec.signature_name, "cls");
    assert_int_equal(ex.count, 3);
    assert_int_equal(ex.context.count, 0);
    assert_int_equal(ex.examples[0].count, 3);
    want_floats(&ex.examples[0], "f", f0, 2);
    want_ints(&ex.examples[0], "i", i0, 3);
    want_kind(&ex.examples[0], "b", COFFER_SERVE_FEATURE_BYTES, 2);
    assert_int_equal(ex.examples[1].count, 5);
    want_floats(&ex.examples[1], "f", f1, 1);
    want_ints(&ex.examples[1], "i", i1, 2);
    want_kind(&ex.examples[1], "b", COFFER_SERVE_FEATURE_BYTES, 1);
    want_kind(&ex.examples[1], "empty", COFFER_SERVE_FEATURE_INT64, 0);
    want_kind(&ex.examples[1], "unset", COFFER_SERVE_FEATURE_NONE, 0);
    assert_int_equal(ex.examples[2].count, 0);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);
    free(b);

    /* a RegressionRequest has the same layout; a version label, no signature */
    Tensorflow__Serving__RegressionRequest rr;
    tensorflow__serving__regression_request__init(&rr);
    spec_init(&ms, NULL, "census", NULL, 0);
    ms.version_choice_case = TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION_LABEL;
    ms.version_label = "stable";
    rr.model_spec = &ms;
    ib_init(&in, exs, 2, NULL);
    rr.input = &in.in;
    b = pack(&rr.base, &n);
    assert_int_equal(decode_ex(b, n, NULL, &spec, &ex, &st), COFFER_OK);
    assert_false(spec.has_version);
    assert_non_null(spec.version_label);
    assert_string_equal(spec.version_label, "stable");
    assert_string_equal(spec.signature_name, "");
    assert_int_equal(ex.count, 2);
    want_ints(&ex.examples[1], "i", i1, 2);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);
    free(b);
}

static void test_example_request_context(void **state)
{
    (void)state;
    static const int64_t c[] = {42}, x0[] = {1}, x1[] = {2};
    static const float cf[] = {0.25f, 0.5f};
    struct fb ctx, e0, e1;
    fb_init(&ctx);
    fb_int(&ctx, "c", c, 1);
    fb_float(&ctx, "cf", cf, 2);
    fb_init(&e0);
    fb_int(&e0, "x", x0, 1);
    fb_init(&e1);
    fb_int(&e1, "x", x1, 1);
    Tensorflow__Example *exs[] = {&e0.ex, &e1.ex};
    struct ib in;
    ib_init(&in, exs, 2, &ctx.ex);
    Tensorflow__Serving__ModelSpec ms;
    spec_init(&ms, NULL, "m", NULL, 0);
    size_t n;
    uint8_t *b = pack_classify(&ms, &in.in, &n);
    struct coffer_serve_model_spec spec;
    struct coffer_serve_examples ex;
    struct coffer_serve_status st;
    assert_int_equal(decode_ex(b, n, NULL, &spec, &ex, &st), COFFER_OK);
    assert_false(spec.has_version);
    assert_int_equal(ex.count, 2);
    assert_int_equal(ex.context.count, 2);
    want_ints(&ex.context, "c", c, 1);
    want_floats(&ex.context, "cf", cf, 2);
    assert_int_equal(ex.examples[0].count, 1);
    want_ints(&ex.examples[0], "x", x0, 1);
    want_ints(&ex.examples[1], "x", x1, 1);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);
    free(b);
}

static void test_example_request_errors(void **state)
{
    (void)state;
    static const float f[] = {1.0f};
    struct fb e0;
    fb_init(&e0);
    fb_float(&e0, "f", f, 1);
    Tensorflow__Example *exs[] = {&e0.ex};
    struct ib in;
    ib_init(&in, exs, 1, NULL);
    Tensorflow__Serving__ModelSpec ms;
    spec_init(&ms, NULL, "m", NULL, 0);
    struct coffer_serve_model_spec spec;
    struct coffer_serve_examples ex;
    struct coffer_serve_status st;
    size_t n;
    uint8_t *b;

    /* no ModelSpec */
    b = pack_classify(NULL, &in.in, &n);
    want_invalid(decode_ex(b, n, NULL, &spec, &ex, &st), &st, "Missing ModelSpec");
    want_cleared_examples(&ex);
    assert_null(spec.name);
    free(b);

    /* no Input at all; an ExampleList without examples; a context alone */
    b = pack_classify(&ms, NULL, &n);
    want_invalid(decode_ex(b, n, NULL, &spec, &ex, &st), &st, "Input is empty.");
    want_cleared_examples(&ex);
    free(b);
    ib_init(&in, exs, 0, NULL);
    b = pack_classify(&ms, &in.in, &n);
    want_invalid(decode_ex(b, n, NULL, &spec, &ex, &st), &st, "Input is empty.");
    free(b);
    ib_init(&in, exs, 0, &e0.ex);
    b = pack_classify(&ms, &in.in, &n);
    want_invalid(decode_ex(b, n, NULL, &spec, &ex, &st), &st, "Input is empty.");
    want_cleared_examples(&ex);
    free(b);
    ib_init(&in, exs, 1, NULL);

    /* not protobuf: an error with a code and a message, never a crash */
    const struct {
        const char *bytes;
        size_t size;
    } junk[] = {
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11}, /* an overlong varint tag */
        {"\x0a\x05" "ab", 4},                                 /* model_spec longer than the message */
        {"\x12\x04\x0a\x02\x0a\x7f", 6},                      /* input > example_list > example cut short */
        {"\x0f", 1},                                          /* wire type 7 */
        {"\x0b\x0c", 2},                                      /* a group */
    };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        enum coffer_err r = decode_ex((const uint8_t *)junk[i].bytes, junk[i].size, NULL, &spec, &ex, &st);
        if (r == COFFER_OK)
            fail_msg("junk %zu accepted", i);
        assert_true(st.code != COFFER_SERVE_OK);
        assert_true(st.message[0] != '\0');
        want_cleared_examples(&ex);
    }
    uint8_t pat[200];
    tu_pattern(pat, sizeof(pat), 0);
    assert_int_not_equal(decode_ex(pat, sizeof(pat), NULL, &spec, &ex, &st), COFFER_OK);
    assert_true(st.code != COFFER_SERVE_OK);

    /* a float_list whose packed values are 3 bytes (not a multiple of 4),
     * every length around it consistent */
    static const uint8_t odd_floats[] = {0x0a, 0x03, 0x00, 0x00, 0x80}; /* FloatList */
    uint8_t feature[16], entry[32], features[48], example[64], list[80], input[96], msg[128];
    size_t nf = put_ld(feature, 2, odd_floats, sizeof(odd_floats));   /* Feature.float_list */
    size_t nen = put_ld(entry, 1, (const uint8_t *)"f", 1);             /* key */
    nen += put_ld(entry + nen, 2, feature, nf);                         /* value */
    size_t nfs = put_ld(features, 1, entry, nen);                       /* Features.feature */
    size_t nex = put_ld(example, 1, features, nfs);                     /* Example.features */
    size_t nl = put_ld(list, 1, example, nex);                          /* ExampleList.examples */
    size_t ni = put_ld(input, 1, list, nl);                             /* Input.example_list */
    size_t nm = put_ld(msg, 1, (const uint8_t *)"\x0a\x01m", 3);        /* model_spec { name: "m" } */
    nm += put_ld(msg + nm, 2, input, ni);
    assert_int_not_equal(decode_ex(msg, nm, NULL, &spec, &ex, &st), COFFER_OK);
    assert_true(st.code != COFFER_SERVE_OK);
    want_cleared_examples(&ex);
    /* the same with 4 bytes decodes: the framing above is right */
    static const uint8_t four_floats[] = {0x0a, 0x04, 0x00, 0x00, 0x80, 0x3f}; /* [1.0] */
    nf = put_ld(feature, 2, four_floats, sizeof(four_floats));
    nen = put_ld(entry, 1, (const uint8_t *)"f", 1);
    nen += put_ld(entry + nen, 2, feature, nf);
    nfs = put_ld(features, 1, entry, nen);
    nex = put_ld(example, 1, features, nfs);
    nl = put_ld(list, 1, example, nex);
    ni = put_ld(input, 1, list, nl);
    nm = put_ld(msg, 1, (const uint8_t *)"\x0a\x01m", 3);
    nm += put_ld(msg + nm, 2, input, ni);
    assert_int_equal(decode_ex(msg, nm, NULL, &spec, &ex, &st), COFFER_OK);
    want_floats(&ex.examples[0], "f", f, 1);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);
}

static void test_example_request_limits(void **state)
{
    (void)state;
    struct coffer_serve_limits lim;
    coffer_serve_limits_default(&lim);
    struct coffer_serve_model_spec spec;
    struct coffer_serve_examples ex;
    struct coffer_serve_status st;
    Tensorflow__Serving__ModelSpec ms;
    spec_init(&ms, NULL, "m", NULL, 0);
    struct ib in;
    size_t n;
    uint8_t *b;

    /* the message over max_message_size; at it, fine */
    static float big[100];
    for (size_t i = 0; i < 100; i++)
        big[i] = (float)i;
    struct fb e0, e1, e2;
    fb_init(&e0);
    fb_float(&e0, "f", big, 100);
    Tensorflow__Example *exs[] = {&e0.ex, &e1.ex, &e2.ex};
    ib_init(&in, exs, 1, NULL);
    b = pack_classify(&ms, &in.in, &n);
    lim.max_message_size = n - 1;
    want_error(decode_ex(b, n, &lim, &spec, &ex, &st), &st, COFFER_E_TOO_LARGE, COFFER_SERVE_RESOURCE_EXHAUSTED,
               NULL);
    want_cleared_examples(&ex);
    lim.max_message_size = n;
    assert_int_equal(decode_ex(b, n, &lim, &spec, &ex, &st), COFFER_OK);
    assert_int_equal(ex.examples[0].features[0].count, 100);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);

    /* one feature's values (400 bytes of floats) over max_tensor_size */
    coffer_serve_limits_default(&lim);
    lim.max_tensor_size = 200;
    want_error(decode_ex(b, n, &lim, &spec, &ex, &st), &st, COFFER_E_TOO_LARGE, COFFER_SERVE_RESOURCE_EXHAUSTED,
               NULL);
    want_cleared_examples(&ex);
    free(b);

    /* three features of 160 bytes each: each under max_tensor_size, together
     * over max_total_size */
    fb_init(&e0);
    fb_float(&e0, "f", big, 40);
    fb_init(&e1);
    fb_float(&e1, "f", big, 40);
    fb_init(&e2);
    fb_float(&e2, "f", big, 40);
    ib_init(&in, exs, 3, NULL);
    b = pack_classify(&ms, &in.in, &n);
    lim.max_tensor_size = 200;
    lim.max_total_size = 300;
    want_error(decode_ex(b, n, &lim, &spec, &ex, &st), &st, COFFER_E_TOO_LARGE, COFFER_SERVE_RESOURCE_EXHAUSTED,
               NULL);
    want_cleared_examples(&ex);
    lim.max_total_size = 1000;
    lim.max_tensor_size = 1000;
    assert_int_equal(decode_ex(b, n, &lim, &spec, &ex, &st), COFFER_OK);
    assert_int_equal(ex.count, 3);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);
    free(b);

    /* COFFER_SERVE_MAX_FEATURES in one Example: at the cap, and one over */
    size_t nf = COFFER_SERVE_MAX_FEATURES + 1;
    Tensorflow__Features__FeatureEntry *entries = calloc(nf, sizeof(*entries));
    Tensorflow__Features__FeatureEntry **entryp = calloc(nf, sizeof(*entryp));
    Tensorflow__Feature *fs = calloc(nf, sizeof(*fs));
    char (*names)[16] = calloc(nf, 16);
    assert_true(entries && entryp && fs && names);
    for (size_t i = 0; i < nf; i++) {
        tensorflow__features__feature_entry__init(&entries[i]);
        tensorflow__feature__init(&fs[i]);
        snprintf(names[i], 16, "f%zu", i);
        entries[i].key = names[i];
        entries[i].value = &fs[i];
        entryp[i] = &entries[i];
    }
    fb_init(&e0);
    e0.features.feature = entryp;
    e0.features.n_feature = COFFER_SERVE_MAX_FEATURES;
    ib_init(&in, exs, 1, NULL);
    b = pack_classify(&ms, &in.in, &n);
    assert_int_equal(decode_ex(b, n, NULL, &spec, &ex, &st), COFFER_OK);
    assert_int_equal(ex.examples[0].count, COFFER_SERVE_MAX_FEATURES);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);
    free(b);
    e0.features.n_feature = nf;
    b = pack_classify(&ms, &in.in, &n);
    want_error(decode_ex(b, n, NULL, &spec, &ex, &st), &st, COFFER_E_TOO_LARGE, COFFER_SERVE_RESOURCE_EXHAUSTED,
               NULL);
    want_cleared_examples(&ex);
    free(b);
    /* the same cap on the context */
    fb_init(&e1);
    ib_init(&in, exs + 1, 1, &e0.ex);
    b = pack_classify(&ms, &in.in, &n);
    want_error(decode_ex(b, n, NULL, &spec, &ex, &st), &st, COFFER_E_TOO_LARGE, COFFER_SERVE_RESOURCE_EXHAUSTED,
               NULL);
    want_cleared_examples(&ex);
    free(b);
    free(entries);
    free(entryp);
    free(fs);
    free(names);

    /* COFFER_SERVE_MAX_EXAMPLES: at the cap, and one over */
    size_t ne = COFFER_SERVE_MAX_EXAMPLES + 1;
    Tensorflow__Example **many = calloc(ne, sizeof(*many));
    assert_non_null(many);
    fb_init(&e2);
    for (size_t i = 0; i < ne; i++)
        many[i] = &e2.ex;
    ib_init(&in, many, COFFER_SERVE_MAX_EXAMPLES, NULL);
    b = pack_classify(&ms, &in.in, &n);
    assert_int_equal(decode_ex(b, n, NULL, &spec, &ex, &st), COFFER_OK);
    assert_int_equal(ex.count, COFFER_SERVE_MAX_EXAMPLES);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);
    free(b);
    ib_init(&in, many, ne, NULL);
    b = pack_classify(&ms, &in.in, &n);
    want_error(decode_ex(b, n, NULL, &spec, &ex, &st), &st, COFFER_E_TOO_LARGE, COFFER_SERVE_RESOURCE_EXHAUSTED,
               NULL);
    want_cleared_examples(&ex);
    free(b);
    free(many);
}

/* A key sent twice in one Example: the last wins, whether the two entries
 * sit in one Features message or in two (concatenated Features, which
 * protobuf merges). */
static void test_example_duplicate_keys(void **state)
{
    (void)state;
    static const float one[] = {1.0f}, two[] = {2.0f}, five[] = {5.0f, 6.0f};
    static const int64_t ints[] = {2, 3};
    struct coffer_serve_model_spec spec;
    struct coffer_serve_examples ex;
    struct coffer_serve_status st;
    Tensorflow__Serving__ModelSpec ms;
    spec_init(&ms, NULL, "m", NULL, 0);
    size_t n;

    /* one Features message, two entries "a" of different kinds */
    struct fb e0;
    fb_init(&e0);
    fb_float(&e0, "a", one, 1);
    fb_float(&e0, "b", two, 1);
    fb_int(&e0, "a", ints, 2);
    Tensorflow__Example *exs[] = {&e0.ex};
    struct ib in;
    ib_init(&in, exs, 1, NULL);
    uint8_t *b = pack_classify(&ms, &in.in, &n);
    assert_int_equal(decode_ex(b, n, NULL, &spec, &ex, &st), COFFER_OK);
    assert_int_equal(ex.examples[0].count, 2);
    want_ints(&ex.examples[0], "a", ints, 2);
    want_floats(&ex.examples[0], "b", two, 1);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);
    free(b);

    /* Example bytes = features {a: [1], b: [2]} then features {a: [5, 6]} */
    struct fb f1, f2;
    fb_init(&f1);
    fb_float(&f1, "a", one, 1);
    fb_float(&f1, "b", two, 1);
    fb_init(&f2);
    fb_float(&f2, "a", five, 2);
    size_t n1, n2;
    uint8_t *p1 = pack(&f1.features.base, &n1), *p2 = pack(&f2.features.base, &n2);
    uint8_t example[256], list[300], input[350], specb[64], msg[512];
    size_t ne = put_ld(example, 1, p1, n1);
    ne += put_ld(example + ne, 1, p2, n2);
    size_t nl = put_ld(list, 1, example, ne);         /* ExampleList.examples */
    size_t ni = put_ld(input, 1, list, nl);           /* Input.example_list */
    size_t ns = protobuf_c_message_pack(&ms.base, specb);
    size_t nm = put_ld(msg, 1, specb, ns);            /* model_spec */
    nm += put_ld(msg + nm, 2, input, ni);             /* input */
    assert_int_equal(decode_ex(msg, nm, NULL, &spec, &ex, &st), COFFER_OK);
    assert_int_equal(ex.count, 1);
    assert_int_equal(ex.examples[0].count, 2);
    want_floats(&ex.examples[0], "a", five, 2);
    want_floats(&ex.examples[0], "b", two, 1);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);

    /* the same in the context of an ExampleListWithContext */
    uint8_t wctx[600];
    struct fb plain;
    fb_init(&plain);
    size_t np;
    uint8_t *pp = pack(&plain.ex.base, &np);
    size_t nw = put_ld(wctx, 1, pp, np);              /* examples */
    nw += put_ld(wctx + nw, 2, example, ne);          /* context */
    ni = put_ld(input, 2, wctx, nw);                  /* Input.example_list_with_context */
    nm = put_ld(msg, 1, specb, ns);
    nm += put_ld(msg + nm, 2, input, ni);
    assert_int_equal(decode_ex(msg, nm, NULL, &spec, &ex, &st), COFFER_OK);
    assert_int_equal(ex.count, 1);
    assert_int_equal(ex.context.count, 2);
    want_floats(&ex.context, "a", five, 2);
    want_floats(&ex.context, "b", two, 1);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);
    free(pp);
    free(p1);
    free(p2);
}

/* --------------------------------------------------- MultiInference */

struct mb {
    Tensorflow__Serving__MultiInferenceRequest req;
    Tensorflow__Serving__InferenceTask task[4];
    Tensorflow__Serving__InferenceTask *taskp[4];
    Tensorflow__Serving__ModelSpec spec[4];
    Google__Protobuf__Int64Value ver[4];
};

static void mb_init(struct mb *b, Tensorflow__Serving__Input *in)
{
    memset(b, 0, sizeof(*b));
    tensorflow__serving__multi_inference_request__init(&b->req);
    b->req.tasks = b->taskp;
    b->req.input = in;
}

static Tensorflow__Serving__InferenceTask *mb_task(struct mb *b, const char *model, const char *sig,
                                                   const char *method)
{
    size_t i = b->req.n_tasks++;
    assert_true(i < 4);
    tensorflow__serving__inference_task__init(&b->task[i]);
    spec_init(&b->spec[i], NULL, model, sig, 0);
    b->task[i].model_spec = &b->spec[i];
    b->task[i].method_name = (char *)method;
    b->taskp[i] = &b->task[i];
    return &b->task[i];
}

static enum coffer_err decode_multi(struct mb *b, struct coffer_serve_multi_request *out,
                                    struct coffer_serve_status *st)
{
    size_t n;
    uint8_t *p = pack(&b->req.base, &n);
    enum coffer_err r = coffer_serve_multi_request_decode(p, n, NULL, out, st);
    free(p);
    return r;
}

static void want_cleared_multi(const struct coffer_serve_multi_request *m)
{
    assert_null(m->tasks);
    assert_int_equal(m->task_count, 0);
    want_cleared_examples(&m->input);
}

static void test_multi_request_decode(void **state)
{
    (void)state;
    static const float f0[] = {1.0f, 2.0f}, f1[] = {3.0f, 4.0f};
    struct fb e0, e1;
    fb_init(&e0);
    fb_float(&e0, "x", f0, 2);
    fb_init(&e1);
    fb_float(&e1, "x", f1, 2);
    Tensorflow__Example *exs[] = {&e0.ex, &e1.ex};
    struct ib in;
    ib_init(&in, exs, 2, NULL);
    struct mb b;
    mb_init(&b, &in.in);
    mb_task(&b, "m", "cls", COFFER_SERVE_CLASSIFY_METHOD);
    mb_task(&b, "m", "reg", COFFER_SERVE_REGRESS_METHOD);
    b.spec[1].version_choice_case = TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION;
    google__protobuf__int64_value__init(&b.ver[1]);
    b.ver[1].value = 3;
    b.spec[1].version = &b.ver[1];
    struct coffer_serve_multi_request m;
    struct coffer_serve_status st;
    assert_int_equal(decode_multi(&b, &m, &st), COFFER_OK);
    assert_int_equal(m.task_count, 2);
    assert_string_equal(m.tasks[0].spec.name, "m");
    assert_string_equal(m.tasks[0].spec.signature_name, "cls");
    assert_false(m.tasks[0].spec.has_version);
    assert_string_equal(m.tasks[0].method_name, COFFER_SERVE_CLASSIFY_METHOD);
    assert_string_equal(m.tasks[1].spec.name, "m");
    assert_string_equal(m.tasks[1].spec.signature_name, "reg");
    assert_true(m.tasks[1].spec.has_version);
    assert_int_equal(m.tasks[1].spec.version, 3);
    assert_string_equal(m.tasks[1].method_name, COFFER_SERVE_REGRESS_METHOD);
    assert_int_equal(m.input.count, 2);
    want_floats(&m.input.examples[0], "x", f0, 2);
    want_floats(&m.input.examples[1], "x", f1, 2);
    coffer_serve_multi_request_free(&m);

    /* one task with the default signature, and a context */
    static const int64_t c[] = {9};
    struct fb ctx;
    fb_init(&ctx);
    fb_int(&ctx, "c", c, 1);
    ib_init(&in, exs, 2, &ctx.ex);
    mb_init(&b, &in.in);
    mb_task(&b, "m", NULL, COFFER_SERVE_REGRESS_METHOD);
    assert_int_equal(decode_multi(&b, &m, &st), COFFER_OK);
    assert_int_equal(m.task_count, 1);
    assert_string_equal(m.tasks[0].spec.signature_name, "");
    assert_int_equal(m.input.count, 2);
    want_ints(&m.input.context, "c", c, 1);
    coffer_serve_multi_request_free(&m);
}

static void test_multi_request_errors(void **state)
{
    (void)state;
    static const float f0[] = {1.0f};
    struct fb e0;
    fb_init(&e0);
    fb_float(&e0, "x", f0, 1);
    Tensorflow__Example *exs[] = {&e0.ex};
    struct ib in;
    ib_init(&in, exs, 1, NULL);
    struct mb b;
    struct coffer_serve_multi_request m;
    struct coffer_serve_status st;

    mb_init(&b, &in.in);
    want_invalid(decode_multi(&b, &m, &st), &st, "MultiInferenceRequest must specify at least one task");
    want_cleared_multi(&m);

    mb_init(&b, &in.in);
    mb_task(&b, "m", "a", COFFER_SERVE_CLASSIFY_METHOD);
    mb_task(&b, "", "b", COFFER_SERVE_CLASSIFY_METHOD);
    want_invalid(decode_multi(&b, &m, &st), &st, "Found ModelSpec with an empty model name.");
    want_cleared_multi(&m);

    mb_init(&b, &in.in);
    mb_task(&b, "", "a", COFFER_SERVE_CLASSIFY_METHOD);
    want_invalid(decode_multi(&b, &m, &st), &st, "Found ModelSpec with an empty model name.");

    mb_init(&b, &in.in);
    mb_task(&b, "m", "a", COFFER_SERVE_CLASSIFY_METHOD);
    mb_task(&b, "m", "b", COFFER_SERVE_CLASSIFY_METHOD)->model_spec = NULL;
    want_invalid(decode_multi(&b, &m, &st), &st, "Missing ModelSpec");
    want_cleared_multi(&m);

    mb_init(&b, &in.in);
    mb_task(&b, "m", "a", COFFER_SERVE_CLASSIFY_METHOD);
    mb_task(&b, "n", "b", COFFER_SERVE_REGRESS_METHOD);
    want_invalid(decode_multi(&b, &m, &st), &st,
                 "All ModelSpecs in a MultiInferenceRequest must access the same model name.");
    want_cleared_multi(&m);

    /* a signature named twice is left to the server, which resolves ""
     * against the model first: the decoder takes it */
    mb_init(&b, &in.in);
    mb_task(&b, "m", "a", COFFER_SERVE_CLASSIFY_METHOD);
    mb_task(&b, "m", "a", COFFER_SERVE_REGRESS_METHOD);
    assert_int_equal(decode_multi(&b, &m, &st), COFFER_OK);
    assert_int_equal(m.task_count, 2);
    assert_string_equal(m.tasks[1].spec.signature_name, "a");
    coffer_serve_multi_request_free(&m);

    mb_init(&b, &in.in);
    mb_task(&b, "m", "a", COFFER_SERVE_CLASSIFY_METHOD);
    mb_task(&b, "m", "b", COFFER_SERVE_PREDICT_METHOD);
    want_error(decode_multi(&b, &m, &st), &st, COFFER_E_UNSUPPORTED, COFFER_SERVE_UNIMPLEMENTED,
               "Unsupported signature method_name: tensorflow/serving/predict");
    want_cleared_multi(&m);
    mb_init(&b, &in.in);
    mb_task(&b, "m", "a", "tensorflow/serving/classify2");
    want_error(decode_multi(&b, &m, &st), &st, COFFER_E_UNSUPPORTED, COFFER_SERVE_UNIMPLEMENTED,
               "Unsupported signature method_name: tensorflow/serving/classify2");

    /* the input as a Classify request's */
    ib_init(&in, exs, 0, NULL);
    mb_init(&b, &in.in);
    mb_task(&b, "m", "a", COFFER_SERVE_CLASSIFY_METHOD);
    want_invalid(decode_multi(&b, &m, &st), &st, "Input is empty.");
    want_cleared_multi(&m);
    mb_init(&b, NULL);
    mb_task(&b, "m", "a", COFFER_SERVE_CLASSIFY_METHOD);
    want_invalid(decode_multi(&b, &m, &st), &st, "Input is empty.");

    /* size limit, and junk */
    ib_init(&in, exs, 1, NULL);
    mb_init(&b, &in.in);
    mb_task(&b, "m", "a", COFFER_SERVE_CLASSIFY_METHOD);
    size_t n;
    uint8_t *p = pack(&b.req.base, &n);
    struct coffer_serve_limits lim;
    coffer_serve_limits_default(&lim);
    lim.max_message_size = n - 1;
    want_error(coffer_serve_multi_request_decode(p, n, &lim, &m, &st), &st, COFFER_E_TOO_LARGE,
               COFFER_SERVE_RESOURCE_EXHAUSTED, NULL);
    want_cleared_multi(&m);
    assert_int_not_equal(coffer_serve_multi_request_decode(p, n - 1, NULL, &m, &st), COFFER_OK);
    assert_true(st.code != COFFER_SERVE_OK);
    want_cleared_multi(&m);
    free(p);
}

/* ------------------------------------------------------------------ REST */

static enum coffer_err rest(const char *body, char **sig, struct coffer_serve_examples *ex,
                            struct coffer_serve_status *st)
{
    return coffer_serve_rest_examples_parse(body, strlen(body), NULL, sig, ex, st);
}

static void test_rest_examples_parse(void **state)
{
    (void)state;
    char *sig;
    struct coffer_serve_examples ex;
    struct coffer_serve_status st;
    const char *body = "{\"signature_name\": \"cls\",\n"
                       " \"context\": {\"c\": 7, \"cs\": \"common\", \"cf\": 0.5},\n"
                       " \"examples\": [\n"
                       "  {\"i\": 1, \"t\": true, \"fa\": false, \"f\": 2.5, \"e\": 1e2, \"mix\": [1, 2.5],\n"
                       "   \"l\": [1, -2, 3], \"s\": \"hi\", \"b\": {\"b64\": \"aGk=\"}, \"ss\": [\"a\", {\"b64\": \"Yg==\"}],\n"
                       "   \"fl\": [0.25, -1.5], \"big\": 9007199254740993, \"none\": []},\n"
                       "  {\"i\": [4, 5]}\n"
                       " ]}";
    assert_int_equal(rest(body, &sig, &ex, &st), COFFER_OK);
    assert_string_equal(sig, "cls");
    assert_int_equal(ex.count, 2);
    assert_int_equal(ex.context.count, 3);
    static const int64_t seven[] = {7};
    static const float half[] = {0.5f};
    want_ints(&ex.context, "c", seven, 1);
    want_kind(&ex.context, "cs", COFFER_SERVE_FEATURE_BYTES, 1);
    want_floats(&ex.context, "cf", half, 1);

    const struct coffer_serve_example *e0 = &ex.examples[0];
    assert_int_equal(e0->count, 13);
    static const int64_t one[] = {1}, zero[] = {0}, l[] = {1, -2, 3}, big[] = {9007199254740993LL};
    static const float f[] = {2.5f}, e[] = {100.0f}, mix[] = {1.0f, 2.5f}, fl[] = {0.25f, -1.5f};
    want_ints(e0, "i", one, 1);
    want_ints(e0, "t", one, 1);
    want_ints(e0, "fa", zero, 1);
    want_floats(e0, "f", f, 1);
    want_floats(e0, "e", e, 1);
    want_floats(e0, "mix", mix, 2);
    want_ints(e0, "l", l, 3);
    want_kind(e0, "s", COFFER_SERVE_FEATURE_BYTES, 1);
    want_kind(e0, "b", COFFER_SERVE_FEATURE_BYTES, 1);
    want_kind(e0, "ss", COFFER_SERVE_FEATURE_BYTES, 2);
    want_floats(e0, "fl", fl, 2);
    want_ints(e0, "big", big, 1);
    want_kind(e0, "none", COFFER_SERVE_FEATURE_NONE, 0);
    static const int64_t i45[] = {4, 5};
    assert_int_equal(ex.examples[1].count, 1);
    want_ints(&ex.examples[1], "i", i45, 2);
    coffer_serve_examples_free(&ex);
    coffer_free(sig);

    /* no signature_name, no context; a float list that starts with an integer */
    assert_int_equal(rest("{\"examples\": [{\"x\": [2, 0.5, 3]}]}", &sig, &ex, &st), COFFER_OK);
    assert_non_null(sig);
    assert_string_equal(sig, "");
    assert_int_equal(ex.count, 1);
    assert_int_equal(ex.context.count, 0);
    static const float x[] = {2.0f, 0.5f, 3.0f};
    want_floats(&ex.examples[0], "x", x, 3);
    coffer_serve_examples_free(&ex);
    coffer_free(sig);

    /* an empty example is an example */
    assert_int_equal(rest("{\"examples\": [{}, {}]}", &sig, &ex, &st), COFFER_OK);
    assert_int_equal(ex.count, 2);
    assert_int_equal(ex.examples[0].count, 0);
    coffer_serve_examples_free(&ex);
    coffer_free(sig);
}

static void test_rest_examples_errors(void **state)
{
    (void)state;
    char *sig;
    struct coffer_serve_examples ex;
    struct coffer_serve_status st;
    /* INVALID_ARGUMENT; the message names `names` when not NULL */
    const struct {
        const char *body;
        const char *names;
    } cases[] = {
        {"", NULL},
        {"not json", NULL},
        {"{\"examples\": [{\"a\": 1}]", NULL},
        {"[{\"a\": 1}]", NULL},
        {"{}", NULL},
        {"{\"context\": {\"a\": 1}}", NULL},
        {"{\"examples\": 5}", NULL},
        {"{\"examples\": {\"a\": 1}}", NULL},
        {"{\"examples\": [5]}", NULL},
        {"{\"examples\": [{\"a\": 1}, [1]]}", NULL},
        {"{\"examples\": [{\"a\": 1}, \"x\"]}", NULL},
        {"{\"examples\": [{\"feat_null\": null}]}", "feat_null"},
        {"{\"examples\": [{\"feat_ln\": [1, null]}]}", "feat_ln"},
        {"{\"examples\": [{\"feat_nest\": [[1, 2]]}]}", "feat_nest"},
        {"{\"examples\": [{\"feat_nest2\": [1, [2]]}]}", "feat_nest2"},
        {"{\"examples\": [{\"feat_mix\": [1, \"x\"]}]}", "feat_mix"},
        {"{\"examples\": [{\"feat_mix2\": [\"x\", 2.5]}]}", "feat_mix2"},
        {"{\"examples\": [{\"feat_mix3\": [{\"b64\": \"aGk=\"}, 1]}]}", "feat_mix3"},
        {"{\"examples\": [{\"feat_mix4\": [true, \"x\"]}]}", "feat_mix4"},
        {"{\"examples\": [{\"feat_obj\": {\"x\": 1}}]}", "feat_obj"},
        {"{\"examples\": [{\"feat_obj2\": [{\"b64\": \"aGk=\"}, {\"y\": 1}]}]}", "feat_obj2"},
        {"{\"examples\": [{\"a\": 1}], \"context\": {\"ctx_null\": null}}", "ctx_null"},
        {"{\"examples\": [{\"a\": 1}], \"context\": [1]}", NULL},
        {"{\"examples\": [{\"a\": 1}], \"signature_name\": 3}", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum coffer_err r = rest(cases[i].body, &sig, &ex, &st);
        if (r == COFFER_OK)
            fail_msg("case %zu accepted: %s", i, cases[i].body);
        if (st.code != COFFER_SERVE_INVALID_ARGUMENT)
            fail_msg("case %zu (%s): code %s, want INVALID_ARGUMENT (%s)", i, cases[i].body,
                     coffer_serve_code_name(st.code), st.message);
        if (st.message[0] == '\0')
            fail_msg("case %zu: no message", i);
        if (cases[i].names != NULL && strstr(st.message, cases[i].names) == NULL)
            fail_msg("case %zu: message \"%s\" does not name %s", i, st.message, cases[i].names);
        assert_null(sig);
        want_cleared_examples(&ex);
    }

    /* an empty list of examples */
    enum coffer_err r = rest("{\"examples\": []}", &sig, &ex, &st);
    want_invalid(r, &st, NULL);
    want_cleared_examples(&ex);
    assert_null(sig);
    if (strcmp(st.message, "Input is empty.") != 0)
        print_message("note: {\"examples\": []} gives \"%s\"\n", st.message);

    /* over max_message_size */
    struct coffer_serve_limits lim;
    coffer_serve_limits_default(&lim);
    const char *body = "{\"examples\": [{\"a\": [1, 2, 3]}]}";
    lim.max_message_size = strlen(body) - 1;
    want_error(coffer_serve_rest_examples_parse(body, strlen(body), &lim, &sig, &ex, &st), &st, COFFER_E_TOO_LARGE,
               COFFER_SERVE_RESOURCE_EXHAUSTED, NULL);
    want_cleared_examples(&ex);
    lim.max_message_size = strlen(body);
    assert_int_equal(coffer_serve_rest_examples_parse(body, strlen(body), &lim, &sig, &ex, &st), COFFER_OK);
    coffer_serve_examples_free(&ex);
    coffer_free(sig);
}

/* ------------------------------------------------------ examples -> tensors */

#define F(n, v) {.name = (char *)(n), .kind = COFFER_SERVE_FEATURE_FLOAT, .count = sizeof(v) / sizeof((v)[0]), .floats = (float *)(v)}
#define I(n, v) {.name = (char *)(n), .kind = COFFER_SERVE_FEATURE_INT64, .count = sizeof(v) / sizeof((v)[0]), .ints = (int64_t *)(v)}
#define B(n, k) {.name = (char *)(n), .kind = COFFER_SERVE_FEATURE_BYTES, .count = (k)}
#define EX(fs) {.features = (struct coffer_serve_feature *)(fs), .count = sizeof(fs) / sizeof((fs)[0])}

static const struct coffer_serve_tensor_info sig_inputs[] = {
    {.alias = "image", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 4, .dims = {-1, 1, 2, 2}},
    {.alias = "ids", .dtype = COFFER_SERVE_DT_INT64, .rank = 1, .dims = {-1}},
};

static int feature_name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct coffer_serve_feature *)a)->name, ((const struct coffer_serve_feature *)b)->name);
}

/* Features in name order, as struct coffer_serve_example holds them. */
static void sort_features(struct coffer_serve_example *e)
{
    if (e->count > 1)
        qsort(e->features, e->count, sizeof(*e->features), feature_name_cmp);
}

static enum coffer_err to_tensors(const struct coffer_serve_examples *in, const struct coffer_serve_tensor_info *infos,
                                  size_t count, struct coffer_serve_tensor *out, struct coffer_serve_status *st)
{
    for (size_t e = 0; e < in->count; e++)
        sort_features(&in->examples[e]);
    sort_features((struct coffer_serve_example *)&in->context);
    for (size_t i = 0; i < count; i++)
        memset(&out[i], 0x5a, sizeof(out[i])); /* garbage: cleared on entry */
    return coffer_serve_examples_to_tensors(in, infos, count, NULL, out, st);
}

/* A macro, so that a failure names the caller's line. */
#define want_out_cleared(out, count)                                                                                   \
    do {                                                                                                               \
        for (size_t i_ = 0; i_ < (count); i_++) {                                                                      \
            assert_null((out)[i_].data);                                                                               \
            assert_null((out)[i_].name);                                                                               \
        }                                                                                                              \
    } while (0)

static void test_examples_to_tensors(void **state)
{
    (void)state;
    static const float im0[] = {1, 2, 3, 4}, im1[] = {5, 6, 7, 8};
    static const int64_t id0[] = {10}, id1[] = {-20};
    struct coffer_serve_feature fs0[] = {I("ids", id0), F("image", im0), B("unused", 2)};
    struct coffer_serve_feature fs1[] = {F("image", im1), I("ids", id1)};
    struct coffer_serve_example exs[] = {EX(fs0), EX(fs1)};
    struct coffer_serve_examples in = {.examples = exs, .count = 2};
    struct coffer_serve_tensor out[2];
    struct coffer_serve_status st;
    assert_int_equal(to_tensors(&in, sig_inputs, 2, out, &st), COFFER_OK);
    assert_string_equal(out[0].name, "image");
    assert_int_equal(out[0].dtype, COFFER_SERVE_DT_FLOAT);
    assert_int_equal(out[0].rank, 4);
    assert_int_equal(out[0].dims[0], 2);
    assert_int_equal(out[0].dims[1], 1);
    assert_int_equal(out[0].dims[2], 2);
    assert_int_equal(out[0].dims[3], 2);
    assert_int_equal(out[0].count, 8);
    assert_int_equal(out[0].size, 8 * sizeof(float));
    static const float want_im[] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(out[0].data, want_im, sizeof(want_im));
    assert_string_equal(out[1].name, "ids");
    assert_int_equal(out[1].dtype, COFFER_SERVE_DT_INT64);
    assert_int_equal(out[1].rank, 1);
    assert_int_equal(out[1].dims[0], 2);
    assert_int_equal(out[1].count, 2);
    assert_int_equal(out[1].size, 2 * sizeof(int64_t));
    static const int64_t want_ids[] = {10, -20};
    assert_memory_equal(out[1].data, want_ids, sizeof(want_ids));
    coffer_serve_tensor_free(&out[0]);
    coffer_serve_tensor_free(&out[1]);

    /* one example */
    in.count = 1;
    assert_int_equal(to_tensors(&in, sig_inputs, 2, out, &st), COFFER_OK);
    assert_int_equal(out[0].dims[0], 1);
    assert_int_equal(out[0].count, 4);
    assert_memory_equal(out[0].data, im0, sizeof(im0));
    assert_int_equal(out[1].dims[0], 1);
    assert_int_equal(*(int64_t *)out[1].data, 10);
    coffer_serve_tensor_free(&out[0]);
    coffer_serve_tensor_free(&out[1]);
}

static void test_examples_to_tensors_context(void **state)
{
    (void)state;
    static const float im0[] = {1, 2, 3, 4}, imc[] = {-1, -2, -3, -4};
    static const int64_t id0[] = {10}, idc[] = {99};
    struct coffer_serve_feature fs0[] = {F("image", im0), I("ids", id0)}; /* own values win */
    struct coffer_serve_feature fs1[] = {F("image", im0)};                /* ids from the context */
    struct coffer_serve_feature fs2[] = {B("other", 1)};                  /* both from the context */
    struct coffer_serve_feature ctx[] = {I("ids", idc), F("image", imc)};
    struct coffer_serve_example exs[] = {EX(fs0), EX(fs1), EX(fs2)};
    struct coffer_serve_examples in = {.examples = exs, .count = 3, .context = EX(ctx)};
    struct coffer_serve_tensor out[2];
    struct coffer_serve_status st;
    assert_int_equal(to_tensors(&in, sig_inputs, 2, out, &st), COFFER_OK);
    assert_int_equal(out[0].dims[0], 3);
    static const float want_im[] = {1, 2, 3, 4, 1, 2, 3, 4, -1, -2, -3, -4};
    assert_memory_equal(out[0].data, want_im, sizeof(want_im));
    static const int64_t want_ids[] = {10, 99, 99};
    assert_int_equal(out[1].dims[0], 3);
    assert_memory_equal(out[1].data, want_ids, sizeof(want_ids));
    coffer_serve_tensor_free(&out[0]);
    coffer_serve_tensor_free(&out[1]);
}

static void test_examples_to_tensors_conversions(void **state)
{
    (void)state;
    struct coffer_serve_tensor out[3];
    struct coffer_serve_status st;

    /* int64 values to a float and a double input; float values to a double */
    static const int64_t im_i[] = {1, -2, 3, 16777216};
    static const float d_f[] = {0.5f, 1.5f};
    static const int64_t d_i[] = {3, -4};
    static const int64_t n_i[] = {INT32_MIN}, n_j[] = {INT32_MAX};
    const struct coffer_serve_tensor_info infos[] = {
        {.alias = "image", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 4, .dims = {-1, 1, 2, 2}},
        {.alias = "d", .dtype = COFFER_SERVE_DT_DOUBLE, .rank = 2, .dims = {-1, 2}},
        {.alias = "n", .dtype = COFFER_SERVE_DT_INT32, .rank = 1, .dims = {-1}},
    };
    struct coffer_serve_feature fs0[] = {I("image", im_i), F("d", d_f), I("n", n_i)};
    struct coffer_serve_feature fs1[] = {I("image", im_i), I("d", d_i), I("n", n_j)};
    struct coffer_serve_example exs[] = {EX(fs0), EX(fs1)};
    struct coffer_serve_examples in = {.examples = exs, .count = 2};
    assert_int_equal(to_tensors(&in, infos, 3, out, &st), COFFER_OK);
    static const float want_im[] = {1, -2, 3, 16777216, 1, -2, 3, 16777216};
    assert_int_equal(out[0].dtype, COFFER_SERVE_DT_FLOAT);
    assert_memory_equal(out[0].data, want_im, sizeof(want_im));
    static const double want_d[] = {0.5, 1.5, 3.0, -4.0};
    assert_int_equal(out[1].dtype, COFFER_SERVE_DT_DOUBLE);
    assert_int_equal(out[1].rank, 2);
    assert_int_equal(out[1].dims[0], 2);
    assert_int_equal(out[1].dims[1], 2);
    assert_memory_equal(out[1].data, want_d, sizeof(want_d));
    static const int32_t want_n[] = {INT32_MIN, INT32_MAX};
    assert_int_equal(out[2].dtype, COFFER_SERVE_DT_INT32);
    assert_int_equal(out[2].size, sizeof(want_n));
    assert_memory_equal(out[2].data, want_n, sizeof(want_n));
    for (size_t i = 0; i < 3; i++)
        coffer_serve_tensor_free(&out[i]);

    /* rank 0: one value per example, shape [N]; an unknown inner dim takes
     * the first example's count */
    static const float s0[] = {2.5f}, s1[] = {-1.0f}, v0[] = {1, 2, 3}, v1[] = {4, 5, 6};
    const struct coffer_serve_tensor_info infos2[] = {
        {.alias = "s", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 0},
        {.alias = "v", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 2, .dims = {-1, -1}},
    };
    struct coffer_serve_feature gs0[] = {F("s", s0), F("v", v0)};
    struct coffer_serve_feature gs1[] = {F("s", s1), F("v", v1)};
    struct coffer_serve_example exs2[] = {EX(gs0), EX(gs1)};
    struct coffer_serve_examples in2 = {.examples = exs2, .count = 2};
    assert_int_equal(to_tensors(&in2, infos2, 2, out, &st), COFFER_OK);
    assert_int_equal(out[0].rank, 1);
    assert_int_equal(out[0].dims[0], 2);
    static const float want_s[] = {2.5f, -1.0f};
    assert_memory_equal(out[0].data, want_s, sizeof(want_s));
    assert_int_equal(out[1].rank, 2);
    assert_int_equal(out[1].dims[0], 2);
    assert_int_equal(out[1].dims[1], 3);
    static const float want_v[] = {1, 2, 3, 4, 5, 6};
    assert_memory_equal(out[1].data, want_v, sizeof(want_v));
    coffer_serve_tensor_free(&out[0]);
    coffer_serve_tensor_free(&out[1]);
}

static void test_examples_to_tensors_errors(void **state)
{
    (void)state;
    struct coffer_serve_tensor out[3];
    struct coffer_serve_status st;
    static const float im[] = {1, 2, 3, 4}, im3[] = {1, 2, 3}, one_f[] = {1.0f};
    static const int64_t id[] = {7}, id2[] = {7, 8}, too_big[] = {3000000000LL}, too_small[] = {-2147483649LL};
    static const int64_t im_i[] = {1, 2, 3, 4};

    /* a missing feature (no context) */
    struct coffer_serve_feature a0[] = {F("image", im), I("ids", id)};
    struct coffer_serve_feature a1[] = {F("image", im)};
    struct coffer_serve_example ea[] = {EX(a0), EX(a1)};
    struct coffer_serve_examples in = {.examples = ea, .count = 2};
    want_invalid_naming(to_tensors(&in, sig_inputs, 2, out, &st), &st, "ids");
    want_out_cleared(out, 2);

    /* a context without it does not help */
    struct coffer_serve_feature c[] = {F("image", im)};
    in.context = (struct coffer_serve_example)EX(c);
    want_invalid_naming(to_tensors(&in, sig_inputs, 2, out, &st), &st, "ids");
    want_out_cleared(out, 2);
    in.context = (struct coffer_serve_example){0};

    /* a value count that is not the input's per-example size */
    struct coffer_serve_feature b0[] = {F("image", im3), I("ids", id)};
    struct coffer_serve_example eb[] = {EX(b0)};
    in = (struct coffer_serve_examples){.examples = eb, .count = 1};
    want_invalid_naming(to_tensors(&in, sig_inputs, 2, out, &st), &st, "image");
    want_out_cleared(out, 2);
    /* two values for a rank-1 input */
    struct coffer_serve_feature b1[] = {F("image", im), I("ids", id2)};
    struct coffer_serve_example eb1[] = {EX(b1)};
    in = (struct coffer_serve_examples){.examples = eb1, .count = 1};
    want_invalid_naming(to_tensors(&in, sig_inputs, 2, out, &st), &st, "ids");
    want_out_cleared(out, 2);

    /* a count that differs between examples under an unknown dim */
    static const float v3[] = {1, 2, 3}, v2[] = {1, 2};
    const struct coffer_serve_tensor_info vinfo[] = {
        {.alias = "v", .dtype = COFFER_SERVE_DT_FLOAT, .rank = 2, .dims = {-1, -1}},
    };
    struct coffer_serve_feature d0[] = {F("v", v3)};
    struct coffer_serve_feature d1[] = {F("v", v2)};
    struct coffer_serve_example ed[] = {EX(d0), EX(d1)};
    in = (struct coffer_serve_examples){.examples = ed, .count = 2};
    want_invalid_naming(to_tensors(&in, vinfo, 1, out, &st), &st, "v");
    want_out_cleared(out, 1);

    /* a bytes_list feature */
    struct coffer_serve_feature g0[] = {F("image", im), B("ids", 1)};
    struct coffer_serve_example eg[] = {EX(g0)};
    in = (struct coffer_serve_examples){.examples = eg, .count = 1};
    want_invalid_naming(to_tensors(&in, sig_inputs, 2, out, &st), &st, "ids");
    want_out_cleared(out, 2);
    struct coffer_serve_feature g1[] = {B("image", 4), I("ids", id)};
    struct coffer_serve_example eg1[] = {EX(g1)};
    in = (struct coffer_serve_examples){.examples = eg1, .count = 1};
    want_invalid_naming(to_tensors(&in, sig_inputs, 2, out, &st), &st, "image");
    want_out_cleared(out, 2);

    /* a float_list for an integer input (int64 and int32) */
    struct coffer_serve_feature h0[] = {F("image", im), F("ids", one_f)};
    struct coffer_serve_example eh[] = {EX(h0)};
    in = (struct coffer_serve_examples){.examples = eh, .count = 1};
    want_invalid_naming(to_tensors(&in, sig_inputs, 2, out, &st), &st, "ids");
    want_out_cleared(out, 2);
    const struct coffer_serve_tensor_info ninfo[] = {
        {.alias = "n", .dtype = COFFER_SERVE_DT_INT32, .rank = 1, .dims = {-1}},
    };
    struct coffer_serve_feature h1[] = {F("n", one_f)};
    struct coffer_serve_example eh1[] = {EX(h1)};
    in = (struct coffer_serve_examples){.examples = eh1, .count = 1};
    want_invalid_naming(to_tensors(&in, ninfo, 1, out, &st), &st, "n");
    want_out_cleared(out, 1);

    /* int64 values that do not fit int32, either side */
    struct coffer_serve_feature k0[] = {I("n", too_big)};
    struct coffer_serve_feature k1[] = {I("n", too_small)};
    struct coffer_serve_example ek0[] = {EX(k0)}, ek1[] = {EX(k1)};
    in = (struct coffer_serve_examples){.examples = ek0, .count = 1};
    want_invalid_naming(to_tensors(&in, ninfo, 1, out, &st), &st, "n");
    want_out_cleared(out, 1);
    in = (struct coffer_serve_examples){.examples = ek1, .count = 1};
    want_invalid_naming(to_tensors(&in, ninfo, 1, out, &st), &st, "n");
    want_out_cleared(out, 1);

    /* a feature with no list at all counts as no values */
    struct coffer_serve_feature m0[] = {{.name = "n", .kind = COFFER_SERVE_FEATURE_NONE}};
    struct coffer_serve_example em[] = {EX(m0)};
    in = (struct coffer_serve_examples){.examples = em, .count = 1};
    want_invalid_naming(to_tensors(&in, ninfo, 1, out, &st), &st, "n");
    want_out_cleared(out, 1);

    /* dtypes the examples cannot fill: UNIMPLEMENTED */
    const enum coffer_serve_dtype bad[] = {COFFER_SERVE_DT_HALF, COFFER_SERVE_DT_BFLOAT16, COFFER_SERVE_DT_STRING,
                                           COFFER_SERVE_DT_BOOL, COFFER_SERVE_DT_UINT8};
    struct coffer_serve_feature q0[] = {I("image", im_i)};
    struct coffer_serve_example eq[] = {EX(q0)};
    in = (struct coffer_serve_examples){.examples = eq, .count = 1};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct coffer_serve_tensor_info qi = {.alias = "image", .dtype = bad[i], .rank = 4, .dims = {-1, 1, 2, 2}};
        want_error(to_tensors(&in, &qi, 1, out, &st), &st, COFFER_E_UNSUPPORTED, COFFER_SERVE_UNIMPLEMENTED, NULL);
        want_out_cleared(out, 1);
    }

    /* the same errors in a later example, once the tensor is allocated */
    struct coffer_serve_feature s0[] = {F("image", im), I("ids", id)};
    struct coffer_serve_feature s1[] = {F("image", im), B("ids", 1)};
    struct coffer_serve_feature s2[] = {F("image", im), F("ids", one_f)};
    struct coffer_serve_feature s3[] = {F("image", im3), I("ids", id)};
    struct coffer_serve_example es1[] = {EX(s0), EX(s1)}, es2[] = {EX(s0), EX(s2)}, es3[] = {EX(s0), EX(s3)};
    in = (struct coffer_serve_examples){.examples = es1, .count = 2};
    want_invalid_naming(to_tensors(&in, sig_inputs, 2, out, &st), &st, "ids");
    want_out_cleared(out, 2);
    in = (struct coffer_serve_examples){.examples = es2, .count = 2};
    want_invalid_naming(to_tensors(&in, sig_inputs, 2, out, &st), &st, "ids");
    want_out_cleared(out, 2);
    in = (struct coffer_serve_examples){.examples = es3, .count = 2};
    want_invalid_naming(to_tensors(&in, sig_inputs, 2, out, &st), &st, "image");
    want_out_cleared(out, 2);

    /* the first input good, the second failing: nothing left to free */
    struct coffer_serve_feature r0[] = {F("image", im), F("ids", one_f)};
    struct coffer_serve_example er[] = {EX(r0)};
    in = (struct coffer_serve_examples){.examples = er, .count = 1};
    want_invalid_naming(to_tensors(&in, sig_inputs, 2, out, &st), &st, "ids");
    want_out_cleared(out, 2);
}

/* The tensors are sized from the examples (and a context feature repeated
 * into every example): the limits apply before they are allocated. */
static void test_examples_to_tensors_limits(void **state)
{
    (void)state;
    static const float im[] = {1, 2, 3, 4};
    static const int64_t id[] = {1};
    struct coffer_serve_feature ctx[] = {I("ids", id), F("image", im)};
    struct coffer_serve_example *exs = calloc(100, sizeof(*exs));
    assert_non_null(exs);
    struct coffer_serve_examples in = {.examples = exs, .count = 100, .context = EX(ctx)};
    struct coffer_serve_limits lim;
    coffer_serve_limits_default(&lim);
    struct coffer_serve_tensor out[2];
    struct coffer_serve_status st;
    /* image: 100 x 4 floats = 1600 bytes */
    lim.max_tensor_size = 1599;
    want_error(coffer_serve_examples_to_tensors(&in, sig_inputs, 2, &lim, out, &st), &st, COFFER_E_TOO_LARGE,
               COFFER_SERVE_RESOURCE_EXHAUSTED, NULL);
    want_out_cleared(out, 2);
    lim.max_tensor_size = 1600;
    assert_int_equal(coffer_serve_examples_to_tensors(&in, sig_inputs, 2, &lim, out, &st), COFFER_OK);
    assert_int_equal(out[0].count, 400);
    for (size_t i = 0; i < 400; i++)
        assert_true(((float *)out[0].data)[i] == im[i % 4]);
    coffer_serve_tensor_free(&out[0]);
    coffer_serve_tensor_free(&out[1]);
    /* together: 1600 + 800 bytes */
    lim.max_total_size = 2399;
    want_error(coffer_serve_examples_to_tensors(&in, sig_inputs, 2, &lim, out, &st), &st, COFFER_E_TOO_LARGE,
               COFFER_SERVE_RESOURCE_EXHAUSTED, NULL);
    want_out_cleared(out, 2);
    lim.max_total_size = 2400;
    assert_int_equal(coffer_serve_examples_to_tensors(&in, sig_inputs, 2, &lim, out, &st), COFFER_OK);
    coffer_serve_tensor_free(&out[0]);
    coffer_serve_tensor_free(&out[1]);
    free(exs);
}

/* ------------------------------------------------------------ signatures */

static void test_signature_for_method(void **state)
{
    (void)state;
    const struct coffer_serve_signature sigs[] = {
        {.key = "serving_default", .method_name = COFFER_SERVE_PREDICT_METHOD},
        {.key = "legacy"}, /* NULL method: predict */
        {.key = "reg", .method_name = COFFER_SERVE_REGRESS_METHOD},
        {.key = "cls", .method_name = COFFER_SERVE_CLASSIFY_METHOD},
        {.key = "cls2", .method_name = COFFER_SERVE_CLASSIFY_METHOD},
    };
    const struct coffer_serve_signature *s;
    struct coffer_serve_status st;

    assert_int_equal(coffer_serve_signature_for_method(sigs, 5, "cls2", COFFER_SERVE_CLASSIFY_METHOD, &s, &st),
                     COFFER_OK);
    assert_ptr_equal(s, &sigs[4]);
    assert_int_equal(coffer_serve_signature_for_method(sigs, 5, "reg", COFFER_SERVE_REGRESS_METHOD, &s, &st),
                     COFFER_OK);
    assert_ptr_equal(s, &sigs[2]);
    /* default: serving_default is predict, so the first of the method */
    assert_int_equal(coffer_serve_signature_for_method(sigs, 5, "", COFFER_SERVE_CLASSIFY_METHOD, &s, &st), COFFER_OK);
    assert_ptr_equal(s, &sigs[3]);
    assert_int_equal(coffer_serve_signature_for_method(sigs, 5, NULL, COFFER_SERVE_CLASSIFY_METHOD, &s, &st),
                     COFFER_OK);
    assert_ptr_equal(s, &sigs[3]);
    assert_int_equal(coffer_serve_signature_for_method(sigs, 5, NULL, COFFER_SERVE_REGRESS_METHOD, &s, &st),
                     COFFER_OK);
    assert_ptr_equal(s, &sigs[2]);

    /* not found; wrong method (NULL reads as predict) */
    s = &sigs[0];
    want_invalid(coffer_serve_signature_for_method(sigs, 5, "nope", COFFER_SERVE_CLASSIFY_METHOD, &s, &st), &st,
                 "No signature was found with the name: nope");
    assert_null(s);
    want_invalid(coffer_serve_signature_for_method(sigs, 5, "reg", COFFER_SERVE_CLASSIFY_METHOD, &s, &st), &st,
                 "Expected classification signature method_name to be tensorflow/serving/classify. Was: "
                 "tensorflow/serving/regress");
    want_invalid(coffer_serve_signature_for_method(sigs, 5, "cls", COFFER_SERVE_REGRESS_METHOD, &s, &st), &st,
                 "Expected regression signature method_name to be tensorflow/serving/regress. Was: "
                 "tensorflow/serving/classify");
    want_invalid(coffer_serve_signature_for_method(sigs, 5, "serving_default", COFFER_SERVE_CLASSIFY_METHOD, &s, &st),
                 &st,
                 "Expected classification signature method_name to be tensorflow/serving/classify. Was: "
                 "tensorflow/serving/predict");
    want_invalid(coffer_serve_signature_for_method(sigs, 5, "legacy", COFFER_SERVE_REGRESS_METHOD, &s, &st), &st,
                 "Expected regression signature method_name to be tensorflow/serving/regress. Was: "
                 "tensorflow/serving/predict");
    want_invalid(coffer_serve_signature_for_method(sigs, 0, "cls", COFFER_SERVE_CLASSIFY_METHOD, &s, &st), &st,
                 "No signature was found with the name: cls");

    /* serving_default of the method wins over an earlier one */
    const struct coffer_serve_signature sigs2[] = {
        {.key = "first", .method_name = COFFER_SERVE_REGRESS_METHOD},
        {.key = "serving_default", .method_name = COFFER_SERVE_REGRESS_METHOD},
    };
    assert_int_equal(coffer_serve_signature_for_method(sigs2, 2, "", COFFER_SERVE_REGRESS_METHOD, &s, &st), COFFER_OK);
    assert_ptr_equal(s, &sigs2[1]);
    assert_int_equal(coffer_serve_signature_for_method(sigs2, 2, "first", COFFER_SERVE_REGRESS_METHOD, &s, &st),
                     COFFER_OK);
    assert_ptr_equal(s, &sigs2[0]);

    /* none of the method, no name given: UNIMPLEMENTED */
    s = &sigs[0];
    want_error(coffer_serve_signature_for_method(sigs2, 2, "", COFFER_SERVE_CLASSIFY_METHOD, &s, &st), &st,
               COFFER_E_UNSUPPORTED, COFFER_SERVE_UNIMPLEMENTED, "the model has no *");
    assert_null(s);
    assert_non_null(strstr(st.message, "classify"));
    assert_non_null(strstr(st.message, " signature (declare one in the ONNX model's metadata_props, docs/serve.md)"));
    want_error(coffer_serve_signature_for_method(sigs, 2, NULL, COFFER_SERVE_REGRESS_METHOD, &s, &st), &st,
               COFFER_E_UNSUPPORTED, COFFER_SERVE_UNIMPLEMENTED, "the model has no *");
    assert_non_null(strstr(st.message, "regress"));
    want_error(coffer_serve_signature_for_method(sigs, 0, NULL, COFFER_SERVE_REGRESS_METHOD, &s, &st), &st,
               COFFER_E_UNSUPPORTED, COFFER_SERVE_UNIMPLEMENTED, "the model has no *");
}

/* -------------------------------------------------------------- responses */

static const char *const labels[] = {"cat", "dog"};
static const float cls_scores[] = {0.25f, 0.75f, 0.5f, 0.5f};
static const float reg_values[] = {3.5f, 4.0f};

static void result_classify(struct coffer_serve_inference_result *r)
{
    memset(r, 0, sizeof(*r));
    r->spec.name = "pets";
    r->spec.has_version = true;
    r->spec.version = 7;
    r->spec.signature_name = "cls";
    r->classify = true;
    r->examples = 2;
    r->classes = 2;
    r->labels = labels;
    r->values = cls_scores;
}

static void result_regress(struct coffer_serve_inference_result *r)
{
    memset(r, 0, sizeof(*r));
    r->spec.name = "pets";
    r->spec.has_version = false;
    r->spec.signature_name = "reg";
    r->classify = false;
    r->examples = 2;
    r->values = reg_values;
}

static void want_spec(const Tensorflow__Serving__ModelSpec *ms, const char *name, bool has_version, int64_t version,
                      const char *sig)
{
    assert_non_null(ms);
    assert_string_equal(ms->name, name);
    assert_string_equal(ms->signature_name, sig);
    if (has_version) {
        assert_int_equal(ms->version_choice_case, TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION);
        assert_non_null(ms->version);
        assert_int_equal(ms->version->value, version);
    } else {
        assert_int_equal(ms->version_choice_case, TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE__NOT_SET);
    }
}

static void want_classifications(const Tensorflow__Serving__ClassificationResult *res)
{
    assert_non_null(res);
    assert_int_equal(res->n_classifications, 2);
    for (size_t e = 0; e < 2; e++) {
        assert_int_equal(res->classifications[e]->n_classes, 2);
        for (size_t k = 0; k < 2; k++) {
            assert_string_equal(res->classifications[e]->classes[k]->label, labels[k]);
            assert_true(res->classifications[e]->classes[k]->score == cls_scores[e * 2 + k]);
        }
    }
}

static void want_regressions(const Tensorflow__Serving__RegressionResult *res)
{
    assert_non_null(res);
    assert_int_equal(res->n_regressions, 2);
    for (size_t e = 0; e < 2; e++)
        assert_true(res->regressions[e]->value == reg_values[e]);
}

static void test_inference_response_encode(void **state)
{
    (void)state;
    struct coffer_serve_inference_result r;
    uint8_t *out;
    size_t n;

    result_classify(&r);
    assert_int_equal(coffer_serve_inference_response_encode(&r, &out, &n), COFFER_OK);
    Tensorflow__Serving__ClassificationResponse *cr =
        tensorflow__serving__classification_response__unpack(NULL, n, out);
    assert_non_null(cr);
    want_spec(cr->model_spec, "pets", true, 7, "cls");
    want_classifications(cr->result);
    tensorflow__serving__classification_response__free_unpacked(cr, NULL);
    coffer_free(out);

    result_regress(&r);
    assert_int_equal(coffer_serve_inference_response_encode(&r, &out, &n), COFFER_OK);
    Tensorflow__Serving__RegressionResponse *rr = tensorflow__serving__regression_response__unpack(NULL, n, out);
    assert_non_null(rr);
    want_spec(rr->model_spec, "pets", false, 0, "reg");
    want_regressions(rr->result);
    tensorflow__serving__regression_response__free_unpacked(rr, NULL);
    coffer_free(out);

    /* a negative version and a score of 0 (a default value on the wire) */
    static const float zs[] = {0.0f, 1.0f};
    static const char *const one_label[] = {"only"};
    result_classify(&r);
    r.spec.version = -1;
    r.classes = 1;
    r.labels = one_label;
    r.values = zs;
    assert_int_equal(coffer_serve_inference_response_encode(&r, &out, &n), COFFER_OK);
    cr = tensorflow__serving__classification_response__unpack(NULL, n, out);
    assert_non_null(cr);
    want_spec(cr->model_spec, "pets", true, -1, "cls");
    assert_int_equal(cr->result->n_classifications, 2);
    assert_int_equal(cr->result->classifications[0]->n_classes, 1);
    assert_string_equal(cr->result->classifications[0]->classes[0]->label, "only");
    assert_true(cr->result->classifications[0]->classes[0]->score == 0.0f);
    assert_true(cr->result->classifications[1]->classes[0]->score == 1.0f);
    tensorflow__serving__classification_response__free_unpacked(cr, NULL);
    coffer_free(out);
}

static void test_multi_response_encode(void **state)
{
    (void)state;
    struct coffer_serve_inference_result r[2];
    result_classify(&r[0]);
    result_regress(&r[1]);
    uint8_t *out;
    size_t n;
    assert_int_equal(coffer_serve_multi_response_encode(r, 2, &out, &n), COFFER_OK);
    Tensorflow__Serving__MultiInferenceResponse *m = tensorflow__serving__multi_inference_response__unpack(NULL, n, out);
    assert_non_null(m);
    assert_int_equal(m->n_results, 2);
    assert_int_equal(m->results[0]->result_case,
                     TENSORFLOW__SERVING__INFERENCE_RESULT__RESULT_CLASSIFICATION_RESULT);
    want_spec(m->results[0]->model_spec, "pets", true, 7, "cls");
    want_classifications(m->results[0]->classification_result);
    assert_int_equal(m->results[1]->result_case, TENSORFLOW__SERVING__INFERENCE_RESULT__RESULT_REGRESSION_RESULT);
    want_spec(m->results[1]->model_spec, "pets", false, 0, "reg");
    want_regressions(m->results[1]->regression_result);
    tensorflow__serving__multi_inference_response__free_unpacked(m, NULL);
    coffer_free(out);

    /* in order: regress first */
    struct coffer_serve_inference_result swapped[2] = {r[1], r[0]};
    assert_int_equal(coffer_serve_multi_response_encode(swapped, 2, &out, &n), COFFER_OK);
    m = tensorflow__serving__multi_inference_response__unpack(NULL, n, out);
    assert_non_null(m);
    assert_int_equal(m->n_results, 2);
    assert_int_equal(m->results[0]->result_case, TENSORFLOW__SERVING__INFERENCE_RESULT__RESULT_REGRESSION_RESULT);
    want_regressions(m->results[0]->regression_result);
    want_classifications(m->results[1]->classification_result);
    tensorflow__serving__multi_inference_response__free_unpacked(m, NULL);
    coffer_free(out);
}

static json_t *parse_back(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, 0, &e);
    if (v == NULL)
        fail_msg("not JSON (%s): %s", e.text, s);
    return v;
}

/* s without the whitespace outside strings (in place). */
static char *squeeze(char *s)
{
    bool in_str = false;
    size_t o = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\' && s[i + 1] != '\0') {
                s[o++] = c;
                c = s[++i];
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            continue;
        }
        s[o++] = c;
    }
    s[o] = '\0';
    return s;
}

static void test_rest_inference_json(void **state)
{
    (void)state;
    struct coffer_serve_inference_result r;
    char *out;
    size_t n;

    result_classify(&r);
    assert_int_equal(coffer_serve_rest_inference_json(&r, &out, &n), COFFER_OK);
    assert_int_equal(strlen(out), n);
    json_t *v = parse_back(out);
    assert_true(json_is_object(v));
    assert_int_equal(json_object_size(v), 1);
    json_t *res = json_object_get(v, "results");
    assert_true(json_is_array(res));
    assert_int_equal(json_array_size(res), 2);
    for (size_t e = 0; e < 2; e++) {
        json_t *row = json_array_get(res, e);
        assert_true(json_is_array(row));
        assert_int_equal(json_array_size(row), 2);
        for (size_t k = 0; k < 2; k++) {
            json_t *pair = json_array_get(row, k);
            assert_int_equal(json_array_size(pair), 2);
            assert_string_equal(json_string_value(json_array_get(pair, 0)), labels[k]);
            assert_true(json_is_real(json_array_get(pair, 1)));
            assert_true(json_real_value(json_array_get(pair, 1)) == (double)cls_scores[e * 2 + k]);
        }
    }
    json_decref(v);
    /* TF's number format, as :predict writes it (whitespace aside) */
    assert_string_equal(squeeze(out), "{\"results\":[[[\"cat\",0.25],[\"dog\",0.75]],[[\"cat\",0.5],[\"dog\",0.5]]]}");
    coffer_free(out);

    result_regress(&r);
    assert_int_equal(coffer_serve_rest_inference_json(&r, &out, &n), COFFER_OK);
    assert_int_equal(strlen(out), n);
    v = parse_back(out);
    res = json_object_get(v, "results");
    assert_true(json_is_array(res));
    assert_int_equal(json_array_size(res), 2);
    assert_true(json_is_real(json_array_get(res, 0)));
    assert_true(json_real_value(json_array_get(res, 0)) == 3.5);
    assert_true(json_is_real(json_array_get(res, 1))); /* 4.0, not 4 */
    assert_true(json_real_value(json_array_get(res, 1)) == 4.0);
    json_decref(v);
    assert_string_equal(squeeze(out), "{\"results\":[3.5,4.0]}");
    coffer_free(out);

    /* a label that needs escaping; a score needing 9 digits reads back */
    static const char *const odd[] = {"a \"b\"\n"};
    const float third = 1.0f / 3.0f;
    result_classify(&r);
    r.examples = 1;
    r.classes = 1;
    r.labels = odd;
    r.values = &third;
    assert_int_equal(coffer_serve_rest_inference_json(&r, &out, &n), COFFER_OK);
    v = parse_back(out);
    json_t *pair = json_array_get(json_array_get(json_object_get(v, "results"), 0), 0);
    assert_string_equal(json_string_value(json_array_get(pair, 0)), "a \"b\"\n");
    assert_true((float)json_real_value(json_array_get(pair, 1)) == third);
    json_decref(v);
    coffer_free(out);
}

/* ------------------------------------- Predict on a classify/regress signature */

/* A DT_STRING vector of n serialized examples (their bytes owned by t). */
static void serialized_tensor(struct coffer_serve_tensor *t, Tensorflow__Example *const *ex, size_t n)
{
    int64_t dims[1] = {(int64_t)n};
    assert_int_equal(coffer_serve_tensor_init(t, "inputs", COFFER_SERVE_DT_STRING, 1, dims), COFFER_OK);
    for (size_t i = 0; i < n; i++) {
        size_t size;
        uint8_t *b = pack(&ex[i]->base, &size);
        assert_int_equal(coffer_serve_tensor_set_string(t, i, b, size), COFFER_OK);
        free(b);
    }
}

static void test_examples_from_tensor(void **state)
{
    (void)state;
    static const float x0[] = {1.0f, 2.0f, 3.0f}, x1[] = {0.5f};
    static const int64_t k0[] = {4}, k1[] = {-5, 6};
    struct fb e0, e1, e2;
    fb_init(&e0);
    fb_int(&e0, "k", k0, 1);
    fb_float(&e0, "x", x0, 3);
    fb_init(&e1);
    fb_float(&e1, "x", x1, 1);
    fb_int(&e1, "k", k1, 2);
    fb_float(&e1, "x", x0, 3); /* sent twice: the last wins */
    fb_init(&e2); /* no feature */
    Tensorflow__Example *exs[] = {&e0.ex, &e1.ex, &e2.ex};
    struct coffer_serve_tensor t;
    serialized_tensor(&t, exs, 3);
    assert_int_equal(((const struct coffer_serve_bytes *)t.data)[2].size, 2); /* an empty Features */
    struct coffer_serve_examples ex;
    struct coffer_serve_status st;
    assert_int_equal(coffer_serve_examples_from_tensor(&t, NULL, &ex, &st), COFFER_OK);
    assert_int_equal(ex.count, 3);
    assert_int_equal(ex.context.count, 0);
    assert_int_equal(ex.examples[0].count, 2);
    want_floats(&ex.examples[0], "x", x0, 3);
    want_ints(&ex.examples[0], "k", k0, 1);
    assert_int_equal(ex.examples[1].count, 2);
    want_floats(&ex.examples[1], "x", x0, 3);
    want_ints(&ex.examples[1], "k", k1, 2);
    assert_int_equal(ex.examples[2].count, 0);
    coffer_serve_examples_free(&ex);
    /* an empty string is an Example without features, as protobuf has it */
    struct coffer_serve_tensor empty;
    int64_t d1[1] = {1};
    assert_int_equal(coffer_serve_tensor_init(&empty, "inputs", COFFER_SERVE_DT_STRING, 1, d1), COFFER_OK);
    assert_int_equal(coffer_serve_examples_from_tensor(&empty, NULL, &ex, &st), COFFER_OK);
    assert_int_equal(ex.count, 1);
    assert_int_equal(ex.examples[0].count, 0);
    coffer_serve_examples_free(&ex);
    coffer_serve_tensor_free(&empty);

    /* the values are counted against the limits, as a Classify's are */
    struct coffer_serve_limits lim;
    coffer_serve_limits_default(&lim);
    lim.max_total_size = 6 * sizeof(float) + 2 * sizeof(int64_t);
    want_error(coffer_serve_examples_from_tensor(&t, &lim, &ex, &st), &st, COFFER_E_TOO_LARGE,
               COFFER_SERVE_RESOURCE_EXHAUSTED, "the examples' values are over the limit of 40 bytes");
    want_cleared_examples(&ex);
    lim.max_total_size += sizeof(int64_t);
    assert_int_equal(coffer_serve_examples_from_tensor(&t, &lim, &ex, &st), COFFER_OK);
    coffer_serve_examples_free(&ex);

    /* a string that is not an Example, wherever it is */
    for (size_t bad = 0; bad < 3; bad++) {
        struct coffer_serve_tensor u;
        serialized_tensor(&u, exs, 3);
        assert_int_equal(coffer_serve_tensor_set_string(&u, bad, "\x0a\x05\x0a", 3), COFFER_OK); /* cut */
        char want[96];
        snprintf(want, sizeof(want), "Could not parse example input %zu: not a serialized tf.Example", bad);
        want_invalid(coffer_serve_examples_from_tensor(&u, NULL, &ex, &st), &st, want);
        want_cleared_examples(&ex);
        coffer_serve_tensor_free(&u);
    }
    coffer_serve_tensor_free(&t);

    /* not a vector of strings, or none */
    int64_t d2[2] = {2, 1}, d0[1] = {0};
    assert_int_equal(coffer_serve_tensor_init(&t, "inputs", COFFER_SERVE_DT_STRING, 2, d2), COFFER_OK);
    want_invalid(coffer_serve_examples_from_tensor(&t, NULL, &ex, &st), &st,
                 "Expected serialized to be a vector, got shape: [2,1]");
    coffer_serve_tensor_free(&t);
    assert_int_equal(coffer_serve_tensor_init(&t, "inputs", COFFER_SERVE_DT_STRING, 0, d2), COFFER_OK);
    want_invalid(coffer_serve_examples_from_tensor(&t, NULL, &ex, &st), &st,
                 "Expected serialized to be a vector, got shape: []");
    coffer_serve_tensor_free(&t);
    assert_int_equal(coffer_serve_tensor_init(&t, "inputs", COFFER_SERVE_DT_STRING, 1, d0), COFFER_OK);
    want_invalid(coffer_serve_examples_from_tensor(&t, NULL, &ex, &st), &st, "Input is empty.");
    coffer_serve_tensor_free(&t);
    assert_int_equal(coffer_serve_tensor_init(&t, "inputs", COFFER_SERVE_DT_FLOAT, 1, d2), COFFER_OK);
    want_invalid(coffer_serve_examples_from_tensor(&t, NULL, &ex, &st), &st,
                 "Expects arg[0] to be string but float is provided");
    want_cleared_examples(&ex);
    coffer_serve_tensor_free(&t);
}

/* -------------------------------------------------------- allocation faults */

struct fault_arg {
    const uint8_t *pb;
    size_t pb_size;
    const uint8_t *multi;
    size_t multi_size;
    const struct coffer_serve_tensor *serialized;
};

static enum coffer_err fault_body(void *arg)
{
    const struct fault_arg *a = arg;
    struct coffer_serve_model_spec spec;
    struct coffer_serve_examples ex;
    struct coffer_serve_status st;
    enum coffer_err r = coffer_serve_example_request_decode(a->pb, a->pb_size, NULL, &spec, &ex, &st);
    if (r == COFFER_OK) {
        struct coffer_serve_tensor out[2];
        r = coffer_serve_examples_to_tensors(&ex, sig_inputs, 2, NULL, out, &st);
        if (r == COFFER_OK) {
            coffer_serve_tensor_free(&out[0]);
            coffer_serve_tensor_free(&out[1]);
        }
        coffer_serve_examples_free(&ex);
        coffer_serve_model_spec_free(&spec);
    }
    if (r == COFFER_OK) {
        struct coffer_serve_multi_request m;
        r = coffer_serve_multi_request_decode(a->multi, a->multi_size, NULL, &m, &st);
        if (r == COFFER_OK)
            coffer_serve_multi_request_free(&m);
    }
    if (r == COFFER_OK) {
        char *sig;
        const char *body = "{\"signature_name\": \"s\", \"context\": {\"ids\": 3}, "
                           "\"examples\": [{\"image\": [1, 2, 3, 4.5]}, {\"image\": [5, 6, 7, 8], \"s\": \"x\"}]}";
        r = coffer_serve_rest_examples_parse(body, strlen(body), NULL, &sig, &ex, &st);
        if (r == COFFER_OK) {
            struct coffer_serve_tensor out[2];
            r = coffer_serve_examples_to_tensors(&ex, sig_inputs, 2, NULL, out, &st);
            if (r == COFFER_OK) {
                coffer_serve_tensor_free(&out[0]);
                coffer_serve_tensor_free(&out[1]);
            }
            coffer_serve_examples_free(&ex);
            coffer_free(sig);
        }
    }
    if (r == COFFER_OK) {
        struct coffer_serve_inference_result res[2];
        result_classify(&res[0]);
        result_regress(&res[1]);
        uint8_t *out;
        size_t n;
        if ((r = coffer_serve_inference_response_encode(&res[0], &out, &n)) == COFFER_OK)
            coffer_free(out);
        if (r == COFFER_OK && (r = coffer_serve_multi_response_encode(res, 2, &out, &n)) == COFFER_OK)
            coffer_free(out);
        char *js;
        if (r == COFFER_OK && (r = coffer_serve_rest_inference_json(&res[0], &js, &n)) == COFFER_OK)
            coffer_free(js);
    }
    if (r == COFFER_OK) {
        struct coffer_serve_examples pex;
        if ((r = coffer_serve_examples_from_tensor(a->serialized, NULL, &pex, &st)) == COFFER_OK)
            coffer_serve_examples_free(&pex);
    }
    /* protobuf-c reports an allocation failure as a failed unpack */
    if (r == COFFER_E_MALFORMED && coffer_test_alloc_fault_fired())
        return COFFER_E_NOMEM;
    return r;
}

static void test_alloc_faults(void **state)
{
    (void)state;
    static const float im0[] = {1, 2, 3, 4}, im1[] = {5, 6, 7, 8};
    static const int64_t id0[] = {10};
    struct fb ctx, e0, e1;
    fb_init(&ctx);
    fb_int(&ctx, "ids", id0, 1);
    fb_init(&e0);
    fb_float(&e0, "image", im0, 4);
    fb_int(&e0, "ids", id0, 1);
    fb_init(&e1);
    fb_float(&e1, "image", im1, 4);
    Tensorflow__Example *exs[] = {&e0.ex, &e1.ex};
    struct ib in;
    ib_init(&in, exs, 2, &ctx.ex);
    Tensorflow__Serving__ModelSpec ms;
    Google__Protobuf__Int64Value ver;
    spec_init(&ms, &ver, "m", "cls", 2);
    struct fault_arg a;
    uint8_t *pb = pack_classify(&ms, &in.in, &a.pb_size);
    a.pb = pb;
    struct mb b;
    mb_init(&b, &in.in);
    mb_task(&b, "m", "cls", COFFER_SERVE_CLASSIFY_METHOD);
    mb_task(&b, "m", "reg", COFFER_SERVE_REGRESS_METHOD);
    uint8_t *multi = pack(&b.req.base, &a.multi_size);
    a.multi = multi;
    struct coffer_serve_tensor ser;
    serialized_tensor(&ser, exs, 2);
    a.serialized = &ser;
    tu_fault_loop(fault_body, &a);
    coffer_serve_tensor_free(&ser);
    free(pb);
    free(multi);
}

int test_examples_main(void);
int test_examples_main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_request_decode),
        cmocka_unit_test(test_example_request_context),
        cmocka_unit_test(test_example_request_errors),
        cmocka_unit_test(test_example_request_limits),
        cmocka_unit_test(test_example_duplicate_keys),
        cmocka_unit_test(test_multi_request_decode),
        cmocka_unit_test(test_multi_request_errors),
        cmocka_unit_test(test_rest_examples_parse),
        cmocka_unit_test(test_rest_examples_errors),
        cmocka_unit_test(test_examples_to_tensors),
        cmocka_unit_test(test_examples_to_tensors_context),
        cmocka_unit_test(test_examples_to_tensors_conversions),
        cmocka_unit_test(test_examples_to_tensors_errors),
        cmocka_unit_test(test_examples_to_tensors_limits),
        cmocka_unit_test(test_examples_from_tensor),
        cmocka_unit_test(test_signature_for_method),
        cmocka_unit_test(test_inference_response_encode),
        cmocka_unit_test(test_multi_response_encode),
        cmocka_unit_test(test_rest_inference_json),
        cmocka_unit_test(test_alloc_faults),
    };
    return cmocka_run_group_tests_name("serve_examples", tests, NULL, NULL);
}
