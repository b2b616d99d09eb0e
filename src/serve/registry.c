/*
 * registry.c — the models a server serves: their versions, states, labels,
 * references held by requests, and the poll that loads new versions and
 * unloads retired ones while serving.
 *
 * Design: one entry per configured model (its config is borrowed; a
 * config reload, HandleReloadConfigRequest, hands over a new one, which the
 * registry keeps to the end: servables borrow model names from it; models a
 * reload drops are flagged removed, not freed, and one named again gets its
 * record back), each with
 * a list of version records that only grows (a version that was unloaded
 * stays, in state END, as TF Serving's GetModelStatus keeps reporting it).
 * A poll pass per model: scan BASE for version folders, apply the version
 * policy, load the wanted versions not loaded yet (through the caller's
 * loader, without the lock held), then retire the loaded versions the policy
 * no longer wants (UNLOADING: new requests cannot get them), and finally
 * unload the retired versions no request holds any more (END). New versions
 * load before old ones retire, so a model never goes unavailable during a
 * roll-over (TF's availability-preserving policy); with the
 * resource-preserving transition the order turns round: a pass with
 * something to load retires and unloads first, and when a retired version
 * is still held it loads nothing and marks the model load_pending, which
 * the poll thread takes up as soon as the last holder releases. A scan that finds nothing
 * the policy wants (an emptied or unreadable folder) retires nothing: a
 * mistake on the file system does not take a model down. A version whose
 * load failed stays END with the error, and is tried again when its model
 * file changes (size or modification time), and, with load retries set
 * (coffer_serve_registry_set_load_retries, TF's max_num_load_retries), up
 * to that many times an interval apart with the file unchanged; a change
 * starts the count again.
 *
 * The config file watch (--model_config_file_poll_wait_seconds) is a thread
 * of its own that reads the file every interval and, when its bytes changed,
 * hands the parsed config to the same reload; it shares the stop flag and
 * condition variable with the poll thread.
 *
 * Requests take a reference (acquire) on the version TF's rules pick and
 * drop it when done (release); both take the registry mutex for a few
 * instructions. The polling thread sleeps on a condition variable that a
 * release of the last reference to a retired version signals, so a retired
 * model's memory goes back as soon as it is idle.
 *
 * Invariants: I1 a version's servable is valid from AVAILABLE until its
 * unload, and unload runs only when refs == 0 (or at registry_free). I2 only
 * the poll (one at a time: poll_mu) adds versions or changes a state; the
 * version records never move (the list holds pointers). I3 m->status mirrors
 * the version records (rebuilt under the lock after every change).
 * Trusts: the loader for the servables; the file system for names only.
 * Threading: acquire, release, status from any thread; poll from one thread
 * at a time (poll_mu).
 */
#include "serve_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct version {
    struct coffer_serve_servable sv; /* first: release finds its record from it */
    struct reg_model *model;
    int64_t version;
    enum coffer_serve_model_state state;
    enum coffer_serve_code error_code;
    char *error_message;  /* NULL when none */
    size_t refs;          /* under the registry lock */
    bool loaded;          /* sv is the loader's, to be unloaded */
    bool failed;          /* END after a failed load */
    struct stat fail_stat; /* the model file when the load failed */
    bool fail_stat_ok;
    uint64_t fail_ns;     /* when it failed (coffer_now_ns) */
    unsigned retries;     /* loads of the unchanged file after its first failure */
};

struct reg_model {
    const struct coffer_serve_model_config *cfg; /* swapped by a reload, under the lock and the poll */
    bool removed;         /* a reload dropped it: requests cannot find it; its versions retire */
    struct version **v; /* oldest record first */
    size_t n, cap;
    struct coffer_serve_version_status *status; /* mirror of v, newest version first */
    bool scan_failed;     /* the last scan failed (logged once until it works again) */
    bool load_pending;    /* resource-preserving: loads wait for retired versions to go (under the poll) */
};

struct coffer_serve_registry {
    struct coffer_serve_loader loader;
    struct reg_model **models; /* records never move nor go (versions point to theirs) */
    size_t count, cap;
    struct coffer_serve_config *owned; /* configs reloads handed over, kept until free
                                        * (servables borrow their model names) */
    size_t n_owned;
    pthread_mutex_t mu;      /* versions' states, refs, status mirrors */
    pthread_mutex_t poll_mu; /* one poll at a time */
    pthread_cond_t cv;       /* the poll thread waits here */
    pthread_t thread;
    bool thread_started;
    bool stop;
    bool wake;               /* an idle retired version, or a stop */
    uint32_t interval_ms;    /* 0: no scans, only wake-ups */
    bool resource_preserving;
    unsigned max_retries;    /* of a failed load with its file unchanged (0: none) */
    uint64_t retry_ns;       /* at least this long after the failure */
    /* the config file watch (coffer_serve_registry_watch_config) */
    char *cfg_path;
    uint8_t *cfg_seen; /* the file's bytes as last read (applied or not) */
    size_t cfg_seen_n;
    uint32_t cfg_interval_ms;
    pthread_t cfg_thread;
    bool cfg_started;
    bool cfg_read_failed; /* the last read failed (logged once until it works again) */
};

static int cmp_status_desc(const void *a, const void *b)
{
    int64_t x = ((const struct coffer_serve_version_status *)a)->version;
    int64_t y = ((const struct coffer_serve_version_status *)b)->version;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Under the lock. The status array has room for every record (grown with v). */
static void mirror(struct reg_model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct version *v = m->v[i];
        m->status[i] = (struct coffer_serve_version_status){.version = v->version, .state = v->state,
                                                            .error_code = v->error_code,
                                                            .error_message = v->error_message};
    }
    if (m->n > 1)
        qsort(m->status, m->n, sizeof(*m->status), cmp_status_desc);
}

static struct reg_model *find_model(struct coffer_serve_registry *r, const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < r->count; i++)
        if (!r->models[i]->removed && strcmp(r->models[i]->cfg->name, name) == 0)
            return r->models[i];
    return NULL;
}

static struct version *find_version(struct reg_model *m, int64_t version)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i]->version == version)
            return m->v[i];
    return NULL;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_registry_new(const struct coffer_serve_config *cfg, const struct coffer_serve_loader *loader,
                                          struct coffer_serve_registry **out)
{
    *out = NULL;
    if (cfg == NULL || loader == NULL || loader->load == NULL || loader->unload == NULL || cfg->model_count == 0)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "a registry needs a loader and at least one model");
    for (size_t i = 0; i < cfg->model_count; i++)
        for (size_t k = 0; k < i; k++)
            if (strcmp(cfg->models[i].name, cfg->models[k].name) == 0)
                return COFFER_FAIL(COFFER_E_INVALID_ARG, "model %s is configured twice", cfg->models[i].name);
    struct coffer_serve_registry *r = coffer_calloc(1, sizeof(*r));
    if (r == NULL)
        return COFFER_E_NOMEM;
    r->models = coffer_calloc(cfg->model_count, sizeof(*r->models));
    if (r->models == NULL) {
        coffer_free(r);
        return COFFER_E_NOMEM;
    }
    r->cap = cfg->model_count;
    for (; r->count < cfg->model_count; r->count++) {
        if ((r->models[r->count] = coffer_calloc(1, sizeof(**r->models))) == NULL) {
            for (size_t i = 0; i < r->count; i++)
                coffer_free(r->models[i]);
            coffer_free(r->models);
            coffer_free(r);
            return COFFER_E_NOMEM;
        }
        r->models[r->count]->cfg = &cfg->models[r->count];
    }
    r->loader = *loader;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->poll_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = r;
    return COFFER_OK;
}

/* Add a record for version (under the poll, not the lock: takes it). */
static enum coffer_err add_version(struct coffer_serve_registry *r, struct reg_model *m, int64_t version,
                                   struct version **out)
{
    struct version *v = coffer_calloc(1, sizeof(*v));
    if (v == NULL)
        return COFFER_E_NOMEM;
    v->model = m;
    v->version = version;
    v->state = COFFER_SERVE_STATE_START;
    v->sv.model = m->cfg->name;
    v->sv.version = version;
    pthread_mutex_lock(&r->mu);
    enum coffer_err e = COFFER_OK;
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 4;
        struct version **nv = coffer_realloc(m->v, nc * sizeof(*nv));
        struct coffer_serve_version_status *ns = nv ? coffer_realloc(m->status, nc * sizeof(*ns)) : NULL;
        if (nv != NULL)
            m->v = nv;
        if (ns != NULL) {
            m->status = ns;
            m->cap = nc;
        } else {
            e = COFFER_E_NOMEM;
        }
    }
    if (e == COFFER_OK) {
        m->v[m->n++] = v;
        mirror(m);
    }
    pthread_mutex_unlock(&r->mu);
    if (e != COFFER_OK) {
        coffer_free(v);
        return e;
    }
    *out = v;
    return COFFER_OK;
}

static enum coffer_serve_code code_of(enum coffer_err e)
{
    switch (e) {
    case COFFER_E_NOT_FOUND: return COFFER_SERVE_NOT_FOUND;
    case COFFER_E_NOMEM: return COFFER_SERVE_RESOURCE_EXHAUSTED;
    case COFFER_E_UNSUPPORTED: return COFFER_SERVE_UNIMPLEMENTED;
    case COFFER_E_PERM: return COFFER_SERVE_PERMISSION_DENIED;
    case COFFER_E_AUTH:
    case COFFER_E_BAD_PATH:
    case COFFER_E_CORRUPTED: return COFFER_SERVE_DATA_LOSS;
    case COFFER_E_MALFORMED:
    case COFFER_E_TRUNCATED:
    case COFFER_E_TRAILING:
    case COFFER_E_SHAPE:
    case COFFER_E_BAD_HEADER:
    case COFFER_E_BAD_VERSION: return COFFER_SERVE_INVALID_ARGUMENT;
    default: return COFFER_SERVE_INTERNAL;
    }
}

static void file_path(const struct reg_model *m, int64_t version, char *path, size_t size)
{
    snprintf(path, size, "%s/%lld/%s", m->cfg->base_path, (long long)version, COFFER_SERVE_MODEL_FILE);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ino == b->st_ino;
}

/* Load one version (record v, state START or END). Under poll_mu only. */
static enum coffer_err load_version(struct coffer_serve_registry *r, struct version *v)
{
    struct reg_model *m = v->model;
    char path[4096];
    file_path(m, v->version, path, sizeof(path));
    if (v->failed) {
        /* tried before: a retry of the same file, or a new file (a new count) */
        struct stat sb;
        bool now_ok = stat(path, &sb) == 0;
        if (now_ok == v->fail_stat_ok && (!now_ok || same_file(&sb, &v->fail_stat))) {
            v->retries++;
            coffer_info("serve: model %s version %lld: load retry %u of %u", m->cfg->name, (long long)v->version,
                        v->retries, r->max_retries);
        } else {
            v->retries = 0;
        }
    }
    pthread_mutex_lock(&r->mu);
    v->state = COFFER_SERVE_STATE_LOADING;
    v->error_code = COFFER_SERVE_OK;
    v->failed = false;
    char *old_msg = v->error_message;
    v->error_message = NULL;
    mirror(m);
    pthread_mutex_unlock(&r->mu);
    coffer_free(old_msg);
    struct coffer_serve_servable sv = {.model = m->cfg->name, .version = v->version};
    coffer_err_clear();
    enum coffer_err e = r->loader.load(r->loader.arg, m->cfg, v->version, path, &sv);
    if (e == COFFER_OK) {
        sv.model = m->cfg->name;
        sv.version = v->version;
        pthread_mutex_lock(&r->mu);
        v->sv = sv;
        v->loaded = true;
        v->state = COFFER_SERVE_STATE_AVAILABLE;
        mirror(m);
        pthread_mutex_unlock(&r->mu);
        coffer_info("serve: model %s version %lld AVAILABLE", m->cfg->name, (long long)v->version);
        return COFFER_OK;
    }
    char msg[COFFER_SERVE_MSG_SIZE];
    coffer_err_format(e, msg, sizeof(msg));
    char *dup = coffer_strdup(msg);
    struct stat sb;
    bool stat_ok = stat(path, &sb) == 0;
    pthread_mutex_lock(&r->mu);
    v->state = COFFER_SERVE_STATE_END;
    v->error_code = code_of(e);
    v->error_message = dup;
    v->failed = true;
    v->fail_ns = coffer_now_ns();
    v->fail_stat_ok = stat_ok;
    if (stat_ok)
        v->fail_stat = sb;
    mirror(m);
    pthread_mutex_unlock(&r->mu);
    coffer_warn("serve: model %s version %lld failed to load: %s", m->cfg->name, (long long)v->version, msg);
    return e;
}

static void unload_version(struct coffer_serve_registry *r, struct version *v)
{
    r->loader.unload(r->loader.arg, &v->sv);
    pthread_mutex_lock(&r->mu);
    v->loaded = false;
    v->state = COFFER_SERVE_STATE_END;
    v->error_code = COFFER_SERVE_OK;
    mirror(v->model);
    pthread_mutex_unlock(&r->mu);
    coffer_info("serve: model %s version %lld unloaded", v->model->cfg->name, (long long)v->version);
}

/* Whether the poll loads version of m now: not there yet, or ended
 * (unloaded, or failed with a file that changed since, or due a retry).
 * Under the poll. */
static bool to_load(const struct coffer_serve_registry *r, struct reg_model *m, int64_t version)
{
    struct version *v = find_version(m, version);
    if (v == NULL)
        return true;
    if (v->state != COFFER_SERVE_STATE_END)
        return false; /* loaded, or retired but still in use */
    if (!v->failed)
        return true;
    char path[4096];
    struct stat sb;
    file_path(m, v->version, path, sizeof(path));
    bool now_ok = stat(path, &sb) == 0;
    if (now_ok != v->fail_stat_ok || (now_ok && !same_file(&sb, &v->fail_stat)))
        return true;
    /* the file that failed: again only as a retry */
    return v->retries < r->max_retries && coffer_now_ns() - v->fail_ns >= r->retry_ns;
}

/* Retire m's AVAILABLE versions that want[] leaves out: new requests
 * cannot get them. Under the poll; takes the lock. */
static void retire_unwanted(struct coffer_serve_registry *r, struct reg_model *m, const int64_t *want, size_t n_want)
{
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < m->n; i++) {
        struct version *v = m->v[i];
        bool wanted = false;
        for (size_t k = 0; k < n_want && !wanted; k++)
            wanted = want[k] == v->version;
        if (!wanted && v->state == COFFER_SERVE_STATE_AVAILABLE) {
            v->state = COFFER_SERVE_STATE_UNLOADING;
            coffer_info("serve: model %s version %lld retired (UNLOADING once idle)", m->cfg->name,
                        (long long)v->version);
        }
    }
    mirror(m);
    pthread_mutex_unlock(&r->mu);
}

/* Unload m's retired versions nobody holds; whether some are still held.
 * Under the poll (a retired version gains no holder: acquire skips it). */
static bool unload_idle(struct coffer_serve_registry *r, struct reg_model *m)
{
    bool held = false;
    for (size_t k = 0;; k++) {
        pthread_mutex_lock(&r->mu);
        struct version *v = k < m->n ? m->v[k] : NULL;
        bool retired = v != NULL && v->state == COFFER_SERVE_STATE_UNLOADING;
        bool idle = retired && v->refs == 0;
        pthread_mutex_unlock(&r->mu);
        if (v == NULL)
            break;
        if (idle)
            unload_version(r, v);
        held |= retired && !idle;
    }
    return held;
}

/* One model's pass. strict: the start-up pass, where no version and any
 * load failure are errors. */
static enum coffer_err poll_model(struct coffer_serve_registry *r, struct reg_model *m, bool strict)
{
    int64_t *avail = NULL, *want = NULL;
    size_t n_avail = 0, n_want = 0;
    enum coffer_err e = coffer_serve_model_versions_scan(m->cfg->base_path, &avail, &n_avail);
    if (e == COFFER_OK)
        e = coffer_serve_version_policy_apply(&m->cfg->policy, avail, n_avail, &want, &n_want);
    coffer_free(avail);
    if (e != COFFER_OK || n_want == 0) {
        if (e == COFFER_OK)
            e = COFFER_FAIL(COFFER_E_NOT_FOUND, "no version of model %s under %s that its version policy serves "
                            "(BASE/VERSION/%s)", m->cfg->name, m->cfg->base_path, COFFER_SERVE_MODEL_FILE);
        if (!m->scan_failed && !strict) {
            char msg[COFFER_SERVE_MSG_SIZE];
            coffer_warn("serve: %s; keeping what is loaded", coffer_err_format(e, msg, sizeof(msg)));
        }
        m->scan_failed = true;
        m->load_pending = false;
        coffer_free(want);
        return e;
    }
    m->scan_failed = false;
    size_t n_load = 0;
    for (size_t i = 0; i < n_want; i++)
        n_load += to_load(r, m, want[i]);
    if (r->resource_preserving && n_load > 0) {
        /* the versions going away first, so that old and new never hold
         * memory at once; the new ones once nothing retired is held */
        retire_unwanted(r, m, want, n_want);
        if (unload_idle(r, m)) {
            if (!m->load_pending)
                coffer_info("serve: model %s: %zu version%s to load once the retired ones are idle "
                            "(resource-preserving)", m->cfg->name, n_load, n_load == 1 ? "" : "s");
            m->load_pending = true;
            coffer_free(want);
            return COFFER_OK;
        }
    }
    m->load_pending = false;
    enum coffer_err first = COFFER_OK;
    bool any_available = false;
    /* load what the policy wants, oldest first (so the newest is the last log line) */
    for (size_t i = n_want; i-- > 0;) {
        if (!to_load(r, m, want[i]))
            continue;
        struct version *v = find_version(m, want[i]);
        if (v == NULL && (e = add_version(r, m, want[i], &v)) != COFFER_OK) {
            first = first ? first : e;
            continue;
        }
        if ((e = load_version(r, v)) != COFFER_OK)
            first = first ? first : e;
    }
    /* retire the loaded versions the policy no longer wants, once a wanted one serves */
    for (size_t i = 0; i < n_want; i++) {
        struct version *v = find_version(m, want[i]);
        if (v != NULL && v->state == COFFER_SERVE_STATE_AVAILABLE)
            any_available = true;
    }
    if (any_available)
        retire_unwanted(r, m, want, n_want);
    coffer_free(want);
    return first;
}

/* Unload the retired versions nobody holds. Under the poll. */
static void free_idle(struct coffer_serve_registry *r)
{
    for (size_t i = 0; i < r->count; i++)
        (void)unload_idle(r, r->models[i]);
}

/* see coffer/serve.h */
void coffer_serve_registry_set_transition(struct coffer_serve_registry *r, enum coffer_serve_version_transition t)
{
    r->resource_preserving = t == COFFER_SERVE_RESOURCE_PRESERVING;
}

/* see coffer/serve.h */
void coffer_serve_registry_set_load_retries(struct coffer_serve_registry *r, unsigned max_retries,
                                            uint64_t interval_ns)
{
    r->max_retries = max_retries;
    r->retry_ns = interval_ns;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_registry_load(struct coffer_serve_registry *r)
{
    pthread_mutex_lock(&r->poll_mu);
    enum coffer_err first = COFFER_OK;
    for (size_t i = 0; i < r->count; i++) {
        enum coffer_err e = poll_model(r, r->models[i], true);
        if (e != COFFER_OK && first == COFFER_OK) {
            first = e;
            coffer_err_context("model %s", r->models[i]->cfg->name);
        }
    }
    pthread_mutex_unlock(&r->poll_mu);
    return first;
}

/* see coffer/serve.h */
void coffer_serve_registry_poll(struct coffer_serve_registry *r)
{
    pthread_mutex_lock(&r->poll_mu);
    for (size_t i = 0; i < r->count; i++)
        if (!r->models[i]->removed)
            (void)poll_model(r, r->models[i], false);
    free_idle(r);
    pthread_mutex_unlock(&r->poll_mu);
    if (r->loader.changed != NULL)
        r->loader.changed(r->loader.arg);
}

/* Under the lock: wait on cv for at most wait_ns (or a signal). */
static void timed_wait(struct coffer_serve_registry *r, uint64_t wait_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + wait_ns % 1000000000u;
    ts.tv_sec += (time_t)(wait_ns / 1000000000u + ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

static void *poll_thread(void *arg)
{
    struct coffer_serve_registry *r = arg;
    bool scans = r->interval_ms > 0;
    uint64_t next = coffer_now_ns() + (uint64_t)r->interval_ms * 1000000u;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        uint64_t now = coffer_now_ns();
        if (!r->wake && !scans) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        if (!r->wake && now < next) {
            timed_wait(r, next - now);
            continue;
        }
        bool full = scans && now >= next;
        r->wake = false;
        pthread_mutex_unlock(&r->mu);
        if (full) {
            coffer_serve_registry_poll(r);
            next = coffer_now_ns() + (uint64_t)r->interval_ms * 1000000u;
        } else {
            /* a retired version went idle: unload it, and load what
             * waited for that (resource-preserving) */
            pthread_mutex_lock(&r->poll_mu);
            free_idle(r);
            for (size_t i = 0; i < r->count; i++)
                if (!r->models[i]->removed && r->models[i]->load_pending)
                    (void)poll_model(r, r->models[i], false);
            pthread_mutex_unlock(&r->poll_mu);
            if (r->loader.changed != NULL)
                r->loader.changed(r->loader.arg);
        }
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_registry_start_polling(struct coffer_serve_registry *r, uint32_t interval_ms)
{
    if (r->thread_started)
        return COFFER_FAIL(COFFER_E_STATE, "the registry already polls");
    r->interval_ms = interval_ms;
    if (pthread_create(&r->thread, NULL, poll_thread, r) != 0)
        return COFFER_FAIL(COFFER_E_NOMEM, "cannot start the model poll thread");
    r->thread_started = true;
    return COFFER_OK;
}

/* One look at the watched config file: when its bytes changed since the
 * last look, parse them and reload; anything wrong is logged (once per
 * content, or once until the file reads again) and changes nothing. */
static void config_look(struct coffer_serve_registry *r)
{
    uint8_t *text;
    size_t n;
    char msg[COFFER_SERVE_MSG_SIZE];
    enum coffer_err e = coffer_file_read_all(r->cfg_path, COFFER_SERVE_CONFIG_MAX, &text, &n);
    if (e != COFFER_OK) {
        if (!r->cfg_read_failed) {
            coffer_err_format(e, msg, sizeof(msg));
            coffer_error("serve: model config file %s: %s; the served models stay as they are", r->cfg_path, msg);
        }
        r->cfg_read_failed = true;
        return;
    }
    r->cfg_read_failed = false;
    if (n == r->cfg_seen_n && (n == 0 || memcmp(text, r->cfg_seen, n) == 0)) {
        coffer_free(text);
        return;
    }
    coffer_free(r->cfg_seen);
    r->cfg_seen = text;
    r->cfg_seen_n = n;
    struct coffer_serve_config cfg;
    if ((e = coffer_serve_config_parse(text, n, &cfg)) != COFFER_OK) {
        coffer_err_format(e, msg, sizeof(msg));
        coffer_error("serve: model config file %s changed but does not parse: %s; the served models stay as they are",
                     r->cfg_path, msg);
        return;
    }
    if (cfg.model_count == 0) {
        /* TF takes no action for an empty config either: a truncated file
         * must not unload everything */
        coffer_error("serve: model config file %s changed but configures no model; the served models stay as they are",
                     r->cfg_path);
        coffer_serve_config_free(&cfg);
        return;
    }
    coffer_info("serve: model config file %s changed: reloading %zu model%s", r->cfg_path, cfg.model_count,
                cfg.model_count == 1 ? "" : "s");
    struct coffer_serve_status st;
    if (coffer_serve_registry_reload(r, &cfg, &st) != COFFER_OK) /* takes cfg */
        coffer_error("serve: model config file %s: %s", r->cfg_path, st.message);
}

static void *config_thread(void *arg)
{
    struct coffer_serve_registry *r = arg;
    uint64_t next = coffer_now_ns() + (uint64_t)r->cfg_interval_ms * 1000000u;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        uint64_t now = coffer_now_ns();
        if (now < next) {
            timed_wait(r, next - now);
            continue;
        }
        pthread_mutex_unlock(&r->mu);
        config_look(r);
        next = coffer_now_ns() + (uint64_t)r->cfg_interval_ms * 1000000u;
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_registry_watch_config(struct coffer_serve_registry *r, const char *path, const void *seen,
                                                   size_t seen_size, uint32_t interval_ms)
{
    if (r->cfg_started)
        return COFFER_FAIL(COFFER_E_STATE, "the registry already watches a config file");
    if ((r->cfg_path = coffer_strdup(path)) == NULL ||
        (seen_size > 0 && (r->cfg_seen = coffer_malloc(seen_size)) == NULL))
        return COFFER_E_NOMEM;
    if (seen_size > 0)
        memcpy(r->cfg_seen, seen, seen_size);
    r->cfg_seen_n = seen_size;
    r->cfg_interval_ms = interval_ms ? interval_ms : 1;
    if (pthread_create(&r->cfg_thread, NULL, config_thread, r) != 0)
        return COFFER_FAIL(COFFER_E_NOMEM, "cannot start the config file watch thread");
    r->cfg_started = true;
    return COFFER_OK;
}

/* see coffer/serve.h */
void coffer_serve_registry_free(struct coffer_serve_registry *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->thread_started)
        pthread_join(r->thread, NULL);
    if (r->cfg_started)
        pthread_join(r->cfg_thread, NULL);
    coffer_free(r->cfg_path);
    coffer_free(r->cfg_seen);
    for (size_t i = 0; i < r->count; i++) {
        struct reg_model *m = r->models[i];
        for (size_t k = 0; k < m->n; k++) {
            struct version *v = m->v[k];
            if (v->loaded) {
                /* the unload may finish requests that still hold v (queued
                 * batches): they release into a registry that still exists */
                r->loader.unload(r->loader.arg, &v->sv);
                v->loaded = false;
            }
            if (COFFER_NEVER(v->refs != 0))
                coffer_warn("serve: model %s version %lld freed with %zu references", m->cfg->name,
                            (long long)v->version, v->refs);
        }
        for (size_t k = 0; k < m->n; k++) {
            coffer_free(m->v[k]->error_message);
            coffer_free(m->v[k]);
        }
        coffer_free(m->v);
        coffer_free(m->status);
        coffer_free(m);
    }
    coffer_free(r->models);
    for (size_t i = 0; i < r->n_owned; i++)
        coffer_serve_config_free(&r->owned[i]);
    coffer_free(r->owned);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->poll_mu);
    pthread_mutex_destroy(&r->mu);
    coffer_free(r);
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_registry_acquire(struct coffer_serve_registry *r, const char *name, bool has_version,
                                              int64_t version, const char *label,
                                              const struct coffer_serve_servable **out, struct coffer_serve_status *st)
{
    *out = NULL;
    pthread_mutex_lock(&r->mu);
    struct reg_model *m = find_model(r, name);
    int64_t v = 0;
    enum coffer_err e = coffer_serve_version_resolve(name != NULL ? name : "", m ? m->status : NULL, m ? m->n : 0,
                                                     m ? m->cfg->labels : NULL, m ? m->cfg->label_count : 0,
                                                     has_version, version, label, &v, st);
    if (e == COFFER_OK) {
        struct version *rec = find_version(m, v);
        if (COFFER_ALWAYS(rec != NULL && rec->state == COFFER_SERVE_STATE_AVAILABLE)) {
            rec->refs++;
            *out = &rec->sv;
        } else {
            e = coffer_serve_status_set(st, COFFER_SERVE_INTERNAL, "model %s version %lld vanished", name,
                                        (long long)v);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return e;
}

/* see coffer/serve.h */
void coffer_serve_registry_release(struct coffer_serve_registry *r, const struct coffer_serve_servable *sv)
{
    if (sv == NULL)
        return;
    struct version *v = (struct version *)(uintptr_t)sv; /* sv is the record's first member */
    pthread_mutex_lock(&r->mu);
    if (COFFER_ALWAYS(v->refs > 0))
        v->refs--;
    if (v->refs == 0 && v->state == COFFER_SERVE_STATE_UNLOADING) {
        r->wake = true;
        /* broadcast: the config file watch may wait on cv too, and must
         * not take the poll thread's wake-up */
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_registry_status(struct coffer_serve_registry *r, const char *name,
                                             struct coffer_serve_version_status **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    pthread_mutex_lock(&r->mu);
    struct reg_model *m = find_model(r, name);
    enum coffer_err e = COFFER_OK;
    if (m != NULL && m->n > 0) {
        /* one block: the array, then the messages */
        size_t bytes = m->n * sizeof(**out);
        for (size_t i = 0; i < m->n; i++)
            bytes += m->status[i].error_message ? strlen(m->status[i].error_message) + 1 : 0;
        struct coffer_serve_version_status *v = coffer_malloc(bytes);
        if (v == NULL) {
            e = COFFER_E_NOMEM;
        } else {
            char *p = (char *)(v + m->n);
            for (size_t i = 0; i < m->n; i++) {
                v[i] = m->status[i];
                if (v[i].error_message != NULL) {
                    size_t n = strlen(v[i].error_message) + 1;
                    memcpy(p, v[i].error_message, n);
                    v[i].error_message = p;
                    p += n;
                }
            }
            *out = v;
            *count = m->n;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return e;
}

/* see coffer/serve.h */
size_t coffer_serve_registry_model_count(struct coffer_serve_registry *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->count;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* see coffer/serve.h */
const struct coffer_serve_model_config *coffer_serve_registry_model(struct coffer_serve_registry *r, size_t i)
{
    pthread_mutex_lock(&r->mu);
    const struct coffer_serve_model_config *c = i < r->count && !r->models[i]->removed ? r->models[i]->cfg : NULL;
    pthread_mutex_unlock(&r->mu);
    return c;
}

/* The record of a model named in a reload: its own (even if removed
 * earlier) or a new one. Under the poll. */
static struct reg_model *reload_model(struct coffer_serve_registry *r, const struct coffer_serve_model_config *cfg)
{
    pthread_mutex_lock(&r->mu);
    struct reg_model *m = NULL;
    for (size_t i = 0; i < r->count && m == NULL; i++)
        if (strcmp(r->models[i]->cfg->name, cfg->name) == 0)
            m = r->models[i];
    if (m == NULL && r->count == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 4;
        struct reg_model **g = coffer_realloc(r->models, nc * sizeof(*g));
        if (g != NULL) {
            r->models = g;
            r->cap = nc;
        }
    }
    if (m == NULL && r->count < r->cap && (m = coffer_calloc(1, sizeof(*m))) != NULL)
        r->models[r->count++] = m;
    if (m != NULL) {
        m->cfg = cfg;
        m->removed = false;
        m->scan_failed = false;
    }
    pthread_mutex_unlock(&r->mu);
    return m;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_registry_reload(struct coffer_serve_registry *r, struct coffer_serve_config *cfg,
                                            struct coffer_serve_status *st)
{
    coffer_serve_status_clear(st);
    for (size_t i = 0; i < cfg->model_count; i++)
        for (size_t k = 0; k < i; k++)
            if (strcmp(cfg->models[i].name, cfg->models[k].name) == 0) {
                enum coffer_err e = coffer_serve_status_set(st, COFFER_SERVE_INVALID_ARGUMENT,
                                                            "Illegal to list model %s multiple times in config list",
                                                            cfg->models[i].name);
                coffer_serve_config_free(cfg);
                return e;
            }
    pthread_mutex_lock(&r->poll_mu);
    struct coffer_serve_config *owned = coffer_realloc(r->owned, (r->n_owned + 1) * sizeof(*owned));
    if (owned == NULL) {
        pthread_mutex_unlock(&r->poll_mu);
        coffer_serve_config_free(cfg);
        return coffer_serve__nomem(st);
    }
    r->owned = owned;
    struct coffer_serve_config *mine = &r->owned[r->n_owned++];
    *mine = *cfg; /* taken over: kept until registry_free */
    memset(cfg, 0, sizeof(*cfg));
    /* the models the new config leaves out go: not found from now on,
     * their versions unloaded once idle */
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->count; i++) {
        struct reg_model *m = r->models[i];
        bool kept = false;
        for (size_t k = 0; k < mine->model_count && !kept; k++)
            kept = strcmp(m->cfg->name, mine->models[k].name) == 0;
        if (kept || m->removed)
            continue;
        m->removed = true;
        m->load_pending = false;
        for (size_t k = 0; k < m->n; k++)
            if (m->v[k]->state == COFFER_SERVE_STATE_AVAILABLE)
                m->v[k]->state = COFFER_SERVE_STATE_UNLOADING;
        mirror(m);
        coffer_info("serve: model %s removed by a config reload", m->cfg->name);
    }
    pthread_mutex_unlock(&r->mu);
    /* the others take their new config, and load what their policy wants
     * now (TF waits for them too) */
    enum coffer_err first = COFFER_OK;
    for (size_t i = 0; i < mine->model_count; i++) {
        struct reg_model *m = reload_model(r, &mine->models[i]);
        enum coffer_err e = m != NULL ? poll_model(r, m, true) : COFFER_E_NOMEM;
        if (e != COFFER_OK && first == COFFER_OK) {
            char msg[COFFER_SERVE_MSG_SIZE];
            coffer_err_format(e, msg, sizeof(msg));
            first = coffer_serve_status_set(st, code_of(e), "model %s: %s", mine->models[i].name, msg);
        }
    }
    free_idle(r);
    pthread_mutex_unlock(&r->poll_mu);
    if (r->loader.changed != NULL)
        r->loader.changed(r->loader.arg);
    coffer_info("serve: config reloaded: %zu model%s%s", mine->model_count, mine->model_count == 1 ? "" : "s",
                first == COFFER_OK ? "" : " (some failed to load)");
    return first;
}
