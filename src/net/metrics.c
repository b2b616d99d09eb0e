/*
 * metrics.c — a small Prometheus registry: counters, gauges, fixed-bucket
 * histograms, rendered in the text exposition format 0.0.4.
 *
 * Design: a registry is a mutex-guarded array of series (a name, a label
 * set, a type). Registration and rendering take the mutex; updates never
 * do: counters and gauges are 64-bit atomics, a histogram is an array of
 * atomic per-bucket counts (cumulated only when rendered), an atomic count
 * and a double sum updated by compare-and-swap on its bit pattern. Series
 * that share a name are rendered together under one HELP and TYPE.
 *
 * Invariants: I1 a series pointer stays valid until the registry is freed
 * (series are allocated one by one, never moved). I2 names and label sets
 * are validated at registration, so rendering cannot produce broken text.
 * Trusts: callers for help text (newlines and backslashes are escaped).
 * Threading: any thread may update; render sees each value atomically but
 * not a snapshot across values (as Prometheus clients generally do).
 */
#include "net_int.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };

#define MAX_BOUNDS 64

struct series {
    enum kind kind;
    char *name;
    char *help;
    char *labels;
};

struct coffer_net_counter {
    struct series s;
    atomic_uint_fast64_t v;
};

struct coffer_net_gauge {
    struct series s;
    atomic_int_fast64_t v;
};

struct coffer_net_histogram {
    struct series s;
    size_t nb;
    double bounds[MAX_BOUNDS];
    atomic_uint_fast64_t buckets[MAX_BOUNDS + 1]; /* non-cumulative; last is +Inf */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_bits;
};

struct coffer_net_metrics {
    pthread_mutex_t lock;
    struct series **all;
    size_t count, cap;
};

enum coffer_err coffer_net_metrics_new(struct coffer_net_metrics **out)
{
    *out = NULL;
    struct coffer_net_metrics *m = coffer_calloc(1, sizeof(*m));
    if (m == NULL)
        return COFFER_E_NOMEM;
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return COFFER_OK;
}

void coffer_net_metrics_free(struct coffer_net_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->count; i++) {
        coffer_free(m->all[i]->name);
        coffer_free(m->all[i]->help);
        coffer_free(m->all[i]->labels);
        coffer_free(m->all[i]);
    }
    coffer_free(m->all);
    pthread_mutex_destroy(&m->lock);
    coffer_free(m);
}

static bool name_ok(const char *n)
{
    if (n == NULL || *n == '\0')
        return false;
    for (size_t i = 0; n[i] != '\0'; i++) {
        char c = n[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* labels: "" or name="value"{,name="value"} with \\ \" \n escapes inside values. */
static bool labels_ok(const char *l)
{
    size_t i = 0;
    if (l[0] == '\0')
        return true;
    for (;;) {
        size_t n0 = i;
        while ((l[i] >= 'a' && l[i] <= 'z') || (l[i] >= 'A' && l[i] <= 'Z') || l[i] == '_' ||
               (i > n0 && l[i] >= '0' && l[i] <= '9'))
            i++;
        if (i == n0 || l[i] != '=' || l[i + 1] != '"')
            return false;
        i += 2;
        while (l[i] != '"') {
            if (l[i] == '\0' || l[i] == '\n')
                return false;
            if (l[i] == '\\') {
                if (l[i + 1] != '\\' && l[i + 1] != '"' && l[i + 1] != 'n')
                    return false;
                i++;
            }
            i++;
        }
        i++;
        if (l[i] == '\0')
            return true;
        if (l[i] != ',')
            return false;
        i++;
    }
}

static enum coffer_err add_series(struct coffer_net_metrics *m, struct series *s, enum kind kind, const char *name,
                                  const char *help, const char *labels)
{
    if (m == NULL || !name_ok(name) || labels == NULL || !labels_ok(labels) || help == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "metric name or labels not valid: %s{%s}", name ? name : "(null)",
                           labels ? labels : "");
    s->kind = kind;
    s->name = coffer_strdup(name);
    s->help = coffer_strdup(help);
    s->labels = coffer_strdup(labels);
    if (s->name == NULL || s->help == NULL || s->labels == NULL)
        goto nomem;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->count; i++) {
        struct series *o = m->all[i];
        if (strcmp(o->name, name) == 0 && (o->kind != kind || strcmp(o->labels, labels) == 0)) {
            pthread_mutex_unlock(&m->lock);
            coffer_free(s->name);
            coffer_free(s->help);
            coffer_free(s->labels);
            return COFFER_FAIL(COFFER_E_EXISTS, "metric %s{%s} already registered (or with another type)", name,
                               labels);
        }
    }
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct series **p = coffer_realloc(m->all, cap * sizeof(*p));
        if (p == NULL) {
            pthread_mutex_unlock(&m->lock);
            goto nomem;
        }
        m->all = p;
        m->cap = cap;
    }
    m->all[m->count++] = s;
    pthread_mutex_unlock(&m->lock);
    return COFFER_OK;
nomem:
    coffer_free(s->name);
    coffer_free(s->help);
    coffer_free(s->labels);
    return COFFER_E_NOMEM;
}

enum coffer_err coffer_net_metrics_counter(struct coffer_net_metrics *m, const char *name, const char *help,
                                           const char *labels, struct coffer_net_counter **out)
{
    *out = NULL;
    struct coffer_net_counter *c = coffer_calloc(1, sizeof(*c));
    if (c == NULL)
        return COFFER_E_NOMEM;
    enum coffer_err r = add_series(m, &c->s, K_COUNTER, name, help, labels);
    if (r != COFFER_OK) {
        coffer_free(c);
        return r;
    }
    *out = c;
    return COFFER_OK;
}

enum coffer_err coffer_net_metrics_gauge(struct coffer_net_metrics *m, const char *name, const char *help,
                                         const char *labels, struct coffer_net_gauge **out)
{
    *out = NULL;
    struct coffer_net_gauge *g = coffer_calloc(1, sizeof(*g));
    if (g == NULL)
        return COFFER_E_NOMEM;
    enum coffer_err r = add_series(m, &g->s, K_GAUGE, name, help, labels);
    if (r != COFFER_OK) {
        coffer_free(g);
        return r;
    }
    *out = g;
    return COFFER_OK;
}

enum coffer_err coffer_net_metrics_histogram(struct coffer_net_metrics *m, const char *name, const char *help,
                                             const char *labels, const double *bounds, size_t bound_count,
                                             struct coffer_net_histogram **out)
{
    *out = NULL;
    if (bounds == NULL || bound_count == 0 || bound_count > MAX_BOUNDS)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "histogram needs 1..%d bounds", MAX_BOUNDS);
    for (size_t i = 0; i < bound_count; i++)
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return COFFER_FAIL(COFFER_E_INVALID_ARG, "histogram bounds must be finite and increasing");
    struct coffer_net_histogram *h = coffer_calloc(1, sizeof(*h));
    if (h == NULL)
        return COFFER_E_NOMEM;
    h->nb = bound_count;
    memcpy(h->bounds, bounds, bound_count * sizeof(double));
    enum coffer_err r = add_series(m, &h->s, K_HISTOGRAM, name, help, labels);
    if (r != COFFER_OK) {
        coffer_free(h);
        return r;
    }
    *out = h;
    return COFFER_OK;
}

void coffer_net_counter_add(struct coffer_net_counter *c, uint64_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}
void coffer_net_gauge_set(struct coffer_net_gauge *g, int64_t v)
{
    if (g != NULL)
        atomic_store_explicit(&g->v, v, memory_order_relaxed);
}
void coffer_net_gauge_add(struct coffer_net_gauge *g, int64_t d)
{
    if (g != NULL)
        atomic_fetch_add_explicit(&g->v, d, memory_order_relaxed);
}
uint64_t coffer_net_counter_get(const struct coffer_net_counter *c)
{
    return c != NULL ? atomic_load_explicit(&((struct coffer_net_counter *)c)->v, memory_order_relaxed) : 0;
}
int64_t coffer_net_gauge_get(const struct coffer_net_gauge *g)
{
    return g != NULL ? atomic_load_explicit(&((struct coffer_net_gauge *)g)->v, memory_order_relaxed) : 0;
}

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}
static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

void coffer_net_histogram_observe(struct coffer_net_histogram *h, double v)
{
    if (h == NULL || isnan(v))
        return;
    size_t i = 0;
    while (i < h->nb && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, dbits(bitsd(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static enum coffer_err put_help(struct coffer_buf *out, const struct series *s)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    enum coffer_err r = coffer_buf_printf(out, "# HELP %s ", s->name);
    for (const char *p = s->help; r == COFFER_OK && *p != '\0'; p++) {
        if (*p == '\\')
            r = coffer_buf_put(out, "\\\\", 2);
        else if (*p == '\n')
            r = coffer_buf_put(out, "\\n", 2);
        else
            r = coffer_buf_put(out, p, 1);
    }
    if (r == COFFER_OK)
        r = coffer_buf_printf(out, "\n# TYPE %s %s\n", s->name, types[s->kind]);
    return r;
}

static enum coffer_err put_series(struct coffer_buf *out, const struct series *s)
{
    const char *l = s->labels;
    bool hl = l[0] != '\0';
    if (s->kind == K_COUNTER) {
        const struct coffer_net_counter *c = (const struct coffer_net_counter *)s;
        return coffer_buf_printf(out, "%s%s%s%s %llu\n", s->name, hl ? "{" : "", l, hl ? "}" : "",
                                 (unsigned long long)coffer_net_counter_get(c));
    }
    if (s->kind == K_GAUGE) {
        const struct coffer_net_gauge *g = (const struct coffer_net_gauge *)s;
        return coffer_buf_printf(out, "%s%s%s%s %lld\n", s->name, hl ? "{" : "", l, hl ? "}" : "",
                                 (long long)coffer_net_gauge_get(g));
    }
    struct coffer_net_histogram *h = (struct coffer_net_histogram *)s;
    uint64_t cum = 0;
    enum coffer_err r = COFFER_OK;
    for (size_t i = 0; i <= h->nb && r == COFFER_OK; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        char le[40];
        if (i < h->nb)
            snprintf(le, sizeof(le), "%.17g", h->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        r = coffer_buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", s->name, l, hl ? "," : "", le,
                              (unsigned long long)cum);
    }
    if (r == COFFER_OK)
        r = coffer_buf_printf(out, "%s_sum%s%s%s %.17g\n%s_count%s%s%s %llu\n", s->name, hl ? "{" : "", l,
                              hl ? "}" : "", bitsd(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)), s->name,
                              hl ? "{" : "", l, hl ? "}" : "", (unsigned long long)cum);
    return r;
}

enum coffer_err coffer_net_metrics_render(struct coffer_net_metrics *m, struct coffer_buf *out)
{
    if (m == NULL || out == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "metrics render needs a registry and a buffer");
    enum coffer_err r = COFFER_OK;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->count && r == COFFER_OK; i++) {
        struct series *s = m->all[i];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(m->all[j]->name, s->name) == 0;
        if (seen)
            continue;
        r = put_help(out, s);
        for (size_t j = i; j < m->count && r == COFFER_OK; j++)
            if (strcmp(m->all[j]->name, s->name) == 0)
                r = put_series(out, m->all[j]);
    }
    pthread_mutex_unlock(&m->lock);
    return r;
}
