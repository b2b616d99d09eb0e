/* tdx_quote_fuzz.c — Intel quote framing (src/attest/quote.c) and the whole
 * verifier up to "no collateral" (PEM chain, X.509, PCK extension,
 * signatures) over arbitrary bytes, seeded with the TDX v4 and v5 vectors (TD report 1.0 and 1.5 bodies, type-6 nested certification data, trailing zero padding). */
#include "attest_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct intel_quote q;
    struct coffer_attest_claims c;
    if (coffer_attest__intel_quote_parse(data, size, &q) == COFFER_OK && q.pck_pem_size > 0) {
        STACK_OF(X509) *sk;
        if (coffer_attest__pem_certs(q.pck_pem, q.pck_pem_size, 3, true, &sk) == COFFER_OK) {
            struct pck_ext e;
            (void)coffer_attest__pck_ext_from_cert(sk_X509_value(sk, 0), &e);
            sk_X509_pop_free(sk, X509_free);
        }
    }
    (void)coffer_attest_evidence_decode(data, size, &c);
    struct coffer_attest_verify_opts o = {.now = 1751328000}; /* 2025-07-01 */
    (void)coffer_attest_evidence_verify(data, size, &o, &c);
    return 0;
}
