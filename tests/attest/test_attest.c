/* test_attest.c — the test_attest binary: shared helpers and main, which
 * runs every group (simulation + policy, SGX DCAP vectors, ...). */
#include "attest_test.h"

#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

json_t *at_expected(const char *vec)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "vectors/attest/%s/expected.json", vec);
    size_t n;
    uint8_t *d = tu_read(tu_shared(rel), &n);
    json_t *j;
    assert_int_equal(coffer_json_parse(d, n, 1 << 20, &j), COFFER_OK);
    free(d);
    return j;
}

time_t at_time(const char *iso)
{
    time_t t;
    assert_int_equal(coffer_attest_time_parse(iso, &t), COFFER_OK);
    return t;
}

time_t at_verify_at(const json_t *exp)
{
    const char *s = json_string_value(json_object_get(exp, "verify_at"));
    assert_non_null(s);
    return at_time(s);
}

uint8_t *at_read(const char *rel, size_t *size)
{
    char p[256];
    snprintf(p, sizeof(p), "vectors/attest/%s", rel);
    return tu_read(tu_shared(p), size);
}

struct coffer_attest_collateral *at_collateral(const char *rel, bool no_pck_crl)
{
    char p[256];
    snprintf(p, sizeof(p), "vectors/attest/%s", rel);
    const char *dir = tu_shared(p);
    char path[512];
    static const char *names[5] = {"tcb_info.json", "qe_identity.json", "tcb_signing_chain.pem", "pck_crl.der",
                                   "root_ca_crl.der"};
    uint8_t *d[5] = {0};
    size_t n[5] = {0};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (no_pck_crl && i == 3)
            continue;
        if (coffer_file_read_all(path, 1 << 20, &d[i], &n[i]) != COFFER_OK)
            d[i] = NULL;
    }
    struct coffer_attest_collateral_bytes b = {d[0], n[0], d[1], n[1], d[2], n[2], d[3], n[3], d[4], n[4]};
    struct coffer_attest_collateral *c;
    enum coffer_attest_step step;
    enum coffer_err r = coffer_attest_collateral_parse(&b, &c, &step);
    if (r != COFFER_OK)
        fail_msg("collateral %s: %s at %s", rel, coffer_err_detail(), coffer_attest_step_name(step));
    for (int i = 0; i < 5; i++)
        free(d[i]);
    return c;
}

void at_assert_hex(const char *hex, const uint8_t *p, size_t n)
{
    char buf[2 * 128 + 1];
    assert_true(n <= 128);
    coffer_hex_encode(p, n, buf);
    assert_string_equal(buf, hex);
}

void at_assert_fails(enum coffer_err r, const struct coffer_attest_claims *c, enum coffer_err code,
                     enum coffer_attest_step step)
{
    if (r != code || c->failed_step != step)
        fail_msg("want %s at %s, got %s at %s: %s", coffer_err_name(code), coffer_attest_step_name(step),
                 coffer_err_name(r), coffer_attest_step_name(c->failed_step), coffer_err_detail());
    /* a failed verification leaves nothing that looks valid */
    assert_int_equal(c->kind, COFFER_ATTEST_KIND_NONE);
    assert_int_equal(c->tcb_status, COFFER_ATTEST_TCB_NONE);
    assert_false(c->collateral_checked);
}

void at_guid(const char *text, uint8_t out[16])
{
    char hex[33];
    size_t n = 0;
    for (const char *c = text; *c != '\0'; c++)
        if (*c != '-' && n < 32)
            hex[n++] = *c;
    assert_int_equal(n, 32);
    assert_int_equal(coffer_hex_decode(hex, 32, out, 16), COFFER_OK);
}

uint8_t *at_snp_table(const struct at_cert_entry *e, size_t n, size_t *size)
{
    size_t head = 24 * (n + 1), total = head;
    for (size_t i = 0; i < n; i++)
        total += e[i].size;
    uint8_t *t = calloc(1, total);
    assert_non_null(t);
    size_t off = head;
    for (size_t i = 0; i < n; i++) {
        at_guid(e[i].guid, t + 24 * i);
        coffer_store_u32le(t + 24 * i + 16, (uint32_t)off);
        coffer_store_u32le(t + 24 * i + 20, (uint32_t)e[i].size);
        memcpy(t + off, e[i].data, e[i].size);
        off += e[i].size;
    }
    *size = total;
    return t;
}

uint8_t *at_x509_der(struct x509_st *x, size_t *size)
{
    unsigned char *d = NULL;
    int n = i2d_X509(x, &d);
    assert_true(n > 0);
    uint8_t *out = malloc((size_t)n);
    assert_non_null(out);
    memcpy(out, d, (size_t)n);
    OPENSSL_free(d);
    *size = (size_t)n;
    return out;
}

uint8_t *at_concat(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, size_t *size)
{
    uint8_t *p = malloc(an + bn);
    assert_non_null(p);
    memcpy(p, a, an);
    memcpy(p + an, b, bn);
    *size = an + bn;
    return p;
}

int main(void)
{
    coffer_log_set_level(COFFER_LOG_ERROR);
    int fails = 0;
    fails += at_run_sim_policy();
    fails += at_run_sgx();
    fails += at_run_tdx();
    fails += at_run_snp();
    fails += at_run_matrix();
    fails += at_run_ratls();
    fails += at_run_snp_matrix();
    fails += at_run_snp_certs();
    return fails != 0;
}
