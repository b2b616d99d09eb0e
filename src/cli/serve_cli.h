/*
 * serve_cli.h — the pieces of `coffer serve` shared by its files:
 * serve_model.c (loading versions, running predictions, batching) and
 * serve_api.c (the REST and gRPC handlers); cmd_serve.c wires them up.
 */
#ifndef COFFER_SERVE_CLI_H
#define COFFER_SERVE_CLI_H

#include <pthread.h>
#include <stdatomic.h>

#include "coffer/net.h"
#include "coffer/nn.h"
#include "coffer/serve.h"

#define SERVE_MAX_IO 16 /* inputs or outputs of a served model */
/* a version's own batching parameters (--enable_per_model_batching_parameters) */
#define SERVE_BATCHING_PARAMS_FILE "batching_params.pbtxt"

/* Metrics of one model (labels model="NAME"), made when a version of it
 * first loads (a config reload may add models). */
struct serve_model_metrics {
    struct serve_model_metrics *next;
    char *name;
    struct coffer_net_gauge *load_ms;       /* last load of a version */
    struct coffer_net_gauge *queue_depth;   /* batching: requests waiting */
    struct coffer_net_histogram *batch_size; /* batching: items per run */
    struct coffer_net_histogram *queue_wait; /* batching: seconds waited */
};

/* The server: what every handler and loader sees. Read-only once serving. */
struct serve_ctx {
    struct coffer_serve_config models;  /* the served models (from the file or the flags) */
    struct coffer_serve_registry *reg;
    struct coffer_secret *key;          /* the model key; kept to load new versions (NULL: plain) */
    bool check_path, plain, tensor_content;
    bool warmup;                        /* --enable_model_warmup (TF's default: on) */
    size_t warmup_iterations;           /* --num_request_iterations_for_warmup (>= 1) */
    size_t instances;                   /* model copies per version without batching */
    int model_threads;                  /* kernel threads of each copy (0: one per CPU) */
    bool batching;
    bool per_model_batching;            /* --enable_per_model_batching_parameters */
    struct coffer_serve_batching_config bcfg; /* --batching_parameters_file (checked) */
    struct coffer_net_metrics *metrics;
    const char *metrics_path;           /* NULL: no metrics endpoint */
    struct coffer_net_counter *ok[2], *failed[2]; /* [0] REST, [1] gRPC */
    struct coffer_net_histogram *latency[2];
    pthread_mutex_t mm_mu;
    struct serve_model_metrics *mm;     /* per model, a list (serve_metrics_for) */
    bool allow_reload;                  /* --allow_reload_config */
    uint64_t rest_timeout_ns;           /* --rest_api_timeout_in_ms (0: none) */
    bool cors;                          /* --rest_api_enable_cors_support */
    struct coffer_serve_limits grpc_lim, rest_lim; /* message caps: gRPC's and REST's bodies */
    pthread_mutex_t watch_mu;
    struct serve_watch *watches;        /* grpc.health.v1.Health/Watch calls under way */
    size_t n_watches;
};

/* A copy of the model that one thread runs at a time. */
struct serve_instance {
    struct coffer_nn_model *nn;
    pthread_mutex_t mu;
};

/* A loaded version (the servable's handle). */
struct serve_loaded {
    struct serve_ctx *ctx;
    struct serve_model_metrics *mm;
    struct coffer_secret *bytes;      /* the decrypted model: nn borrows it */
    struct serve_instance *inst;
    size_t n_inst;
    atomic_uint next;                 /* round robin over the instances */
    struct coffer_serve_tensor_info inputs[SERVE_MAX_IO], outputs[SERVE_MAX_IO];
    size_t n_in, n_out;
    /* serving_default (predict: the model's own inputs and outputs), then
     * "classification" and "regression" when the model declares them */
    struct coffer_serve_signature sigs[3];
    size_t n_sigs;
    struct coffer_serve_tensor_info ex_in;        /* their input: serialized tf.Examples */
    struct coffer_serve_tensor_info cls_out[2];   /* classes, scores */
    struct coffer_serve_tensor_info reg_out;      /* outputs */
    int cls_scores, reg_values;                   /* the model outputs they read; -1: none */
    size_t n_classes;
    char **labels;                                /* n_classes labels of the classes */
    const struct coffer_serve_batching_config *bc; /* NULL: this version does not batch */
    struct coffer_serve_batching_config own_bc; /* its batching_params.pbtxt (per-model batching) */
    struct coffer_serve_batcher *batcher; /* NULL without batching */
    atomic_uint_fast64_t item_ns;     /* batching: ns per item of the last batch run (0: none yet) */
};

/* What a job answers: Predict, or the tf.Example APIs (whose inputs the
 * handler made from the examples; the answer is read off the model's
 * outputs by the signatures' tasks). */
enum serve_job_kind { SERVE_JOB_PREDICT = 0, SERVE_JOB_CLASSIFY, SERVE_JOB_REGRESS, SERVE_JOB_MULTI };

/* One Classify or Regress evaluation of a job. */
struct serve_task {
    bool classify;
    char *signature_name; /* the resolved key, owned */
};

/* One predict request on its way: from the handler through (maybe) a
 * batch to its answer. */
struct serve_job {
    struct coffer_serve_batch_task task; /* first: the batcher hands it back */
    struct serve_ctx *ctx;
    const struct coffer_serve_servable *sv; /* held until the answer */
    struct serve_loaded *ld;
    bool grpc;
    uint64_t t0, deadline_ns;
    struct coffer_serve_tensor in[SERVE_MAX_IO]; /* signature order, owned */
    size_t n_in;
    enum coffer_serve_rest_format format;        /* REST */
    char **output_filter;                        /* gRPC, owned */
    size_t n_filter;
    struct coffer_serve_tensor *out;             /* n_out, owned */
    enum serve_job_kind kind;
    struct serve_task tasks[SERVE_MAX_IO];       /* not PREDICT: what to answer */
    size_t n_tasks;
    size_t n_examples;                           /* not PREDICT: the batch the examples made */
    bool predict_form;                           /* CLASSIFY or REGRESS a Predict asked: a PredictResponse */
    struct coffer_serve_status st;
    /* where the answer goes: a pending (deferred) or the handler's own */
    struct coffer_net_pending *pending;
    struct coffer_net_response *resp;
    struct coffer_net_grpc_reply *reply;
    struct serve_job *held_next;                 /* serve_turn_end's list */
};

/* The metadata_props keys by which an ONNX model declares its Classify and
 * Regress signatures (docs/serve.md). */
#define SERVE_META_SCORES "coffer.serve.classify.scores"
#define SERVE_META_LABELS "coffer.serve.classify.labels"
#define SERVE_META_REGRESS "coffer.serve.regress.output"

/* serve_model.c */
/* Resolve the signatures of n Classify/Regress tasks (names[i] as sent,
 * classify[i] or regress) into out, refusing one evaluated twice
 * (INVALID_ARGUMENT `Duplicate evaluation of signature: S`). */
COFFER_NODISCARD enum coffer_err serve_resolve_tasks(const struct coffer_serve_signature *sigs, size_t n_sigs,
                                                     const char *const *names, const bool *classify, size_t n,
                                                     const struct coffer_serve_signature **out,
                                                     struct coffer_serve_status *st);

extern const struct coffer_serve_loader serve_loader; /* arg: struct serve_ctx */
/* Run a job now on one of the version's instances, or queue it for a batch
 * (then the answer comes from a batch thread through job->pending, which
 * the caller has made). Either way the job is answered and freed. */
void serve_job_run(struct serve_job *job);
/* The network workers' turn hook (coffer_net_server_config.turn_hook):
 * queue the batching jobs the turn collected, together. */
void serve_turn_end(void *arg);
/* Move req's inputs into job in sig's order (the caller checked their
 * names against sig). */
void serve_job_take_inputs(struct serve_job *job, const struct coffer_serve_signature *sig,
                           struct coffer_serve_predict_request *req);
/* Answer the job (job->st says how) and free it. */
void serve_job_finish(struct serve_job *job);
/* Make job one over examples ex: the model's inputs from them, one task per
 * sig[i] (classify[i] or regress) of kind CLASSIFY, REGRESS or MULTI. On
 * failure (st set) job holds nothing new. */
COFFER_NODISCARD enum coffer_err serve_job_examples(struct serve_job *job, const struct coffer_serve_examples *ex,
                                                    const struct coffer_serve_limits *lim,
                                                    const struct coffer_serve_signature *const *sig,
                                                    const bool *classify, size_t n, enum serve_job_kind kind,
                                                    struct coffer_serve_status *st);
/* A Predict on a classify or regress signature sig (as TF runs it): in, its
 * input "inputs" (serialized tf.Examples), parsed into the model's inputs;
 * the answer is a PredictResponse of the signature's outputs ("classes"
 * and "scores", or "outputs"). */
COFFER_NODISCARD enum coffer_err serve_job_predict_examples(struct serve_job *job,
                                                            const struct coffer_serve_signature *sig,
                                                            const struct coffer_serve_tensor *in,
                                                            const struct coffer_serve_limits *lim,
                                                            struct coffer_serve_status *st);

/* Check a batching config for coffer serve: what it cannot do is an error;
 * num_batch_threads 0 becomes the number of CPUs. */
COFFER_NODISCARD enum coffer_err serve_batching_check(struct coffer_serve_batching_config *bc);

/* cmd_serve.c: the metrics of model name, made on first use; NULL when out of memory. */
struct serve_model_metrics *serve_metrics_for(struct serve_ctx *ctx, const char *name);

/* serve_api.c */
/* The registry's changed hook: send health watchers their services' new
 * statuses. */
void serve_health_changed(void *arg);
enum coffer_err serve_rest_handler(void *arg, const struct coffer_net_request *req, struct coffer_net_response *resp);
enum coffer_err serve_grpc_handler(void *arg, const struct coffer_net_grpc_call *call,
                                   struct coffer_net_grpc_reply *reply);

#endif
