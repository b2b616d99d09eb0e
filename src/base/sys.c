/*
 * sys.c — clocks, CPU count, and the terminal progress bar.
 *
 * Design: the progress bar draws on stderr only when it is a terminal and
 * the job is at least 16 MiB, at most ten times a second, and erases itself
 * at the end so logs stay clean.
 */
#include "coffer/base.h"

#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

uint64_t coffer_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int coffer_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

#define PROGRESS_MIN_BYTES (16u << 20)

void coffer_progress_init(struct coffer_progress *p, const char *label, uint64_t total)
{
    p->label = label;
    p->total = total;
    p->done = 0;
    p->start_ns = coffer_now_ns();
    p->last_draw_ns = 0;
    p->enabled = total >= PROGRESS_MIN_BYTES && isatty(STDERR_FILENO);
}

static void draw(struct coffer_progress *p)
{
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    if (frac > 1.0)
        frac = 1.0;
    double secs = (double)(coffer_now_ns() - p->start_ns) / 1e9;
    double mbs = secs > 0 ? (double)p->done / 1e6 / secs : 0;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%s [%s] %5.1f%% %8.1f MB/s", p->label, bar, frac * 100.0, mbs);
    fflush(stderr);
}

void coffer_progress_update(struct coffer_progress *p, uint64_t done)
{
    p->done = done;
    if (!p->enabled)
        return;
    uint64_t now = coffer_now_ns();
    if (now - p->last_draw_ns < 100000000ull)
        return;
    p->last_draw_ns = now;
    draw(p);
}

void coffer_progress_finish(struct coffer_progress *p)
{
    if (!p->enabled)
        return;
    p->done = p->total;
    draw(p);
    fputc('\n', stderr);
    p->enabled = false;
}
