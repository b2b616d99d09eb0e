/* qe_identity_fuzz.c — the QE Identity parser (src/attest/collateral.c)
 * without the signature check; seeded with the recorded PCS bodies. */
#include <string.h>

#include "attest_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct coffer_attest_collateral c;
    memset(&c, 0, sizeof(c));
    (void)coffer_attest__qe_identity_parse(data, size, NULL, &c);
    coffer_attest__collateral_clear(&c);
    return 0;
}
