/*
 * wire.c — hand-read protobuf and TFRecord formats that have no generated
 * code here: grpc.health.v1 HealthCheckRequest/Response, and TF Serving's
 * warm-up file (assets.extra/tf_serving_warmup_requests: TFRecord-framed
 * PredictionLog records, of which coffer runs the predict_log ones).
 *
 * Formats (from the upstream sources; the messages are not among the shared
 * protos): grpc/health/v1/health.proto: HealthCheckRequest { string service
 * = 1; } HealthCheckResponse { ServingStatus status = 1; } with UNKNOWN 0,
 * SERVING 1, NOT_SERVING 2, SERVICE_UNKNOWN 3. tensorflow_serving/apis/
 * prediction_log.proto: PredictionLog { LogMetadata log_metadata = 1; oneof
 * log_type { ClassifyLog classify_log = 2; RegressLog regress_log = 3;
 * PredictLog predict_log = 6; PredictStreamedLog predict_streamed_log = 7;
 * MultiInferenceLog multi_inference_log = 4; SessionRunLog session_run_log
 * = 5; } } and PredictLog { PredictRequest request = 1; PredictResponse
 * response = 2; }. TFRecord (tensorflow/core/lib/io/record_reader): per
 * record a u64le length, a u32le masked CRC-32C of those 8 bytes, the data,
 * a u32le masked CRC-32C of the data; mask(c) = ((c >> 15) | (c << 17)) +
 * 0xa282ead8. TF Serving reads at most 1000 records
 * (saved_model_warmup_util.cc, kMaxNumRecords).
 *
 * Invariants: I1 every length and count comes through coffer_rd and is
 * checked against what is left before it is used; nothing is allocated from
 * a length (records point into the caller's bytes). I2 a field of a wire
 * type protobuf does not define, or a group, is MALFORMED.
 * Trusts: nothing in the bytes. Threading: pure functions.
 */
#include "serve_int.h"

#include <string.h>

/* see serve_int.h */
enum coffer_err coffer_serve__pb_next(struct coffer_rd *rd, uint32_t *field, uint32_t *wire, uint64_t *value,
                                      struct coffer_rd *sub)
{
    uint64_t tag;
    enum coffer_err r = coffer_rd_varint(rd, &tag);
    if (r != COFFER_OK)
        return r;
    if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return COFFER_FAIL(COFFER_E_MALFORMED, "protobuf field number %llu", (unsigned long long)(tag >> 3));
    *field = (uint32_t)(tag >> 3);
    *wire = (uint32_t)(tag & 7);
    *value = 0;
    switch (*wire) {
    case 0: return coffer_rd_varint(rd, value);
    case 1: return coffer_rd_skip(rd, 8);
    case 5: return coffer_rd_skip(rd, 4);
    case 2:
        if ((r = coffer_rd_varint(rd, value)) != COFFER_OK)
            return r;
        if (*value > coffer_rd_left(rd))
            return COFFER_FAIL(COFFER_E_TRUNCATED, "protobuf field %u: %llu bytes, %zu left", *field,
                               (unsigned long long)*value, coffer_rd_left(rd));
        return coffer_rd_sub(rd, (size_t)*value, sub);
    default: return COFFER_FAIL(COFFER_E_MALFORMED, "protobuf field %u: wire type %u", *field, *wire);
    }
}

/* ------------------------------------------------------------ grpc.health.v1 */

/* see coffer/serve.h */
enum coffer_err coffer_serve_health_request_decode(const uint8_t *data, size_t size, char **service,
                                                   struct coffer_serve_status *st)
{
    *service = NULL;
    coffer_serve_status_clear(st);
    struct coffer_rd rd, sub;
    coffer_rd_init(&rd, data, size);
    const uint8_t *name = NULL;
    size_t name_n = 0;
    while (coffer_rd_left(&rd) > 0) {
        uint32_t field = 0, wire = 0;
        uint64_t v;
        if (coffer_serve__pb_next(&rd, &field, &wire, &v, &sub) != COFFER_OK)
            return SERVE_INVALID(st, "Could not parse the HealthCheckRequest");
        if (field == 1 && wire != 2)
            return SERVE_INVALID(st, "Could not parse the HealthCheckRequest");
        if (field == 1) { /* the last one wins, as protobuf says */
            name_n = coffer_rd_left(&sub);
            if (coffer_rd_bytes(&sub, name_n, &name) != COFFER_OK)
                return SERVE_INVALID(st, "Could not parse the HealthCheckRequest");
        }
    }
    if (name_n > 1024)
        return SERVE_INVALID(st, "service name of %zu bytes", name_n);
    if ((name_n > 0 && memchr(name, '\0', name_n) != NULL))
        return SERVE_INVALID(st, "service name with a NUL byte");
    char *s = coffer_malloc(name_n + 1);
    if (s == NULL)
        return coffer_serve__nomem(st);
    if (name_n > 0)
        memcpy(s, name, name_n);
    s[name_n] = '\0';
    *service = s;
    return COFFER_OK;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_health_response_encode(enum coffer_serve_health status, uint8_t **out, size_t *out_size)
{
    /* proto3: the default (UNKNOWN, 0) is not written */
    *out = coffer_malloc(2);
    if (*out == NULL)
        return COFFER_E_NOMEM;
    *out_size = 0;
    if (status != COFFER_SERVE_HEALTH_UNKNOWN) {
        (*out)[0] = 0x08; /* field 1, varint */
        (*out)[1] = (uint8_t)status;
        *out_size = 2;
    }
    return COFFER_OK;
}

/* ------------------------------------------------------------ warm-up file */

static uint32_t crc32c(const uint32_t *table, const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static uint32_t masked(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

static const char *log_type_name(uint32_t field)
{
    switch (field) {
    case 2: return "classify_log";
    case 3: return "regress_log";
    case 4: return "multi_inference_log";
    case 5: return "session_run_log";
    case 7: return "predict_streamed_log";
    default: return "an unknown log type";
    }
}

static const char *log_sub_name(uint32_t field)
{
    switch (field) {
    case COFFER_SERVE_LOG_CLASSIFY: return "ClassifyLog";
    case COFFER_SERVE_LOG_REGRESS: return "RegressLog";
    case COFFER_SERVE_LOG_MULTI: return "MultiInferenceLog";
    default: return "PredictLog";
    }
}

/* One PredictionLog: the kind and request bytes of its predict_log,
 * classify_log, regress_log or multi_inference_log (each of which holds its
 * request in field 1). */
static enum coffer_err prediction_log(struct coffer_rd *rd, size_t index, struct coffer_serve_warmup_record *rec)
{
    uint32_t have = 0, other = 0;
    while (coffer_rd_left(rd) > 0) {
        uint32_t field = 0, wire = 0;
        uint64_t v;
        struct coffer_rd sub;
        enum coffer_err r = coffer_serve__pb_next(rd, &field, &wire, &v, &sub);
        if (r != COFFER_OK) {
            coffer_err_context("warm-up record %zu: not a PredictionLog", index);
            return r;
        }
        if (field >= 2 && field <= 7 && wire != 2)
            return COFFER_FAIL(COFFER_E_MALFORMED, "warm-up record %zu: PredictionLog field %u of wire type %u",
                               index, field, wire);
        if (field < 2 || field > 7)
            continue;
        if (field == 5 || field == 7) {
            other = field; /* a oneof: the last member set wins */
            have = 0;
            continue;
        }
        other = 0;
        have = field;
        rec->kind = (enum coffer_serve_log_kind)field;
        rec->request = sub.data + sub.pos; /* no request field: an empty one, in the input */
        rec->size = 0;
        /* the log's request (field 1): the last one wins */
        while (coffer_rd_left(&sub) > 0) {
            uint32_t f2 = 0, w2 = 0;
            uint64_t v2;
            struct coffer_rd req;
            if ((r = coffer_serve__pb_next(&sub, &f2, &w2, &v2, &req)) != COFFER_OK) {
                coffer_err_context("warm-up record %zu: not a %s", index, log_sub_name(field));
                return r;
            }
            if (f2 == 1 && w2 != 2)
                return COFFER_FAIL(COFFER_E_MALFORMED, "warm-up record %zu: %s.request of wire type %u", index,
                                   log_sub_name(field), w2);
            if (f2 == 1) {
                rec->size = coffer_rd_left(&req);
                if ((r = coffer_rd_bytes(&req, rec->size, &rec->request)) != COFFER_OK)
                    return r;
            }
        }
    }
    if (other != 0)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED,
                           "warm-up record %zu is a %s; coffer serve runs predict, classify, regress and "
                           "multi_inference logs",
                           index, log_type_name(other));
    if (have == 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "warm-up record %zu holds no log", index);
    return COFFER_OK;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_warmup_parse(const uint8_t *data, size_t size, struct coffer_serve_warmup_record **out,
                                          size_t *count)
{
    *out = NULL;
    *count = 0;
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1; /* Castagnoli, reflected */
        table[i] = c;
    }
    struct coffer_serve_warmup_record *recs = NULL;
    size_t n = 0, cap = 0;
    enum coffer_err r = COFFER_OK;
    struct coffer_rd rd;
    coffer_rd_init(&rd, data, size);
    while (r == COFFER_OK && coffer_rd_left(&rd) > 0) {
        if (n == COFFER_SERVE_WARMUP_MAX_RECORDS) {
            r = COFFER_FAIL(COFFER_E_TOO_LARGE, "Number of warmup records exceeds the maximum (%d)",
                            COFFER_SERVE_WARMUP_MAX_RECORDS);
            break;
        }
        const uint8_t *len_bytes, *body;
        uint64_t len;
        uint32_t len_crc, body_crc;
        struct coffer_rd head = rd;
        if ((r = coffer_rd_bytes(&head, 8, &len_bytes)) != COFFER_OK || (r = coffer_rd_u64le(&rd, &len)) != COFFER_OK ||
            (r = coffer_rd_u32le(&rd, &len_crc)) != COFFER_OK) {
            coffer_err_context("warm-up record %zu: truncated header", n);
            break;
        }
        if (masked(crc32c(table, len_bytes, 8)) != len_crc) {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "warm-up record %zu: corrupted record (length checksum): "
                            "is the warm-up file in TFRecord format?", n);
            break;
        }
        if (len > coffer_rd_left(&rd) || coffer_rd_left(&rd) - (size_t)len < 4) {
            r = COFFER_FAIL(COFFER_E_TRUNCATED, "warm-up record %zu: %llu bytes announced, %zu left", n,
                            (unsigned long long)len, coffer_rd_left(&rd));
            break;
        }
        if ((r = coffer_rd_bytes(&rd, (size_t)len, &body)) != COFFER_OK ||
            (r = coffer_rd_u32le(&rd, &body_crc)) != COFFER_OK)
            break;
        if (masked(crc32c(table, body, (size_t)len)) != body_crc) {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "warm-up record %zu: corrupted record (data checksum)", n);
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8; /* at most 2 x the record cap */
            struct coffer_serve_warmup_record *g = coffer_realloc(recs, nc * sizeof(*recs));
            if (g == NULL) {
                r = COFFER_E_NOMEM;
                break;
            }
            recs = g;
            cap = nc;
        }
        struct coffer_rd log;
        coffer_rd_init(&log, body, (size_t)len);
        if ((r = prediction_log(&log, n, &recs[n])) != COFFER_OK)
            break;
        n++;
    }
    if (r != COFFER_OK) {
        coffer_free(recs);
        return r;
    }
    *out = recs;
    *count = n;
    return COFFER_OK;
}
