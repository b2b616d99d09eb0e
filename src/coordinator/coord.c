/*
 * coord.c — the coordinator's core: state machine, secrets, activation,
 * sealed state and the audit log. The HTTP APIs call into this; it knows
 * nothing of the network.
 *
 * Design:
 *  - Two locks (coord_int.h): a writer-preferring rwlock over what the
 *    manifest defines, held shared by activations and reads, exclusively
 *    by every other change; a mutex over counters, nonces and the log's
 *    write side. The expensive part of an activation (CSR, evidence,
 *    rendering) runs under the shared lock only, so activations run in
 *    parallel.
 *  - Durability: every change is durable before it is acknowledged. The
 *    audit log is also the write-ahead log of activations: an activation
 *    is durable once its line is synced; lines of concurrent activations
 *    share one write and one fdatasync (group commit: the first waiter
 *    writes everything appended so far, the others wait for it). Every
 *    other change appends its line, waits for it, then seals the whole
 *    state (a checkpoint). At start, the activations logged after the
 *    checkpoint are replayed, and a new checkpoint is sealed.
 *  - Sealed state: sealed_key = AES-256-GCM(seal key, DEK);
 *    sealed_state = AES-256-GCM(DEK, JSON of the whole state), replaced
 *    with temp + fsync + rename + fsync of the folder. Recovery keys wrap
 *    the DEK (recover.c), so a state sealed on another platform can be
 *    opened again.
 *  - Audit log: audit.log holds JSON lines, each naming the SHA-256 of the
 *    line before ("prev"), and the sealed state records the hash of the
 *    line it was sealed at, so editing, reordering or truncating the log
 *    before that point is detected at start. Lines after it are
 *    activations (replayed) and at most the changes of one operation that
 *    crashed before sealing (accepted as "attempted"). A torn last line
 *    (no newline: a write cut by a crash, never acknowledged) is cut off.
 *    A failed write makes the coordinator refuse every later change
 *    (sticky, as SQLite's pager): memory and disk may disagree.
 *  - Activation: the nonce must be one this coordinator issued, unused and
 *    fresh; the marble's certificate carries the CSR's key, and the evidence
 *    must carry SHA-256(that key) || nonce, checked by the verifier callback
 *    against the marble's package. Simulation evidence is verified too:
 *    there is no "no evidence, accept everything" mode. A nonce names its
 *    slot in its first two bytes, so taking one costs one comparison.
 *  - Per-marble symmetric secrets are HKDF-SHA256(root secret, salt = UUID
 *    || name, info = marble type), stable for a UUID (MarbleRun's rule).
 *
 * Trusts: the verifier callback for evidence; the manifest only after
 * coffer_manifest_parse validated it. Invariants: I1 no secret value is
 * ever logged or written unsealed; I2 the state on disk always decrypts to
 * a state this process acknowledged (or the one before it).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coord_int.h"

#define SEAL_MAGIC "COFFSEAL"
#define KEY_MAGIC "COFFSKEY"

/* ------------------------------------------------------------- helpers */

enum coffer_err coord_ossl(const char *what) { return COFFER_FAIL(COFFER_E_CRYPTO, "%s failed (OpenSSL)", what); }

char *coord_path(const struct coffer_coord *c, const char *name)
{
    size_t n = strlen(c->seal_dir) + strlen(name) + 2;
    char *p = coffer_malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", c->seal_dir, name);
    return p;
}

int coord_json_set_b64(json_t *o, const char *key, const uint8_t *data, size_t size)
{
    char *s = coffer_malloc(coffer_base64_encoded_len(size) + 1);
    if (s == NULL)
        return -1;
    coffer_base64_encode(data, size, s);
    int rc = json_object_set_new(o, key, json_string(s));
    coffer_memzero(s, strlen(s));
    coffer_free(s);
    return rc;
}

enum coffer_err coord_json_get_b64(const json_t *o, const char *path, const char *key, uint8_t **data, size_t *size)
{
    const char *s = NULL;
    enum coffer_err r = coffer_json_get_string(o, path, key, true, &s);
    if (r != COFFER_OK)
        return r;
    r = coffer_base64_decode(s, strlen(s), data, size);
    if (r != COFFER_OK && r != COFFER_E_NOMEM)
        return COFFER_FAIL(COFFER_E_JSON, "%s.%s: not valid base64", path, key);
    return r;
}

enum coffer_err coord_seal(const uint8_t key[32], const char *aad, const uint8_t *in, size_t size, uint8_t **out,
                           size_t *out_size)
{
    uint8_t *o = coffer_malloc(size + 28);
    if (o == NULL)
        return COFFER_E_NOMEM;
    enum coffer_err r = coffer_random(o, 12);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n = 0, f = 0;
    if (r == COFFER_OK &&
        (x == NULL || EVP_EncryptInit_ex2(x, EVP_aes_256_gcm(), key, o, NULL) != 1 ||
         EVP_EncryptUpdate(x, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
         EVP_EncryptUpdate(x, o + 12, &n, in, (int)size) != 1 || EVP_EncryptFinal_ex(x, o + 12 + n, &f) != 1 ||
         EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, o + 12 + size) != 1))
        r = coord_ossl("sealing");
    EVP_CIPHER_CTX_free(x);
    if (r != COFFER_OK) {
        coffer_free(o);
        return r;
    }
    *out = o;
    *out_size = size + 28;
    return COFFER_OK;
}

enum coffer_err coord_unseal(const uint8_t key[32], const char *aad, const uint8_t *in, size_t size,
                             struct coffer_secret **out)
{
    *out = NULL;
    if (size < 28)
        return COFFER_FAIL(COFFER_E_TRUNCATED, "sealed data of %zu bytes is too short", size);
    struct coffer_secret *s;
    enum coffer_err r = coffer_secret_new(size - 28, &s);
    if (r != COFFER_OK)
        return r;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n = 0, f = 0;
    if (x == NULL || EVP_DecryptInit_ex2(x, EVP_aes_256_gcm(), key, in, NULL) != 1 ||
        EVP_DecryptUpdate(x, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
        EVP_DecryptUpdate(x, s->data, &n, in + 12, (int)(size - 28)) != 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, (void *)(uintptr_t)(in + size - 16)) != 1)
        r = coord_ossl("unsealing");
    else if (EVP_DecryptFinal_ex(x, s->data + n, &f) != 1)
        r = COFFER_FAIL(COFFER_E_AUTH, "sealed data does not authenticate under this key");
    EVP_CIPHER_CTX_free(x);
    if (r != COFFER_OK) {
        coffer_secret_free(s);
        return r;
    }
    *out = s;
    return COFFER_OK;
}

static void sha256(const void *d, size_t n, uint8_t out[32]) { SHA256(d, n, out); }

static void now_iso(char out[40])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    strftime(out, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---------------------------------------------------------- audit log */

static enum coffer_err broken_error(void)
{
    return COFFER_FAIL(COFFER_E_IO, "an earlier write of the state or the audit log failed; the coordinator takes no "
                       "more changes until it is restarted");
}

/* Append one event (fields: an object whose members are added; consumed)
 * to the chain and the write buffer. Caller holds mu. */
static enum coffer_err log_append(struct coffer_coord *c, const char *event, json_t *fields, uint64_t *seq)
{
    json_t *o = fields ? fields : json_object();
    if (c->broken != COFFER_OK) {
        json_decref(o);
        return broken_error();
    }
    char when[40], prev[65];
    now_iso(when);
    coffer_hex_encode(c->audit_head, 32, prev);
    if (o == NULL || json_object_set_new(o, "seq", json_integer((json_int_t)(c->audit_seq + 1))) != 0 ||
        json_object_set_new(o, "time", json_string(when)) != 0 ||
        json_object_set_new(o, "event", json_string(event)) != 0 ||
        json_object_set_new(o, "simulation", json_boolean(c->simulation)) != 0 ||
        json_object_set_new(o, "prev", json_string(prev)) != 0) {
        json_decref(o);
        return COFFER_E_NOMEM;
    }
    char *line;
    size_t n;
    enum coffer_err r = coffer_json_dump(o, &line, &n);
    json_decref(o);
    if (r != COFFER_OK)
        return r;
    if (c->audit_fd >= 0) {
        size_t before = c->wbuf.size;
        if ((r = coffer_buf_put(&c->wbuf, line, n)) != COFFER_OK || (r = coffer_buf_put_u8(&c->wbuf, '\n')) != COFFER_OK)
            c->wbuf.size = before;
    }
    if (r == COFFER_OK) {
        sha256(line, n, c->audit_head);
        *seq = ++c->audit_seq;
    }
    coffer_free(line);
    return r;
}

/* Wait until line seq is on disk; the first waiter writes and syncs all
 * lines appended so far, for everyone (group commit). Caller holds mu. */
static enum coffer_err log_wait(struct coffer_coord *c, uint64_t seq)
{
    if (c->audit_fd < 0) {
        c->durable_seq = c->audit_seq;
        return COFFER_OK;
    }
    while (c->durable_seq < seq && c->broken == COFFER_OK) {
        if (c->flushing) {
            pthread_cond_wait(&c->flushed, &c->mu);
            continue;
        }
        c->flushing = true;
        uint64_t upto = c->audit_seq;
        size_t n = 0;
        uint8_t *data = coffer_buf_steal(&c->wbuf, &n);
        int fd = c->audit_fd;
        pthread_mutex_unlock(&c->mu);
        enum coffer_err r = n > 0 ? coffer_write_all(fd, data, n) : COFFER_OK;
        if (r == COFFER_OK && fdatasync(fd) != 0)
            r = COFFER_FAIL(COFFER_E_IO, "fdatasync of the audit log: %s", strerror(errno));
        coffer_free(data);
        pthread_mutex_lock(&c->mu);
        c->syncs++;
        if (r == COFFER_OK) {
            c->durable_seq = upto;
        } else {
            coffer_error("audit log write failed: %s; refusing further changes", coffer_err_detail());
            c->broken = r;
        }
        c->flushing = false;
        pthread_cond_broadcast(&c->flushed);
    }
    return c->durable_seq >= seq ? COFFER_OK : broken_error();
}

enum coffer_err coord_log(struct coffer_coord *c, const char *event, json_t *fields)
{
    pthread_mutex_lock(&c->mu);
    uint64_t seq = 0;
    enum coffer_err r = log_append(c, event, fields, &seq);
    if (r == COFFER_OK)
        r = log_wait(c, seq);
    pthread_mutex_unlock(&c->mu);
    return r;
}

static const struct coffer_mf_marble *marble_named(struct coffer_coord *c, const char *name)
{
    return c->manifest != NULL && name != NULL ? coffer_manifest_marble(c->manifest, name) : NULL;
}

/* Read the log at start: verify the chain and that it holds the line the
 * sealed state was sealed at; cut a torn last line; replay activations
 * after the checkpoint. *replayed: lines after the checkpoint. */
static enum coffer_err log_recover(struct coffer_coord *c, const char *path, uint64_t *replayed)
{
    *replayed = 0;
    uint8_t *data;
    size_t size;
    enum coffer_err r = coffer_file_read_all(path, 1u << 30, &data, &size);
    if (r == COFFER_E_NOT_FOUND) {
        data = NULL;
        size = 0;
    } else if (r != COFFER_OK) {
        return r;
    }
    uint8_t last[32] = {0};
    uint64_t count = 0;
    bool other_after = false; /* a non-activation line after the checkpoint */
    struct coffer_rd rd;
    coffer_rd_init(&rd, data, size);
    r = COFFER_OK;
    while (coffer_rd_left(&rd) > 0 && r == COFFER_OK) {
        const uint8_t *line = rd.data + rd.pos;
        const uint8_t *nl = memchr(line, '\n', coffer_rd_left(&rd));
        if (nl == NULL) {
            /* a write cut by a crash: never acknowledged (acknowledged
             * lines are synced whole); cut it off */
            coffer_warn("audit log: cutting off a torn last line of %zu bytes (a write cut by a crash)",
                        coffer_rd_left(&rd));
            if (truncate(path, (off_t)rd.pos) != 0)
                r = COFFER_FAIL(COFFER_E_IO, "cannot cut the torn end of %s: %s", path, strerror(errno));
            break;
        }
        size_t len = (size_t)(nl - line);
        json_t *o;
        if (coffer_json_parse(line, len, 1 << 20, &o) != COFFER_OK) {
            r = COFFER_FAIL(COFFER_E_CORRUPTED, "audit log: line %llu is not JSON", (unsigned long long)count + 1);
            break;
        }
        const char *prev = NULL, *event = NULL;
        char want[65];
        coffer_hex_encode(last, 32, want);
        if (coffer_json_get_string(o, "$", "prev", true, &prev) != COFFER_OK || strcmp(prev, want) != 0)
            r = COFFER_FAIL(COFFER_E_CORRUPTED, "audit log: line %llu does not follow the line before it",
                            (unsigned long long)count + 1);
        sha256(line, len, last);
        count++;
        if (r == COFFER_OK && count == c->audit_seq && !coffer_ct_eq(last, c->audit_head, 32))
            r = COFFER_FAIL(COFFER_E_CORRUPTED, "audit log: line %llu is not the one the sealed state was sealed at",
                            (unsigned long long)count);
        if (r == COFFER_OK && count > c->audit_seq) {
            event = json_string_value(json_object_get(o, "event"));
            if (event != NULL && strcmp(event, "activation") == 0) {
                if (other_after)
                    r = COFFER_FAIL(COFFER_E_CORRUPTED, "audit log: activation at line %llu after an unsealed change",
                                    (unsigned long long)count);
                const char *type = json_string_value(json_object_get(o, "marbleType"));
                const struct coffer_mf_marble *mb = marble_named(c, type);
                if (r == COFFER_OK && mb != NULL)
                    c->activations[mb - c->manifest->marbles]++;
            } else {
                other_after = true;
            }
        }
        json_decref(o);
        if (coffer_rd_skip(&rd, len + 1) != COFFER_OK)
            break;
    }
    coffer_free(data);
    if (r == COFFER_OK && count < c->audit_seq)
        r = COFFER_FAIL(COFFER_E_CORRUPTED, "audit log (%llu entries) is shorter than the sealed state says (%llu "
                        "entries): it was truncated", (unsigned long long)count, (unsigned long long)c->audit_seq);
    if (r != COFFER_OK)
        return r;
    *replayed = count - c->audit_seq;
    memcpy(c->audit_head, last, 32);
    c->audit_seq = c->durable_seq = count;
    return COFFER_OK;
}

/* --------------------------------------------------------- sealed state */

void coord_free_secrets(struct coffer_coord *c)
{
    if (c->secrets != NULL && c->manifest != NULL)
        for (size_t i = 0; i < c->manifest->secrets_count; i++) {
            coffer_secret_free(c->secrets[i].key);
            coffer_free(c->secrets[i].cert);
        }
    coffer_free(c->secrets);
    coffer_free(c->activations);
    coffer_free(c->svn);
    c->secrets = NULL;
    c->activations = NULL;
    c->svn = NULL;
}

void coord_prev_free(struct coffer_coord *c)
{
    for (size_t i = 0; i < c->prev_count; i++) {
        coffer_free(c->prev[i].name);
        coffer_secret_free(c->prev[i].key);
        coffer_free(c->prev[i].cert);
    }
    coffer_free(c->prev);
    coffer_secret_free(c->prev_root_secret);
    c->prev = NULL;
    c->prev_count = 0;
    c->prev_root_secret = NULL;
}

/* Append one previous value (copies). */
static enum coffer_err prev_add(struct prev_secret **arr, size_t *n, const char *name, int type, const uint8_t *key,
                                size_t key_size, const uint8_t *cert, size_t cert_size)
{
    struct prev_secret *a = coffer_realloc(*arr, (*n + 1) * sizeof(*a));
    if (a == NULL)
        return COFFER_E_NOMEM;
    *arr = a;
    struct prev_secret *p = &a[*n];
    memset(p, 0, sizeof(*p));
    p->type = type;
    enum coffer_err r = (p->name = coffer_strdup(name)) != NULL ? coffer_secret_new(key_size, &p->key) : COFFER_E_NOMEM;
    if (r == COFFER_OK) {
        memcpy(p->key->data, key, key_size);
        if (cert != NULL && (p->cert = coffer_malloc(cert_size)) == NULL)
            r = COFFER_E_NOMEM;
        else if (cert != NULL) {
            memcpy(p->cert, cert, cert_size);
            p->cert_size = cert_size;
        }
    }
    if (r != COFFER_OK) {
        coffer_free(p->name);
        coffer_secret_free(p->key);
        coffer_free(p->cert);
        return r;
    }
    (*n)++;
    return COFFER_OK;
}

enum coffer_err coord_prev_snapshot(struct coffer_coord *c)
{
    struct prev_secret *arr = NULL;
    size_t n = 0;
    struct coffer_secret *root = NULL;
    enum coffer_err r = coffer_secret_new(c->root_secret->size, &root);
    if (r == COFFER_OK)
        memcpy(root->data, c->root_secret->data, root->size);
    for (size_t i = 0; r == COFFER_OK && i < c->manifest->secrets_count; i++) {
        const struct secret_val *v = &c->secrets[i];
        if (v->set)
            r = prev_add(&arr, &n, c->manifest->secrets[i].name, (int)c->manifest->secrets[i].type, v->key->data,
                         v->key->size, v->cert, v->cert_size);
    }
    if (r != COFFER_OK) {
        struct coffer_coord tmp = {.prev = arr, .prev_count = n, .prev_root_secret = root};
        coord_prev_free(&tmp);
        return r;
    }
    coord_prev_free(c);
    c->prev = arr;
    c->prev_count = n;
    c->prev_root_secret = root;
    return COFFER_OK;
}

static const struct prev_secret *prev_find(const struct coffer_coord *c, const char *name)
{
    for (size_t i = 0; i < c->prev_count; i++)
        if (strcmp(c->prev[i].name, name) == 0)
            return &c->prev[i];
    return NULL;
}

static enum coffer_err state_to_json(struct coffer_coord *c, json_t **out)
{
    json_t *o = json_object();
    json_t *pki = NULL;
    enum coffer_err r = coffer_pki_save(c->pki, &pki);
    if (o == NULL || r != COFFER_OK) {
        json_decref(o);
        return r != COFFER_OK ? r : COFFER_E_NOMEM;
    }
    char head[65];
    coffer_hex_encode(c->audit_head, 32, head);
    int rc = json_object_set_new(o, "version", json_integer(1)) | json_object_set_new(o, "state", json_integer(c->state)) |
             json_object_set_new(o, "pki", pki) | json_object_set_new(o, "audit_head", json_string(head)) |
             json_object_set_new(o, "audit_seq", json_integer((json_int_t)c->audit_seq));
    if (c->manifest != NULL) {
        json_t *sec = json_object(), *act = json_object(), *svn = json_object();
        rc |= coord_json_set_b64(o, "manifest", c->manifest_raw, c->manifest_size);
        rc |= coord_json_set_b64(o, "root_secret", c->root_secret->data, c->root_secret->size);
        for (size_t i = 0; sec != NULL && i < c->manifest->secrets_count; i++) {
            const struct secret_val *v = &c->secrets[i];
            if (!v->set)
                continue;
            json_t *e = json_object();
            rc |= coord_json_set_b64(e, "key", v->key->data, v->key->size);
            if (v->cert != NULL)
                rc |= coord_json_set_b64(e, "cert", v->cert, v->cert_size);
            rc |= json_object_set_new(sec, c->manifest->secrets[i].name, e);
        }
        for (size_t i = 0; act != NULL && i < c->manifest->marbles_count; i++)
            rc |= json_object_set_new(act, c->manifest->marbles[i].name, json_integer((json_int_t)c->activations[i]));
        for (size_t i = 0; svn != NULL && i < c->manifest->packages_count; i++)
            if (c->manifest->packages[i].has_svn)
                rc |= json_object_set_new(svn, c->manifest->packages[i].name, json_integer(c->svn[i]));
        if (c->prev_root_secret != NULL) {
            json_t *prev = json_object(), *ps = json_object();
            rc |= coord_json_set_b64(prev, "root_secret", c->prev_root_secret->data, c->prev_root_secret->size);
            for (size_t i = 0; ps != NULL && i < c->prev_count; i++) {
                json_t *e = json_pack("{s:i}", "type", c->prev[i].type);
                rc |= coord_json_set_b64(e, "key", c->prev[i].key->data, c->prev[i].key->size);
                if (c->prev[i].cert != NULL)
                    rc |= coord_json_set_b64(e, "cert", c->prev[i].cert, c->prev[i].cert_size);
                rc |= json_object_set_new(ps, c->prev[i].name, e);
            }
            rc |= json_object_set_new(prev, "secrets", ps) | json_object_set_new(o, "previous", prev);
        }
        rc |= json_object_set_new(o, "secrets", sec) | json_object_set_new(o, "activations", act) |
              json_object_set_new(o, "svn", svn) | json_object_set_new(o, "counters", json_deep_copy(c->counters));
        if (rc == 0 && (r = coord_pending_to_json(c, o)) != COFFER_OK) {
            json_decref(o);
            return r;
        }
    }
    if (rc != 0) {
        json_decref(o);
        return COFFER_E_NOMEM;
    }
    *out = o;
    return COFFER_OK;
}

enum coffer_err coord_commit(struct coffer_coord *c)
{
    if (c->seal_dir == NULL)
        return COFFER_OK;
    pthread_mutex_lock(&c->mu);
    enum coffer_err r = c->broken != COFFER_OK ? broken_error() : COFFER_OK;
    json_t *o = NULL;
    uint64_t seq = c->audit_seq;
    if (r == COFFER_OK)
        r = state_to_json(c, &o);
    pthread_mutex_unlock(&c->mu);
    if (r != COFFER_OK)
        return r;
    char *plain;
    size_t n;
    r = coffer_json_dump(o, &plain, &n);
    json_decref(o);
    if (r != COFFER_OK)
        return r;
    uint8_t *sealed;
    size_t sealed_n;
    r = coord_seal(c->dek->data, SEAL_MAGIC, (const uint8_t *)plain, n, &sealed, &sealed_n);
    coffer_memzero(plain, n);
    coffer_free(plain);
    if (r != COFFER_OK)
        return r;
    char *path = coord_path(c, "sealed_state");
    r = path ? coffer_file_write_atomic(path, sealed, sealed_n, 0600) : COFFER_E_NOMEM;
    coffer_free(path);
    coffer_free(sealed);
    if (r == COFFER_OK)
        c->sealed_seq = seq;
    if (r != COFFER_OK && r != COFFER_E_NOMEM) {
        pthread_mutex_lock(&c->mu);
        coffer_error("sealing the state failed: %s; refusing further changes", coffer_err_detail());
        c->broken = r;
        pthread_mutex_unlock(&c->mu);
    }
    return r;
}

enum coffer_err coord_write_sealed_key(struct coffer_coord *c)
{
    uint8_t *sealed;
    size_t sealed_n;
    enum coffer_err r = coord_seal(c->seal_key->data, KEY_MAGIC, c->dek->data, c->dek->size, &sealed, &sealed_n);
    if (r != COFFER_OK)
        return r;
    char *path = coord_path(c, "sealed_key");
    r = path ? coffer_file_write_atomic(path, sealed, sealed_n, 0600) : COFFER_E_NOMEM;
    coffer_free(path);
    coffer_free(sealed);
    return r;
}

enum coffer_err coord_setup_manifest(struct coffer_coord *c, const uint8_t *raw, size_t size)
{
    struct coffer_manifest *m;
    enum coffer_err r = coffer_manifest_parse(raw, size, &m);
    if (r != COFFER_OK)
        return r;
    if ((r = coffer_manifest_check_templates(m)) != COFFER_OK) {
        coffer_manifest_free(m);
        return r;
    }
    uint8_t *copy = coffer_malloc(size);
    struct secret_val *sv = coffer_calloc(m->secrets_count + 1, sizeof(*sv));
    uint64_t *act = coffer_calloc(m->marbles_count + 1, sizeof(*act));
    uint16_t *svn = coffer_calloc(m->packages_count + 1, sizeof(*svn));
    if (copy == NULL || sv == NULL || act == NULL || svn == NULL) {
        coffer_free(copy);
        coffer_free(sv);
        coffer_free(act);
        coffer_free(svn);
        coffer_manifest_free(m);
        return COFFER_E_NOMEM;
    }
    memcpy(copy, raw, size);
    for (size_t i = 0; i < m->packages_count; i++)
        svn[i] = m->packages[i].security_version;
    pthread_mutex_lock(&c->mu);
    coord_free_secrets(c);
    coffer_manifest_free(c->manifest);
    coffer_free(c->manifest_raw);
    c->manifest = m;
    c->manifest_raw = copy;
    c->manifest_size = size;
    c->secrets = sv;
    c->activations = act;
    c->svn = svn;
    pthread_mutex_unlock(&c->mu);
    return COFFER_OK;
}

/* The sealed "previous" object: {"root_secret": b64, "secrets": {name:
 * {"type", "key", "cert"?}}}, absent before the first rotation. */
static enum coffer_err load_previous(struct coffer_coord *c, const json_t *prev)
{
    coord_prev_free(c);
    if (prev == NULL)
        return COFFER_OK;
    uint8_t *rs = NULL;
    size_t rs_n = 0;
    json_t *ps = NULL;
    enum coffer_err r;
    if ((r = coord_json_get_b64(prev, "$.previous", "root_secret", &rs, &rs_n)) != COFFER_OK ||
        (r = coffer_json_get_object(prev, "$.previous", "secrets", true, &ps)) != COFFER_OK)
        goto out;
    if (rs_n != 32) {
        r = COFFER_FAIL(COFFER_E_MALFORMED, "$.previous.root_secret: %zu bytes", rs_n);
        goto out;
    }
    if ((r = coffer_secret_new(rs_n, &c->prev_root_secret)) != COFFER_OK)
        goto out;
    memcpy(c->prev_root_secret->data, rs, rs_n);
    const char *name;
    json_t *e;
    json_object_foreach(ps, name, e) {
        int64_t type = -1;
        uint8_t *k = NULL, *cert = NULL;
        size_t kn = 0, cn = 0;
        if ((r = coffer_json_get_int(e, "$.previous.secrets", "type", true, &type)) == COFFER_OK &&
            (r = coord_json_get_b64(e, "$.previous.secrets", "key", &k, &kn)) == COFFER_OK &&
            (json_object_get(e, "cert") == NULL ||
             (r = coord_json_get_b64(e, "$.previous.secrets", "cert", &cert, &cn)) == COFFER_OK))
            r = prev_add(&c->prev, &c->prev_count, name, (int)type, k, kn, cert, cn);
        if (k != NULL)
            coffer_memzero(k, kn);
        coffer_free(k);
        coffer_free(cert);
        if (r != COFFER_OK)
            break;
    }
out:
    if (rs != NULL)
        coffer_memzero(rs, rs_n);
    coffer_free(rs);
    if (r != COFFER_OK)
        coord_prev_free(c);
    return r;
}

static enum coffer_err load_state(struct coffer_coord *c, const struct coffer_secret *plain)
{
    json_t *o;
    enum coffer_err r = coffer_json_parse(plain->data, plain->size, COORD_STATE_MAX, &o);
    if (r != COFFER_OK)
        return r;
    int64_t state = 0, seq = 0;
    json_t *pki = NULL, *sec = NULL, *act = NULL;
    const char *head = NULL;
    uint8_t *raw = NULL, *rs = NULL;
    size_t raw_n = 0, rs_n = 0;
    struct coffer_pki *loaded = NULL;
    if ((r = coffer_json_get_int(o, "$", "state", true, &state)) != COFFER_OK ||
        (r = coffer_json_get_object(o, "$", "pki", true, &pki)) != COFFER_OK ||
        (r = coffer_json_get_string(o, "$", "audit_head", true, &head)) != COFFER_OK ||
        (r = coffer_json_get_int(o, "$", "audit_seq", true, &seq)) != COFFER_OK ||
        (r = coffer_pki_load(pki, &loaded)) != COFFER_OK)
        goto out;
    coffer_pki_free(c->pki);
    c->pki = loaded;
    if ((r = coffer_hex_decode(head, strlen(head), c->audit_head, 32)) != COFFER_OK)
        goto out;
    c->audit_seq = c->sealed_seq = (uint64_t)seq;
    c->state = (enum coffer_coord_state)state;
    if (json_object_get(o, "manifest") != NULL) {
        if ((r = coord_json_get_b64(o, "$", "manifest", &raw, &raw_n)) != COFFER_OK ||
            (r = coord_json_get_b64(o, "$", "root_secret", &rs, &rs_n)) != COFFER_OK ||
            (r = coffer_json_get_object(o, "$", "secrets", true, &sec)) != COFFER_OK ||
            (r = coffer_json_get_object(o, "$", "activations", true, &act)) != COFFER_OK ||
            (r = coord_setup_manifest(c, raw, raw_n)) != COFFER_OK)
            goto out;
        coffer_secret_free(c->root_secret);
        if ((r = coffer_secret_new(rs_n, &c->root_secret)) != COFFER_OK)
            goto out;
        memcpy(c->root_secret->data, rs, rs_n);
        for (size_t i = 0; i < c->manifest->secrets_count; i++) {
            json_t *e = json_object_get(sec, c->manifest->secrets[i].name);
            if (e == NULL)
                continue;
            uint8_t *k = NULL;
            size_t kn = 0;
            struct secret_val *v = &c->secrets[i];
            if ((r = coord_json_get_b64(e, "$.secrets", "key", &k, &kn)) != COFFER_OK)
                goto out;
            r = coffer_secret_new(kn, &v->key);
            if (r == COFFER_OK)
                memcpy(v->key->data, k, kn);
            coffer_memzero(k, kn);
            coffer_free(k);
            if (r != COFFER_OK)
                goto out;
            if (json_object_get(e, "cert") != NULL &&
                (r = coord_json_get_b64(e, "$.secrets", "cert", &v->cert, &v->cert_size)) != COFFER_OK)
                goto out;
            v->set = true;
        }
        for (size_t i = 0; i < c->manifest->marbles_count; i++) {
            json_t *n = json_object_get(act, c->manifest->marbles[i].name);
            c->activations[i] = json_is_integer(n) ? (uint64_t)json_integer_value(n) : 0;
        }
        json_t *svn = json_object_get(o, "svn");
        for (size_t i = 0; i < c->manifest->packages_count; i++) {
            json_t *n = json_object_get(svn, c->manifest->packages[i].name);
            if (json_is_integer(n) && json_integer_value(n) >= 0 && json_integer_value(n) <= 0xffff) {
                c->svn[i] = (uint16_t)json_integer_value(n);
                c->manifest->packages[i].security_version = c->svn[i];
            }
        }
        if ((r = load_previous(c, json_object_get(o, "previous"))) != COFFER_OK)
            goto out;
        json_t *counters = json_object_get(o, "counters"), *v;
        const char *id;
        json_object_clear(c->counters);
        json_object_foreach(counters, id, v) {
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                r = COFFER_FAIL(COFFER_E_MALFORMED, "$.counters.%s: not a counter value", id);
                goto out;
            }
            if (json_object_set(c->counters, id, v) != 0) {
                r = COFFER_E_NOMEM;
                goto out;
            }
        }
        r = coord_pending_from_json(c, o);
    }
out:
    if (rs != NULL) {
        coffer_memzero(rs, rs_n);
        coffer_free(rs);
    }
    coffer_free(raw);
    json_decref(o);
    if (r != COFFER_OK)
        coffer_err_context("sealed state");
    return r;
}

static enum coffer_err fresh(struct coffer_coord *c)
{
    coffer_pki_free(c->pki);
    c->pki = NULL;
    enum coffer_err r = coffer_pki_new(c->dns_names, &c->pki);
    if (r != COFFER_OK)
        return r;
    c->state = COFFER_COORD_ACCEPTING_MANIFEST;
    return COFFER_OK;
}

static enum coffer_err open_log(struct coffer_coord *c)
{
    char *path = coord_path(c, "audit.log");
    if (path == NULL)
        return COFFER_E_NOMEM;
    if (c->audit_fd >= 0)
        close(c->audit_fd);
    c->audit_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    enum coffer_err r = COFFER_OK;
    if (c->audit_fd < 0)
        r = COFFER_FAIL(COFFER_E_IO, "cannot open %s: %s", path, strerror(errno));
    coffer_free(path);
    return r;
}

enum coffer_err coord_load_sealed(struct coffer_coord *c)
{
    char *state_path = coord_path(c, "sealed_state"), *audit_path = coord_path(c, "audit.log");
    uint8_t *blob = NULL;
    size_t blob_n = 0;
    struct coffer_secret *plain = NULL;
    enum coffer_err r = COFFER_OK;
    uint64_t replayed = 0;
    if (state_path == NULL || audit_path == NULL) {
        r = COFFER_E_NOMEM;
        goto out;
    }
    if ((r = coffer_file_read_all(state_path, COORD_STATE_MAX, &blob, &blob_n)) == COFFER_E_NOT_FOUND) {
        if ((r = fresh(c)) == COFFER_OK && (r = open_log(c)) == COFFER_OK)
            r = coord_commit(c);
        goto out;
    }
    if (r != COFFER_OK || (r = coord_unseal(c->dek->data, SEAL_MAGIC, blob, blob_n, &plain)) != COFFER_OK ||
        (r = load_state(c, plain)) != COFFER_OK || (r = log_recover(c, audit_path, &replayed)) != COFFER_OK ||
        (r = open_log(c)) != COFFER_OK)
        goto out;
    if (replayed > 0) {
        /* seal at the log's head now, so the lines replayed are covered */
        coffer_info("audit log: %llu entries after the last checkpoint replayed", (unsigned long long)replayed);
        r = coord_commit(c);
    }
out:
    coffer_secret_free(plain);
    coffer_free(blob);
    coffer_free(state_path);
    coffer_free(audit_path);
    return r;
}

static enum coffer_err open_sealed(struct coffer_coord *c)
{
    enum coffer_err r = coffer_mkdir_p(c->seal_dir, 0700);
    if (r != COFFER_OK)
        return r;
    char *key_path = coord_path(c, "sealed_key");
    uint8_t *blob = NULL;
    size_t blob_n = 0;
    if (key_path == NULL)
        return COFFER_E_NOMEM;
    r = coffer_file_read_all(key_path, 4096, &blob, &blob_n);
    coffer_free(key_path);
    if (r == COFFER_E_NOT_FOUND) {
        /* first start: a new DEK, sealed to this platform */
        static const char *const stale[] = {"sealed_state", "audit.log", "recovery.json"};
        for (size_t i = 0; i < 3; i++) {
            char *p = coord_path(c, stale[i]);
            if (p != NULL)
                unlink(p);
            coffer_free(p);
        }
        if ((r = coffer_secret_new(32, &c->dek)) != COFFER_OK || (r = coffer_random(c->dek->data, 32)) != COFFER_OK ||
            (r = coord_write_sealed_key(c)) != COFFER_OK)
            return r;
        return coord_load_sealed(c);
    }
    if (r != COFFER_OK)
        return r;
    r = coord_unseal(c->seal_key->data, KEY_MAGIC, blob, blob_n, &c->dek);
    coffer_free(blob);
    if (r == COFFER_E_AUTH) {
        coffer_warn("the sealed key does not open with this platform's sealing key: starting in recovery mode "
                    "(upload recovery secrets, or set a new manifest to start over)");
        r = fresh(c);
        c->state = COFFER_COORD_RECOVERY;
        return r; /* no audit log writes in recovery */
    }
    if (r != COFFER_OK)
        return r;
    return coord_load_sealed(c);
}

/* --------------------------------------------------------------- public */

enum coffer_err coffer_coord_open(const struct coffer_coord_config *cfg, struct coffer_coord **out)
{
    *out = NULL;
    if (cfg->verify == NULL || (cfg->seal_dir != NULL && cfg->seal_key == NULL))
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "a coordinator needs an evidence verifier and, to seal, a key");
    struct coffer_coord *c = coffer_calloc(1, sizeof(*c));
    if (c == NULL)
        return COFFER_E_NOMEM;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* writers (manifest changes) must not starve behind a stream of activations */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&c->cfg, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->flushed, NULL);
    coffer_buf_init(&c->wbuf, 0, false);
    c->audit_fd = -1;
    c->simulation = cfg->simulation;
    c->verify = cfg->verify;
    c->verify_arg = cfg->verify_arg;
    c->evidence = cfg->evidence;
    c->evidence_arg = cfg->evidence_arg;
    c->cert_days = cfg->marble_cert_days ? cfg->marble_cert_days : 365;
    c->nonce_ttl_ns = (uint64_t)(cfg->nonce_ttl_s ? cfg->nonce_ttl_s : 300) * 1000000000ull;
    enum coffer_err r = COFFER_OK;
    c->dns_names = coffer_strdup(cfg->dns_names ? cfg->dns_names : "localhost");
    c->nonces = coffer_calloc(COORD_NONCE_SLOTS, sizeof(*c->nonces));
    c->counters = json_object();
    if (c->dns_names == NULL || c->nonces == NULL || c->counters == NULL)
        r = COFFER_E_NOMEM;
    if (r == COFFER_OK && cfg->seal_dir != NULL) {
        if ((c->seal_dir = coffer_strdup(cfg->seal_dir)) == NULL ||
            (r = coffer_secret_new(COFFER_COORD_SEAL_KEY_SIZE, &c->seal_key)) != COFFER_OK)
            r = r != COFFER_OK ? r : COFFER_E_NOMEM;
        else {
            memcpy(c->seal_key->data, cfg->seal_key, COFFER_COORD_SEAL_KEY_SIZE);
            r = open_sealed(c);
        }
    } else if (r == COFFER_OK) {
        r = fresh(c);
    }
    if (r != COFFER_OK) {
        coffer_coord_close(c);
        return r;
    }
    *out = c;
    return COFFER_OK;
}

void coffer_coord_close(struct coffer_coord *c)
{
    if (c == NULL)
        return;
    /* seal at the log's head, so the activations since the last
     * checkpoint are covered by the sealed state, not only by the log */
    if (c->dek != NULL && c->pki != NULL && c->audit_fd >= 0 && c->state != COFFER_COORD_RECOVERY &&
        c->broken == COFFER_OK && c->audit_seq != c->sealed_seq && coord_commit(c) != COFFER_OK)
        coffer_warn("coordinator: the final checkpoint failed (%s); the log replays at the next start",
                    coffer_err_detail());
    if (c->syncs > 0)
        coffer_info("coordinator: %llu audit entries written with %llu log syncs", (unsigned long long)c->audit_seq,
                    (unsigned long long)c->syncs);
    coord_recovery_clear(c);
    EVP_PKEY_free(c->recovery_eph);
    json_decref(c->counters);
    coord_prev_free(c);
    coord_pending_free(c->pending);
    coord_free_secrets(c);
    coffer_manifest_free(c->manifest);
    coffer_free(c->manifest_raw);
    coffer_pki_free(c->pki);
    coffer_secret_free(c->dek);
    coffer_secret_free(c->root_secret);
    coffer_secret_free(c->seal_key);
    coffer_free(c->seal_dir);
    coffer_free(c->dns_names);
    if (c->nonces != NULL)
        coffer_memzero(c->nonces, COORD_NONCE_SLOTS * sizeof(*c->nonces));
    coffer_free(c->nonces);
    coffer_buf_free(&c->wbuf);
    if (c->audit_fd >= 0)
        close(c->audit_fd);
    pthread_cond_destroy(&c->flushed);
    pthread_mutex_destroy(&c->mu);
    pthread_rwlock_destroy(&c->cfg);
    coffer_free(c);
}

enum coffer_coord_state coffer_coord_get_state(struct coffer_coord *c)
{
    pthread_rwlock_rdlock(&c->cfg);
    enum coffer_coord_state s = c->state;
    pthread_rwlock_unlock(&c->cfg);
    return s;
}

const char *coffer_coord_state_message(enum coffer_coord_state s)
{
    switch (s) {
    case COFFER_COORD_UNINITIALIZED: return "Coordinator is starting.";
    case COFFER_COORD_RECOVERY: return "Coordinator is in recovery mode: upload recovery secrets or set a new manifest.";
    case COFFER_COORD_ACCEPTING_MANIFEST: return "Coordinator is ready to accept a manifest.";
    case COFFER_COORD_ACCEPTING_MARBLES: return "Coordinator is running correctly and ready to accept marbles.";
    }
    return "unknown state";
}

bool coffer_coord_is_simulation(const struct coffer_coord *c) { return c->simulation; }

uint64_t coffer_coord_log_syncs(struct coffer_coord *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->syncs;
    pthread_mutex_unlock(&c->mu);
    return n;
}

enum coffer_err coffer_coord_cert_pem(struct coffer_coord *c, enum coffer_pki_cert which, struct coffer_buf *out)
{
    pthread_rwlock_rdlock(&c->cfg);
    enum coffer_err r = coffer_pki_cert_pem(c->pki, which, out);
    pthread_rwlock_unlock(&c->cfg);
    return r;
}

/* Every handshake presents the current root: it changes when a recovery
 * loads the recovered state's CA. */
static int cert_cb(SSL *ssl, void *arg)
{
    struct coffer_coord *c = arg;
    pthread_rwlock_rdlock(&c->cfg);
    int ok = c->tls_root_gen == 0 || coffer_pki_tls_use(c->pki, ssl) == COFFER_OK;
    pthread_rwlock_unlock(&c->cfg);
    return ok ? 1 : 0;
}

enum coffer_err coffer_coord_tls_ctx(struct coffer_coord *c, struct ssl_ctx_st **out)
{
    pthread_rwlock_rdlock(&c->cfg);
    enum coffer_err r = coffer_pki_tls_server_ctx(c->pki, out);
    pthread_rwlock_unlock(&c->cfg);
    if (r == COFFER_OK)
        SSL_CTX_set_cert_cb(*out, cert_cb, c);
    return r;
}

enum coffer_err coffer_coord_root_der(struct coffer_coord *c, uint8_t **der, size_t *size)
{
    pthread_rwlock_rdlock(&c->cfg);
    const uint8_t *d = coffer_pki_cert_der(c->pki, COFFER_PKI_ROOT, size);
    *der = coffer_malloc(*size);
    if (*der != NULL)
        memcpy(*der, d, *size);
    pthread_rwlock_unlock(&c->cfg);
    return *der ? COFFER_OK : COFFER_E_NOMEM;
}

enum coffer_err coord_generate_secrets(struct coffer_coord *c)
{
    for (size_t i = 0; i < c->manifest->secrets_count; i++) {
        const struct coffer_mf_secret *s = &c->manifest->secrets[i];
        struct secret_val *v = &c->secrets[i];
        if (s->user_defined || !s->shared || v->set)
            continue;
        enum coffer_err r;
        if (s->type == COFFER_SECRET_SYMMETRIC) {
            if ((r = coffer_secret_new(s->size_bits / 8, &v->key)) != COFFER_OK ||
                (r = coffer_random(v->key->data, v->key->size)) != COFFER_OK)
                return r;
        } else if ((r = coffer_pki_issue_secret(c->pki, s, &v->cert, &v->cert_size, &v->key)) != COFFER_OK) {
            return r;
        }
        v->set = true;
    }
    return COFFER_OK;
}

/* In recovery mode, a new manifest starts over: the old sealed files are
 * kept aside (never silently deleted), a new DEK is sealed to this
 * platform, and the log starts empty. */
static enum coffer_err start_over(struct coffer_coord *c)
{
    if (c->seal_dir == NULL)
        return COFFER_OK;
    char suffix[64];
    snprintf(suffix, sizeof(suffix), ".discarded-%llu", (unsigned long long)time(NULL));
    static const char *const files[] = {"sealed_key", "sealed_state", "audit.log", "recovery.json"};
    for (size_t i = 0; i < 4; i++) {
        char *from = coord_path(c, files[i]);
        size_t n = from ? strlen(from) + sizeof(suffix) : 0;
        char *to = from ? coffer_malloc(n) : NULL;
        if (to != NULL) {
            snprintf(to, n, "%s%s", from, suffix);
            if (rename(from, to) != 0 && errno != ENOENT)
                coffer_warn("cannot keep %s aside: %s", from, strerror(errno));
        }
        coffer_free(from);
        coffer_free(to);
    }
    coffer_warn("a new manifest in recovery mode: the old state is kept aside as *%s and not used", suffix);
    coord_recovery_clear(c);
    json_object_clear(c->counters);
    coord_prev_free(c);
    coffer_secret_free(c->dek);
    c->dek = NULL;
    memset(c->audit_head, 0, 32);
    c->audit_seq = c->durable_seq = 0;
    enum coffer_err r;
    if ((r = coffer_secret_new(32, &c->dek)) != COFFER_OK || (r = coffer_random(c->dek->data, 32)) != COFFER_OK ||
        (r = coord_write_sealed_key(c)) != COFFER_OK)
        return r;
    return open_log(c);
}

enum coffer_err coffer_coord_set_manifest(struct coffer_coord *c, const void *raw, size_t size,
                                          json_t **recovery_secrets)
{
    if (recovery_secrets != NULL)
        *recovery_secrets = NULL;
    pthread_rwlock_wrlock(&c->cfg);
    enum coffer_err r = COFFER_OK;
    json_t *rec = NULL;
    if (c->state != COFFER_COORD_ACCEPTING_MANIFEST && c->state != COFFER_COORD_RECOVERY) {
        r = COFFER_FAIL(COFFER_E_STATE, "a manifest can be set only while the coordinator accepts one (state %d: %s)",
                        c->state, coffer_coord_state_message(c->state));
        goto out;
    }
    if ((r = coord_setup_manifest(c, raw, size)) != COFFER_OK)
        goto out;
    if (c->state == COFFER_COORD_RECOVERY && (r = start_over(c)) != COFFER_OK)
        goto undo;
    if ((r = coffer_secret_new(32, &c->root_secret)) != COFFER_OK ||
        (r = coffer_random(c->root_secret->data, 32)) != COFFER_OK || (r = coord_generate_secrets(c)) != COFFER_OK ||
        (r = coord_recovery_secrets(c, &rec)) != COFFER_OK)
        goto undo;
    uint8_t fp[32];
    char fph[65];
    sha256(raw, size, fp);
    coffer_hex_encode(fp, 32, fph);
    json_t *f = json_pack("{s:s,s:I}", "manifestFingerprint", fph, "recoveryKeys",
                          (json_int_t)c->manifest->recovery_keys_count);
    if ((r = coord_log(c, "manifest set", f)) != COFFER_OK)
        goto undo;
    c->state = COFFER_COORD_ACCEPTING_MARBLES;
    if ((r = coord_commit(c)) != COFFER_OK) {
        c->state = COFFER_COORD_ACCEPTING_MANIFEST;
        goto undo;
    }
    coffer_info("manifest set (fingerprint %s)", fph);
    if (recovery_secrets != NULL) {
        *recovery_secrets = rec;
        rec = NULL;
    }
    goto out;
undo:
    pthread_mutex_lock(&c->mu);
    coord_free_secrets(c);
    pthread_mutex_unlock(&c->mu);
    coffer_manifest_free(c->manifest);
    coffer_free(c->manifest_raw);
    coffer_secret_free(c->root_secret);
    c->manifest = NULL;
    c->manifest_raw = NULL;
    c->root_secret = NULL;
out:
    json_decref(rec);
    pthread_rwlock_unlock(&c->cfg);
    return r;
}

enum coffer_err coffer_coord_get_manifest(struct coffer_coord *c, uint8_t **raw, size_t *size, uint8_t fingerprint[32],
                                          uint8_t **sig, size_t *sig_size)
{
    *raw = *sig = NULL;
    *size = *sig_size = 0;
    pthread_rwlock_rdlock(&c->cfg);
    enum coffer_err r = COFFER_OK;
    if (c->manifest == NULL || c->state != COFFER_COORD_ACCEPTING_MARBLES) {
        r = COFFER_FAIL(COFFER_E_STATE, "no manifest has been set");
    } else if ((*raw = coffer_malloc(c->manifest_size)) == NULL) {
        r = COFFER_E_NOMEM;
    } else {
        memcpy(*raw, c->manifest_raw, c->manifest_size);
        *size = c->manifest_size;
        sha256(c->manifest_raw, c->manifest_size, fingerprint);
        r = coffer_pki_sign_root(c->pki, c->manifest_raw, c->manifest_size, sig, sig_size);
        if (r != COFFER_OK) {
            coffer_free(*raw);
            *raw = NULL;
        }
    }
    pthread_rwlock_unlock(&c->cfg);
    return r;
}

const struct coffer_mf_user *coord_find_user(struct coffer_coord *c, const uint8_t *cert, size_t size)
{
    if (cert == NULL || size == 0 || c->manifest == NULL)
        return NULL;
    return coffer_manifest_user_by_cert(c->manifest, cert, size);
}

const char *coord_type_string(enum coffer_secret_type t)
{
    static const char *const names[] = {"symmetric-key", "cert-rsa", "cert-ecdsa", "cert-ed25519", "plain"};
    return names[t];
}

enum coffer_err coffer_coord_set_secrets(struct coffer_coord *c, const uint8_t *user_cert, size_t user_cert_size,
                                         const json_t *request)
{
    pthread_rwlock_wrlock(&c->cfg);
    enum coffer_err r = COFFER_OK;
    size_t n = json_is_object(request) ? json_object_size(request) : 0;
    struct secret_val *staged = NULL;
    size_t *index = NULL;
    const struct coffer_mf_user *u = NULL;
    if (c->state != COFFER_COORD_ACCEPTING_MARBLES) {
        r = COFFER_FAIL(COFFER_E_STATE, "secrets can be set only after a manifest is set");
        goto out;
    }
    if ((u = coord_find_user(c, user_cert, user_cert_size)) == NULL) {
        r = COFFER_FAIL(COFFER_E_DENIED, "no user in the manifest has this client certificate");
        goto out;
    }
    if (!json_is_object(request) || n == 0) {
        r = COFFER_FAIL(COFFER_E_JSON, "$.secrets: expected a non-empty object of name to secret");
        goto out;
    }
    staged = coffer_calloc(n, sizeof(*staged));
    index = coffer_calloc(n, sizeof(*index));
    if (staged == NULL || index == NULL) {
        r = COFFER_E_NOMEM;
        goto out;
    }
    const char *name;
    json_t *v;
    size_t k = 0;
    json_object_foreach((json_t *)request, name, v) {
        char path[300];
        snprintf(path, sizeof(path), "$.secrets.%s", name);
        const struct coffer_mf_secret *s = coffer_manifest_secret(c->manifest, name);
        if (s == NULL) {
            r = COFFER_FAIL(COFFER_E_JSON, "%s: the manifest has no secret of this name", path);
            goto out;
        }
        if (!s->user_defined) {
            r = COFFER_FAIL(COFFER_E_JSON, "%s: only user-defined secrets can be set", path);
            goto out;
        }
        if (!coffer_manifest_user_may(c->manifest, u, COFFER_ROLE_SECRETS, name, COFFER_ACTION_WRITE_SECRET)) {
            r = COFFER_FAIL(COFFER_E_DENIED, "user %s may not write secret %s", u->name, name);
            goto out;
        }
        index[k] = (size_t)(s - c->manifest->secrets);
        struct secret_val *st = &staged[k++];
        if (s->type == COFFER_SECRET_SYMMETRIC || s->type == COFFER_SECRET_PLAIN) {
            uint8_t *key;
            size_t kn;
            if ((r = coord_json_get_b64(v, path, "Key", &key, &kn)) != COFFER_OK)
                goto out;
            if (s->type == COFFER_SECRET_SYMMETRIC && kn * 8 != s->size_bits) {
                coffer_memzero(key, kn);
                coffer_free(key);
                r = COFFER_FAIL(COFFER_E_JSON, "%s.Key: %zu bytes, but the secret is %u bits", path, kn, s->size_bits);
                goto out;
            }
            r = coffer_secret_new(kn, &st->key);
            if (r == COFFER_OK)
                memcpy(st->key->data, key, kn);
            coffer_memzero(key, kn);
            coffer_free(key);
            if (r != COFFER_OK)
                goto out;
        } else {
            uint8_t *key = NULL;
            size_t kn = 0;
            if ((r = coord_json_get_b64(v, path, "Cert", &st->cert, &st->cert_size)) != COFFER_OK)
                goto out;
            const uint8_t *p = st->cert;
            X509 *x = d2i_X509(NULL, &p, (long)st->cert_size);
            X509_free(x);
            if (x == NULL) {
                r = COFFER_FAIL(COFFER_E_JSON, "%s.Cert: not a DER certificate", path);
                goto out;
            }
            if (json_object_get(v, "Private") != NULL &&
                (r = coord_json_get_b64(v, path, "Private", &key, &kn)) != COFFER_OK)
                goto out;
            r = coffer_secret_new(kn, &st->key);
            if (r == COFFER_OK && kn > 0)
                memcpy(st->key->data, key, kn);
            if (key != NULL) {
                coffer_memzero(key, kn);
                coffer_free(key);
            }
            if (r != COFFER_OK)
                goto out;
        }
        st->set = true;
    }
    /* all valid: log, apply, seal */
    json_t *names = json_array();
    for (size_t i = 0; names != NULL && i < n; i++)
        json_array_append_new(names, json_string(c->manifest->secrets[index[i]].name));
    /* one line for the whole request: a crash leaves it whole or absent */
    if ((r = coord_log(c, "secret set", json_pack("{s:s,s:o}", "user", u->name, "secrets", names))) != COFFER_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct secret_val *dst = &c->secrets[index[i]];
        coffer_secret_free(dst->key);
        coffer_free(dst->cert);
        *dst = staged[i];
        staged[i] = (struct secret_val){0};
    }
    r = coord_commit(c);
out:
    for (size_t i = 0; staged != NULL && i < n; i++) {
        coffer_secret_free(staged[i].key);
        coffer_free(staged[i].cert);
    }
    coffer_free(staged);
    coffer_free(index);
    pthread_rwlock_unlock(&c->cfg);
    return r;
}

static enum coffer_err public_of(const uint8_t *pkcs8, size_t n, uint8_t **out, size_t *out_n)
{
    const uint8_t *p = pkcs8;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)n);
    EVP_PKEY *k = p8 ? EVP_PKCS82PKEY(p8) : NULL;
    PKCS8_PRIV_KEY_INFO_free(p8);
    int len = k ? i2d_PUBKEY(k, NULL) : 0;
    enum coffer_err r = COFFER_OK;
    if (len <= 0 || (*out = coffer_malloc((size_t)len)) == NULL) {
        r = len <= 0 ? COFFER_FAIL(COFFER_E_MALFORMED, "stored private key does not parse") : COFFER_E_NOMEM;
    } else {
        uint8_t *w = *out;
        i2d_PUBKEY(k, &w);
        *out_n = (size_t)len;
    }
    EVP_PKEY_free(k);
    return r;
}

enum coffer_err coffer_coord_get_secrets(struct coffer_coord *c, const uint8_t *user_cert, size_t user_cert_size,
                                         const char *const *names, size_t count, json_t **out)
{
    *out = NULL;
    pthread_rwlock_rdlock(&c->cfg);
    enum coffer_err r = COFFER_OK;
    json_t *res = json_object();
    const struct coffer_mf_user *u = NULL;
    if (res == NULL) {
        r = COFFER_E_NOMEM;
        goto out;
    }
    if (c->state != COFFER_COORD_ACCEPTING_MARBLES) {
        r = COFFER_FAIL(COFFER_E_STATE, "no manifest has been set");
        goto out;
    }
    if ((u = coord_find_user(c, user_cert, user_cert_size)) == NULL) {
        r = COFFER_FAIL(COFFER_E_DENIED, "no user in the manifest has this client certificate");
        goto out;
    }
    for (size_t i = 0; i < count && r == COFFER_OK; i++) {
        const struct coffer_mf_secret *s = coffer_manifest_secret(c->manifest, names[i]);
        if (s == NULL) {
            r = COFFER_FAIL(COFFER_E_NOT_FOUND, "the manifest has no secret %s", names[i]);
            break;
        }
        if (!coffer_manifest_user_may(c->manifest, u, COFFER_ROLE_SECRETS, names[i], COFFER_ACTION_READ_SECRET)) {
            r = COFFER_FAIL(COFFER_E_DENIED, "user %s may not read secret %s", u->name, names[i]);
            break;
        }
        const struct secret_val *v = &c->secrets[s - c->manifest->secrets];
        json_t *e = json_pack("{s:s,s:I,s:b,s:b,s:I}", "Type", coord_type_string(s->type), "Size", (json_int_t)s->size_bits,
                              "Shared", s->shared, "UserDefined", s->user_defined, "ValidFor",
                              (json_int_t)s->valid_for_days);
        if (e == NULL) {
            r = COFFER_E_NOMEM;
            break;
        }
        int rc = 0;
        if (!v->set) {
            rc |= json_object_set_new(e, "Cert", json_null());
        } else if (v->cert != NULL) {
            rc |= coord_json_set_b64(e, "Cert", v->cert, v->cert_size);
            rc |= coord_json_set_b64(e, "Private", v->key->data, v->key->size);
            uint8_t *pub;
            size_t pn;
            if (v->key->size > 0 && public_of(v->key->data, v->key->size, &pub, &pn) == COFFER_OK) {
                rc |= coord_json_set_b64(e, "Public", pub, pn);
                coffer_free(pub);
            }
        } else {
            rc |= coord_json_set_b64(e, "Private", v->key->data, v->key->size);
            rc |= coord_json_set_b64(e, "Public", v->key->data, v->key->size);
        }
        rc |= json_object_set_new(res, names[i], e);
        if (rc != 0)
            r = COFFER_E_NOMEM;
    }
out:
    pthread_rwlock_unlock(&c->cfg);
    if (r != COFFER_OK) {
        json_decref(res);
        return r;
    }
    *out = res;
    return COFFER_OK;
}

enum coffer_err coffer_coord_nonce(struct coffer_coord *c, uint8_t nonce[COFFER_COORD_NONCE_SIZE])
{
    pthread_mutex_lock(&c->mu);
    size_t slot = c->nonce_next;
    struct nonce_slot *s = &c->nonces[slot];
    c->nonce_next = (c->nonce_next + 1) % COORD_NONCE_SLOTS;
    enum coffer_err r = coffer_random(s->nonce + 2, COFFER_COORD_NONCE_SIZE - 2);
    if (r == COFFER_OK) {
        s->nonce[0] = (uint8_t)(slot >> 8);
        s->nonce[1] = (uint8_t)slot;
        s->expires_ns = coffer_now_ns() + c->nonce_ttl_ns;
        s->live = true;
        memcpy(nonce, s->nonce, COFFER_COORD_NONCE_SIZE);
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* Take a nonce: it must be live and fresh; it is spent either way. Its
 * first two bytes name its slot (30 random bytes remain unguessable).
 * Caller holds mu. */
static enum coffer_err take_nonce(struct coffer_coord *c, const uint8_t *nonce)
{
    uint64_t now = coffer_now_ns();
    size_t slot = (size_t)nonce[0] << 8 | nonce[1];
    struct nonce_slot *s = slot < COORD_NONCE_SLOTS ? &c->nonces[slot] : NULL;
    if (s == NULL || !s->live || !coffer_ct_eq(s->nonce, nonce, COFFER_COORD_NONCE_SIZE))
        return COFFER_FAIL(COFFER_E_DENIED,
                           "the activation nonce was not issued by this coordinator or was already used");
    s->live = false;
    if (now > s->expires_ns)
        return COFFER_FAIL(COFFER_E_EXPIRED, "the activation nonce expired; ask for a new one");
    return COFFER_OK;
}

/* ---- rendering marble parameters */

struct render {
    struct coffer_coord *c;
    const struct coffer_mf_marble *marble;
    const char *uuid;
    const uint8_t *cert;
    size_t cert_size;
    const uint8_t *spki;
    size_t spki_size;
    /* per-marble values made during this activation, freed after */
    struct coffer_secret *tmp[64];
    uint8_t *tmp_cert[64];
    size_t ntmp;
    uint8_t *pub[64];
    size_t npub;
};

static enum coffer_err derive_symmetric(struct render *rd, const struct coffer_mf_secret *s,
                                        const struct coffer_secret *root, struct coffer_secret **out)
{
    enum coffer_err r = coffer_secret_new(s->size_bits / 8, out);
    if (r != COFFER_OK)
        return r;
    size_t salt_n = strlen(rd->uuid) + strlen(s->name);
    uint8_t *salt = coffer_malloc(salt_n + 1);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    const char *info = rd->marble->disable_secret_binding ? "" : rd->marble->name;
    if (salt != NULL) {
        memcpy(salt, rd->uuid, strlen(rd->uuid));
        memcpy(salt + strlen(rd->uuid), s->name, strlen(s->name));
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, root->data, root->size),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, salt_n),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *)info, strlen(info)),
        OSSL_PARAM_construct_end(),
    };
    if (salt == NULL || kc == NULL || EVP_KDF_derive(kc, (*out)->data, (*out)->size, params) != 1)
        r = salt == NULL ? COFFER_E_NOMEM : coord_ossl("HKDF");
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    coffer_free(salt);
    if (r != COFFER_OK) {
        coffer_secret_free(*out);
        *out = NULL;
    }
    return r;
}

static enum coffer_err lookup(void *arg, const char *path, const uint8_t **data, size_t *size,
                              enum coffer_tmpl_form *form, int *secret_type)
{
    struct render *rd = arg;
    struct coffer_coord *c = rd->c;
    *secret_type = -1;
    *form = COFFER_TMPL_CERT;
    if (strcmp(path, ".MarbleRun.MarbleCert.Cert") == 0) {
        *data = rd->cert;
        *size = rd->cert_size;
        return COFFER_OK;
    }
    if (strcmp(path, ".MarbleRun.MarbleCert.Public") == 0) {
        *data = rd->spki;
        *size = rd->spki_size;
        *form = COFFER_TMPL_PUBLIC_KEY;
        return COFFER_OK;
    }
    if (strcmp(path, ".MarbleRun.MarbleCert.Private") == 0)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, ".MarbleRun.MarbleCert.Private: a coffer marble keeps its own "
                           "private key (it sent a CSR); the coordinator never has it");
    if (strcmp(path, ".MarbleRun.RootCA.Cert") == 0) {
        *data = coffer_pki_cert_der(c->pki, COFFER_PKI_MARBLE_ROOT, size);
        return COFFER_OK;
    }
    if (strcmp(path, ".MarbleRun.CoordinatorRoot.Cert") == 0) {
        *data = coffer_pki_cert_der(c->pki, COFFER_PKI_ROOT, size);
        return COFFER_OK;
    }
    if (strcmp(path, ".MarbleRun.CoordinatorIntermediate.Cert") == 0) {
        *data = coffer_pki_cert_der(c->pki, COFFER_PKI_INTERMEDIATE, size);
        return COFFER_OK;
    }
    /* .Previous.Secrets.X: X before the last root-secret rotation; X as it
     * is now where it has no such value (no rotation yet, X is newer, or X
     * is a certificate made per activation) */
    const char *prefix = ".Secrets.", *previous_prefix = ".Previous.Secrets.";
    bool previous = strncmp(path, previous_prefix, strlen(previous_prefix)) == 0;
    if (!previous && strncmp(path, prefix, strlen(prefix)) != 0)
        return COFFER_E_NOT_FOUND;
    char name[256];
    snprintf(name, sizeof(name), "%s", path + strlen(previous ? previous_prefix : prefix));
    char *part = strchr(name, '.');
    if (part != NULL)
        *part++ = '\0';
    const struct coffer_mf_secret *s = coffer_manifest_secret(c->manifest, name);
    if (s == NULL)
        return COFFER_E_NOT_FOUND;
    *secret_type = (int)s->type;
    const struct secret_val *v = &c->secrets[s - c->manifest->secrets];
    struct coffer_secret *key = v->key;
    uint8_t *cert = v->cert;
    size_t cert_size = v->cert_size;
    const struct coffer_secret *root = previous && c->prev_root_secret ? c->prev_root_secret : c->root_secret;
    const struct prev_secret *pv = previous && c->prev_root_secret ? prev_find(c, s->name) : NULL;
    enum coffer_err r;
    if (pv != NULL) {
        key = pv->key;
        cert = pv->cert;
        cert_size = pv->cert_size;
        *secret_type = pv->type;
    } else if (!v->set && s->user_defined) {
        return COFFER_FAIL(COFFER_E_STATE, "user-defined secret %s has not been set yet", s->name);
    } else if (!v->set) { /* per-marble: made for this activation */
        if (rd->ntmp >= 64)
            return COFFER_FAIL(COFFER_E_TOO_LARGE, "too many per-marble secrets in one activation");
        if (s->type == COFFER_SECRET_SYMMETRIC)
            r = derive_symmetric(rd, s, root, &key);
        else
            r = coffer_pki_issue_secret(c->pki, s, &cert, &cert_size, &key);
        if (r != COFFER_OK)
            return r;
        rd->tmp[rd->ntmp] = key;
        rd->tmp_cert[rd->ntmp++] = cert;
    }
    bool is_cert = cert != NULL;
    if (!is_cert) {
        if (part != NULL)
            return COFFER_E_NOT_FOUND;
        *data = key->data;
        *size = key->size;
        *form = COFFER_TMPL_BYTES;
        return COFFER_OK;
    }
    if (part != NULL && strcmp(part, "Cert") == 0) {
        *data = cert;
        *size = cert_size;
        *form = COFFER_TMPL_CERT;
        return COFFER_OK;
    }
    if (part != NULL && strcmp(part, "Private") == 0) {
        *data = key->data;
        *size = key->size;
        *form = COFFER_TMPL_PRIVATE_KEY;
        return COFFER_OK;
    }
    if (part == NULL || strcmp(part, "Public") == 0) {
        if (rd->npub >= 64)
            return COFFER_FAIL(COFFER_E_TOO_LARGE, "too many public keys in one activation");
        uint8_t *pub;
        size_t pn;
        if ((r = public_of(key->data, key->size, &pub, &pn)) != COFFER_OK)
            return r;
        rd->pub[rd->npub++] = pub;
        *data = pub;
        *size = pn;
        *form = COFFER_TMPL_PUBLIC_KEY;
        return COFFER_OK;
    }
    return COFFER_E_NOT_FOUND;
}

static enum coffer_err render_values(struct render *rd, const struct coffer_mf_value *vals, size_t n,
                                     enum coffer_tmpl_kind kind, json_t *into)
{
    for (size_t i = 0; i < n; i++) {
        struct coffer_buf out;
        coffer_buf_init(&out, 64u << 20, true);
        enum coffer_err r = vals[i].no_templates ? coffer_buf_put(&out, vals[i].data, vals[i].size)
                                                 : coffer_tmpl_render(vals[i].data, vals[i].size, kind, lookup, rd, &out);
        int rc = r == COFFER_OK ? coord_json_set_b64(into, vals[i].name, out.data ? out.data : (const uint8_t *)"", out.size) : 0;
        coffer_buf_free(&out);
        if (r != COFFER_OK) {
            coffer_err_context("rendering %s %s", kind == COFFER_TMPL_FILE ? "file" : "env", vals[i].name);
            return r;
        }
        if (rc != 0)
            return COFFER_E_NOMEM;
    }
    return COFFER_OK;
}

enum coffer_err coffer_coord_activate(struct coffer_coord *c, const struct coffer_coord_activation *req, json_t **out)
{
    *out = NULL;
    /* shared: activations run in parallel; only mu serialises the
     * nonce, the counter and the log append */
    pthread_rwlock_rdlock(&c->cfg);
    enum coffer_err r = COFFER_OK;
    uint8_t *cert = NULL, *spki = NULL;
    size_t cert_n = 0, spki_n = 0;
    json_t *resp = NULL, *files = NULL, *env = NULL, *argv = NULL;
    struct coffer_buf chain, root;
    coffer_buf_init(&chain, 0, false);
    coffer_buf_init(&root, 0, false);
    struct render rd = {.c = c, .uuid = req->uuid};
    char claims[1024] = "{}";
    if (c->state != COFFER_COORD_ACCEPTING_MARBLES) {
        r = COFFER_FAIL(COFFER_E_STATE, "the coordinator is not accepting marbles (state %d)", c->state);
        goto out;
    }
    if (req->uuid == NULL || req->uuid[0] == '\0' || strlen(req->uuid) > 128) {
        r = COFFER_FAIL(COFFER_E_INVALID_ARG, "a marble needs a UUID of 1 to 128 characters");
        goto out;
    }
    const struct coffer_mf_marble *mb = coffer_manifest_marble(c->manifest, req->marble_type ? req->marble_type : "");
    if (mb == NULL) {
        r = COFFER_FAIL(COFFER_E_DENIED, "the manifest has no marble type \"%s\"",
                        req->marble_type ? req->marble_type : "");
        goto out;
    }
    rd.marble = mb;
    size_t mi = (size_t)(mb - c->manifest->marbles);
    const struct coffer_mf_package *pkg = coffer_manifest_package(c->manifest, mb->package);
    pthread_mutex_lock(&c->mu);
    r = take_nonce(c, req->nonce);
    bool over = mb->max_activations > 0 && c->activations[mi] >= mb->max_activations;
    pthread_mutex_unlock(&c->mu);
    if (r != COFFER_OK)
        goto out;
    if (over) { /* checked again below; this spares the work */
        r = COFFER_FAIL(COFFER_E_DENIED, "marble type %s reached its MaxActivations (%llu)", mb->name,
                        (unsigned long long)mb->max_activations);
        goto out;
    }
    if ((r = coffer_pki_certify_csr(c->pki, req->csr_der, req->csr_size, req->uuid, mb->name, c->cert_days, &cert,
                                    &cert_n, &spki, &spki_n)) != COFFER_OK)
        goto out;
    uint8_t report_data[64];
    sha256(spki, spki_n, report_data);
    memcpy(report_data + 32, req->nonce, 32);
    r = c->verify(c->verify_arg, req->evidence, req->evidence_size, pkg, report_data, claims, sizeof(claims));
    if (r != COFFER_OK) {
        coffer_err_context("marble %s (package %s)", mb->name, pkg->name);
        goto out;
    }
    rd.cert = cert;
    rd.cert_size = cert_n;
    rd.spki = spki;
    rd.spki_size = spki_n;
    files = json_object();
    env = json_object();
    argv = json_array();
    if (files == NULL || env == NULL || argv == NULL) {
        r = COFFER_E_NOMEM;
        goto out;
    }
    if ((r = render_values(&rd, mb->files, mb->files_count, COFFER_TMPL_FILE, files)) != COFFER_OK ||
        (r = render_values(&rd, mb->env, mb->env_count, COFFER_TMPL_ENV, env)) != COFFER_OK)
        goto out;
    for (size_t i = 0; i < mb->argv_count; i++)
        if (json_array_append_new(argv, json_string(mb->argv[i])) != 0) {
            r = COFFER_E_NOMEM;
            goto out;
        }
    if ((r = coffer_pem_append(&chain, "CERTIFICATE", cert, cert_n)) != COFFER_OK ||
        (r = coffer_pki_cert_pem(c->pki, COFFER_PKI_INTERMEDIATE, &chain)) != COFFER_OK ||
        (r = coffer_pki_cert_pem(c->pki, COFFER_PKI_MARBLE_ROOT, &root)) != COFFER_OK ||
        (r = coffer_buf_put_u8(&chain, 0)) != COFFER_OK || (r = coffer_buf_put_u8(&root, 0)) != COFFER_OK)
        goto out;
    /* predefined environment, as MarbleRun gives every marble */
    struct coffer_buf coord_root;
    coffer_buf_init(&coord_root, 0, false);
    if ((r = coffer_pki_cert_pem(c->pki, COFFER_PKI_ROOT, &coord_root)) == COFFER_OK) {
        int rc = coord_json_set_b64(env, "MARBLE_PREDEFINED_ROOT_CA", root.data, root.size - 1) |
                 coord_json_set_b64(env, "MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN", chain.data, chain.size - 1) |
                 coord_json_set_b64(env, "MARBLE_PREDEFINED_COORDINATOR_ROOT_CA", coord_root.data, coord_root.size);
        if (rc != 0)
            r = COFFER_E_NOMEM;
    }
    coffer_buf_free(&coord_root);
    if (r != COFFER_OK)
        goto out;
    resp = json_pack("{s:s,s:s,s:{s:O,s:O,s:O}}", "Certificate", (const char *)chain.data, "RootCA",
                     (const char *)root.data, "Parameters", "Files", files, "Env", env, "Argv", argv);
    if (resp == NULL) {
        r = COFFER_E_NOMEM;
        goto out;
    }
    json_t *claims_json = NULL;
    if (coffer_json_parse(claims, strlen(claims), sizeof(claims), &claims_json) != COFFER_OK)
        claims_json = json_object();
    /* the counter and the log line together, then wait for the disk
     * (other activations' lines share the sync) */
    pthread_mutex_lock(&c->mu);
    uint64_t seq = 0;
    if (mb->max_activations > 0 && c->activations[mi] >= mb->max_activations) {
        json_decref(claims_json);
        r = COFFER_FAIL(COFFER_E_DENIED, "marble type %s reached its MaxActivations (%llu)", mb->name,
                        (unsigned long long)mb->max_activations);
    } else if ((r = log_append(c, "activation",
                               json_pack("{s:s,s:s,s:s,s:o}", "marbleType", mb->name, "uuid", req->uuid, "package",
                                         pkg->name, "claims", claims_json), &seq)) == COFFER_OK) {
        c->activations[mi]++;
        r = log_wait(c, seq);
    }
    pthread_mutex_unlock(&c->mu);
    if (r == COFFER_OK)
        coffer_info("activated marble %s (uuid %s)", mb->name, req->uuid);
out:
    for (size_t i = 0; i < rd.ntmp; i++) {
        coffer_secret_free(rd.tmp[i]);
        coffer_free(rd.tmp_cert[i]);
    }
    for (size_t i = 0; i < rd.npub; i++)
        coffer_free(rd.pub[i]);
    json_decref(files);
    json_decref(env);
    json_decref(argv);
    coffer_buf_free(&chain);
    coffer_buf_free(&root);
    coffer_free(cert);
    coffer_free(spki);
    pthread_rwlock_unlock(&c->cfg);
    if (r != COFFER_OK) {
        json_decref(resp);
        return r;
    }
    *out = resp;
    return COFFER_OK;
}

bool coffer_coord_is_user(struct coffer_coord *c, const uint8_t *cert_der, size_t size)
{
    pthread_rwlock_rdlock(&c->cfg);
    bool yes = c->manifest != NULL && c->state == COFFER_COORD_ACCEPTING_MARBLES &&
               coord_find_user(c, cert_der, size) != NULL;
    pthread_rwlock_unlock(&c->cfg);
    return yes;
}

enum coffer_err coffer_coord_quote(struct coffer_coord *c, const uint8_t *nonce, size_t nonce_size,
                                   uint8_t **evidence, size_t *evidence_size)
{
    *evidence = NULL;
    *evidence_size = 0;
    if (c->evidence == NULL)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "this coordinator has no attestation provider");
    if (nonce_size > 1024)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "a quote nonce is at most 1024 bytes");
    uint8_t report_data[64] = {0};
    pthread_rwlock_rdlock(&c->cfg);
    size_t n;
    const uint8_t *root = coffer_pki_cert_der(c->pki, COFFER_PKI_ROOT, &n);
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    bool ok = h != NULL && EVP_DigestInit_ex(h, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(h, root, n) == 1 &&
              (nonce_size == 0 || EVP_DigestUpdate(h, nonce, nonce_size) == 1) &&
              EVP_DigestFinal_ex(h, report_data, NULL) == 1;
    EVP_MD_CTX_free(h);
    pthread_rwlock_unlock(&c->cfg);
    if (!ok)
        return coord_ossl("hashing the root certificate");
    return c->evidence(c->evidence_arg, report_data, evidence, evidence_size);
}

uint64_t coffer_coord_activations(struct coffer_coord *c, const char *marble_type)
{
    pthread_rwlock_rdlock(&c->cfg);
    pthread_mutex_lock(&c->mu);
    uint64_t n = 0;
    const struct coffer_mf_marble *mb = marble_named(c, marble_type);
    if (mb != NULL)
        n = c->activations[mb - c->manifest->marbles];
    pthread_mutex_unlock(&c->mu);
    pthread_rwlock_unlock(&c->cfg);
    return n;
}

enum coffer_err coffer_coord_audit(struct coffer_coord *c, json_t **out)
{
    *out = NULL;
    if (c->seal_dir == NULL)
        return COFFER_FAIL(COFFER_E_STATE, "this coordinator keeps no audit log (no seal folder)");
    char *path = coord_path(c, "audit.log");
    if (path == NULL)
        return COFFER_E_NOMEM;
    /* lines on disk; a line being written may be cut: only whole lines count */
    uint8_t *data;
    size_t size;
    enum coffer_err r = coffer_file_read_all(path, 1u << 30, &data, &size);
    coffer_free(path);
    if (r == COFFER_E_NOT_FOUND)
        return (*out = json_array()) != NULL ? COFFER_OK : COFFER_E_NOMEM;
    if (r != COFFER_OK)
        return r;
    json_t *arr = json_array();
    size_t start = 0;
    for (size_t i = 0; arr != NULL && i < size; i++) {
        if (data[i] != '\n')
            continue;
        json_t *o;
        if (coffer_json_parse(data + start, i - start, 1 << 20, &o) == COFFER_OK)
            json_array_append_new(arr, o);
        start = i + 1;
    }
    coffer_free(data);
    if (arr == NULL)
        return COFFER_E_NOMEM;
    *out = arr;
    return COFFER_OK;
}
