/*
 * test_secretprov.c — Gramine's secret-provisioning protocol: a verified
 * client gets the secret; a wrong measurement, a client without an RA-TLS
 * certificate, a wrong CA and a closed port are refused; counters agree.
 */
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coffer/run.h"

static char *dir;
static char ca_path[600], other_ca_path[600];
static SSL_CTX *server_ctx;
static uint8_t sim_key[64], exe_hash[32];

static void self_signed(const char *cn, const char *pem_path, X509 **cert_out, EVP_PKEY **key_out)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(x, k, EVP_sha256());
    FILE *f = fopen(pem_path, "w");
    PEM_write_X509(f, x);
    fclose(f);
    *cert_out = x;
    *key_out = k;
}

static int setup(void **state)
{
    (void)state;
    coffer_log_set_level(COFFER_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN); /* this test's raw TLS client writes to refusing servers */
    dir = tu_mkdtemp();
    char keyp[700];
    snprintf(keyp, sizeof(keyp), "%s/sim-key.pem", dir);
    setenv("COFFER_SIM_PLATFORM_KEY", keyp, 1);
    if (coffer_attest_sim_key_public(keyp, true, sim_key) != COFFER_OK)
        return -1;
    uint8_t *exe;
    size_t n;
    if (coffer_file_read_all("/proc/self/exe", 1u << 30, &exe, &n) != COFFER_OK)
        return -1;
    SHA256(exe, n, exe_hash);
    coffer_free(exe);
    snprintf(ca_path, sizeof(ca_path), "%s/server.crt", dir);
    snprintf(other_ca_path, sizeof(other_ca_path), "%s/other.crt", dir);
    X509 *cert, *other;
    EVP_PKEY *key, *okey;
    self_signed("localhost", ca_path, &cert, &key);
    self_signed("localhost", other_ca_path, &other, &okey);
    server_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(server_ctx, cert);
    SSL_CTX_use_PrivateKey(server_ctx, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    X509_free(other);
    EVP_PKEY_free(okey);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    SSL_CTX_free(server_ctx);
    tu_rmtree(dir);
    free(dir);
    return 0;
}

static struct coffer_secretprov_server *start_server(const uint8_t measurement[32])
{
    struct coffer_secretprov_server_config cfg = {.bind = "127.0.0.1:0", .ssl_ctx = server_ctx,
                                                  .secret = (const uint8_t *)"0123456789abcdef", .secret_size = 16,
                                                  .timeout_ms = 5000};
    cfg.opts.sim_platform_key = sim_key;
    coffer_attest_policy_init(&cfg.policy);
    cfg.policy.kinds = 1u << COFFER_ATTEST_KIND_SIM;
    cfg.policy.allow_simulation = true;
    memcpy(cfg.policy.measurements[0].bytes, measurement, 32);
    cfg.policy.measurements[0].size = 32;
    cfg.policy.measurement_count = 1;
    struct coffer_secretprov_server *s;
    assert_int_equal(coffer_secretprov_server_new(&cfg, &s), COFFER_OK);
    assert_int_equal(coffer_secretprov_server_start(s), COFFER_OK);
    return s;
}

static void test_release_to_verified_client(void **state)
{
    (void)state;
    struct coffer_secretprov_server *s = start_server(exe_hash);
    char servers[128];
    /* the first entry is unreachable: the client goes on to the next */
    snprintf(servers, sizeof(servers), "127.0.0.1:1;localhost:%u", coffer_secretprov_server_port(s));
    struct coffer_secret *secret;
    enum coffer_err r = coffer_secretprov_fetch(servers, ca_path, COFFER_ATTEST_PROVIDER_SIM, 5000, &secret);
    if (r != COFFER_OK)
        fail_msg("fetch: %s", coffer_err_detail());
    assert_int_equal(secret->size, 16);
    assert_memory_equal(secret->data, "0123456789abcdef", 16);
    coffer_secret_free(secret);
    /* a server certificate the client does not trust */
    assert_int_equal(coffer_secretprov_fetch(servers, other_ca_path, COFFER_ATTEST_PROVIDER_SIM, 5000, &secret),
                     COFFER_E_CERT);
    assert_null(secret);
    coffer_secretprov_server_stop(s);
    coffer_secretprov_server_wait(s);
    uint64_t released, refused;
    coffer_secretprov_server_stats(s, &released, &refused);
    assert_int_equal(released, 1);
    coffer_secretprov_server_free(s);
}

static void test_wrong_measurement_refused(void **state)
{
    (void)state;
    uint8_t other[32] = {1, 2, 3};
    struct coffer_secretprov_server *s = start_server(other);
    char servers[64];
    snprintf(servers, sizeof(servers), "localhost:%u", coffer_secretprov_server_port(s));
    struct coffer_secret *secret;
    enum coffer_err r = coffer_secretprov_fetch(servers, ca_path, COFFER_ATTEST_PROVIDER_SIM, 5000, &secret);
    assert_true(r == COFFER_E_DENIED || r == COFFER_E_NET);
    assert_null(secret);
    coffer_secretprov_server_stop(s);
    coffer_secretprov_server_wait(s);
    uint64_t released, refused;
    coffer_secretprov_server_stats(s, &released, &refused);
    assert_int_equal(released, 0);
    assert_int_equal(refused, 1);
    coffer_secretprov_server_free(s);
}

static void test_plain_tls_client_refused(void **state)
{
    (void)state;
    struct coffer_secretprov_server *s = start_server(exe_hash);
    /* an ordinary client certificate (no evidence) */
    char cert_path[700];
    snprintf(cert_path, sizeof(cert_path), "%s/plain.crt", dir);
    X509 *cert;
    EVP_PKEY *key;
    self_signed("client", cert_path, &cert, &key);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_use_certificate(ctx, cert);
    SSL_CTX_use_PrivateKey(ctx, key);
    SSL_CTX_load_verify_locations(ctx, ca_path, NULL);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%u", coffer_secretprov_server_port(s));
    BIO *b = BIO_new_ssl_connect(ctx);
    BIO_set_conn_hostname(b, target);
    char buf[64];
    int got = -1;
    if (BIO_do_connect(b) == 1 && BIO_write(b, COFFER_SECRETPROV_REQUEST, 35) == 35)
        got = BIO_read(b, buf, sizeof(buf));
    assert_true(got <= 0); /* nothing released */
    BIO_free_all(b);
    SSL_CTX_free(ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    coffer_secretprov_server_stop(s);
    coffer_secretprov_server_wait(s);
    uint64_t released, refused;
    coffer_secretprov_server_stats(s, &released, &refused);
    assert_int_equal(released, 0);
    assert_int_equal(refused, 1);
    coffer_secretprov_server_free(s);
    /* and nobody listens on a stopped server's port */
    struct coffer_secret *secret;
    assert_int_equal(coffer_secretprov_fetch(target, ca_path, COFFER_ATTEST_PROVIDER_SIM, 2000, &secret), COFFER_E_NET);
}

static void test_response_header(void **state)
{
    (void)state;
    uint8_t h[41];
    memcpy(h, "SECRET_PROVISION_RA_TLS_RESPONSE_V1:", 37); /* with its NUL */
    h[37] = 0, h[38] = 0, h[39] = 0, h[40] = 16;
    uint32_t n;
    assert_int_equal(coffer_secretprov_parse_header(h, 41, &n), COFFER_OK);
    assert_int_equal(n, 16);
    assert_int_equal(coffer_secretprov_parse_header(h, 40, &n), COFFER_E_TRUNCATED);
    h[40] = 0;
    assert_int_equal(coffer_secretprov_parse_header(h, 41, &n), COFFER_E_TOO_LARGE);
    h[37] = 0x7f;
    assert_int_equal(coffer_secretprov_parse_header(h, 41, &n), COFFER_E_TOO_LARGE);
    h[37] = 0, h[40] = 1, h[0] = 'X';
    assert_int_equal(coffer_secretprov_parse_header(h, 41, &n), COFFER_E_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_to_verified_client),
        cmocka_unit_test(test_wrong_measurement_refused),
        cmocka_unit_test(test_plain_tls_client_refused),
        cmocka_unit_test(test_response_header),
    };
    return cmocka_run_group_tests_name("run", tests, setup, teardown);
}
