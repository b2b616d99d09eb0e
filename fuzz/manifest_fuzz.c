/* manifest_fuzz.c — the coordinator's manifest parser, validator and
 * template dry run over arbitrary bytes: errors, never crashes. */
#include "coffer/coordinator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct coffer_manifest *m;
    if (coffer_manifest_parse(data, size, &m) == COFFER_OK) {
        (void)coffer_manifest_check_templates(m);
        coffer_manifest_free(m);
    }
    return 0;
}
