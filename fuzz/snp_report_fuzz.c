/* snp_report_fuzz.c — SEV-SNP report parsing and verification
 * (src/attest/snp.c). The input is a 1184-byte report followed by the
 * VCEK/VLEK DER, so mutations reach the report fields, the VCEK extension
 * reader, the pinned chain and the signature check; seeds are the recorded
 * reports with their certificates. */
#include "attest_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct coffer_attest_claims c;
    (void)coffer_attest__snp_decode(data, size, &c);
    if (size < 1184)
        return 0;
    struct coffer_rd rd;
    const uint8_t *rep, *cert;
    coffer_rd_init(&rd, data, size);
    if (coffer_rd_bytes(&rd, 1184, &rep) != COFFER_OK || coffer_rd_bytes(&rd, coffer_rd_left(&rd), &cert) != COFFER_OK)
        return 0;
    struct coffer_attest_verify_opts o = {.now = 1748736000, /* 2025-06-01 */
                                          .snp_key_cert = cert,
                                          .snp_key_cert_size = size - 1184};
    (void)coffer_attest__snp_verify(rep, 1184, &o, &c);
    return 0;
}
