/*
 * test_pki.c — the coordinator's CA: chains verify with OpenSSL, a marble's
 * certificate carries the key of its own CSR, bad CSRs are refused, state
 * round-trips, certificate secrets of every type are issued.
 */
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "coffer/coordinator.h"

static X509 *d2x(const uint8_t *der, size_t size)
{
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)size);
    assert_non_null(x);
    return x;
}

static X509 *ca(const struct coffer_pki *pki, enum coffer_pki_cert which)
{
    size_t n;
    const uint8_t *d = coffer_pki_cert_der(pki, which, &n);
    return d2x(d, n);
}

/* Verify leaf against trust anchor root, with an optional untrusted middle.
 * A pinned intermediate is a trust anchor too (PARTIAL_CHAIN), as clients of
 * the serving flow pin `coffer certificate intermediate`. */
static int verify(X509 *leaf, X509 *root, X509 *middle)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, root);
    X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (middle)
        sk_X509_push(chain, middle);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, st, leaf, chain);
    int ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(chain);
    X509_STORE_free(st);
    return ok;
}

static uint8_t *make_csr(EVP_PKEY *k, const char *dns, size_t *size, bool corrupt)
{
    X509_REQ *req = X509_REQ_new();
    X509_REQ_set_pubkey(req, k);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC, (const unsigned char *)"m", -1, -1, 0);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, (char *)dns);
    sk_X509_EXTENSION_push(exts, san);
    X509_REQ_add_extensions(req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_sign(req, k, EVP_sha256());
    int n = i2d_X509_REQ(req, NULL);
    uint8_t *d = malloc((size_t)n), *w = d;
    i2d_X509_REQ(req, &w);
    X509_REQ_free(req);
    if (corrupt)
        d[n - 5] ^= 1; /* inside the signature */
    *size = (size_t)n;
    return d;
}

/* A CSR with the given key, digest and SAN config (NULL: no extension). */
static uint8_t *csr_with(EVP_PKEY *k, const EVP_MD *md, const char *san, size_t *size)
{
    X509_REQ *req = X509_REQ_new();
    X509_REQ_set_pubkey(req, k);
    if (san != NULL) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, (char *)san));
        X509_REQ_add_extensions(req, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    X509_REQ_sign(req, k, md);
    int n = i2d_X509_REQ(req, NULL);
    uint8_t *d = malloc((size_t)n), *w = d;
    i2d_X509_REQ(req, &w);
    X509_REQ_free(req);
    *size = (size_t)n;
    return d;
}

/* The fast DER path and OpenSSL's parser agree: same SANs, same key, same
 * refusals; CSRs the fast path does not read (RSA, other name forms) still
 * work through OpenSSL's. */
static void both_paths(const uint8_t *csr, size_t n, enum coffer_err want, const char *want_sans, EVP_PKEY *k)
{
    char *sans[2];
    uint8_t *spki[2];
    size_t spki_n[2];
    for (int i = 0; i < 2; i++) {
        enum coffer_err r = coffer_pki_csr_check(csr, n, i == 1, &sans[i], &spki[i], &spki_n[i]);
        if (r != want)
            fail_msg("%s path: %d, want %d (%s)", i ? "OpenSSL" : "fast", r, want, coffer_err_detail());
    }
    if (want == COFFER_OK) {
        assert_string_equal(sans[0], sans[1]);
        if (want_sans != NULL)
            assert_string_equal(sans[0], want_sans);
        assert_int_equal(spki_n[0], spki_n[1]);
        assert_memory_equal(spki[0], spki[1], spki_n[0]);
        uint8_t *kd = NULL;
        int kn = i2d_PUBKEY(k, &kd);
        assert_int_equal((size_t)kn, spki_n[0]);
        assert_memory_equal(kd, spki[0], spki_n[0]);
        OPENSSL_free(kd);
    } else {
        assert_null(sans[0]);
        assert_null(spki[1]);
    }
    for (int i = 0; i < 2; i++) {
        coffer_free(sans[i]);
        coffer_free(spki[i]);
    }
}

static void test_csr_paths(void **state)
{
    (void)state;
    static const struct {
        const char *curve;
        const char *md;
    } keys[] = {{"P-256", "SHA256"}, {"P-384", "SHA384"}, {"P-521", "SHA512"}, {"P-256", "SHA384"}};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        EVP_PKEY *k = EVP_EC_gen(keys[i].curve);
        size_t n;
        uint8_t *csr = csr_with(k, EVP_get_digestbyname(keys[i].md), "DNS:a.example,DNS:*.b-c.example,IP:10.1.2.3,"
                                "IP:fe80::1,DNS:bad_name", &n);
        both_paths(csr, n, COFFER_OK,
                   "DNS:localhost,IP:127.0.0.1,IP:::1,DNS:a.example,DNS:*.b-c.example,IP:10.1.2.3,IP:fe80:0:0:0:0:0:0:1",
                   k);
        csr[n - 5] ^= 1; /* inside the signature */
        both_paths(csr, n, COFFER_E_SIGNATURE, NULL, k);
        csr[n - 5] ^= 1;
        csr[40] ^= 1; /* inside the request info: signature or parse fails either way */
        char *sa;
        uint8_t *sp;
        size_t spn;
        assert_int_not_equal(coffer_pki_csr_check(csr, n, false, &sa, &sp, &spn), COFFER_OK);
        assert_int_not_equal(coffer_pki_csr_check(csr, n, true, &sa, &sp, &spn), COFFER_OK);
        free(csr);
        csr = csr_with(k, EVP_get_digestbyname(keys[i].md), NULL, &n); /* no extensions */
        both_paths(csr, n, COFFER_OK, "DNS:localhost,IP:127.0.0.1,IP:::1", k);
        both_paths(csr, n - 1, COFFER_E_MALFORMED, NULL, k);
        free(csr);
        EVP_PKEY_free(k);
    }
    /* read by OpenSSL's parser only: an RSA key, an e-mail name, SHA-1 */
    EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
    size_t n;
    uint8_t *csr = csr_with(rsa, EVP_sha256(), "DNS:r.example", &n);
    both_paths(csr, n, COFFER_OK, "DNS:localhost,IP:127.0.0.1,IP:::1,DNS:r.example", rsa);
    free(csr);
    csr = csr_with(ec, EVP_sha256(), "email:a@b.example,DNS:e.example", &n);
    both_paths(csr, n, COFFER_OK, "DNS:localhost,IP:127.0.0.1,IP:::1,DNS:e.example", ec);
    free(csr);
    csr = csr_with(ec, EVP_sha1(), "DNS:s.example", &n);
    both_paths(csr, n, COFFER_OK, NULL, ec);
    free(csr);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}

static void test_chain_and_marble_cert(void **state)
{
    (void)state;
    struct coffer_pki *pki;
    assert_int_equal(coffer_pki_new("coord.example,localhost", &pki), COFFER_OK);
    X509 *root = ca(pki, COFFER_PKI_ROOT), *inter = ca(pki, COFFER_PKI_INTERMEDIATE),
         *mroot = ca(pki, COFFER_PKI_MARBLE_ROOT);
    assert_int_equal(verify(inter, root, NULL), 1);
    assert_int_equal(verify(root, root, NULL), 1);
    assert_int_equal(X509_check_host(root, "coord.example", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(root, "127.0.0.1", 0), 1);
    EVP_PKEY *mk = EVP_EC_gen("P-256");
    size_t csr_n;
    uint8_t *csr = make_csr(mk, "DNS:grpc.tf-serving.service.com,IP:10.0.0.7", &csr_n, false);
    uint8_t *cert, *spki;
    size_t cert_n, spki_n;
    assert_int_equal(coffer_pki_certify_csr(pki, csr, csr_n, "uuid-1234", "tf-server", 30, &cert, &cert_n, &spki, &spki_n),
                     COFFER_OK);
    X509 *mc = d2x(cert, cert_n);
    /* clients trust the intermediate (TF demo: `certificate intermediate`),
     * or the root with the intermediate as a middle; marbles the marble root */
    assert_int_equal(verify(mc, inter, NULL), 1);
    assert_int_equal(verify(mc, root, inter), 1);
    assert_int_equal(verify(mc, mroot, NULL), 1);
    assert_int_equal(verify(mc, root, NULL), 0);
    /* the CSR's key is what was certified */
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(mc), mk), 1);
    uint8_t *mk_spki = NULL;
    int mk_n = i2d_PUBKEY(mk, &mk_spki);
    assert_int_equal((size_t)mk_n, spki_n);
    assert_memory_equal(mk_spki, spki, spki_n);
    OPENSSL_free(mk_spki);
    assert_int_equal(X509_check_host(mc, "grpc.tf-serving.service.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(mc, "10.0.0.7", 0), 1);
    assert_int_equal(X509_check_host(mc, "localhost", 0, 0, NULL), 1);
    char cn[64];
    X509_NAME_get_text_by_NID(X509_get_subject_name(mc), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "uuid-1234");
    ASN1_OBJECT *type_oid = OBJ_txt2obj("1.3.9903.2.1", 1);
    int idx = X509_get_ext_by_OBJ(mc, type_oid, -1);
    ASN1_OBJECT_free(type_oid);
    assert_true(idx >= 0);
    ASN1_OCTET_STRING *t = X509_EXTENSION_get_data(X509_get_ext(mc, idx));
    assert_int_equal(ASN1_STRING_length(t), 9);
    assert_memory_equal(ASN1_STRING_get0_data(t), "tf-server", 9);
    /* validity as asked: 30 days */
    int days, secs;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(mc), X509_get0_notAfter(mc));
    assert_int_equal(days, 30);
    /* a tampered CSR is refused, and so is garbage; nothing is returned */
    uint8_t *bad = make_csr(mk, "DNS:x", &csr_n, true), *c2, *s2;
    size_t c2_n, s2_n;
    assert_int_equal(coffer_pki_certify_csr(pki, bad, csr_n, "u", "t", 0, &c2, &c2_n, &s2, &s2_n), COFFER_E_SIGNATURE);
    assert_null(c2);
    assert_int_equal(coffer_pki_certify_csr(pki, (const uint8_t *)"junk", 4, "u", "t", 0, &c2, &c2_n, &s2, &s2_n),
                     COFFER_E_MALFORMED);
    assert_null(s2);
    free(bad);
    /* rotation: the old marble cert no longer chains to the new intermediate */
    assert_int_equal(coffer_pki_rotate_intermediate(pki), COFFER_OK);
    X509 *inter2 = ca(pki, COFFER_PKI_INTERMEDIATE);
    assert_int_equal(verify(mc, inter2, NULL), 0);
    assert_int_equal(verify(inter2, root, NULL), 1);
    /* the manifest signature verifies with the root's key */
    uint8_t *sig;
    size_t sig_n;
    assert_int_equal(coffer_pki_sign_root(pki, "manifest", 8, &sig, &sig_n), COFFER_OK);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(root));
    assert_int_equal(EVP_DigestVerify(md, sig, sig_n, (const uint8_t *)"manifest", 8), 1);
    EVP_MD_CTX_free(md);
    coffer_free(sig);
    X509_free(inter2);
    X509_free(mc);
    coffer_free(cert);
    coffer_free(spki);
    free(csr);
    EVP_PKEY_free(mk);
    X509_free(root);
    X509_free(inter);
    X509_free(mroot);
    coffer_pki_free(pki);
}

static void test_save_load_and_pem(void **state)
{
    (void)state;
    struct coffer_pki *pki, *back;
    assert_int_equal(coffer_pki_new("", &pki), COFFER_OK);
    json_t *j;
    assert_int_equal(coffer_pki_save(pki, &j), COFFER_OK);
    assert_int_equal(coffer_pki_load(j, &back), COFFER_OK);
    for (int w = 0; w < 3; w++) {
        size_t a, b;
        const uint8_t *da = coffer_pki_cert_der(pki, (enum coffer_pki_cert)w, &a);
        const uint8_t *db = coffer_pki_cert_der(back, (enum coffer_pki_cert)w, &b);
        assert_int_equal(a, b);
        assert_memory_equal(da, db, a);
    }
    /* the loaded root key still signs for the root certificate */
    uint8_t *sig;
    size_t sig_n;
    assert_int_equal(coffer_pki_sign_root(back, "x", 1, &sig, &sig_n), COFFER_OK);
    X509 *root = ca(pki, COFFER_PKI_ROOT);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(root));
    assert_int_equal(EVP_DigestVerify(md, sig, sig_n, (const uint8_t *)"x", 1), 1);
    EVP_MD_CTX_free(md);
    X509_free(root);
    coffer_free(sig);
    struct coffer_buf pem;
    coffer_buf_init(&pem, 0, false);
    assert_int_equal(coffer_pki_cert_pem(back, COFFER_PKI_INTERMEDIATE, &pem), COFFER_OK);
    assert_int_equal(coffer_pki_cert_pem(back, COFFER_PKI_ROOT, &pem), COFFER_OK);
    assert_true(pem.size > 100);
    assert_memory_equal(pem.data, "-----BEGIN CERTIFICATE-----", 27);
    coffer_buf_free(&pem);
    json_object_set_new(j, "root_key", json_string("AAAA"));
    struct coffer_pki *broken;
    assert_int_equal(coffer_pki_load(j, &broken), COFFER_E_MALFORMED);
    json_object_del(j, "root_cert");
    assert_int_equal(coffer_pki_load(j, &broken), COFFER_E_MALFORMED);
    json_decref(j);
    coffer_pki_free(back);
    coffer_pki_free(pki);
}

static void test_certificate_secrets(void **state)
{
    (void)state;
    struct coffer_pki *pki;
    assert_int_equal(coffer_pki_new("localhost", &pki), COFFER_OK);
    X509 *inter = ca(pki, COFFER_PKI_INTERMEDIATE);
    const char *dns[] = {"svc.local"};
    struct coffer_mf_secret specs[] = {
        {.name = "e", .type = COFFER_SECRET_CERT_ECDSA, .size_bits = 384, .dns_names = dns, .dns_names_count = 1},
        {.name = "r", .type = COFFER_SECRET_CERT_RSA, .size_bits = 2048, .common_name = "rsa", .valid_for_days = 10},
        {.name = "d", .type = COFFER_SECRET_CERT_ED25519},
    };
    const char *alg[] = {"EC", "RSA", "ED25519"};
    for (int i = 0; i < 3; i++) {
        uint8_t *cert;
        size_t n;
        struct coffer_secret *key;
        assert_int_equal(coffer_pki_issue_secret(pki, &specs[i], &cert, &n, &key), COFFER_OK);
        X509 *x = d2x(cert, n);
        assert_int_equal(verify(x, inter, NULL), 1);
        assert_true(EVP_PKEY_is_a(X509_get0_pubkey(x), alg[i]));
        const uint8_t *p = key->data;
        PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)key->size);
        EVP_PKEY *k = EVP_PKCS82PKEY(p8);
        assert_int_equal(EVP_PKEY_eq(k, X509_get0_pubkey(x)), 1);
        if (i == 0)
            assert_int_equal(X509_check_host(x, "svc.local", 0, 0, NULL), 1);
        EVP_PKEY_free(k);
        PKCS8_PRIV_KEY_INFO_free(p8);
        coffer_secret_free(key);
        X509_free(x);
        coffer_free(cert);
    }
    struct coffer_mf_secret sym = {.name = "s", .type = COFFER_SECRET_SYMMETRIC, .size_bits = 128};
    uint8_t *cert;
    size_t n;
    struct coffer_secret *key;
    assert_int_equal(coffer_pki_issue_secret(pki, &sym, &cert, &n, &key), COFFER_E_INVALID_ARG);
    X509_free(inter);
    coffer_pki_free(pki);
}

int test_pki_main(void);
int test_pki_main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_and_marble_cert),
        cmocka_unit_test(test_save_load_and_pem),
        cmocka_unit_test(test_certificate_secrets),
        cmocka_unit_test(test_csr_paths),
    };
    return cmocka_run_group_tests_name("coordinator_pki", tests, NULL, NULL);
}
