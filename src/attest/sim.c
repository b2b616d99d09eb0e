/*
 * sim.c — coffer simulation evidence: what a machine with no TEE offers so
 * every code path above attestation can run. It proves nothing about
 * hardware, and everything built on it says "simulation".
 *
 * Format (240 bytes, integers little-endian):
 *   0    8  magic "CFSIMEV1"
 *   8    2  version = 1
 *   10   2  flags = 0 (reserved)
 *   12   4  reserved = 0
 *   16  32  SHA-256 of the running executable (/proc/self/exe)
 *   48  64  report data (the caller's binding, e.g. a TLS key hash)
 *   112 64  platform public key: P-256 x || y, big-endian
 *   176 64  ECDSA P-256 / SHA-256 signature r || s (big-endian) over 0..175
 *
 * Design: the "platform key" is a P-256 key made on first use and kept in
 * a file (mode 0600, written atomically). A verifier trusts the statement
 * only when the embedded public key equals the platform public key it was
 * given (compared in constant time), then checks the signature.
 *
 * Invariants: I1 simulation claims always carry simulation = true. I2 a
 * statement is accepted only under the key the verifier passed in; the key
 * inside the evidence is never trusted on its own. I3 the private key is
 * held in OpenSSL objects and secret memory only, and wiped after use.
 * Trusts: the platform key file's confidentiality (file permissions).
 */
#include "attest_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#define SIM_MAGIC "CFSIMEV1"
#define SIM_SIGNED_SIZE 176
#define SIM_KEY_MAX_SIZE 4096

_Static_assert(8 + 2 + 2 + 4 + 32 + 64 + 64 == SIM_SIGNED_SIZE, "simulation evidence: signed part");
_Static_assert(SIM_SIGNED_SIZE + 64 == COFFER_ATTEST_SIM_SIZE, "simulation evidence: size");

enum coffer_err coffer_attest_sim_key_path(char *buf, size_t size)
{
    const char *p = getenv("COFFER_SIM_PLATFORM_KEY");
    int n;
    if (p != NULL && p[0] != '\0')
        n = snprintf(buf, size, "%s", p);
    else {
        const char *home = getenv("HOME");
        if (home == NULL || home[0] == '\0')
            return COFFER_FAIL(COFFER_E_NOT_FOUND, "simulation key: neither COFFER_SIM_PLATFORM_KEY nor HOME is set");
        n = snprintf(buf, size, "%s/.coffer/sim-platform-key.pem", home);
    }
    if (n < 0 || (size_t)n >= size)
        return COFFER_FAIL(COFFER_E_PATH_TOO_LONG, "simulation key path");
    return COFFER_OK;
}

static enum coffer_err key_xy(EVP_PKEY *pk, uint8_t out[64])
{
    uint8_t pt[65];
    size_t n = 0;
    if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &n) != 1 || n != 65 ||
        pt[0] != 0x04) {
        ERR_clear_error();
        return COFFER_FAIL(COFFER_E_CRYPTO, "simulation key: cannot export the public key");
    }
    memcpy(out, pt + 1, 64);
    return COFFER_OK;
}

static enum coffer_err key_create(const char *path)
{
    enum coffer_err r;
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    BIO *bio = BIO_new(BIO_s_secmem());
    char dir[4096];
    if (pk == NULL || bio == NULL || PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) != 1) {
        r = COFFER_FAIL(COFFER_E_CRYPTO, "simulation key: cannot generate a P-256 key");
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if ((r = coffer_mkdir_p(dir, 0700)) != COFFER_OK)
            goto out;
    }
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0) {
        r = COFFER_FAIL(COFFER_E_CRYPTO, "simulation key: empty PEM");
        goto out;
    }
    r = coffer_file_write_atomic(path, data, (size_t)n, 0600);
    if (r == COFFER_OK)
        coffer_warn("simulation: created a new platform key at %s (no hardware protection)", path);
out:
    BIO_free(bio); /* secmem BIO: cleared on free */
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return r;
}

static enum coffer_err key_load(const char *path, bool create, EVP_PKEY **out)
{
    struct coffer_secret *s = NULL;
    *out = NULL;
    enum coffer_err r = coffer_file_read_secret(path, SIM_KEY_MAX_SIZE, &s);
    if (r == COFFER_E_NOT_FOUND && create) {
        coffer_err_clear();
        if ((r = key_create(path)) != COFFER_OK)
            return r;
        r = coffer_file_read_secret(path, SIM_KEY_MAX_SIZE, &s);
    }
    if (r != COFFER_OK) {
        coffer_err_context("simulation platform key %s", path);
        return r;
    }
    BIO *bio = BIO_new_mem_buf(s->data, (int)s->size);
    EVP_PKEY *pk = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    coffer_secret_free(s);
    ERR_clear_error();
    if (pk == NULL)
        return COFFER_FAIL(COFFER_E_MALFORMED, "simulation platform key %s: not a PEM private key", path);
    char group[32] = "";
    size_t gl = 0;
    if (!EVP_PKEY_is_a(pk, "EC") ||
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &gl) != 1 ||
        strcmp(group, "prime256v1") != 0) {
        EVP_PKEY_free(pk);
        ERR_clear_error();
        return COFFER_FAIL(COFFER_E_MALFORMED, "simulation platform key %s: not a P-256 key", path);
    }
    *out = pk;
    return COFFER_OK;
}

enum coffer_err coffer_attest_sim_key_public(const char *path, bool create, uint8_t out[64])
{
    EVP_PKEY *pk;
    enum coffer_err r = key_load(path, create, &pk);
    if (r == COFFER_OK)
        r = key_xy(pk, out);
    EVP_PKEY_free(pk);
    return r;
}

static enum coffer_err exe_hash(const char *path, uint8_t out[32])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return COFFER_FAIL(errno == ENOENT ? COFFER_E_NOT_FOUND : COFFER_E_IO, "simulation: cannot open %s: %s", path,
                           strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    enum coffer_err r = COFFER_OK;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        r = COFFER_FAIL(COFFER_E_CRYPTO, "simulation: SHA-256");
        goto out;
    }
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        if (EVP_DigestUpdate(md, buf, n) != 1) {
            r = COFFER_FAIL(COFFER_E_CRYPTO, "simulation: SHA-256");
            goto out;
        }
    if (ferror(f)) {
        r = COFFER_FAIL(COFFER_E_IO, "simulation: reading %s", path);
        goto out;
    }
    unsigned int hl = 32;
    if (EVP_DigestFinal_ex(md, out, &hl) != 1)
        r = COFFER_FAIL(COFFER_E_CRYPTO, "simulation: SHA-256");
out:
    EVP_MD_CTX_free(md);
    fclose(f);
    return r;
}

static enum coffer_err sign_raw(EVP_PKEY *pk, const uint8_t *msg, size_t n, uint8_t rs[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t dl = sizeof(der);
    ECDSA_SIG *sig = NULL;
    enum coffer_err r = COFFER_FAIL(COFFER_E_CRYPTO, "simulation: signing failed");
    if (md == NULL || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, pk, NULL) != 1 ||
        EVP_DigestSign(md, der, &dl, msg, n) != 1)
        goto out;
    const unsigned char *p = der;
    if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)dl)) == NULL)
        goto out;
    if (BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32) != 32 || BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32) != 32)
        goto out;
    coffer_err_clear();
    r = COFFER_OK;
out:
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return r;
}

struct coffer_attest_sim_signer {
    EVP_PKEY *key;
    uint8_t head[112]; /* magic, version, exe hash; the report data follows at 48 */
    uint8_t xy[64];
};

enum coffer_err coffer_attest_sim_signer_open(const char *key_path, const char *exe_path,
                                              struct coffer_attest_sim_signer **out)
{
    enum coffer_err r;
    char def[4096];
    *out = NULL;
    if (key_path == NULL) {
        if ((r = coffer_attest_sim_key_path(def, sizeof(def))) != COFFER_OK)
            return r;
        key_path = def;
    }
    struct coffer_attest_sim_signer *s = coffer_calloc(1, sizeof(*s));
    if (s == NULL)
        return COFFER_E_NOMEM;
    memcpy(s->head, SIM_MAGIC, 8);
    s->head[8] = 1; /* version 1 LE; flags and reserved stay zero */
    if ((r = exe_hash(exe_path != NULL ? exe_path : "/proc/self/exe", s->head + 16)) != COFFER_OK ||
        (r = key_load(key_path, true, &s->key)) != COFFER_OK || (r = key_xy(s->key, s->xy)) != COFFER_OK) {
        coffer_attest_sim_signer_free(s);
        return r;
    }
    *out = s;
    return COFFER_OK;
}

enum coffer_err coffer_attest_sim_signer_sign(struct coffer_attest_sim_signer *s, const uint8_t report_data[64],
                                              uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    if (report_data == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "simulation: report data is required");
    uint8_t *ev = coffer_calloc(1, COFFER_ATTEST_SIM_SIZE);
    if (ev == NULL)
        return COFFER_E_NOMEM;
    memcpy(ev, s->head, 48);
    memcpy(ev + 48, report_data, 64);
    memcpy(ev + 112, s->xy, 64);
    enum coffer_err r = sign_raw(s->key, ev, SIM_SIGNED_SIZE, ev + SIM_SIGNED_SIZE);
    if (r != COFFER_OK) {
        coffer_free(ev);
        return r;
    }
    coffer_warn("simulation: made evidence signed by the software platform key (no hardware protection)");
    *out = ev;
    *out_size = COFFER_ATTEST_SIM_SIZE;
    return COFFER_OK;
}

void coffer_attest_sim_signer_free(struct coffer_attest_sim_signer *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->key); /* OpenSSL clears private key material when it frees it */
    coffer_free(s);
}

enum coffer_err coffer_attest_sim_evidence(const char *key_path, const char *exe_path, const uint8_t report_data[64],
                                           uint8_t **out, size_t *out_size)
{
    struct coffer_attest_sim_signer *s;
    *out = NULL;
    *out_size = 0;
    if (report_data == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "simulation: report data is required");
    enum coffer_err r = coffer_attest_sim_signer_open(key_path, exe_path, &s);
    if (r == COFFER_OK)
        r = coffer_attest_sim_signer_sign(s, report_data, out, out_size);
    coffer_attest_sim_signer_free(s);
    return r;
}

struct sim_ev {
    const uint8_t *signed_part;
    uint8_t exe[32];
    uint8_t report_data[64];
    uint8_t key[64];
    const uint8_t *sig;
};

static enum coffer_err sim_parse(const uint8_t *ev, size_t size, struct sim_ev *s)
{
    enum coffer_err r;
    struct coffer_rd rd;
    const uint8_t *magic;
    uint16_t version, flags;
    uint32_t reserved;
    coffer_rd_init(&rd, ev, size);
    if ((r = coffer_rd_bytes(&rd, 8, &magic)) != COFFER_OK)
        return r;
    if (memcmp(magic, SIM_MAGIC, 8) != 0)
        return COFFER_FAIL(COFFER_E_BAD_HEADER, "simulation evidence: bad magic");
    if ((r = coffer_rd_u16le(&rd, &version)) != COFFER_OK || (r = coffer_rd_u16le(&rd, &flags)) != COFFER_OK ||
        (r = coffer_rd_u32le(&rd, &reserved)) != COFFER_OK)
        return r;
    if (version != 1)
        return COFFER_FAIL(COFFER_E_BAD_VERSION, "simulation evidence: version %u", version);
    if (flags != 0 || reserved != 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "simulation evidence: reserved fields are not zero");
    if ((r = coffer_rd_copy(&rd, s->exe, 32)) != COFFER_OK || (r = coffer_rd_copy(&rd, s->report_data, 64)) != COFFER_OK ||
        (r = coffer_rd_copy(&rd, s->key, 64)) != COFFER_OK || (r = coffer_rd_bytes(&rd, 64, &s->sig)) != COFFER_OK)
        return r;
    s->signed_part = ev;
    return coffer_rd_expect_end(&rd);
}

static void fill(const struct sim_ev *s, struct coffer_attest_claims *c)
{
    c->kind = COFFER_ATTEST_KIND_SIM;
    c->simulation = true;
    memcpy(c->report_data, s->report_data, 64);
    memcpy(c->exe_sha256, s->exe, 32);
    memcpy(c->sim_platform_key, s->key, 64);
    c->tcb_status = COFFER_ATTEST_TCB_NONE;
}

enum coffer_err coffer_attest__sim_decode(const uint8_t *ev, size_t size, struct coffer_attest_claims *out)
{
    struct sim_ev s;
    memset(out, 0, sizeof(*out));
    enum coffer_err r = sim_parse(ev, size, &s);
    if (r != COFFER_OK)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_PARSE, r);
    fill(&s, out);
    return COFFER_OK;
}

/* The trusted platform key as an EVP_PKEY, made once and kept: a verifier
 * (the coordinator, per activation) sees the same key every time, and
 * importing and checking the point cost as much as the signature check.
 * Only a key equal to the caller's trusted key gets here. */
static pthread_mutex_t trusted_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t trusted_xy[64];
static EVP_PKEY *trusted_pk;

static enum coffer_err trusted_key(const uint8_t xy[64], EVP_PKEY **out)
{
    pthread_mutex_lock(&trusted_mu);
    bool hit = trusted_pk != NULL && memcmp(trusted_xy, xy, 64) == 0 && EVP_PKEY_up_ref(trusted_pk) == 1;
    *out = hit ? trusted_pk : NULL;
    pthread_mutex_unlock(&trusted_mu);
    if (hit)
        return COFFER_OK;
    enum coffer_err r = coffer_attest__p256_key(xy, out);
    if (r != COFFER_OK)
        return r;
    pthread_mutex_lock(&trusted_mu);
    if (EVP_PKEY_up_ref(*out) == 1) {
        EVP_PKEY_free(trusted_pk);
        trusted_pk = *out;
        memcpy(trusted_xy, xy, 64);
    }
    pthread_mutex_unlock(&trusted_mu);
    return COFFER_OK;
}

enum coffer_err coffer_attest__sim_verify(const uint8_t *ev, size_t size, const struct coffer_attest_verify_opts *opts,
                                          struct coffer_attest_claims *out)
{
    struct sim_ev s;
    memset(out, 0, sizeof(*out));
    enum coffer_err r = sim_parse(ev, size, &s);
    if (r != COFFER_OK)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_PARSE, r);
    if (opts->sim_platform_key == NULL)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_SIM_KEY,
                                   COFFER_FAIL(COFFER_E_CERT, "simulation: no trusted platform key was given"));
    if (!coffer_ct_eq(opts->sim_platform_key, s.key, 64))
        return coffer_attest__fail(
            out, COFFER_ATTEST_STEP_SIM_KEY,
            COFFER_FAIL(COFFER_E_CERT, "simulation: the statement is not from the trusted platform key"));
    EVP_PKEY *pk;
    if ((r = trusted_key(s.key, &pk)) != COFFER_OK)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_SIM_SIGNATURE, r);
    r = coffer_attest__ecdsa_verify(pk, "SHA256", s.sig, 32, false, s.signed_part, SIM_SIGNED_SIZE);
    EVP_PKEY_free(pk);
    if (r != COFFER_OK)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_SIM_SIGNATURE,
                                   COFFER_FAIL(r, "simulation: the statement's signature does not verify"));
    fill(&s, out);
    coffer_warn("simulation evidence verified: it gives NO hardware protection");
    return COFFER_OK;
}
