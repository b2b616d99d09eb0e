/* attest_test.h — helpers shared by the attest test files (one cmocka
 * binary, test_attest): vectors, expected.json access, group runners. */
#ifndef COFFER_ATTEST_TEST_H
#define COFFER_ATTEST_TEST_H

#include "testutil.h"

#include "coffer/attest.h"

/* expected.json of a vector folder ("sgx/phala-v3"); caller json_decref. */
json_t *at_expected(const char *vec);
/* verify_at of a vector. */
time_t at_verify_at(const json_t *exp);
/* Parse an ISO time or fail the test. */
time_t at_time(const char *iso);
/* Read a vector file ("sgx/phala-v3/quote.bin"). */
uint8_t *at_read(const char *rel, size_t *size);
/* Load a collateral folder ("collateral/sgx-...") or fail the test; with
 * no_pck_crl the PCK CRL is left out (revocation data unavailable). */
struct coffer_attest_collateral *at_collateral(const char *rel, bool no_pck_crl);
/* Assert hex string equals bytes. */
void at_assert_hex(const char *hex, const uint8_t *p, size_t n);
/* Assert a verification failed at step with code, printing the detail. */
void at_assert_fails(enum coffer_err r, const struct coffer_attest_claims *c, enum coffer_err code,
                     enum coffer_attest_step step);

/* SEV-SNP certificate tables, laid out as the kernel hands them out
 * (entries, the all-zero entry, then the certificates back to back); guid
 * in text form, written in RFC 4122 byte order. */
struct at_cert_entry {
    const char *guid;
    const uint8_t *data;
    size_t size;
};
#define AT_GUID_VCEK "63da758d-e664-4564-adc5-f4b93be8accd"
#define AT_GUID_VLEK "a8074bc2-a25a-483e-aae6-39c045a0b8a1"
#define AT_GUID_ASK "4ab7b379-bbac-4fe4-a02f-05aef327c782"
#define AT_GUID_ARK "c0b406a4-a803-4952-9743-3fb6014cd0ae"
void at_guid(const char *text, uint8_t out[16]);
uint8_t *at_snp_table(const struct at_cert_entry *e, size_t n, size_t *size);
/* The DER of a certificate (malloc). */
uint8_t *at_x509_der(struct x509_st *x, size_t *size);
/* a || b (malloc). */
uint8_t *at_concat(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, size_t *size);

int at_run_sim_policy(void);
int at_run_sgx(void);
int at_run_tdx(void);
int at_run_snp(void);
int at_run_matrix(void);
int at_run_ratls(void);
int at_run_snp_matrix(void);
int at_run_snp_certs(void);

#endif
