/*
 * snp_certs.c — the SEV-SNP certificate table (GHCB "SNP extended guest
 * request" certificate data, handed out unchanged by Linux's
 * SNP_GET_EXT_REPORT and configfs-tsm `auxblob`): entries of
 * {GUID[16], offset u32 LE, length u32 LE}, an all-zero entry last, then the
 * certificates, offsets counted from the start of the table.
 *
 * Design: one pass over the entries through the base/ cursor, then range
 * checks on each entry and pairwise overlap checks (at most
 * COFFER_ATTEST_SNP_CERT_ENTRIES_MAX entries, so quadratic is nothing). The
 * table is untrusted framing: nothing here decides trust, it only says
 * which bytes are the VCEK, VLEK, ASK and ARK; snp.c verifies those.
 *
 * GUID byte order: the bytes are the RFC 4122 order of the text form
 * (63 da 75 8d e6 64 45 64 ... for the VCEK). AMD's own sev-guest tool
 * writes them with uuid_parse, virtee/sev with Uuid::as_bytes, and
 * go-sev-guest compares raw bytes with pborman/uuid; the kernel only tests
 * for the zero GUID. A known GUID in the mixed-endian EFI layout (first three
 * fields byte-swapped) is refused by name, not silently treated as unknown.
 *
 * Invariants: I1 every accepted entry lies inside the blob, after the table
 * header, and overlaps no other. I2 the blob ends where the last
 * certificate ends (the kernel sizes auxblob exactly so); gaps between
 * certificates are allowed. I3 no GUID appears twice.
 * Trusts: nothing; all of it is input.
 */
#include "attest_int.h"

#include <stdio.h>
#include <string.h>

#define ENTRY_SIZE 24

static const struct {
    enum coffer_attest_snp_cert_kind kind;
    uint8_t guid[16];
} known[] = {
    {COFFER_ATTEST_SNP_CERT_VCEK,
     {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd}},
    {COFFER_ATTEST_SNP_CERT_VLEK,
     {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1}},
    {COFFER_ATTEST_SNP_CERT_ASK,
     {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82}},
    {COFFER_ATTEST_SNP_CERT_ARK,
     {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae}},
};

const char *coffer_attest_snp_cert_kind_name(enum coffer_attest_snp_cert_kind kind)
{
    switch (kind) {
    case COFFER_ATTEST_SNP_CERT_VCEK:
        return "VCEK";
    case COFFER_ATTEST_SNP_CERT_VLEK:
        return "VLEK";
    case COFFER_ATTEST_SNP_CERT_ASK:
        return "ASK";
    case COFFER_ATTEST_SNP_CERT_ARK:
        return "ARK";
    default:
        return "other";
    }
}

/* The EFI layout of g: the u32, u16, u16 fields byte-swapped. */
static void guid_swap(const uint8_t g[16], uint8_t out[16])
{
    static const uint8_t order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int i = 0; i < 16; i++)
        out[i] = g[order[i]];
}

static void guid_text(const uint8_t g[16], char out[37])
{
    char hex[33];
    coffer_hex_encode(g, 16, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

#define TFAIL(code, ...) COFFER_FAIL((code), "SNP certificate table: " __VA_ARGS__)

static enum coffer_err classify(struct coffer_attest_snp_cert_entry *e, size_t i)
{
    e->kind = COFFER_ATTEST_SNP_CERT_OTHER;
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
        uint8_t sw[16];
        guid_swap(known[k].guid, sw);
        if (memcmp(e->guid, known[k].guid, 16) == 0) {
            e->kind = known[k].kind;
            return COFFER_OK;
        }
        if (memcmp(e->guid, sw, 16) == 0)
            return TFAIL(COFFER_E_MALFORMED,
                         "entry %zu carries the %s GUID in mixed-endian (EFI) byte order; the table uses RFC 4122 order",
                         i, coffer_attest_snp_cert_kind_name(known[k].kind));
    }
    return COFFER_OK;
}

enum coffer_err coffer_attest_snp_cert_table_parse(const uint8_t *blob, size_t size,
                                                   struct coffer_attest_snp_cert_table *out)
{
    enum coffer_err r;
    memset(out, 0, sizeof(*out));
    if (blob == NULL && size > 0)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "SNP certificate table: no bytes");
    if (size > COFFER_ATTEST_SNP_CERTS_MAX)
        return TFAIL(COFFER_E_TOO_LARGE, "%zu bytes, more than the %d the kernel hands out", size,
                     COFFER_ATTEST_SNP_CERTS_MAX);
    struct coffer_rd rd;
    coffer_rd_init(&rd, blob, size);
    for (size_t i = 0;; i++) {
        struct coffer_attest_snp_cert_entry e = {0};
        if (coffer_rd_left(&rd) < ENTRY_SIZE)
            return TFAIL(COFFER_E_TRUNCATED, "no all-zero entry ends the table (%zu entries read, %zu bytes left)", i,
                         coffer_rd_left(&rd));
        if ((r = coffer_rd_copy(&rd, e.guid, 16)) != COFFER_OK || (r = coffer_rd_u32le(&rd, &e.offset)) != COFFER_OK ||
            (r = coffer_rd_u32le(&rd, &e.length)) != COFFER_OK)
            return r;
        if (all_zero(e.guid, 16)) {
            if (e.offset != 0 || e.length != 0)
                return TFAIL(COFFER_E_MALFORMED, "entry %zu has a zero GUID but offset %u, length %u", i, e.offset,
                             e.length);
            break;
        }
        if (i == COFFER_ATTEST_SNP_CERT_ENTRIES_MAX)
            return TFAIL(COFFER_E_TOO_LARGE, "more than %d entries", COFFER_ATTEST_SNP_CERT_ENTRIES_MAX);
        if ((r = classify(&e, i)) != COFFER_OK)
            return r;
        out->entries[out->count++] = e;
    }
    out->header_size = rd.pos;
    uint64_t end = out->header_size;
    for (size_t i = 0; i < out->count; i++) {
        struct coffer_attest_snp_cert_entry *e = &out->entries[i];
        char g[37];
        guid_text(e->guid, g);
        const char *name = coffer_attest_snp_cert_kind_name(e->kind);
        uint64_t lo = e->offset, hi = lo + e->length;
        if (e->length == 0)
            return TFAIL(COFFER_E_MALFORMED, "entry %zu (%s, %s) is empty", i, name, g);
        if (lo < out->header_size)
            return TFAIL(COFFER_E_RANGE, "entry %zu (%s) starts at %u, inside the table's %zu-byte header", i, name,
                         e->offset, out->header_size);
        if (hi > size)
            return TFAIL(COFFER_E_RANGE, "entry %zu (%s) covers bytes %u..%llu, past the end (%zu bytes)", i, name,
                         e->offset, (unsigned long long)hi, size);
        for (size_t j = 0; j < i; j++) {
            const struct coffer_attest_snp_cert_entry *f = &out->entries[j];
            if (memcmp(f->guid, e->guid, 16) == 0)
                return TFAIL(COFFER_E_MALFORMED, "entries %zu and %zu have the same GUID (%s, %s)", j, i, name, g);
            if (lo < (uint64_t)f->offset + f->length && f->offset < hi)
                return TFAIL(COFFER_E_RANGE, "entries %zu (%s) and %zu (%s) overlap", j,
                             coffer_attest_snp_cert_kind_name(f->kind), i, name);
        }
        e->data = blob + e->offset;
        if (hi > end)
            end = hi;
    }
    if (end != size)
        return TFAIL(COFFER_E_TRAILING, "%llu bytes after the last certificate", (unsigned long long)(size - end));
    return COFFER_OK;
}

const struct coffer_attest_snp_cert_entry *coffer_attest_snp_cert_table_find(const struct coffer_attest_snp_cert_table *t,
                                                                            enum coffer_attest_snp_cert_kind kind)
{
    if (t == NULL || kind == COFFER_ATTEST_SNP_CERT_OTHER)
        return NULL;
    for (size_t i = 0; i < t->count; i++)
        if (t->entries[i].kind == kind)
            return &t->entries[i];
    return NULL;
}
