/*
 * log.c — one line per call to stderr, as text or JSON lines.
 *
 * Design: a line is formatted in full on the stack, then written with one
 * write(2) so lines from threads never interleave. In simulation mode the
 * level field is prefixed with "sim-" on every line. Secrets are never passed
 * here (callers' duty).
 * Threading: settings are atomics; formatting uses only the stack.
 */
#include "coffer/base.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = -1; /* -1: not read from the environment yet */
static atomic_int log_json = -1;
static atomic_bool log_sim;
static void (*log_sink)(enum coffer_log_level, const char *, void *);
static void *log_sink_arg;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

static int env_level(void)
{
    const char *s = getenv("COFFER_LOG_LEVEL");
    if (s != NULL) {
        for (int i = 0; i <= COFFER_LOG_OFF; i++)
            if (strcasecmp(s, level_names[i]) == 0)
                return i;
    }
    return COFFER_LOG_INFO;
}

void coffer_log_set_level(enum coffer_log_level level) { atomic_store(&log_level, (int)level); }

enum coffer_log_level coffer_log_get_level(void)
{
    int l = atomic_load(&log_level);
    if (l < 0) {
        l = env_level();
        atomic_store(&log_level, l);
    }
    return (enum coffer_log_level)l;
}

void coffer_log_set_json(bool json) { atomic_store(&log_json, json ? 1 : 0); }

static bool is_json(void)
{
    int j = atomic_load(&log_json);
    if (j < 0) {
        const char *s = getenv("COFFER_LOG_FORMAT");
        j = (s != NULL && strcasecmp(s, "json") == 0) ? 1 : 0;
        atomic_store(&log_json, j);
    }
    return j == 1;
}

void coffer_log_set_simulation(bool simulation) { atomic_store(&log_sim, simulation); }
bool coffer_log_is_simulation(void) { return atomic_load(&log_sim); }

void coffer_log_set_sink(void (*sink)(enum coffer_log_level, const char *, void *), void *arg)
{
    log_sink = sink;
    log_sink_arg = arg;
}

/* Append s to out as a JSON string body (no quotes). */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s != '\0' && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

void coffer_logv(enum coffer_log_level level, const char *fmt, va_list ap)
{
    if (level < coffer_log_get_level() || level >= COFFER_LOG_OFF)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    int wn = snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    (void)wn;
    const char *sim = atomic_load(&log_sim) ? "sim-" : "";

    char line[2400];
    int n;
    if (is_json()) {
        char esc[2200];
        json_escape(esc, sizeof(esc), msg);
        n = snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s%s\",\"msg\":\"%s\"}\n", when, sim,
                     level_names[level], esc);
    } else {
        n = snprintf(line, sizeof(line), "%s %s%s %s\n", when, sim, level_names[level], msg);
    }
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (log_sink != NULL) {
        log_sink(level, line, log_sink_arg);
        return;
    }
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void coffer_log(enum coffer_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    coffer_logv(level, fmt, ap);
    va_end(ap);
}
