/*
 * coffer/serve.h — the TensorFlow-Serving protocol layer of `coffer serve`.
 *
 * Mostly pure data transformations between the bytes a TF Serving client
 * sends or expects (gRPC protobuf messages, REST JSON bodies and URLs, the
 * model config file, the model base-path layout) and neutral C structs that
 * the runtime side consumes: net/ hands bytes in, nn/ gets
 * coffer_serve_tensor values out. Two runtime pieces that know nothing of
 * model formats sit at the end: the model registry (versions, policies,
 * labels, references, hot reload through a loader callback) and the
 * batching scheduler.
 *
 * Errors: every function returns enum coffer_err (base.h). Functions that
 * judge outside input also fill a struct coffer_serve_status with the TF
 * canonical code (the gRPC status code, mapped to HTTP for REST) and the
 * message TF Serving itself would give (shared/research/tfserving-api.md).
 * Out-params are cleared on entry and written on success only; on failure
 * nothing needs freeing.
 */
#ifndef COFFER_SERVE_H
#define COFFER_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/base.h"

/* ------------------------------------------------------- canonical status */

/* TF canonical error codes = gRPC status codes (same numbers). */
enum coffer_serve_code {
    COFFER_SERVE_OK = 0,
    COFFER_SERVE_CANCELLED = 1,
    COFFER_SERVE_UNKNOWN = 2,
    COFFER_SERVE_INVALID_ARGUMENT = 3,
    COFFER_SERVE_DEADLINE_EXCEEDED = 4,
    COFFER_SERVE_NOT_FOUND = 5,
    COFFER_SERVE_ALREADY_EXISTS = 6,
    COFFER_SERVE_PERMISSION_DENIED = 7,
    COFFER_SERVE_RESOURCE_EXHAUSTED = 8,
    COFFER_SERVE_FAILED_PRECONDITION = 9,
    COFFER_SERVE_ABORTED = 10,
    COFFER_SERVE_OUT_OF_RANGE = 11,
    COFFER_SERVE_UNIMPLEMENTED = 12,
    COFFER_SERVE_INTERNAL = 13,
    COFFER_SERVE_UNAVAILABLE = 14,
    COFFER_SERVE_DATA_LOSS = 15,
    COFFER_SERVE_UNAUTHENTICATED = 16,
};
#define COFFER_SERVE_CODE_COUNT 17

#define COFFER_SERVE_MSG_SIZE 2048 /* status message buffer, NUL included */
#define COFFER_SERVE_CONFIG_MAX ((size_t)16 << 20) /* the largest config file read */
#define COFFER_SERVE_GRPC_MSG_MAX 1024
#define COFFER_SERVE_GRPC_TRUNCATED "...TRUNCATED"
/* Buffer size that always holds a gRPC status message. */
#define COFFER_SERVE_GRPC_MSG_SIZE (COFFER_SERVE_GRPC_MSG_MAX + sizeof(COFFER_SERVE_GRPC_TRUNCATED))

/* The outcome of a request as a TF Serving client sees it. */
struct coffer_serve_status {
    enum coffer_serve_code code;
    char message[COFFER_SERVE_MSG_SIZE]; /* cut (never overflowed) when longer */
};

/* Set code and message (printf-style); returns the coffer_err that goes with
 * the code (INVALID_ARGUMENT -> COFFER_E_MALFORMED, NOT_FOUND ->
 * COFFER_E_NOT_FOUND, ...) and records it with COFFER_FAIL. st may be NULL. */
enum coffer_err coffer_serve_status_set(struct coffer_serve_status *st, enum coffer_serve_code code,
                                        const char *fmt, ...) COFFER_PRINTF(3, 4);
void coffer_serve_status_clear(struct coffer_serve_status *st);
/* "INVALID_ARGUMENT"; "UNKNOWN" for numbers out of range. */
const char *coffer_serve_code_name(enum coffer_serve_code code);
/* The HTTP status TF Serving's REST server maps a canonical code to (§1.7). */
int coffer_serve_code_http(enum coffer_serve_code code);
/* The grpc-message text: msg as is when at most 1024 bytes, otherwise its
 * first 1024 bytes followed by "...TRUNCATED". out_size must be at least
 * COFFER_SERVE_GRPC_MSG_SIZE. Returns out. */
const char *coffer_serve_grpc_message(const char *msg, char *out, size_t out_size);

/* ----------------------------------------------------------------- limits */

/* Caps applied before anything is allocated from sizes or counts found in
 * outside input. */
struct coffer_serve_limits {
    size_t max_message_size;  /* protobuf message or JSON body, bytes */
    size_t max_tensor_size;   /* one tensor's decoded data, bytes (strings: sum of lengths) */
    size_t max_total_size;    /* all tensors of one request together, bytes */
    size_t max_tensors;       /* inputs (or outputs) in one request */
    size_t max_rank;          /* dims of one tensor; at most COFFER_SERVE_MAX_RANK */
};
#define COFFER_SERVE_MAX_RANK 32
/* Defaults: 1 GiB message, 1 GiB tensor, 2 GiB total, 1024 tensors, rank 32. */
void coffer_serve_limits_default(struct coffer_serve_limits *lim);

/* ----------------------------------------------------------------- tensors */

/* Element types; the numbers are TF's DataType values. */
enum coffer_serve_dtype {
    COFFER_SERVE_DT_INVALID = 0,
    COFFER_SERVE_DT_FLOAT = 1,
    COFFER_SERVE_DT_DOUBLE = 2,
    COFFER_SERVE_DT_INT32 = 3,
    COFFER_SERVE_DT_UINT8 = 4,
    COFFER_SERVE_DT_INT16 = 5,
    COFFER_SERVE_DT_INT8 = 6,
    COFFER_SERVE_DT_STRING = 7,
    COFFER_SERVE_DT_INT64 = 9,
    COFFER_SERVE_DT_BOOL = 10,
    COFFER_SERVE_DT_BFLOAT16 = 14,
    COFFER_SERVE_DT_UINT16 = 17,
    COFFER_SERVE_DT_HALF = 19,
    COFFER_SERVE_DT_UINT32 = 22,
    COFFER_SERVE_DT_UINT64 = 23,
};

/* Whether coffer handles this DataType number. */
bool coffer_serve_dtype_supported(int dtype);
/* Bytes per element (0 for STRING and unsupported types). */
size_t coffer_serve_dtype_size(enum coffer_serve_dtype dt);
/* TF's short name: "float", "int32", "string" ...; "invalid" when unknown. */
const char *coffer_serve_dtype_name(enum coffer_serve_dtype dt);
/* TF's enum name for JSON: "DT_FLOAT" ...; "DT_INVALID" when unknown. */
const char *coffer_serve_dtype_enum_name(enum coffer_serve_dtype dt);

/* One DT_STRING element: arbitrary bytes (not NUL-terminated). */
struct coffer_serve_bytes {
    uint8_t *data;
    size_t size;
};

/*
 * A dense tensor. Numeric data is row-major, little-endian (host order on
 * every platform coffer runs on), count * dtype_size bytes; BOOL is one byte
 * 0/1; HALF and BFLOAT16 are raw 16-bit patterns. For STRING, data points to
 * count struct coffer_serve_bytes. Rank 0 is a scalar (count 1).
 * Owned: name, data (and every string element); free with
 * coffer_serve_tensor_free.
 */
struct coffer_serve_tensor {
    char *name;
    enum coffer_serve_dtype dtype;
    size_t rank;
    int64_t dims[COFFER_SERVE_MAX_RANK];
    size_t count;  /* elements: product of dims */
    void *data;
    size_t size;   /* bytes of data (for STRING: count * sizeof(struct coffer_serve_bytes)) */
};

/* Allocate a zero-filled tensor (empty strings for STRING). name may be NULL. */
COFFER_NODISCARD enum coffer_err coffer_serve_tensor_init(struct coffer_serve_tensor *t, const char *name,
                                                          enum coffer_serve_dtype dtype, size_t rank,
                                                          const int64_t *dims);
/* Set string element i to a copy of size bytes. */
COFFER_NODISCARD enum coffer_err coffer_serve_tensor_set_string(struct coffer_serve_tensor *t, size_t i,
                                                                const void *data, size_t size);
/* Frees everything the tensor owns and clears it; fine on a cleared tensor. */
void coffer_serve_tensor_free(struct coffer_serve_tensor *t);
/* Free count tensors and the array itself. */
void coffer_serve_tensors_free(struct coffer_serve_tensor *ts, size_t count);

/* ------------------------------------------------------------- signatures */

/* A tensor as a signature describes it: dims of -1 are unknown (usually the
 * batch). Borrowed strings: the caller (the model registry) owns them. */
struct coffer_serve_tensor_info {
    const char *alias;        /* the key clients use ("x") */
    const char *tensor_name;  /* the graph name ("x:0"); may be NULL (then alias) */
    enum coffer_serve_dtype dtype;
    size_t rank;
    int64_t dims[COFFER_SERVE_MAX_RANK];
    bool unknown_rank;
};

struct coffer_serve_signature {
    const char *key;          /* "serving_default" */
    const char *method_name;  /* "tensorflow/serving/predict"; NULL means that */
    const struct coffer_serve_tensor_info *inputs;
    size_t input_count;
    const struct coffer_serve_tensor_info *outputs;
    size_t output_count;
};

#define COFFER_SERVE_DEFAULT_SIGNATURE "serving_default"
#define COFFER_SERVE_PREDICT_METHOD "tensorflow/serving/predict"

/* Find the signature a Predict request names ("" or NULL means
 * serving_default); FAILED_PRECONDITION `Serving signature key "k" not
 * found.` otherwise. It may be a classify or regress signature, which
 * Predict runs as TF does (coffer_serve_signature_takes_examples). */
COFFER_NODISCARD enum coffer_err coffer_serve_signature_find(const struct coffer_serve_signature *sigs, size_t count,
                                                             const char *name,
                                                             const struct coffer_serve_signature **out,
                                                             struct coffer_serve_status *st);

/* Whether sig is a classify or regress signature: its one input is
 * "inputs", serialized tf.Examples. */
bool coffer_serve_signature_takes_examples(const struct coffer_serve_signature *sig);

/* TF's input-set check: the input names must be the signature's input
 * aliases, exactly: INVALID_ARGUMENT `input size does not match signature:
 * 1!=2 len({a}) != len({a,b}). Sent extra: {}. Missing but required: {b}.`
 * (names sorted, as TF prints them). */
COFFER_NODISCARD enum coffer_err coffer_serve_signature_check_inputs(const struct coffer_serve_signature *sig,
                                                                     const char *const *names, size_t count,
                                                                     struct coffer_serve_status *st);
/* output_filter entries must be output aliases without duplicates:
 * INVALID_ARGUMENT `output tensor alias not found in signature: x` or
 * `duplicate output tensor alias: x`. */
COFFER_NODISCARD enum coffer_err coffer_serve_signature_check_filter(const struct coffer_serve_signature *sig,
                                                                     char *const *filter, size_t count,
                                                                     struct coffer_serve_status *st);

/* ------------------------------------------------------- gRPC messages */

/* ModelSpec. In a decoded request: what the client asked for. In a
 * response: the resolved name, version and signature. Owned strings. */
struct coffer_serve_model_spec {
    char *name;
    bool has_version;
    int64_t version;
    char *version_label;   /* NULL when not given */
    char *signature_name;  /* "" when not given */
};
void coffer_serve_model_spec_free(struct coffer_serve_model_spec *spec);

/* Decode a TensorProto (serialized bytes) into a tensor named name:
 * tensor_content or the typed *_val field of the dtype, TF's fill rule
 * (fewer values than elements repeat the last; none means zeros), shape and
 * size checks under lim (NULL: defaults). Errors are INVALID_ARGUMENT
 * `tensor parsing error: <name>: <what>` (TF prints the first part only),
 * or `unsupported dtype N`. */
COFFER_NODISCARD enum coffer_err coffer_serve_tensor_decode(const uint8_t *data, size_t size, const char *name,
                                                            const struct coffer_serve_limits *lim,
                                                            struct coffer_serve_tensor *out,
                                                            struct coffer_serve_status *st);
/* Encode a tensor as a TensorProto: typed repeated fields by default,
 * tensor_content when tensor_content is true (strings always use
 * string_val). *out from coffer_malloc. */
COFFER_NODISCARD enum coffer_err coffer_serve_tensor_encode(const struct coffer_serve_tensor *t, bool tensor_content,
                                                            uint8_t **out, size_t *out_size);

struct coffer_serve_predict_request {
    struct coffer_serve_model_spec spec;
    struct coffer_serve_tensor *inputs; /* names are the map keys; duplicate keys: last wins */
    size_t input_count;
    char **output_filter;
    size_t output_filter_count;
};

/* Decode a serialized PredictRequest. A missing model_spec is
 * INVALID_ARGUMENT `Missing ModelSpec`. */
COFFER_NODISCARD enum coffer_err coffer_serve_predict_request_decode(const uint8_t *data, size_t size,
                                                                     const struct coffer_serve_limits *lim,
                                                                     struct coffer_serve_predict_request *out,
                                                                     struct coffer_serve_status *st);
/* Client side (and tests): encode a request; inputs in tensor_content or
 * typed fields. */
COFFER_NODISCARD enum coffer_err coffer_serve_predict_request_encode(const struct coffer_serve_predict_request *req,
                                                                     bool tensor_content, uint8_t **out,
                                                                     size_t *out_size);
void coffer_serve_predict_request_free(struct coffer_serve_predict_request *req);

/* Encode a PredictResponse: outputs keyed by tensor name, model_spec with
 * the resolved name, version (when has_version) and signature name. */
COFFER_NODISCARD enum coffer_err coffer_serve_predict_response_encode(const struct coffer_serve_model_spec *resolved,
                                                                      const struct coffer_serve_tensor *outputs,
                                                                      size_t count, bool tensor_content,
                                                                      uint8_t **out, size_t *out_size);
/* Client side (and tests): decode a PredictResponse. */
COFFER_NODISCARD enum coffer_err coffer_serve_predict_response_decode(const uint8_t *data, size_t size,
                                                                      const struct coffer_serve_limits *lim,
                                                                      struct coffer_serve_model_spec *spec,
                                                                      struct coffer_serve_tensor **outputs,
                                                                      size_t *count,
                                                                      struct coffer_serve_status *st);

/* GetModelMetadataRequest: model_spec required (`Missing ModelSpec`),
 * metadata_field non-empty (`GetModelMetadataRequest must specify at least
 * one metadata_field`) and only "signature_def" (`Metadata field X is not
 * supported`), all INVALID_ARGUMENT. */
COFFER_NODISCARD enum coffer_err coffer_serve_metadata_request_decode(const uint8_t *data, size_t size,
                                                                      struct coffer_serve_model_spec *out,
                                                                      struct coffer_serve_status *st);
/* GetModelMetadataResponse: model_spec (resolved) and metadata
 * {"signature_def": Any(SignatureDefMap)}. */
COFFER_NODISCARD enum coffer_err coffer_serve_metadata_response_encode(const struct coffer_serve_model_spec *resolved,
                                                                       const struct coffer_serve_signature *sigs,
                                                                       size_t count, uint8_t **out,
                                                                       size_t *out_size);

/* Model version states (ModelVersionStatus.State numbers). */
enum coffer_serve_model_state {
    COFFER_SERVE_STATE_UNKNOWN = 0,
    COFFER_SERVE_STATE_START = 10,
    COFFER_SERVE_STATE_LOADING = 20,
    COFFER_SERVE_STATE_AVAILABLE = 30,
    COFFER_SERVE_STATE_UNLOADING = 40,
    COFFER_SERVE_STATE_END = 50,
};
const char *coffer_serve_model_state_name(enum coffer_serve_model_state s);

struct coffer_serve_version_status {
    int64_t version;
    enum coffer_serve_model_state state;
    enum coffer_serve_code error_code;
    const char *error_message; /* borrowed; NULL means "" */
};

/* GetModelStatusRequest: model_spec required (`Missing ModelSpec`). */
COFFER_NODISCARD enum coffer_err coffer_serve_status_request_decode(const uint8_t *data, size_t size,
                                                                    struct coffer_serve_model_spec *out,
                                                                    struct coffer_serve_status *st);
/* Pick what a status request answers from all known versions of model:
 * with a version, that one (NOT_FOUND `Could not find version N of model
 * X`); without, all of them (NOT_FOUND `Could not find any versions of model
 * X` when none). *first and *count index into all. */
COFFER_NODISCARD enum coffer_err coffer_serve_status_select(const char *model,
                                                            const struct coffer_serve_version_status *all, size_t n,
                                                            bool has_version, int64_t version, size_t *first,
                                                            size_t *count, struct coffer_serve_status *st);
COFFER_NODISCARD enum coffer_err coffer_serve_status_response_encode(const struct coffer_serve_version_status *v,
                                                                     size_t count, uint8_t **out,
                                                                     size_t *out_size);

/* grpc.health.v1.Health: HealthCheckRequest { string service = 1; } and
 * HealthCheckResponse { ServingStatus status = 1; }. */
enum coffer_serve_health {
    COFFER_SERVE_HEALTH_UNKNOWN = 0,
    COFFER_SERVE_HEALTH_SERVING = 1,
    COFFER_SERVE_HEALTH_NOT_SERVING = 2,
    COFFER_SERVE_HEALTH_SERVICE_UNKNOWN = 3,
};
/* *service from coffer_malloc ("" when absent); at most 1024 bytes, no NUL. */
COFFER_NODISCARD enum coffer_err coffer_serve_health_request_decode(const uint8_t *data, size_t size, char **service,
                                                                    struct coffer_serve_status *st);
COFFER_NODISCARD enum coffer_err coffer_serve_health_response_encode(enum coffer_serve_health status, uint8_t **out,
                                                                     size_t *out_size);

/* ------------------------------- tf.Example inputs: Classify, Regress, MultiInference */

#define COFFER_SERVE_CLASSIFY_METHOD "tensorflow/serving/classify"
#define COFFER_SERVE_REGRESS_METHOD "tensorflow/serving/regress"
/* Caps on an Input beyond the byte limits (struct coffer_serve_limits). */
#define COFFER_SERVE_MAX_EXAMPLES 65536
#define COFFER_SERVE_MAX_FEATURES 1024 /* per Example */

enum coffer_serve_feature_kind {
    COFFER_SERVE_FEATURE_NONE = 0,  /* no list set (or an empty one over REST) */
    COFFER_SERVE_FEATURE_BYTES = 1,
    COFFER_SERVE_FEATURE_FLOAT = 2,
    COFFER_SERVE_FEATURE_INT64 = 3,
};

/* One feature of a tf.Example. Values are owned and wiped when freed (user
 * data). Bytes values are counted, not kept: no model coffer serves takes
 * string inputs. */
struct coffer_serve_feature {
    char *name;
    enum coffer_serve_feature_kind kind;
    size_t count;
    float *floats;   /* FLOAT: count values */
    int64_t *ints;   /* INT64: count values */
};

/* A tf.Example's features, sorted by name (strcmp), names unique (a key
 * sent twice: the last wins, as protobuf maps merge). */
struct coffer_serve_example {
    struct coffer_serve_feature *features;
    size_t count;
};

/* TF Serving's Input: the examples and, for ExampleListWithContext, the
 * context, whose features every example has unless it sets the same name
 * itself (TF parses context + example bytes concatenated: the example's
 * value wins). */
struct coffer_serve_examples {
    struct coffer_serve_example *examples;
    size_t count;
    struct coffer_serve_example context; /* count 0 without one */
};
void coffer_serve_examples_free(struct coffer_serve_examples *in);

/* ClassificationRequest or RegressionRequest (the same layout: model_spec
 * 1, input 2). INVALID_ARGUMENT `Missing ModelSpec`; `Input is empty.`
 * when it holds no example; RESOURCE_EXHAUSTED over lim (message size,
 * values of one feature over max_tensor_size, all values over
 * max_total_size) or the caps above. */
COFFER_NODISCARD enum coffer_err coffer_serve_example_request_decode(const uint8_t *data, size_t size,
                                                                     const struct coffer_serve_limits *lim,
                                                                     struct coffer_serve_model_spec *spec,
                                                                     struct coffer_serve_examples *out,
                                                                     struct coffer_serve_status *st);

struct coffer_serve_inference_task {
    struct coffer_serve_model_spec spec;
    char *method_name; /* "" when absent */
};
struct coffer_serve_multi_request {
    struct coffer_serve_inference_task *tasks;
    size_t task_count;
    struct coffer_serve_examples input;
};
/* MultiInferenceRequest with TF's request checks: at least one task
 * (INVALID_ARGUMENT `MultiInferenceRequest must specify at least one
 * task`), every task naming a model (`Found ModelSpec with an empty model
 * name.`; a task without model_spec: `Missing ModelSpec`), all the same
 * one (`All ModelSpecs in a MultiInferenceRequest must access the same
 * model name.`), method_name classify or regress (UNIMPLEMENTED
 * `Unsupported signature method_name: M`), and the input as
 * coffer_serve_example_request_decode checks it. That no signature is
 * evaluated twice (`Duplicate evaluation of signature: S`) the server checks
 * once it has resolved each task's signature against the model
 * (coffer_serve_signature_for_method: "" may resolve to different
 * signatures for the two methods). */
COFFER_NODISCARD enum coffer_err coffer_serve_multi_request_decode(const uint8_t *data, size_t size,
                                                                   const struct coffer_serve_limits *lim,
                                                                   struct coffer_serve_multi_request *out,
                                                                   struct coffer_serve_status *st);
void coffer_serve_multi_request_free(struct coffer_serve_multi_request *req);

/* The examples of a Predict on a classify or regress signature: t is its
 * input "inputs", serialized tf.Examples (DT_STRING, a vector), as TF's
 * ParseExample takes them. INVALID_ARGUMENT `Expects arg[0] to be string
 * but float is provided`, `Expected serialized to be a vector, got shape:
 * [2,1]`, `Input is empty.`, `Could not parse example input N: not a
 * serialized tf.Example`; the caps as coffer_serve_example_request_decode
 * has them (lim NULL: the defaults). */
COFFER_NODISCARD enum coffer_err coffer_serve_examples_from_tensor(const struct coffer_serve_tensor *t,
                                                                   const struct coffer_serve_limits *lim,
                                                                   struct coffer_serve_examples *out,
                                                                   struct coffer_serve_status *st);

/* A REST :classify or :regress body: {"signature_name": S, "context": {...},
 * "examples": [{...}, ...]}. A feature value is a number, a boolean, a
 * string, {"b64": "..."} or a list of those: JSON integers and booleans go
 * to int64_list, other numbers to float_list (a list mixing integers and
 * other numbers is a float_list), strings and b64 objects to bytes_list;
 * other mixes, nested lists, null and other objects are INVALID_ARGUMENT
 * naming the feature. *signature_name is "" when absent (coffer_malloc). */
COFFER_NODISCARD enum coffer_err coffer_serve_rest_examples_parse(const void *body, size_t size,
                                                                  const struct coffer_serve_limits *lim,
                                                                  char **signature_name,
                                                                  struct coffer_serve_examples *out,
                                                                  struct coffer_serve_status *st);

/* The model inputs a list of examples makes: out[i] (named inputs[i].alias)
 * is a tensor of shape [examples, inputs[i].dims[1..]] of inputs[i].dtype
 * (FLOAT, DOUBLE, INT32 or INT64; others UNIMPLEMENTED) holding, row e, the
 * values of the feature named inputs[i].alias in example e (or the
 * context). A dim after the first that is unknown (-1) takes its size from
 * the first example (one such dim at most); rank 0 or 1 inputs take one
 * value per example. Errors, INVALID_ARGUMENT naming feature and example:
 * a missing feature, a value count that is not the input's per-example
 * size (or differs between examples), a bytes_list feature, a float_list
 * for an integer input, an int64 value that does not fit int32. int64
 * values go to float and double inputs converted. On failure nothing
 * needs freeing. */
COFFER_NODISCARD enum coffer_err coffer_serve_examples_to_tensors(const struct coffer_serve_examples *in,
                                                                  const struct coffer_serve_tensor_info *inputs,
                                                                  size_t count,
                                                                  const struct coffer_serve_limits *lim,
                                                                  struct coffer_serve_tensor *out,
                                                                  struct coffer_serve_status *st);

/* The signature a Classify or Regress request (method: one of the two
 * method names) runs: the named one, or for "" (or NULL) serving_default
 * when it is of that method, else the first signature of that method.
 * INVALID_ARGUMENT `No signature was found with the name: S` or `Expected
 * classification signature method_name to be tensorflow/serving/classify.
 * Was: M` (regression alike); UNIMPLEMENTED `the model has no M signature
 * (declare one in the ONNX model's metadata_props, docs/serve.md)` when no
 * name was given and the model has none. */
COFFER_NODISCARD enum coffer_err coffer_serve_signature_for_method(const struct coffer_serve_signature *sigs,
                                                                   size_t count, const char *name,
                                                                   const char *method,
                                                                   const struct coffer_serve_signature **out,
                                                                   struct coffer_serve_status *st);

/* One Classify or Regress answer (borrowed pointers). */
struct coffer_serve_inference_result {
    struct coffer_serve_model_spec spec; /* resolved: name, version, signature key */
    bool classify;                       /* false: regress */
    size_t examples;
    size_t classes;                      /* classify: per example */
    const char *const *labels;           /* classify: classes labels */
    const float *values;                 /* classify: examples x classes scores; regress: examples values */
};
/* ClassificationResponse (classify) or RegressionResponse. *out from
 * coffer_malloc. */
COFFER_NODISCARD enum coffer_err coffer_serve_inference_response_encode(const struct coffer_serve_inference_result *r,
                                                                        uint8_t **out, size_t *out_size);
/* MultiInferenceResponse: one InferenceResult per r[i], in order. */
COFFER_NODISCARD enum coffer_err coffer_serve_multi_response_encode(const struct coffer_serve_inference_result *r,
                                                                    size_t count, uint8_t **out, size_t *out_size);
/* The REST answer: {"results": [[["label", score], ...], ...]} (classify) or
 * {"results": [value, ...]} (regress), floats as :predict writes them.
 * NUL-terminated, *out_size without the NUL. */
COFFER_NODISCARD enum coffer_err coffer_serve_rest_inference_json(const struct coffer_serve_inference_result *r,
                                                                  char **out, size_t *out_size);

/* ------------------------------------------------------------ model warm-up */

/* TF Serving's warm-up file, VERSION/assets.extra/tf_serving_warmup_requests:
 * TFRecord-framed PredictionLog records (CRCs checked), at most
 * COFFER_SERVE_WARMUP_MAX_RECORDS (TF's kMaxNumRecords). coffer runs
 * predict_log, classify_log, regress_log and multi_inference_log records,
 * as TF does; another log type (session_run_log, predict_streamed_log) is
 * COFFER_E_UNSUPPORTED, naming it. *out (coffer_malloc; NULL when empty)
 * holds each record's kind and request bytes (PredictRequest,
 * ClassificationRequest, ...), pointing into data. */
#define COFFER_SERVE_WARMUP_FILE "assets.extra/tf_serving_warmup_requests"
#define COFFER_SERVE_WARMUP_MAX_RECORDS 1000
/* The PredictionLog oneof's field numbers. */
enum coffer_serve_log_kind {
    COFFER_SERVE_LOG_CLASSIFY = 2,
    COFFER_SERVE_LOG_REGRESS = 3,
    COFFER_SERVE_LOG_MULTI = 4,
    COFFER_SERVE_LOG_PREDICT = 6,
};
struct coffer_serve_warmup_record {
    enum coffer_serve_log_kind kind;
    const uint8_t *request;
    size_t size;
};
COFFER_NODISCARD enum coffer_err coffer_serve_warmup_parse(const uint8_t *data, size_t size,
                                                           struct coffer_serve_warmup_record **out, size_t *count);

/* -------------------------------------------------------------------- REST */

enum coffer_serve_rest_kind {
    COFFER_SERVE_REST_NONE = 0,      /* not under /v1/: the HTTP layer's bare 404 */
    COFFER_SERVE_REST_STATUS,        /* GET  /v1/models/{name}[...] */
    COFFER_SERVE_REST_METADATA,      /* GET  /v1/models/{name}[...]/metadata */
    COFFER_SERVE_REST_PREDICT,       /* POST ...:predict */
    COFFER_SERVE_REST_CLASSIFY,      /* POST ...:classify */
    COFFER_SERVE_REST_REGRESS,       /* POST ...:regress */
};

struct coffer_serve_rest_route {
    enum coffer_serve_rest_kind kind;
    char *name;           /* percent-decoded */
    bool has_version;
    int64_t version;
    char *label;          /* percent-decoded; NULL when none */
};

/*
 * Match an HTTP method and request target (path, optionally "?query",
 * ignored) against TF Serving's REST grammar, case-insensitively:
 *   POST /v1/models/{name}[/versions/{N}|/labels/{label}]:(predict|classify|regress)
 *   GET  /v1/models/{name}[/versions/{N}|/labels/{label}][/metadata]
 * Paths not under /v1/ give kind NONE and COFFER_OK. OPTIONS (the CORS
 * preflight) is the HTTP layer's to answer before calling this. Everything
 * else that
 * does not match is INVALID_ARGUMENT `Malformed request: POST /v1/...`;
 * `GET /v1/models` is `Missing model name in request.`; a version over int64
 * is `Failed to convert version: N to numeric.`.
 */
COFFER_NODISCARD enum coffer_err coffer_serve_rest_route_parse(const char *method, const char *target,
                                                               size_t target_len,
                                                               struct coffer_serve_rest_route *out,
                                                               struct coffer_serve_status *st);
void coffer_serve_rest_route_free(struct coffer_serve_rest_route *r);

/* `{ "error": "<message>" }` (JSON-escaped, pretty-printed). *out from
 * coffer_malloc, NUL-terminated; *out_size excludes the NUL. */
COFFER_NODISCARD enum coffer_err coffer_serve_rest_error_json(const char *message, char **out, size_t *out_size);
/* The GetModelStatusResponse JSON (int64 versions as strings, enum names). */
COFFER_NODISCARD enum coffer_err coffer_serve_rest_status_json(const struct coffer_serve_version_status *v,
                                                               size_t count, char **out, size_t *out_size);
/* The GetModelMetadataResponse JSON, with the doubled "signature_def" key. */
COFFER_NODISCARD enum coffer_err coffer_serve_rest_metadata_json(const struct coffer_serve_model_spec *resolved,
                                                                 const struct coffer_serve_signature *sigs,
                                                                 size_t count, char **out, size_t *out_size);

enum coffer_serve_rest_format {
    COFFER_SERVE_REST_ROW = 1,       /* "instances" -> "predictions" */
    COFFER_SERVE_REST_COLUMNAR = 2,  /* "inputs"    -> "outputs" */
};

struct coffer_serve_rest_predict {
    enum coffer_serve_rest_format format;
    char *signature_name;     /* as sent; "" when absent */
    const struct coffer_serve_signature *signature; /* resolved; points into sigs */
    struct coffer_serve_tensor *inputs; /* in the signature's input order */
    size_t input_count;
};

/*
 * Parse a :predict body against the model's signatures: typing comes from the
 * signature's input dtypes; nested lists give the shape (ragged lists are
 * INVALID_ARGUMENT); {"b64": "..."} is a DT_STRING element; the NaN,
 * Infinity and -Infinity tokens are accepted for float and double inputs.
 * Half, bfloat16 and other types REST cannot carry are UNIMPLEMENTED.
 */
COFFER_NODISCARD enum coffer_err coffer_serve_rest_predict_parse(const void *body, size_t size,
                                                                 const struct coffer_serve_signature *sigs,
                                                                 size_t sig_count,
                                                                 const struct coffer_serve_limits *lim,
                                                                 struct coffer_serve_rest_predict *out,
                                                                 struct coffer_serve_status *st);
void coffer_serve_rest_predict_free(struct coffer_serve_rest_predict *p);

/* Write the response body: {"predictions": ...} (row, outputs split along
 * dimension 0, which all must share) or {"outputs": ...} (columnar). Floats
 * as TF writes them (shortest of 6 / 9 or 17 significant digits that reads
 * back, ".0" on whole numbers, NaN/Infinity/-Infinity); strings of an alias
 * ending in "_bytes" as {"b64": ...}. */
COFFER_NODISCARD enum coffer_err coffer_serve_rest_predict_response(enum coffer_serve_rest_format format,
                                                                    const struct coffer_serve_tensor *outputs,
                                                                    size_t count, char **out, size_t *out_size,
                                                                    struct coffer_serve_status *st);

/* ------------------------------------------------- model base path layout */

/* TF Serving's layout: BASE/<version>/model.onnx, <version> a decimal
 * int64 folder name. */
#define COFFER_SERVE_MODEL_FILE "model.onnx"

/* The version numbers present under base (numeric folder names only, other
 * entries ignored), newest first. *out from coffer_malloc (NULL when none). */
COFFER_NODISCARD enum coffer_err coffer_serve_model_versions_scan(const char *base, int64_t **out, size_t *count);

enum coffer_serve_policy_kind {
    COFFER_SERVE_POLICY_LATEST = 0, /* the default, num_versions 1 */
    COFFER_SERVE_POLICY_ALL = 1,
    COFFER_SERVE_POLICY_SPECIFIC = 2,
};

struct coffer_serve_version_policy {
    enum coffer_serve_policy_kind kind;
    uint32_t num_versions;  /* LATEST; 0 means 1 */
    int64_t *versions;      /* SPECIFIC; owned */
    size_t version_count;
};

/* Which of the available versions (newest first) to serve, newest first.
 * SPECIFIC keeps only listed versions that are present. *out from
 * coffer_malloc (NULL when none). */
COFFER_NODISCARD enum coffer_err coffer_serve_version_policy_apply(const struct coffer_serve_version_policy *p,
                                                                   const int64_t *available, size_t count,
                                                                   int64_t **out, size_t *out_count);

/*
 * Which loaded version a predict, classify, regress or metadata request
 * gets, from what the registry knows about the model (all its versions with
 * their states, and its labels):
 *   label given     -> its version (INVALID_ARGUMENT `Unrecognized servable
 *                      version label: foo` when unknown), then as specific;
 *   version given   -> that one if AVAILABLE, else NOT_FOUND
 *                      `Servable not found for request: Specific(name, 3)`;
 *   neither         -> the highest AVAILABLE version, else NOT_FOUND
 *                      `Servable not found for request: Latest(name)`.
 */
struct coffer_serve_version_label;
COFFER_NODISCARD enum coffer_err coffer_serve_version_resolve(const char *model,
                                                              const struct coffer_serve_version_status *versions,
                                                              size_t count,
                                                              const struct coffer_serve_version_label *labels,
                                                              size_t label_count, bool has_version, int64_t version,
                                                              const char *label, int64_t *out,
                                                              struct coffer_serve_status *st);

/* ------------------------------------------------------- model config file */

struct coffer_serve_version_label {
    char *label;
    int64_t version;
};

struct coffer_serve_model_config {
    char *name;
    char *base_path;
    char *platform; /* "tensorflow" (TF's only value) or "onnx"; "" when absent */
    struct coffer_serve_version_policy policy;
    struct coffer_serve_version_label *labels;
    size_t label_count;
};

struct coffer_serve_config {
    struct coffer_serve_model_config *models;
    size_t model_count;
};

/*
 * Parse a --model_config_file: protobuf text format of ModelServerConfig,
 * the subset TF Serving users write: model_config_list { config { name,
 * base_path, model_platform, model_version_policy { latest { num_versions }
 * | all {} | specific { versions ... } }, version_labels { key value } } }.
 * Comments (#), both string quotes and escapes, `:` before messages, `<>`
 * as braces, `[a, b]` lists and `,`/`;` separators are accepted. Errors
 * (COFFER_E_MALFORMED) name line and column.
 */
COFFER_NODISCARD enum coffer_err coffer_serve_config_parse(const void *text, size_t size,
                                                           struct coffer_serve_config *out);
void coffer_serve_config_free(struct coffer_serve_config *c);

/* ModelService/HandleReloadConfigRequest: the ModelServerConfig of a
 * ReloadConfigRequest as the config-file parser gives it (model_config_list
 * only; INVALID_ARGUMENT with TF's messages otherwise, or for a model listed
 * twice, a config without name or base_path, an unknown platform, an empty
 * `specific`). And the ReloadConfigResponse carrying status. */
COFFER_NODISCARD enum coffer_err coffer_serve_reload_request_decode(const uint8_t *data, size_t size,
                                                                    struct coffer_serve_config *out,
                                                                    struct coffer_serve_status *st);
COFFER_NODISCARD enum coffer_err coffer_serve_reload_response_encode(const struct coffer_serve_status *status,
                                                                     uint8_t **out, size_t *out_size);

/* --ssl_config_file (SSLConfig): PEM contents inline, not paths. TF Serving
 * applies it to gRPC only; coffer uses it for both ports. server_key and
 * server_cert are required; client_verify (mTLS) needs custom_ca. Owned;
 * the free wipes server_key. custom_ca is "" when absent. */
struct coffer_serve_ssl_config {
    char *server_key;
    char *server_cert;
    char *custom_ca;
    bool client_verify;
};
COFFER_NODISCARD enum coffer_err coffer_serve_ssl_config_parse(const void *text, size_t size,
                                                               struct coffer_serve_ssl_config *out);
void coffer_serve_ssl_config_free(struct coffer_serve_ssl_config *c);

/* --monitoring_config_file (MonitoringConfig): prometheus_config { enable
 * path }. The path defaults to TF's. */
#define COFFER_SERVE_PROMETHEUS_PATH "/monitoring/prometheus/metrics"
struct coffer_serve_monitoring_config {
    bool prometheus_enable;
    char *prometheus_path;
};
COFFER_NODISCARD enum coffer_err coffer_serve_monitoring_config_parse(const void *text, size_t size,
                                                                      struct coffer_serve_monitoring_config *out);
void coffer_serve_monitoring_config_free(struct coffer_serve_monitoring_config *c);

/* --batching_parameters_file (BatchingParameters; fields are wrapper
 * messages, `max_batch_size { value: 128 }`). Unset fields get TF's
 * defaults: max_batch_size 1000, batch_timeout_micros 0,
 * max_enqueued_batches 10, num_batch_threads 0 (meaning: the number of
 * cores, the caller decides), thread_pool_name "batch_threads".
 * allowed_batch_sizes must increase and end at max_batch_size. */
struct coffer_serve_batching_config {
    int64_t max_batch_size;
    int64_t batch_timeout_micros;
    int64_t max_enqueued_batches;
    int64_t num_batch_threads;
    char *thread_pool_name;
    int64_t *allowed_batch_sizes;
    size_t allowed_batch_size_count;
    bool pad_variable_length_inputs;
    bool enable_large_batch_splitting;
    int64_t max_execution_batch_size; /* 0: max_batch_size */
};
COFFER_NODISCARD enum coffer_err coffer_serve_batching_config_parse(const void *text, size_t size,
                                                                    struct coffer_serve_batching_config *out);
void coffer_serve_batching_config_free(struct coffer_serve_batching_config *c);

/* ------------------------------------------------------- model registry */

/*
 * The models a server serves, version by version, with TF Serving's
 * life cycle (START, LOADING, AVAILABLE, UNLOADING, END): a poll of each
 * model's base path loads the versions its policy wants and retires the
 * others; a retired version is unloaded once no request holds it. The
 * registry knows nothing of model formats: a loader turns a version's file
 * into a servable (signatures plus the loader's own handle).
 */
struct coffer_serve_servable {
    const char *model;   /* set by the registry: the configured name */
    int64_t version;     /* set by the registry */
    const struct coffer_serve_signature *sigs; /* the loader's; valid until unload */
    size_t sig_count;
    void *handle;        /* the loader's */
};

struct coffer_serve_loader {
    /* Load version of model from path (BASE/VERSION/model.onnx): fill
     * out->sigs, sig_count and handle. Called from the polling thread (or
     * coffer_serve_registry_load's), never twice at once. */
    enum coffer_err (*load)(void *arg, const struct coffer_serve_model_config *model, int64_t version,
                            const char *path, struct coffer_serve_servable *out);
    /* Free what load made; called once no request holds the servable (and
     * for everything still loaded at coffer_serve_registry_free). */
    void (*unload)(void *arg, struct coffer_serve_servable *sv);
    /* Optional: the versions' states may have changed (called after each
     * poll pass, unload of idle versions and config reload, on the thread
     * that did it, without the registry's locks), e.g. to tell health
     * watchers. */
    void (*changed)(void *arg);
    void *arg;
};

struct coffer_serve_registry;

/* cfg is borrowed and must outlive the registry; model names must be
 * unique. Nothing is loaded yet. */
COFFER_NODISCARD enum coffer_err coffer_serve_registry_new(const struct coffer_serve_config *cfg,
                                                           const struct coffer_serve_loader *loader,
                                                           struct coffer_serve_registry **out);
/* How a model moves from one set of versions to the next (TF Serving's
 * AspiredVersionPolicy). AVAILABILITY_PRESERVING (the default, TF's): new
 * versions load first, the old ones retire once a new one is AVAILABLE, so
 * the model never goes unavailable but briefly holds both in memory.
 * RESOURCE_PRESERVING: the versions going away retire first and the new
 * ones load once those are unloaded (idle), so a model never holds more
 * than the versions its policy wants; in between it has no version to
 * serve, and a new version that fails to load leaves it with none. */
enum coffer_serve_version_transition {
    COFFER_SERVE_AVAILABILITY_PRESERVING = 0,
    COFFER_SERVE_RESOURCE_PRESERVING,
};
/* Set before the first load. */
void coffer_serve_registry_set_transition(struct coffer_serve_registry *r, enum coffer_serve_version_transition t);
/* TF's max_num_load_retries and load_retry_interval_micros, for the poll: a
 * version whose load failed is loaded again, its file unchanged, up to
 * max_retries times, each at least interval_ns after the last failure (on
 * the poll's scans); a changed file is loaded at once and counts afresh.
 * The start-up pass does not retry (a failure there is reported at once).
 * Default 0: only a changed file is tried again. Set before polling. */
void coffer_serve_registry_set_load_retries(struct coffer_serve_registry *r, unsigned max_retries,
                                            uint64_t interval_ns);
/* The start-up pass: load what every model's policy wants. Fails (naming the
 * model) when a model has no version its policy serves or a load fails;
 * what loaded stays loaded (free the registry). */
COFFER_NODISCARD enum coffer_err coffer_serve_registry_load(struct coffer_serve_registry *r);
/* One poll pass over every model: load new wanted versions (a version that
 * failed is retried only when its file changed), retire the versions no
 * longer wanted once a wanted one is AVAILABLE, unload retired versions
 * nobody holds (resource-preserving: retire and unload first, and load only
 * when none is still held; the polling thread loads them as soon as the
 * last holder releases). Failures are logged and shown in the status, never
 * fatal; a scan that finds nothing to serve retires nothing. */
void coffer_serve_registry_poll(struct coffer_serve_registry *r);
/* Poll every interval_ms on a thread of its own (until registry_free;
 * 0: never scan, only do what the releases below ask); retired versions are
 * unloaded as soon as their last holder releases, and versions waiting for
 * that (resource-preserving) load then. */
COFFER_NODISCARD enum coffer_err coffer_serve_registry_start_polling(struct coffer_serve_registry *r,
                                                                     uint32_t interval_ms);
/* Stop polling, unload everything, free. Every acquired servable must have
 * been released, or be released by the unloads themselves. NULL is fine. */
void coffer_serve_registry_free(struct coffer_serve_registry *r);

/* The version a request gets, by TF's rules (coffer_serve_version_resolve
 * with the model's labels; an unknown model is NOT_FOUND `Servable not found
 * for request: Latest(name)`), held until coffer_serve_registry_release. */
COFFER_NODISCARD enum coffer_err coffer_serve_registry_acquire(struct coffer_serve_registry *r, const char *name,
                                                               bool has_version, int64_t version, const char *label,
                                                               const struct coffer_serve_servable **out,
                                                               struct coffer_serve_status *st);
void coffer_serve_registry_release(struct coffer_serve_registry *r, const struct coffer_serve_servable *sv);
/* Every version of model name the registry knows (END ones included),
 * newest first: one coffer_malloc block (free with coffer_free), NULL and 0
 * for an unknown model. */
COFFER_NODISCARD enum coffer_err coffer_serve_registry_status(struct coffer_serve_registry *r, const char *name,
                                                              struct coffer_serve_version_status **out,
                                                              size_t *count);
/* Model records (reloads add some); model(i) is NULL for one a reload removed. */
size_t coffer_serve_registry_model_count(struct coffer_serve_registry *r);
const struct coffer_serve_model_config *coffer_serve_registry_model(struct coffer_serve_registry *r, size_t i);
/* HandleReloadConfigRequest: serve cfg's models from now on (cfg is taken
 * over, and zeroed). Models it leaves out are removed (NOT_FOUND for new
 * requests; their versions unload once idle); the others take their new
 * base path, policy and labels, and are polled at once, as at start-up.
 * Returns the first failure (in st: the model and why); what loaded stays
 * loaded. Duplicate names are INVALID_ARGUMENT (nothing changes). */
COFFER_NODISCARD enum coffer_err coffer_serve_registry_reload(struct coffer_serve_registry *r,
                                                             struct coffer_serve_config *cfg,
                                                             struct coffer_serve_status *st);
/* --model_config_file_poll_wait_seconds: every interval_ms (on a thread of
 * its own, until registry_free) read path; when its bytes differ from the
 * last ones seen (seen: what the registry was started with), parse them
 * (coffer_serve_config_parse) and apply them as coffer_serve_registry_reload
 * does. A file that cannot be read, does not parse or configures no model
 * is logged as an error (once per content) and changes nothing. */
COFFER_NODISCARD enum coffer_err coffer_serve_registry_watch_config(struct coffer_serve_registry *r, const char *path,
                                                                   const void *seen, size_t seen_size,
                                                                   uint32_t interval_ms);

/* ---------------------------------------------------------------- batching */

/*
 * TF Serving's batching scheduler, for one servable: requests (tasks) queue
 * into batches of at most max_batch_size items (the sum of their dimension
 * 0); a batch runs when it is full, or when its oldest task has waited
 * batch_timeout_us (0: as soon as a batch thread is free), on one of
 * num_threads threads. At most max_enqueued_batches batches wait; a task
 * that would need one more is refused at once (RESOURCE_EXHAUSTED), so
 * memory never grows with the offered load.
 */
struct coffer_serve_batch_task {
    size_t size;                          /* items; set by the caller, >= 1 */
    uint64_t enqueued_ns;                 /* set by submit (coffer_now_ns) */
    struct coffer_serve_batch_task *next; /* the batcher's; in a batch: the next task */
};

/* Run one batch: count tasks (linked by next, in arrival order) holding
 * items items together, on batch thread `thread` (0..num_threads-1, so a
 * runner can keep per-thread state). The runner completes every task; the
 * batcher forgets them. */
typedef void (*coffer_serve_batch_fn)(void *arg, size_t thread, struct coffer_serve_batch_task *tasks, size_t count,
                                      size_t items);

struct coffer_net_gauge;
struct coffer_net_histogram;
struct coffer_serve_batcher_config {
    size_t max_batch_size;       /* >= 1 */
    uint64_t batch_timeout_us;
    size_t num_threads;          /* >= 1 */
    size_t max_enqueued_batches; /* >= 1 */
    coffer_serve_batch_fn run;
    void *arg;
    struct coffer_net_gauge *queue_depth;      /* optional: tasks waiting (added to, not set) */
    struct coffer_net_histogram *batch_size;   /* optional: items per batch run */
    struct coffer_net_histogram *queue_wait;   /* optional: seconds a task waited */
};

struct coffer_serve_batcher;

/* Start the batch threads. */
COFFER_NODISCARD enum coffer_err coffer_serve_batcher_new(const struct coffer_serve_batcher_config *cfg,
                                                          struct coffer_serve_batcher **out);
/* Queue a task (borrowed until the runner completes it). Refusals, with the
 * task not queued: INVALID_ARGUMENT `Task size N is larger than maximum
 * input batch size M` (and size 0); RESOURCE_EXHAUSTED `The batch
 * scheduling queue to which this task was submitted is full`; UNAVAILABLE
 * once the batcher is stopping. */
COFFER_NODISCARD enum coffer_err coffer_serve_batcher_submit(struct coffer_serve_batcher *b,
                                                             struct coffer_serve_batch_task *task,
                                                             struct coffer_serve_status *st);
/* As coffer_serve_batcher_submit, but the batch threads are woken only
 * when wake is true (then for everything queued since the last wake-up;
 * also when this task is refused). A caller that queues several tasks at
 * once (the requests one network loop turn read) wakes them once, with the
 * last task, so the tasks form batches instead of each waking a thread for
 * a batch of its own. Until that wake-up the tasks wait (unless a thread
 * is awake anyway). */
COFFER_NODISCARD enum coffer_err coffer_serve_batcher_submit_ex(struct coffer_serve_batcher *b,
                                                                struct coffer_serve_batch_task *task, bool wake,
                                                                struct coffer_serve_status *st);
/* Whether a task of size items can be batched: INVALID_ARGUMENT as submit
 * answers it, or COFFER_OK. */
COFFER_NODISCARD enum coffer_err coffer_serve_batcher_check(const struct coffer_serve_batcher *b, size_t size,
                                                            struct coffer_serve_status *st);
/* Run tasks (linked by next, oldest first, each passed
 * coffer_serve_batcher_check) now on the calling thread, in batches of at
 * most max_batch_size items, as a batch thread would run them, with the
 * same metrics (a queue wait of 0), without queueing: for a caller that
 * collected the tasks itself and whose runs are short (a network thread
 * answering one loop turn's requests without a hand-off to a batch
 * thread). Nothing waits, so nothing counts against max_enqueued_batches.
 * The runner gets thread % num_threads. */
void coffer_serve_batcher_run_here(struct coffer_serve_batcher *b, size_t thread,
                                   struct coffer_serve_batch_task *tasks);
/* Tasks waiting now. */
size_t coffer_serve_batcher_depth(struct coffer_serve_batcher *b);
/* Refuse new tasks, run every queued batch (without waiting for timeouts),
 * stop the threads, free. NULL is fine. */
void coffer_serve_batcher_free(struct coffer_serve_batcher *b);

#endif /* COFFER_SERVE_H */
