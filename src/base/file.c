/*
 * file.c — whole-file reads, atomic file replacement, mkdir -p.
 *
 * Design: atomic replacement writes a temporary file in the target's folder
 * (O_EXCL, random name), fsyncs it, renames it over the target and fsyncs
 * the folder, so a crash leaves either the old file or the new one, never a
 * mixture (STYLE §3.18). Abort unlinks the temporary file.
 * Invariants: I1 the target path is touched only by rename(2). I2 secret
 * reads land directly in secret memory, never in an ordinary heap block.
 */
#include "coffer/base.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static enum coffer_err errno_err(int e)
{
    switch (e) {
    case ENOENT: return COFFER_E_NOT_FOUND;
    case EACCES:
    case EPERM: return COFFER_E_PERM;
    case EEXIST: return COFFER_E_EXISTS;
    case ENOMEM: return COFFER_E_NOMEM;
    default: return COFFER_E_IO;
    }
}

static enum coffer_err open_regular(const char *path, size_t max_size, int *fd_out, size_t *size_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return COFFER_FAIL(errno_err(errno), "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return COFFER_FAIL(COFFER_E_IO, "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_size) {
        close(fd);
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "%s is %lld bytes, over the limit of %zu", path,
                           (long long)st.st_size, max_size);
    }
    *fd_out = fd;
    *size_out = (size_t)st.st_size;
    return COFFER_OK;
}

static enum coffer_err read_fd_all(int fd, const char *path, uint8_t *dst, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = read(fd, dst + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return COFFER_FAIL(COFFER_E_IO, "reading %s: %s", path, strerror(errno));
        if (n == 0)
            return COFFER_FAIL(COFFER_E_TRUNCATED, "%s shrank while being read", path);
        done += (size_t)n;
    }
    return COFFER_OK;
}

enum coffer_err coffer_file_read_all(const char *path, size_t max_size, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    int fd = -1;
    size_t size = 0;
    enum coffer_err r = open_regular(path, max_size, &fd, &size);
    if (r != COFFER_OK)
        return r;
    uint8_t *p = coffer_malloc(size + 1);
    if (p == NULL) {
        close(fd);
        return COFFER_E_NOMEM;
    }
    r = read_fd_all(fd, path, p, size);
    close(fd);
    if (r != COFFER_OK) {
        coffer_free(p);
        return r;
    }
    p[size] = 0; /* convenient for text; not counted in size */
    *out = p;
    *out_size = size;
    return COFFER_OK;
}

enum coffer_err coffer_file_read_secret(const char *path, size_t max_size, struct coffer_secret **out)
{
    *out = NULL;
    int fd = -1;
    size_t size = 0;
    enum coffer_err r = open_regular(path, max_size, &fd, &size);
    if (r != COFFER_OK)
        return r;
    struct coffer_secret *s;
    r = coffer_secret_new(size, &s);
    if (r == COFFER_OK) {
        r = read_fd_all(fd, path, s->data, size);
        if (r != COFFER_OK)
            coffer_secret_free(s);
        else
            *out = s;
    }
    close(fd);
    return r;
}

enum coffer_err coffer_file_map(const char *path, size_t max_size, struct coffer_file_map *out)
{
    static const uint8_t empty[1];
    out->data = NULL;
    out->size = 0;
    int fd = -1;
    size_t size = 0;
    enum coffer_err r = open_regular(path, max_size, &fd, &size);
    if (r != COFFER_OK)
        return r;
    if (size == 0) {
        close(fd);
        out->data = empty;
        return COFFER_OK;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file */
    if (p == MAP_FAILED)
        return COFFER_FAIL(errno_err(e), "cannot map %s: %s", path, strerror(e));
    /* the whole of it is read (parsed, then packed) right away */
    (void)madvise(p, size, MADV_WILLNEED);
    out->data = p;
    out->size = size;
    return COFFER_OK;
}

void coffer_file_unmap(struct coffer_file_map *m)
{
    if (m->size > 0)
        (void)munmap((void *)(uintptr_t)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

void coffer_file_map_release(const struct coffer_file_map *m)
{
    /* MADV_DONTNEED on a private file mapping never written to: its pages
     * are unmapped, and the next touch maps the file's page again */
    if (m->size > 0)
        (void)madvise((void *)(uintptr_t)m->data, m->size, MADV_DONTNEED);
}

enum coffer_err coffer_write_all(int fd, const void *data, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, (const uint8_t *)data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return COFFER_FAIL(COFFER_E_IO, "write: %s", strerror(errno));
        done += (size_t)n;
    }
    return COFFER_OK;
}

enum coffer_err coffer_atomic_open(const char *path, unsigned mode, struct coffer_atomic_file *af)
{
    memset(af, 0, sizeof(*af));
    af->fd = -1;
    af->path = coffer_strdup(path);
    size_t n = strlen(path) + 32;
    af->tmp_path = coffer_malloc(n);
    if (af->path == NULL || af->tmp_path == NULL) {
        coffer_free(af->path);
        coffer_free(af->tmp_path);
        af->path = af->tmp_path = NULL;
        return COFFER_E_NOMEM;
    }
    for (int attempt = 0; attempt < 16; attempt++) {
        uint8_t rnd[6];
        char hex[13];
        enum coffer_err r = coffer_random(rnd, sizeof(rnd));
        if (r != COFFER_OK) {
            coffer_atomic_abort(af);
            return r;
        }
        coffer_hex_encode(rnd, sizeof(rnd), hex);
        snprintf(af->tmp_path, n, "%s.tmp-%s", path, hex);
        af->fd = open(af->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
        if (af->fd >= 0)
            return COFFER_OK;
        if (errno != EEXIST)
            break;
    }
    int e = errno;
    coffer_free(af->path);
    coffer_free(af->tmp_path);
    af->path = af->tmp_path = NULL;
    return COFFER_FAIL(errno_err(e), "cannot create a temporary file beside %s: %s", path, strerror(e));
}

static enum coffer_err sync_parent(const char *path)
{
    char *copy = coffer_strdup(path);
    if (copy == NULL)
        return COFFER_E_NOMEM;
    const char *dir = dirname(copy);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    enum coffer_err r = COFFER_OK;
    if (dfd < 0) {
        r = COFFER_FAIL(COFFER_E_IO, "cannot open folder %s to sync it: %s", dir, strerror(errno));
    } else {
        if (fsync(dfd) != 0)
            r = COFFER_FAIL(COFFER_E_IO, "fsync of folder %s: %s", dir, strerror(errno));
        close(dfd);
    }
    coffer_free(copy);
    return r;
}

enum coffer_err coffer_atomic_commit(struct coffer_atomic_file *af)
{
    enum coffer_err r = COFFER_OK;
    if (af->fd < 0 || af->path == NULL)
        return COFFER_FAIL(COFFER_E_STATE, "atomic file is not open");
    if (fsync(af->fd) != 0)
        r = COFFER_FAIL(COFFER_E_IO, "fsync of %s: %s", af->tmp_path, strerror(errno));
    if (close(af->fd) != 0 && r == COFFER_OK)
        r = COFFER_FAIL(COFFER_E_IO, "close of %s: %s", af->tmp_path, strerror(errno));
    af->fd = -1;
    if (r == COFFER_OK && rename(af->tmp_path, af->path) != 0)
        r = COFFER_FAIL(errno_err(errno), "rename to %s: %s", af->path, strerror(errno));
    if (r != COFFER_OK) {
        coffer_atomic_abort(af);
        return r;
    }
    r = sync_parent(af->path);
    coffer_free(af->path);
    coffer_free(af->tmp_path);
    af->path = af->tmp_path = NULL;
    return r;
}

void coffer_atomic_abort(struct coffer_atomic_file *af)
{
    if (af->fd >= 0)
        close(af->fd);
    af->fd = -1;
    if (af->tmp_path != NULL)
        unlink(af->tmp_path);
    coffer_free(af->path);
    coffer_free(af->tmp_path);
    af->path = af->tmp_path = NULL;
}

enum coffer_err coffer_file_write_atomic(const char *path, const void *data, size_t size, unsigned mode)
{
    struct coffer_atomic_file af;
    enum coffer_err r = coffer_atomic_open(path, mode, &af);
    if (r != COFFER_OK)
        return r;
    r = coffer_write_all(af.fd, data, size);
    if (r != COFFER_OK) {
        coffer_err_context("writing %s", path);
        coffer_atomic_abort(&af);
        return r;
    }
    return coffer_atomic_commit(&af);
}

enum coffer_err coffer_mkdir_p(const char *path, unsigned mode)
{
    char *copy = coffer_strdup(path);
    if (copy == NULL)
        return COFFER_E_NOMEM;
    enum coffer_err r = COFFER_OK;
    size_t len = strlen(copy);
    for (size_t i = 1; i <= len && r == COFFER_OK; i++) {
        if (copy[i] != '/' && copy[i] != '\0')
            continue;
        char saved = copy[i];
        copy[i] = '\0';
        if (mkdir(copy, (mode_t)mode) != 0 && errno != EEXIST)
            r = COFFER_FAIL(errno_err(errno), "cannot create folder %s: %s", copy, strerror(errno));
        else {
            struct stat st;
            if (stat(copy, &st) != 0 || !S_ISDIR(st.st_mode))
                r = COFFER_FAIL(COFFER_E_EXISTS, "%s exists and is not a folder", copy);
        }
        copy[i] = saved;
    }
    coffer_free(copy);
    return r;
}
