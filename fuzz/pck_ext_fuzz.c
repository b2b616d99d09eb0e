/* pck_ext_fuzz.c — the SGX extension of PCK certificates (src/attest/pck.c)
 * and the DER walker under it (src/attest/der.c); seeded with the extension
 * values of the vectors' PCK certificates. */
#include "attest_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct pck_ext e;
    (void)coffer_attest__pck_ext_parse(data, size, &e);
    struct coffer_rd rd, body;
    uint8_t tag;
    coffer_rd_init(&rd, data, size);
    while (coffer_attest__der_next(&rd, &tag, &body) == COFFER_OK) {
        uint64_t v;
        (void)coffer_attest__der_uint(&body, UINT64_MAX, &v);
    }
    return 0;
}
