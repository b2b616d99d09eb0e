/*
 * ratls.c — RA-TLS certificates compatible with Gramine's
 * (research/ratls-secretprov.md §2-§4): make one for a fresh P-256 key with
 * evidence bound to that key, in both of Gramine's extension formats, and
 * verify one — as an OpenSSL certificate-verify hook usable by TLS clients
 * and servers alike.
 *
 * Certificate (as Gramine >= 1.8 writes it): X.509 v3, self-signed, serial
 * 1, subject = issuer = CN=RATLS, O=GramineDevelopers, C=US, validity
 * 2001-01-01 .. 2030-12-31, non-critical extensions in this order:
 * basicConstraints CA:FALSE, SKI, AKI, then
 *   - legacy: OID spelled 06 0B 06 09 2A 86 48 86 F8 4D 8A 39 06
 *     ("0.6.9.42.840.113741.1337.6", Gramine's historical mis-encoding of
 *     1.2.840.113741.1337.6), OCTET STRING = evidence whose report data is
 *     SHA-256(SubjectPublicKeyInfo DER) || 32 zero bytes;
 *   - TCG DICE tagged evidence, OID 2.23.133.5.4.9, OCTET STRING = CBOR
 *     #6.60000([bstr(evidence2), bstr(claims)]) with claims =
 *     {"pubkey-hash": bstr([1, bstr(SHA-256(SPKI))])} and evidence2's report
 *     data = SHA-256(claims) || 32 zero bytes.
 * The evidence is whatever the provider gives: an SGX quote under Gramine,
 * a TDX report or SNP extended evidence (report + the host's certificate
 * table, when the host attached one) through configfs-tsm, or simulation
 * evidence.
 *
 * Verification: exactly one certificate; find the extensions by OID (both
 * legacy spellings accepted, criticality must be false, duplicates fail);
 * prefer TCG and never fall back to legacy when TCG is present but bad;
 * require the pubkey-hash claim; verify the evidence (attest verifier, at
 * the caller's time and collateral), check the binding on all 64 bytes of
 * report data (the upper 32 must be zero), then the policy. Like Gramine,
 * the certificate's own signature and dates are not what binds it: the TLS
 * handshake proves possession of the key, the evidence binds the key.
 *
 * Invariants: I1 a certificate is accepted only if evidence that verifies
 * binds exactly its SPKI. I2 the CBOR reader accepts definite, minimally
 * encoded items only.
 * Trusts: the attest verifier, OpenSSL (TLS, X.509 parsing).
 */
#include "attest_int.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* The largest evidence a certificate carries: SNP extended evidence (report
 * + the kernel's whole certificate buffer); quotes are ~5 KiB. Fits the
 * two-byte CBOR length below. */
#define RATLS_EVIDENCE_MAX (COFFER_ATTEST_SNP_REPORT_SIZE + COFFER_ATTEST_SNP_CERTS_MAX)
_Static_assert(RATLS_EVIDENCE_MAX < 0x10000, "RA-TLS evidence length fits CBOR's 2-byte form");
#define CBOR_TAG_TEE_QUOTE 60000

static const uint8_t oid_legacy_wrong[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x8a, 0x39, 0x06};
static const uint8_t oid_legacy_right[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x8a, 0x39, 0x06};
static const uint8_t oid_tcg[] = {0x67, 0x81, 0x05, 0x05, 0x04, 0x09};

/* ------------------------------------------------------------------ CBOR */

/* One definite head with its argument, minimal encoding. */
static enum coffer_err cbor_head(struct coffer_rd *rd, uint8_t *major, uint64_t *arg)
{
    enum coffer_err r;
    uint8_t b;
    if ((r = coffer_rd_u8(rd, &b)) != COFFER_OK)
        return r;
    *major = b >> 5;
    uint8_t ai = b & 0x1f;
    if (ai < 24) {
        *arg = ai;
        return COFFER_OK;
    }
    if (ai > 27)
        return COFFER_FAIL(COFFER_E_MALFORMED, "CBOR: indefinite or reserved length at offset %zu", rd->pos - 1);
    unsigned n = 1u << (ai - 24);
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t x;
        if ((r = coffer_rd_u8(rd, &x)) != COFFER_OK)
            return r;
        v = (v << 8) | x;
    }
    uint64_t min = n == 1 ? 24 : n == 2 ? 0x100 : n == 4 ? 0x10000 : 0x100000000ull;
    if (v < min)
        return COFFER_FAIL(COFFER_E_MALFORMED, "CBOR: non-minimal length at offset %zu", rd->pos - 1 - n);
    *arg = v;
    return COFFER_OK;
}

static enum coffer_err cbor_bytes(struct coffer_rd *rd, uint8_t want_major, const uint8_t **p, size_t *n)
{
    uint8_t major;
    uint64_t len;
    enum coffer_err r = cbor_head(rd, &major, &len);
    if (r != COFFER_OK)
        return r;
    if (major != want_major)
        return COFFER_FAIL(COFFER_E_MALFORMED, "CBOR: major type %u, want %u", major, want_major);
    if (len > coffer_rd_left(rd))
        return COFFER_FAIL(COFFER_E_TRUNCATED, "CBOR: string of %llu bytes, %zu left", (unsigned long long)len,
                           coffer_rd_left(rd));
    *n = (size_t)len;
    return coffer_rd_bytes(rd, *n, p);
}

/* The TCG evidence: #6.60000([bstr evidence, bstr claims]). */
static enum coffer_err tcg_parse(const uint8_t *d, size_t n, const uint8_t **ev, size_t *ev_size, const uint8_t **claims,
                                 size_t *claims_size)
{
    enum coffer_err r;
    struct coffer_rd rd;
    uint8_t major;
    uint64_t arg;
    coffer_rd_init(&rd, d, n);
    if ((r = cbor_head(&rd, &major, &arg)) != COFFER_OK)
        return r;
    if (major != 6 || arg != CBOR_TAG_TEE_QUOTE)
        return COFFER_FAIL(COFFER_E_MALFORMED, "RA-TLS TCG evidence: not CBOR tag 60000");
    if ((r = cbor_head(&rd, &major, &arg)) != COFFER_OK)
        return r;
    if (major != 4 || arg != 2)
        return COFFER_FAIL(COFFER_E_MALFORMED, "RA-TLS TCG evidence: not an array of 2");
    if ((r = cbor_bytes(&rd, 2, ev, ev_size)) != COFFER_OK || (r = cbor_bytes(&rd, 2, claims, claims_size)) != COFFER_OK)
        return r;
    if (*ev_size == 0 || *claims_size == 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "RA-TLS TCG evidence: empty evidence or claims");
    return coffer_rd_expect_end(&rd);
}

/* The claims map; finds "pubkey-hash" = bstr([uint alg, bstr digest]). */
static enum coffer_err claims_pubkey_hash(const uint8_t *d, size_t n, uint64_t *alg, const uint8_t **digest,
                                          size_t *digest_size)
{
    enum coffer_err r;
    struct coffer_rd rd;
    uint8_t major;
    uint64_t count;
    bool found = false;
    coffer_rd_init(&rd, d, n);
    if ((r = cbor_head(&rd, &major, &count)) != COFFER_OK)
        return r;
    if (major != 5 || count == 0 || count > 16)
        return COFFER_FAIL(COFFER_E_MALFORMED, "RA-TLS claims: not a map of 1..16 entries");
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *k, *v;
        size_t kn, vn;
        if ((r = cbor_bytes(&rd, 3, &k, &kn)) != COFFER_OK)
            return r;
        if (kn == 0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "RA-TLS claims: empty key");
        if (kn == 11 && memcmp(k, "pubkey-hash", 11) == 0) {
            if (found)
                return COFFER_FAIL(COFFER_E_MALFORMED, "RA-TLS claims: pubkey-hash twice");
            if ((r = cbor_bytes(&rd, 2, &v, &vn)) != COFFER_OK)
                return r;
            struct coffer_rd h;
            coffer_rd_init(&h, v, vn);
            uint64_t items;
            if ((r = cbor_head(&h, &major, &items)) != COFFER_OK)
                return r;
            if (major != 4 || items != 2)
                return COFFER_FAIL(COFFER_E_MALFORMED, "RA-TLS claims: pubkey-hash is not [alg, digest]");
            if ((r = cbor_head(&h, &major, alg)) != COFFER_OK)
                return r;
            if (major != 0)
                return COFFER_FAIL(COFFER_E_MALFORMED, "RA-TLS claims: pubkey-hash algorithm is not a uint");
            if ((r = cbor_bytes(&h, 2, digest, digest_size)) != COFFER_OK || (r = coffer_rd_expect_end(&h)) != COFFER_OK)
                return r;
            found = true;
        } else {
            /* unknown claims (a nonce is planned upstream): text, bytes or uint only */
            uint8_t m;
            uint64_t a;
            struct coffer_rd save = rd;
            if ((r = cbor_head(&save, &m, &a)) != COFFER_OK)
                return r;
            if (m == 2 || m == 3) {
                if ((r = cbor_bytes(&rd, m, &v, &vn)) != COFFER_OK)
                    return r;
            } else if (m == 0) {
                rd = save;
            } else {
                return COFFER_FAIL(COFFER_E_UNSUPPORTED, "RA-TLS claims: unknown claim of CBOR type %u", m);
            }
        }
    }
    if ((r = coffer_rd_expect_end(&rd)) != COFFER_OK)
        return r;
    if (!found)
        return COFFER_FAIL(COFFER_E_MALFORMED, "RA-TLS claims: no pubkey-hash claim (nothing would bind the key)");
    return COFFER_OK;
}

enum coffer_err coffer_attest_ratls_extensions_parse(const uint8_t *tcg, size_t tcg_size, const uint8_t **ev,
                                                     size_t *ev_size, const uint8_t **claims, size_t *claims_size)
{
    enum coffer_err r = tcg_parse(tcg, tcg_size, ev, ev_size, claims, claims_size);
    if (r != COFFER_OK)
        return r;
    uint64_t alg;
    const uint8_t *dg;
    size_t dn;
    return claims_pubkey_hash(*claims, *claims_size, &alg, &dg, &dn);
}

/* ------------------------------------------------------------ make a cert */

static size_t claims_encode(const uint8_t h[32], uint8_t out[51])
{
    static const uint8_t head[] = {0xa1, 0x6b, 'p', 'u', 'b', 'k', 'e', 'y', '-', 'h', 'a', 's', 'h',
                                   0x58, 0x24, 0x82, 0x01, 0x58, 0x20};
    _Static_assert(sizeof(head) + 32 == 51, "claims size");
    memcpy(out, head, sizeof(head));
    memcpy(out + sizeof(head), h, 32);
    return 51;
}

static enum coffer_err add_ext_raw(X509 *x, const char *oid_txt, const uint8_t *v, size_t n)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid_txt, 1);
    ASN1_OCTET_STRING *s = ASN1_OCTET_STRING_new();
    X509_EXTENSION *e = NULL;
    enum coffer_err r = COFFER_FAIL(COFFER_E_CRYPTO, "RA-TLS: cannot add extension %s", oid_txt);
    if (o != NULL && s != NULL && ASN1_OCTET_STRING_set(s, v, (int)n) == 1 &&
        (e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, s)) != NULL && X509_add_ext(x, e, -1) == 1) {
        coffer_err_clear();
        r = COFFER_OK;
    }
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(s);
    ASN1_OBJECT_free(o);
    return r;
}

static enum coffer_err add_ext_conf(X509 *x, int nid, const char *val)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, val);
    if (e == NULL || X509_add_ext(x, e, -1) != 1) {
        X509_EXTENSION_free(e);
        return COFFER_FAIL(COFFER_E_CRYPTO, "RA-TLS: cannot add extension %s", val);
    }
    X509_EXTENSION_free(e);
    return COFFER_OK;
}

static enum coffer_err spki_hash(EVP_PKEY *k, uint8_t h[32])
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    if (n <= 0)
        return COFFER_FAIL(COFFER_E_CRYPTO, "RA-TLS: cannot encode the public key");
    coffer_attest__sha256(der, (size_t)n, h);
    OPENSSL_free(der);
    return COFFER_OK;
}

enum coffer_err coffer_attest_ratls_make(enum coffer_attest_provider p, struct x509_st **cert_out,
                                         struct evp_pkey_st **key_out)
{
    enum coffer_err r;
    *cert_out = NULL;
    *key_out = NULL;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    uint8_t *ev1 = NULL, *ev2 = NULL, *tcg = NULL;
    size_t n1 = 0, n2 = 0;
    uint8_t h[32], rd[64] = {0}, claims[51];
    if (key == NULL || x == NULL || name == NULL) {
        r = COFFER_FAIL(COFFER_E_CRYPTO, "RA-TLS: cannot make a P-256 key");
        goto out;
    }
    if ((r = spki_hash(key, h)) != COFFER_OK)
        goto out;
    memcpy(rd, h, 32);
    if ((r = coffer_attest_provider_evidence(p, rd, &ev1, &n1)) != COFFER_OK)
        goto out;
    claims_encode(h, claims);
    memset(rd, 0, sizeof(rd));
    coffer_attest__sha256(claims, sizeof(claims), rd);
    if ((r = coffer_attest_provider_evidence(p, rd, &ev2, &n2)) != COFFER_OK)
        goto out;
    if (n1 > RATLS_EVIDENCE_MAX || n2 > RATLS_EVIDENCE_MAX) {
        r = COFFER_FAIL(COFFER_E_TOO_LARGE, "RA-TLS: evidence of %zu bytes", n1 > n2 ? n1 : n2);
        goto out;
    }
    /* #6.60000([bstr evidence2, bstr claims]) */
    size_t tn = 0;
    if ((tcg = coffer_malloc(n2 + 64)) == NULL) {
        r = COFFER_E_NOMEM;
        goto out;
    }
    tcg[tn++] = 0xd9;
    tcg[tn++] = 0xea;
    tcg[tn++] = 0x60;
    tcg[tn++] = 0x82;
    if (n2 < 24) {
        tcg[tn++] = (uint8_t)(0x40 | n2);
    } else if (n2 < 0x100) {
        tcg[tn++] = 0x58;
        tcg[tn++] = (uint8_t)n2;
    } else {
        tcg[tn++] = 0x59;
        tcg[tn++] = (uint8_t)(n2 >> 8);
        tcg[tn++] = (uint8_t)n2;
    }
    memcpy(tcg + tn, ev2, n2);
    tn += n2;
    tcg[tn++] = 0x58;
    tcg[tn++] = (uint8_t)sizeof(claims);
    memcpy(tcg + tn, claims, sizeof(claims));
    tn += sizeof(claims);

    ASN1_TIME *nb = NULL, *na = NULL;
    if (X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"RATLS", -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"GramineDevelopers", -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "C", V_ASN1_PRINTABLESTRING, (const unsigned char *)"US", -1, -1, 0) != 1 ||
        X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
        (nb = ASN1_UTCTIME_set(NULL, 978307200)) == NULL ||  /* 2001-01-01T00:00:00Z */
        (na = ASN1_UTCTIME_set(NULL, 1924991999)) == NULL || /* 2030-12-31T23:59:59Z */
        X509_set1_notBefore(x, nb) != 1 || X509_set1_notAfter(x, na) != 1 || X509_set_pubkey(x, key) != 1) {
        ASN1_TIME_free(nb);
        ASN1_TIME_free(na);
        r = COFFER_FAIL(COFFER_E_CRYPTO, "RA-TLS: cannot fill the certificate");
        goto out;
    }
    ASN1_TIME_free(nb);
    ASN1_TIME_free(na);
    if ((r = add_ext_conf(x, NID_basic_constraints, "CA:FALSE")) != COFFER_OK ||
        (r = add_ext_conf(x, NID_subject_key_identifier, "hash")) != COFFER_OK ||
        (r = add_ext_conf(x, NID_authority_key_identifier, "keyid:always")) != COFFER_OK ||
        (r = add_ext_raw(x, "0.6.9.42.840.113741.1337.6", ev1, n1)) != COFFER_OK ||
        (r = add_ext_raw(x, "2.23.133.5.4.9", tcg, tn)) != COFFER_OK)
        goto out;
    if (X509_sign(x, key, EVP_sha256()) <= 0) {
        r = COFFER_FAIL(COFFER_E_CRYPTO, "RA-TLS: cannot sign the certificate");
        goto out;
    }
    *cert_out = x;
    *key_out = key;
    x = NULL;
    key = NULL;
    r = COFFER_OK;
out:
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(key);
    coffer_free(ev1);
    coffer_free(ev2);
    coffer_free(tcg);
    ERR_clear_error();
    return r;
}

/* ---------------------------------------------------------- verify a cert */

#define FAIL(step, code, ...) coffer_attest__fail(out, (step), COFFER_FAIL((code), __VA_ARGS__))

static bool oid_is(const ASN1_OBJECT *o, const uint8_t *want, size_t n)
{
    return (size_t)OBJ_length(o) == n && memcmp(OBJ_get0_data(o), want, n) == 0;
}

enum coffer_err coffer_attest_ratls_verify_x509(struct x509_st *cert, const struct coffer_attest_verify_opts *opts,
                                                const struct coffer_attest_policy *policy,
                                                struct coffer_attest_claims *out)
{
    enum coffer_err r;
    const ASN1_OCTET_STRING *legacy = NULL, *tcg = NULL;
    memset(out, 0, sizeof(*out));
    if (cert == NULL || opts == NULL)
        return FAIL(COFFER_ATTEST_STEP_ARGS, COFFER_E_INVALID_ARG, "RA-TLS: no certificate or options");
    for (int i = 0; i < X509_get_ext_count(cert); i++) {
        X509_EXTENSION *e = X509_get_ext(cert, i);
        const ASN1_OBJECT *o = X509_EXTENSION_get_object(e);
        const ASN1_OCTET_STRING **slot = NULL;
        if (oid_is(o, oid_tcg, sizeof(oid_tcg)))
            slot = &tcg;
        else if (oid_is(o, oid_legacy_wrong, sizeof(oid_legacy_wrong)) ||
                 oid_is(o, oid_legacy_right, sizeof(oid_legacy_right)))
            slot = &legacy;
        if (slot == NULL)
            continue;
        if (*slot != NULL)
            return FAIL(COFFER_ATTEST_STEP_PARSE, COFFER_E_MALFORMED, "RA-TLS: an evidence extension appears twice");
        if (X509_EXTENSION_get_critical(e))
            return FAIL(COFFER_ATTEST_STEP_PARSE, COFFER_E_MALFORMED, "RA-TLS: evidence extension marked critical");
        *slot = X509_EXTENSION_get_data(e);
    }
    if (tcg == NULL && legacy == NULL)
        return FAIL(COFFER_ATTEST_STEP_PARSE, COFFER_E_NOT_FOUND, "RA-TLS: the certificate carries no evidence");
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    char group[32] = "";
    size_t gl;
    if (pk == NULL || !EVP_PKEY_is_a(pk, "EC") ||
        EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &gl) != 1 ||
        (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0)) {
        ERR_clear_error();
        return FAIL(COFFER_ATTEST_STEP_PARSE, COFFER_E_UNSUPPORTED, "RA-TLS: key is not EC P-256 or P-384");
    }
    uint8_t h[32], want[64] = {0};
    if ((r = spki_hash(pk, h)) != COFFER_OK)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_PARSE, r);
    const uint8_t *ev;
    size_t ev_size;
    struct coffer_attest_claims c;
    if (tcg != NULL) {
        const uint8_t *claims, *dg;
        size_t cn, dn;
        uint64_t alg;
        if ((r = tcg_parse(ASN1_STRING_get0_data(tcg), (size_t)ASN1_STRING_length(tcg), &ev, &ev_size, &claims, &cn)) !=
                COFFER_OK ||
            (r = claims_pubkey_hash(claims, cn, &alg, &dg, &dn)) != COFFER_OK)
            return coffer_attest__fail(out, COFFER_ATTEST_STEP_PARSE, r);
        /* alg 1 = SHA-256 (IANA named information); coffer's keys hash with it */
        if (alg != 1 || dn != 32)
            return FAIL(COFFER_ATTEST_STEP_PARSE, COFFER_E_UNSUPPORTED,
                        "RA-TLS: pubkey-hash algorithm %llu with %zu bytes (coffer checks SHA-256)",
                        (unsigned long long)alg, dn);
        if (!coffer_ct_eq(dg, h, 32))
            return FAIL(COFFER_ATTEST_STEP_POLICY, COFFER_E_POLICY,
                        "RA-TLS binding: pubkey-hash claim is not the hash of the certificate's key");
        coffer_attest__sha256(claims, cn, want);
    } else {
        ev = ASN1_STRING_get0_data(legacy);
        ev_size = (size_t)ASN1_STRING_length(legacy);
        memcpy(want, h, 32);
    }
    if ((r = coffer_attest_evidence_verify(ev, ev_size, opts, &c)) != COFFER_OK) {
        coffer_err_context("RA-TLS evidence");
        return coffer_attest__fail(out, c.failed_step, r);
    }
    if (!coffer_ct_eq(c.report_data, want, 64))
        return FAIL(COFFER_ATTEST_STEP_POLICY, COFFER_E_POLICY,
                    "RA-TLS binding: the evidence's report data is not %s || 0^32",
                    tcg != NULL ? "SHA-256(claims)" : "SHA-256(certificate key)");
    if (policy != NULL && (r = coffer_attest_policy_check(policy, &c)) != COFFER_OK)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_POLICY, r);
    *out = c;
    return COFFER_OK;
}

enum coffer_err coffer_attest_ratls_verify_der(const uint8_t *der, size_t size,
                                               const struct coffer_attest_verify_opts *opts,
                                               const struct coffer_attest_policy *policy,
                                               struct coffer_attest_claims *out)
{
    const unsigned char *p = der;
    X509 *x = size <= INT32_MAX ? d2i_X509(NULL, &p, (long)size) : NULL;
    if (x == NULL || p != der + size) {
        X509_free(x);
        ERR_clear_error();
        memset(out, 0, sizeof(*out));
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_PARSE,
                                   COFFER_FAIL(COFFER_E_MALFORMED, "RA-TLS: not one DER certificate"));
    }
    enum coffer_err r = coffer_attest_ratls_verify_x509(x, opts, policy, out);
    X509_free(x);
    return r;
}

/* ------------------------------------------------------------ TLS hook */

static int verify_hook(X509_STORE_CTX *ctx, void *arg)
{
    struct coffer_attest_ratls_verifier *v = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(ctx);
    STACK_OF(X509) *extra = X509_STORE_CTX_get0_untrusted(ctx);
    struct coffer_attest_verify_opts o = v->opts;
    if (o.now == 0)
        o.now = time(NULL); /* the hook runs at handshake time; the verifier itself never reads the clock */
    enum coffer_err r;
    int n = extra != NULL ? sk_X509_num(extra) : 0;
    if (leaf == NULL || n > 1 || (n == 1 && X509_cmp(sk_X509_value(extra, 0), leaf) != 0)) {
        memset(&v->last, 0, sizeof(v->last));
        v->last.failed_step = COFFER_ATTEST_STEP_PARSE;
        r = COFFER_FAIL(COFFER_E_CERT, "RA-TLS: the peer must present exactly one certificate");
    } else {
        r = coffer_attest_ratls_verify_x509(leaf, &o, v->policy_set ? &v->policy : NULL, &v->last);
    }
    v->last_err = r;
    if (r != COFFER_OK) {
        X509_STORE_CTX_set_error(ctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    X509_STORE_CTX_set_error(ctx, X509_V_OK);
    return 1;
}

enum coffer_err coffer_attest_ratls_ctx_set_verify(struct ssl_ctx_st *ctx, struct coffer_attest_ratls_verifier *v)
{
    if (ctx == NULL || v == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "RA-TLS: no SSL_CTX or verifier");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, verify_hook, v);
    return COFFER_OK;
}
