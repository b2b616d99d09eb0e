/*
 * pf_reader_fuzz.c — the protected-file reader over arbitrary bytes.
 *
 * The key is the vectors' wrap key, so seeds from shared/vectors/pf get past
 * the metadata MAC and the fuzzer reaches the tree walk and node reads; a
 * mutated file must fail cleanly or decrypt, never crash or over-read. Both
 * readers run: random access (coffer_pf_read) and decrypt_all.
 */
#include <string.h>

#include "coffer/pf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const coffer_pf_key key = {0xdc, 0xc4, 0xeb, 0x0c, 0xce, 0xaf, 0xae, 0xbc,
                                  0x7d, 0xa3, 0x8b, 0xef, 0x9e, 0xdb, 0x0f, 0x34};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct coffer_io_mem m;
    coffer_io_mem_init_ro(&m, data, size);
    struct coffer_pf *pf;
    if (coffer_pf_open(&m.io, key, NULL, &pf) == COFFER_OK) {
        uint8_t buf[5000];
        size_t got;
        uint64_t n = coffer_pf_size(pf);
        for (uint64_t off = 0; off < n && off < (1u << 22); off += got) {
            if (coffer_pf_read(pf, off, buf, sizeof(buf), &got) != COFFER_OK || got == 0)
                break;
        }
        coffer_pf_close(pf);
    }
    struct coffer_secret *s;
    if (coffer_pf_decrypt_all(&m.io, key, NULL, 1, &s) == COFFER_OK)
        coffer_secret_free(s);
    return 0;
}
