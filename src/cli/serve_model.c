/*
 * serve_model.c — the runtime side of `coffer serve`: loading a version
 * (protected-file decryption in memory with the bound-path check, nn
 * import, the TF signature), running predictions on it, and batching.
 *
 * Design: nn models are not re-entrant, so a version holds several copies
 * (instances) that share the decrypted bytes (nn refers to the weights in
 * place) and each have their own activation arena and lock. Without
 * batching a request runs on the first free instance, on the network
 * worker's thread (--model_instances, default 1). Each instance runs its
 * kernels on --model_threads threads (default: one per CPU; a small model
 * serves more with an instance per core, each on one thread). With batching (--enable_batching) a request is queued in
 * the version's batcher (serve/batch.c) and answered later through a
 * deferred response; a batch thread merges the queued requests whose inputs
 * agree in everything but dimension 0 into one run (padded with zero rows to
 * the next allowed_batch_sizes entry when that list is given), and splits
 * every output along dimension 0 again. Each batch thread has one
 * instance (made at load and warmed at every allowed batch size when the
 * version has warm-up records, else on first use): nn re-plans when a
 * batch has another size than the last, and with keep_packs packs weights
 * again only where the new size's kernels pack them another way, so a
 * re-plan costs a fraction of a run (resnet50 about 1 ms, the MLP 3 µs)
 * and one instance per thread serves every size. Network
 * threads collect the batching requests of a loop turn and queue them
 * together at its end (serve_turn_end); a small model's batches then run
 * right there, on the network thread.
 *
 * Invariants: I1 an instance runs under its lock, and its outputs (which
 * live in its arena) are copied out before the lock goes. I2 every job that
 * enters serve_job_run is finished exactly once (serve_job_finish). I3 the
 * model key is held in secret memory for the server's life (new versions
 * are decrypted with it); plaintext models live in secret memory too.
 * Trusts: the registry for references; nn for validating the model.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "coffer/pf.h"
#include "serve_cli.h"

/* ---- dtypes between TF Serving and ONNX */

static const struct {
    enum coffer_serve_dtype tf;
    enum coffer_nn_dtype onnx;
} dtypes[] = {
    {COFFER_SERVE_DT_FLOAT, COFFER_NN_FLOAT},   {COFFER_SERVE_DT_DOUBLE, COFFER_NN_DOUBLE},
    {COFFER_SERVE_DT_INT32, COFFER_NN_INT32},   {COFFER_SERVE_DT_UINT8, COFFER_NN_UINT8},
    {COFFER_SERVE_DT_INT16, COFFER_NN_INT16},   {COFFER_SERVE_DT_INT8, COFFER_NN_INT8},
    {COFFER_SERVE_DT_INT64, COFFER_NN_INT64},   {COFFER_SERVE_DT_BOOL, COFFER_NN_BOOL},
    {COFFER_SERVE_DT_HALF, COFFER_NN_FLOAT16},  {COFFER_SERVE_DT_UINT16, COFFER_NN_UINT16},
    {COFFER_SERVE_DT_UINT32, COFFER_NN_UINT32}, {COFFER_SERVE_DT_UINT64, COFFER_NN_UINT64},
};

static enum coffer_serve_dtype tf_of(enum coffer_nn_dtype d)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (dtypes[i].onnx == d)
            return dtypes[i].tf;
    return COFFER_SERVE_DT_INVALID;
}

static enum coffer_nn_dtype onnx_of(enum coffer_serve_dtype d)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (dtypes[i].tf == d)
            return dtypes[i].onnx;
    return (enum coffer_nn_dtype)0;
}

static void info_of(const struct coffer_nn_value_info *v, struct coffer_serve_tensor_info *t)
{
    memset(t, 0, sizeof(*t));
    t->alias = v->name;
    t->tensor_name = v->name;
    t->dtype = tf_of(v->dtype);
    t->rank = (size_t)v->rank;
    for (int i = 0; i < v->rank && i < COFFER_SERVE_MAX_RANK; i++)
        t->dims[i] = v->dims[i];
}

/* ---- running */

static void fail_all(struct serve_job **jobs, size_t k, enum coffer_err r)
{
    char msg[700];
    coffer_err_format(r, msg, sizeof(msg));
    enum coffer_serve_code code = r == COFFER_E_NOMEM      ? COFFER_SERVE_RESOURCE_EXHAUSTED
                                  : r == COFFER_E_INTERNAL ? COFFER_SERVE_INTERNAL
                                                           : COFFER_SERVE_INVALID_ARGUMENT;
    for (size_t j = 0; j < k; j++)
        if (jobs[j]->st.code == COFFER_SERVE_OK)
            coffer_serve_status_set(&jobs[j]->st, code, "%s", msg);
}

/* Two jobs' inputs agree in everything but dimension 0. */
static bool compatible(const struct serve_job *a, const struct serve_job *b)
{
    for (size_t i = 0; i < a->n_in; i++) {
        const struct coffer_serve_tensor *x = &a->in[i], *y = &b->in[i];
        if (x->dtype != y->dtype || x->rank != y->rank)
            return false;
        for (size_t d = 1; d < x->rank; d++)
            if (x->dims[d] != y->dims[d])
                return false;
    }
    return true;
}

/* Run jobs[0..k) (compatible; k > 1 or padded > their items means merged
 * along dimension 0) on inst, which the caller holds. Fills each job's out
 * or st. */
static void run_group(struct serve_loaded *ld, struct serve_instance *inst, struct serve_job **jobs, size_t k,
                      size_t padded)
{
    size_t items = 0;
    for (size_t j = 0; j < k; j++)
        items += jobs[j]->task.size;
    bool merge = k > 1 || padded != items;
    struct coffer_nn_tensor nin[SERVE_MAX_IO], nout[SERVE_MAX_IO];
    void *bufs[SERVE_MAX_IO] = {0};
    enum coffer_err r = COFFER_OK;
    for (size_t i = 0; i < ld->n_in && r == COFFER_OK; i++) {
        const struct coffer_serve_tensor *t = &jobs[0]->in[i];
        nin[i] = (struct coffer_nn_tensor){.dtype = onnx_of(t->dtype), .rank = (int)t->rank, .data = t->data,
                                           .size = t->size};
        for (size_t d = 0; d < t->rank; d++)
            nin[i].dims[d] = t->dims[d];
        if (!merge)
            continue;
        size_t row = t->size / (size_t)t->dims[0], total;
        if (__builtin_mul_overflow(row, padded, &total) || (bufs[i] = coffer_calloc(1, total ? total : 1)) == NULL) {
            r = COFFER_FAIL(COFFER_E_NOMEM, "batch input %zu: %zu rows of %zu bytes", i, padded, row);
            break;
        }
        size_t off = 0;
        for (size_t j = 0; j < k; j++) {
            memcpy((uint8_t *)bufs[i] + off, jobs[j]->in[i].data, jobs[j]->in[i].size);
            off += jobs[j]->in[i].size;
        }
        nin[i].dims[0] = (int64_t)padded;
        nin[i].data = bufs[i];
        nin[i].size = total;
    }
    if (r == COFFER_OK)
        r = coffer_nn_model_run(inst->nn, nin, ld->n_in, nout, ld->n_out);
    for (size_t o = 0; o < ld->n_out && r == COFFER_OK; o++) {
        if (merge && (nout[o].rank < 1 || nout[o].dims[0] != (int64_t)padded)) {
            r = COFFER_FAIL(COFFER_E_SHAPE, "output %s has no batch dimension of %zu: batching cannot split it",
                            ld->outputs[o].alias, padded);
            break;
        }
        size_t row = merge ? nout[o].size / padded : 0, off = 0;
        for (size_t j = 0; j < k && r == COFFER_OK; j++) {
            struct serve_job *job = jobs[j];
            if (job->out == NULL && (job->out = coffer_calloc(ld->n_out, sizeof(*job->out))) == NULL) {
                r = COFFER_E_NOMEM;
                break;
            }
            int64_t dims[COFFER_NN_MAX_RANK];
            memcpy(dims, nout[o].dims, sizeof(dims));
            if (merge)
                dims[0] = (int64_t)job->task.size;
            if ((r = coffer_serve_tensor_init(&job->out[o], ld->outputs[o].alias, tf_of(nout[o].dtype),
                                              (size_t)nout[o].rank, dims)) != COFFER_OK)
                break;
            size_t want = merge ? row * job->task.size : nout[o].size;
            if (job->out[o].size != want)
                r = COFFER_FAIL(COFFER_E_INTERNAL, "output %zu: %zu bytes for %zu", o, want, job->out[o].size);
            else
                memcpy(job->out[o].data, (const uint8_t *)nout[o].data + off, want);
            off += want;
        }
    }
    for (size_t i = 0; i < ld->n_in; i++)
        coffer_free(bufs[i]);
    if (r != COFFER_OK)
        fail_all(jobs, k, r);
}

/* Run jobs[0..k) as run_group does on inst, under its lock, making the
 * instance first if it is not yet (batch threads' instances are made at
 * warm-up or on first use). */
static void run_on(struct serve_loaded *ld, struct serve_instance *inst, struct serve_job **jobs, size_t k,
                   size_t padded)
{
    pthread_mutex_lock(&inst->mu);
    enum coffer_err r = COFFER_OK;
    if (inst->nn == NULL) {
        struct coffer_nn_options no = {.threads = ld->ctx->model_threads, .keep_packs = true};
        r = coffer_nn_model_load_opts(ld->bytes->data, ld->bytes->size, &no, &inst->nn);
    }
    if (r == COFFER_OK)
        run_group(ld, inst, jobs, k, padded);
    else
        fail_all(jobs, k, r);
    pthread_mutex_unlock(&inst->mu);
}

/* Whether job's deadline (grpc-timeout, --rest_api_timeout_in_ms) has
 * passed; if so its status says DEADLINE_EXCEEDED. */
static bool past_deadline(struct serve_job *job)
{
    if (job->deadline_ns == 0 || coffer_now_ns() < job->deadline_ns)
        return false;
    coffer_serve_status_set(&job->st, COFFER_SERVE_DEADLINE_EXCEEDED, "deadline exceeded");
    return true;
}

/* Which instance runs now: the first free one, else wait for one. */
static struct serve_instance *take_instance(struct serve_loaded *ld)
{
    unsigned start = atomic_fetch_add(&ld->next, 1);
    for (size_t i = 0; i < ld->n_inst; i++) {
        struct serve_instance *in = &ld->inst[(start + i) % ld->n_inst];
        if (pthread_mutex_trylock(&in->mu) == 0)
            return in;
    }
    struct serve_instance *in = &ld->inst[start % ld->n_inst];
    pthread_mutex_lock(&in->mu);
    return in;
}

/* Check the inputs against the signature; the batch task size. */
static enum coffer_err check_inputs(struct serve_job *job)
{
    struct serve_loaded *ld = job->ld;
    if (job->n_in != ld->n_in)
        return coffer_serve_status_set(&job->st, COFFER_SERVE_INVALID_ARGUMENT, "expected %zu inputs, got %zu",
                                       ld->n_in, job->n_in);
    size_t size = 0;
    for (size_t i = 0; i < job->n_in; i++) {
        const struct coffer_serve_tensor *t = &job->in[i];
        if (t->dtype != ld->inputs[i].dtype)
            return coffer_serve_status_set(&job->st, COFFER_SERVE_INVALID_ARGUMENT,
                                           "Expects arg[%zu] to be %s but %s is provided", i,
                                           coffer_serve_dtype_name(ld->inputs[i].dtype),
                                           coffer_serve_dtype_name(t->dtype));
        if (t->rank > COFFER_NN_MAX_RANK)
            return coffer_serve_status_set(&job->st, COFFER_SERVE_INVALID_ARGUMENT,
                                           "input %s has rank %zu; at most %d", ld->inputs[i].alias, t->rank,
                                           COFFER_NN_MAX_RANK);
        if (ld->bc == NULL)
            continue;
        if (t->rank == 0 || t->dims[0] < 1)
            return coffer_serve_status_set(&job->st, COFFER_SERVE_INVALID_ARGUMENT,
                                           "Batching session Run() input tensors must have at least one "
                                           "dimension and items: %s", ld->inputs[i].alias);
        if (i > 0 && (size_t)t->dims[0] != size)
            return coffer_serve_status_set(&job->st, COFFER_SERVE_INVALID_ARGUMENT,
                                           "Batching session Run() input tensors must have equal 0th-dimension "
                                           "size");
        size = (size_t)t->dims[0];
    }
    job->task.size = size;
    return COFFER_OK;
}

/* Batching jobs a network thread's loop turn collected (oldest first),
 * handled together when the turn ends (serve_turn_end), so that the
 * requests of every connection that was ready form one batch. Only on
 * threads that call serve_turn_end. */
static _Thread_local struct serve_job *held, *held_last;
static _Thread_local bool turn_thread;
static _Thread_local size_t turn_index; /* which batch thread's instances an inline run takes */
static atomic_size_t turn_threads;

/* A batch expected to take at most this long runs on the network thread
 * that collected it: a hand-off to a batch thread and back (two wake-ups)
 * costs about as much as a small model's run. */
#define SERVE_INLINE_NS 1000000u

/* see serve_cli.h */
void serve_turn_end(void *arg)
{
    (void)arg;
    if (!turn_thread) {
        turn_thread = true;
        turn_index = atomic_fetch_add(&turn_threads, 1);
    }
    while (held != NULL) {
        /* the first job's version: its jobs leave the list as one group
         * (the jobs hold the version, so its batcher is there meanwhile) */
        struct serve_loaded *ld = held->ld;
        struct coffer_serve_batch_task *tasks = NULL, **tail = &tasks;
        struct serve_job **link = &held, *last = NULL;
        size_t items = 0;
        for (struct serve_job *j = held; j != NULL; j = *link) {
            if (j->ld != ld) {
                last = j;
                link = &j->held_next;
                continue;
            }
            *link = j->held_next;
            *tail = &j->task;
            tail = &j->task.next;
            j->task.next = NULL;
            items += j->task.size;
        }
        held_last = last;
        uint64_t item_ns = atomic_load_explicit(&ld->item_ns, memory_order_relaxed);
        if (ld->bc->batch_timeout_micros == 0 && item_ns != 0 && item_ns * items <= SERVE_INLINE_NS) {
            coffer_serve_batcher_run_here(ld->batcher, turn_index, tasks);
            continue;
        }
        /* queued, waking the batch threads once, with the last */
        while (tasks != NULL) {
            struct coffer_serve_batch_task *next = tasks->next;
            struct serve_job *job = (struct serve_job *)tasks;
            if (coffer_serve_batcher_submit_ex(ld->batcher, tasks, next == NULL, &job->st) != COFFER_OK)
                serve_job_finish(job);
            tasks = next;
        }
    }
}

/* see serve_cli.h */
void serve_job_run(struct serve_job *job)
{
    struct serve_loaded *ld = job->ld;
    if (check_inputs(job) != COFFER_OK) {
        serve_job_finish(job);
        return;
    }
    if (ld->batcher != NULL) {
        if (turn_thread) {
            if (coffer_serve_batcher_check(ld->batcher, job->task.size, &job->st) != COFFER_OK) {
                serve_job_finish(job);
                return;
            }
            job->held_next = NULL;
            if (held_last != NULL)
                held_last->held_next = job;
            else
                held = job;
            held_last = job;
            return; /* queued at the turn's end; a batch thread answers it */
        }
        if (coffer_serve_batcher_submit(ld->batcher, &job->task, &job->st) != COFFER_OK)
            serve_job_finish(job);
        return; /* a batch thread answers it */
    }
    if (!past_deadline(job)) {
        struct serve_instance *in = take_instance(ld);
        /* the wait for a free instance counts against the deadline too */
        if (!past_deadline(job))
            run_group(ld, in, &job, 1, 0);
        pthread_mutex_unlock(&in->mu);
    }
    serve_job_finish(job);
}

/* The batcher's runner: split the batch into runs of compatible requests. */
static void batch_run(void *arg, size_t thread, struct coffer_serve_batch_task *tasks, size_t count, size_t items)
{
    struct serve_loaded *ld = arg;
    const struct coffer_serve_batching_config *bc = ld->bc;
    uint64_t t0 = coffer_now_ns();
    struct serve_job **jobs = coffer_mallocarray(count, sizeof(*jobs));
    size_t n = 0;
    for (struct coffer_serve_batch_task *t = tasks; t != NULL; t = t->next) {
        struct serve_job *job = (struct serve_job *)t;
        if (jobs == NULL) {
            coffer_serve_status_set(&job->st, COFFER_SERVE_RESOURCE_EXHAUSTED, "out of memory");
            continue;
        }
        if (past_deadline(job))
            continue;
        jobs[n++] = job;
    }
    for (size_t s = 0; s < n;) {
        size_t e = s + 1, sum = jobs[s]->task.size;
        while (e < n && compatible(jobs[s], jobs[e])) {
            sum += jobs[e]->task.size;
            e++;
        }
        size_t padded = sum;
        for (size_t a = 0; a < bc->allowed_batch_size_count; a++)
            if ((size_t)bc->allowed_batch_sizes[a] >= sum) {
                padded = (size_t)bc->allowed_batch_sizes[a];
                break;
            }
        /* this thread's instance, made at warm-up or on first use (nn
         * re-plans when the size differs from its last run's) */
        run_on(ld, &ld->inst[thread % ld->n_inst], jobs + s, e - s, padded);
        s = e;
    }
    /* what an item costs (serve_turn_end decides by it where batches run) */
    if (n > 0 && items > 0)
        atomic_store_explicit(&ld->item_ns, (coffer_now_ns() - t0) / items, memory_order_relaxed);
    /* answer every task, in arrival order (next is read before the job goes) */
    for (struct coffer_serve_batch_task *t = tasks; t != NULL;) {
        struct coffer_serve_batch_task *next = t->next;
        serve_job_finish((struct serve_job *)t);
        t = next;
    }
    coffer_free(jobs);
}

/* ---- loading */

static void loaded_free(struct serve_loaded *ld)
{
    if (ld == NULL)
        return;
    coffer_serve_batcher_free(ld->batcher); /* answers what is queued */
    coffer_serve_batching_config_free(&ld->own_bc);
    for (size_t i = 0; i < ld->n_inst; i++) {
        coffer_nn_model_free(ld->inst[i].nn);
        pthread_mutex_destroy(&ld->inst[i].mu);
    }
    coffer_free(ld->inst);
    for (size_t i = 0; ld->labels != NULL && i < ld->n_classes; i++)
        coffer_free(ld->labels[i]);
    coffer_free(ld->labels);
    coffer_secret_free(ld->bytes);
    coffer_free(ld);
}

/* ---- the tf.Example signatures */

/* The output a metadata key names: its index in *o, or NOT_FOUND naming it. */
static enum coffer_err declared_output(const struct serve_loaded *ld, const char *key, const char *name, int *o)
{
    for (size_t i = 0; i < ld->n_out; i++)
        if (strcmp(ld->outputs[i].alias, name) == 0) {
            *o = (int)i;
            return COFFER_OK;
        }
    return COFFER_FAIL(COFFER_E_NOT_FOUND, "metadata %s: the model has no output %s", key, name);
}

/* The labels of metadata value v: one per line, or (no newline in it)
 * comma-separated. */
static enum coffer_err labels_parse(struct serve_loaded *ld, const char *v)
{
    char sep = strchr(v, '\n') != NULL ? '\n' : ',';
    size_t n = 1;
    for (const char *p = v; *p; p++)
        n += *p == sep;
    if (sep == '\n' && v[0] != '\0' && v[strlen(v) - 1] == '\n')
        n--; /* a final newline ends the last line */
    if (n != ld->n_classes)
        return COFFER_FAIL(COFFER_E_SHAPE, "metadata " SERVE_META_LABELS " has %zu labels; output %s has %zu classes",
                           n, ld->outputs[ld->cls_scores].alias, ld->n_classes);
    const char *p = v;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(p, sep == '\n' ? "\n" : ",");
        if (sep == '\n' && len > 0 && p[len - 1] == '\r')
            len--; /* CRLF files */
        if ((ld->labels[i] = coffer_malloc(len + 1)) == NULL)
            return COFFER_E_NOMEM;
        memcpy(ld->labels[i], p, len);
        ld->labels[i][len] = '\0';
        p += strcspn(p, sep == '\n' ? "\n" : ",");
        if (*p)
            p++;
    }
    return COFFER_OK;
}

/* The Classify and Regress signatures the model declares in its
 * metadata_props (docs/serve.md): "classification" reads the class scores
 * of output SERVE_META_SCORES (float [batch, classes]) with the labels of
 * SERVE_META_LABELS (or the class numbers); "regression" the values of
 * output SERVE_META_REGRESS (float [batch] or [batch, 1]). Their input, as
 * in TF, is "inputs": serialized tf.Examples, whose features fill the
 * model's inputs by name. A declaration that does not fit the model fails
 * the load. */
static enum coffer_err declare_signatures(struct serve_loaded *ld)
{
    const struct coffer_nn_model *nn = ld->inst[0].nn;
    const char *scores = coffer_nn_model_metadata(nn, SERVE_META_SCORES);
    const char *labels = coffer_nn_model_metadata(nn, SERVE_META_LABELS);
    const char *values = coffer_nn_model_metadata(nn, SERVE_META_REGRESS);
    ld->cls_scores = ld->reg_values = -1;
    if (labels != NULL && scores == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "metadata " SERVE_META_LABELS " without " SERVE_META_SCORES);
    ld->ex_in = (struct coffer_serve_tensor_info){
        .alias = "inputs", .dtype = COFFER_SERVE_DT_STRING, .rank = 1, .dims = {-1}};
    if (scores != NULL) {
        int o = 0;
        enum coffer_err r = declared_output(ld, SERVE_META_SCORES, scores, &o);
        if (r != COFFER_OK)
            return r;
        const struct coffer_serve_tensor_info *t = &ld->outputs[o];
        if (t->dtype != COFFER_SERVE_DT_FLOAT || t->rank != 2 || t->dims[1] <= 0)
            return COFFER_FAIL(COFFER_E_SHAPE,
                               "metadata " SERVE_META_SCORES ": output %s must be float [batch, classes] with a "
                               "known number of classes",
                               scores);
        ld->cls_scores = o;
        ld->n_classes = (size_t)t->dims[1];
        if ((ld->labels = coffer_calloc(ld->n_classes, sizeof(*ld->labels))) == NULL)
            return COFFER_E_NOMEM;
        if (labels != NULL)
            r = labels_parse(ld, labels);
        for (size_t c = 0; r == COFFER_OK && labels == NULL && c < ld->n_classes; c++) {
            char num[24];
            snprintf(num, sizeof(num), "%zu", c);
            if ((ld->labels[c] = coffer_strdup(num)) == NULL)
                r = COFFER_E_NOMEM;
        }
        if (r != COFFER_OK)
            return r;
        ld->cls_out[0] = (struct coffer_serve_tensor_info){
            .alias = "classes", .dtype = COFFER_SERVE_DT_STRING, .rank = 2, .dims = {-1, t->dims[1]}};
        ld->cls_out[1] = (struct coffer_serve_tensor_info){.alias = "scores", .tensor_name = t->tensor_name,
                                                           .dtype = COFFER_SERVE_DT_FLOAT, .rank = 2,
                                                           .dims = {-1, t->dims[1]}};
        ld->sigs[ld->n_sigs++] = (struct coffer_serve_signature){
            .key = "classification", .method_name = COFFER_SERVE_CLASSIFY_METHOD, .inputs = &ld->ex_in,
            .input_count = 1, .outputs = ld->cls_out, .output_count = 2};
    }
    if (values != NULL) {
        int o = 0;
        enum coffer_err r = declared_output(ld, SERVE_META_REGRESS, values, &o);
        if (r != COFFER_OK)
            return r;
        const struct coffer_serve_tensor_info *t = &ld->outputs[o];
        if (t->dtype != COFFER_SERVE_DT_FLOAT || !(t->rank == 1 || (t->rank == 2 && t->dims[1] == 1)))
            return COFFER_FAIL(COFFER_E_SHAPE, "metadata " SERVE_META_REGRESS ": output %s must be float [batch] or "
                               "[batch, 1]", values);
        ld->reg_values = o;
        ld->reg_out = (struct coffer_serve_tensor_info){.alias = "outputs", .tensor_name = t->tensor_name,
                                                        .dtype = COFFER_SERVE_DT_FLOAT, .rank = t->rank,
                                                        .dims = {-1, 1}};
        ld->sigs[ld->n_sigs++] = (struct coffer_serve_signature){
            .key = "regression", .method_name = COFFER_SERVE_REGRESS_METHOD, .inputs = &ld->ex_in,
            .input_count = 1, .outputs = &ld->reg_out, .output_count = 1};
    }
    return COFFER_OK;
}

static enum coffer_err read_model(struct serve_ctx *ctx, const char *path, struct coffer_secret **out)
{
    enum coffer_err r;
    if (ctx->plain) {
        uint8_t *d;
        size_t n;
        if ((r = coffer_file_read_all(path, COFFER_NN_MAX_MODEL_SIZE, &d, &n)) != COFFER_OK)
            return r;
        if ((r = coffer_secret_new(n, out)) == COFFER_OK)
            memcpy((*out)->data, d, n);
        coffer_free(d);
        return r;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return COFFER_FAIL(COFFER_E_NOT_FOUND, "cannot open %s", path);
    char norm[4096];
    r = coffer_pf_normalize_path(path, norm, sizeof(norm));
    struct coffer_io_fd io;
    coffer_io_fd_init(&io, fd);
    if (r == COFFER_OK)
        r = coffer_pf_decrypt_all(&io.io, ctx->key->data, ctx->check_path ? norm : NULL, 0, out);
    close(fd);
    return r;
}

/* see serve_cli.h */
void serve_job_take_inputs(struct serve_job *job, const struct coffer_serve_signature *sig,
                           struct coffer_serve_predict_request *req)
{
    for (size_t i = 0; i < sig->input_count; i++)
        for (size_t k = 0; k < req->input_count; k++)
            if (req->inputs[k].name != NULL && strcmp(req->inputs[k].name, sig->inputs[i].alias) == 0) {
                job->in[job->n_in++] = req->inputs[k];
                memset(&req->inputs[k], 0, sizeof(req->inputs[k]));
                break;
            }
}

/* see serve_cli.h */
enum coffer_err serve_job_examples(struct serve_job *job, const struct coffer_serve_examples *ex,
                                   const struct coffer_serve_limits *lim,
                                   const struct coffer_serve_signature *const *sig, const bool *classify, size_t n,
                                   enum serve_job_kind kind, struct coffer_serve_status *st)
{
    const struct serve_loaded *ld = job->ld;
    enum coffer_err r = coffer_serve_examples_to_tensors(ex, ld->inputs, ld->n_in, lim, job->in, st);
    if (r != COFFER_OK)
        return r;
    job->n_in = ld->n_in;
    for (size_t i = 0; i < n && r == COFFER_OK; i++) {
        job->tasks[i].classify = classify[i];
        if ((job->tasks[i].signature_name = coffer_strdup(sig[i]->key)) == NULL)
            r = coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "out of memory");
        job->n_tasks++;
    }
    if (r != COFFER_OK) {
        for (size_t i = 0; i < job->n_in; i++)
            coffer_serve_tensor_free(&job->in[i]);
        for (size_t i = 0; i < job->n_tasks; i++)
            coffer_free(job->tasks[i].signature_name);
        job->n_in = job->n_tasks = 0;
        return r;
    }
    job->kind = kind;
    job->n_examples = ex->count;
    return COFFER_OK;
}

/* see serve_cli.h */
enum coffer_err serve_job_predict_examples(struct serve_job *job, const struct coffer_serve_signature *sig,
                                           const struct coffer_serve_tensor *in,
                                           const struct coffer_serve_limits *lim, struct coffer_serve_status *st)
{
    struct coffer_serve_examples ex;
    enum coffer_err r = coffer_serve_examples_from_tensor(in, lim, &ex, st);
    if (r != COFFER_OK)
        return r;
    bool classify = strcmp(sig->method_name, COFFER_SERVE_CLASSIFY_METHOD) == 0;
    r = serve_job_examples(job, &ex, lim, &sig, &classify, 1, classify ? SERVE_JOB_CLASSIFY : SERVE_JOB_REGRESS,
                           st);
    coffer_serve_examples_free(&ex);
    job->predict_form = r == COFFER_OK;
    return r;
}

/* Run a warm-up job on inst (made here if it is not yet), as a batch of
 * padded items (its own size, or more: zero rows added; 0 without
 * batching); false with job->st set when it failed. */
static bool warm_instance(struct serve_loaded *ld, struct serve_instance *inst, struct serve_job *job, size_t padded)
{
    run_on(ld, inst, &job, 1, padded);
    if (job->out != NULL)
        coffer_serve_tensors_free(job->out, ld->n_out);
    job->out = NULL;
    return job->st.code == COFFER_SERVE_OK;
}

/* path = the file name in the version folder of model_path
 * (BASE/VERSION/model.onnx). */
static enum coffer_err beside(const char *model_path, const char *name, char *path, size_t size)
{
    const char *slash = strrchr(model_path, '/');
    int len = slash != NULL ? snprintf(path, size, "%.*s/%s", (int)(slash - model_path), model_path, name)
                            : snprintf(path, size, "%s", name);
    return len < 0 || (size_t)len >= size ? COFFER_E_PATH_TOO_LONG : COFFER_OK;
}

/* One warm-up request on every instance that serves it. Without batching
 * those are the --model_instances copies. With batching they are the batch
 * threads' instances (made now, at load, instead of on first use), each
 * run at every batch size it serves: the request padded with zero rows to
 * each allowed_batch_sizes entry in turn (sizes below the request's are
 * skipped: such a batch never holds it), as a batch of it would run, so
 * that nn has packed, and keeps, its weights for every size's kernels. A
 * request larger than max_batch_size fails, as serving it would. Each run
 * is made --num_request_iterations_for_warmup times (TF's default: once).
 * *warmed counts the runs. */
/* see serve_cli.h */
enum coffer_err serve_resolve_tasks(const struct coffer_serve_signature *sigs, size_t n_sigs,
                                    const char *const *names, const bool *classify, size_t n,
                                    const struct coffer_serve_signature **out, struct coffer_serve_status *st)
{
    if (n > SERVE_MAX_IO)
        return coffer_serve_status_set(st, COFFER_SERVE_INVALID_ARGUMENT, "%zu tasks; at most %d", n, SERVE_MAX_IO);
    for (size_t i = 0; i < n; i++) {
        enum coffer_err r = coffer_serve_signature_for_method(
            sigs, n_sigs, names[i], classify[i] ? COFFER_SERVE_CLASSIFY_METHOD : COFFER_SERVE_REGRESS_METHOD, &out[i],
            st);
        if (r != COFFER_OK)
            return r;
        for (size_t k = 0; k < i; k++)
            if (out[k] == out[i])
                return coffer_serve_status_set(st, COFFER_SERVE_INVALID_ARGUMENT,
                                               "Duplicate evaluation of signature: %s", out[i]->key);
    }
    return COFFER_OK;
}

/* A warm-up predict_log: its inputs into job. */
static enum coffer_err warm_predict(struct serve_loaded *ld, const struct coffer_serve_warmup_record *rec,
                                    struct serve_job *job)
{
    struct coffer_serve_predict_request req;
    const struct coffer_serve_signature *sig;
    enum coffer_err r = coffer_serve_predict_request_decode(rec->request, rec->size, &ld->ctx->grpc_lim, &req, &job->st);
    if (r != COFFER_OK)
        return r;
    const char *names[SERVE_MAX_IO];
    if (req.input_count > SERVE_MAX_IO)
        r = coffer_serve_status_set(&job->st, COFFER_SERVE_INVALID_ARGUMENT, "too many inputs: %zu", req.input_count);
    for (size_t i = 0; r == COFFER_OK && i < req.input_count; i++)
        names[i] = req.inputs[i].name;
    if (r == COFFER_OK &&
        (r = coffer_serve_signature_find(ld->sigs, ld->n_sigs, req.spec.signature_name, &sig, &job->st)) ==
            COFFER_OK &&
        (r = coffer_serve_signature_check_inputs(sig, names, req.input_count, &job->st)) == COFFER_OK) {
        if (coffer_serve_signature_takes_examples(sig))
            r = serve_job_predict_examples(job, sig, &req.inputs[0], &ld->ctx->grpc_lim, &job->st);
        else
            serve_job_take_inputs(job, sig, &req);
    }
    coffer_serve_predict_request_free(&req);
    return r;
}

/* A warm-up classify_log, regress_log or multi_inference_log: its
 * signatures resolved as serving resolves them, the model inputs its
 * examples make into job. */
static enum coffer_err warm_examples(struct serve_loaded *ld, const struct coffer_serve_warmup_record *rec,
                                     struct serve_job *job)
{
    const struct coffer_serve_limits *lim = &ld->ctx->grpc_lim;
    struct coffer_serve_model_spec spec;
    struct coffer_serve_examples ex;
    struct coffer_serve_multi_request multi;
    memset(&multi, 0, sizeof(multi));
    memset(&spec, 0, sizeof(spec));
    memset(&ex, 0, sizeof(ex));
    const char *names[SERVE_MAX_IO];
    bool classify[SERVE_MAX_IO];
    const struct coffer_serve_signature *sig[SERVE_MAX_IO];
    size_t n = 1;
    const struct coffer_serve_examples *in = &ex;
    enum coffer_err r;
    if (rec->kind == COFFER_SERVE_LOG_MULTI) {
        if ((r = coffer_serve_multi_request_decode(rec->request, rec->size, lim, &multi, &job->st)) == COFFER_OK &&
            multi.task_count > SERVE_MAX_IO)
            r = coffer_serve_status_set(&job->st, COFFER_SERVE_INVALID_ARGUMENT, "%zu tasks; at most %d",
                                        multi.task_count, SERVE_MAX_IO);
        n = multi.task_count;
        for (size_t i = 0; r == COFFER_OK && i < n; i++) {
            names[i] = multi.tasks[i].spec.signature_name;
            classify[i] = strcmp(multi.tasks[i].method_name, COFFER_SERVE_CLASSIFY_METHOD) == 0;
        }
        in = &multi.input;
    } else {
        r = coffer_serve_example_request_decode(rec->request, rec->size, lim, &spec, &ex, &job->st);
        names[0] = spec.signature_name;
        classify[0] = rec->kind == COFFER_SERVE_LOG_CLASSIFY;
    }
    if (r == COFFER_OK && (r = serve_resolve_tasks(ld->sigs, ld->n_sigs, names, classify, n, sig, &job->st)) ==
                              COFFER_OK &&
        (r = coffer_serve_examples_to_tensors(in, ld->inputs, ld->n_in, lim, job->in, &job->st)) == COFFER_OK)
        job->n_in = ld->n_in;
    coffer_serve_multi_request_free(&multi);
    coffer_serve_examples_free(&ex);
    coffer_serve_model_spec_free(&spec);
    return r;
}

static enum coffer_err warmup_one(struct serve_loaded *ld, const struct coffer_serve_warmup_record *rec, size_t index,
                                  size_t *warmed)
{
    struct serve_job job;
    memset(&job, 0, sizeof(job));
    job.ld = ld;
    enum coffer_err r = rec->kind == COFFER_SERVE_LOG_PREDICT ? warm_predict(ld, rec, &job) : warm_examples(ld, rec, &job);
    if (r == COFFER_OK)
        r = check_inputs(&job);
    const struct coffer_serve_batching_config *bc = ld->bc;
    if (r == COFFER_OK && bc != NULL && job.task.size > (size_t)bc->max_batch_size)
        r = coffer_serve_status_set(&job.st, COFFER_SERVE_INVALID_ARGUMENT,
                                    "Task size %zu is larger than maximum input batch size %lld", job.task.size,
                                    (long long)bc->max_batch_size);
    size_t slots = bc != NULL && bc->allowed_batch_size_count ? bc->allowed_batch_size_count : 1;
    for (size_t i = 0; i < ld->n_inst && r == COFFER_OK; i++)
        for (size_t a = 0; a < slots && r == COFFER_OK; a++) {
            size_t padded = 0; /* without batching: the request as it is */
            if (bc != NULL) {
                padded = job.task.size; /* a batch of this request alone */
                if (bc->allowed_batch_size_count > 0) {
                    padded = (size_t)bc->allowed_batch_sizes[a];
                    if (padded < job.task.size)
                        continue; /* batches of this size never hold it */
                }
            }
            /* --num_request_iterations_for_warmup: each record that often */
            for (size_t it = 0; it < ld->ctx->warmup_iterations && r == COFFER_OK; it++, (*warmed)++)
                if (!warm_instance(ld, &ld->inst[i], &job, padded))
                    r = COFFER_E_INVALID_ARG;
        }
    for (size_t i = 0; i < job.n_in; i++)
        coffer_serve_tensor_free(&job.in[i]);
    for (size_t i = 0; i < job.n_tasks; i++)
        coffer_free(job.tasks[i].signature_name);
    if (r != COFFER_OK && job.st.code != COFFER_SERVE_OK)
        return COFFER_FAIL(r, "warm-up record %zu: %s", index, job.st.message);
    return r;
}

/* TF Serving's model warm-up: replay VERSION/assets.extra/
 * tf_serving_warmup_requests (TFRecord-framed PredictionLog records,
 * predict_log ones), a protected file like the model (plain with
 * --plain-model), once on every instance, before the version is
 * AVAILABLE. No file: nothing to do, as in TF. A failure fails the load. */
static enum coffer_err warmup(struct serve_loaded *ld, const char *model_path, size_t *records, size_t *runs)
{
    *records = 0;
    *runs = 0;
    char path[4096];
    if (beside(model_path, COFFER_SERVE_WARMUP_FILE, path, sizeof(path)) != COFFER_OK)
        return COFFER_FAIL(COFFER_E_PATH_TOO_LONG, "warm-up file path");
    if (access(path, F_OK) != 0)
        return COFFER_OK;
    struct coffer_secret *bytes;
    enum coffer_err r = read_model(ld->ctx, path, &bytes);
    if (r != COFFER_OK) {
        coffer_err_context("warm-up file %s", path);
        return r;
    }
    struct coffer_serve_warmup_record *recs = NULL;
    size_t n = 0;
    if ((r = coffer_serve_warmup_parse(bytes->data, bytes->size, &recs, &n)) != COFFER_OK)
        coffer_err_context("%s", path);
    for (size_t i = 0; i < n && r == COFFER_OK; i++)
        if ((r = warmup_one(ld, &recs[i], i, runs)) != COFFER_OK)
            coffer_err_context("%s", path);
    coffer_free(recs);
    coffer_secret_free(bytes);
    *records = n;
    return r;
}

/* see serve_cli.h */
enum coffer_err serve_batching_check(struct coffer_serve_batching_config *bc)
{
    if (bc->num_batch_threads == 0)
        bc->num_batch_threads = coffer_cpu_count();
    if (bc->enable_large_batch_splitting)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "enable_large_batch_splitting is not supported");
    if (bc->pad_variable_length_inputs)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "pad_variable_length_inputs is not supported");
    return COFFER_OK;
}

/* How version ld (its model file at model_path) batches: the server's
 * parameters, or with --enable_per_model_batching_parameters those of
 * VERSION/batching_params.pbtxt, as TF Serving reads them from the
 * SavedModel folder: a version without that file does not batch, and of
 * the server's file only the thread count (TF's shared pool) applies. The
 * file is plain text (it holds no secret). */
static enum coffer_err batching_of(struct serve_loaded *ld, const char *model_path)
{
    struct serve_ctx *ctx = ld->ctx;
    ld->bc = NULL;
    if (!ctx->batching)
        return COFFER_OK;
    if (!ctx->per_model_batching) {
        ld->bc = &ctx->bcfg;
        return COFFER_OK;
    }
    char path[4096];
    if (beside(model_path, SERVE_BATCHING_PARAMS_FILE, path, sizeof(path)) != COFFER_OK)
        return COFFER_FAIL(COFFER_E_PATH_TOO_LONG, "per-model batching parameters path");
    if (access(path, F_OK) != 0) {
        coffer_info("serve: %s: no such file: this version does not batch (--enable_per_model_batching_parameters)",
                    path);
        return COFFER_OK;
    }
    uint8_t *text;
    size_t n;
    enum coffer_err r = coffer_file_read_all(path, COFFER_SERVE_CONFIG_MAX, &text, &n);
    if (r == COFFER_OK) {
        r = coffer_serve_batching_config_parse(text, n, &ld->own_bc);
        coffer_free(text);
    }
    if (r == COFFER_OK) {
        if (ld->own_bc.num_batch_threads != 0 && ld->own_bc.num_batch_threads != ctx->bcfg.num_batch_threads)
            coffer_info("serve: %s: num_batch_threads is the server's (%lld), as in TF Serving", path,
                        (long long)ctx->bcfg.num_batch_threads);
        ld->own_bc.num_batch_threads = ctx->bcfg.num_batch_threads;
        r = serve_batching_check(&ld->own_bc);
    }
    if (r != COFFER_OK) {
        coffer_err_context("%s", path);
        return r;
    }
    ld->bc = &ld->own_bc;
    return COFFER_OK;
}

static enum coffer_err load(void *arg, const struct coffer_serve_model_config *model, int64_t version,
                            const char *path, struct coffer_serve_servable *out)
{
    struct serve_ctx *ctx = arg;
    uint64_t t0 = coffer_now_ns();
    struct serve_loaded *ld = coffer_calloc(1, sizeof(*ld));
    if (ld == NULL)
        return COFFER_E_NOMEM;
    ld->ctx = ctx;
    if ((ld->mm = serve_metrics_for(ctx, model->name)) == NULL) {
        coffer_free(ld);
        return COFFER_E_NOMEM;
    }
    enum coffer_err r = batching_of(ld, path);
    /* batching: an instance per batch thread, all but the first made when
     * first needed; otherwise --model_instances */
    size_t n_inst = ctx->instances, n_eager = ctx->instances;
    if (ld->bc != NULL) {
        n_inst = (size_t)ld->bc->num_batch_threads;
        n_eager = 1;
    }
    if (ctx->plain)
        coffer_warn("serving %s as a PLAIN model file: it is not encrypted", path);
    if (r == COFFER_OK)
        r = read_model(ctx, path, &ld->bytes);
    if (r == COFFER_OK && (ld->inst = coffer_calloc(n_inst, sizeof(*ld->inst))) == NULL)
        r = COFFER_E_NOMEM;
    for (size_t i = 0; i < n_inst && r == COFFER_OK; i++) {
        struct coffer_nn_options no = {.threads = ctx->model_threads, .keep_packs = true};
        if (i < n_eager &&
            (r = coffer_nn_model_load_opts(ld->bytes->data, ld->bytes->size, &no, &ld->inst[i].nn)) != COFFER_OK)
            break;
        pthread_mutex_init(&ld->inst[i].mu, NULL);
        ld->n_inst++;
    }
    if (r == COFFER_OK) {
        ld->n_in = coffer_nn_model_input_count(ld->inst[0].nn);
        ld->n_out = coffer_nn_model_output_count(ld->inst[0].nn);
        if (ld->n_in > SERVE_MAX_IO || ld->n_out > SERVE_MAX_IO)
            r = COFFER_FAIL(COFFER_E_UNSUPPORTED, "%zu inputs and %zu outputs; coffer serve takes at most %d",
                            ld->n_in, ld->n_out, SERVE_MAX_IO);
    }
    for (size_t i = 0; i < ld->n_in && r == COFFER_OK; i++) {
        struct coffer_nn_value_info v;
        if ((r = coffer_nn_model_input(ld->inst[0].nn, i, &v)) == COFFER_OK)
            info_of(&v, &ld->inputs[i]);
    }
    for (size_t i = 0; i < ld->n_out && r == COFFER_OK; i++) {
        struct coffer_nn_value_info v;
        if ((r = coffer_nn_model_output(ld->inst[0].nn, i, &v)) == COFFER_OK)
            info_of(&v, &ld->outputs[i]);
    }
    ld->sigs[0] = (struct coffer_serve_signature){.key = COFFER_SERVE_DEFAULT_SIGNATURE,
                                                  .method_name = COFFER_SERVE_PREDICT_METHOD, .inputs = ld->inputs,
                                                  .input_count = ld->n_in, .outputs = ld->outputs,
                                                  .output_count = ld->n_out};
    ld->n_sigs = 1;
    if (r == COFFER_OK)
        r = declare_signatures(ld);
    size_t warm = 0, warm_runs = 0;
    uint64_t tw = coffer_now_ns();
    if (r == COFFER_OK && ctx->warmup)
        r = warmup(ld, path, &warm, &warm_runs);
    tw = coffer_now_ns() - tw;
    if (r == COFFER_OK && ld->bc != NULL) {
        const struct coffer_serve_batching_config *bc = ld->bc;
        struct coffer_serve_batcher_config cfg = {
            .max_batch_size = (size_t)bc->max_batch_size,
            .batch_timeout_us = (uint64_t)bc->batch_timeout_micros,
            .num_threads = (size_t)bc->num_batch_threads,
            .max_enqueued_batches = (size_t)bc->max_enqueued_batches,
            .run = batch_run,
            .arg = ld,
            .queue_depth = ld->mm->queue_depth,
            .batch_size = ld->mm->batch_size,
            .queue_wait = ld->mm->queue_wait,
        };
        r = coffer_serve_batcher_new(&cfg, &ld->batcher);
    }
    if (r != COFFER_OK) {
        coffer_err_context("model %s version %lld (%s)", model->name, (long long)version, path);
        loaded_free(ld);
        return r;
    }
    out->sigs = ld->sigs;
    out->sig_count = ld->n_sigs;
    out->handle = ld;
    double ms = (double)(coffer_now_ns() - t0) / 1e6;
    coffer_net_gauge_set(ld->mm->load_ms, (int64_t)ms);
    coffer_info("serve: model %s version %lld loaded in %.1f ms (%zu inputs, %zu outputs, %zu instance%s%s)",
                model->name, (long long)version, ms, ld->n_in, ld->n_out, ld->n_inst, ld->n_inst == 1 ? "" : "s",
                ld->bc == NULL            ? ""
                : ld->bc == &ld->own_bc ? ", batching (" SERVE_BATCHING_PARAMS_FILE ")"
                                          : ", batching");
    if (warm > 0) {
        size_t made = 0;
        for (size_t i = 0; i < ld->n_inst; i++)
            made += ld->inst[i].nn != NULL;
        coffer_info("serve: model %s version %lld warmed up with %zu request%s in %.1f ms (%zu runs on %zu "
                    "instance%s)",
                    model->name, (long long)version, warm, warm == 1 ? "" : "s", (double)tw / 1e6, warm_runs, made,
                    made == 1 ? "" : "s");
    }
    return COFFER_OK;
}

static void unload(void *arg, struct coffer_serve_servable *sv)
{
    (void)arg;
    loaded_free(sv->handle);
    sv->handle = NULL;
}

const struct coffer_serve_loader serve_loader = {.load = load, .unload = unload};
