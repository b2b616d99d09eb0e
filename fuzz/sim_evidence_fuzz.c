/* sim_evidence_fuzz.c — simulation evidence (src/attest/sim.c): decode,
 * and verify under the key the input itself names (so mutations reach the
 * signature check). */
#include <string.h>

#include "attest_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct coffer_attest_claims c;
    if (coffer_attest_evidence_decode(data, size, &c) == COFFER_OK && c.kind == COFFER_ATTEST_KIND_SIM) {
        uint8_t key[64];
        memcpy(key, c.sim_platform_key, 64);
        struct coffer_attest_verify_opts o = {.now = 1751328000, .sim_platform_key = key};
        (void)coffer_attest_evidence_verify(data, size, &o, &c);
    }
    return 0;
}
