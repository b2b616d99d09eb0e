/*
 * io.c — storage behind an ops struct: a file descriptor or memory.
 *
 * Design: positional, all-or-nothing reads and writes; a short read is
 * COFFER_E_TRUNCATED (naming offset and size), an OS failure COFFER_E_IO
 * with errno's text. errno never leaks upward (STYLE §3.4). The memory
 * backend offers a zero-copy view, which protected-file decryption uses.
 * Invariants: I1 the writable memory store wipes every block it lets go of.
 */
#include "coffer/base.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- file descriptor */

static enum coffer_err fd_read(void *ctx, uint64_t off, void *buf, size_t size)
{
    int fd = ((struct coffer_io_fd *)ctx)->fd;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, (uint8_t *)buf + done, size - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return COFFER_FAIL(COFFER_E_IO, "read of %zu bytes at offset %llu: %s", size,
                               (unsigned long long)off, strerror(errno));
        }
        if (n == 0)
            return COFFER_FAIL(COFFER_E_TRUNCATED, "end of file: read of %zu bytes at offset %llu got %zu",
                               size, (unsigned long long)off, done);
        done += (size_t)n;
    }
    return COFFER_OK;
}

static enum coffer_err fd_write(void *ctx, uint64_t off, const void *buf, size_t size)
{
    int fd = ((struct coffer_io_fd *)ctx)->fd;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fd, (const uint8_t *)buf + done, size - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return COFFER_FAIL(COFFER_E_IO, "write of %zu bytes at offset %llu: %s", size,
                               (unsigned long long)off, strerror(errno));
        }
        done += (size_t)n;
    }
    return COFFER_OK;
}

static enum coffer_err fd_get_size(void *ctx, uint64_t *out)
{
    struct stat st;
    if (fstat(((struct coffer_io_fd *)ctx)->fd, &st) != 0)
        return COFFER_FAIL(COFFER_E_IO, "stat: %s", strerror(errno));
    *out = (uint64_t)st.st_size;
    return COFFER_OK;
}

static enum coffer_err fd_truncate(void *ctx, uint64_t size)
{
    if (ftruncate(((struct coffer_io_fd *)ctx)->fd, (off_t)size) != 0)
        return COFFER_FAIL(COFFER_E_IO, "truncate to %llu bytes: %s", (unsigned long long)size, strerror(errno));
    return COFFER_OK;
}

static enum coffer_err fd_sync(void *ctx)
{
    if (fsync(((struct coffer_io_fd *)ctx)->fd) != 0)
        return COFFER_FAIL(COFFER_E_IO, "fsync: %s", strerror(errno));
    return COFFER_OK;
}

static const struct coffer_io_ops fd_ops = {
    .read = fd_read, .write = fd_write, .get_size = fd_get_size, .truncate = fd_truncate, .sync = fd_sync,
};

void coffer_io_fd_init(struct coffer_io_fd *f, int fd)
{
    f->fd = fd;
    f->io.ops = &fd_ops;
    f->io.ctx = f;
}

/* ---- memory */

static enum coffer_err mem_read(void *ctx, uint64_t off, void *buf, size_t size)
{
    struct coffer_io_mem *m = ctx;
    if (off > m->size || size > m->size - off)
        return COFFER_FAIL(COFFER_E_TRUNCATED, "end of data: read of %zu bytes at offset %llu, size %zu", size,
                           (unsigned long long)off, m->size);
    if (size > 0)
        memcpy(buf, m->data + off, size);
    return COFFER_OK;
}

static enum coffer_err mem_grow(struct coffer_io_mem *m, size_t want)
{
    if (want <= m->cap)
        return COFFER_OK;
    size_t cap = m->cap < 4096 ? 4096 : m->cap;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    uint8_t *p = coffer_malloc(cap);
    if (p == NULL)
        return COFFER_E_NOMEM;
    if (m->size > 0)
        memcpy(p, m->data, m->size);
    memset(p + m->size, 0, cap - m->size);
    if (m->data != NULL) {
        coffer_memzero(m->data, m->cap);
        coffer_free(m->data);
    }
    m->data = p;
    m->cap = cap;
    return COFFER_OK;
}

static enum coffer_err mem_write(void *ctx, uint64_t off, const void *buf, size_t size)
{
    struct coffer_io_mem *m = ctx;
    size_t end;
    if (!m->writable)
        return COFFER_FAIL(COFFER_E_PERM, "write to read-only memory store");
    if (off > SIZE_MAX || !coffer_size_add((size_t)off, size, &end))
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "write past the address space");
    enum coffer_err r = mem_grow(m, end);
    if (r != COFFER_OK)
        return r;
    if (off > m->size)
        memset(m->data + m->size, 0, (size_t)off - m->size);
    memcpy(m->data + off, buf, size);
    if (end > m->size)
        m->size = end;
    return COFFER_OK;
}

static enum coffer_err mem_get_size(void *ctx, uint64_t *out)
{
    *out = ((struct coffer_io_mem *)ctx)->size;
    return COFFER_OK;
}

static enum coffer_err mem_truncate(void *ctx, uint64_t size)
{
    struct coffer_io_mem *m = ctx;
    if (!m->writable)
        return COFFER_FAIL(COFFER_E_PERM, "truncate of read-only memory store");
    if (size > SIZE_MAX)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "truncate past the address space");
    if (size > m->size) {
        enum coffer_err r = mem_grow(m, (size_t)size);
        if (r != COFFER_OK)
            return r;
        memset(m->data + m->size, 0, (size_t)size - m->size);
    } else if (m->data != NULL) {
        memset(m->data + size, 0, m->size - (size_t)size);
    }
    m->size = (size_t)size;
    return COFFER_OK;
}

static enum coffer_err mem_sync(void *ctx)
{
    (void)ctx;
    return COFFER_OK;
}

static const uint8_t *mem_view(void *ctx, uint64_t *size)
{
    struct coffer_io_mem *m = ctx;
    *size = m->size;
    return m->data;
}

static const struct coffer_io_ops mem_ops = {
    .read = mem_read, .write = mem_write, .get_size = mem_get_size,
    .truncate = mem_truncate, .sync = mem_sync, .view = mem_view,
};

void coffer_io_mem_init_ro(struct coffer_io_mem *m, const void *data, size_t size)
{
    memset(m, 0, sizeof(*m));
    m->data = (uint8_t *)(uintptr_t)data; /* never written: writable is false */
    m->size = size;
    m->cap = size;
    m->io.ops = &mem_ops;
    m->io.ctx = m;
}

void coffer_io_mem_init_rw(struct coffer_io_mem *m)
{
    memset(m, 0, sizeof(*m));
    m->writable = true;
    m->io.ops = &mem_ops;
    m->io.ctx = m;
}

void coffer_io_mem_release(struct coffer_io_mem *m)
{
    if (m->writable && m->data != NULL) {
        coffer_memzero(m->data, m->cap);
        coffer_free(m->data);
    }
    m->data = NULL;
    m->size = m->cap = 0;
}
