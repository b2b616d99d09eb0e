/*
 * ossl.c — the OpenSSL calls the attestation verifiers share: raw ECDSA
 * keys and signatures as Intel and AMD lay them out, PEM certificate lists,
 * CRLs, names, SHA-256, and the pinned Intel root.
 *
 * Design: thin wrappers that turn OpenSSL's return conventions into
 * enum coffer_err and clear OpenSSL's error queue, so one failed check
 * cannot leak an error into the next. Signature helpers record no failure
 * detail themselves: the caller knows which verification step it is and
 * names it with COFFER_FAIL.
 *
 * Invariants: I1 a signature counts as valid only when EVP_DigestVerify
 * returns exactly 1. I2 raw keys are imported as uncompressed points and
 * checked to lie on the curve before use. I3 the pinned root comes only
 * from the compiled-in DER (roots_data.c), parsed once.
 *
 * Trusts: OpenSSL's ECDSA, X.509 and DER code; the embedded root bytes.
 */
#include "attest_int.h"

#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

static X509 *intel_root;
static pthread_once_t intel_root_once = PTHREAD_ONCE_INIT;

static void intel_root_init(void)
{
    const unsigned char *p = coffer_attest__root_intel_sgx_root_ca;
    X509 *x = d2i_X509(NULL, &p, (long)coffer_attest__root_intel_sgx_root_ca_size);
    if (x != NULL && p != coffer_attest__root_intel_sgx_root_ca + coffer_attest__root_intel_sgx_root_ca_size) {
        X509_free(x);
        x = NULL;
    }
    intel_root = x;
    ERR_clear_error();
}

#ifdef COFFER_TESTING
static X509 *test_root;

enum coffer_err coffer_attest_test_pin_intel_root(const uint8_t *der, size_t size)
{
    X509 *x = NULL;
    if (der != NULL) {
        const unsigned char *p = der;
        if ((x = d2i_X509(NULL, &p, (long)size)) == NULL) {
            ERR_clear_error();
            return COFFER_FAIL(COFFER_E_MALFORMED, "test root does not parse");
        }
    }
    X509_free(test_root);
    test_root = x;
    coffer_attest__pck_cache_clear();
    return COFFER_OK;
}
#endif

X509 *coffer_attest__intel_root(void)
{
#ifdef COFFER_TESTING
    if (test_root != NULL)
        return test_root;
#endif
    pthread_once(&intel_root_once, intel_root_init);
    return intel_root;
}

const uint8_t *coffer_attest_intel_root_der(size_t *size)
{
    *size = coffer_attest__root_intel_sgx_root_ca_size;
    return coffer_attest__root_intel_sgx_root_ca;
}

enum coffer_err coffer_attest__p256_key(const uint8_t xy[64], EVP_PKEY **out)
{
    *out = NULL;
    uint8_t pt[65];
    pt[0] = 0x04;
    memcpy(pt + 1, xy, 64);
    enum coffer_err r = COFFER_E_CRYPTO;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
    EVP_PKEY *pk = NULL;
    if (bld == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1) {
        r = COFFER_FAIL(COFFER_E_CRYPTO, "cannot set up a P-256 key import");
        goto out;
    }
    if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        r = COFFER_FAIL(COFFER_E_MALFORMED, "P-256 public key: not a point on the curve");
        goto out;
    }
    if ((chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL || EVP_PKEY_public_check(chk) != 1) {
        r = COFFER_FAIL(COFFER_E_MALFORMED, "P-256 public key: not a valid point on the curve");
        goto out;
    }
    *out = pk;
    pk = NULL;
    r = COFFER_OK;
out:
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    ERR_clear_error();
    return r;
}

enum coffer_err coffer_attest__ecdsa_verify(EVP_PKEY *key, const char *md, const uint8_t *rs, size_t half, bool le,
                                            const uint8_t *msg, size_t msg_size)
{
    enum coffer_err r = COFFER_E_CRYPTO;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *br = NULL, *bs = NULL;
    unsigned char *der = NULL;
    EVP_MD_CTX *mctx = NULL;
    if (sig == NULL)
        goto out;
    br = le ? BN_lebin2bn(rs, (int)half, NULL) : BN_bin2bn(rs, (int)half, NULL);
    bs = le ? BN_lebin2bn(rs + half, (int)half, NULL) : BN_bin2bn(rs + half, (int)half, NULL);
    if (br == NULL || bs == NULL || !ECDSA_SIG_set0(sig, br, bs))
        goto out;
    br = bs = NULL;
    int derlen = i2d_ECDSA_SIG(sig, &der);
    if (derlen <= 0)
        goto out;
    if ((mctx = EVP_MD_CTX_new()) == NULL || EVP_DigestVerifyInit_ex(mctx, NULL, md, NULL, NULL, key, NULL) != 1)
        goto out;
    int v = EVP_DigestVerify(mctx, der, (size_t)derlen, msg, msg_size);
    r = v == 1 ? COFFER_OK : COFFER_E_SIGNATURE;
out:
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(sig);
    OPENSSL_free(der);
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
    return r;
}

/* Whether pem is exactly the canonical PEM of the certificates in sk
 * (PEM_write_bio_X509 output, concatenated), optionally followed by
 * whitespace: nothing else may hide between or around the blocks, and base64
 * padding bits cannot vary. */
static bool pem_is_canonical(const uint8_t *pem, size_t size, STACK_OF(X509) *sk)
{
    BIO *b = BIO_new(BIO_s_mem());
    bool ok = b != NULL;
    for (int i = 0; ok && i < sk_X509_num(sk); i++)
        ok = PEM_write_bio_X509(b, sk_X509_value(sk, i)) == 1;
    char *data = NULL;
    long n = ok ? BIO_get_mem_data(b, &data) : 0;
    struct coffer_rd rd;
    const uint8_t *head;
    coffer_rd_init(&rd, pem, size);
    ok = ok && n > 0 && coffer_rd_bytes(&rd, (size_t)n, &head) == COFFER_OK && memcmp(head, data, (size_t)n) == 0;
    uint8_t c;
    while (ok && coffer_rd_u8(&rd, &c) == COFFER_OK)
        ok = c == '\n' || c == '\r' || c == ' ' || c == '\t';
    BIO_free(b);
    return ok;
}

enum coffer_err coffer_attest__pem_certs(const uint8_t *pem, size_t size, size_t want, bool canonical,
                                         STACK_OF(X509) **out)
{
    *out = NULL;
    if (size > INTEL_QUOTE_MAX_SIZE)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "PEM certificate list of %zu bytes", size);
    /* Collateral as stored by some tools glues blocks together
     * ("-----END CERTIFICATE----------BEGIN ...") and drops the final
     * newline; outside canonical mode, put the line breaks back. */
    uint8_t *fixed = NULL;
    if (!canonical) {
        static const char begin[] = "-----BEGIN ";
        /* at most one inserted newline per input byte, plus the final one */
        size_t cap;
        if (!coffer_size_mul(size, 2, &cap) || !coffer_size_add(cap, 1, &cap) || (fixed = coffer_malloc(cap)) == NULL)
            return COFFER_E_NOMEM;
        struct coffer_rd rd;
        coffer_rd_init(&rd, pem, size);
        size_t o = 0;
        uint8_t prev = '\n', c;
        while (coffer_rd_u8(&rd, &c) == COFFER_OK) {
            struct coffer_rd look = rd;
            const uint8_t *rest;
            if (c == '-' && prev != '\n' && coffer_rd_bytes(&look, sizeof(begin) - 2, &rest) == COFFER_OK &&
                memcmp(rest, begin + 1, sizeof(begin) - 2) == 0)
                fixed[o++] = '\n';
            fixed[o++] = c;
            prev = c;
        }
        fixed[o++] = '\n';
        pem = fixed;
        size = o;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)size);
    STACK_OF(X509) *sk = sk_X509_new_null();
    enum coffer_err r = COFFER_OK;
    if (bio == NULL || sk == NULL) {
        r = COFFER_FAIL(COFFER_E_NOMEM, "PEM certificate list");
        goto out;
    }
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x == NULL) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE && sk_X509_num(sk) > 0)
                break;
            r = COFFER_FAIL(COFFER_E_MALFORMED, "PEM certificate %d does not parse", sk_X509_num(sk) + 1);
            goto out;
        }
        if (sk_X509_num(sk) >= 8 || !sk_X509_push(sk, x)) {
            X509_free(x);
            r = COFFER_FAIL(COFFER_E_TOO_LARGE, "more than 8 certificates in a PEM list");
            goto out;
        }
    }
    if (want != 0 && (size_t)sk_X509_num(sk) != want) {
        r = COFFER_FAIL(COFFER_E_MALFORMED, "PEM list holds %d certificates, want %zu", sk_X509_num(sk), want);
        goto out;
    }
    if (canonical && !pem_is_canonical(pem, size, sk)) {
        r = COFFER_FAIL(COFFER_E_MALFORMED, "PEM list is not the canonical encoding of its certificates");
        goto out;
    }
    *out = sk;
    sk = NULL;
out:
    sk_X509_pop_free(sk, X509_free);
    BIO_free(bio);
    coffer_free(fixed);
    ERR_clear_error();
    return r;
}

void coffer_attest__cert_cn(X509 *cert, char *buf, size_t size)
{
    buf[0] = '\0';
    X509_NAME *n = X509_get_subject_name(cert);
    int i = n != NULL ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
    if (i < 0)
        return;
    ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
    int len = d != NULL ? ASN1_STRING_length(d) : 0;
    if (len <= 0)
        return;
    size_t l = (size_t)len < size - 1 ? (size_t)len : size - 1;
    memcpy(buf, ASN1_STRING_get0_data(d), l);
    buf[l] = '\0';
    if (strlen(buf) != l) /* embedded NUL: refuse the name */
        buf[0] = '\0';
}

enum coffer_err coffer_attest__crl_parse(const uint8_t *data, size_t size, X509_CRL **out)
{
    *out = NULL;
    if (size == 0 || size > INTEL_QUOTE_MAX_SIZE * 16)
        return COFFER_FAIL(COFFER_E_MALFORMED, "CRL of %zu bytes", size);
    X509_CRL *crl = NULL;
    if (data[0] == 0x30) {
        const unsigned char *p = data;
        crl = d2i_X509_CRL(NULL, &p, (long)size);
        if (crl != NULL && p != data + size) {
            X509_CRL_free(crl);
            ERR_clear_error();
            return COFFER_FAIL(COFFER_E_TRAILING, "CRL: %zu bytes after the DER", (size_t)(data + size - p));
        }
    } else {
        BIO *bio = BIO_new_mem_buf(data, (int)size);
        if (bio != NULL)
            crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    ERR_clear_error();
    if (crl == NULL)
        return COFFER_FAIL(COFFER_E_MALFORMED, "CRL does not parse (DER or PEM)");
    *out = crl;
    return COFFER_OK;
}

void coffer_attest__sha256(const void *data, size_t size, uint8_t out[32])
{
    unsigned int n = 32;
    if (EVP_Digest(data, size, out, &n, EVP_sha256(), NULL) != 1)
        memset(out, 0, 32); /* cannot happen with the default provider; a zero hash matches nothing real */
}
