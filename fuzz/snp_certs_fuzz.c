/* snp_certs_fuzz.c — the SEV-SNP certificate table parser
 * (src/attest/snp_certs.c) and SNP extended evidence (report followed by
 * its certificate table) through decode and verify. Each input is tried as
 * a bare table and as evidence. A table that parses must keep the parser's
 * promises (every entry inside the input and after the header, nothing
 * after the last certificate); a broken promise traps.
 * Seeds (fuzz/seeds/snp_certs): the recorded SNP reports followed by tables
 * holding their VCEK/VLEK (and the pinned Milan ASK/ASVK and ARK), laid out
 * as the kernel hands out auxblob, plus one bare table. */
#include "attest_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct coffer_attest_snp_cert_table t;
    if (coffer_attest_snp_cert_table_parse(data, size, &t) == COFFER_OK) {
        uint64_t end = t.header_size;
        for (size_t i = 0; i < t.count; i++) {
            const struct coffer_attest_snp_cert_entry *e = &t.entries[i];
            uint64_t hi = (uint64_t)e->offset + e->length;
            if (e->length == 0 || e->offset < t.header_size || hi > size || e->data != data + e->offset)
                __builtin_trap();
            end = hi > end ? hi : end;
        }
        if (end != size || (t.count > 0 && coffer_attest_snp_cert_table_find(&t, t.entries[0].kind) == NULL &&
                            t.entries[0].kind != COFFER_ATTEST_SNP_CERT_OTHER))
            __builtin_trap();
    }
    struct coffer_attest_claims c;
    (void)coffer_attest_evidence_decode(data, size, &c);
    struct coffer_attest_verify_opts o = {.now = 1748736000}; /* 2025-06-01: every recorded VCEK/VLEK is valid */
    (void)coffer_attest_evidence_verify(data, size, &o, &c);
    return 0;
}
