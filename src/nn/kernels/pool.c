/*
 * pool.c — the thread pool the fast kernels share out their tasks on.
 *
 * Design: n - 1 worker threads, started once when a model is loaded, and
 * the calling thread as thread 0. A run writes (fn, arg, ntasks) and bumps
 * a generation number, all in one cache line; every thread then takes
 * task numbers from one atomic counter until none are left, so uneven
 * tasks balance themselves. Workers spin briefly on the generation before
 * they sleep on a condition variable: the nodes of one inference follow
 * each other within microseconds, and a sleeping thread takes tens of
 * microseconds to wake. The caller waits for the workers the same way.
 * The mutex is taken only by a thread that goes to sleep and by one that
 * must wake a sleeper (counted in `sleepers` and `caller_waits`), not on
 * every run: a run on two threads costs about one round trip of a cache
 * line between the cores (~0.3 us here) plus the tasks. Spinners yield
 * the CPU now and then, so a worker the OS placed on the caller's core
 * does not hold it up for a time slice. In fixed mode (nn_pool_run_fixed)
 * thread t % width does task t when it gets there first, so data a task
 * reads stays in that core's cache from run to run; each thread counts
 * its tasks taken on a cache line of its own, and a thread done with its
 * own takes those of a thread that has not got to them. Many small tasks
 * are taken a chunk at a time. A pool as wide as the process's CPU set
 * pins each worker to one CPU of it, away from the caller's (and moves a
 * worker when the caller turns up on its CPU). Nothing is allocated per
 * run.
 *
 * Invariants: I1 a run's tasks are all finished (by some thread) before
 * nn_pool_run returns; I2 a worker that joined a generation bumps
 * `finished` exactly once for it; I3 no thread takes from `next` after its
 * fetch past the end, so a run moves it by a known amount.
 *
 * Trusts: one nn_pool_run at a time per pool (a model is not run from two
 * threads at once, nn.h).
 */
#include "kern.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "coffer/base.h"

#define SPIN_ROUNDS 20000 /* about 50-200 us of pause instructions */
#define YIELD_EVERY 1024  /* spinners yield now and then: a worker that shares a core with the caller must not
                             hold it for its whole time slice */
#define WAIT_YIELD_EVERY 64 /* the caller, waiting for workers, sooner: a worker that has not run yet may share
                               its core (each round is a few microseconds of pause) */

#define LINE 64

struct nn_pool {
    /* the run: written by the caller before it bumps gen, read by the
     * workers once they see it bumped; one cache line */
    _Alignas(LINE) atomic_uint_fast64_t gen;
    nn_task_fn fn;
    void *arg;
    int64_t ntasks;
    int64_t chunk;         /* tasks taken per fetch from `next` */
    int width;             /* threads taking part in the current generation */
    bool fixed;            /* task t runs on thread t % width (nn_pool_run_fixed) */
    bool stop;
    int64_t base;          /* `next` as the run starts */
    /* Counters that only grow, so that a run starts without writing a line
     * a worker wrote last (the store waits for the line, and the bump of
     * gen waits for the store): next, whose fetch-adds go up by a known
     * amount a run (every chunk taken, and one fetch past the end by each
     * thread taking part), and finished, bumped once a run by every
     * worker. */
    _Alignas(LINE) atomic_int_fast64_t next;
    _Alignas(LINE) atomic_uint_fast64_t finished;
    atomic_int caller_waits; /* the caller sleeps on `done` */
    _Alignas(LINE) int n;
    atomic_int sleepers;   /* workers asleep (or about to be) on `start` */
    int solo;              /* runs left that the caller does alone (run) */
    uint64_t target;       /* `finished` once every worker is through the current run */
    int64_t next_end;      /* `next` once the current run is through */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    int *cpu;              /* pinned pools: cpu[i] is thread i's CPU (cpu[0] the one left to the caller), else NULL */
    /* fixed mode: thread v's tasks taken this run, on its own line (own
     * + v LINE bytes): the run's generation (low 40 bits) above the count
     * (24 bits); a count of an older generation is 0. (One bit a task in
     * one shared word, claimed with a fetch-or, cost about 0.1 us a task:
     * 20 tasks of 0.2 us took as long on two threads as on one.) */
    char *own;
    void *own_mem, *mem;   /* the blocks own and the pool (LINE-aligned in them) lie in */
};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

int nn_cpu_count(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n < 1 ? 1 : n;
}

#define OWN_BITS 24

static atomic_uint_fast64_t *own_of(struct nn_pool *p, int v)
{
    return (atomic_uint_fast64_t *)(void *)(p->own + (size_t)v * LINE);
}

/* Fixed mode: the tasks of thread v (v + k width for k = 0, 1, ...) that
 * nobody has taken, each run by the one thread whose compare-exchange
 * moved the count from k to k + 1. */
static void take_of(struct nn_pool *p, int v, int tid, uint64_t tag)
{
    atomic_uint_fast64_t *c = own_of(p, v);
    uint64_t s = atomic_load_explicit(c, memory_order_relaxed);
    for (;;) {
        uint64_t k = s >> OWN_BITS == tag ? s & (((uint64_t)1 << OWN_BITS) - 1) : 0;
        int64_t t = v + (int64_t)k * p->width;
        if (t >= p->ntasks)
            return;
        if (atomic_compare_exchange_weak_explicit(c, &s, tag << OWN_BITS | (k + 1), memory_order_relaxed,
                                                  memory_order_relaxed)) {
            p->fn(p->arg, t, tid);
            s = atomic_load_explicit(c, memory_order_relaxed);
        }
    }
}

static void take_tasks(struct nn_pool *p, int tid, uint64_t gen)
{
    if (p->fixed) {
        /* its own tasks first, then any nobody has started: a thread that
         * the OS has not run yet (it shares a core) holds nobody up */
        uint64_t tag = gen & (((uint64_t)1 << (64 - OWN_BITS)) - 1);
        take_of(p, tid, tid, tag);
        for (int v = 0; v < p->width; v++)
            if (v != tid)
                take_of(p, v, tid, tag);
        return;
    }
    for (;;) {
        int64_t t0 = atomic_fetch_add_explicit(&p->next, p->chunk, memory_order_relaxed) - p->base;
        if (t0 >= p->ntasks)
            return;
        int64_t t1 = t0 + p->chunk < p->ntasks ? t0 + p->chunk : p->ntasks;
        for (int64_t t = t0; t < t1; t++)
            p->fn(p->arg, t, tid);
    }
}

struct worker_arg {
    struct nn_pool *p;
    int tid;
};

static void *worker(void *v)
{
    struct nn_pool *p = ((struct worker_arg *)v)->p;
    int tid = ((struct worker_arg *)v)->tid;
    coffer_free(v);
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < SPIN_ROUNDS; i++) {
            cpu_relax();
            if (i % YIELD_EVERY == YIELD_EVERY - 1)
                sched_yield();
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            /* counted before gen is read again: a run that bumps gen and
             * then finds no sleepers is seen here (both seq_cst) */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
            while ((g = atomic_load_explicit(&p->gen, memory_order_seq_cst)) == seen && !p->stop)
                pthread_cond_wait(&p->start, &p->mu);
            atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
            pthread_mutex_unlock(&p->mu);
        }
        if (p->stop)
            return NULL;
        seen = g;
        if (tid < p->width)
            take_tasks(p, tid, g);
        atomic_fetch_add_explicit(&p->finished, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&p->caller_waits, memory_order_seq_cst)) { /* (it checks whether all are through) */
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* Keeps worker i on p->cpu[i] (best effort: unpinned is still correct). */
static void pin(struct nn_pool *p, int i)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(p->cpu[i], &one);
    (void)pthread_setaffinity_np(p->th[i], sizeof(one), &one);
}

/* The calling thread is not pinned and may run on another thread than the
 * one that made the pool (a server's network thread, after a loader): when
 * it is on a worker's CPU, that worker takes the CPU left to the caller. */
static void keep_apart(struct nn_pool *p)
{
    int here = sched_getcpu();
    if (here < 0 || here == p->cpu[0])
        return;
    for (int i = 1; i < p->n; i++)
        if (p->cpu[i] == here) {
            p->cpu[i] = p->cpu[0];
            p->cpu[0] = here;
            pin(p, i);
            return;
        }
}

struct nn_pool *nn_pool_new(int n)
{
    if (n < 1)
        n = 1;
    /* (coffer_calloc's blocks are 16-aligned: the pool and the counters
     * are placed on whole lines inside larger ones) */
    void *mem = coffer_calloc(1, sizeof(struct nn_pool) + LINE);
    if (mem == NULL)
        return NULL;
    struct nn_pool *p = (struct nn_pool *)(void *)((char *)mem + (LINE - (uintptr_t)mem % LINE) % LINE);
    p->mem = mem;
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n > 1 && ((p->th = coffer_calloc((size_t)n, sizeof(pthread_t))) == NULL ||
                  (p->own_mem = coffer_calloc((size_t)n + 1, LINE)) == NULL)) {
        nn_pool_free(p);
        return NULL;
    }
    /* a pool as wide as the process's CPU set: the workers stay on the
     * CPUs of the set other than the one the creating thread is on. A new
     * thread starts on its creator's CPU and a spinning one is not moved
     * until the next load balancing, so a short run could find both
     * threads sharing a core (MLP b1: 0.065 instead of 0.020 ms); the
     * caller's thread itself is left free */
    if (p->own_mem != NULL)
        p->own = (char *)p->own_mem + (LINE - (uintptr_t)p->own_mem % LINE) % LINE;
    cpu_set_t set;
    int here = sched_getcpu();
    CPU_ZERO(&set);
    if (n > 1 && sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) == n && here >= 0 &&
        here < CPU_SETSIZE && CPU_ISSET(here, &set) && (p->cpu = coffer_calloc((size_t)n, sizeof(int))) != NULL) {
        int k = 0;
        p->cpu[k++] = here; /* thread 0's */
        for (int c = 0; c < CPU_SETSIZE && k < n; c++)
            if (c != here && CPU_ISSET(c, &set))
                p->cpu[k++] = c;
    }
    for (int i = 1; i < n; i++) {
        struct worker_arg *wa = coffer_malloc(sizeof(*wa));
        if (wa == NULL) {
            nn_pool_free(p);
            return NULL;
        }
        wa->p = p;
        wa->tid = i;
        if (pthread_create(&p->th[i], NULL, worker, wa) != 0) {
            coffer_free(wa);
            nn_pool_free(p);
            return NULL;
        }
        p->n = i + 1;
        if (p->cpu != NULL)
            pin(p, i);
    }
    return p;
}

void nn_pool_free(struct nn_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    coffer_free(p->th);
    coffer_free(p->cpu);
    coffer_free(p->own_mem);
    coffer_free(p->mem);
}

int nn_pool_size(const struct nn_pool *p)
{
    return p ? p->n : 1;
}

static void run(struct nn_pool *p, int width, int64_t ntasks, nn_task_fn fn, void *arg, bool fixed)
{
    if (ntasks <= 0)
        return;
    if (p == NULL || p->n == 1 || width <= 1 || ntasks == 1 || (p->solo > 0 && p->solo--)) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(arg, t, 0);
        return;
    }
    if (width > p->n)
        width = p->n;
    if (p->cpu != NULL)
        keep_apart(p);
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    p->width = width;
    p->fixed = fixed && ntasks <= NN_POOL_FIXED_MAX && p->own != NULL;
    /* many small tasks (a depthwise layer's 960 planes of 7x7): taken a
     * chunk at a time, about eight chunks per thread, so the threads do not
     * pass the counter's cache line back and forth for every task */
    p->chunk = ntasks / (8 * (int64_t)width) > 1 ? ntasks / (8 * (int64_t)width) : 1;
    p->target += (uint64_t)(p->n - 1);
    p->base = p->next_end;
    if (!p->fixed) /* every chunk taken, and one fetch past the end by each thread taking part */
        p->next_end += ((ntasks + p->chunk - 1) / p->chunk + width) * p->chunk;
    /* (the counts of fixed mode need no reset: they carry the generation) */
    uint64_t gen = atomic_fetch_add_explicit(&p->gen, 1, memory_order_seq_cst) + 1;
    if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->mu);
    }
    int64_t t0 = now_ns();
    take_tasks(p, 0, gen);
    int64_t t1 = now_ns();
    for (int i = 0; atomic_load_explicit(&p->finished, memory_order_acquire) != p->target && i < SPIN_ROUNDS; i++) {
        cpu_relax();
        if (i % WAIT_YIELD_EVERY == WAIT_YIELD_EVERY - 1)
            sched_yield();
    }
    if (atomic_load_explicit(&p->finished, memory_order_acquire) != p->target) {
        /* announced before `finished` is read again: a worker that ends the run
         * and then finds nobody waiting is seen here (both seq_cst) */
        pthread_mutex_lock(&p->mu);
        atomic_store_explicit(&p->caller_waits, 1, memory_order_seq_cst);
        while (atomic_load_explicit(&p->finished, memory_order_seq_cst) != p->target)
            pthread_cond_wait(&p->done, &p->mu);
        atomic_store_explicit(&p->caller_waits, 0, memory_order_relaxed);
        pthread_mutex_unlock(&p->mu);
    }
    /* a worker still busy long after the caller ran out of tasks, and for
     * longer than the caller's own share took: the OS did not run it (the
     * CPUs are shared with other work); waiting for it on every run made
     * resnet50 2.5-3x slower than one thread beside one busy process, so
     * the caller goes alone for a while, then tries the workers again */
    int64_t waited = now_ns() - t1;
    if (waited > 1000000 && waited > 2 * (t1 - t0))
        p->solo = NN_POOL_SOLO_RUNS;
}

void nn_pool_run(struct nn_pool *p, int width, int64_t ntasks, nn_task_fn fn, void *arg)
{
    run(p, width, ntasks, fn, arg, false);
}

void nn_pool_run_fixed(struct nn_pool *p, int width, int64_t ntasks, nn_task_fn fn, void *arg)
{
    run(p, width, ntasks, fn, arg, true);
}
