/*
 * serve_int.h — helpers shared by the files of serve/ only (STYLE §3.1).
 */
#ifndef COFFER_SERVE_INT_H
#define COFFER_SERVE_INT_H

#include "coffer/serve.h"

#include <stddef.h>

/* Shorthands for the common canonical codes. */
/* Caps on a model config (file or reload); duplicate checks are quadratic. */
#define COFFER_SERVE__MAX_MODELS 4096
#define COFFER_SERVE__MAX_LABELS 1024

#define SERVE_INVALID(st, ...) coffer_serve_status_set((st), COFFER_SERVE_INVALID_ARGUMENT, __VA_ARGS__)

/* lim or the defaults. */
const struct coffer_serve_limits *coffer_serve__limits(const struct coffer_serve_limits *lim,
                                                       struct coffer_serve_limits *storage);

/* The start of decoding a message: st cleared, *lim the caps (the defaults,
 * in storage, when NULL), and RESOURCE_EXHAUSTED `Received message larger
 * than max (N vs. M)` when size is over them. */
enum coffer_err coffer_serve__message_start(size_t size, const struct coffer_serve_limits **lim,
                                            struct coffer_serve_limits *storage, struct coffer_serve_status *st);

/* Element count of dims with overflow and cap checks (every dim >= 0).
 * Returns false when the product overflows size_t. */
bool coffer_serve__dims_count(const int64_t *dims, size_t rank, size_t *count);

/* The fast path of coffer_serve_rest_predict_parse (rest_fast.c): one float
 * or double input as a dense nested list of plain numbers. COFFER_OK with
 * *out filled, COFFER_E_NOMEM, or COFFER_E_UNSUPPORTED: not that form, run
 * the general parser (which gives every error). */
enum coffer_err coffer_serve__rest_predict_fast(const void *body, size_t size,
                                                const struct coffer_serve_signature *sigs, size_t sig_count,
                                                const struct coffer_serve_limits *lim,
                                                struct coffer_serve_rest_predict *out);

/* The next protobuf field of rd: its number, wire type and, for varints,
 * *value; a length-delimited field's bytes in *sub (its length in *value);
 * fixed32/64 skipped. Groups and undefined wire types are MALFORMED. */
enum coffer_err coffer_serve__pb_next(struct coffer_rd *rd, uint32_t *field, uint32_t *wire, uint64_t *value,
                                      struct coffer_rd *sub);

/* Record COFFER_E_NOMEM in st as RESOURCE_EXHAUSTED and return it. */
enum coffer_err coffer_serve__nomem(struct coffer_serve_status *st);

#endif

/* ---------------------------------------------- protobuf-c glue (generated) */
#include "tensorflow/core/framework/tensor.pb-c.h"
#include "tensorflow_serving/apis/model.pb-c.h"
#include "tensorflow_serving/apis/predict.pb-c.h"

/* protobuf-c allocations go through coffer_malloc (fault injection). */
extern ProtobufCAllocator coffer_serve__pb_alloc;

/* Pieces allocated while building a message for packing (or viewing one
 * in place): zero-filled, all freed at once. The first
 * COFFER_SERVE__SCRATCH_INLINE bytes come from the struct itself (a
 * predict's messages fit: no malloc), the rest from the heap. Starts as
 * {0}; never copied while in use. */
#define COFFER_SERVE__SCRATCH_INLINE 2048
struct coffer_serve__scratch {
    void **ptrs;
    size_t count, cap;
    size_t used; /* of inline_mem */
    _Alignas(max_align_t) unsigned char inline_mem[COFFER_SERVE__SCRATCH_INLINE];
};
void *coffer_serve__scratch_alloc(struct coffer_serve__scratch *s, size_t count, size_t size);
void coffer_serve__scratch_free(struct coffer_serve__scratch *s);

/* TensorProto (unpacked) -> tensor, checking sizes against lim and against
 * *budget (bytes left for the whole request; decremented). */
enum coffer_err coffer_serve__tensor_from_proto(const Tensorflow__TensorProto *tp, const char *name,
                                                const struct coffer_serve_limits *lim, size_t *budget,
                                                struct coffer_serve_tensor *out, struct coffer_serve_status *st);
/* tensor -> TensorProto pointing into t and into scratch. */
enum coffer_err coffer_serve__tensor_to_proto(const struct coffer_serve_tensor *t, bool tensor_content,
                                              struct coffer_serve__scratch *s, Tensorflow__TensorProto *tp);
/* ModelSpec <-> spec. */
enum coffer_err coffer_serve__spec_from_proto(const Tensorflow__Serving__ModelSpec *ms,
                                              struct coffer_serve_model_spec *out);
enum coffer_err coffer_serve__spec_to_proto(const struct coffer_serve_model_spec *spec,
                                            struct coffer_serve__scratch *s, Tensorflow__Serving__ModelSpec *ms);
/* A PredictRequest decoded in place (predict_view.c): *m as protobuf-c's
 * unpack would give it, built in s, its tensor_content borrowing data.
 * COFFER_E_UNSUPPORTED: not a form it takes (unpack with protobuf-c, which
 * gives every error); COFFER_E_NOMEM. */
enum coffer_err coffer_serve__predict_request_view(const uint8_t *data, size_t size, struct coffer_serve__scratch *s,
                                                   Tensorflow__Serving__PredictRequest *m);
/* coffer_serve_predict_request_decode with the in-place path (fast) or
 * protobuf-c's unpack alone: the two must agree (tests, fuzz). */
enum coffer_err coffer_serve__predict_request_decode(const uint8_t *data, size_t size,
                                                     const struct coffer_serve_limits *lim, bool fast,
                                                     struct coffer_serve_predict_request *out,
                                                     struct coffer_serve_status *st);
/* coffer_serve_tensor_init without zeroing numeric data the caller fills. */
enum coffer_err coffer_serve__tensor_alloc(struct coffer_serve_tensor *t, const char *name,
                                           enum coffer_serve_dtype dtype, size_t rank, const int64_t *dims,
                                           bool zero);
/* Pack a built message into coffer_malloc memory. */
enum coffer_err coffer_serve__pack(const ProtobufCMessage *m, uint8_t **out, size_t *out_size);
/* Strings borrowed into a message under construction (protobuf-c wants char*). */
#define SERVE_STR(s) ((char *)((s) != NULL ? (s) : ""))

/* ------------------------------------------------------ JSON writing helpers */
/* A JSON string: '"', '\\' and control characters escaped, valid UTF-8 kept,
 * each byte of an invalid sequence written as U+FFFD. */
enum coffer_err coffer_serve__json_string(struct coffer_buf *b, const void *s, size_t n);
/* A number as TF Serving writes it (§1.4): 6 significant digits when they
 * read back exactly, else 9 (float) or 17 (double); ".0" on whole numbers;
 * NaN, Infinity, -Infinity. */
enum coffer_err coffer_serve__json_real(struct coffer_buf *b, double v, bool single);
/* NUL-terminate and hand the text over (*out from coffer_malloc). */
enum coffer_err coffer_serve__buf_finish(struct coffer_buf *b, char **out, size_t *out_size);
#define SERVE_JSON_MAX ((size_t)4 << 30) /* cap on any JSON we write */
