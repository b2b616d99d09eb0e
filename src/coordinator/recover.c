/*
 * recover.c — recovery keys as MarbleRun has them (marblerun.md §1c
 * "Sealed state and recovery").
 *
 * The sealed state is encrypted under a data key (DEK), itself sealed to
 * the platform (sealed_key). When the platform's sealing key is gone (a
 * new machine, a new CPU, a changed simulation key), the coordinator
 * starts in recovery mode; the holders of the manifest's RecoveryKeys
 * bring the DEK back:
 *  - one key: the recovery secret is the DEK itself;
 *  - several keys, RecoveryThreshold 0 (or = the number of keys): each key
 *    gets a random 32-byte share, the DEK is the XOR of all (all of N);
 *  - RecoveryThreshold t < N: Shamir's scheme over GF(2^8), byte by byte;
 *    a share is x || y[32], any t of them give the DEK (t of N).
 * Each secret is returned once, at manifest set (or when an update is
 * applied), encrypted with RSA-OAEP-SHA256 to its key. To recover, a key
 * holder decrypts theirs and posts it with a PKCS#1 v1.5 SHA-256 signature
 * made with the same private key. When enough have come in, the DEK they
 * make must open the sealed state (AES-GCM authenticates it), and every
 * signature must verify under a distinct RecoveryKey of the recovered
 * manifest; only then is the state loaded and the DEK sealed to this
 * platform. A wrong secret discards all uploaded ones (they are kept in
 * memory only).
 *
 * recovery.json (plain, no secret): how many secrets are needed and how
 * they combine, so the coordinator can say "remaining" before it can read
 * the state. Tampering with it can only make a recovery fail.
 *
 * Trusts: nothing uploaded until the DEK authenticates the state and the
 * signatures verify against the keys inside it.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "coord_int.h"

#define DEK_SIZE 32

enum mode { MODE_SINGLE, MODE_XOR, MODE_SHAMIR };
static const char *const mode_names[] = {"single", "xor", "shamir"};

/* ---- GF(2^8), AES polynomial x^8 + x^4 + x^3 + x + 1 (not secret-timing
 * sensitive beyond the recovery path, which runs a handful of times) */

static uint8_t gf_mul(uint8_t a, uint8_t b)
{
    uint8_t p = 0;
    for (int i = 0; i < 8; i++) {
        uint8_t mask = (uint8_t)-(b & 1);
        p ^= a & mask;
        uint8_t hi = (uint8_t)-(a >> 7);
        a = (uint8_t)((a << 1) ^ (0x1b & hi));
        b >>= 1;
    }
    return p;
}

static uint8_t gf_inv(uint8_t a)
{
    uint8_t r = 1; /* a^254 */
    for (int i = 0; i < 254; i++)
        r = gf_mul(r, a);
    return r;
}

/* shares[i] = x_i || f(x_i), x_i = i + 1, f of degree t - 1 with f(0) = secret. */
static enum coffer_err shamir_split(const uint8_t *secret, size_t n, size_t t, uint8_t (*shares)[DEK_SIZE + 1])
{
    uint8_t coef[COORD_RECOVERY_SHARES_MAX];
    enum coffer_err r = COFFER_OK;
    for (size_t b = 0; b < DEK_SIZE && r == COFFER_OK; b++) {
        coef[0] = secret[b];
        if ((r = coffer_random(coef + 1, t - 1)) != COFFER_OK)
            break;
        for (size_t i = 0; i < n; i++) {
            uint8_t x = (uint8_t)(i + 1), y = 0;
            for (size_t k = t; k-- > 0;) /* Horner */
                y = (uint8_t)(gf_mul(y, x) ^ coef[k]);
            shares[i][0] = x;
            shares[i][1 + b] = y;
        }
    }
    coffer_memzero(coef, sizeof(coef));
    return r;
}

static enum coffer_err shamir_join(struct recovery_share *s, size_t t, uint8_t out[DEK_SIZE])
{
    for (size_t i = 0; i < t; i++)
        for (size_t j = 0; j < i; j++)
            if (s[i].secret->data[0] == s[j].secret->data[0] || s[i].secret->data[0] == 0)
                return COFFER_FAIL(COFFER_E_AUTH, "two recovery secrets are the same share");
    memset(out, 0, DEK_SIZE);
    for (size_t i = 0; i < t; i++) {
        uint8_t xi = s[i].secret->data[0], l = 1; /* Lagrange basis at 0 */
        for (size_t j = 0; j < t; j++) {
            if (j == i)
                continue;
            uint8_t xj = s[j].secret->data[0];
            l = gf_mul(l, gf_mul(xj, gf_inv((uint8_t)(xj ^ xi))));
        }
        for (size_t b = 0; b < DEK_SIZE; b++)
            out[b] ^= gf_mul(l, s[i].secret->data[1 + b]);
    }
    return COFFER_OK;
}

/* ---- RSA */

static enum coffer_err load_key(const char *pem, EVP_PKEY **out)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    *out = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return *out ? COFFER_OK : COFFER_FAIL(COFFER_E_CRYPTO, "a recovery key does not load");
}

static enum coffer_err oaep_encrypt(const char *pem, const uint8_t *in, size_t n, json_t *into, const char *name)
{
    EVP_PKEY *k;
    enum coffer_err r = load_key(pem, &k);
    if (r != COFFER_OK)
        return r;
    EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(k, NULL);
    size_t out_n = 0;
    uint8_t *out = NULL;
    if (x == NULL || EVP_PKEY_encrypt_init(x) != 1 || EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(x, EVP_sha256()) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(x, EVP_sha256()) != 1 ||
        EVP_PKEY_encrypt(x, NULL, &out_n, in, n) != 1 || (out = coffer_malloc(out_n)) == NULL ||
        EVP_PKEY_encrypt(x, out, &out_n, in, n) != 1)
        r = out == NULL && out_n > 0 ? COFFER_E_NOMEM : coord_ossl("RSA-OAEP encryption to a recovery key");
    else if (coord_json_set_b64(into, name, out, out_n) != 0)
        r = COFFER_E_NOMEM;
    coffer_free(out);
    EVP_PKEY_CTX_free(x);
    EVP_PKEY_free(k);
    return r;
}

static bool signed_by(const char *pem, const struct recovery_share *s)
{
    EVP_PKEY *k;
    if (load_key(pem, &k) != COFFER_OK)
        return false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
              EVP_DigestVerify(md, s->sig, s->sig_size, s->secret->data, s->secret->size) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    return ok;
}

/* ---- making recovery secrets */

enum coffer_err coord_recovery_secrets(struct coffer_coord *c, json_t **out)
{
    *out = json_object();
    if (*out == NULL)
        return COFFER_E_NOMEM;
    const struct coffer_manifest *m = c->manifest;
    size_t n = m->recovery_keys_count;
    char *path = c->seal_dir ? coord_path(c, "recovery.json") : NULL;
    if (c->seal_dir != NULL && path == NULL)
        return COFFER_E_NOMEM;
    if (n == 0) {
        if (path != NULL)
            unlink(path);
        coffer_free(path);
        return COFFER_OK;
    }
    enum mode mode = n == 1 ? MODE_SINGLE : m->recovery_threshold == 0 || m->recovery_threshold == n ? MODE_XOR
                                                                                                      : MODE_SHAMIR;
    size_t needed = mode == MODE_SINGLE ? 1 : mode == MODE_XOR ? n : m->recovery_threshold;
    size_t share_n = mode == MODE_SHAMIR ? DEK_SIZE + 1 : DEK_SIZE;
    struct coffer_secret *buf;
    enum coffer_err r = n <= COORD_RECOVERY_SHARES_MAX
                            ? coffer_secret_new(n * (DEK_SIZE + 1), &buf)
                            : COFFER_FAIL(COFFER_E_JSON, "$.RecoveryKeys: at most %d keys", COORD_RECOVERY_SHARES_MAX);
    if (r != COFFER_OK) {
        coffer_free(path);
        return r;
    }
    uint8_t(*shares)[DEK_SIZE + 1] = (uint8_t(*)[DEK_SIZE + 1])buf->data;
    if (mode == MODE_SINGLE) {
        memcpy(shares[0], c->dek->data, DEK_SIZE);
    } else if (mode == MODE_XOR) {
        memcpy(shares[n - 1], c->dek->data, DEK_SIZE);
        for (size_t i = 0; i + 1 < n && r == COFFER_OK; i++) {
            r = coffer_random(shares[i], DEK_SIZE);
            for (size_t b = 0; b < DEK_SIZE; b++)
                shares[n - 1][b] ^= shares[i][b];
        }
    } else {
        r = shamir_split(c->dek->data, n, needed, shares);
    }
    for (size_t i = 0; i < n && r == COFFER_OK; i++)
        r = oaep_encrypt(m->recovery_keys[i].public_key_pem, shares[i], share_n, *out, m->recovery_keys[i].name);
    coffer_secret_free(buf);
    if (r == COFFER_OK && path != NULL) {
        json_t *meta = json_pack("{s:i,s:s,s:I,s:I}", "version", 1, "mode", mode_names[mode], "needed",
                                 (json_int_t)needed, "keys", (json_int_t)n);
        char *s = NULL;
        size_t len = 0;
        r = meta ? coffer_json_dump(meta, &s, &len) : COFFER_E_NOMEM;
        if (r == COFFER_OK)
            r = coffer_file_write_atomic(path, s, len, 0600);
        coffer_free(s);
        json_decref(meta);
    }
    coffer_free(path);
    if (r != COFFER_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return r;
}

void coord_recovery_clear(struct coffer_coord *c)
{
    for (size_t i = 0; i < c->shares_count; i++) {
        coffer_secret_free(c->shares[i].secret);
        coffer_free(c->shares[i].sig);
    }
    memset(c->shares, 0, sizeof(c->shares));
    c->shares_count = 0;
}

/* ---- recovering */

static enum coffer_err read_meta(struct coffer_coord *c, enum mode *mode, size_t *needed)
{
    char *path = coord_path(c, "recovery.json");
    if (path == NULL)
        return COFFER_E_NOMEM;
    uint8_t *d;
    size_t n;
    enum coffer_err r = coffer_file_read_all(path, 4096, &d, &n);
    coffer_free(path);
    if (r == COFFER_E_NOT_FOUND)
        return COFFER_FAIL(COFFER_E_STATE, "the sealed state has no recovery keys (its manifest had none): it cannot "
                           "be recovered; set a new manifest to start over");
    if (r != COFFER_OK)
        return r;
    json_t *o = NULL;
    const char *m = NULL;
    int64_t k = 0;
    r = coffer_json_parse(d, n, 4096, &o);
    coffer_free(d);
    if (r == COFFER_OK && (r = coffer_json_get_string(o, "$", "mode", true, &m)) == COFFER_OK &&
        (r = coffer_json_get_int(o, "$", "needed", true, &k)) == COFFER_OK) {
        if (k < 1 || k > COORD_RECOVERY_SHARES_MAX)
            r = COFFER_FAIL(COFFER_E_CORRUPTED, "recovery.json: needed %lld is out of range", (long long)k);
        else if (strcmp(m, "single") == 0)
            *mode = MODE_SINGLE;
        else if (strcmp(m, "xor") == 0)
            *mode = MODE_XOR;
        else if (strcmp(m, "shamir") == 0)
            *mode = MODE_SHAMIR;
        else
            r = COFFER_FAIL(COFFER_E_CORRUPTED, "recovery.json: unknown mode \"%s\"", m);
        *needed = (size_t)k;
    }
    json_decref(o);
    if (r != COFFER_OK)
        coffer_err_context("recovery.json");
    return r;
}

/* The recovered manifest's RecoveryKeys: every share signed by a distinct one. */
static enum coffer_err check_signatures(struct coffer_coord *c, const struct coffer_secret *plain, json_t **names)
{
    json_t *o = NULL;
    uint8_t *raw = NULL;
    size_t raw_n = 0;
    struct coffer_manifest *m = NULL;
    enum coffer_err r = coffer_json_parse(plain->data, plain->size, COORD_STATE_MAX, &o);
    if (r == COFFER_OK && (r = coord_json_get_b64(o, "$", "manifest", &raw, &raw_n)) == COFFER_OK)
        r = coffer_manifest_parse(raw, raw_n, &m);
    json_decref(o);
    coffer_free(raw);
    if (r != COFFER_OK) {
        coffer_err_context("the recovered state");
        return r;
    }
    bool used[COORD_RECOVERY_SHARES_MAX] = {false};
    *names = json_array();
    for (size_t i = 0; r == COFFER_OK && i < c->shares_count; i++) {
        size_t k = 0;
        while (k < m->recovery_keys_count && (used[k] || !signed_by(m->recovery_keys[k].public_key_pem, &c->shares[i])))
            k++;
        if (k == m->recovery_keys_count) {
            r = COFFER_FAIL(COFFER_E_SIGNATURE, "recovery secret %zu is not signed by a recovery key of the manifest "
                            "(or by one that signed another)", i + 1);
        } else {
            used[k] = true;
            json_array_append_new(*names, json_string(m->recovery_keys[k].name));
        }
    }
    coffer_manifest_free(m);
    if (r != COFFER_OK) {
        json_decref(*names);
        *names = NULL;
    }
    return r;
}

/* All secrets are in: make the DEK, open the state, check signatures,
 * load it, seal the DEK to this platform. */
static enum coffer_err finish(struct coffer_coord *c, enum mode mode, size_t needed)
{
    struct coffer_secret *dek = NULL, *plain = NULL;
    uint8_t *blob = NULL;
    size_t blob_n = 0;
    json_t *names = NULL;
    char *state_path = coord_path(c, "sealed_state");
    enum coffer_err r = state_path ? coffer_secret_new(DEK_SIZE, &dek) : COFFER_E_NOMEM;
    if (r != COFFER_OK)
        goto out;
    if (mode == MODE_SHAMIR) {
        r = shamir_join(c->shares, needed, dek->data);
    } else {
        memset(dek->data, 0, DEK_SIZE);
        for (size_t i = 0; i < needed; i++)
            for (size_t b = 0; b < DEK_SIZE; b++)
                dek->data[b] ^= c->shares[i].secret->data[b];
    }
    if (r != COFFER_OK || (r = coffer_file_read_all(state_path, COORD_STATE_MAX, &blob, &blob_n)) != COFFER_OK)
        goto out;
    if ((r = coord_unseal(dek->data, "COFFSEAL", blob, blob_n, &plain)) == COFFER_E_AUTH) {
        r = COFFER_FAIL(COFFER_E_AUTH, "the recovery secrets do not open the sealed state; they were all discarded: "
                        "upload the right ones again");
        goto out;
    }
    if (r != COFFER_OK || (r = check_signatures(c, plain, &names)) != COFFER_OK)
        goto out;
    coffer_secret_free(c->dek);
    c->dek = dek;
    dek = NULL;
    if ((r = coord_load_sealed(c)) != COFFER_OK || (r = coord_write_sealed_key(c)) != COFFER_OK) {
        c->state = COFFER_COORD_RECOVERY;
        goto out;
    }
    c->tls_root_gen++;
    if ((r = coord_log(c, "recovered", json_pack("{s:o}", "recoveryKeys", names))) == COFFER_OK)
        r = coord_commit(c);
    names = NULL;
    if (r == COFFER_OK)
        coffer_info("recovered: the state is open again and its key is sealed to this platform");
out:
    json_decref(names);
    coord_recovery_clear(c);
    coffer_secret_free(dek);
    coffer_secret_free(plain);
    coffer_free(blob);
    coffer_free(state_path);
    return r;
}

/* ---- the ephemeral key (MarbleRun's GET /recover/public-key) */

enum coffer_err coffer_coord_recovery_public_key(struct coffer_coord *c, uint8_t **der, size_t *size)
{
    *der = NULL;
    *size = 0;
    pthread_rwlock_rdlock(&c->cfg);
    bool recovering = c->state == COFFER_COORD_RECOVERY;
    bool have = c->recovery_eph != NULL;
    pthread_rwlock_unlock(&c->cfg);
    if (!recovering)
        return COFFER_FAIL(COFFER_E_STATE, "the coordinator is not in recovery mode");
    EVP_PKEY *k = NULL;
    if (!have && (k = EVP_RSA_gen(4096)) == NULL) /* seconds: not under the lock */
        return coord_ossl("generating the ephemeral RSA-4096 recovery key");
    pthread_rwlock_wrlock(&c->cfg);
    enum coffer_err r = COFFER_OK;
    if (c->state != COFFER_COORD_RECOVERY) {
        r = COFFER_FAIL(COFFER_E_STATE, "the coordinator is not in recovery mode");
    } else {
        if (c->recovery_eph == NULL) {
            c->recovery_eph = k;
            k = NULL;
        }
        int n = i2d_PUBKEY(c->recovery_eph, NULL);
        uint8_t *w = n > 0 ? coffer_malloc((size_t)n) : NULL;
        if (w == NULL) {
            r = n > 0 ? COFFER_E_NOMEM : coord_ossl("encoding the ephemeral recovery key");
        } else {
            *der = w;
            *size = (size_t)i2d_PUBKEY(c->recovery_eph, &w);
        }
    }
    pthread_rwlock_unlock(&c->cfg);
    EVP_PKEY_free(k);
    return r;
}

/* A secret RSA-OAEP-SHA256-encrypted to the ephemeral key. Caller holds cfg. */
static enum coffer_err eph_decrypt(struct coffer_coord *c, const uint8_t *in, size_t n, struct coffer_secret **out)
{
    *out = NULL;
    if (c->recovery_eph == NULL)
        return COFFER_FAIL(COFFER_E_JSON, "$.recoverySecret: %zu bytes is no recovery secret, and no ephemeral key was "
                           "handed out to encrypt one (GET /api/v2/recover/public-key)", n);
    EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(c->recovery_eph, NULL);
    size_t on = 0;
    enum coffer_err r = COFFER_OK;
    if (x == NULL || EVP_PKEY_decrypt_init(x) != 1 || EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(x, EVP_sha256()) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(x, EVP_sha256()) != 1 ||
        EVP_PKEY_decrypt(x, NULL, &on, in, n) != 1)
        r = COFFER_FAIL(COFFER_E_JSON, "$.recoverySecret: failed to decrypt the recovery secret with the ephemeral key");
    if (r == COFFER_OK && (r = coffer_secret_new(on, out)) == COFFER_OK) {
        if (EVP_PKEY_decrypt(x, (*out)->data, &on, in, n) != 1) {
            r = COFFER_FAIL(COFFER_E_JSON, "$.recoverySecret: failed to decrypt the recovery secret with the ephemeral key");
            coffer_secret_free(*out);
            *out = NULL;
        } else {
            (*out)->size = on;
        }
    }
    EVP_PKEY_CTX_free(x);
    ERR_clear_error();
    return r;
}

enum coffer_err coffer_coord_recover(struct coffer_coord *c, const uint8_t *secret, size_t secret_size,
                                     const uint8_t *sig, size_t sig_size, json_t **out)
{
    *out = NULL;
    pthread_rwlock_wrlock(&c->cfg);
    enum mode mode = MODE_SINGLE;
    size_t needed = 0;
    enum coffer_err r = COFFER_OK;
    struct coffer_secret *plain = NULL;
    /* MarbleRun's rule: 16, 32 or 33 bytes is a secret, anything else was
     * encrypted to the ephemeral key */
    if (c->state == COFFER_COORD_RECOVERY && secret_size != 16 && secret_size != DEK_SIZE &&
        secret_size != DEK_SIZE + 1) {
        if ((r = eph_decrypt(c, secret, secret_size, &plain)) == COFFER_OK) {
            secret = plain->data;
            secret_size = plain->size;
        }
    }
    if (r != COFFER_OK)
        ;
    else if (c->state != COFFER_COORD_RECOVERY || c->seal_dir == NULL)
        r = COFFER_FAIL(COFFER_E_STATE, "the coordinator is not in recovery mode");
    else if ((r = read_meta(c, &mode, &needed)) != COFFER_OK)
        ;
    else if (secret_size != (mode == MODE_SHAMIR ? DEK_SIZE + 1u : (size_t)DEK_SIZE))
        r = COFFER_FAIL(COFFER_E_JSON, "$.recoverySecret: %zu bytes; a %s recovery secret is %d", secret_size,
                        mode_names[mode], mode == MODE_SHAMIR ? DEK_SIZE + 1 : DEK_SIZE);
    else if (sig_size == 0 || sig_size > 2048)
        r = COFFER_FAIL(COFFER_E_JSON, "$.recoverySecretSignature: expected an RSA signature");
    for (size_t i = 0; r == COFFER_OK && i < c->shares_count; i++)
        if (coffer_ct_eq(c->shares[i].secret->data, secret, secret_size))
            r = COFFER_FAIL(COFFER_E_STATE, "this recovery secret was already uploaded");
    struct recovery_share *s = &c->shares[c->shares_count];
    if (r == COFFER_OK && c->shares_count >= needed)
        r = COFFER_FAIL(COFFER_E_STATE, "enough recovery secrets are already in");
    if (r == COFFER_OK && (r = coffer_secret_new(secret_size, &s->secret)) == COFFER_OK) {
        memcpy(s->secret->data, secret, secret_size);
        if ((s->sig = coffer_malloc(sig_size)) == NULL) {
            coffer_secret_free(s->secret);
            s->secret = NULL;
            r = COFFER_E_NOMEM;
        } else {
            memcpy(s->sig, sig, sig_size);
            s->sig_size = sig_size;
            c->shares_count++;
        }
    }
    if (r == COFFER_OK && c->shares_count < needed) {
        *out = json_pack("{s:I,s:s}", "remaining", (json_int_t)(needed - c->shares_count), "message",
                         "Recovery secret accepted; more are needed.");
    } else if (r == COFFER_OK && (r = finish(c, mode, needed)) == COFFER_OK) {
        *out = json_pack("{s:i,s:s}", "remaining", 0, "message", "Recovery successful.");
    }
    if (r == COFFER_OK && *out == NULL)
        r = COFFER_E_NOMEM;
    if (c->state != COFFER_COORD_RECOVERY) { /* recovered: the ephemeral key has done its work */
        EVP_PKEY_free(c->recovery_eph);
        c->recovery_eph = NULL;
    }
    pthread_rwlock_unlock(&c->cfg);
    coffer_secret_free(plain);
    return r;
}
