/*
 * coffer/base.h — the foundation every other module stands on.
 *
 * Errors with messages and the detail of where they started, logging, the
 * allocator (with fault injection in test builds), the bounds-checked byte
 * reader every parser of outside bytes goes through, a growable byte builder,
 * arenas, zeroizing secret buffers and constant-time comparison, hex and
 * base64, storage I/O behind an ops struct, atomic file writes, JSON helpers
 * over jansson, a terminal progress bar and a few system helpers.
 *
 * Conventions (shared/design/STYLE.md §3): functions return enum coffer_err
 * and give results through out-params, which are cleared on entry and written
 * on success only. "size" is bytes; "count" or "len" is elements.
 */
#ifndef COFFER_BASE_H
#define COFFER_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define COFFER_VERSION_STRING "0.1.0"

#define COFFER_NODISCARD __attribute__((warn_unused_result))
#define COFFER_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))

/* ------------------------------------------------------------------ errors */

enum coffer_err {
    COFFER_OK = 0,
    COFFER_E_UNKNOWN = -1,
    COFFER_E_INVALID_ARG = -2,   /* a caller passed something not allowed */
    COFFER_E_NOMEM = -3,         /* allocation failed */
    COFFER_E_TRUNCATED = -4,     /* input ended before a field it announced */
    COFFER_E_TRAILING = -5,      /* bytes left after the end of a structure */
    COFFER_E_TOO_LARGE = -6,     /* a length or count over its cap */
    COFFER_E_MALFORMED = -7,     /* a value the format does not allow */
    COFFER_E_UNSUPPORTED = -8,   /* well-formed, but not something coffer does */
    COFFER_E_IO = -9,            /* a read, write, sync or truncate failed */
    COFFER_E_NOT_FOUND = -10,
    COFFER_E_EXISTS = -11,
    COFFER_E_PERM = -12,         /* the operating system refused access */
    COFFER_E_CRYPTO = -13,       /* the crypto library failed (not an auth failure) */
    COFFER_E_AUTH = -14,         /* a MAC or tag did not match: wrong key or tampered data */
    COFFER_E_BAD_HEADER = -15,   /* not a file of the expected format */
    COFFER_E_BAD_VERSION = -16,  /* a format version coffer does not read */
    COFFER_E_BAD_PATH = -17,     /* a protected file bound to another path */
    COFFER_E_CORRUPTED = -18,    /* a handle that failed an integrity check earlier */
    COFFER_E_PATH_TOO_LONG = -19,
    COFFER_E_JSON = -20,         /* JSON that does not parse or has the wrong shape */
    COFFER_E_SIGNATURE = -21,    /* a signature did not verify */
    COFFER_E_CERT = -22,         /* a certificate or chain did not verify */
    COFFER_E_POLICY = -23,       /* valid evidence that the policy does not accept */
    COFFER_E_EXPIRED = -24,      /* outside a validity period */
    COFFER_E_REVOKED = -25,
    COFFER_E_STATE = -26,        /* not allowed in the current state */
    COFFER_E_TIMEOUT = -27,
    COFFER_E_NET = -28,
    COFFER_E_DENIED = -29,       /* authenticated, but not authorised */
    COFFER_E_INTERNAL = -30,     /* a broken invariant inside coffer */
    COFFER_E_SHAPE = -31,        /* tensor shapes that do not fit together */
    COFFER_E_RANGE = -32,        /* an offset or index outside what exists */
};
#define COFFER_ERR_COUNT 33 /* number of codes, 0 included */

/* Static text for a code; never NULL. */
const char *coffer_strerror(enum coffer_err err);

/* Stable identifier of a code ("E_AUTH"), for JSON and logs. */
const char *coffer_err_name(enum coffer_err err);

/*
 * Record where an error started: the detail text (what was wrong, which field,
 * at which offset) is kept per thread until the next failure or clear, and is
 * logged at debug level with file and line. Returns err, so
 * `return COFFER_FAIL(COFFER_E_TRUNCATED, "header: need %zu bytes", n);`.
 * Never put secret values in the detail.
 */
enum coffer_err coffer_fail_at(enum coffer_err err, const char *file, int line,
                               const char *fmt, ...) COFFER_PRINTF(4, 5);
#define COFFER_FAIL(err, ...) coffer_fail_at((err), __FILE__, __LINE__, __VA_ARGS__)

/* The detail of the last failure on this thread ("" when none). Borrowed,
 * valid until the next coffer call on this thread. */
const char *coffer_err_detail(void);
void coffer_err_clear(void);

/* Prefix the current detail with context: "reading model: <old detail>". */
void coffer_err_context(const char *fmt, ...) COFFER_PRINTF(1, 2);

/* "message: detail" for err into buf (always NUL-terminated). Returns buf. */
const char *coffer_err_format(enum coffer_err err, char *buf, size_t size);

/* Defensive checks for things that "cannot happen": assert in debug builds,
 * the safe branch stays in release builds (STYLE §3.7). */
#ifdef NDEBUG
#define COFFER_NEVER(x) (x)
#define COFFER_ALWAYS(x) (x)
#else
#include <assert.h>
#define COFFER_NEVER(x) ((x) ? (assert(0), 1) : 0)
#define COFFER_ALWAYS(x) ((x) ? 1 : (assert(0), 0))
#endif

/* ----------------------------------------------------------------- logging */

enum coffer_log_level {
    COFFER_LOG_DEBUG = 0,
    COFFER_LOG_INFO = 1,
    COFFER_LOG_WARN = 2,
    COFFER_LOG_ERROR = 3,
    COFFER_LOG_OFF = 4,
};

/* Log lines go to stderr, one per call. Text by default; JSON lines
 * ({"ts":...,"level":...,"msg":...}) after coffer_log_set_json(true) or with
 * COFFER_LOG_FORMAT=json. The level comes from COFFER_LOG_LEVEL
 * (debug|info|warn|error|off), default info. Thread-safe. */
void coffer_log(enum coffer_log_level level, const char *fmt, ...) COFFER_PRINTF(2, 3);
void coffer_logv(enum coffer_log_level level, const char *fmt, va_list ap);
void coffer_log_set_level(enum coffer_log_level level);
enum coffer_log_level coffer_log_get_level(void);
void coffer_log_set_json(bool json);
/* Simulation mode: every line's level field says "sim-" in front of the level,
 * so no log reader can miss that there is no hardware protection. */
void coffer_log_set_simulation(bool simulation);
bool coffer_log_is_simulation(void);
/* Redirect log output (tests). NULL restores stderr. */
void coffer_log_set_sink(void (*sink)(enum coffer_log_level, const char *line, void *arg), void *arg);

#define coffer_debug(...) coffer_log(COFFER_LOG_DEBUG, __VA_ARGS__)
#define coffer_info(...) coffer_log(COFFER_LOG_INFO, __VA_ARGS__)
#define coffer_warn(...) coffer_log(COFFER_LOG_WARN, __VA_ARGS__)
#define coffer_error(...) coffer_log(COFFER_LOG_ERROR, __VA_ARGS__)

/* --------------------------------------------------------------- allocation */

/* All of coffer allocates through these, so tests can inject failures.
 * They return NULL on failure (and record COFFER_E_NOMEM detail). */
void *coffer_malloc(size_t size);
void *coffer_calloc(size_t count, size_t size);
void *coffer_realloc(void *ptr, size_t size);
/* count * size with an overflow check. */
void *coffer_mallocarray(size_t count, size_t size);
char *coffer_strdup(const char *s);
void coffer_free(void *ptr);

#ifdef COFFER_TESTING
/* Make allocation number n (1-based, counted from this call) fail; with
 * persistent, every later one fails too. n = 0 disarms. */
void coffer_test_fail_alloc_at(long n, bool persistent);
/* Whether the armed fault fired since it was armed. */
bool coffer_test_alloc_fault_fired(void);
#endif

/* ---------------------------------------------------- bounds-checked reader */

/* A cursor over borrowed bytes. Every read checks the bytes left first and
 * fails with COFFER_E_TRUNCATED (naming offset and need) without moving. */
struct coffer_rd {
    const uint8_t *data;
    size_t size;
    size_t pos;
};

void coffer_rd_init(struct coffer_rd *rd, const void *data, size_t size);
static inline size_t coffer_rd_left(const struct coffer_rd *rd) { return rd->size - rd->pos; }
COFFER_NODISCARD enum coffer_err coffer_rd_u8(struct coffer_rd *rd, uint8_t *out);
COFFER_NODISCARD enum coffer_err coffer_rd_u16le(struct coffer_rd *rd, uint16_t *out);
COFFER_NODISCARD enum coffer_err coffer_rd_u32le(struct coffer_rd *rd, uint32_t *out);
COFFER_NODISCARD enum coffer_err coffer_rd_u64le(struct coffer_rd *rd, uint64_t *out);
COFFER_NODISCARD enum coffer_err coffer_rd_u16be(struct coffer_rd *rd, uint16_t *out);
COFFER_NODISCARD enum coffer_err coffer_rd_u32be(struct coffer_rd *rd, uint32_t *out);
COFFER_NODISCARD enum coffer_err coffer_rd_u64be(struct coffer_rd *rd, uint64_t *out);
/* Borrow n bytes: *out points into the reader's buffer, valid while it lives. */
COFFER_NODISCARD enum coffer_err coffer_rd_bytes(struct coffer_rd *rd, size_t n, const uint8_t **out);
COFFER_NODISCARD enum coffer_err coffer_rd_copy(struct coffer_rd *rd, void *dst, size_t n);
COFFER_NODISCARD enum coffer_err coffer_rd_skip(struct coffer_rd *rd, size_t n);
/* A child reader over the next n bytes (for nested length-prefixed data). */
COFFER_NODISCARD enum coffer_err coffer_rd_sub(struct coffer_rd *rd, size_t n, struct coffer_rd *child);
/* Protocol-buffers base-128 varint (at most 10 bytes). */
COFFER_NODISCARD enum coffer_err coffer_rd_varint(struct coffer_rd *rd, uint64_t *out);
/* COFFER_E_TRAILING when bytes are left. */
COFFER_NODISCARD enum coffer_err coffer_rd_expect_end(const struct coffer_rd *rd);

/* Checked size arithmetic: false on overflow. */
static inline bool coffer_size_add(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool coffer_size_mul(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

/* Little-endian stores and loads for fixed layouts built in memory. */
static inline void coffer_store_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void coffer_store_u64le(uint8_t *p, uint64_t v)
{
    coffer_store_u32le(p, (uint32_t)v);
    coffer_store_u32le(p + 4, (uint32_t)(v >> 32));
}

/* ------------------------------------------------------------ byte builder */

/* A growable byte buffer with a hard cap. A secret buffer zeroizes every
 * block it lets go of (on growth and on free). */
struct coffer_buf {
    uint8_t *data;
    size_t size;
    size_t cap;
    size_t max; /* hard cap on size; 0 means SIZE_MAX */
    bool secret;
};

void coffer_buf_init(struct coffer_buf *b, size_t max, bool secret);
COFFER_NODISCARD enum coffer_err coffer_buf_reserve(struct coffer_buf *b, size_t extra);
COFFER_NODISCARD enum coffer_err coffer_buf_put(struct coffer_buf *b, const void *p, size_t n);
COFFER_NODISCARD enum coffer_err coffer_buf_put_u8(struct coffer_buf *b, uint8_t v);
COFFER_NODISCARD enum coffer_err coffer_buf_put_u16le(struct coffer_buf *b, uint16_t v);
COFFER_NODISCARD enum coffer_err coffer_buf_put_u32le(struct coffer_buf *b, uint32_t v);
COFFER_NODISCARD enum coffer_err coffer_buf_put_u64le(struct coffer_buf *b, uint64_t v);
COFFER_NODISCARD enum coffer_err coffer_buf_put_u32be(struct coffer_buf *b, uint32_t v);
COFFER_NODISCARD enum coffer_err coffer_buf_put_varint(struct coffer_buf *b, uint64_t v);
COFFER_NODISCARD enum coffer_err coffer_buf_printf(struct coffer_buf *b, const char *fmt, ...) COFFER_PRINTF(2, 3);
/* Empty it, keeping the storage (zeroized first when secret). */
void coffer_buf_reset(struct coffer_buf *b);
/* Hand the storage to the caller (who frees it with coffer_free, after
 * wiping it when secret); the buffer becomes empty. */
uint8_t *coffer_buf_steal(struct coffer_buf *b, size_t *size);
void coffer_buf_free(struct coffer_buf *b);

/* ------------------------------------------------------------------ arenas */

/* A bump allocator: many allocations, one free. Blocks grow as needed;
 * coffer_arena_reset keeps the first block. Not thread-safe. */
struct coffer_arena;

COFFER_NODISCARD enum coffer_err coffer_arena_new(size_t block_size, struct coffer_arena **out);
/* An arena for plaintext (a decrypted model's tensors): its blocks are
 * secrets (locked where the limit allows, out of core dumps, wiped when
 * reset or freed, on 4 KiB pages), and an allocation of more than a
 * quarter of block_size gets a block of its own, its pages faulted in at
 * once, beside the current block (which goes on serving). */
COFFER_NODISCARD enum coffer_err coffer_arena_new_secret(size_t block_size, struct coffer_arena **out);
/* align must be a power of two up to 4096. Returns NULL when out of memory
 * or on size overflow. Memory is zero-filled. */
void *coffer_arena_alloc(struct coffer_arena *a, size_t size, size_t align);
char *coffer_arena_strdup(struct coffer_arena *a, const char *s);
size_t coffer_arena_used(const struct coffer_arena *a);
void coffer_arena_reset(struct coffer_arena *a);
void coffer_arena_free(struct coffer_arena *a);

/* ----------------------------------------------------------------- secrets */

/* Memory for keys and plaintext: page-backed, locked into RAM where the
 * limit allows, excluded from core dumps, zeroized when freed. */
struct coffer_secret {
    uint8_t *data;
    size_t size;
    size_t map_size; /* private */
};

COFFER_NODISCARD enum coffer_err coffer_secret_new(size_t size, struct coffer_secret **out);
/* coffer_secret_new's flags: 4 KiB pages even for a large secret (large
 * ones are on 2 MiB pages by default, whose first touch may wait long for
 * the kernel to supply a fresh huge page); every page faulted in at once. */
#define COFFER_SECRET_SMALL_PAGES 1u
#define COFFER_SECRET_POPULATE 2u
COFFER_NODISCARD enum coffer_err coffer_secret_new_flags(size_t size, unsigned flags, struct coffer_secret **out);
/* Wipes and frees; NULL is fine. */
void coffer_secret_free(struct coffer_secret *s);
/* The same for a secret of which only the first `used` bytes were ever
 * written (the rest is still the mapping's zeros): only those are wiped,
 * so pages never touched are not faulted in to be cleared. */
void coffer_secret_free_used(struct coffer_secret *s, size_t used);
/* Wipe memory so the compiler cannot elide it (OPENSSL_cleanse). */
void coffer_memzero(void *p, size_t size);
/* Constant-time equality in the contents (CRYPTO_memcmp). For equality only. */
bool coffer_ct_eq(const void *a, const void *b, size_t size);
/* Cryptographically secure random bytes (OpenSSL's DRBG). */
COFFER_NODISCARD enum coffer_err coffer_random(void *buf, size_t size);

/* --------------------------------------------------------------- encodings */

/* Lower-case hex; out must hold 2*size+1 bytes (NUL-terminated). */
void coffer_hex_encode(const void *data, size_t size, char *out);
/* Decode exactly out_size bytes from hex (either case, no spaces; a trailing
 * newline is accepted). */
COFFER_NODISCARD enum coffer_err coffer_hex_decode(const char *hex, size_t hex_len, void *out, size_t out_size);
/* The value of one hex digit (either case), or -1. */
int coffer_hex_digit(uint8_t c);
/* Append DER bytes as PEM: "-----BEGIN label-----", base64 in 64-column
 * lines, "-----END label-----". */
COFFER_NODISCARD enum coffer_err coffer_pem_append(struct coffer_buf *out, const char *label, const void *der, size_t size);
/* Standard base64 with padding. Encoded length for size bytes: */
static inline size_t coffer_base64_encoded_len(size_t size) { return ((size + 2) / 3) * 4; }
/* out must hold coffer_base64_encoded_len(size)+1 bytes. */
void coffer_base64_encode(const void *data, size_t size, char *out);
/* Strict decode (standard alphabet, padding required, no whitespace);
 * *out is allocated with coffer_malloc. */
COFFER_NODISCARD enum coffer_err coffer_base64_decode(const char *b64, size_t len, uint8_t **out, size_t *out_size);

/* ------------------------------------------------------------- storage I/O */

/* Storage behind an ops struct, per handle (not global), so tests can plug in
 * stores that fail the Nth write or sync. Reads and writes are positional and
 * all-or-nothing: a short read is COFFER_E_TRUNCATED. */
struct coffer_io_ops {
    enum coffer_err (*read)(void *ctx, uint64_t off, void *buf, size_t size);
    enum coffer_err (*write)(void *ctx, uint64_t off, const void *buf, size_t size);
    enum coffer_err (*get_size)(void *ctx, uint64_t *out);
    enum coffer_err (*truncate)(void *ctx, uint64_t size);
    enum coffer_err (*sync)(void *ctx);
    /* Optional: the whole content as one borrowed view, or NULL. */
    const uint8_t *(*view)(void *ctx, uint64_t *size);
};

struct coffer_io {
    const struct coffer_io_ops *ops;
    void *ctx;
};

/* A file descriptor (not owned: the caller closes it). */
struct coffer_io_fd {
    struct coffer_io io;
    int fd;
};
void coffer_io_fd_init(struct coffer_io_fd *f, int fd);

/* Memory: read-only over borrowed bytes, or writable and growing (owned,
 * released with coffer_io_mem_release, which wipes it). */
struct coffer_io_mem {
    struct coffer_io io;
    uint8_t *data;
    size_t size;
    size_t cap;
    bool writable;
};
void coffer_io_mem_init_ro(struct coffer_io_mem *m, const void *data, size_t size);
void coffer_io_mem_init_rw(struct coffer_io_mem *m);
void coffer_io_mem_release(struct coffer_io_mem *m);

static inline enum coffer_err coffer_io_read(const struct coffer_io *io, uint64_t off, void *buf, size_t size)
{ return io->ops->read(io->ctx, off, buf, size); }
static inline enum coffer_err coffer_io_write(const struct coffer_io *io, uint64_t off, const void *buf, size_t size)
{ return io->ops->write(io->ctx, off, buf, size); }

/* ------------------------------------------------------------------- files */

/* Read a whole file of at most max_size bytes; *out from coffer_malloc. */
COFFER_NODISCARD enum coffer_err coffer_file_read_all(const char *path, size_t max_size, uint8_t **out, size_t *out_size);
/* Read a whole file into secret memory. */
COFFER_NODISCARD enum coffer_err coffer_file_read_secret(const char *path, size_t max_size, struct coffer_secret **out);
/* Map a whole regular file of at most max_size bytes read-only: its pages
 * in the page cache, not a copy, so reading a large plain file (an ONNX
 * model) costs no fresh memory. For files that are not secret (a copy of
 * a secret belongs in coffer_file_read_secret's memory); the file must
 * not shrink while mapped (a read past its new end raises SIGBUS). An
 * empty file maps to size 0. Unmapping a zeroed struct does nothing. */
struct coffer_file_map {
    const uint8_t *data;
    size_t size;
};
COFFER_NODISCARD enum coffer_err coffer_file_map(const char *path, size_t max_size, struct coffer_file_map *out);
void coffer_file_unmap(struct coffer_file_map *m);
/* Drop the mapping's pages from the process's resident set, keeping the
 * mapping: a later read faults its page back in from the page cache (or
 * the file), with the same bytes. For a mapping read once and then only
 * now and again (a model's raw weights after they were packed, read again
 * only to re-plan), so that they stop counting as the process's memory. */
void coffer_file_map_release(const struct coffer_file_map *m);

/* Atomic replacement of a file: write to a temporary file beside it (opened
 * read-write, so writers may read back what they wrote), fsync,
 * rename over the target, fsync the folder. Until commit, the target is
 * untouched; abort removes the temporary file. */
struct coffer_atomic_file {
    int fd;
    char *path;
    char *tmp_path;
};
COFFER_NODISCARD enum coffer_err coffer_atomic_open(const char *path, unsigned mode, struct coffer_atomic_file *af);
COFFER_NODISCARD enum coffer_err coffer_atomic_commit(struct coffer_atomic_file *af);
void coffer_atomic_abort(struct coffer_atomic_file *af);
COFFER_NODISCARD enum coffer_err coffer_file_write_atomic(const char *path, const void *data, size_t size, unsigned mode);
/* mkdir -p with the given mode for created folders. */
COFFER_NODISCARD enum coffer_err coffer_mkdir_p(const char *path, unsigned mode);
/* Write all bytes to a descriptor (retrying on EINTR and short writes). */
COFFER_NODISCARD enum coffer_err coffer_write_all(int fd, const void *data, size_t size);

/* -------------------------------------------------------------------- JSON */

/* Parse JSON from outside: duplicate keys rejected, whole input must be one
 * value, size capped; errors name line and column. */
COFFER_NODISCARD enum coffer_err coffer_json_parse(const void *data, size_t size, size_t max_size, json_t **out);
/* Typed member access for validation. `path` names the object in errors
 * ("$.Marbles.server"). Missing required members, or members of the wrong
 * type, fail with COFFER_E_JSON naming path.key. Optional missing members
 * leave *out untouched and return COFFER_OK. */
COFFER_NODISCARD enum coffer_err coffer_json_get_string(const json_t *obj, const char *path, const char *key, bool required, const char **out);
COFFER_NODISCARD enum coffer_err coffer_json_get_int(const json_t *obj, const char *path, const char *key, bool required, int64_t *out);
COFFER_NODISCARD enum coffer_err coffer_json_get_bool(const json_t *obj, const char *path, const char *key, bool required, bool *out);
COFFER_NODISCARD enum coffer_err coffer_json_get_object(const json_t *obj, const char *path, const char *key, bool required, json_t **out);
COFFER_NODISCARD enum coffer_err coffer_json_get_array(const json_t *obj, const char *path, const char *key, bool required, json_t **out);
/* "an object", "a string", ... for error messages. */
const char *coffer_json_type_name(const json_t *v);
/* Compact serialisation with sorted keys; *out from coffer_malloc. */
COFFER_NODISCARD enum coffer_err coffer_json_dump(const json_t *value, char **out, size_t *out_size);

/* ------------------------------------------------------------------ system */

/* Monotonic clock in nanoseconds. */
uint64_t coffer_now_ns(void);
/* Number of CPUs this process may run on (affinity mask), at least 1. */
int coffer_cpu_count(void);

/* A progress bar on stderr, drawn only when stderr is a terminal and the
 * job is big enough to be worth it. */
struct coffer_progress {
    const char *label;
    uint64_t total;
    uint64_t done;
    uint64_t start_ns;
    uint64_t last_draw_ns;
    bool enabled;
};
void coffer_progress_init(struct coffer_progress *p, const char *label, uint64_t total);
void coffer_progress_update(struct coffer_progress *p, uint64_t done);
void coffer_progress_finish(struct coffer_progress *p);

#endif /* COFFER_BASE_H */
