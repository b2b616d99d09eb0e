/* ratls_ext_fuzz.c — RA-TLS certificate extensions (src/attest/ratls.c):
 * the TCG tagged-evidence CBOR and claims parser, and whole certificates
 * through extension lookup, key checks, binding and the evidence verifier.
 * Seeds: a coffer RA-TLS certificate (simulation evidence) and its TCG value. */
#include "attest_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    const uint8_t *ev, *claims;
    size_t en, cn;
    (void)coffer_attest_ratls_extensions_parse(data, size, &ev, &en, &claims, &cn);
    struct coffer_attest_verify_opts o = {.now = 1751328000};
    struct coffer_attest_claims c;
    (void)coffer_attest_ratls_verify_der(data, size, &o, NULL, &c);
    return 0;
}
