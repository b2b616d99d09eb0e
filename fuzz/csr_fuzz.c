/*
 * csr_fuzz.c — the coordinator's CSR reading, differentially: the fast DER
 * path for the common EC marble CSR and OpenSSL's parser must agree. When
 * the fast path accepts, OpenSSL's must accept with the same SANs and the
 * same key; when it finds a bad signature, OpenSSL's must refuse too.
 * (Where the fast path steps aside, certify uses OpenSSL's parser: nothing
 * to compare.) Nothing may crash or leak.
 */
#include <stdlib.h>
#include <string.h>

#include "coffer/coordinator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        coffer_log_set_level(COFFER_LOG_OFF);
        quiet = true;
    }
    char *sans[2];
    uint8_t *spki[2];
    size_t spki_n[2];
    enum coffer_err r0 = coffer_pki_csr_check(data, size, false, &sans[0], &spki[0], &spki_n[0]);
    enum coffer_err r1 = coffer_pki_csr_check(data, size, true, &sans[1], &spki[1], &spki_n[1]);
    if (r0 == COFFER_OK &&
        (r1 != COFFER_OK || strcmp(sans[0], sans[1]) != 0 || spki_n[0] != spki_n[1] ||
         memcmp(spki[0], spki[1], spki_n[0]) != 0))
        __builtin_trap();
    if (r0 == COFFER_E_SIGNATURE && r1 == COFFER_OK)
        __builtin_trap();
    for (int i = 0; i < 2; i++) {
        coffer_free(sans[i]);
        coffer_free(spki[i]);
    }
    return 0;
}
