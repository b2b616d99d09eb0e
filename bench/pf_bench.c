/*
 * pf_bench.c — protected-file throughput: encrypt (streaming writer),
 * decrypt into memory (decrypt_all, 1 and N threads, from memory and from a
 * file in the page cache), and the random-access reader read sequentially.
 *
 *   bench_pf [--mib N] [--runs R] [--threads T] [--file PATH]
 *
 * Prints one JSON line per operation: the median and best MB/s (10^6 B/s)
 * over R runs, and the first (cold) run, whose memory is new to the process. bench/pf_bench.sh runs it beside `openssl speed`.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coffer/pf.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *op, int threads, double *mbs, int runs, size_t size)
{
    double first = mbs[0];
    qsort(mbs, (size_t)runs, sizeof(double), cmp_double);
    printf("{\"op\":\"%s\",\"threads\":%d,\"mib\":%zu,\"runs\":%d,\"median_mb_s\":%.1f,\"best_mb_s\":%.1f,"
           "\"first_mb_s\":%.1f}\n", op, threads, size >> 20, runs, mbs[runs / 2], mbs[runs - 1], first);
    fflush(stdout);
}

static double rate(size_t size, uint64_t t0)
{
    return (double)size / ((double)(coffer_now_ns() - t0) / 1e9) / 1e6;
}

static void die(const char *what, enum coffer_err r)
{
    char buf[512];
    fprintf(stderr, "bench_pf: %s: %s\n", what, coffer_err_format(r, buf, sizeof(buf)));
    exit(1);
}

int main(int argc, char **argv)
{
    size_t mib = 256;
    int runs = 5, threads = coffer_cpu_count();
    const char *file = "/tmp/coffer-bench-pf.pf";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mib") == 0)
            mib = (size_t)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--file") == 0)
            file = argv[i + 1];
    }
    if (runs < 1 || runs > 100 || mib < 1) {
        fprintf(stderr, "usage: bench_pf [--mib N] [--runs R] [--threads T] [--file PATH]\n");
        return 2;
    }
    size_t size = mib << 20;
    coffer_pf_key key;
    uint8_t *plain = malloc(size);
    enum coffer_err r;
    if (plain == NULL || (r = coffer_random(key, sizeof(key))) != COFFER_OK || (r = coffer_random(plain, size)) != COFFER_OK)
        die("setup", COFFER_E_NOMEM);
    double *mbs = calloc((size_t)runs, sizeof(double));

    /* encrypt: the streaming writer into a file (page cache), 1 MiB writes,
     * as `coffer pf encrypt` does */
    for (int i = 0; i < runs; i++) {
        int wfd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (wfd < 0)
            die("creating the bench file", COFFER_E_IO);
        struct coffer_io_fd wio;
        coffer_io_fd_init(&wio, wfd);
        uint64_t t0 = coffer_now_ns();
        struct coffer_pf *pf;
        if ((r = coffer_pf_create(&wio.io, key, "bench.pf", COFFER_PF_V2, &pf)) != COFFER_OK)
            die("create", r);
        for (size_t off = 0; off < size; off += 1 << 20)
            if ((r = coffer_pf_write(pf, plain + off, 1 << 20)) != COFFER_OK)
                die("write", r);
        if ((r = coffer_pf_finish(pf)) != COFFER_OK)
            die("finish", r);
        coffer_pf_close(pf);
        mbs[i] = rate(size, t0);
        close(wfd);
    }
    report("encrypt_file", 1, mbs, runs, size);
    struct coffer_io_mem enc;
    uint8_t *encbuf;
    size_t encsize;
    if ((r = coffer_file_read_all(file, SIZE_MAX, &encbuf, &encsize)) != COFFER_OK)
        die("reading the bench file", r);
    coffer_io_mem_init_ro(&enc, encbuf, encsize);

    /* decrypt_all from memory, 1 thread and all threads */
    struct coffer_io_mem ro;
    coffer_io_mem_init_ro(&ro, enc.data, enc.size);
    int tlist[2] = {1, threads};
    for (int k = 0; k < (threads > 1 ? 2 : 1); k++) {
        for (int i = 0; i < runs; i++) {
            struct coffer_secret *s;
            uint64_t t0 = coffer_now_ns();
            if ((r = coffer_pf_decrypt_all(&ro.io, key, "bench.pf", tlist[k], &s)) != COFFER_OK)
                die("decrypt_all", r);
            mbs[i] = rate(size, t0);
            if (i == 0 && memcmp(s->data, plain, size) != 0)
                die("decrypt_all", COFFER_E_INTERNAL);
            coffer_secret_free(s);
        }
        report("decrypt_all_mem", tlist[k], mbs, runs, size);
    }

    /* decrypt_all from a file (page cache), as the model server loads a model */
    int fd = open(file, O_RDONLY);
    struct coffer_io_fd fio;
    coffer_io_fd_init(&fio, fd);
    for (int k = 0; k < (threads > 1 ? 2 : 1); k++) {
        for (int i = 0; i < runs; i++) {
            struct coffer_secret *s;
            uint64_t t0 = coffer_now_ns();
            if ((r = coffer_pf_decrypt_all(&fio.io, key, NULL, tlist[k], &s)) != COFFER_OK)
                die("decrypt_all (file)", r);
            mbs[i] = rate(size, t0);
            coffer_secret_free(s);
        }
        report("decrypt_all_file", tlist[k], mbs, runs, size);
    }

    /* the random-access reader, read front to back in 1 MiB reads */
    uint8_t *buf = malloc(1 << 20);
    for (int i = 0; i < runs; i++) {
        struct coffer_pf *pf;
        uint64_t t0 = coffer_now_ns();
        if ((r = coffer_pf_open(&fio.io, key, NULL, &pf)) != COFFER_OK)
            die("open", r);
        size_t got;
        for (size_t off = 0; off < size; off += got)
            if ((r = coffer_pf_read(pf, off, buf, 1 << 20, &got)) != COFFER_OK)
                die("read", r);
        coffer_pf_close(pf);
        mbs[i] = rate(size, t0);
    }
    report("read_stream_file", 1, mbs, runs, size);
    close(fd);
    unlink(file);
    coffer_free(encbuf);
    free(buf);
    free(plain);
    free(mbs);
    return 0;
}
