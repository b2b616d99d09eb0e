/* test_ratls.c — RA-TLS certificates: coffer's own (simulation evidence,
 * both of Gramine's extensions) checked byte by byte against the layout in
 * research/ratls-secretprov.md and verified; certificates laid out the same
 * way by this test around the recorded SGX quotes (evidence verifies, the
 * key binding must not); no fallback from a bad TCG extension; and real TLS
 * handshakes in both directions through the verification hook. */
#include "attest_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static char *tmpdir;
static uint8_t simpub[64];

static int setup(void **state)
{
    (void)state;
    tmpdir = tu_mkdtemp();
    char p[600];
    snprintf(p, sizeof(p), "%s/platform.pem", tmpdir);
    setenv("COFFER_SIM_PLATFORM_KEY", p, 1);
    return coffer_attest_sim_key_public(p, true, simpub) == COFFER_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("COFFER_SIM_PLATFORM_KEY");
    tu_rmtree(tmpdir);
    free(tmpdir);
    return 0;
}

static const uint8_t *find(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return hay + i;
    return NULL;
}

static struct coffer_attest_policy sim_policy(void)
{
    struct coffer_attest_policy p;
    coffer_attest_policy_init(&p);
    p.allow_simulation = true;
    p.kinds |= 1u << COFFER_ATTEST_KIND_SIM;
    return p;
}

static void test_ratls_make_layout_and_verify(void **state)
{
    (void)state;
    X509 *x;
    EVP_PKEY *k;
    assert_int_equal(coffer_attest_ratls_make(COFFER_ATTEST_PROVIDER_SIM, &x, &k), COFFER_OK);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    /* subject = issuer = CN=RATLS, O=GramineDevelopers, C=US; serial 1; self-signed */
    char sub[128];
    X509_NAME_oneline(X509_get_subject_name(x), sub, sizeof(sub));
    assert_string_equal(sub, "/CN=RATLS/O=GramineDevelopers/C=US");
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(x)), 1);
    assert_int_equal(X509_verify(x, k), 1);
    /* extension order: basicConstraints, SKI, AKI, legacy, TCG; none critical */
    assert_int_equal(X509_get_ext_count(x), 5);
    assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, 0))), NID_basic_constraints);
    assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, 1))), NID_subject_key_identifier);
    assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, 2))), NID_authority_key_identifier);
    for (int i = 0; i < 5; i++)
        assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, i)), 0);
    /* legacy: 06 0B 06 09 2A 86 48 86 F8 4D 8A 39 06, then the OCTET STRING (240-byte evidence) */
    static const uint8_t legacy[] = {0x06, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x8a, 0x39, 0x06,
                                     0x04, 0x81, 0xf0, 'C', 'F', 'S', 'I', 'M', 'E', 'V', '1'};
    assert_non_null(find(der, (size_t)n, legacy, sizeof(legacy)));
    /* TCG: 06 06 67 81 05 05 04 09, OCTET STRING, D9 EA 60 82 58 F0 <evidence2> 58 33 <claims> */
    static const uint8_t tcg[] = {0x06, 0x06, 0x67, 0x81, 0x05, 0x05, 0x04, 0x09, 0x04, 0x82};
    const uint8_t *t = find(der, (size_t)n, tcg, sizeof(tcg));
    assert_non_null(t);
    static const uint8_t cbor_head[] = {0xd9, 0xea, 0x60, 0x82, 0x58, 0xf0, 'C', 'F', 'S', 'I', 'M', 'E', 'V', '1'};
    assert_memory_equal(t + sizeof(tcg) + 2, cbor_head, sizeof(cbor_head));
    const uint8_t *claims = t + sizeof(tcg) + 2 + 6 + 240;
    static const uint8_t claims_head[] = {0x58, 0x33, 0xa1, 0x6b, 'p', 'u', 'b', 'k', 'e', 'y', '-', 'h',
                                          'a',  's',  'h',  0x58, 0x24, 0x82, 0x01, 0x58, 0x20};
    assert_memory_equal(claims, claims_head, sizeof(claims_head));
    /* the hash is SHA-256 of the SubjectPublicKeyInfo DER */
    unsigned char *spki = NULL;
    int sn = i2d_PUBKEY(k, &spki);
    uint8_t h[32];
    unsigned int hl = 32;
    assert_int_equal(EVP_Digest(spki, (size_t)sn, h, &hl, EVP_sha256(), NULL), 1);
    OPENSSL_free(spki);
    assert_memory_equal(claims + sizeof(claims_head), h, 32);

    struct coffer_attest_verify_opts o = {.now = time(NULL), .sim_platform_key = simpub};
    struct coffer_attest_policy p = sim_policy();
    struct coffer_attest_claims c;
    enum coffer_err r = coffer_attest_ratls_verify_der(der, (size_t)n, &o, &p, &c);
    if (r != COFFER_OK)
        fail_msg("%s at %s", coffer_err_detail(), coffer_attest_step_name(c.failed_step));
    assert_true(c.simulation);
    /* evidence2's report data = SHA-256(claims) || 0 */
    uint8_t ch[32];
    assert_int_equal(EVP_Digest(claims + 2, 51, ch, &hl, EVP_sha256(), NULL), 1);
    assert_memory_equal(c.report_data, ch, 32);
    /* the default policy refuses simulation; an unknown platform key fails the evidence */
    coffer_attest_policy_init(&p);
    at_assert_fails(coffer_attest_ratls_verify_der(der, (size_t)n, &o, &p, &c), &c, COFFER_E_POLICY,
                    COFFER_ATTEST_STEP_POLICY);
    o.sim_platform_key = NULL;
    at_assert_fails(coffer_attest_ratls_verify_der(der, (size_t)n, &o, NULL, &c), &c, COFFER_E_CERT,
                    COFFER_ATTEST_STEP_SIM_KEY);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* A certificate laid out like Gramine's around given extension values. */
static X509 *layout_cert(EVP_PKEY *k, const uint8_t *legacy, size_t ln, const uint8_t *tcg, size_t tn, bool right_oid)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_NAME *nm = X509_NAME_new();
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)"RATLS", -1, -1, 0);
    X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8, (const unsigned char *)"GramineDevelopers", -1, -1, 0);
    X509_NAME_add_entry_by_txt(nm, "C", V_ASN1_PRINTABLESTRING, (const unsigned char *)"US", -1, -1, 0);
    X509_set_subject_name(x, nm);
    X509_set_issuer_name(x, nm);
    X509_NAME_free(nm);
    ASN1_TIME_set(X509_getm_notBefore(x), 978307200);
    ASN1_TIME_set(X509_getm_notAfter(x), 1924991999);
    X509_set_pubkey(x, k);
    const char *oids[2] = {right_oid ? "1.2.840.113741.1337.6" : "0.6.9.42.840.113741.1337.6", "2.23.133.5.4.9"};
    const uint8_t *vals[2] = {legacy, tcg};
    size_t lens[2] = {ln, tn};
    for (int i = 0; i < 2; i++) {
        if (vals[i] == NULL)
            continue;
        ASN1_OBJECT *o = OBJ_txt2obj(oids[i], 1);
        ASN1_OCTET_STRING *s = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(s, vals[i], (int)lens[i]);
        X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, s);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(s);
        ASN1_OBJECT_free(o);
    }
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    return x;
}

static uint8_t *tcg_value(const uint8_t *ev, size_t n, const uint8_t claims[51], size_t *size)
{
    uint8_t *t = malloc(n + 64);
    size_t o = 0;
    t[o++] = 0xd9, t[o++] = 0xea, t[o++] = 0x60, t[o++] = 0x82;
    if (n < 0x100) { /* minimal CBOR lengths, as libcbor writes them */
        t[o++] = 0x58, t[o++] = (uint8_t)n;
    } else {
        t[o++] = 0x59, t[o++] = (uint8_t)(n >> 8), t[o++] = (uint8_t)n;
    }
    memcpy(t + o, ev, n);
    o += n;
    t[o++] = 0x58, t[o++] = 51;
    memcpy(t + o, claims, 51);
    *size = o + 51;
    return t;
}

static void claims_for(EVP_PKEY *k, uint8_t out[51])
{
    static const uint8_t head[] = {0xa1, 0x6b, 'p', 'u', 'b', 'k', 'e', 'y', '-', 'h', 'a', 's', 'h',
                                   0x58, 0x24, 0x82, 0x01, 0x58, 0x20};
    memcpy(out, head, sizeof(head));
    unsigned char *spki = NULL;
    int sn = i2d_PUBKEY(k, &spki);
    unsigned int hl = 32;
    EVP_Digest(spki, (size_t)sn, out + sizeof(head), &hl, EVP_sha256(), NULL);
    OPENSSL_free(spki);
}

static void test_ratls_vector_quotes(void **state)
{
    (void)state;
    json_t *exp = at_expected("sgx/phala-v3");
    size_t qn;
    uint8_t *q = at_read("sgx/phala-v3/quote.bin", &qn);
    struct coffer_attest_collateral *col = at_collateral("collateral/sgx-fmspc00A067110000-2025-06-19", false);
    const struct coffer_attest_collateral *list[1] = {col};
    struct coffer_attest_verify_opts o = {.now = at_verify_at(exp), .collateral = list, .collateral_count = 1};
    struct coffer_attest_claims c;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    uint8_t claims[51];
    claims_for(k, claims);
    /* legacy only, both OID spellings: the quote verifies, its report data ("Hello, world!") binds no key */
    for (int right = 0; right < 2; right++) {
        X509 *x = layout_cert(k, q, qn, NULL, 0, right);
        unsigned char *der = NULL;
        int dn = i2d_X509(x, &der);
        static const uint8_t wrong_oid[] = {0x06, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x8a, 0x39, 0x06, 0x04, 0x82, 0x11, 0xf8};
        if (!right)
            assert_non_null(find(der, (size_t)dn, wrong_oid, sizeof(wrong_oid))); /* 4600 = 0x11f8 */
        at_assert_fails(coffer_attest_ratls_verify_x509(x, &o, NULL, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_POLICY);
        assert_non_null(strstr(coffer_err_detail(), "SHA-256(certificate key)"));
        OPENSSL_free(der);
        X509_free(x);
    }
    /* TCG with the quote as evidence2: claims bind the key, the quote does not bind the claims */
    size_t tn;
    uint8_t *tcg = tcg_value(q, qn, claims, &tn);
    X509 *x = layout_cert(k, q, qn, tcg, tn, false);
    at_assert_fails(coffer_attest_ratls_verify_x509(x, &o, NULL, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_POLICY);
    assert_non_null(strstr(coffer_err_detail(), "SHA-256(claims)"));
    X509_free(x);
    /* a bad quote inside is caught by the quote verifier, at its step */
    size_t nn;
    uint8_t *neg = at_read("sgx/phala-v3/neg-sig.bin", &nn);
    x = layout_cert(k, neg, nn, NULL, 0, false);
    at_assert_fails(coffer_attest_ratls_verify_x509(x, &o, NULL, &c), &c, COFFER_E_SIGNATURE,
                    COFFER_ATTEST_STEP_QUOTE_SIGNATURE);
    X509_free(x);
    /* claims for another key: refused before the evidence */
    EVP_PKEY *k2 = EVP_EC_gen("P-256");
    x = layout_cert(k2, NULL, 0, tcg, tn, false);
    at_assert_fails(coffer_attest_ratls_verify_x509(x, &o, NULL, &c), &c, COFFER_E_POLICY, COFFER_ATTEST_STEP_POLICY);
    assert_non_null(strstr(coffer_err_detail(), "pubkey-hash"));
    X509_free(x);
    EVP_PKEY_free(k2);
    free(neg);
    free(tcg);
    EVP_PKEY_free(k);
    coffer_attest_collateral_free(col);
    free(q);
    json_decref(exp);
}

static void test_ratls_no_fallback(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    uint8_t claims[51], rd[64] = {0};
    claims_for(k, claims);
    unsigned char *spki = NULL;
    int sn = i2d_PUBKEY(k, &spki);
    unsigned int hl = 32;
    EVP_Digest(spki, (size_t)sn, rd, &hl, EVP_sha256(), NULL);
    OPENSSL_free(spki);
    uint8_t *ev;
    size_t en;
    assert_int_equal(coffer_attest_sim_evidence(NULL, NULL, rd, &ev, &en), COFFER_OK);
    struct coffer_attest_verify_opts o = {.now = time(NULL), .sim_platform_key = simpub};
    struct coffer_attest_claims c;
    /* a good legacy extension alone verifies */
    X509 *x = layout_cert(k, ev, en, NULL, 0, false);
    assert_int_equal(coffer_attest_ratls_verify_x509(x, &o, NULL, &c), COFFER_OK);
    X509_free(x);
    /* the same next to a broken TCG extension: refused, no fallback */
    static const uint8_t bad[] = {0xd9, 0xea, 0x60, 0x82, 0x41, 0x00, 0x41, 0x00};
    x = layout_cert(k, ev, en, bad, sizeof(bad), false);
    assert_int_not_equal(coffer_attest_ratls_verify_x509(x, &o, NULL, &c), COFFER_OK);
    assert_int_equal(c.failed_step, COFFER_ATTEST_STEP_PARSE);
    X509_free(x);
    /* TCG without the pubkey-hash claim is refused (nothing binds the key) */
    static const uint8_t noclaim[] = {0xa1, 0x65, 'n', 'o', 'n', 'c', 'e', 0x41, 0x01};
    const uint8_t *e2, *cl;
    size_t e2n, cln;
    uint8_t tv[64] = {0xd9, 0xea, 0x60, 0x82, 0x41, 0x07, 0x49};
    memcpy(tv + 7, noclaim, sizeof(noclaim));
    assert_int_equal(coffer_attest_ratls_extensions_parse(tv, 7 + sizeof(noclaim), &e2, &e2n, &cl, &cln),
                     COFFER_E_MALFORMED);
    /* every truncation of a good TCG value fails to parse */
    size_t tn;
    uint8_t *tcg = tcg_value(ev, en, claims, &tn);
    assert_int_equal(coffer_attest_ratls_extensions_parse(tcg, tn, &e2, &e2n, &cl, &cln), COFFER_OK);
    /* a non-minimal length is refused */
    uint8_t *nm = malloc(tn + 1);
    memcpy(nm, tcg, 4);
    nm[4] = 0x59, nm[5] = 0x00, nm[6] = (uint8_t)en;
    memcpy(nm + 7, tcg + 6, tn - 6);
    assert_int_equal(coffer_attest_ratls_extensions_parse(nm, tn + 1, &e2, &e2n, &cl, &cln), COFFER_E_MALFORMED);
    free(nm);
    for (size_t i = 0; i < tn; i++)
        assert_int_not_equal(coffer_attest_ratls_extensions_parse(tcg, i, &e2, &e2n, &cl, &cln), COFFER_OK);
    free(tcg);
    free(ev);
    EVP_PKEY_free(k);
}

/* ------------------------------------------------------------ handshakes */

static SSL_CTX *ctx_with(const SSL_METHOD *m, X509 *cert, EVP_PKEY *key)
{
    SSL_CTX *c = SSL_CTX_new(m);
    assert_non_null(c);
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    if (cert != NULL) {
        assert_int_equal(SSL_CTX_use_certificate(c, cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(c, key), 1);
    }
    return c;
}

/* Drive a handshake over a BIO pair; true when both sides completed. */
static bool handshake(SSL_CTX *sc, SSL_CTX *cc)
{
    SSL *s = SSL_new(sc), *c = SSL_new(cc);
    BIO *bs, *bc;
    BIO_new_bio_pair(&bs, 0, &bc, 0);
    SSL_set_bio(s, bs, bs);
    SSL_set_bio(c, bc, bc);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    bool sd = false, cd = false, failed = false;
    for (int i = 0; i < 50 && !(sd && cd) && !failed; i++) {
        if (!cd) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cd = true;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ && SSL_get_error(c, r) != SSL_ERROR_WANT_WRITE)
                failed = true;
        }
        if (!sd && !failed) {
            int r = SSL_do_handshake(s);
            if (r == 1)
                sd = true;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ && SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE)
                failed = true;
        }
    }
    /* TLS 1.3: the client finishes first; the server's verdict on the client
     * certificate arrives with the next read */
    if (!failed && sd && cd) {
        char buf[8];
        SSL_write(c, "ping", 4);
        int r = SSL_read(s, buf, sizeof(buf));
        failed = r != 4;
    }
    SSL_free(s);
    SSL_free(c);
    ERR_clear_error();
    return sd && cd && !failed;
}

static void test_ratls_tls_both_directions(void **state)
{
    (void)state;
    X509 *scert, *ccert;
    EVP_PKEY *skey, *ckey;
    assert_int_equal(coffer_attest_ratls_make(COFFER_ATTEST_PROVIDER_SIM, &scert, &skey), COFFER_OK);
    assert_int_equal(coffer_attest_ratls_make(COFFER_ATTEST_PROVIDER_SIM, &ccert, &ckey), COFFER_OK);
    struct coffer_attest_ratls_verifier sv = {.opts = {.sim_platform_key = simpub}, .policy = sim_policy(),
                                              .policy_set = true};
    struct coffer_attest_ratls_verifier cv = sv;

    /* client verifies the server */
    SSL_CTX *sc = ctx_with(TLS_server_method(), scert, skey);
    SSL_CTX *cc = ctx_with(TLS_client_method(), NULL, NULL);
    assert_int_equal(coffer_attest_ratls_ctx_set_verify(cc, &cv), COFFER_OK);
    assert_true(handshake(sc, cc));
    assert_int_equal(cv.last_err, COFFER_OK);
    assert_true(cv.last.simulation);
    /* a strict client refuses the same server */
    coffer_attest_policy_init(&cv.policy);
    assert_false(handshake(sc, cc));
    assert_int_equal(cv.last_err, COFFER_E_POLICY);
    SSL_CTX_free(cc);

    /* server verifies the client (mutual: both RA-TLS) */
    cv.policy = sim_policy();
    cc = ctx_with(TLS_client_method(), ccert, ckey);
    assert_int_equal(coffer_attest_ratls_ctx_set_verify(cc, &cv), COFFER_OK);
    assert_int_equal(coffer_attest_ratls_ctx_set_verify(sc, &sv), COFFER_OK);
    assert_true(handshake(sc, cc));
    assert_int_equal(sv.last_err, COFFER_OK);
    SSL_CTX_free(cc);
    /* a client without a certificate, or with an ordinary one, is refused */
    cc = ctx_with(TLS_client_method(), NULL, NULL);
    assert_int_equal(coffer_attest_ratls_ctx_set_verify(cc, &cv), COFFER_OK);
    assert_false(handshake(sc, cc));
    SSL_CTX_free(cc);
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *plain = layout_cert(pk, NULL, 0, NULL, 0, false);
    cc = ctx_with(TLS_client_method(), plain, pk);
    assert_int_equal(coffer_attest_ratls_ctx_set_verify(cc, &cv), COFFER_OK);
    assert_false(handshake(sc, cc));
    assert_int_equal(sv.last_err, COFFER_E_NOT_FOUND);
    SSL_CTX_free(cc);
    /* a client presenting someone else's RA-TLS certificate cannot finish:
     * the handshake proves possession of the key */
    cc = ctx_with(TLS_client_method(), NULL, NULL);
    assert_int_equal(SSL_CTX_use_certificate(cc, ccert), 1);
    assert_int_not_equal(SSL_CTX_use_PrivateKey(cc, pk), 1); /* OpenSSL refuses the mismatched key outright */
    ERR_clear_error();
    SSL_CTX_free(cc);
    X509_free(plain);
    EVP_PKEY_free(pk);
    SSL_CTX_free(sc);
    X509_free(scert);
    X509_free(ccert);
    EVP_PKEY_free(skey);
    EVP_PKEY_free(ckey);
}

int at_run_ratls(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratls_make_layout_and_verify),
        cmocka_unit_test(test_ratls_vector_quotes),
        cmocka_unit_test(test_ratls_no_fallback),
        cmocka_unit_test(test_ratls_tls_both_directions),
    };
    return cmocka_run_group_tests_name("attest_ratls", tests, setup, teardown);
}
