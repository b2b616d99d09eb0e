/*
 * pki.c — the coordinator's certificate authority.
 *
 * Design: root (self-signed, CA), intermediate (CA, signed by the root) and
 * marble root (the intermediate's key and subject, self-signed), all ECDSA
 * P-256 with SHA-256, as marblerun.md §1c lays out (MarbleRun uses P-384).
 * Marble certificates are made from the marble's CSR: its signature is
 * checked, and its own public key is certified, so a marble's private key
 * never exists outside the marble (MarbleRun generates it in the
 * coordinator; coffer deliberately does not). Serial numbers are 128 random
 * bits.
 *
 * Trusts: the CSR only after its signature verified; what it may ask for is
 * limited to DNS names and IP addresses.
 * Invariants: I1 private keys leave this file only as PKCS#8 DER in secret
 * memory or inside the sealed state.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "coffer/coordinator.h"

struct coffer_pki {
    EVP_PKEY *root_key;
    EVP_PKEY *inter_key;
    X509 *root;
    X509 *inter;
    X509 *marble_root;
    uint8_t *der[3];
    size_t der_size[3];
};

static enum coffer_err ossl_fail(const char *what)
{
    return COFFER_FAIL(COFFER_E_CRYPTO, "%s failed (OpenSSL)", what);
}

static EVP_PKEY *p256(void) { return EVP_EC_gen("P-256"); }

static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

static bool set_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    bool ok = bn != NULL && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
              BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

/* Put a copy of src (a parsed SubjectPublicKeyInfo) into x as it is: the
 * algorithm, its parameters and the key bits. X509_set_pubkey with an
 * EVP_PKEY re-encodes the key through OpenSSL 3.0's encoder machinery,
 * which cost more than signing the certificate (marblerun activations). */
static bool copy_pubkey(X509 *x, X509_PUBKEY *src)
{
    ASN1_OBJECT *alg;
    const unsigned char *bits;
    int bits_n;
    X509_ALGOR *algor;
    const ASN1_OBJECT *aobj;
    int ptype;
    const void *pval;
    if (X509_PUBKEY_get0_param(&alg, &bits, &bits_n, &algor, src) != 1 || bits_n <= 0)
        return false;
    X509_ALGOR_get0(&aobj, &ptype, &pval, algor);
    void *pv = NULL;
    if (ptype == V_ASN1_OBJECT)
        pv = OBJ_dup(pval);
    else if (ptype == V_ASN1_SEQUENCE)
        pv = ASN1_STRING_dup(pval);
    else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
        return false;
    ASN1_OBJECT *a = OBJ_dup(alg);
    unsigned char *enc = OPENSSL_memdup(bits, (size_t)bits_n);
    if (a == NULL || enc == NULL || (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF && pv == NULL) ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), a, ptype, pv, enc, bits_n) != 1) {
        ASN1_OBJECT_free(a);
        OPENSSL_free(enc);
        if (ptype == V_ASN1_OBJECT)
            ASN1_OBJECT_free(pv);
        else
            ASN1_STRING_free(pv);
        return false;
    }
    return true;
}

/* A certificate shell: version 3, serial, validity, subject CN, and the
 * key: pub, or else a copy of spki. */
static X509 *cert_new_spki(const char *cn, EVP_PKEY *pub, X509_PUBKEY *spki, long valid_days)
{
    X509 *x = X509_new();
    if (x == NULL || X509_set_version(x, 2) != 1 || !set_serial(x) ||
        X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), (int)valid_days, 0, NULL) == NULL ||
        (pub != NULL ? X509_set_pubkey(x, pub) != 1 : !copy_pubkey(x, spki)) ||
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_ASC, (const unsigned char *)"coffer", -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static X509 *cert_new(const char *cn, EVP_PKEY *pub, long valid_days) { return cert_new_spki(cn, pub, NULL, valid_days); }

#define CA_DAYS (365L * 100)

static X509 *make_ca(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *san)
{
    X509 *x = cert_new(cn, key, CA_DAYS);
    if (x == NULL)
        return NULL;
    X509 *iss = issuer ? issuer : x;
    if (X509_set_issuer_name(x, X509_get_subject_name(iss)) != 1 ||
        !add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
        !add_ext(x, iss, NID_subject_key_identifier, "hash") ||
        (issuer != NULL && !add_ext(x, iss, NID_authority_key_identifier, "keyid:always")) ||
        (san != NULL && !add_ext(x, iss, NID_subject_alt_name, san)) ||
        X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) == 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static enum coffer_err cache_der(struct coffer_pki *pki)
{
    X509 *certs[3] = {pki->root, pki->inter, pki->marble_root};
    for (int i = 0; i < 3; i++) {
        coffer_free(pki->der[i]);
        pki->der[i] = NULL;
        int n = i2d_X509(certs[i], NULL);
        if (n <= 0 || (pki->der[i] = coffer_malloc((size_t)n)) == NULL)
            return COFFER_E_NOMEM;
        uint8_t *w = pki->der[i];
        i2d_X509(certs[i], &w);
        pki->der_size[i] = (size_t)n;
    }
    return COFFER_OK;
}

/* Build the SAN list "DNS:a,DNS:b,IP:127.0.0.1,IP:::1" from a comma list. */
static char *san_list(const char *dns_names)
{
    struct coffer_buf b;
    coffer_buf_init(&b, 1 << 16, false);
    const char *p = dns_names && dns_names[0] ? dns_names : "localhost";
    enum coffer_err r = COFFER_OK;
    while (*p && r == COFFER_OK) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0)
            r = coffer_buf_printf(&b, "DNS:%.*s,", (int)n, p);
        p += n + (e ? 1 : 0);
    }
    if (r == COFFER_OK)
        r = coffer_buf_printf(&b, "IP:127.0.0.1,IP:::1");
    if (r != COFFER_OK) {
        coffer_buf_free(&b);
        return NULL;
    }
    return (char *)coffer_buf_steal(&b, NULL);
}

static enum coffer_err make_intermediate(struct coffer_pki *pki)
{
    EVP_PKEY *k = p256();
    X509 *inter = k ? make_ca("coffer Coordinator - Intermediate CA", k, pki->root, pki->root_key, NULL) : NULL;
    X509 *mroot = k ? make_ca("coffer Coordinator - Intermediate CA", k, NULL, NULL, NULL) : NULL;
    if (inter == NULL || mroot == NULL) {
        EVP_PKEY_free(k);
        X509_free(inter);
        X509_free(mroot);
        return ossl_fail("making the intermediate CA");
    }
    EVP_PKEY_free(pki->inter_key);
    X509_free(pki->inter);
    X509_free(pki->marble_root);
    pki->inter_key = k;
    pki->inter = inter;
    pki->marble_root = mroot;
    return cache_der(pki);
}

enum coffer_err coffer_pki_new(const char *dns_names, struct coffer_pki **out)
{
    *out = NULL;
    struct coffer_pki *pki = coffer_calloc(1, sizeof(*pki));
    if (pki == NULL)
        return COFFER_E_NOMEM;
    char *san = san_list(dns_names);
    pki->root_key = p256();
    if (san == NULL || pki->root_key == NULL ||
        (pki->root = make_ca("coffer Coordinator", pki->root_key, NULL, NULL, san)) == NULL) {
        coffer_free(san);
        coffer_pki_free(pki);
        return ossl_fail("making the root CA");
    }
    coffer_free(san);
    enum coffer_err r = make_intermediate(pki);
    if (r != COFFER_OK) {
        coffer_pki_free(pki);
        return r;
    }
    *out = pki;
    return COFFER_OK;
}

enum coffer_err coffer_pki_rotate_intermediate(struct coffer_pki *pki) { return make_intermediate(pki); }

void coffer_pki_free(struct coffer_pki *pki)
{
    if (pki == NULL)
        return;
    EVP_PKEY_free(pki->root_key);
    EVP_PKEY_free(pki->inter_key);
    X509_free(pki->root);
    X509_free(pki->inter);
    X509_free(pki->marble_root);
    for (int i = 0; i < 3; i++)
        coffer_free(pki->der[i]);
    coffer_free(pki);
}

const uint8_t *coffer_pki_cert_der(const struct coffer_pki *pki, enum coffer_pki_cert which, size_t *size)
{
    *size = pki->der_size[which];
    return pki->der[which];
}

static enum coffer_err append_pem(struct coffer_buf *out, X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL || PEM_write_bio_X509(b, x) != 1) {
        BIO_free(b);
        return ossl_fail("PEM encoding");
    }
    char *p;
    long n = BIO_get_mem_data(b, &p);
    enum coffer_err r = coffer_buf_put(out, p, (size_t)n);
    BIO_free(b);
    return r;
}

enum coffer_err coffer_pki_cert_pem(const struct coffer_pki *pki, enum coffer_pki_cert which, struct coffer_buf *out)
{
    X509 *certs[3] = {pki->root, pki->inter, pki->marble_root};
    return append_pem(out, certs[which]);
}

static enum coffer_err sign_with(EVP_PKEY *key, const void *data, size_t size, uint8_t **sig, size_t *sig_size)
{
    *sig = NULL;
    *sig_size = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t n = 0;
    uint8_t *s = NULL;
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &n, data, size) != 1 || (s = coffer_malloc(n)) == NULL ||
        EVP_DigestSign(md, s, &n, data, size) != 1) {
        EVP_MD_CTX_free(md);
        coffer_free(s);
        return ossl_fail("signing");
    }
    EVP_MD_CTX_free(md);
    *sig = s;
    *sig_size = n;
    return COFFER_OK;
}

enum coffer_err coffer_pki_sign_root(const struct coffer_pki *pki, const void *data, size_t size, uint8_t **sig,
                                     size_t *sig_size)
{
    return sign_with(pki->root_key, data, size, sig, sig_size);
}

static enum coffer_err to_der(X509 *x, uint8_t **out, size_t *size)
{
    int n = i2d_X509(x, NULL);
    if (n <= 0 || (*out = coffer_malloc((size_t)n)) == NULL)
        return COFFER_E_NOMEM;
    uint8_t *w = *out;
    i2d_X509(x, &w);
    *size = (size_t)n;
    return COFFER_OK;
}

/* ---- CSRs
 *
 * OpenSSL 3.0 decodes a CSR's public key through its provider decoder
 * machinery, which cost more than everything else an activation does. The
 * common marble CSR (an EC key on P-256/384/521, ecdsa-with-SHA256/384/512,
 * at most a subjectAltName extension) is therefore read here with the
 * bounds-checked reader, strictly (DER, minimal lengths, nothing unknown
 * where it matters); the key is imported from its point, and the signature
 * checked over the request info exactly as it came. Anything else (RSA or
 * Ed25519 keys, other attributes' shapes, BER) goes to OpenSSL's parser as
 * before. fuzz/csr_fuzz.c checks that both give the same answer. */

/* SANs for a marble: CSR names (DNS, IP only) plus loopback. */
static enum coffer_err san_dns(struct coffer_buf *b, const unsigned char *s, size_t n)
{
    bool clean = n > 0 && n < 254;
    for (size_t j = 0; clean && j < n; j++)
        clean = (s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= '0' && s[j] <= '9') ||
                s[j] == '-' || s[j] == '.' || s[j] == '*';
    return clean ? coffer_buf_printf(b, ",DNS:%.*s", (int)n, (const char *)s) : COFFER_OK;
}

static enum coffer_err san_ip(struct coffer_buf *b, const unsigned char *a, size_t n)
{
    enum coffer_err r = COFFER_OK;
    if (n == 4)
        r = coffer_buf_printf(b, ",IP:%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    else if (n == 16) {
        r = coffer_buf_printf(b, ",IP:");
        for (int j = 0; j < 16 && r == COFFER_OK; j += 2)
            r = coffer_buf_printf(b, "%s%x", j ? ":" : "", (unsigned)(a[j] << 8 | a[j + 1]));
    }
    return r;
}

/* OpenSSL's reading of the SANs (the fallback path). */
static char *csr_sans(X509_REQ *req)
{
    struct coffer_buf b;
    coffer_buf_init(&b, 1 << 16, false);
    enum coffer_err r = coffer_buf_printf(&b, "DNS:localhost,IP:127.0.0.1,IP:::1");
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    for (int i = 0; exts != NULL && i < sk_X509_EXTENSION_num(exts) && r == COFFER_OK; i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_subject_alt_name)
            continue;
        GENERAL_NAMES *names = X509V3_EXT_d2i(e);
        for (int k = 0; names != NULL && k < sk_GENERAL_NAME_num(names) && r == COFFER_OK; k++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(names, k);
            if (g->type == GEN_DNS)
                r = san_dns(&b, ASN1_STRING_get0_data(g->d.dNSName), (size_t)ASN1_STRING_length(g->d.dNSName));
            else if (g->type == GEN_IPADD)
                r = san_ip(&b, ASN1_STRING_get0_data(g->d.iPAddress), (size_t)ASN1_STRING_length(g->d.iPAddress));
        }
        GENERAL_NAMES_free(names);
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (r != COFFER_OK) {
        coffer_buf_free(&b);
        return NULL;
    }
    return (char *)coffer_buf_steal(&b, NULL);
}

/* One DER TLV with the given tag (-1: any, returned in *tag), definite
 * minimal length; *val reads its contents, *all and *all_n span the whole. */
static bool der(struct coffer_rd *rd, int want, uint8_t *tag, struct coffer_rd *val, const uint8_t **all,
                size_t *all_n)
{
    size_t start = rd->pos;
    uint8_t t, b;
    if (coffer_rd_u8(rd, &t) != COFFER_OK || (want >= 0 && t != (uint8_t)want) || coffer_rd_u8(rd, &b) != COFFER_OK)
        return false;
    size_t len = b;
    if (b >= 0x80) {
        int k = b & 0x7f;
        if (k == 0 || k > 3)
            return false; /* indefinite, or more than 16 MiB */
        len = 0;
        for (int i = 0; i < k; i++) {
            uint8_t x;
            if (coffer_rd_u8(rd, &x) != COFFER_OK || (i == 0 && x == 0))
                return false;
            len = len << 8 | x;
        }
        if (len < 0x80)
            return false; /* not minimal */
    }
    if (coffer_rd_sub(rd, len, val) != COFFER_OK)
        return false;
    if (tag != NULL)
        *tag = t;
    if (all != NULL) {
        *all = rd->data + start;
        *all_n = rd->pos - start;
    }
    return true;
}

static bool is_oid(const struct coffer_rd *v, const uint8_t *oid, size_t n)
{
    return v->size == n && memcmp(v->data, oid, n) == 0;
}

/* An OID's contents as OpenSSL accepts them: base-128 subidentifiers, none
 * with a leading 0x80, the last byte ending one. */
static bool oid_ok(const struct coffer_rd *v)
{
    if (v->size == 0 || (v->data[v->size - 1] & 0x80) != 0)
        return false;
    for (size_t i = 0; i < v->size; i++)
        if (v->data[i] == 0x80 && (i == 0 || (v->data[i - 1] & 0x80) == 0))
            return false;
    return true;
}

static const uint8_t OID_EC_PUBLIC_KEY[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t OID_P256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_P384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t OID_P521[] = {0x2b, 0x81, 0x04, 0x00, 0x23};
static const uint8_t OID_ECDSA_SHA256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t OID_ECDSA_SHA384[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
static const uint8_t OID_ECDSA_SHA512[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04};
static const uint8_t OID_EXT_REQ[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e};
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};

/* A CSR as certify needs it: the key to certify and the SANs. */
struct csr {
    X509_REQ *req;       /* OpenSSL's path */
    X509_PUBKEY *own;    /* the fast path's key */
    X509_PUBKEY *pub;    /* req's or own */
    char *sans;
};

static void csr_free(struct csr *c)
{
    X509_REQ_free(c->req);
    X509_PUBKEY_free(c->own);
    coffer_free(c->sans);
    memset(c, 0, sizeof(*c));
}

/* The SANs of an extensionRequest's value (Extensions). */
static bool fast_exts(struct coffer_rd *exts, struct coffer_buf *b)
{
    while (coffer_rd_left(exts) > 0) {
        struct coffer_rd ext, oid, crit, val, names, name;
        if (!der(exts, 0x30, NULL, &ext, NULL, NULL) || !der(&ext, 0x06, NULL, &oid, NULL, NULL) || !oid_ok(&oid))
            return false;
        if (coffer_rd_left(&ext) > 0 && ext.data[ext.pos] == 0x01 &&
            (!der(&ext, 0x01, NULL, &crit, NULL, NULL) || crit.size != 1 || (crit.data[0] != 0 && crit.data[0] != 0xff)))
            return false;
        if (!der(&ext, 0x04, NULL, &val, NULL, NULL) || coffer_rd_left(&ext) != 0)
            return false;
        if (!is_oid(&oid, OID_SAN, sizeof(OID_SAN)))
            continue;
        if (!der(&val, 0x30, NULL, &names, NULL, NULL) || coffer_rd_left(&val) != 0)
            return false;
        while (coffer_rd_left(&names) > 0) {
            uint8_t tag;
            if (!der(&names, -1, &tag, &name, NULL, NULL))
                return false;
            if (tag == 0x82 && san_dns(b, name.data, name.size) != COFFER_OK)
                return false;
            if (tag == 0x87 && san_ip(b, name.data, name.size) != COFFER_OK)
                return false;
            if (tag != 0x82 && tag != 0x87)
                return false; /* other name forms: OpenSSL's parser decides */
        }
    }
    return true;
}

/* The fast path: COFFER_OK (signature verified), COFFER_E_UNSUPPORTED (not
 * a CSR it reads: use OpenSSL's), or COFFER_E_SIGNATURE. */
static enum coffer_err csr_fast(const uint8_t *d, size_t n, struct csr *out)
{
    struct coffer_rd rd, req, info, tmp, spki, alg, oid, cv, bits, sigalg, sig;
    const uint8_t *tbs, *subject = NULL, *sp;
    size_t tbs_n, subject_n = 0;
    coffer_rd_init(&rd, d, n);
    bool ok = der(&rd, 0x30, NULL, &req, NULL, NULL) && coffer_rd_left(&rd) == 0 &&
              der(&req, 0x30, NULL, &info, &tbs, &tbs_n) && der(&info, 0x02, NULL, &tmp, NULL, NULL) &&
              tmp.size == 1 && tmp.data[0] == 0 && der(&info, 0x30, NULL, &tmp, &subject, &subject_n) &&
              der(&info, 0x30, NULL, &spki, NULL, NULL) && der(&spki, 0x30, NULL, &alg, NULL, NULL) &&
              der(&alg, 0x06, NULL, &oid, NULL, NULL) && is_oid(&oid, OID_EC_PUBLIC_KEY, sizeof(OID_EC_PUBLIC_KEY)) &&
              der(&alg, 0x06, NULL, &cv, NULL, NULL) && coffer_rd_left(&alg) == 0 &&
              der(&spki, 0x03, NULL, &bits, NULL, NULL) && coffer_rd_left(&spki) == 0 && bits.size >= 2 &&
              bits.data[0] == 0;
    const char *group = !ok ? NULL
                        : is_oid(&cv, OID_P256, sizeof(OID_P256)) ? "prime256v1"
                        : is_oid(&cv, OID_P384, sizeof(OID_P384)) ? "secp384r1"
                        : is_oid(&cv, OID_P521, sizeof(OID_P521)) ? "secp521r1" : NULL;
    int curve_nid = group == NULL ? NID_undef
                    : strcmp(group, "prime256v1") == 0 ? NID_X9_62_prime256v1
                    : strcmp(group, "secp384r1") == 0 ? NID_secp384r1 : NID_secp521r1;
    struct coffer_buf b;
    coffer_buf_init(&b, 1 << 16, false);
    ok = group != NULL && coffer_buf_printf(&b, "DNS:localhost,IP:127.0.0.1,IP:::1") == COFFER_OK;
    bool ext_req_seen = false;
    if (ok && coffer_rd_left(&info) > 0) {
        struct coffer_rd attrs, attr, aoid, vals, exts;
        ok = der(&info, 0xa0, NULL, &attrs, NULL, NULL) && coffer_rd_left(&info) == 0;
        while (ok && coffer_rd_left(&attrs) > 0) {
            /* only one extensionRequest with one value (other attributes:
             * OpenSSL's parser decides what they may hold) */
            ok = der(&attrs, 0x30, NULL, &attr, NULL, NULL) && der(&attr, 0x06, NULL, &aoid, NULL, NULL) &&
                 der(&attr, 0x31, NULL, &vals, NULL, NULL) && coffer_rd_left(&attr) == 0 &&
                 is_oid(&aoid, OID_EXT_REQ, sizeof(OID_EXT_REQ)) && !ext_req_seen &&
                 der(&vals, 0x30, NULL, &exts, NULL, NULL) && coffer_rd_left(&vals) == 0 && fast_exts(&exts, &b);
            ext_req_seen = true;
        }
    } else if (ok) {
        ok = false; /* no attributes field at all: OpenSSL's parser decides */
    }
    const char *md = NULL;
    if (ok && der(&req, 0x30, NULL, &sigalg, NULL, NULL) && der(&sigalg, 0x06, NULL, &oid, NULL, NULL) &&
        coffer_rd_left(&sigalg) == 0 && der(&req, 0x03, NULL, &sig, NULL, NULL) && coffer_rd_left(&req) == 0 &&
        sig.size >= 2 && sig.data[0] == 0)
        md = is_oid(&oid, OID_ECDSA_SHA256, sizeof(OID_ECDSA_SHA256))   ? "SHA256"
             : is_oid(&oid, OID_ECDSA_SHA384, sizeof(OID_ECDSA_SHA384)) ? "SHA384"
             : is_oid(&oid, OID_ECDSA_SHA512, sizeof(OID_ECDSA_SHA512)) ? "SHA512" : NULL;
    /* the subject is not used (CN := UUID), but it must be a Name OpenSSL
     * reads, as on OpenSSL's path (this parse decodes no key: cheap) */
    X509_NAME *name = NULL;
    if (md != NULL && ((sp = subject) == NULL || (name = d2i_X509_NAME(NULL, &sp, (long)subject_n)) == NULL ||
                       sp != subject + subject_n))
        md = NULL;
    X509_NAME_free(name);
    ERR_clear_error();
    coffer_err_clear(); /* reader failures above only mean "not this path" */
    if (md == NULL) {
        coffer_buf_free(&b);
        return COFFER_E_UNSUPPORTED;
    }
    /* the key from its point (the import checks it is on the curve) */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(bits.data + 1), bits.size - 1),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;
    enum coffer_err r = COFFER_OK;
    if (kc == NULL || EVP_PKEY_fromdata_init(kc) != 1 || EVP_PKEY_fromdata(kc, &k, EVP_PKEY_PUBLIC_KEY, params) != 1)
        r = COFFER_E_UNSUPPORTED; /* not a point: OpenSSL's parser says what is wrong */
    EVP_MD_CTX *mc = r == COFFER_OK ? EVP_MD_CTX_new() : NULL;
    if (r == COFFER_OK && (mc == NULL || EVP_DigestVerifyInit_ex(mc, NULL, md, NULL, NULL, k, NULL) != 1))
        r = ossl_fail("setting up the CSR signature check");
    else if (r == COFFER_OK && EVP_DigestVerify(mc, sig.data + 1, sig.size - 1, tbs, tbs_n) != 1)
        r = COFFER_FAIL(COFFER_E_SIGNATURE, "the CSR's signature does not verify with its own key");
    EVP_MD_CTX_free(mc);
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(kc);
    ERR_clear_error();
    /* the key to certify: the same algorithm, curve and point, set directly */
    unsigned char *point = r == COFFER_OK ? OPENSSL_memdup(bits.data + 1, bits.size - 1) : NULL;
    if (r == COFFER_OK &&
        (point == NULL || (out->own = X509_PUBKEY_new()) == NULL ||
         X509_PUBKEY_set0_param(out->own, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                                OBJ_nid2obj(curve_nid), point, (int)(bits.size - 1)) != 1)) {
        OPENSSL_free(point);
        r = COFFER_E_NOMEM;
    }
    if (r == COFFER_OK) {
        out->pub = out->own;
        out->sans = (char *)coffer_buf_steal(&b, NULL);
    } else {
        coffer_buf_free(&b);
        csr_free(out);
    }
    return r;
}

/* Parse and verify a CSR: the fast path, else (or when openssl_only)
 * OpenSSL's. */
static enum coffer_err csr_read(const uint8_t *d, size_t n, bool openssl_only, struct csr *out)
{
    memset(out, 0, sizeof(*out));
    if (n > (1u << 16))
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "CSR of %zu bytes", n);
    if (!openssl_only) {
        enum coffer_err r = csr_fast(d, n, out);
        if (r != COFFER_E_UNSUPPORTED)
            return r;
    }
    const uint8_t *p = d;
    out->req = d2i_X509_REQ(NULL, &p, (long)n);
    if (out->req == NULL || p != d + n) {
        csr_free(out);
        ERR_clear_error();
        return COFFER_FAIL(COFFER_E_MALFORMED, "the CSR is not a DER PKCS#10 request");
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(out->req);
    if (pub == NULL || X509_REQ_verify(out->req, pub) != 1) {
        csr_free(out);
        ERR_clear_error();
        return COFFER_FAIL(COFFER_E_SIGNATURE, "the CSR's signature does not verify with its own key");
    }
    out->pub = X509_REQ_get_X509_PUBKEY(out->req);
    if ((out->sans = csr_sans(out->req)) == NULL) {
        csr_free(out);
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "the CSR names too many hosts");
    }
    return COFFER_OK;
}

enum coffer_err coffer_pki_csr_check(const uint8_t *csr_der, size_t csr_size, bool openssl_only, char **sans,
                                     uint8_t **spki_der, size_t *spki_size)
{
    *sans = NULL;
    *spki_der = NULL;
    *spki_size = 0;
    struct csr c;
    enum coffer_err r = csr_read(csr_der, csr_size, openssl_only, &c);
    if (r != COFFER_OK)
        return r;
    int n = i2d_X509_PUBKEY(c.pub, NULL);
    uint8_t *w = n > 0 ? coffer_malloc((size_t)n) : NULL;
    if (w == NULL) {
        r = COFFER_E_NOMEM;
    } else {
        *spki_der = w;
        *spki_size = (size_t)i2d_X509_PUBKEY(c.pub, &w);
        *sans = c.sans;
        c.sans = NULL;
    }
    csr_free(&c);
    return r;
}

enum coffer_err coffer_pki_certify_csr(const struct coffer_pki *pki, const uint8_t *csr_der, size_t csr_size,
                                       const char *uuid, const char *marble_type, uint32_t valid_days,
                                       uint8_t **cert_der, size_t *cert_size, uint8_t **spki_der, size_t *spki_size)
{
    *cert_der = *spki_der = NULL;
    *cert_size = *spki_size = 0;
    struct csr csr;
    enum coffer_err r = csr_read(csr_der, csr_size, false, &csr);
    if (r != COFFER_OK)
        return r;
    char *san = csr.sans;
    X509_PUBKEY *spki = csr.pub;
    X509 *x = cert_new_spki(uuid, NULL, spki, valid_days ? valid_days : 365);
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.9903.2.1", 1);
    ASN1_OCTET_STRING *type = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    if (san == NULL || x == NULL || oid == NULL || type == NULL ||
        ASN1_OCTET_STRING_set(type, (const unsigned char *)marble_type, (int)strlen(marble_type)) != 1 ||
        (ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, type)) == NULL || X509_add_ext(x, ext, -1) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(pki->inter)) != 1 ||
        !add_ext(x, pki->inter, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, pki->inter, NID_key_usage, "critical,digitalSignature,keyAgreement") ||
        !add_ext(x, pki->inter, NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_ext(x, pki->inter, NID_authority_key_identifier, "keyid:always") ||
        !add_ext(x, pki->inter, NID_subject_alt_name, san) || X509_sign(x, pki->inter_key, EVP_sha256()) == 0)
        r = ossl_fail("issuing the marble certificate");
    if (r == COFFER_OK)
        r = to_der(x, cert_der, cert_size);
    if (r == COFFER_OK) {
        int n = i2d_X509_PUBKEY(spki, NULL); /* from the parsed fields, not through an EVP_PKEY's encoder */
        uint8_t *w;
        if (n <= 0 || (*spki_der = w = coffer_malloc((size_t)n)) == NULL) {
            r = COFFER_E_NOMEM;
        } else {
            i2d_X509_PUBKEY(spki, &w);
            *spki_size = (size_t)n;
        }
    }
    if (r != COFFER_OK) {
        coffer_free(*cert_der);
        *cert_der = NULL;
        *cert_size = 0;
    }
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(type);
    ASN1_OBJECT_free(oid);
    X509_free(x);
    csr_free(&csr);
    return r;
}

enum coffer_err coffer_pki_verify_marble(const struct coffer_pki *pki, const uint8_t *der, size_t size,
                                         char **marble_type, char **uuid)
{
    *marble_type = *uuid = NULL;
    if (size > (1u << 16))
        return COFFER_FAIL(COFFER_E_CERT, "client certificate of %zu bytes", size);
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)size);
    if (x == NULL || p != der + size) {
        X509_free(x);
        ERR_clear_error();
        return COFFER_FAIL(COFFER_E_CERT, "the client certificate is not DER X.509");
    }
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    enum coffer_err r = COFFER_OK;
    if (store == NULL || ctx == NULL || X509_STORE_add_cert(store, pki->marble_root) != 1 ||
        X509_STORE_CTX_init(ctx, store, x, NULL) != 1) {
        r = ossl_fail("setting up the marble certificate check");
    } else if (X509_verify_cert(ctx) != 1) {
        r = COFFER_FAIL(COFFER_E_CERT, "the client certificate is not a marble certificate of this coordinator (%s)",
                        X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
    ASN1_OBJECT *oid = r == COFFER_OK ? OBJ_txt2obj("1.3.9903.2.1", 1) : NULL;
    int at = oid != NULL ? X509_get_ext_by_OBJ(x, oid, -1) : -1;
    int cn_at = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_commonName, -1);
    if (r == COFFER_OK && (at < 0 || cn_at < 0))
        r = COFFER_FAIL(COFFER_E_CERT, "the marble certificate has no %s", at < 0 ? "marble type extension" : "UUID");
    if (r == COFFER_OK) {
        const ASN1_OCTET_STRING *t = X509_EXTENSION_get_data(X509_get_ext(x, at));
        const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(X509_get_subject_name(x), cn_at));
        *marble_type = coffer_malloc((size_t)ASN1_STRING_length(t) + 1);
        *uuid = coffer_malloc((size_t)ASN1_STRING_length(cn) + 1);
        if (*marble_type == NULL || *uuid == NULL) {
            r = COFFER_E_NOMEM;
        } else {
            memcpy(*marble_type, ASN1_STRING_get0_data(t), (size_t)ASN1_STRING_length(t));
            (*marble_type)[ASN1_STRING_length(t)] = '\0';
            memcpy(*uuid, ASN1_STRING_get0_data(cn), (size_t)ASN1_STRING_length(cn));
            (*uuid)[ASN1_STRING_length(cn)] = '\0';
            if (strlen(*marble_type) != (size_t)ASN1_STRING_length(t) || strlen(*uuid) != (size_t)ASN1_STRING_length(cn))
                r = COFFER_FAIL(COFFER_E_CERT, "the marble certificate's type or UUID holds a NUL byte");
        }
    }
    if (r != COFFER_OK) {
        coffer_free(*marble_type);
        coffer_free(*uuid);
        *marble_type = *uuid = NULL;
    }
    ASN1_OBJECT_free(oid);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(x);
    ERR_clear_error();
    return r;
}

static enum coffer_err key_to_pkcs8(EVP_PKEY *k, struct coffer_secret **out)
{
    *out = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
    int n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, NULL) : 0;
    enum coffer_err r = n > 0 ? coffer_secret_new((size_t)n, out) : ossl_fail("PKCS#8 encoding");
    if (r == COFFER_OK) {
        uint8_t *w = (*out)->data;
        i2d_PKCS8_PRIV_KEY_INFO(p8, &w);
    }
    PKCS8_PRIV_KEY_INFO_free(p8);
    return r;
}

enum coffer_err coffer_pki_issue_secret(const struct coffer_pki *pki, const struct coffer_mf_secret *spec,
                                        uint8_t **cert_der, size_t *cert_size, struct coffer_secret **key_pkcs8)
{
    *cert_der = NULL;
    *cert_size = 0;
    *key_pkcs8 = NULL;
    EVP_PKEY *k = NULL;
    switch (spec->type) {
    case COFFER_SECRET_CERT_ECDSA: {
        const char *curve = spec->size_bits == 224 ? "P-224" : spec->size_bits == 384 ? "P-384"
                            : spec->size_bits == 521 ? "P-521" : "P-256";
        k = EVP_EC_gen(curve);
        break;
    }
    case COFFER_SECRET_CERT_RSA: k = EVP_RSA_gen(spec->size_bits ? spec->size_bits : 2048); break;
    case COFFER_SECRET_CERT_ED25519: k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); break;
    default: return COFFER_FAIL(COFFER_E_INVALID_ARG, "secret %s is not a certificate secret", spec->name);
    }
    if (k == NULL)
        return ossl_fail("generating the secret's key");
    struct coffer_buf san;
    coffer_buf_init(&san, 1 << 16, false);
    enum coffer_err r = COFFER_OK;
    for (size_t i = 0; i < spec->dns_names_count && r == COFFER_OK; i++)
        r = coffer_buf_printf(&san, "%sDNS:%s", i ? "," : "", spec->dns_names[i]);
    if (r == COFFER_OK && spec->dns_names_count == 0)
        r = coffer_buf_printf(&san, "DNS:localhost");
    if (r == COFFER_OK)
        r = coffer_buf_printf(&san, ",IP:127.0.0.1,IP:::1");
    const char *cn = spec->common_name ? spec->common_name
                     : spec->dns_names_count == 1 ? spec->dns_names[0] : "coffer secret";
    X509 *x = r == COFFER_OK ? cert_new(cn, k, spec->valid_for_days ? spec->valid_for_days : 365) : NULL;
    if (x == NULL || X509_set_issuer_name(x, X509_get_subject_name(pki->inter)) != 1 ||
        !add_ext(x, pki->inter, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, pki->inter, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyAgreement") ||
        !add_ext(x, pki->inter, NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_ext(x, pki->inter, NID_subject_alt_name, (char *)san.data) ||
        X509_sign(x, pki->inter_key, EVP_sha256()) == 0)
        r = r == COFFER_OK ? ossl_fail("issuing the secret's certificate") : r;
    if (r == COFFER_OK)
        r = to_der(x, cert_der, cert_size);
    if (r == COFFER_OK && (r = key_to_pkcs8(k, key_pkcs8)) != COFFER_OK) {
        coffer_free(*cert_der);
        *cert_der = NULL;
    }
    coffer_buf_free(&san);
    X509_free(x);
    EVP_PKEY_free(k);
    return r;
}

/* ---- persistence */

static enum coffer_err put_b64(json_t *o, const char *key, const uint8_t *data, size_t size)
{
    char *s = coffer_malloc(coffer_base64_encoded_len(size) + 1);
    if (s == NULL)
        return COFFER_E_NOMEM;
    coffer_base64_encode(data, size, s);
    int rc = json_object_set_new(o, key, json_string(s));
    coffer_memzero(s, strlen(s));
    coffer_free(s);
    return rc == 0 ? COFFER_OK : COFFER_E_NOMEM;
}

enum coffer_err coffer_pki_save(const struct coffer_pki *pki, json_t **out)
{
    *out = NULL;
    json_t *o = json_object();
    if (o == NULL)
        return COFFER_E_NOMEM;
    struct coffer_secret *rk = NULL, *ik = NULL;
    enum coffer_err r;
    if ((r = key_to_pkcs8(pki->root_key, &rk)) == COFFER_OK && (r = key_to_pkcs8(pki->inter_key, &ik)) == COFFER_OK &&
        (r = put_b64(o, "root_key", rk->data, rk->size)) == COFFER_OK &&
        (r = put_b64(o, "intermediate_key", ik->data, ik->size)) == COFFER_OK &&
        (r = put_b64(o, "root_cert", pki->der[0], pki->der_size[0])) == COFFER_OK &&
        (r = put_b64(o, "intermediate_cert", pki->der[1], pki->der_size[1])) == COFFER_OK)
        r = put_b64(o, "marble_root_cert", pki->der[2], pki->der_size[2]);
    coffer_secret_free(rk);
    coffer_secret_free(ik);
    if (r != COFFER_OK) {
        json_decref(o);
        return r;
    }
    *out = o;
    return COFFER_OK;
}

static enum coffer_err get_b64(const json_t *in, const char *key, uint8_t **data, size_t *size)
{
    const char *s = NULL;
    enum coffer_err r = coffer_json_get_string(in, "$.pki", key, true, &s);
    if (r != COFFER_OK)
        return r;
    return coffer_base64_decode(s, strlen(s), data, size);
}

static enum coffer_err load_key(const json_t *in, const char *key, EVP_PKEY **out)
{
    uint8_t *d;
    size_t n;
    enum coffer_err r = get_b64(in, key, &d, &n);
    if (r != COFFER_OK)
        return r;
    const uint8_t *p = d;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)n);
    *out = p8 ? EVP_PKCS82PKEY(p8) : NULL;
    PKCS8_PRIV_KEY_INFO_free(p8);
    coffer_memzero(d, n);
    coffer_free(d);
    return *out ? COFFER_OK : COFFER_FAIL(COFFER_E_MALFORMED, "sealed state: %s is not a PKCS#8 key", key);
}

static enum coffer_err load_cert(const json_t *in, const char *key, X509 **out)
{
    uint8_t *d;
    size_t n;
    enum coffer_err r = get_b64(in, key, &d, &n);
    if (r != COFFER_OK)
        return r;
    const uint8_t *p = d;
    *out = d2i_X509(NULL, &p, (long)n);
    coffer_free(d);
    return *out ? COFFER_OK : COFFER_FAIL(COFFER_E_MALFORMED, "sealed state: %s is not a certificate", key);
}

enum coffer_err coffer_pki_load(const json_t *in, struct coffer_pki **out)
{
    *out = NULL;
    struct coffer_pki *pki = coffer_calloc(1, sizeof(*pki));
    if (pki == NULL)
        return COFFER_E_NOMEM;
    enum coffer_err r;
    if ((r = load_key(in, "root_key", &pki->root_key)) != COFFER_OK ||
        (r = load_key(in, "intermediate_key", &pki->inter_key)) != COFFER_OK ||
        (r = load_cert(in, "root_cert", &pki->root)) != COFFER_OK ||
        (r = load_cert(in, "intermediate_cert", &pki->inter)) != COFFER_OK ||
        (r = load_cert(in, "marble_root_cert", &pki->marble_root)) != COFFER_OK || (r = cache_der(pki)) != COFFER_OK) {
        coffer_pki_free(pki);
        return r;
    }
    *out = pki;
    return COFFER_OK;
}

static int accept_any_client(int preverify, X509_STORE_CTX *ctx)
{
    (void)preverify;
    /* Authorisation happens in the handlers, by exact certificate (users'
     * certificates are often self-signed); TLS has already checked that the
     * client holds the certificate's key. Clear the chain error so the
     * connection's verify result says what we decided. */
    X509_STORE_CTX_set_error(ctx, X509_V_OK);
    return 1;
}

enum coffer_err coffer_pki_tls_server_ctx(const struct coffer_pki *pki, struct ssl_ctx_st **out)
{
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate(ctx, pki->root) != 1 || SSL_CTX_use_PrivateKey(ctx, pki->root_key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        return ossl_fail("setting up TLS");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_client);
    *out = ctx;
    return COFFER_OK;
}

enum coffer_err coffer_pki_tls_use(const struct coffer_pki *pki, struct ssl_st *ssl)
{
    if (SSL_use_certificate(ssl, pki->root) != 1 || SSL_use_PrivateKey(ssl, pki->root_key) != 1)
        return ossl_fail("presenting the root certificate");
    return COFFER_OK;
}
