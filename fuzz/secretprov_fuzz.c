/* secretprov_fuzz.c — the secret-provisioning response header parser. */
#include "coffer/run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    uint32_t n;
    if (coffer_secretprov_parse_header(data, size, &n) == COFFER_OK && (n == 0 || n > COFFER_SECRETPROV_MAX_SECRET))
        __builtin_trap();
    return 0;
}
