/*
 * test_registry.c — the model registry (versions, policies, labels,
 * references, hot reload with unload when idle, failed loads) with a loader
 * that reads a small text file instead of a model; and the batching
 * scheduler (batches by size and timeout, bounded queue, drain on free).
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coffer/serve.h"

/* ---- a fake loader: the "model" is a file holding "ok" (anything else fails) */

struct fake {
    int loads, unloads;
    int attempts;  /* load calls, failed or not */
    int fail_next; /* that many loads fail as if the file could not be read (a transient error) */
    int live;
    int max_live; /* the most versions loaded at once */
    int changes; /* the changed hook's calls */
};

static const struct coffer_serve_signature fake_sig = {.key = COFFER_SERVE_DEFAULT_SIGNATURE};

static enum coffer_err fake_load(void *arg, const struct coffer_serve_model_config *model, int64_t version,
                                 const char *path, struct coffer_serve_servable *out)
{
    (void)model;
    (void)version;
    struct fake *f = arg;
    f->attempts++;
    if (f->fail_next > 0) {
        f->fail_next--;
        return COFFER_FAIL(COFFER_E_IO, "transient: %s", path);
    }
    size_t n;
    uint8_t *d;
    enum coffer_err r = coffer_file_read_all(path, 64, &d, &n);
    if (r != COFFER_OK)
        return r;
    bool good = n == 2 && memcmp(d, "ok", 2) == 0;
    coffer_free(d);
    if (!good)
        return COFFER_FAIL(COFFER_E_MALFORMED, "not a model: %s", path);
    f->loads++;
    if (++f->live > f->max_live)
        f->max_live = f->live;
    out->sigs = &fake_sig;
    out->sig_count = 1;
    out->handle = f;
    return COFFER_OK;
}

static void fake_changed(void *arg)
{
    struct fake *f = arg;
    f->changes++;
}

static void fake_unload(void *arg, struct coffer_serve_servable *sv)
{
    struct fake *f = arg;
    assert_ptr_equal(sv->handle, f);
    f->unloads++;
    f->live--;
}

static void put_version(const char *base, int64_t v, const char *content)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%lld", base, (long long)v);
    mkdir(base, 0700);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/%lld/%s", base, (long long)v, COFFER_SERVE_MODEL_FILE);
    assert_int_equal(coffer_file_write_atomic(p, content, strlen(content), 0600), COFFER_OK);
}

/* A test registry's end: every version unloaded with it, its folder gone */
static void one_model_done(struct coffer_serve_registry *r, struct coffer_serve_config *cfg, const struct fake *f,
                           char *dir)
{
    coffer_serve_registry_free(r);
    assert_int_equal(f->live, 0);
    coffer_serve_config_free(cfg);
    tu_rmtree(dir);
    free(dir);
}

/* out = dir/name (512 bytes), a model folder holding a good version */
static void model_at(char *out, const char *dir, const char *name, int64_t version)
{
    snprintf(out, 512, "%s/%s", dir, name);
    put_version(out, version, "ok");
}

static enum coffer_serve_model_state state_of(struct coffer_serve_registry *r, const char *name, int64_t v)
{
    struct coffer_serve_version_status *s;
    size_t n;
    assert_int_equal(coffer_serve_registry_status(r, name, &s, &n), COFFER_OK);
    enum coffer_serve_model_state st = COFFER_SERVE_STATE_UNKNOWN;
    for (size_t i = 0; i < n; i++)
        if (s[i].version == v)
            st = s[i].state;
    coffer_free(s);
    return st;
}

static int64_t latest(struct coffer_serve_registry *r, const char *name)
{
    const struct coffer_serve_servable *sv;
    struct coffer_serve_status st;
    if (coffer_serve_registry_acquire(r, name, false, 0, NULL, &sv, &st) != COFFER_OK)
        return -1;
    int64_t v = sv->version;
    coffer_serve_registry_release(r, sv);
    return v;
}

/* A registry over the config text with the fake loader f, loaded. */
static struct coffer_serve_registry *fake_registry(const char *text, struct coffer_serve_config *cfg, struct fake *f)
{
    assert_int_equal(coffer_serve_config_parse(text, strlen(text), cfg), COFFER_OK);
    struct coffer_serve_loader ld = {.load = fake_load, .unload = fake_unload, .changed = fake_changed, .arg = f};
    struct coffer_serve_registry *r;
    assert_int_equal(coffer_serve_registry_new(cfg, &ld, &r), COFFER_OK);
    assert_int_equal(coffer_serve_registry_load(r), COFFER_OK);
    return r;
}

static void test_registry_models_and_labels(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char a[512], b[512];
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", dir);
    put_version(a, 1, "ok");
    put_version(a, 2, "ok");
    put_version(a, 3, "ok");
    put_version(b, 7, "ok");
    char text[2048];
    snprintf(text, sizeof(text),
             "model_config_list {\n"
             " config { name: 'a' base_path: '%s' model_platform: 'onnx'\n"
             "   model_version_policy { specific { versions: 1 versions: 2 } }\n"
             "   version_labels { key: 'stable' value: 1 } version_labels { key: 'canary' value: 2 }\n"
             "   version_labels { key: 'gone' value: 3 } }\n"
             " config { name: 'b' base_path: '%s' }\n"
             "}\n",
             a, b);
    struct coffer_serve_config cfg;
    assert_int_equal(coffer_serve_config_parse(text, strlen(text), &cfg), COFFER_OK);
    struct fake f = {0};
    struct coffer_serve_loader ld = {.load = fake_load, .unload = fake_unload, .arg = &f};
    struct coffer_serve_registry *r;
    assert_int_equal(coffer_serve_registry_new(&cfg, &ld, &r), COFFER_OK);
    assert_int_equal(coffer_serve_registry_load(r), COFFER_OK);
    assert_int_equal(f.loads, 3); /* a/1, a/2, b/7 */
    assert_int_equal(latest(r, "a"), 2);
    assert_int_equal(latest(r, "b"), 7);

    const struct coffer_serve_servable *sv;
    struct coffer_serve_status st;
    assert_int_equal(coffer_serve_registry_acquire(r, "a", false, 0, "stable", &sv, &st), COFFER_OK);
    assert_int_equal(sv->version, 1);
    assert_string_equal(sv->model, "a");
    assert_ptr_equal(sv->sigs, &fake_sig);
    coffer_serve_registry_release(r, sv);
    assert_int_equal(coffer_serve_registry_acquire(r, "a", true, 2, NULL, &sv, &st), COFFER_OK);
    coffer_serve_registry_release(r, sv);
    /* 3 exists on disk but the policy does not serve it */
    assert_int_not_equal(coffer_serve_registry_acquire(r, "a", true, 3, NULL, &sv, &st), COFFER_OK);
    assert_int_equal(st.code, COFFER_SERVE_NOT_FOUND);
    assert_string_equal(st.message, "Servable not found for request: Specific(a, 3)");
    assert_int_not_equal(coffer_serve_registry_acquire(r, "a", false, 0, "gone", &sv, &st), COFFER_OK);
    assert_int_equal(st.code, COFFER_SERVE_NOT_FOUND);
    assert_int_not_equal(coffer_serve_registry_acquire(r, "a", false, 0, "nosuch", &sv, &st), COFFER_OK);
    assert_int_equal(st.code, COFFER_SERVE_INVALID_ARGUMENT);
    assert_string_equal(st.message, "Unrecognized servable version label: nosuch");
    assert_int_not_equal(coffer_serve_registry_acquire(r, "c", false, 0, NULL, &sv, &st), COFFER_OK);
    assert_int_equal(st.code, COFFER_SERVE_NOT_FOUND);
    assert_string_equal(st.message, "Servable not found for request: Latest(c)");
    /* labels of b are its own: a's labels do not apply */
    assert_int_not_equal(coffer_serve_registry_acquire(r, "b", false, 0, "stable", &sv, &st), COFFER_OK);

    struct coffer_serve_version_status *vs;
    size_t n;
    assert_int_equal(coffer_serve_registry_status(r, "a", &vs, &n), COFFER_OK);
    assert_int_equal(n, 2);
    assert_int_equal(vs[0].version, 2); /* newest first */
    assert_int_equal(vs[0].state, COFFER_SERVE_STATE_AVAILABLE);
    coffer_free(vs);
    assert_int_equal(coffer_serve_registry_status(r, "c", &vs, &n), COFFER_OK);
    assert_int_equal(n, 0);
    assert_null(vs);
    assert_int_equal(coffer_serve_registry_model_count(r), 2);
    assert_string_equal(coffer_serve_registry_model(r, 1)->name, "b");
    one_model_done(r, &cfg, &f, dir);
}

/* HandleReloadConfigRequest: a new config replaces the models: a dropped one
 * is NOT_FOUND and unloads once idle, a kept one takes its new policy and
 * labels, a new one loads before the reload returns; a failed load is
 * reported and what loaded stays. */
static void test_registry_config_reload(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char a[512], b[512], c[512], text[2048];
    model_at(a, dir, "a", 1);
    put_version(a, 2, "ok");
    model_at(b, dir, "b", 7);
    model_at(c, dir, "c", 3);
    snprintf(text, sizeof(text), "model_config_list { config { name: 'a' base_path: '%s' } config { name: 'b' "
             "base_path: '%s' } }", a, b);
    struct coffer_serve_config cfg, next;
    struct fake f = {0};
    struct coffer_serve_registry *r = fake_registry(text, &cfg, &f);
    assert_int_equal(latest(r, "a"), 2);
    const struct coffer_serve_servable *held;
    struct coffer_serve_status st;
    assert_int_equal(coffer_serve_registry_acquire(r, "b", false, 0, NULL, &held, &st), COFFER_OK);

    /* a: all versions and a label; b dropped (held by a request); c new */
    snprintf(text, sizeof(text), "model_config_list { config { name: 'a' base_path: '%s' model_version_policy "
             "{ all {} } version_labels { key: 'old' value: 1 } } config { name: 'c' base_path: '%s' } }", a, c);
    assert_int_equal(coffer_serve_config_parse(text, strlen(text), &next), COFFER_OK);
    int before = f.changes;
    assert_int_equal(coffer_serve_registry_reload(r, &next, &st), COFFER_OK);
    assert_int_equal(f.changes, before + 1); /* the loader hears of it (health watchers) */
    assert_int_equal(next.model_count, 0); /* taken over */
    assert_int_equal(latest(r, "c"), 3);
    assert_int_equal(state_of(r, "a", 1), COFFER_SERVE_STATE_AVAILABLE);
    const struct coffer_serve_servable *sv;
    assert_int_equal(coffer_serve_registry_acquire(r, "a", false, 0, "old", &sv, &st), COFFER_OK);
    assert_int_equal(sv->version, 1);
    coffer_serve_registry_release(r, sv);
    assert_int_not_equal(coffer_serve_registry_acquire(r, "b", false, 0, NULL, &sv, &st), COFFER_OK);
    assert_int_equal(st.code, COFFER_SERVE_NOT_FOUND);
    assert_int_equal(f.live, 4); /* a/1, a/2, c/3, and b/7 still held */
    assert_string_equal(held->model, "b"); /* the held servable's name outlives its config */
    coffer_serve_registry_release(r, held);
    before = f.changes;
    coffer_serve_registry_poll(r);
    assert_int_equal(f.changes, before + 1); /* after each poll pass too */
    assert_int_equal(f.live, 3);
    assert_null(coffer_serve_registry_model(r, 1)); /* b's record, removed */
    assert_int_equal(coffer_serve_registry_model_count(r), 3);

    /* b comes back; a model with no version fails, named; what loaded stays */
    snprintf(text, sizeof(text), "model_config_list { config { name: 'b' base_path: '%s' } config { name: 'd' "
             "base_path: '%s/nothing' } }", b, dir);
    assert_int_equal(coffer_serve_config_parse(text, strlen(text), &next), COFFER_OK);
    assert_int_equal(coffer_serve_registry_reload(r, &next, &st), COFFER_E_NOT_FOUND);
    assert_int_equal(st.code, COFFER_SERVE_NOT_FOUND);
    assert_non_null(strstr(st.message, "model d: "));
    assert_int_equal(latest(r, "b"), 7);
    assert_int_equal(latest(r, "a"), -1);
    /* a model listed twice changes nothing */
    snprintf(text, sizeof(text), "model_config_list { config { name: 'x' base_path: '%s' } }", b);
    assert_int_equal(coffer_serve_config_parse(text, strlen(text), &next), COFFER_OK);
    struct coffer_serve_model_config *two = coffer_calloc(2, sizeof(*two));
    assert_non_null(two);
    two[0] = next.models[0];
    two[1].name = coffer_strdup("x");
    two[1].base_path = coffer_strdup(b);
    two[1].platform = coffer_strdup("");
    coffer_free(next.models);
    next.models = two;
    next.model_count = 2;
    assert_int_equal(coffer_serve_registry_reload(r, &next, &st), COFFER_E_MALFORMED);
    assert_string_equal(st.message, "Illegal to list model x multiple times in config list");
    assert_int_equal(latest(r, "b"), 7);
    one_model_done(r, &cfg, &f, dir);
}

/* the log lines of the config watch (its thread writes them) */
static struct {
    pthread_mutex_t mu;
    char text[8192];
} watch_log = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void watch_sink(enum coffer_log_level level, const char *line, void *arg)
{
    (void)level;
    (void)arg;
    pthread_mutex_lock(&watch_log.mu);
    size_t n = strlen(watch_log.text);
    snprintf(watch_log.text + n, sizeof(watch_log.text) - n, "%s\n", line);
    pthread_mutex_unlock(&watch_log.mu);
}

/* Wait (5 s at most) until the log holds what. */
static bool watch_logged(const char *what)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&watch_log.mu);
        bool found = strstr(watch_log.text, what) != NULL;
        pthread_mutex_unlock(&watch_log.mu);
        if (found)
            return true;
        usleep(10000);
    }
    return false;
}

static bool wait_latest(struct coffer_serve_registry *r, const char *name, int64_t want)
{
    for (int i = 0; i < 500 && latest(r, name) != want; i++)
        usleep(10000);
    return latest(r, name) == want;
}

static void write_text(const char *path, const char *text)
{
    assert_int_equal(coffer_file_write_atomic(path, text, strlen(text), 0600), COFFER_OK);
}

/* --model_config_file_poll_wait_seconds: the watch applies a changed file;
 * one that does not parse, configures no model or cannot be read is logged
 * and changes nothing, and the next good one is applied. */
static void test_registry_watch_config(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char a[512], b[512], path[512], text[2048];
    model_at(a, dir, "a", 1);
    model_at(b, dir, "b", 7);
    snprintf(path, sizeof(path), "%s/models.config", dir);
    snprintf(text, sizeof(text), "model_config_list { config { name: 'a' base_path: '%s' } }", a);
    write_text(path, text);
    struct coffer_serve_config cfg;
    struct fake f = {0};
    struct coffer_serve_registry *r = fake_registry(text, &cfg, &f);
    watch_log.text[0] = '\0';
    enum coffer_log_level level = coffer_log_get_level();
    coffer_log_set_level(COFFER_LOG_INFO);
    coffer_log_set_sink(watch_sink, NULL);
    assert_int_equal(coffer_serve_registry_watch_config(r, path, text, strlen(text), 10), COFFER_OK);
    assert_int_not_equal(coffer_serve_registry_watch_config(r, path, text, strlen(text), 10), COFFER_OK);
    /* the bytes it started with: nothing to do */
    usleep(60000);
    assert_int_equal(coffer_serve_registry_model_count(r), 1);

    /* a second model */
    snprintf(text, sizeof(text), "model_config_list { config { name: 'a' base_path: '%s' } config { name: 'b' "
             "base_path: '%s' } }", a, b);
    write_text(path, text);
    assert_true(wait_latest(r, "b", 7));
    assert_true(watch_logged("changed: reloading 2 models"));
    /* a typo, a file with no model, no file: logged, nothing changes */
    write_text(path, "model_config_list { config { nmae: 'x' } }");
    assert_true(watch_logged("changed but does not parse: malformed input: model config: line 1 column 30"));
    write_text(path, "model_config_list { }");
    assert_true(watch_logged("changed but configures no model"));
    assert_int_equal(unlink(path), 0);
    assert_true(watch_logged("No such file or directory; the served models stay as they are"));
    usleep(50000);
    /* each bad content, and the missing file, logged once though looked at again and again */
    pthread_mutex_lock(&watch_log.mu);
    int typos = 0, gone = 0;
    for (const char *q = watch_log.text; (q = strstr(q, "does not parse")) != NULL; q++)
        typos++;
    for (const char *q = watch_log.text; (q = strstr(q, "No such file")) != NULL; q++)
        gone++;
    pthread_mutex_unlock(&watch_log.mu);
    assert_int_equal(typos, 1);
    assert_int_equal(gone, 1);
    assert_int_equal(latest(r, "a"), 1);
    assert_int_equal(latest(r, "b"), 7);

    /* b alone: a goes */
    snprintf(text, sizeof(text), "model_config_list { config { name: 'b' base_path: '%s' } }", b);
    write_text(path, text);
    assert_true(wait_latest(r, "a", -1));
    assert_int_equal(latest(r, "b"), 7);
    coffer_serve_registry_free(r); /* stops the watch */
    coffer_log_set_sink(NULL, NULL);
    coffer_log_set_level(level);
    assert_int_equal(f.live, 0);
    assert_int_equal(f.loads, 2);
    coffer_serve_config_free(&cfg);
    tu_rmtree(dir);
    free(dir);
}

static void one_model(struct coffer_serve_config *cfg, const char *base, const char *policy)
{
    char text[1024];
    snprintf(text, sizeof(text), "model_config_list { config { name: 'm' base_path: '%s' %s } }", base, policy);
    assert_int_equal(coffer_serve_config_parse(text, strlen(text), cfg), COFFER_OK);
}

/* A registry of model m at dir (version 1 put there) with the fake loader
 * f and transition t, loaded. */
static struct coffer_serve_registry *one_model_registry(const char *dir, struct coffer_serve_config *cfg,
                                                        struct fake *f, enum coffer_serve_version_transition t)
{
    put_version(dir, 1, "ok");
    one_model(cfg, dir, "");
    struct coffer_serve_loader ld = {.load = fake_load, .unload = fake_unload, .arg = f};
    struct coffer_serve_registry *r;
    assert_int_equal(coffer_serve_registry_new(cfg, &ld, &r), COFFER_OK);
    coffer_serve_registry_set_transition(r, t);
    assert_int_equal(coffer_serve_registry_load(r), COFFER_OK);
    return r;
}

static void test_registry_hot_reload(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct coffer_serve_config cfg;
    struct fake f = {0};
    struct coffer_serve_registry *r = one_model_registry(dir, &cfg, &f, COFFER_SERVE_AVAILABILITY_PRESERVING);
    /* a request holds version 1 while version 2 arrives */
    const struct coffer_serve_servable *held;
    struct coffer_serve_status st;
    assert_int_equal(coffer_serve_registry_acquire(r, "m", false, 0, NULL, &held, &st), COFFER_OK);
    put_version(dir, 2, "ok");
    coffer_serve_registry_poll(r);
    assert_int_equal(latest(r, "m"), 2);
    assert_int_equal(state_of(r, "m", 1), COFFER_SERVE_STATE_UNLOADING);
    assert_int_equal(f.live, 2);
    const struct coffer_serve_servable *sv;
    assert_int_not_equal(coffer_serve_registry_acquire(r, "m", true, 1, NULL, &sv, &st), COFFER_OK);
    assert_int_equal(held->version, 1); /* still valid for its holder */
    coffer_serve_registry_poll(r);
    assert_int_equal(f.unloads, 0);
    coffer_serve_registry_release(r, held);
    coffer_serve_registry_poll(r);
    assert_int_equal(f.unloads, 1);
    assert_int_equal(state_of(r, "m", 1), COFFER_SERVE_STATE_END);

    /* a broken version 3: reported, version 2 keeps serving; fixed, it loads */
    put_version(dir, 3, "broken");
    coffer_serve_registry_poll(r);
    assert_int_equal(latest(r, "m"), 2);
    struct coffer_serve_version_status *vs;
    size_t n;
    assert_int_equal(coffer_serve_registry_status(r, "m", &vs, &n), COFFER_OK);
    assert_int_equal(n, 3);
    assert_int_equal(vs[0].version, 3);
    assert_int_equal(vs[0].state, COFFER_SERVE_STATE_END);
    assert_int_equal(vs[0].error_code, COFFER_SERVE_INVALID_ARGUMENT);
    assert_non_null(strstr(vs[0].error_message, "not a model"));
    coffer_free(vs);
    int loads = f.loads;
    coffer_serve_registry_poll(r); /* the same file is not tried again */
    assert_int_equal(f.loads, loads);
    usleep(20000);
    put_version(dir, 3, "ok"); /* a new file (atomic write: new inode) */
    coffer_serve_registry_poll(r);
    assert_int_equal(latest(r, "m"), 3);
    assert_int_equal(state_of(r, "m", 2), COFFER_SERVE_STATE_END);

    /* an emptied base path takes nothing down */
    char p[600];
    snprintf(p, sizeof(p), "%s/3/%s", dir, COFFER_SERVE_MODEL_FILE);
    unlink(p);
    snprintf(p, sizeof(p), "%s/3", dir);
    rmdir(p);
    for (int v = 1; v <= 2; v++) {
        snprintf(p, sizeof(p), "%s/%d/%s", dir, v, COFFER_SERVE_MODEL_FILE);
        unlink(p);
        snprintf(p, sizeof(p), "%s/%d", dir, v);
        rmdir(p);
    }
    coffer_serve_registry_poll(r);
    assert_int_equal(latest(r, "m"), 3);
    one_model_done(r, &cfg, &f, dir);
}

/* TF's load retries: a failed load of an unchanged file is tried again up
 * to the maximum, no sooner than the interval; a changed file counts
 * afresh; without retries (the default) only a changed file is. */
static void test_registry_load_retries(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct coffer_serve_config cfg;
    struct fake f = {0};
    struct coffer_serve_registry *r = one_model_registry(dir, &cfg, &f, COFFER_SERVE_AVAILABILITY_PRESERVING);
    /* a transient failure, retried at once (interval 0) on the next scan */
    coffer_serve_registry_set_load_retries(r, 2, 0);
    f.fail_next = 1;
    put_version(dir, 2, "ok");
    coffer_serve_registry_poll(r);
    assert_int_equal(latest(r, "m"), 1);
    assert_int_equal(state_of(r, "m", 2), COFFER_SERVE_STATE_END);
    coffer_serve_registry_poll(r);
    assert_int_equal(latest(r, "m"), 2);
    /* a lasting failure: the first try and 2 retries, then no more */
    put_version(dir, 3, "broken");
    int a0 = f.attempts;
    for (int i = 0; i < 5; i++)
        coffer_serve_registry_poll(r);
    assert_int_equal(f.attempts - a0, 3);
    assert_int_equal(latest(r, "m"), 2);
    /* a new file starts the count again: its first try and 2 retries */
    usleep(20000);
    put_version(dir, 3, "still broken");
    a0 = f.attempts;
    for (int i = 0; i < 5; i++)
        coffer_serve_registry_poll(r);
    assert_int_equal(f.attempts - a0, 3);
    /* the interval: a retry waits for it */
    coffer_serve_registry_set_load_retries(r, 1, 3600ull * 1000000000u);
    f.fail_next = 1;
    put_version(dir, 4, "ok");
    coffer_serve_registry_poll(r);
    coffer_serve_registry_poll(r);
    assert_int_equal(latest(r, "m"), 2);
    coffer_serve_registry_set_load_retries(r, 1, 30u * 1000000u); /* 30 ms */
    usleep(40000);
    coffer_serve_registry_poll(r);
    assert_int_equal(latest(r, "m"), 4);
    /* no retries: the same file is not tried again */
    coffer_serve_registry_set_load_retries(r, 0, 0);
    f.fail_next = 1;
    put_version(dir, 5, "ok");
    a0 = f.attempts;
    for (int i = 0; i < 3; i++)
        coffer_serve_registry_poll(r);
    assert_int_equal(f.attempts - a0, 1);
    assert_int_equal(latest(r, "m"), 4);
    one_model_done(r, &cfg, &f, dir);
}

/* The resource-preserving transition: the old version unloads before the
 * new one loads, never two at once; a held old version delays the load
 * until its release (by hand, then by the poll thread's wake-up). */
static void test_registry_resource_preserving(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    struct coffer_serve_config cfg;
    struct fake f = {0};
    struct coffer_serve_registry *r = one_model_registry(dir, &cfg, &f, COFFER_SERVE_RESOURCE_PRESERVING);
    const struct coffer_serve_servable *held;
    struct coffer_serve_status st;
    assert_int_equal(coffer_serve_registry_acquire(r, "m", false, 0, NULL, &held, &st), COFFER_OK);
    put_version(dir, 2, "ok");
    coffer_serve_registry_poll(r);
    /* version 1 retired (its holder keeps it), version 2 waits: nothing serves */
    assert_int_equal(state_of(r, "m", 1), COFFER_SERVE_STATE_UNLOADING);
    assert_int_equal(state_of(r, "m", 2), COFFER_SERVE_STATE_UNKNOWN);
    assert_int_equal(latest(r, "m"), -1);
    assert_int_equal(f.loads, 1);
    coffer_serve_registry_poll(r); /* still held: still waiting */
    assert_int_equal(f.loads, 1);
    assert_int_equal(held->version, 1);
    coffer_serve_registry_release(r, held);
    coffer_serve_registry_poll(r);
    assert_int_equal(state_of(r, "m", 1), COFFER_SERVE_STATE_END);
    assert_int_equal(latest(r, "m"), 2);
    assert_int_equal(f.max_live, 1);

    /* an idle old version goes in the same pass; a new version that fails
     * to load then leaves the model with none (the policy's price) */
    put_version(dir, 3, "broken");
    coffer_serve_registry_poll(r);
    assert_int_equal(state_of(r, "m", 2), COFFER_SERVE_STATE_END);
    assert_int_equal(state_of(r, "m", 3), COFFER_SERVE_STATE_END);
    assert_int_equal(latest(r, "m"), -1);
    usleep(20000);
    put_version(dir, 3, "ok");
    coffer_serve_registry_poll(r);
    assert_int_equal(latest(r, "m"), 3);
    assert_int_equal(f.max_live, 1);

    /* the poll thread without scans (interval 0) loads the waiting version
     * when the last holder releases the old one */
    assert_int_equal(coffer_serve_registry_start_polling(r, 0), COFFER_OK);
    assert_int_equal(coffer_serve_registry_acquire(r, "m", false, 0, NULL, &held, &st), COFFER_OK);
    put_version(dir, 4, "ok");
    coffer_serve_registry_poll(r);
    assert_int_equal(latest(r, "m"), -1);
    coffer_serve_registry_release(r, held);
    for (int i = 0; i < 300 && latest(r, "m") != 4; i++)
        usleep(10000);
    assert_int_equal(latest(r, "m"), 4);
    assert_int_equal(state_of(r, "m", 3), COFFER_SERVE_STATE_END);
    coffer_serve_registry_free(r); /* joins the poll thread: f is ours again */
    assert_int_equal(f.max_live, 1);
    assert_int_equal(f.live, 0);
    assert_int_equal(f.loads, 4);
    coffer_serve_config_free(&cfg);
    tu_rmtree(dir);
    free(dir);
}

static void test_registry_policies_and_polling(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    put_version(dir, 1, "ok");
    put_version(dir, 2, "ok");
    put_version(dir, 3, "ok");
    struct coffer_serve_config cfg;
    one_model(&cfg, dir, "model_version_policy { latest { num_versions: 2 } }");
    struct fake f = {0};
    struct coffer_serve_loader ld = {.load = fake_load, .unload = fake_unload, .arg = &f};
    struct coffer_serve_registry *r;
    assert_int_equal(coffer_serve_registry_new(&cfg, &ld, &r), COFFER_OK);
    assert_int_equal(coffer_serve_registry_load(r), COFFER_OK);
    assert_int_equal(f.live, 2);
    assert_int_equal(state_of(r, "m", 1), COFFER_SERVE_STATE_UNKNOWN); /* never loaded */
    assert_int_equal(coffer_serve_registry_start_polling(r, 20), COFFER_OK);
    put_version(dir, 4, "ok");
    for (int i = 0; i < 200 && !(latest(r, "m") == 4 && state_of(r, "m", 2) == COFFER_SERVE_STATE_END); i++)
        usleep(10000);
    assert_int_equal(latest(r, "m"), 4);
    assert_int_equal(state_of(r, "m", 3), COFFER_SERVE_STATE_AVAILABLE);
    assert_int_equal(state_of(r, "m", 2), COFFER_SERVE_STATE_END);
    coffer_serve_registry_free(r); /* joins the poll thread: f is ours again */
    assert_int_equal(f.live, 0);
    assert_int_equal(f.loads, 3);
    coffer_serve_config_free(&cfg);

    /* start-up: a missing model or a failed load is fatal and named */
    one_model(&cfg, "/nonexistent/coffer", "");
    assert_int_equal(coffer_serve_registry_new(&cfg, &ld, &r), COFFER_OK);
    assert_int_equal(coffer_serve_registry_load(r), COFFER_E_NOT_FOUND);
    assert_non_null(strstr(coffer_err_detail(), "model m"));
    coffer_serve_registry_free(r);
    coffer_serve_config_free(&cfg);
    put_version(dir, 5, "broken");
    one_model(&cfg, dir, "");
    assert_int_equal(coffer_serve_registry_new(&cfg, &ld, &r), COFFER_OK);
    assert_int_equal(coffer_serve_registry_load(r), COFFER_E_MALFORMED);
    coffer_serve_registry_free(r);
    coffer_serve_config_free(&cfg);
    one_model(&cfg, dir, "model_version_policy { specific { versions: 9 } }");
    assert_int_equal(coffer_serve_registry_new(&cfg, &ld, &r), COFFER_OK);
    assert_int_equal(coffer_serve_registry_load(r), COFFER_E_NOT_FOUND);
    coffer_serve_registry_free(r);
    coffer_serve_config_free(&cfg);
    assert_int_equal(f.live, 0);
    tu_rmtree(dir);
    free(dir);
}

/* ---- batching */

struct job {
    struct coffer_serve_batch_task task; /* first */
    int id;
    int batch; /* which run took it */
};

struct runner {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int runs;
    size_t max_items;
    int done;
    useconds_t delay;
    bool hold;   /* runs wait while set */
    int started; /* runs begun */
};

static void run_batch(void *arg, size_t thread, struct coffer_serve_batch_task *tasks, size_t count, size_t items)
{
    (void)thread;
    struct runner *rn = arg;
    if (rn->delay)
        usleep(rn->delay);
    pthread_mutex_lock(&rn->mu);
    rn->started++;
    pthread_cond_broadcast(&rn->cv);
    while (rn->hold)
        pthread_cond_wait(&rn->cv, &rn->mu);
    int id = ++rn->runs;
    if (items > rn->max_items)
        rn->max_items = items;
    size_t c = 0, sum = 0;
    for (struct coffer_serve_batch_task *t = tasks; t != NULL;) {
        struct coffer_serve_batch_task *next = t->next; /* before completing it */
        ((struct job *)t)->batch = id;
        sum += t->size;
        c++;
        rn->done++;
        t = next;
    }
    assert_int_equal(c, count);
    assert_int_equal(sum, items);
    pthread_mutex_unlock(&rn->mu);
}

/* rn->done, read under the runner's lock (the runs write it). */
static int done_of(struct runner *rn)
{
    pthread_mutex_lock(&rn->mu);
    int d = rn->done;
    pthread_mutex_unlock(&rn->mu);
    return d;
}

/* Which run took job j (under the lock). */
static int batch_of(struct runner *rn, const struct job *j)
{
    pthread_mutex_lock(&rn->mu);
    int b = j->batch;
    pthread_mutex_unlock(&rn->mu);
    return b;
}

static void test_batcher(void **state)
{
    (void)state;
    struct runner rn = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    struct coffer_serve_batcher_config bc = {.max_batch_size = 4, .batch_timeout_us = 200000, .num_threads = 1,
                                             .max_enqueued_batches = 2, .run = run_batch, .arg = &rn};
    struct coffer_serve_batcher *b;
    assert_int_equal(coffer_serve_batcher_new(&bc, &b), COFFER_OK);
    struct job j[8];
    memset(j, 0, sizeof(j));
    struct coffer_serve_status st;
    /* 3 + 1 fill a batch: it runs at once, not after the timeout */
    j[0].task.size = 3;
    j[1].task.size = 1;
    uint64_t t0 = coffer_now_ns();
    assert_int_equal(coffer_serve_batcher_submit(b, &j[0].task, &st), COFFER_OK);
    assert_int_equal(coffer_serve_batcher_submit(b, &j[1].task, &st), COFFER_OK);
    for (int i = 0; i < 500 && done_of(&rn) < 2; i++)
        usleep(1000);
    assert_int_equal(done_of(&rn), 2);
    assert_true(coffer_now_ns() - t0 < 150000000u);
    assert_int_equal(batch_of(&rn, &j[0]), batch_of(&rn, &j[1]));
    /* too large, or empty */
    j[2].task.size = 5;
    assert_int_not_equal(coffer_serve_batcher_submit(b, &j[2].task, &st), COFFER_OK);
    assert_int_equal(st.code, COFFER_SERVE_INVALID_ARGUMENT);
    assert_string_equal(st.message, "Task size 5 is larger than maximum input batch size 4");
    j[2].task.size = 0;
    assert_int_not_equal(coffer_serve_batcher_submit(b, &j[2].task, &st), COFFER_OK);
    /* a run in progress (held) while two batches fill the queue */
    pthread_mutex_lock(&rn.mu);
    rn.hold = true;
    pthread_mutex_unlock(&rn.mu);
    j[6].task.size = 4;
    assert_int_equal(coffer_serve_batcher_submit(b, &j[6].task, &st), COFFER_OK);
    pthread_mutex_lock(&rn.mu);
    while (rn.started < 2)
        pthread_cond_wait(&rn.cv, &rn.mu);
    pthread_mutex_unlock(&rn.mu);
    for (int i = 2; i < 5; i++)
        j[i].task.size = 3; /* 3 + 3 > 4: each opens a batch */
    assert_int_equal(coffer_serve_batcher_submit(b, &j[2].task, &st), COFFER_OK);
    assert_int_equal(coffer_serve_batcher_submit(b, &j[3].task, &st), COFFER_OK);
    assert_int_equal(coffer_serve_batcher_depth(b), 2);
    assert_int_not_equal(coffer_serve_batcher_submit(b, &j[4].task, &st), COFFER_OK);
    assert_int_equal(st.code, COFFER_SERVE_RESOURCE_EXHAUSTED);
    t0 = coffer_now_ns();
    pthread_mutex_lock(&rn.mu);
    rn.hold = false;
    pthread_cond_broadcast(&rn.cv);
    pthread_mutex_unlock(&rn.mu);
    /* both run at once: the first closed when the second opened, the
     * second when the refused task did not fit (a full queue flushes) */
    for (int i = 0; i < 500 && done_of(&rn) < 5; i++)
        usleep(1000);
    assert_int_equal(done_of(&rn), 5);
    assert_true(coffer_now_ns() - t0 < 150000000u);
    /* an under-full batch waits for its timeout */
    j[7].task.size = 1;
    t0 = coffer_now_ns();
    assert_int_equal(coffer_serve_batcher_submit(b, &j[7].task, &st), COFFER_OK);
    for (int i = 0; i < 1000 && done_of(&rn) < 6; i++)
        usleep(1000);
    assert_int_equal(done_of(&rn), 6);
    assert_true(coffer_now_ns() - t0 >= 190000000u);
    assert_int_not_equal(batch_of(&rn, &j[2]), batch_of(&rn, &j[3]));
    /* free runs what is queued without waiting */
    j[5].task.size = 1;
    assert_int_equal(coffer_serve_batcher_submit(b, &j[5].task, &st), COFFER_OK);
    t0 = coffer_now_ns();
    coffer_serve_batcher_free(b);
    assert_int_equal(done_of(&rn), 7);
    assert_true(coffer_now_ns() - t0 < 150000000u);
    assert_true(rn.max_items <= 4); /* the batcher joined its threads */
}

struct producer {
    struct coffer_serve_batcher *b;
    struct job jobs[200];
    int refused;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < 200; i++) {
        struct coffer_serve_status st;
        p->jobs[i].task.size = 1 + (size_t)(i % 3);
        if (coffer_serve_batcher_submit(p->b, &p->jobs[i].task, &st) != COFFER_OK) {
            assert_int_equal(st.code, COFFER_SERVE_RESOURCE_EXHAUSTED);
            p->refused++;
        }
        if (i % 16 == 0)
            usleep(100);
    }
    return NULL;
}

/* A network thread's way in: tasks queued without waking the batch threads
 * wait (until a wake or a thread is awake anyway), then one wake-up runs
 * them as one batch; run_here runs a list on the calling thread, cut at
 * max_batch_size items, before it returns. */
static void test_batcher_quiet_and_here(void **state)
{
    (void)state;
    struct runner rn = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    struct coffer_serve_batcher_config bc = {.max_batch_size = 4, .batch_timeout_us = 0, .num_threads = 1,
                                             .max_enqueued_batches = 3, .run = run_batch, .arg = &rn};
    struct coffer_serve_batcher *b;
    assert_int_equal(coffer_serve_batcher_new(&bc, &b), COFFER_OK);
    struct job j[8];
    memset(j, 0, sizeof(j));
    struct coffer_serve_status st;
    usleep(20000); /* the batch thread is asleep */
    for (int i = 0; i < 3; i++) {
        j[i].task.size = 1;
        assert_int_equal(coffer_serve_batcher_submit_ex(b, &j[i].task, false, &st), COFFER_OK);
    }
    usleep(50000);
    assert_int_equal(done_of(&rn), 0); /* nobody was woken */
    assert_int_equal(coffer_serve_batcher_depth(b), 3);
    j[3].task.size = 1;
    assert_int_equal(coffer_serve_batcher_submit_ex(b, &j[3].task, true, &st), COFFER_OK);
    for (int i = 0; i < 500 && done_of(&rn) < 4; i++)
        usleep(1000);
    assert_int_equal(done_of(&rn), 4);
    for (int i = 1; i < 4; i++)
        assert_int_equal(batch_of(&rn, &j[i]), batch_of(&rn, &j[0])); /* one batch */
    /* a quiet submit that is refused still wakes when asked: size 5 > 4 */
    j[4].task.size = 5;
    assert_int_not_equal(coffer_serve_batcher_submit_ex(b, &j[4].task, true, &st), COFFER_OK);
    assert_int_equal(st.code, COFFER_SERVE_INVALID_ARGUMENT);
    assert_int_not_equal(coffer_serve_batcher_check(b, 5, &st), COFFER_OK);
    assert_int_equal(coffer_serve_batcher_check(b, 4, &st), COFFER_OK);
    /* run here: 3 | 2 + 1, on this thread, done when it returns */
    j[5].task.size = 3;
    j[6].task.size = 2;
    j[7].task.size = 1;
    j[5].task.next = &j[6].task;
    j[6].task.next = &j[7].task;
    j[7].task.next = NULL;
    coffer_serve_batcher_run_here(b, 7, &j[5].task);
    assert_int_equal(done_of(&rn), 7);
    assert_int_not_equal(batch_of(&rn, &j[5]), batch_of(&rn, &j[6]));
    assert_int_equal(batch_of(&rn, &j[6]), batch_of(&rn, &j[7]));
    assert_int_equal(coffer_serve_batcher_depth(b), 0);
    coffer_serve_batcher_free(b);
}

static void test_batcher_concurrent(void **state)
{
    (void)state;
    struct runner rn = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .delay = 200};
    struct coffer_serve_batcher_config bc = {.max_batch_size = 8, .batch_timeout_us = 0, .num_threads = 2,
                                             .max_enqueued_batches = 4, .run = run_batch, .arg = &rn};
    struct coffer_serve_batcher *b;
    assert_int_equal(coffer_serve_batcher_new(&bc, &b), COFFER_OK);
    static struct producer p[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].b = b;
        assert_int_equal(pthread_create(&th[i], NULL, produce, &p[i]), 0);
    }
    int refused = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        refused += p[i].refused;
    }
    coffer_serve_batcher_free(b);
    /* every accepted task ran exactly once; batches stayed within the cap */
    assert_int_equal(rn.done + refused, 800);
    assert_true(rn.max_items <= 8);
    assert_true(rn.runs < rn.done); /* some batching happened */
}

int test_registry_main(void);
int test_registry_main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_models_and_labels),
        cmocka_unit_test(test_registry_hot_reload),
        cmocka_unit_test(test_registry_resource_preserving),
        cmocka_unit_test(test_registry_load_retries),
        cmocka_unit_test(test_registry_config_reload),
        cmocka_unit_test(test_registry_watch_config),
        cmocka_unit_test(test_registry_policies_and_polling),
        cmocka_unit_test(test_batcher),
        cmocka_unit_test(test_batcher_concurrent),
        cmocka_unit_test(test_batcher_quiet_and_here),
    };
    return cmocka_run_group_tests_name("serve_registry", tests, NULL, NULL);
}
