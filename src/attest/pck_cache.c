/*
 * pck_cache.c — verification of the PCK certificate chain inside an Intel
 * quote, memoised per chain text.
 *
 * Design: a quote carries its chain as PEM text: PCK leaf, PCK CA, Intel
 * root. Parsing three certificates and checking two signatures costs more
 * than everything else in a quote (~0.5 ms with OpenSSL 3.0), yet a
 * verifier sees the same few platforms again and again. So the work splits:
 *   - time-independent, memoised by SHA-256 of the exact PEM text: canonical
 *     PEM, exactly 3 certificates, CNs, the root byte-identical to the pinned
 *     one, X509_verify_cert's signature / extension / strict checks (run once,
 *     at the first caller's time), the SGX extension, the leaf's raw key;
 *   - time-dependent, on every call: all three certificates valid at now.
 * Only successes are memoised; a failure is recomputed (and fails) each time.
 * Beside each chain the hash of the last QE report whose signature verified
 * under its PCK key is kept (coffer_attest__pck_qe_seen / _remember): the
 * quote's own signature is always verified, the QE's only when it changed.
 *
 * Invariants: I1 an entry exists only for a text that passed every
 * time-independent check. I2 every call checks validity at its own now, so
 * a memoised chain is never accepted outside its certificates' validity.
 * I3 the cache is bounded (PCK_CACHE_SIZE entries, round-robin eviction);
 * X509 objects are reference-counted, so eviction never frees a chain a
 * caller still holds.
 * Threading: one mutex around the table; X509 objects are only read after
 * insertion.
 * Trusts: SHA-256 collision resistance (the memo key), OpenSSL X.509.
 */
#include "attest_int.h"

#include <pthread.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#define PCK_CACHE_SIZE 256

struct entry {
    bool used;
    uint8_t key[32];
    struct pck_chain chain;
    /* SHA-256(QE report || its signature) last verified under this chain's
     * PCK key: the QE report is the same for every quote of a platform until
     * its QE restarts, so its signature need not be checked again. */
    bool qe_set;
    uint8_t qe[32];
};

static struct entry cache[PCK_CACHE_SIZE];
static size_t next_slot;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void coffer_attest__pck_chain_release(struct pck_chain *c)
{
    X509_free(c->leaf);
    X509_free(c->ca);
    c->leaf = c->ca = NULL;
}

void coffer_attest__pck_cache_clear(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < PCK_CACHE_SIZE; i++)
        if (cache[i].used) {
            coffer_attest__pck_chain_release(&cache[i].chain);
            cache[i].used = false;
        }
    next_slot = 0;
    pthread_mutex_unlock(&lock);
}

bool coffer_attest__pck_qe_seen(const struct pck_chain *c, const uint8_t h[32])
{
    bool seen = false;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < PCK_CACHE_SIZE && !seen; i++)
        if (cache[i].used && cache[i].qe_set && memcmp(cache[i].key, c->key, 32) == 0)
            seen = memcmp(cache[i].qe, h, 32) == 0;
    pthread_mutex_unlock(&lock);
    return seen;
}

void coffer_attest__pck_qe_remember(const struct pck_chain *c, const uint8_t h[32])
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < PCK_CACHE_SIZE; i++)
        if (cache[i].used && memcmp(cache[i].key, c->key, 32) == 0) {
            memcpy(cache[i].qe, h, 32);
            cache[i].qe_set = true;
        }
    pthread_mutex_unlock(&lock);
}

void coffer_attest_cache_clear(void)
{
    coffer_attest__pck_cache_clear();
}

static bool lookup(const uint8_t key[32], struct pck_chain *out)
{
    bool found = false;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < PCK_CACHE_SIZE && !found; i++)
        if (cache[i].used && memcmp(cache[i].key, key, 32) == 0) {
            *out = cache[i].chain;
            X509_up_ref(out->leaf);
            X509_up_ref(out->ca);
            found = true;
        }
    pthread_mutex_unlock(&lock);
    return found;
}

static void insert(const uint8_t key[32], const struct pck_chain *c)
{
    pthread_mutex_lock(&lock);
    struct entry *e = &cache[next_slot];
    next_slot = (next_slot + 1) % PCK_CACHE_SIZE;
    if (e->used)
        coffer_attest__pck_chain_release(&e->chain);
    e->used = true;
    e->qe_set = false;
    memcpy(e->key, key, 32);
    e->chain = *c;
    X509_up_ref(c->leaf);
    X509_up_ref(c->ca);
    pthread_mutex_unlock(&lock);
}

static bool valid_at(X509 *x, time_t now)
{
    return X509_cmp_time(X509_get0_notBefore(x), &now) < 0 && X509_cmp_time(X509_get0_notAfter(x), &now) > 0;
}

static void time_str(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "?");
}

static enum coffer_err check_times(const struct pck_chain *c, time_t now)
{
    X509 *certs[3] = {c->leaf, c->ca, coffer_attest__intel_root()};
    static const char *names[3] = {"PCK certificate", "PCK intermediate CA", "Intel root"};
    for (int i = 0; i < 3; i++)
        if (certs[i] == NULL || !valid_at(certs[i], now)) {
            char nb[32], na[32];
            time_str(certs[i] != NULL ? X509_get0_notBefore(certs[i]) : NULL, nb, sizeof(nb));
            time_str(certs[i] != NULL ? X509_get0_notAfter(certs[i]) : NULL, na, sizeof(na));
            return COFFER_FAIL(COFFER_E_EXPIRED, "PCK chain: %s is not valid at the verification time (%s..%s)",
                               names[i], nb, na);
        }
    return COFFER_OK;
}

/* Everything time-independent, run at now (the chain must also be valid
 * then: X509_verify_cert checks times too). */
static enum coffer_err full_verify(const uint8_t *pem, size_t size, time_t now, struct pck_chain *out)
{
    enum coffer_err r;
    STACK_OF(X509) *chain;
    X509 *root = coffer_attest__intel_root();
    char cn[64];
    if (root == NULL)
        return COFFER_FAIL(COFFER_E_INTERNAL, "the pinned Intel root does not parse");
    if ((r = coffer_attest__pem_certs(pem, size, 3, true, &chain)) != COFFER_OK) {
        coffer_err_context("PCK chain");
        return r;
    }
    X509 *leaf = sk_X509_value(chain, 0), *ca = sk_X509_value(chain, 1);
    X509_STORE *store = NULL;
    STACK_OF(X509) *untrusted = NULL;
    X509_STORE_CTX *ctx = NULL;
    coffer_attest__cert_cn(leaf, cn, sizeof(cn));
    if (strcmp(cn, "Intel SGX PCK Certificate") != 0) {
        r = COFFER_FAIL(COFFER_E_CERT, "PCK chain: leaf CN \"%s\", want \"Intel SGX PCK Certificate\"", cn);
        goto out;
    }
    coffer_attest__cert_cn(ca, cn, sizeof(cn));
    if (strcmp(cn, "Intel SGX PCK Processor CA") != 0 && strcmp(cn, "Intel SGX PCK Platform CA") != 0) {
        r = COFFER_FAIL(COFFER_E_CERT, "PCK chain: intermediate CN \"%s\" is not a PCK Processor/Platform CA", cn);
        goto out;
    }
    if (X509_cmp(sk_X509_value(chain, 2), root) != 0) {
        r = COFFER_FAIL(COFFER_E_CERT, "PCK chain: the root in the quote is not the pinned Intel SGX Root CA");
        goto out;
    }
    store = X509_STORE_new();
    untrusted = sk_X509_new_null();
    ctx = X509_STORE_CTX_new();
    if (store == NULL || untrusted == NULL || ctx == NULL || X509_STORE_add_cert(store, root) != 1 ||
        !sk_X509_push(untrusted, ca) || X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
        r = COFFER_FAIL(COFFER_E_CRYPTO, "PCK chain: cannot set up verification");
        goto out;
    }
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(p, now);
    X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_X509_STRICT);
    X509_VERIFY_PARAM_set_depth(p, 2);
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        const char *which = depth == 0 ? "PCK certificate" : depth == 1 ? "PCK intermediate CA" : "Intel root";
        bool time_err = e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID;
        r = COFFER_FAIL(time_err ? COFFER_E_EXPIRED : COFFER_E_CERT, "PCK chain: %s: %s (X509 error %d)", which,
                        X509_verify_cert_error_string(e), e);
        goto out;
    }
    STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(ctx);
    if (built == NULL || sk_X509_num(built) != 3 || X509_cmp(sk_X509_value(built, 2), root) != 0) {
        r = COFFER_FAIL(COFFER_E_CERT, "PCK chain: does not end at the pinned root in 3 certificates");
        goto out;
    }
    if ((r = coffer_attest__pck_ext_from_cert(leaf, &out->pck)) != COFFER_OK ||
        (r = coffer_attest__p256_xy(X509_get0_pubkey(leaf), out->leaf_xy)) != COFFER_OK)
        goto out;
    X509_up_ref(leaf);
    X509_up_ref(ca);
    out->leaf = leaf;
    out->ca = ca;
out:
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    sk_X509_pop_free(chain, X509_free);
    ERR_clear_error();
    return r;
}

enum coffer_err coffer_attest__pck_chain_verify(const uint8_t *pem, size_t size, time_t now, struct pck_chain *out)
{
    uint8_t key[32];
    memset(out, 0, sizeof(*out));
    coffer_attest__sha256(pem, size, key);
    if (lookup(key, out)) {
        enum coffer_err r = check_times(out, now);
        if (r != COFFER_OK)
            coffer_attest__pck_chain_release(out);
        return r;
    }
    enum coffer_err r = full_verify(pem, size, now, out);
    if (r == COFFER_OK) {
        memcpy(out->key, key, 32);
        insert(key, out);
    }
    return r;
}
