/*
 * coffer/nn.h — the inference runtime: ONNX models held in memory, run by
 * per-ISA kernels (AVX-512, AVX2) on a thread pool, with the portable
 * reference kernels as the fallback and the truth they are tested against.
 *
 * A model is loaded from bytes in memory (the decrypted model; nn never
 * reads or writes model files itself). Loading parses the ONNX protobuf
 * through the bounds-checked reader, validates the whole graph (op types,
 * opsets, attributes, dtypes, shapes, every size product and the arena
 * size), folds constants, removes dead nodes and plans one activation arena
 * from tensor lifetimes. Running allocates nothing unless the input shapes
 * differ from the planned ones (a new batch size): then the plan is rebuilt
 * from the already parsed graph, never by re-importing the bytes (and
 * constant weights are packed again for the kernels).
 *
 * Weights are referred to in place inside the caller's bytes wherever their
 * alignment allows, so the bytes must stay valid and unchanged for as long
 * as the model lives.
 *
 * Supported element types: float32 for arithmetic; int64 and bool where
 * shape logic needs them. See docs/nn.md for the op list.
 */
#ifndef COFFER_NN_H
#define COFFER_NN_H

#include "coffer/base.h"

/* ONNX TensorProto.DataType values. */
enum coffer_nn_dtype {
    COFFER_NN_UNDEFINED = 0,
    COFFER_NN_FLOAT = 1,
    COFFER_NN_UINT8 = 2,
    COFFER_NN_INT8 = 3,
    COFFER_NN_UINT16 = 4,
    COFFER_NN_INT16 = 5,
    COFFER_NN_INT32 = 6,
    COFFER_NN_INT64 = 7,
    COFFER_NN_STRING = 8,
    COFFER_NN_BOOL = 9,
    COFFER_NN_FLOAT16 = 10,
    COFFER_NN_DOUBLE = 11,
    COFFER_NN_UINT32 = 12,
    COFFER_NN_UINT64 = 13,
};

#define COFFER_NN_MAX_RANK 8
/* Caps checked while loading, before anything is allocated. */
#define COFFER_NN_MAX_MODEL_SIZE ((size_t)2 << 30)   /* protobuf's own limit */
#define COFFER_NN_MAX_ARENA ((size_t)16 << 30)       /* planned activations */
#define COFFER_NN_MAX_ELEMS ((size_t)1 << 33)        /* one tensor */

/* Name of a dtype ("float32", "int64", ...); never NULL. */
const char *coffer_nn_dtype_name(enum coffer_nn_dtype dtype);
/* Bytes per element of a dtype coffer can hold, 0 for the others. */
size_t coffer_nn_dtype_size(enum coffer_nn_dtype dtype);

/* A dense tensor in row-major order. */
struct coffer_nn_tensor {
    enum coffer_nn_dtype dtype;
    int rank;
    int64_t dims[COFFER_NN_MAX_RANK];
    void *data;
    size_t size; /* bytes */
};

/* Number of elements of t (product of dims; 1 for rank 0). */
size_t coffer_nn_tensor_count(const struct coffer_nn_tensor *t);

/* A declared graph input or output: dims[i] is -1 where the model names a
 * symbolic dimension (dim_param, such as a batch size "N"). */
struct coffer_nn_value_info {
    const char *name; /* borrowed from the model */
    enum coffer_nn_dtype dtype;
    int rank;
    int64_t dims[COFFER_NN_MAX_RANK];
};

struct coffer_nn_model;

/*
 * Load options. threads: how many threads run the kernels (the caller
 * counts as one); 0 means one per CPU in the process's affinity mask.
 * The kernels' instruction set is chosen once per process from the CPU
 * (AVX-512, else AVX2+FMA, else the portable reference kernels);
 * COFFER_NN_ISA=ref|avx2|avx512 in the environment forces one, and naming
 * one the CPU lacks makes every load fail with COFFER_E_UNSUPPORTED. The
 * reference kernels run on one thread.
 */
#define COFFER_NN_MAX_THREADS 256
/*
 * precision: COFFER_NN_F32 (float32 throughout), or COFFER_NN_BF16: the
 * direct convolutions on the blocked channel layout (most of a CNN's 1x1
 * and strided layers) round their inputs and weights to bfloat16 and
 * sum in float32, twice the products an instruction (AVX512_BF16; a
 * load on a CPU without it fails with COFFER_E_UNSUPPORTED). The other
 * layers, Winograd's among them, stay float32. Results differ from
 * float32 by bf16's rounding (8 bits of mantissa; docs/nn.md gives the
 * measured agreement).
 *
 * COFFER_NN_PREC_INT8: the same convolutions with 8-bit integers (AVX512_VNNI:
 * four products an instruction lane), their inputs quantized per tensor
 * with the ranges of a calibration table (unsigned 8-bit, the zero point
 * where 0 falls), their weights per output channel (signed 8-bit,
 * symmetric), 32-bit integer sums scaled back to float before the bias,
 * residual and activation; 3x3 stride-1 convolutions run on the direct
 * int8 kernel instead of Winograd. A convolution whose input the table
 * lacks stays float32.
 * The table is calibration (its text, as coffer_nn_calibration_table
 * writes it; borrowed for the load); without one, or on a CPU without
 * AVX512_VNNI, the load fails.
 *
 * COFFER_NN_DEFAULT takes COFFER_NN_PRECISION=f32|bf16|int8 from the
 * environment, else float32 (int8 with the table in the file named by
 * COFFER_NN_CALIBRATION unless calibration is given).
 *
 * calibrate: record, as the model runs (in float32), the range of every
 * value a convolution on the blocked layout reads; coffer_nn_calibration_table
 * then writes them as a calibration table. Needs float32 precision.
 */
enum coffer_nn_precision { COFFER_NN_DEFAULT = 0, COFFER_NN_F32 = 1, COFFER_NN_BF16 = 2, COFFER_NN_PREC_INT8 = 3 };
struct coffer_nn_options {
    int threads;
    enum coffer_nn_precision precision;
    const char *calibration; /* int8 only: a calibration table's text, calibration_size bytes */
    size_t calibration_size;
    bool calibrate;
    /* Re-planned for a new batch size, a model packs its weights again
     * only where the new plan's kernels pack them another way; false
     * (default): weights packed by earlier plans that the current one does
     * not take are freed; true: they are kept for later plans, up to as
     * many bytes again as the current plan's packed weights (for a model
     * run at changing batch sizes, as a server's is). */
    bool keep_packs;
};

/*
 * Parse and validate an ONNX model and plan it for its declared input
 * shapes (symbolic dimensions taken as 1). bytes are borrowed and must
 * outlive the model. Errors: COFFER_E_MALFORMED / TRUNCATED for bad
 * protobuf, COFFER_E_UNSUPPORTED (naming op, domain, opset and node) for
 * ops, dtypes and external data coffer does not handle, COFFER_E_SHAPE for
 * shapes that do not fit, COFFER_E_TOO_LARGE for caps. *out is freed with
 * coffer_nn_model_free.
 */
COFFER_NODISCARD enum coffer_err coffer_nn_model_load(const void *bytes, size_t size,
                                                      struct coffer_nn_model **out);
/* The same with options (NULL: defaults). */
COFFER_NODISCARD enum coffer_err coffer_nn_model_load_opts(const void *bytes, size_t size,
                                                           const struct coffer_nn_options *opts,
                                                           struct coffer_nn_model **out);
void coffer_nn_model_free(struct coffer_nn_model *m);

size_t coffer_nn_model_input_count(const struct coffer_nn_model *m);
size_t coffer_nn_model_output_count(const struct coffer_nn_model *m);
/* Declared inputs and outputs; COFFER_E_RANGE for i out of range. */
COFFER_NODISCARD enum coffer_err coffer_nn_model_input(const struct coffer_nn_model *m, size_t i,
                                                       struct coffer_nn_value_info *out);
COFFER_NODISCARD enum coffer_err coffer_nn_model_output(const struct coffer_nn_model *m, size_t i,
                                                        struct coffer_nn_value_info *out);

/*
 * Run the model. inputs[i] matches graph input i (in declared order) and is
 * borrowed for the call. On success outputs[i] describes output i; its data
 * points into the model's arena and stays valid until the next run or free.
 * When the input shapes (or the values of small int64 inputs, which shape
 * logic may depend on) differ from the current plan, the plan is rebuilt
 * first. A model is not safe to run from two threads at once.
 */
COFFER_NODISCARD enum coffer_err coffer_nn_model_run(struct coffer_nn_model *m,
                                                     const struct coffer_nn_tensor *inputs, size_t n_inputs,
                                                     struct coffer_nn_tensor *outputs, size_t n_outputs);

/* Summary for `coffer inspect`. */
struct coffer_nn_info {
    int64_t ir_version;
    int64_t opset;          /* of the default domain */
    const char *producer;   /* borrowed; "" when absent */
    size_t node_count;      /* as imported */
    size_t live_node_count; /* after constant folding and dead-node removal */
    size_t param_count;     /* elements in initializers */
    size_t param_size;      /* bytes in initializers */
    size_t weights_copied;  /* bytes of weights that could not be referred to in place */
    size_t arena_size;      /* planned activation arena, bytes */
    double work;            /* multiply-adds (element steps for other ops) per run, as planned */
    const char *isa;        /* kernels in use: "ref", "avx2" or "avx512" */
    int threads;
    const char *precision;  /* "f32", "bf16" or "int8" (coffer_nn_options) */
    size_t packed_size;     /* weights packed for the kernels (and their plans), bytes */
};
COFFER_NODISCARD enum coffer_err coffer_nn_model_info(const struct coffer_nn_model *m,
                                                      struct coffer_nn_info *out);
/*
 * A calibration table of the ranges a model loaded with calibrate saw in
 * its runs so far (coffer_nn_options): text, a header line then one line
 * a value, "LO HI NAME" (floats as %.9g; the value's name to the end of
 * the line), in the graph's order. *out is freed with coffer_free.
 * COFFER_E_INVALID_ARG where the model was not loaded to calibrate, or
 * no run has recorded a range yet.
 */
COFFER_NODISCARD enum coffer_err coffer_nn_calibration_table(const struct coffer_nn_model *m, char **out,
                                                             size_t *size);
/* The model's metadata_props: the value of key (the last entry with it), or
 * NULL. Borrowed, valid while the model lives. */
const char *coffer_nn_model_metadata(const struct coffer_nn_model *m, const char *key);
/* Calls fn for every metadata_props entry, in file order (COFFER_E_NOMEM
 * before any call when out of memory). */
COFFER_NODISCARD enum coffer_err coffer_nn_model_metadata_each(const struct coffer_nn_model *m,
                                                               void (*fn)(const char *key, const char *value,
                                                                          void *arg),
                                                               void *arg);
/* Op histogram of the imported graph: calls fn once per distinct op type,
 * in first-seen order. */
void coffer_nn_model_ops(const struct coffer_nn_model *m,
                         void (*fn)(const char *op_type, size_t count, void *arg), void *arg);

/*
 * Per-node timing, for finding where a model spends its time (`coffer bench
 * --profile`). Off by default; while on, every run reads the clock twice per
 * node. Turning it on (again) clears the counters. The report gives each
 * node that ran (nodes fused into another are not listed: their time is the
 * other's), in graph order, with its mean time per run since profiling was
 * turned on.
 */
struct coffer_nn_node_time {
    const char *name;    /* the node's name, "" when it has none */
    size_t index;        /* its position in the graph as imported */
    const char *op_type; /* ONNX op type */
    const char *kernel;  /* "gemm", "winograd", "depthwise", "pool" (fast paths) or "ref" */
    double ms;           /* mean per run */
    double work;         /* multiply-adds (element steps for other ops) per run */
    uint64_t runs;
};
void coffer_nn_model_set_profiling(struct coffer_nn_model *m, bool on);
void coffer_nn_model_profile(const struct coffer_nn_model *m,
                             void (*fn)(const struct coffer_nn_node_time *t, void *arg), void *arg);

/* ------------------------------------------------------------ tensor files */

/*
 * Parse an ONNX TensorProto (.pb) or a NumPy .npy (format 1.0/2.0, C order,
 * little-endian <f4, <i8 or |b1). out->data is allocated with coffer_malloc
 * and freed with coffer_nn_tensor_release; name (may be NULL) receives the
 * TensorProto name, allocated the same way.
 */
COFFER_NODISCARD enum coffer_err coffer_nn_tensor_read_pb(const void *bytes, size_t size,
                                                          struct coffer_nn_tensor *out, char **name);
COFFER_NODISCARD enum coffer_err coffer_nn_tensor_read_npy(const void *bytes, size_t size,
                                                           struct coffer_nn_tensor *out);
/* Either of the above, by content (".npy" files start with "\x93NUMPY"). */
COFFER_NODISCARD enum coffer_err coffer_nn_tensor_read_any(const void *bytes, size_t size,
                                                           struct coffer_nn_tensor *out);
void coffer_nn_tensor_release(struct coffer_nn_tensor *t);
/* Serialise t (raw_data form) or as .npy, appending to b. */
COFFER_NODISCARD enum coffer_err coffer_nn_tensor_write_pb(const struct coffer_nn_tensor *t, const char *name,
                                                           struct coffer_buf *b);
COFFER_NODISCARD enum coffer_err coffer_nn_tensor_write_npy(const struct coffer_nn_tensor *t,
                                                            struct coffer_buf *b);

#endif /* COFFER_NN_H */
