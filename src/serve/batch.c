/*
 * batch.c — a batching scheduler like TF Serving's BasicBatchScheduler, for
 * one servable.
 *
 * Design: a FIFO of batches under one mutex. submit appends the task to the
 * last batch while it is open and has room (its items plus the task's stay
 * within max_batch_size), otherwise opens a new batch, unless
 * max_enqueued_batches are already waiting: then the task is refused at
 * once (RESOURCE_EXHAUSTED; TF answers UNAVAILABLE, the issue asks for 429).
 * A batch closes when it reaches max_batch_size or when a task does not fit
 * into it (even one then refused: a full queue runs what it has). Each of num_threads threads
 * takes the first batch when it is closed, when the batch timeout is 0, or
 * when its oldest task has waited batch_timeout_us; otherwise it sleeps
 * until that moment or until a submit signals. The batch runs without the
 * lock held.
 *
 * Invariants: I1 at most max_enqueued_batches batches exist, each holding at
 * most max_batch_size items, so queued memory is bounded by what the tasks
 * hold. I2 a task, once queued, reaches the runner exactly once (free runs
 * what is left). I3 the batcher never touches a task after handing it over.
 * Trusts: the runner to complete its tasks. Threading: submit and depth from
 * any thread; free from one.
 */
#include "serve_int.h"

#include "coffer/net.h"

#include <pthread.h>
#include <time.h>

struct batch {
    struct coffer_serve_batch_task *head, *tail;
    size_t count, items;
    uint64_t first_ns; /* when its first task arrived */
    bool closed;       /* full: no more tasks */
    struct batch *next;
};

struct coffer_serve_batcher {
    struct coffer_serve_batcher_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct batch *head, *tail;
    size_t nbatches;
    size_t depth; /* tasks queued */
    bool stopping;
    pthread_t *threads;
    size_t nthreads;
};

struct worker_arg {
    struct coffer_serve_batcher *b;
    size_t index;
};

static void deadline_ts(uint64_t at_ns, struct timespec *ts)
{
    /* at_ns is on coffer_now_ns's clock (monotonic) */
    ts->tv_sec = (time_t)(at_ns / 1000000000u);
    ts->tv_nsec = (long)(at_ns % 1000000000u);
}

static void *worker(void *arg)
{
    struct worker_arg wa = *(struct worker_arg *)arg;
    coffer_free(arg);
    struct coffer_serve_batcher *b = wa.b;
    uint64_t timeout_ns = b->cfg.batch_timeout_us * 1000u;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        struct batch *bt = b->head;
        if (bt == NULL) {
            if (b->stopping)
                break;
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        uint64_t now = coffer_now_ns();
        uint64_t due = bt->first_ns + timeout_ns;
        if (!bt->closed && timeout_ns != 0 && now < due && !b->stopping) {
            struct timespec ts;
            deadline_ts(due, &ts);
            pthread_cond_timedwait(&b->cv, &b->mu, &ts);
            continue;
        }
        b->head = bt->next;
        if (b->head == NULL)
            b->tail = NULL;
        b->nbatches--;
        b->depth -= bt->count;
        pthread_mutex_unlock(&b->mu);
        if (b->cfg.queue_depth != NULL)
            coffer_net_gauge_add(b->cfg.queue_depth, -(int64_t)bt->count);
        if (b->cfg.batch_size != NULL)
            coffer_net_histogram_observe(b->cfg.batch_size, (double)bt->items);
        if (b->cfg.queue_wait != NULL)
            for (struct coffer_serve_batch_task *t = bt->head; t != NULL; t = t->next)
                coffer_net_histogram_observe(b->cfg.queue_wait, (double)(now - t->enqueued_ns) / 1e9);
        b->cfg.run(b->cfg.arg, wa.index, bt->head, bt->count, bt->items);
        coffer_free(bt);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void stop_threads(struct coffer_serve_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->stopping = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (size_t i = 0; i < b->nthreads; i++)
        pthread_join(b->threads[i], NULL);
    b->nthreads = 0;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_batcher_new(const struct coffer_serve_batcher_config *cfg,
                                         struct coffer_serve_batcher **out)
{
    *out = NULL;
    if (cfg->max_batch_size == 0 || cfg->num_threads == 0 || cfg->num_threads > 1024 ||
        cfg->max_enqueued_batches == 0 || cfg->run == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "batching needs max_batch_size, num_batch_threads (at most 1024) "
                           "and max_enqueued_batches of at least 1");
    struct coffer_serve_batcher *b = coffer_calloc(1, sizeof(*b));
    if (b == NULL)
        return COFFER_E_NOMEM;
    b->threads = coffer_calloc(cfg->num_threads, sizeof(*b->threads));
    if (b->threads == NULL) {
        coffer_free(b);
        return COFFER_E_NOMEM;
    }
    b->cfg = *cfg;
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    enum coffer_err r = COFFER_OK;
    for (size_t i = 0; i < cfg->num_threads; i++) {
        struct worker_arg *wa = coffer_malloc(sizeof(*wa));
        if (wa == NULL) {
            r = COFFER_E_NOMEM;
            break;
        }
        *wa = (struct worker_arg){.b = b, .index = i};
        if (pthread_create(&b->threads[i], NULL, worker, wa) != 0) {
            coffer_free(wa);
            r = COFFER_FAIL(COFFER_E_NOMEM, "cannot start batch thread %zu", i);
            break;
        }
        b->nthreads++;
    }
    if (r != COFFER_OK) {
        coffer_serve_batcher_free(b);
        return r;
    }
    *out = b;
    return COFFER_OK;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_batcher_submit(struct coffer_serve_batcher *b, struct coffer_serve_batch_task *task,
                                            struct coffer_serve_status *st)
{
    if (task->size == 0 || task->size > b->cfg.max_batch_size)
        return SERVE_INVALID(st, "Task size %zu is larger than maximum input batch size %zu", task->size,
                             b->cfg.max_batch_size);
    task->next = NULL;
    task->enqueued_ns = coffer_now_ns();
    pthread_mutex_lock(&b->mu);
    if (b->stopping) {
        pthread_mutex_unlock(&b->mu);
        return coffer_serve_status_set(st, COFFER_SERVE_UNAVAILABLE, "the model is being unloaded");
    }
    struct batch *bt = b->tail;
    if (bt == NULL || bt->closed || bt->items + task->size > b->cfg.max_batch_size) {
        if (bt != NULL)
            bt->closed = true; /* the next task could not fit either: run it */
        if (b->nbatches >= b->cfg.max_enqueued_batches) {
            pthread_mutex_unlock(&b->mu);
            return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED,
                                           "The batch scheduling queue to which this task was submitted is full");
        }
        bt = coffer_calloc(1, sizeof(*bt));
        if (bt == NULL) {
            pthread_mutex_unlock(&b->mu);
            return coffer_serve__nomem(st);
        }
        bt->first_ns = task->enqueued_ns;
        if (b->tail != NULL)
            b->tail->next = bt;
        else
            b->head = bt;
        b->tail = bt;
        b->nbatches++;
    }
    if (bt->tail != NULL)
        bt->tail->next = task;
    else
        bt->head = task;
    bt->tail = task;
    bt->count++;
    bt->items += task->size;
    if (bt->items == b->cfg.max_batch_size)
        bt->closed = true;
    b->depth++;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (b->cfg.queue_depth != NULL)
        coffer_net_gauge_add(b->cfg.queue_depth, 1);
    return COFFER_OK;
}

/* see coffer/serve.h */
size_t coffer_serve_batcher_depth(struct coffer_serve_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    size_t d = b->depth;
    pthread_mutex_unlock(&b->mu);
    return d;
}

/* see coffer/serve.h */
void coffer_serve_batcher_free(struct coffer_serve_batcher *b)
{
    if (b == NULL)
        return;
    stop_threads(b); /* the threads run what is queued before they end */
    if (COFFER_NEVER(b->head != NULL))
        coffer_warn("serve: batcher freed with batches queued");
    coffer_free(b->threads);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    coffer_free(b);
}
