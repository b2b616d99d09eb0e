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
    size_t unwoken; /* batches queued or closed since the threads were last woken */
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

/* Wake the batch threads for what was queued since the last wake-up: one
 * for one new batch, all for more. Under b->mu. */
static void wake(struct coffer_serve_batcher *b)
{
    if (b->unwoken > 1)
        pthread_cond_broadcast(&b->cv);
    else if (b->unwoken == 1)
        pthread_cond_signal(&b->cv);
    b->unwoken = 0;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_batcher_submit(struct coffer_serve_batcher *b, struct coffer_serve_batch_task *task,
                                            struct coffer_serve_status *st)
{
    return coffer_serve_batcher_submit_ex(b, task, true, st);
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_batcher_submit_ex(struct coffer_serve_batcher *b, struct coffer_serve_batch_task *task,
                                               bool wake_now, struct coffer_serve_status *st)
{
    enum coffer_err r = COFFER_OK;
    task->next = NULL;
    task->enqueued_ns = coffer_now_ns();
    pthread_mutex_lock(&b->mu);
    struct batch *bt = b->tail;
    if ((r = coffer_serve_batcher_check(b, task->size, st)) != COFFER_OK)
        goto out;
    if (b->stopping) {
        r = coffer_serve_status_set(st, COFFER_SERVE_UNAVAILABLE, "the model is being unloaded");
        goto out;
    }
    if (bt == NULL || bt->closed || bt->items + task->size > b->cfg.max_batch_size) {
        if (bt != NULL && !bt->closed) {
            bt->closed = true; /* the next task could not fit either: run it */
            b->unwoken++;      /* a thread waiting for its timeout can take it now */
        }
        if (b->nbatches >= b->cfg.max_enqueued_batches) {
            r = coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED,
                                        "The batch scheduling queue to which this task was submitted is full");
            goto out;
        }
        bt = coffer_calloc(1, sizeof(*bt));
        if (bt == NULL) {
            r = coffer_serve__nomem(st);
            goto out;
        }
        bt->first_ns = task->enqueued_ns;
        if (b->tail != NULL)
            b->tail->next = bt;
        else
            b->head = bt;
        b->tail = bt;
        b->nbatches++;
        b->unwoken++;
    }
    if (bt->tail != NULL)
        bt->tail->next = task;
    else
        bt->head = task;
    bt->tail = task;
    bt->count++;
    bt->items += task->size;
    if (bt->items == b->cfg.max_batch_size) {
        bt->closed = true;
        b->unwoken++;
    }
    b->depth++;
    if (b->cfg.queue_depth != NULL)
        coffer_net_gauge_add(b->cfg.queue_depth, 1);
out:
    if (wake_now)
        wake(b);
    pthread_mutex_unlock(&b->mu); /* the task may run, and b go, from here on */
    return r;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_batcher_check(const struct coffer_serve_batcher *b, size_t size,
                                           struct coffer_serve_status *st)
{
    if (size == 0 || size > b->cfg.max_batch_size)
        return SERVE_INVALID(st, "Task size %zu is larger than maximum input batch size %zu", size,
                             b->cfg.max_batch_size);
    return COFFER_OK;
}

/* see coffer/serve.h */
void coffer_serve_batcher_run_here(struct coffer_serve_batcher *b, size_t thread, struct coffer_serve_batch_task *tasks)
{
    uint64_t now = coffer_now_ns();
    while (tasks != NULL) {
        /* the longest run of tasks within max_batch_size items (each task
         * is within it: coffer_serve_batcher_check) */
        struct coffer_serve_batch_task *last = tasks;
        size_t count = 1, items = tasks->size;
        tasks->enqueued_ns = now;
        while (last->next != NULL && items + last->next->size <= b->cfg.max_batch_size) {
            last = last->next;
            last->enqueued_ns = now;
            items += last->size;
            count++;
        }
        struct coffer_serve_batch_task *rest = last->next;
        last->next = NULL;
        if (b->cfg.batch_size != NULL)
            coffer_net_histogram_observe(b->cfg.batch_size, (double)items);
        if (b->cfg.queue_wait != NULL)
            for (size_t i = 0; i < count; i++)
                coffer_net_histogram_observe(b->cfg.queue_wait, 0.0);
        b->cfg.run(b->cfg.arg, thread % b->cfg.num_threads, tasks, count, items);
        tasks = rest;
    }
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
