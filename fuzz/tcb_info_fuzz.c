/* tcb_info_fuzz.c — the signed-span scanner and the TCB Info parser
 * (src/attest/collateral.c) without the signature check, so mutated JSON
 * reaches every field reader; seeded with the recorded PCS bodies. */
#include <string.h>

#include "attest_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct coffer_attest_collateral c;
    memset(&c, 0, sizeof(c));
    (void)coffer_attest__tcb_info_parse(data, size, NULL, &c);
    coffer_attest__collateral_clear(&c);
    size_t off, n;
    uint8_t sig[64];
    (void)coffer_attest__signed_span(data, size, "tcbInfo", &off, &n, sig);
    return 0;
}
