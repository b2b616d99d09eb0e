/*
 * nn_int.h — private to src/nn: protobuf wire helpers, the graph IR, the op
 * table and the kernel interface.
 *
 * The IR is two arrays: values (every named tensor) and nodes (in the
 * topological order ONNX requires; the importer checks it). A "prepare"
 * pass walks the nodes once for a set of input shapes: it infers each
 * node's output shapes, folds nodes whose inputs are all constant, drops
 * nodes no output needs, and plans the arena. Kernels then see only
 * validated shapes: nothing a model file contains can make a kernel read or
 * write outside its tensors.
 */
#ifndef COFFER_NN_INT_H
#define COFFER_NN_INT_H

#include "coffer/nn.h"
#include "kernels/kern.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- protobuf */

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

struct pb_field {
    uint32_t num;
    uint32_t wire;
    uint64_t v;           /* PB_VARINT, PB_I64, PB_I32 */
    struct coffer_rd sub; /* PB_LEN: the payload */
};

/* Read the next field (key and value). Groups and unknown wire types are
 * COFFER_E_MALFORMED. */
COFFER_NODISCARD enum coffer_err pb_next(struct coffer_rd *rd, struct pb_field *f);
/* Count the elements of a repeated scalar field occurrence: 1 for an
 * unpacked value, the number of packed elements for PB_LEN. */
COFFER_NODISCARD enum coffer_err pb_count(const struct pb_field *f, uint32_t scalar_wire, size_t *n);

/* ------------------------------------------------------------------- IR */

#define NN_MAX_IO 64 /* inputs or outputs of one node */

struct nn_tdata {            /* a parsed TensorProto */
    const char *name;
    enum coffer_nn_dtype dtype;
    int rank;
    int64_t dims[COFFER_NN_MAX_RANK];
    size_t count;
    const void *data; /* in place, or in the model arena; NULL while deferred */
    const void *raw;  /* deferred (onnx.c, nn_defer_settle): the bytes in the file, misaligned */
    bool copied;
};

enum nn_attr_type {
    NN_ATTR_UNDEF = 0, NN_ATTR_FLOAT = 1, NN_ATTR_INT = 2, NN_ATTR_STRING = 3, NN_ATTR_TENSOR = 4,
    NN_ATTR_GRAPH = 5, NN_ATTR_FLOATS = 6, NN_ATTR_INTS = 7, NN_ATTR_STRINGS = 8,
};

struct nn_attr {
    const char *name;
    enum nn_attr_type type;
    float f;
    int64_t i;
    const char *s; /* NUL-terminated copy */
    float *floats;
    int64_t *ints;
    size_t n; /* floats or ints */
    struct nn_tdata t;
};

enum nn_val_kind { NN_VAL_ACT = 0, NN_VAL_INPUT, NN_VAL_INIT, NN_VAL_CONST };

struct nn_val {
    const char *name;
    enum nn_val_kind kind;    /* after prepare: CONST for folded values */
    enum coffer_nn_dtype dtype;
    int rank;
    int64_t dims[COFFER_NN_MAX_RANK];
    size_t count;             /* elements */
    size_t size;              /* bytes */
    void *data;               /* resolved at prepare (const) or per run */
    const struct nn_tdata *init;
    int producer;             /* node index, -1 for inputs, initializers */
    int last_use;             /* node index of the last live reader */
    bool is_output;
    bool known;               /* shape inferred */
    bool pinned;              /* a small int64 graph input whose value is part of the plan */
    bool shape_input;         /* a graph input read directly where a value decides a shape */
    size_t offset;            /* in the arena, for ACT values */
    bool blocked;             /* held as NCHW16c (kern.h), per prepare (kernels/fast.c) */
    int seg;                  /* enum nn_seg_val: its part in the image-by-image segment, per prepare */
    /* declared (from ValueInfo) for inputs and outputs */
    int decl_rank;
    int64_t decl_dims[COFFER_NN_MAX_RANK];
    enum coffer_nn_dtype decl_dtype;
};

struct nn_node {
    const char *name;
    const char *op_type;
    const char *domain;
    int op;   /* enum nn_op */
    int opset;
    int n_in, n_out;
    int *in;  /* value index, -1 for an omitted optional input */
    int *out;
    struct nn_attr *attrs;
    int n_attrs;
    /* per prepare */
    bool folded, live;
    size_t scratch;   /* bytes of scratch the kernel needs */
    double work;      /* multiply-adds (or element steps) one run costs, set by infer */
    size_t scratch_off;
    /* fusion and fast kernels (fuse.c, kernels/fast.c), per prepare */
    bool skip;        /* absorbed into an earlier node by fusion: not run */
    int f_out;        /* the value this node writes instead of out[0], -1 for out[0] */
    int f_res;        /* a value added element-wise in the epilogue, -1 for none */
    int f_bn;         /* a BatchNormalization node folded into the weights, -1 for none */
    int f_act;        /* enum nn_act applied last */
    float f_lo, f_hi; /* its bounds (Clip) */
    void *fast;       /* the fast kernel's plan (in the model's pack), NULL: reference kernel */
    int with_next;    /* kernels/fast.c runs the next live node (this index) inside this node's run: its
                       * outputs are placed with this node's, before this node's inputs are freed; -1 */
    bool by_prev;     /* run inside the previous live node's run (with_next): not run on its own */
    bool seg;         /* in the image-by-image segment (kernels/fast.c, plan_seg): planned for one image */
};

/* A value's part in the image-by-image segment (nn_seg_mode): none; made
 * and read only inside it, so the arena holds one image of it, reused by
 * every image; made inside it and read after it (whole, image j at j /
 * N of it); made before it and read inside it (whole, kept to its end). */
enum nn_seg_val { NN_SEG_NONE = 0, NN_SEG_IMG, NN_SEG_OUT, NN_SEG_IN };

struct nn_graph {
    struct nn_val *vals;
    size_t n_vals;
    struct nn_node *nodes;
    size_t n_nodes;
    int *inputs;  /* value indices of the real graph inputs */
    size_t n_inputs;
    int *outputs;
    size_t n_outputs;
};

/* One metadata_props entry (key/value strings in the arena). */
struct nn_meta {
    const char *key, *value;
    struct nn_meta *next;
};

/* A layer shape whose kernel was measured at plan time (fast.c, tune): the
 * geometry it was measured for and the kernel that won. */
#define NN_TUNE_MAX 32
/* A value's range over a calibration's runs (set once one run saw it). */
struct nn_qrange {
    float lo, hi;
    bool set;
};

/* Weights packed by a plan, kept for later plans (fast.c, take_w): in
 * their own memory, named by key (which weights, packed how), so that a
 * plan at another batch size that packs the same weights the same way
 * takes them as they are. */
struct nn_wkeep {
    int64_t key[8];
    struct coffer_secret *mem;
    uint64_t gen;                 /* the last plan that took them (plan_gen) */
    bool filled;                  /* packed (else made by a counting pass, to be packed) */
};

struct nn_tune {
    int64_t n, c, m, in[2], pb[2], out[2]; /* (nn_geom's, the last two spatial axes) */
    int pick;                              /* fast.c: TUNE_DIRECT, TUNE_F4 or TUNE_F2 */
    uint64_t ns[4];                        /* each pick's fastest run, 0: not a candidate */
};

struct coffer_nn_model {
    struct coffer_arena *arena; /* parse results, copies of misaligned weights read unpacked */
    struct nn_graph g;
    int64_t ir_version, opset;
    const char *producer;
    struct nn_meta *meta;       /* metadata_props, last first */
    size_t n_meta;
    size_t param_count, param_size, weights_copied;
    size_t defer_max;           /* bytes of the largest deferred weight (onnx.c) */
    /* the plan */
    struct coffer_arena *fold;  /* folded constants, deferred weights read unpacked; reset on re-plan */
    size_t weights_late;        /* bytes of deferred weights copied into fold by this plan */
    struct coffer_secret *wstage; /* while planning: a deferred weight, aligned, for the packers (fast.c) */
    size_t wstage_used;         /* bytes of it written */
    uint8_t *act;               /* the activation arena (act_mem's data) */
    struct coffer_secret *act_mem;
    size_t act_size, act_cap;
    size_t live_nodes;
    double work;                /* sum over live nodes */
    bool planned;
    bool deferred;              /* planning waits for the first run's inputs */
    int64_t *pin_vals;          /* values of pinned inputs in the current plan */
    size_t pin_cap;
    /* fast kernels */
    const struct nn_isa *isa;   /* chosen at load; "ref": reference kernels only */
    struct nn_pool *pool;       /* threads - 1 workers, NULL for one thread */
    int threads;
    int wino;                   /* enum nn_wino_mode: COFFER_NN_WINOGRAD=0..6, default 1 */
    bool no_blocked;            /* COFFER_NN_BLOCKED=0: every value in NCHW (comparisons) */
    const struct nn_hkern *hk;  /* bf16 kernels where the model runs in bf16 (coffer_nn_options), else NULL */
    const struct nn_qkern *qk;  /* int8 kernels where the model runs in int8, else NULL */
    struct nn_qrange *qr;       /* per value (g.n_vals): int8's calibrated ranges, or those being recorded */
    bool calibrating;           /* recording the blocked convolutions' input ranges into qr as it runs */
    int ksec;                   /* enum nn_ksec_mode: COFFER_NN_KSEC=0|1|2, default 1 */
    int spatial;                /* enum nn_spatial_mode: COFFER_NN_SPATIAL=0|1|2, default 1 */
    int cdw;                    /* enum nn_cdw_mode: COFFER_NN_CDW=0|1|2|3, default 1 */
    int lin;                    /* enum nn_lin_mode: COFFER_NN_LIN=0|1|2, default 1 */
    int pimg;                   /* enum nn_pimg_mode: COFFER_NN_PIMG=0|1|2, default 1 */
    int seg;                    /* enum nn_seg_mode: COFFER_NN_SEG=0|1|2, default 1 */
    /* the image-by-image segment of the current plan: live nodes [seg_lo,
     * seg_hi) run for one image after another, seg_n of them (seg_hi 0:
     * none); the values it reads or writes whole (NN_SEG_IN, NN_SEG_OUT),
     * and room for their data pointers while it runs (in the fold arena) */
    size_t seg_lo, seg_hi;
    int64_t seg_n;
    int *seg_vals;
    void **seg_base;
    size_t n_seg_vals;
    uint8_t *pack;              /* packed weights and fast plans of the current plan (pack_mem's data) */
    struct coffer_secret *pack_mem;
    size_t pack_size, pack_cap;
    struct nn_wkeep *wkeep;     /* packed weights of this and earlier plans, in no order (fast.c) */
    size_t n_wkeep, wkeep_cap;
    uint64_t plan_gen;          /* plans made (nn_fast_prepare) */
    size_t wkeep_min;           /* packed weights of fewer bytes go in the pack, packed every plan */
    int wkeep_other;            /* enum nn_wkeep_mode: what earlier plans' packed weights stay */
    size_t packs_kept;          /* weights a plan found packed already (tests) */
    /* coffer_nn_model_set_profiling: ns per node summed over prof_runs runs, NULL when off */
    uint64_t *prof_ns;
    uint64_t prof_runs;
    /* kernels chosen by measuring them at plan time (fast.c, tune), kept
     * over re-plans */
    int tune;                   /* enum nn_tune_mode: COFFER_NN_TUNE=0|1|2, default 1 */
    int tune_force;             /* while measuring: the pick being planned (fast.c), else 0 */
    int n_tune;
    struct nn_tune tunes[NN_TUNE_MAX];
};

/* onnx.c */
COFFER_NODISCARD enum coffer_err nn_onnx_parse(struct coffer_nn_model *m, const uint8_t *bytes, size_t size);
/* A calibration table's text (calib.c) into m->qr, every name one of the
 * model's values. */
COFFER_NODISCARD enum coffer_err nn_calib_parse(struct coffer_nn_model *m, const void *text, size_t size);
/* Initializers of at least this many bytes whose data in the file is
 * misaligned for float32, and which are read only as the weights (input
 * 1) of Conv, Gemm or MatMul, are not copied at parse: the plan copies
 * each into one staging buffer while its node packs it (fast.c), or, where
 * a node reads it unpacked, into the fold arena (plan.c). */
#define NN_DEFER_MIN 4096
COFFER_NODISCARD enum coffer_err nn_tensor_parse(struct coffer_arena *a, struct coffer_rd *rd,
                                                 struct nn_tdata *t, size_t *copied, bool defer);

struct nn_ctx;

/* fuse.c: fusion decisions for the current shapes (nothing when the ISA is ref) */
COFFER_NODISCARD enum coffer_err nn_fuse(struct coffer_nn_model *m);
/* The value index node n reads in slot k (k == n_in: the fused residual). */
int nn_node_in(const struct nn_node *n, int k);
int nn_node_n_in(const struct nn_node *n);
int nn_node_out(const struct nn_node *n, int k);

/* Winograd for 3x3 stride-1 convolutions: never, where the cost estimate
 * says it wins, or wherever it applies (tests, comparisons). */
/* NN_WINO_ALL: always, and the blocked kind over all tiles at once (the
 * mode large layers get in "auto"; for tests) */
/* NN_WINO_FLY: as NN_WINO_ALL, with U made from the weights as it is used
 * (fast.c, wfly_task) wherever the layer's shape allows it (tests) */
/* NN_WINO_F2: as NN_WINO_ALL, with F(2x2, 3x3) wherever U is stored
 * (fast.c, wino_f2; tests) */
/* NN_WINO_F5: as NN_WINO_ALWAYS, with F(5x5, 3x3) wherever U is stored
 * (fast.c, wino_f5; over all tiles at once where "auto" would; tests) */
enum nn_wino_mode {
    NN_WINO_OFF = 0,
    NN_WINO_AUTO = 1,
    NN_WINO_ALWAYS = 2,
    NN_WINO_ALL = 3,
    NN_WINO_FLY = 4,
    NN_WINO_F2 = 5,
    NN_WINO_F5 = 6
};
/* The blocked direct convolution's reduction in sections with the next
 * section's weights prefetched (fast.c, plan_bconv): never, where the
 * weights stream from memory (default), or wherever it applies, in
 * sections of two tab entries (tests). */
enum nn_ksec_mode { NN_KSEC_OFF = 0, NN_KSEC_AUTO = 1, NN_KSEC_ALWAYS = 2 };
/* Blocked convolutions as one band of output pixels a thread for every
 * group or plane (fast.c, plan_bconv): never, where the weights are small
 * (default), or wherever it applies (tests). */
enum nn_spatial_mode { NN_SPATIAL_OFF = 0, NN_SPATIAL_AUTO = 1, NN_SPATIAL_ALWAYS = 2 };
/* Blocked convolutions with few groups of output channels as one run of
 * (group, tile) pairs a thread, group by group (fast.c, plan_bconv):
 * never, where the weights outweigh the input and the bands do not apply
 * (default), or wherever there are fewer groups than tasks (tests). */
enum nn_lin_mode { NN_LIN_OFF = 0, NN_LIN_AUTO = 1, NN_LIN_ALWAYS = 2 };
/* Blocked convolutions with a padded input, a thread's images one at a
 * time, each padded into the thread's buffer (fast.c, plan_bconv): never,
 * at batch > 1 with small weights (default), or wherever the input is
 * padded (tests). */
enum nn_pimg_mode { NN_PIMG_OFF = 0, NN_PIMG_AUTO = 1, NN_PIMG_ALWAYS = 2 };
/* At batch > 1, the first layers run image by image (fast.c, plan_seg):
 * each node of a run of blocked convolutions (depthwise ones too) and
 * pools is planned for one image, and the executor runs the whole run for
 * one image after another, so that an image's maps stay in the caches from
 * one layer to the next.
 * Never, over the layers whose maps outweigh their weights (default), or
 * over every such run of nodes from the first (tests). */
enum nn_seg_mode { NN_SEG_OFF = 0, NN_SEG_AUTO = 1, NN_SEG_ALWAYS = 2 };
/* Kernels picked by measuring the candidates at plan time (fast.c, tune):
 * never (the fixed rules), for layers large enough to tell them apart
 * (default), or for every layer that has candidates (tests). */
enum nn_tune_mode { NN_TUNE_OFF = 0, NN_TUNE_AUTO = 1, NN_TUNE_ALWAYS = 2 };
/* Packed weights that the current plan does not take (another batch
 * size's kernels packed them), kept for a later plan (fast.c, wkeep_trim):
 * none (default); up to as many bytes as the current plan's kept weights,
 * the most recently taken first (coffer_nn_options.keep_packs); all
 * (tests). */
enum nn_wkeep_mode { NN_WKEEP_OFF = 0, NN_WKEEP_AUTO = 1, NN_WKEEP_ALL = 2 };
/* A convolution on the blocked layout and the depthwise convolution that
 * reads its output run as one (fast.c, plan_cdw): never; band of rows by
 * band of rows where the map is large and group by group of channels
 * where it is small (default); by rows wherever it applies (tests); by
 * groups wherever it applies (tests). */
enum nn_cdw_mode { NN_CDW_OFF = 0, NN_CDW_AUTO = 1, NN_CDW_ALWAYS = 2, NN_CDW_GROUPS = 3 };

/* kernels/fast.c */
/* Whether node i runs a fast kernel (and so can take fused epilogues). */
bool nn_fast_ok(struct coffer_nn_model *m, size_t i);
/* Plan the fast kernels of live nodes: pack weights, set scratch sizes. */
COFFER_NODISCARD enum coffer_err nn_fast_prepare(struct coffer_nn_model *m);
void nn_fast_run(struct nn_ctx *c);
/* The kernel a node runs on, for profiles: "gemm", "winograd", "depthwise", "pool" or "ref". */
const char *nn_fast_kernel(const struct nn_node *n);
/* Whether node n's plan packed its input 1 (the weights) and its runs
 * never read that input's data. */
bool nn_fast_packs_w(const struct nn_node *n);
/* Whether node n runs image by image from a padded buffer a thread (nn_pimg_mode). */
bool nn_fast_per_image(const struct nn_node *n);

/* plan.c */
/* The context node i's kernels see; fused: outputs as fusion redirected them. */
void nn_ctx_init(struct coffer_nn_model *m, size_t i, struct nn_ctx *c, bool fused);
COFFER_NODISCARD enum coffer_err nn_prepare(struct coffer_nn_model *m, const struct coffer_nn_tensor *inputs);
COFFER_NODISCARD enum coffer_err nn_execute(struct coffer_nn_model *m);

/* ----------------------------------------------------------- op table */

struct nn_ctx {              /* what infer and run see of one node */
    struct coffer_nn_model *m;
    struct nn_node *node;
    struct nn_val *in[NN_MAX_IO];  /* NULL for omitted inputs */
    struct nn_val *out[NN_MAX_IO];
    int n_in, n_out;
    void *scratch;
};

typedef enum coffer_err (*nn_infer_fn)(struct nn_ctx *c);
typedef void (*nn_run_fn)(struct nn_ctx *c);

struct nn_op_def {
    const char *name;
    nn_infer_fn infer;  /* validates attributes and shapes, sets outputs and scratch */
    nn_run_fn run;      /* cannot fail: everything was checked by infer */
    int min_in, max_in, min_out, max_out;
};

const struct nn_op_def *nn_op_find(const char *name, int *op);
const struct nn_op_def *nn_op_get(int op);
/* Whether input k of op decides output shapes or the op's meaning (and so must be
 * known at plan time). */
bool nn_op_shape_slot(int op, int opset, int k);
/* Whether op means the same at opsets 1 to 5 as at 6 (elementwise and global ops). */
bool nn_op_old_ok(int op);

/* Attribute access (ops.c). Wrong types are COFFER_E_MALFORMED. */
const struct nn_attr *nn_attr_find(const struct nn_node *n, const char *name);
COFFER_NODISCARD enum coffer_err nn_attr_int(const struct nn_node *n, const char *name, int64_t def, int64_t *out);
COFFER_NODISCARD enum coffer_err nn_attr_float(const struct nn_node *n, const char *name, float def, float *out);
/* ints: *out borrowed (NULL and 0 when absent). */
COFFER_NODISCARD enum coffer_err nn_attr_ints(const struct nn_node *n, const char *name, const int64_t **out, size_t *count);
COFFER_NODISCARD enum coffer_err nn_attr_floats(const struct nn_node *n, const char *name, const float **out, size_t *count);
COFFER_NODISCARD enum coffer_err nn_attr_string(const struct nn_node *n, const char *name, const char *def, const char **out);

/* For kernels, after infer checked the attribute's type: its value or def. */
int64_t nn_ai(const struct nn_node *n, const char *name, int64_t def);
float nn_af(const struct nn_node *n, const char *name, float def);

/* Helpers for infer functions. */
COFFER_NODISCARD enum coffer_err nn_set_out(struct nn_ctx *c, int i, enum coffer_nn_dtype dt, int rank, const int64_t *dims);
/* The value of a constant input as int64s (int64 or int32 inputs); UNSUPPORTED when not constant. */
COFFER_NODISCARD enum coffer_err nn_const_ints(struct nn_ctx *c, int i, const int64_t **out, size_t *count);
COFFER_NODISCARD enum coffer_err nn_const_floats(struct nn_ctx *c, int i, const float **out, size_t *count);
COFFER_NODISCARD enum coffer_err nn_fail_node(struct nn_ctx *c, enum coffer_err e, const char *fmt, ...) COFFER_PRINTF(3, 4);
COFFER_NODISCARD enum coffer_err nn_want_dtype(struct nn_ctx *c, int i, unsigned mask);
#define NN_DT(x) (1u << (x))
#define NN_F NN_DT(COFFER_NN_FLOAT)
#define NN_I NN_DT(COFFER_NN_INT64)
#define NN_B NN_DT(COFFER_NN_BOOL)
/* Record a node's cost; more than COFFER_NN_MAX_NODE_WORK is TOO_LARGE. */
COFFER_NODISCARD enum coffer_err nn_set_work(struct nn_ctx *c, double work);
#define COFFER_NN_MAX_NODE_WORK 1e15

/* Normalise axis into [0, rank). */
COFFER_NODISCARD enum coffer_err nn_axis(struct nn_ctx *c, int64_t axis, int rank, int *out);
/* Broadcast shapes a and b (ONNX multidirectional rules). */
COFFER_NODISCARD enum coffer_err nn_broadcast(struct nn_ctx *c, int ra, const int64_t *da, int rb, const int64_t *db,
                                              int *rank, int64_t *dims);
/* Strides of v when read as a tensor of the output's rank and dims (0 where broadcast). */
void nn_bcast_strides(const struct nn_val *v, int rank, const int64_t *dims, size_t *strides);

/* Geometry of a windowed op (kernels/ref/conv.c): spatial ranks 1 and 2
 * are held as 3 with leading dimensions of 1. kind: 0 Conv, 1 pool,
 * 2 ConvTranspose. Validates every value; infer and run both call it. */
#define NN_SP 3
struct nn_geom {
    int nsp;                /* spatial rank, 1..3 */
    int64_t in[NN_SP], k[NN_SP], s[NN_SP], d[NN_SP], pb[NN_SP], out[NN_SP];
    int64_t n, c, m, group;
    bool ceil_mode, include_pad;
};
COFFER_NODISCARD enum coffer_err nn_geom_get(struct nn_ctx *c, int kind, struct nn_geom *g);

/* kernels: each family file defines infer and run functions named nn_<fam>_... ; ops.c wires them. */
#define NN_DECL(fam) enum coffer_err nn_infer_##fam(struct nn_ctx *c); void nn_run_##fam(struct nn_ctx *c)
NN_DECL(unary);
NN_DECL(binary);
NN_DECL(variadic);
NN_DECL(where);
NN_DECL(not);
NN_DECL(cast);
NN_DECL(clip);
NN_DECL(conv);
NN_DECL(convtranspose);
NN_DECL(pool);
NN_DECL(gpool);
NN_DECL(lrn);
NN_DECL(batchnorm);
NN_DECL(instnorm);
NN_DECL(layernorm);
NN_DECL(gemm);
NN_DECL(matmul);
NN_DECL(flatten);
NN_DECL(reshape);
NN_DECL(transpose);
NN_DECL(squeeze);
NN_DECL(unsqueeze);
NN_DECL(concat);
NN_DECL(split);
NN_DECL(slice);
NN_DECL(gather);
NN_DECL(shape);
NN_DECL(size);
NN_DECL(constant);
NN_DECL(constofshape);
NN_DECL(identity);
NN_DECL(softmax);
NN_DECL(reduce);
NN_DECL(pad);
NN_DECL(resize);
NN_DECL(expand);
NN_DECL(range);
NN_DECL(tile);
NN_DECL(argmax);
NN_DECL(topk);
NN_DECL(gatherelements);
NN_DECL(trilu);
NN_DECL(d2s);
NN_DECL(einsum);
NN_DECL(scatternd);

enum nn_op {
    NN_OP_ABS, NN_OP_NEG, NN_OP_RELU, NN_OP_LEAKYRELU, NN_OP_SIGMOID, NN_OP_TANH, NN_OP_HARDSIGMOID,
    NN_OP_HARDSWISH, NN_OP_ELU, NN_OP_SELU, NN_OP_SOFTPLUS, NN_OP_SQRT, NN_OP_EXP, NN_OP_LOG, NN_OP_ERF,
    NN_OP_RECIPROCAL, NN_OP_FLOOR, NN_OP_CEIL,
    NN_OP_ADD, NN_OP_SUB, NN_OP_MUL, NN_OP_DIV, NN_OP_POW, NN_OP_PRELU, NN_OP_EQUAL, NN_OP_LESS, NN_OP_GREATER,
    NN_OP_SUM, NN_OP_MIN, NN_OP_MAX, NN_OP_MEAN,
    NN_OP_WHERE, NN_OP_NOT, NN_OP_CAST, NN_OP_CLIP,
    NN_OP_CONV, NN_OP_CONVTRANSPOSE, NN_OP_MAXPOOL, NN_OP_AVERAGEPOOL, NN_OP_GLOBALAVERAGEPOOL,
    NN_OP_GLOBALMAXPOOL, NN_OP_LRN, NN_OP_BATCHNORM, NN_OP_INSTANCENORM, NN_OP_LAYERNORM,
    NN_OP_GEMM, NN_OP_MATMUL,
    NN_OP_FLATTEN, NN_OP_RESHAPE, NN_OP_TRANSPOSE, NN_OP_SQUEEZE, NN_OP_UNSQUEEZE, NN_OP_CONCAT, NN_OP_SPLIT,
    NN_OP_SLICE, NN_OP_GATHER, NN_OP_SHAPE, NN_OP_SIZE, NN_OP_CONSTANT, NN_OP_CONSTANTOFSHAPE, NN_OP_IDENTITY,
    NN_OP_DROPOUT, NN_OP_SOFTMAX, NN_OP_LOGSOFTMAX,
    NN_OP_REDUCEMEAN, NN_OP_REDUCESUM, NN_OP_REDUCEMAX, NN_OP_REDUCEMIN,
    NN_OP_PAD, NN_OP_RESIZE, NN_OP_UPSAMPLE, NN_OP_EXPAND, NN_OP_RANGE, NN_OP_TILE, NN_OP_ARGMAX, NN_OP_TOPK,
    /* beyond the list: cheap, and the conformance data covers them */
    NN_OP_SIN, NN_OP_COS, NN_OP_TAN, NN_OP_ASIN, NN_OP_ACOS, NN_OP_ATAN, NN_OP_SINH, NN_OP_COSH, NN_OP_ASINH,
    NN_OP_ACOSH, NN_OP_ATANH, NN_OP_SIGN, NN_OP_SOFTSIGN, NN_OP_ROUND, NN_OP_CELU, NN_OP_THRESHOLDEDRELU,
    NN_OP_SHRINK, NN_OP_ISNAN, NN_OP_ISINF, NN_OP_AND, NN_OP_OR, NN_OP_XOR, NN_OP_ARGMIN, NN_OP_REDUCESUMSQUARE,
    NN_OP_REDUCEPROD, NN_OP_REDUCEL1, NN_OP_REDUCEL2, NN_OP_REDUCELOGSUM, NN_OP_REDUCELOGSUMEXP,
    NN_OP_LESSOREQUAL, NN_OP_GREATEROREQUAL, NN_OP_GATHERELEMENTS, NN_OP_TRILU,
    NN_OP_HARDMAX, NN_OP_DEPTHTOSPACE, NN_OP_SPACETODEPTH, NN_OP_EINSUM, NN_OP_MOD, NN_OP_SCATTERND,
    NN_OP_COUNT
};

#endif
