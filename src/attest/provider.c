/*
 * provider.c — evidence for the running process: SGX through Gramine's
 * /dev/attestation, TDX and SEV-SNP guests through Linux configfs-tsm
 * (/sys/kernel/config/tsm/report), and coffer simulation.
 *
 * Design: AUTO looks for the hardware interfaces (Gramine first, then
 * configfs-tsm). $COFFER_ATTEST_PROVIDER (auto|gramine|tsm|simulation)
 * overrides detection. Simulation is never chosen silently: AUTO picks it
 * only when the override says so, and a process that asked for hardware
 * evidence and cannot get it fails instead of falling back.
 *
 *   Gramine: write 64 bytes to /dev/attestation/user_report_data, read
 *   /dev/attestation/quote (a DCAP quote when attestation_type is "dcap").
 *   configfs-tsm: mkdir report/<unique>, write 64 bytes to inblob, read
 *   outblob (and, for an SEV-SNP report, auxblob: the host's certificate
 *   table, appended to make SNP extended evidence), check generation did not
 *   move (no one else wrote inblob in between), rmdir.
 *
 * Invariants: I1 no fallback from a hardware provider to simulation.
 * I2 the configfs report folder is removed on every path.
 * Trusts: the kernel / Gramine interfaces it talks to.
 */
#include "attest_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GRAMINE_DIR "/dev/attestation"
#define TSM_DIR "/sys/kernel/config/tsm/report"

/* $COFFER_GRAMINE_ATTESTATION_DIR and $COFFER_TSM_REPORT_DIR move the two
 * interfaces (non-standard mounts, and tests with stand-in folders). */
static const char *gramine_dir(void)
{
    const char *e = getenv("COFFER_GRAMINE_ATTESTATION_DIR");
    return e != NULL && e[0] != '\0' ? e : GRAMINE_DIR;
}

static const char *tsm_dir(void)
{
    const char *e = getenv("COFFER_TSM_REPORT_DIR");
    return e != NULL && e[0] != '\0' ? e : TSM_DIR;
}
#define EVIDENCE_MAX (64u * 1024u)

static const char *const provider_names[] = {"auto", "gramine", "tsm", "simulation"};

const char *coffer_attest_provider_name(enum coffer_attest_provider p)
{
    return (unsigned)p < 4 ? provider_names[p] : "unknown";
}

enum coffer_err coffer_attest_provider_parse(const char *s, enum coffer_attest_provider *out)
{
    for (int i = 0; i < 4; i++)
        if (s != NULL && strcmp(s, provider_names[i]) == 0) {
            *out = (enum coffer_attest_provider)i;
            return COFFER_OK;
        }
    if (s != NULL && strcmp(s, "sim") == 0) {
        *out = COFFER_ATTEST_PROVIDER_SIM;
        return COFFER_OK;
    }
    return COFFER_FAIL(COFFER_E_INVALID_ARG, "attestation provider \"%.32s\": want auto, gramine, tsm or simulation",
                       s != NULL ? s : "");
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

enum coffer_err coffer_attest_provider_detect(enum coffer_attest_provider *out)
{
    const char *env = getenv("COFFER_ATTEST_PROVIDER");
    if (env != NULL && env[0] != '\0') {
        enum coffer_err r = coffer_attest_provider_parse(env, out);
        if (r != COFFER_OK || *out != COFFER_ATTEST_PROVIDER_AUTO)
            return r;
    }
    char p[4096];
    snprintf(p, sizeof(p), "%s/quote", gramine_dir());
    if (exists(p)) {
        *out = COFFER_ATTEST_PROVIDER_GRAMINE;
        return COFFER_OK;
    }
    if (exists(tsm_dir())) {
        *out = COFFER_ATTEST_PROVIDER_TSM;
        return COFFER_OK;
    }
    return COFFER_FAIL(COFFER_E_NOT_FOUND,
                       "no TEE found (no %s, no %s); set COFFER_ATTEST_PROVIDER=simulation to run without hardware "
                       "protection",
                       p, tsm_dir());
}

static enum coffer_err write_file(const char *path, const void *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return COFFER_FAIL(errno == ENOENT ? COFFER_E_NOT_FOUND : COFFER_E_IO, "cannot open %s: %s", path,
                           strerror(errno));
    enum coffer_err r = coffer_write_all(fd, data, size);
    if (close(fd) != 0 && r == COFFER_OK)
        r = COFFER_FAIL(COFFER_E_IO, "closing %s: %s", path, strerror(errno));
    return r;
}

/* Read a kernel or Gramine pseudo-file to its end. configfs and Gramine's
 * pseudo-fs report a size of 0 in stat, so coffer_file_read_all (which
 * trusts st_size) would read nothing: read until EOF, at most max bytes. */
static enum coffer_err read_pseudo(const char *path, size_t max, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return COFFER_FAIL(errno == ENOENT ? COFFER_E_NOT_FOUND : COFFER_E_IO, "cannot open %s: %s", path,
                           strerror(errno));
    uint8_t *buf = coffer_malloc(max + 1);
    size_t n = 0;
    enum coffer_err r = buf == NULL ? COFFER_E_NOMEM : COFFER_OK;
    while (r == COFFER_OK) {
        ssize_t k = read(fd, buf + n, max + 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            r = COFFER_FAIL(COFFER_E_IO, "reading %s: %s", path, strerror(errno));
        else if (k == 0)
            break;
        else if ((n += (size_t)k) > max)
            r = COFFER_FAIL(COFFER_E_TOO_LARGE, "%s is over %zu bytes", path, max);
    }
    close(fd);
    if (r != COFFER_OK) {
        coffer_free(buf);
        return r;
    }
    *out = buf;
    *out_size = n;
    return COFFER_OK;
}

static enum coffer_err read_small(const char *path, char *buf, size_t size)
{
    uint8_t *d;
    size_t n;
    enum coffer_err r = read_pseudo(path, 4096, &d, &n);
    if (r != COFFER_OK)
        return r;
    size_t l = n < size - 1 ? n : size - 1;
    memcpy(buf, d, l);
    buf[l] = '\0';
    while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == ' '))
        buf[--l] = '\0';
    coffer_free(d);
    return COFFER_OK;
}

static enum coffer_err gramine_evidence(const uint8_t rd[64], uint8_t **out, size_t *out_size)
{
    char type[64] = "", p[4096];
    enum coffer_err r;
    const char *dir = gramine_dir();
    snprintf(p, sizeof(p), "%s/attestation_type", dir);
    if (read_small(p, type, sizeof(type)) == COFFER_OK && strcmp(type, "dcap") != 0)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "Gramine attestation type \"%s\" (coffer needs dcap)", type);
    coffer_err_clear();
    snprintf(p, sizeof(p), "%s/user_report_data", dir);
    if ((r = write_file(p, rd, 64)) != COFFER_OK)
        return r;
    snprintf(p, sizeof(p), "%s/quote", dir);
    if ((r = read_pseudo(p, EVIDENCE_MAX, out, out_size)) != COFFER_OK)
        coffer_err_context("Gramine quote");
    return r;
}

/* SEV-SNP: append the host's certificate table (auxblob) to the report, so
 * the VCEK travels with it ("SNP extended evidence"). Missing or empty
 * auxblob (TDX, or a host that attached no certificates): the bare report.
 * A table that does not parse is left out with a warning: the report alone
 * still verifies where the verifier has the VCEK. */
static enum coffer_err tsm_append_auxblob(const char *dir, uint8_t **ev, size_t *ev_size)
{
    char path[4200];
    uint8_t *aux = NULL;
    size_t an = 0;
    if (*ev_size != COFFER_ATTEST_SNP_REPORT_SIZE || coffer_attest_evidence_kind(*ev, *ev_size) != COFFER_ATTEST_KIND_SNP)
        return COFFER_OK;
    snprintf(path, sizeof(path), "%s/auxblob", dir);
    enum coffer_err r = read_pseudo(path, COFFER_ATTEST_SNP_CERTS_MAX, &aux, &an);
    struct coffer_attest_snp_cert_table t;
    if (r == COFFER_E_NOT_FOUND || (r == COFFER_OK && an == 0)) {
        r = COFFER_OK; /* no auxblob (older kernel) or no certificates from the host */
    } else if (r == COFFER_E_TOO_LARGE || (r == COFFER_OK && coffer_attest_snp_cert_table_parse(aux, an, &t) != COFFER_OK)) {
        coffer_log(COFFER_LOG_WARN, "configfs-tsm: auxblob left out, the evidence is the bare SNP report: %s",
                   coffer_err_detail());
        r = COFFER_OK;
    } else if (r != COFFER_OK) {
        coffer_err_context("configfs-tsm auxblob");
    } else {
        uint8_t *both = coffer_malloc(*ev_size + an);
        if (both == NULL) {
            r = COFFER_E_NOMEM;
        } else {
            memcpy(both, *ev, *ev_size);
            memcpy(both + *ev_size, aux, an);
            coffer_free(*ev);
            *ev = both;
            *ev_size += an;
        }
    }
    if (r == COFFER_OK)
        coffer_err_clear();
    coffer_free(aux);
    return r;
}

#ifdef COFFER_TESTING
static void (*tsm_hook)(const char *, void *);
static void *tsm_hook_arg;

void coffer_attest_test_tsm_hook(void (*hook)(const char *report_dir, void *arg), void *arg)
{
    tsm_hook = hook;
    tsm_hook_arg = arg;
}
#endif

static enum coffer_err tsm_evidence(const uint8_t rd[64], uint8_t **out, size_t *out_size)
{
    char dir[4096], path[4200], gen1[32] = "", gen2[32] = "";
    enum coffer_err r;
    snprintf(dir, sizeof(dir), "%s/coffer-%ld-%lu", tsm_dir(), (long)getpid(), (unsigned long)coffer_now_ns());
    if (mkdir(dir, 0700) != 0)
        return COFFER_FAIL(errno == EACCES || errno == EPERM ? COFFER_E_PERM : COFFER_E_IO,
                           "configfs-tsm: cannot create %s: %s", dir, strerror(errno));
#ifdef COFFER_TESTING
    if (tsm_hook != NULL)
        tsm_hook(dir, tsm_hook_arg);
#endif
    snprintf(path, sizeof(path), "%s/inblob", dir);
    if ((r = write_file(path, rd, 64)) != COFFER_OK)
        goto out;
    snprintf(path, sizeof(path), "%s/generation", dir);
    (void)read_small(path, gen1, sizeof(gen1));
    snprintf(path, sizeof(path), "%s/outblob", dir);
    if ((r = read_pseudo(path, EVIDENCE_MAX, out, out_size)) != COFFER_OK) {
        coffer_err_context("configfs-tsm outblob");
        goto out;
    }
    if ((r = tsm_append_auxblob(dir, out, out_size)) != COFFER_OK)
        goto fail;
    snprintf(path, sizeof(path), "%s/generation", dir);
    (void)read_small(path, gen2, sizeof(gen2));
    if (strcmp(gen1, gen2) != 0) {
        r = COFFER_FAIL(COFFER_E_STATE, "configfs-tsm: report changed while reading (generation %s -> %s)", gen1, gen2);
        goto fail;
    }
    goto out;
fail:
    coffer_free(*out);
    *out = NULL;
    *out_size = 0;
out:
    rmdir(dir);
    return r;
}

enum coffer_err coffer_attest_provider_evidence(enum coffer_attest_provider p, const uint8_t report_data[64],
                                                uint8_t **out, size_t *out_size)
{
    enum coffer_err r;
    *out = NULL;
    *out_size = 0;
    if (report_data == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "evidence: report data is required");
    if (p == COFFER_ATTEST_PROVIDER_AUTO && (r = coffer_attest_provider_detect(&p)) != COFFER_OK)
        return r;
    switch (p) {
    case COFFER_ATTEST_PROVIDER_GRAMINE:
        return gramine_evidence(report_data, out, out_size);
    case COFFER_ATTEST_PROVIDER_TSM:
        return tsm_evidence(report_data, out, out_size);
    case COFFER_ATTEST_PROVIDER_SIM:
        return coffer_attest_sim_evidence(NULL, NULL, report_data, out, out_size);
    default:
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "unknown attestation provider %d", (int)p);
    }
}
