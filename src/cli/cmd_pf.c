/*
 * cmd_pf.c — `coffer pf`: a drop-in for gramine-sgx-pf-crypt.
 *
 *   coffer pf gen-key -w KEY
 *   coffer pf encrypt -w KEY -i IN -o OUT [--format v1|v2]
 *   coffer pf decrypt [-V] -w KEY -i IN -o OUT
 *
 * Same options, modes matched on their first letter, options before or
 * after the mode, the same path-binding rule (the normalised -o path) and
 * directory recursion. Unlike Gramine: outputs are replaced atomically
 * (written to a temporary file and renamed only on success, so a failed
 * decrypt leaves no partial plaintext and an existing longer output is not
 * left with stale nodes), a missing input is an error, every error names
 * the check that failed, and the exit status is 0, 1 (failure) or 2 (usage).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "coffer/pf.h"

#define CHUNK (1u << 20)

void cmd_pf_help(FILE *out)
{
    fprintf(out,
            "usage: coffer pf gen-key -w KEY\n"
            "       coffer pf encrypt -w KEY -i IN -o OUT [--format v1|v2]\n"
            "       coffer pf decrypt [-V] -w KEY -i IN -o OUT\n"
            "\n"
            "Gramine-compatible protected files; a drop-in for gramine-sgx-pf-crypt.\n"
            "\n"
            "  -w, --wrap-key PATH  the 16-byte wrap key (raw bytes, as gen-key writes it)\n"
            "  -i, --input PATH     input file, or a folder to process recursively\n"
            "  -o, --output PATH    output file, or folder (created as needed)\n"
            "  -V, --verify         decrypt: check the path the file is bound to against\n"
            "                       the normalised -i path, as Gramine does at run time\n"
            "      --format v1|v2   encrypt: format version (v2, Gramine 1.9+, is the\n"
            "                       default; v1 is for Gramine 1.0 to 1.8)\n"
            "  -v, --verbose        debug output\n"
            "  -h, --help           this text\n"
            "\n"
            "encrypt binds each file to its normalised output path: Gramine opens it only\n"
            "under that exact path (relative paths stay relative), so run it from the\n"
            "folder Gramine will use as its working directory. Outputs are written to a\n"
            "temporary file and renamed into place only when complete.\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

struct pf_opts {
    const char *key_path;
    const char *in;
    const char *out;
    bool verify;
    enum coffer_pf_version version;
    struct coffer_secret *key;
};

static enum coffer_err load_key(struct pf_opts *o)
{
    enum coffer_err r = coffer_file_read_secret(o->key_path, 4096, &o->key);
    if (r != COFFER_OK) {
        coffer_err_context("wrap key %s", o->key_path);
        return r;
    }
    if (o->key->size != COFFER_PF_KEY_SIZE) {
        r = COFFER_FAIL(COFFER_E_MALFORMED, "wrap key %s is %zu bytes, a wrap key is %d raw bytes", o->key_path,
                        o->key->size, COFFER_PF_KEY_SIZE);
        coffer_secret_free(o->key);
        o->key = NULL;
    }
    return r;
}

static int gen_key(struct pf_opts *o)
{
    struct coffer_secret *k;
    enum coffer_err r = coffer_secret_new(COFFER_PF_KEY_SIZE, &k);
    if (r == COFFER_OK && (r = coffer_random(k->data, k->size)) == COFFER_OK)
        r = coffer_file_write_atomic(o->key_path, k->data, k->size, 0600);
    coffer_secret_free(k);
    if (r != COFFER_OK)
        return cli_fail("pf gen-key", r);
    fprintf(stderr, "Wrap key saved to: %s\n", o->key_path);
    return CLI_OK;
}

/* Normalised copy of a path (caller frees). */
static char *norm(const char *p)
{
    char *n = coffer_malloc(strlen(p) + 1);
    if (n != NULL && coffer_pf_normalize_path(p, n, strlen(p) + 1) != COFFER_OK) {
        coffer_free(n);
        n = NULL;
    }
    return n;
}

static enum coffer_err encrypt_file(struct pf_opts *o, const char *in, const char *out)
{
    char *bound = norm(out);
    if (bound == NULL)
        return COFFER_E_NOMEM;
    fprintf(stderr, "Encrypting: %s -> %s\n", in, out);
    fprintf(stderr, "(Gramine's encrypted files must contain this exact path: \"%s\")\n", bound);
    int ifd = open(in, O_RDONLY | O_CLOEXEC);
    if (ifd < 0) {
        coffer_free(bound);
        return COFFER_FAIL(errno == ENOENT ? COFFER_E_NOT_FOUND : COFFER_E_IO, "cannot open %s: %s", in,
                           strerror(errno));
    }
    struct stat st;
    fstat(ifd, &st);
    struct coffer_atomic_file af;
    struct coffer_pf *pf = NULL;
    struct coffer_secret *buf = NULL;
    enum coffer_err r = coffer_atomic_open(out, 0644, &af);
    if (r != COFFER_OK) {
        close(ifd);
        coffer_free(bound);
        return r;
    }
    struct coffer_io_fd fio;
    coffer_io_fd_init(&fio, af.fd);
    struct coffer_progress prog;
    coffer_progress_init(&prog, "encrypt", (uint64_t)st.st_size);
    if ((r = coffer_secret_new(CHUNK, &buf)) == COFFER_OK &&
        (r = coffer_pf_create(&fio.io, o->key->data, bound, o->version, &pf)) == COFFER_OK) {
        uint64_t total = 0;
        for (;;) {
            ssize_t n = read(ifd, buf->data, CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                r = COFFER_FAIL(COFFER_E_IO, "reading %s: %s", in, strerror(errno));
                break;
            }
            if (n == 0)
                break;
            if ((r = coffer_pf_write(pf, buf->data, (size_t)n)) != COFFER_OK)
                break;
            total += (uint64_t)n;
            coffer_progress_update(&prog, total);
        }
        if (r == COFFER_OK)
            r = coffer_pf_finish(pf);
    }
    coffer_progress_finish(&prog);
    coffer_pf_close(pf);
    coffer_secret_free(buf);
    close(ifd);
    if (r == COFFER_OK)
        r = coffer_atomic_commit(&af);
    else
        coffer_atomic_abort(&af);
    if (r != COFFER_OK)
        coffer_err_context("%s", in);
    coffer_free(bound);
    return r;
}

static enum coffer_err decrypt_file(struct pf_opts *o, const char *in, const char *out)
{
    fprintf(stderr, "Decrypting: %s -> %s\n", in, out);
    char *check = NULL;
    if (o->verify && (check = norm(in)) == NULL)
        return COFFER_E_NOMEM;
    int ifd = open(in, O_RDONLY | O_CLOEXEC);
    if (ifd < 0) {
        coffer_free(check);
        return COFFER_FAIL(errno == ENOENT ? COFFER_E_NOT_FOUND : COFFER_E_IO, "cannot open %s: %s", in,
                           strerror(errno));
    }
    struct coffer_io_fd fio;
    coffer_io_fd_init(&fio, ifd);
    struct coffer_pf *pf = NULL;
    struct coffer_secret *buf = NULL;
    struct coffer_atomic_file af = {.fd = -1};
    enum coffer_err r = coffer_pf_open(&fio.io, o->key->data, check, &pf);
    if (r == COFFER_OK && (r = coffer_secret_new(CHUNK, &buf)) == COFFER_OK &&
        (r = coffer_atomic_open(out, 0600, &af)) == COFFER_OK) {
        uint64_t size = coffer_pf_size(pf);
        struct coffer_progress prog;
        coffer_progress_init(&prog, "decrypt", size);
        for (uint64_t off = 0; off < size && r == COFFER_OK;) {
            size_t got;
            if ((r = coffer_pf_read(pf, off, buf->data, CHUNK, &got)) == COFFER_OK)
                r = coffer_write_all(af.fd, buf->data, got);
            off += got;
            coffer_progress_update(&prog, off);
        }
        coffer_progress_finish(&prog);
        if (r == COFFER_OK)
            r = coffer_atomic_commit(&af);
        else
            coffer_atomic_abort(&af);
    }
    coffer_secret_free(buf);
    coffer_pf_close(pf);
    close(ifd);
    if (r != COFFER_OK)
        coffer_err_context("%s", in);
    coffer_free(check);
    return r;
}

typedef enum coffer_err (*file_fn)(struct pf_opts *o, const char *in, const char *out);

/* Create the folder an output file goes in (e.g. models/NAME/1/). */
static enum coffer_err make_parent(const char *out)
{
    char *copy = coffer_strdup(out);
    if (copy == NULL)
        return COFFER_E_NOMEM;
    char *slash = strrchr(copy, '/');
    enum coffer_err r = COFFER_OK;
    if (slash != NULL && slash != copy) {
        *slash = '\0';
        r = coffer_mkdir_p(copy, 0775);
    }
    coffer_free(copy);
    return r;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = coffer_malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Walk a folder, mirroring it under out; stop at the first failure. */
static enum coffer_err walk(struct pf_opts *o, file_fn fn, const char *in, const char *out, int depth)
{
    if (depth > 64)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "folders nested deeper than 64 levels at %s", in);
    struct stat st;
    if (stat(in, &st) != 0)
        return COFFER_FAIL(errno == ENOENT ? COFFER_E_NOT_FOUND : COFFER_E_IO, "cannot stat input %s: %s", in,
                           strerror(errno));
    if (S_ISREG(st.st_mode)) {
        enum coffer_err pr = make_parent(out);
        return pr != COFFER_OK ? pr : fn(o, in, out);
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "Skipping non-regular file %s\n", in);
        return COFFER_OK;
    }
    enum coffer_err r = coffer_mkdir_p(out, 0775);
    if (r != COFFER_OK)
        return r;
    DIR *d = opendir(in);
    if (d == NULL)
        return COFFER_FAIL(COFFER_E_IO, "cannot open folder %s: %s", in, strerror(errno));
    struct dirent *e;
    while (r == COFFER_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *ci = join(in, e->d_name), *co = join(out, e->d_name);
        if (ci == NULL || co == NULL)
            r = COFFER_E_NOMEM;
        else
            r = walk(o, fn, ci, co, depth + 1);
        coffer_free(ci);
        coffer_free(co);
    }
    closedir(d);
    return r;
}

int cmd_pf(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"wrap-key", required_argument, NULL, 'w'}, {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},   {"verify", no_argument, NULL, 'V'},
        {"verbose", no_argument, NULL, 'v'},        {"help", no_argument, NULL, 'h'},
        {"format", required_argument, NULL, 'F'},   {NULL, 0, NULL, 0},
    };
    struct pf_opts o = {.version = COFFER_PF_V2};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "i:o:p:w:Vvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'w': o.key_path = optarg; break;
        case 'i': o.in = optarg; break;
        case 'o': o.out = optarg; break;
        case 'V': o.verify = true; break;
        case 'v': coffer_log_set_level(COFFER_LOG_DEBUG); break;
        case 'h': cmd_pf_help(stdout); return CLI_OK;
        case 'p': fprintf(stderr, "coffer pf: -p is accepted for gramine-sgx-pf-crypt compatibility and ignored\n"); break;
        case 'F':
            if (strcmp(optarg, "v1") == 0 || strcmp(optarg, "1") == 0)
                o.version = COFFER_PF_V1;
            else if (strcmp(optarg, "v2") == 0 || strcmp(optarg, "2") == 0)
                o.version = COFFER_PF_V2;
            else
                return cli_usage("pf", "--format takes v1 or v2, not '%s'", optarg);
            break;
        default: return cli_usage("pf", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage("pf", "mode not specified (gen-key, encrypt or decrypt)");
    if (optind + 1 < argc)
        return cli_usage("pf", "unexpected argument '%s'", argv[optind + 1]);
    char mode = argv[optind][0];
    if (mode != 'g' && mode != 'e' && mode != 'd')
        return cli_usage("pf", "unknown mode '%s' (gen-key, encrypt or decrypt)", argv[optind]);
    if (o.key_path == NULL)
        return cli_usage("pf", "wrap key path not specified (-w)");
    if (mode == 'g')
        return gen_key(&o);
    if (o.in == NULL || o.out == NULL)
        return cli_usage("pf", "input or output path not specified (-i, -o)");
    const char *what = mode == 'e' ? "pf encrypt" : "pf decrypt";
    enum coffer_err r = load_key(&o);
    if (r == COFFER_OK)
        r = walk(&o, mode == 'e' ? encrypt_file : decrypt_file, o.in, o.out, 0);
    coffer_secret_free(o.key);
    return r == COFFER_OK ? CLI_OK : cli_fail(what, r);
}
