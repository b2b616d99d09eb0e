/*
 * test_wire.c — the hand-read formats of serve/wire.c: grpc.health.v1
 * HealthCheckRequest/Response, and TF Serving's warm-up file
 * (TFRecord-framed PredictionLog records): good files, checksums, truncation,
 * other log types, the record cap, and allocation faults.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "coffer/serve.h"
#include "tensorflow_serving/apis/model_management.pb-c.h"

/* CRC-32C, bit by bit (an implementation apart from wire.c's table). */
static uint32_t crc32c_bits(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
    }
    return ~c;
}

static uint32_t mask(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

static void put_le(struct coffer_buf *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(coffer_buf_put_u8(b, (uint8_t)(v >> (8 * i))), COFFER_OK);
}

/* Append one TFRecord holding data. */
static void tfrecord(struct coffer_buf *b, const uint8_t *data, size_t n)
{
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)n >> (8 * i));
    put_le(b, n, 8);
    put_le(b, mask(crc32c_bits(len, 8)), 4);
    assert_int_equal(coffer_buf_put(b, data, n), COFFER_OK);
    put_le(b, mask(crc32c_bits(data, n)), 4);
}

/* A length-delimited protobuf field. */
static void pb_bytes(struct coffer_buf *b, uint32_t field, const uint8_t *data, size_t n)
{
    assert_int_equal(coffer_buf_put_varint(b, (uint64_t)field << 3 | 2), COFFER_OK);
    assert_int_equal(coffer_buf_put_varint(b, n), COFFER_OK);
    assert_int_equal(coffer_buf_put(b, data, n), COFFER_OK);
}

/* PredictionLog { log_metadata (ignored); predict_log { request } } */
static void prediction_log(struct coffer_buf *out, uint32_t log_field, const uint8_t *req, size_t n)
{
    struct coffer_buf pl, log;
    coffer_buf_init(&pl, 0, false);
    coffer_buf_init(&log, 0, false);
    pb_bytes(&pl, 1, req, n);
    pb_bytes(&log, 1, (const uint8_t *)"\x0a\x03" "abc", 5); /* log_metadata: skipped */
    pb_bytes(&log, log_field, pl.data, pl.size);
    tfrecord(out, log.data, log.size);
    coffer_buf_free(&pl);
    coffer_buf_free(&log);
}

static uint8_t *a_request(size_t *n)
{
    struct coffer_serve_predict_request req = {0};
    req.spec.name = "m";
    req.inputs = calloc(1, sizeof(*req.inputs));
    req.input_count = 1;
    int64_t dims[] = {1, 3};
    assert_int_equal(coffer_serve_tensor_init(&req.inputs[0], "x", COFFER_SERVE_DT_FLOAT, 2, dims), COFFER_OK);
    uint8_t *pb;
    assert_int_equal(coffer_serve_predict_request_encode(&req, true, &pb, n), COFFER_OK);
    coffer_serve_tensor_free(&req.inputs[0]);
    free(req.inputs);
    return pb;
}

static void test_crc32c(void **state)
{
    (void)state;
    /* the CRC-32C check value */
    assert_int_equal(crc32c_bits((const uint8_t *)"123456789", 9), 0xe3069283u);
}

static void test_warmup_good(void **state)
{
    (void)state;
    size_t n;
    uint8_t *req = a_request(&n);
    struct coffer_buf f;
    coffer_buf_init(&f, 0, false);
    prediction_log(&f, 6, req, n);
    prediction_log(&f, 6, req, n);
    struct coffer_serve_warmup_record *recs;
    size_t count;
    assert_int_equal(coffer_serve_warmup_parse(f.data, f.size, &recs, &count), COFFER_OK);
    assert_int_equal(count, 2);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(recs[i].size, n);
        assert_memory_equal(recs[i].request, req, n);
        struct coffer_serve_predict_request got;
        struct coffer_serve_status st;
        assert_int_equal(coffer_serve_predict_request_decode(recs[i].request, recs[i].size, NULL, &got, &st),
                         COFFER_OK);
        assert_string_equal(got.inputs[0].name, "x");
        coffer_serve_predict_request_free(&got);
    }
    coffer_free(recs);
    /* an empty file: no records, no error */
    assert_int_equal(coffer_serve_warmup_parse((const uint8_t *)"", 0, &recs, &count), COFFER_OK);
    assert_int_equal(count, 0);
    assert_null(recs);
    coffer_buf_free(&f);
    coffer_free(req);
}

static void test_warmup_errors(void **state)
{
    (void)state;
    size_t n;
    uint8_t *req = a_request(&n);
    struct coffer_buf f;
    coffer_buf_init(&f, 0, false);
    prediction_log(&f, 6, req, n);
    struct coffer_serve_warmup_record *recs;
    size_t count;
    uint8_t *copy = malloc(f.size);
    /* every truncation fails */
    for (size_t cut = 1; cut < f.size; cut++)
        assert_int_not_equal(coffer_serve_warmup_parse(f.data, cut, &recs, &count), COFFER_OK);
    /* a flipped byte anywhere: the length or the data checksum catches it */
    for (size_t i = 0; i < f.size; i++) {
        memcpy(copy, f.data, f.size);
        copy[i] ^= 0x40;
        assert_int_not_equal(coffer_serve_warmup_parse(copy, f.size, &recs, &count), COFFER_OK);
    }
    memcpy(copy, f.data, f.size);
    copy[13] ^= 1; /* inside the data */
    assert_int_equal(coffer_serve_warmup_parse(copy, f.size, &recs, &count), COFFER_E_MALFORMED);
    assert_non_null(strstr(coffer_err_detail(), "data checksum"));
    free(copy);
    /* classify, regress and multi-inference logs are kept with their kind
     * (the bytes are the request's, whatever it is) */
    coffer_buf_reset(&f);
    prediction_log(&f, 6, req, n);
    prediction_log(&f, 2, req, n);
    prediction_log(&f, 3, req, n);
    prediction_log(&f, 4, req, n);
    assert_int_equal(coffer_serve_warmup_parse(f.data, f.size, &recs, &count), COFFER_OK);
    assert_int_equal(count, 4);
    const enum coffer_serve_log_kind kinds[4] = {COFFER_SERVE_LOG_PREDICT, COFFER_SERVE_LOG_CLASSIFY,
                                                 COFFER_SERVE_LOG_REGRESS, COFFER_SERVE_LOG_MULTI};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(recs[i].kind, kinds[i]);
        assert_int_equal(recs[i].size, n);
        assert_memory_equal(recs[i].request, req, n);
    }
    coffer_free(recs);
    /* another log type is named */
    coffer_buf_reset(&f);
    prediction_log(&f, 6, req, n);
    prediction_log(&f, 5, req, n);
    assert_int_equal(coffer_serve_warmup_parse(f.data, f.size, &recs, &count), COFFER_E_UNSUPPORTED);
    assert_non_null(strstr(coffer_err_detail(), "warm-up record 1 is a session_run_log"));
    /* a PredictionLog with no log */
    coffer_buf_reset(&f);
    tfrecord(&f, (const uint8_t *)"\x0a\x00", 2);
    assert_int_equal(coffer_serve_warmup_parse(f.data, f.size, &recs, &count), COFFER_E_MALFORMED);
    assert_non_null(strstr(coffer_err_detail(), "holds no log"));
    /* not protobuf inside a good frame */
    coffer_buf_reset(&f);
    tfrecord(&f, (const uint8_t *)"\x33\x00", 2); /* wire type 3: a group */
    assert_int_equal(coffer_serve_warmup_parse(f.data, f.size, &recs, &count), COFFER_E_MALFORMED);
    /* TF's cap: 1000 records */
    coffer_buf_reset(&f);
    for (int i = 0; i < COFFER_SERVE_WARMUP_MAX_RECORDS; i++)
        prediction_log(&f, 6, req, n);
    assert_int_equal(coffer_serve_warmup_parse(f.data, f.size, &recs, &count), COFFER_OK);
    assert_int_equal(count, COFFER_SERVE_WARMUP_MAX_RECORDS);
    coffer_free(recs);
    prediction_log(&f, 6, req, n);
    assert_int_equal(coffer_serve_warmup_parse(f.data, f.size, &recs, &count), COFFER_E_TOO_LARGE);
    assert_non_null(strstr(coffer_err_detail(), "exceeds the maximum (1000)"));
    coffer_buf_free(&f);
    coffer_free(req);
}

static struct coffer_buf fault_file;

static enum coffer_err warmup_fault_body(void *arg)
{
    (void)arg;
    struct coffer_serve_warmup_record *recs;
    size_t count;
    enum coffer_err r = coffer_serve_warmup_parse(fault_file.data, fault_file.size, &recs, &count);
    if (r == COFFER_OK)
        coffer_free(recs);
    return r;
}

static void test_warmup_alloc_faults(void **state)
{
    (void)state;
    size_t n;
    uint8_t *req = a_request(&n);
    coffer_buf_init(&fault_file, 0, false);
    for (int i = 0; i < 20; i++)
        prediction_log(&fault_file, 6, req, n);
    tu_fault_loop(warmup_fault_body, NULL);
    coffer_buf_free(&fault_file);
    coffer_free(req);
}

static void test_health(void **state)
{
    (void)state;
    char *svc;
    struct coffer_serve_status st;
    assert_int_equal(coffer_serve_health_request_decode((const uint8_t *)"", 0, &svc, &st), COFFER_OK);
    assert_string_equal(svc, "");
    coffer_free(svc);
    /* an unknown field first, then two service fields: the last wins */
    static const uint8_t two[] = {0x10, 0x05, 0x0a, 0x01, 'x', 0x0a, 0x11, 'P', 'r', 'e', 'd', 'i', 'c', 't', 'i',
                                  'o', 'n', 'S', 'e', 'r', 'v', 'i', 'c', 'e'};
    assert_int_equal(coffer_serve_health_request_decode(two, sizeof(two), &svc, &st), COFFER_OK);
    assert_string_equal(svc, "PredictionService");
    coffer_free(svc);
    static const uint8_t bad[][4] = {{0x0a, 0x05, 'x', 0}, {0x08, 0x01, 0, 0}, {0x0b, 0, 0, 0}, {0x0a, 0x01, 0, 0}};
    static const size_t bad_n[] = {3, 2, 1, 3};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(coffer_serve_health_request_decode(bad[i], bad_n[i], &svc, &st), COFFER_E_MALFORMED);
        assert_int_equal(st.code, COFFER_SERVE_INVALID_ARGUMENT);
    }
    uint8_t *out;
    size_t n;
    assert_int_equal(coffer_serve_health_response_encode(COFFER_SERVE_HEALTH_SERVING, &out, &n), COFFER_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "\x08\x01", 2);
    coffer_free(out);
    assert_int_equal(coffer_serve_health_response_encode(COFFER_SERVE_HEALTH_UNKNOWN, &out, &n), COFFER_OK);
    assert_int_equal(n, 0); /* proto3 leaves the default out */
    coffer_free(out);
}

/* ReloadConfigRequest -> config, as the config file parser would give it. */
static enum coffer_err reload_decode(const Tensorflow__Serving__ReloadConfigRequest *m, struct coffer_serve_config *c,
                                     struct coffer_serve_status *st)
{
    size_t n = tensorflow__serving__reload_config_request__get_packed_size(m);
    uint8_t *b = malloc(n + 1);
    tensorflow__serving__reload_config_request__pack(m, b);
    enum coffer_err r = coffer_serve_reload_request_decode(b, n, c, st);
    free(b);
    return r;
}

static void test_reload_request(void **state)
{
    (void)state;
    Tensorflow__Serving__ModelConfig__VersionLabelsEntry l1 = TENSORFLOW__SERVING__MODEL_CONFIG__VERSION_LABELS_ENTRY__INIT,
                                                         l2 = TENSORFLOW__SERVING__MODEL_CONFIG__VERSION_LABELS_ENTRY__INIT;
    l1.key = "stable";
    l1.value = 1;
    l2.key = "stable"; /* a map: the last wins */
    l2.value = 2;
    Tensorflow__Serving__ModelConfig__VersionLabelsEntry *labels[] = {&l1, &l2};
    int64_t versions[] = {1, 2};
    Tensorflow__Serving__FileSystemStoragePathSourceConfig__ServableVersionPolicy__Specific spec =
        TENSORFLOW__SERVING__FILE_SYSTEM_STORAGE_PATH_SOURCE_CONFIG__SERVABLE_VERSION_POLICY__SPECIFIC__INIT;
    spec.n_versions = 2;
    spec.versions = versions;
    Tensorflow__Serving__FileSystemStoragePathSourceConfig__ServableVersionPolicy pol =
        TENSORFLOW__SERVING__FILE_SYSTEM_STORAGE_PATH_SOURCE_CONFIG__SERVABLE_VERSION_POLICY__INIT;
    pol.policy_choice_case =
        TENSORFLOW__SERVING__FILE_SYSTEM_STORAGE_PATH_SOURCE_CONFIG__SERVABLE_VERSION_POLICY__POLICY_CHOICE_SPECIFIC;
    pol.specific = &spec;
    Tensorflow__Serving__ModelConfig a = TENSORFLOW__SERVING__MODEL_CONFIG__INIT, b = TENSORFLOW__SERVING__MODEL_CONFIG__INIT;
    a.name = "a";
    a.base_path = "/models/a";
    a.model_platform = "onnx";
    a.model_version_policy = &pol;
    a.n_version_labels = 2;
    a.version_labels = labels;
    b.name = "b";
    b.base_path = "/models/b";
    Tensorflow__Serving__ModelConfig *cfgs[] = {&a, &b};
    Tensorflow__Serving__ModelConfigList list = TENSORFLOW__SERVING__MODEL_CONFIG_LIST__INIT;
    list.n_config = 2;
    list.config = cfgs;
    Tensorflow__Serving__ModelServerConfig msc = TENSORFLOW__SERVING__MODEL_SERVER_CONFIG__INIT;
    msc.config_case = TENSORFLOW__SERVING__MODEL_SERVER_CONFIG__CONFIG_MODEL_CONFIG_LIST;
    msc.model_config_list = &list;
    Tensorflow__Serving__ReloadConfigRequest req = TENSORFLOW__SERVING__RELOAD_CONFIG_REQUEST__INIT;
    req.config = &msc;
    struct coffer_serve_config c;
    struct coffer_serve_status st;
    assert_int_equal(reload_decode(&req, &c, &st), COFFER_OK);
    assert_int_equal(c.model_count, 2);
    assert_string_equal(c.models[0].name, "a");
    assert_string_equal(c.models[0].base_path, "/models/a");
    assert_int_equal(c.models[0].policy.kind, COFFER_SERVE_POLICY_SPECIFIC);
    assert_int_equal(c.models[0].policy.version_count, 2);
    assert_int_equal(c.models[0].label_count, 1);
    assert_int_equal(c.models[0].labels[0].version, 2);
    assert_int_equal(c.models[1].policy.kind, COFFER_SERVE_POLICY_LATEST);
    assert_string_equal(c.models[1].platform, "");
    coffer_serve_config_free(&c);
    /* refusals, with TF's messages where it has them */
    b.name = "a";
    assert_int_equal(reload_decode(&req, &c, &st), COFFER_E_MALFORMED);
    assert_string_equal(st.message, "Illegal to list model a multiple times in config list");
    b.name = "b";
    b.base_path = "";
    assert_int_equal(reload_decode(&req, &c, &st), COFFER_E_MALFORMED);
    assert_non_null(strstr(st.message, "without a base_path"));
    b.base_path = "/models/b";
    b.model_platform = "pytorch";
    assert_int_equal(reload_decode(&req, &c, &st), COFFER_E_MALFORMED);
    b.model_platform = "";
    spec.n_versions = 0;
    assert_int_equal(reload_decode(&req, &c, &st), COFFER_E_MALFORMED);
    assert_non_null(strstr(st.message, "specific lists no versions"));
    spec.n_versions = 2;
    msc.config_case = TENSORFLOW__SERVING__MODEL_SERVER_CONFIG__CONFIG_CUSTOM_MODEL_CONFIG;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    msc.custom_model_config = &any;
    assert_int_equal(reload_decode(&req, &c, &st), COFFER_E_MALFORMED);
    assert_non_null(strstr(st.message, "Only ModelConfigList is currently supported"));
    req.config = NULL;
    assert_int_equal(reload_decode(&req, &c, &st), COFFER_E_MALFORMED);
    assert_int_equal(coffer_serve_reload_request_decode((const uint8_t *)"\x0a\xff", 2, &c, &st), COFFER_E_MALFORMED);
    assert_int_equal(st.code, COFFER_SERVE_INVALID_ARGUMENT);

    /* the response: a StatusProto */
    uint8_t *out;
    size_t n;
    coffer_serve_status_clear(&st);
    assert_int_equal(coffer_serve_reload_response_encode(&st, &out, &n), COFFER_OK);
    Tensorflow__Serving__ReloadConfigResponse *resp = tensorflow__serving__reload_config_response__unpack(NULL, n, out);
    assert_non_null(resp);
    assert_non_null(resp->status);
    assert_int_equal(resp->status->error_code, 0);
    tensorflow__serving__reload_config_response__free_unpacked(resp, NULL);
    coffer_free(out);
}

int test_wire_main(void);
int test_wire_main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_warmup_good),
        cmocka_unit_test(test_warmup_errors),
        cmocka_unit_test(test_warmup_alloc_faults),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_reload_request),
    };
    return cmocka_run_group_tests_name("serve_wire", tests, NULL, NULL);
}
