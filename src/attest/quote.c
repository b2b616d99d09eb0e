/*
 * quote.c — framing of Intel DCAP quotes: SGX v3, and v4/v5 (SGX or TDX).
 *
 * Design: one pass through the base/ cursor in wire order (attestation.md
 * §1): header, optional v5 body descriptor, body, signature data. Every
 * length is checked against the bytes left and against the fixed sizes the
 * format allows; nested certification data must consume its container
 * exactly. Nothing here checks a signature; verification (dcap.c) works on
 * the framed result, whose pointers borrow the caller's buffer.
 *
 * Invariants: I1 the signed region is exactly header (+ descriptor) + body;
 * nothing after it can enter a signature check. I2 bytes after the
 * signature data are accepted only when all zero (TDX fixed buffers).
 * I3 the PCK chain is certification data type 5, with one trailing NUL
 * stripped.
 * Trusts: nothing; input is attacker-controlled.
 */
#include "attest_int.h"

#include <string.h>

static const uint8_t intel_qe_vendor[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                            0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

/* Layout pins (attestation.md §1.2): the reader below reads fields in this
 * order and these sizes; the sums must land on the documented offsets. */
_Static_assert(16 + 4 + 12 + 16 == SGX_REPORT_OFF_ATTRIBUTES, "SGX report: ATTRIBUTES offset");
_Static_assert(SGX_REPORT_OFF_ATTRIBUTES + 16 == SGX_REPORT_OFF_MRENCLAVE, "SGX report: MRENCLAVE offset");
_Static_assert(SGX_REPORT_OFF_MRENCLAVE + 32 + 32 == SGX_REPORT_OFF_MRSIGNER, "SGX report: MRSIGNER offset");
_Static_assert(SGX_REPORT_OFF_MRSIGNER + 32 + 32 + 64 == SGX_REPORT_OFF_ISVPRODID, "SGX report: ISVPRODID offset");
_Static_assert(SGX_REPORT_OFF_ISVPRODID + 2 + 2 + 2 + 42 + 16 == SGX_REPORT_OFF_REPORTDATA,
               "SGX report: REPORTDATA offset");
_Static_assert(SGX_REPORT_OFF_REPORTDATA + 64 == SGX_REPORT_SIZE, "SGX report size");
_Static_assert(16 + 48 + 48 + 8 + 8 + 8 + 48 * 4 + 48 * 4 + 64 == TD_REPORT10_SIZE, "TD report 1.0 size");
_Static_assert(TD_REPORT10_SIZE + 16 + 48 == TD_REPORT15_SIZE, "TD report 1.5 size");
_Static_assert(2 + 2 + 4 + 2 + 2 + 16 + 20 == INTEL_QUOTE_HEADER_SIZE, "quote header size");

#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        if ((r = (x)) != COFFER_OK)                                                                                    \
            return r;                                                                                                  \
    } while (0)

static enum coffer_err sgx_report_read(struct coffer_rd *rd, struct sgx_report *s)
{
    enum coffer_err r;
    struct coffer_rd b;
    TRY(coffer_rd_sub(rd, SGX_REPORT_SIZE, &b));
    TRY(coffer_rd_copy(&b, s->cpusvn, 16));
    TRY(coffer_rd_u32le(&b, &s->miscselect));
    TRY(coffer_rd_skip(&b, 12));
    TRY(coffer_rd_copy(&b, s->isvextprodid, 16));
    TRY(coffer_rd_copy(&b, s->attributes, 16));
    struct coffer_rd a;
    coffer_rd_init(&a, s->attributes, 8);
    TRY(coffer_rd_u64le(&a, &s->flags));
    TRY(coffer_rd_copy(&b, s->mrenclave, 32));
    TRY(coffer_rd_skip(&b, 32));
    TRY(coffer_rd_copy(&b, s->mrsigner, 32));
    TRY(coffer_rd_skip(&b, 32));
    TRY(coffer_rd_copy(&b, s->configid, 64));
    TRY(coffer_rd_u16le(&b, &s->isvprodid));
    TRY(coffer_rd_u16le(&b, &s->isvsvn));
    TRY(coffer_rd_u16le(&b, &s->configsvn));
    TRY(coffer_rd_skip(&b, 42));
    TRY(coffer_rd_copy(&b, s->isvfamilyid, 16));
    TRY(coffer_rd_copy(&b, s->report_data, 64));
    return coffer_rd_expect_end(&b);
}

static enum coffer_err td_report_read(struct coffer_rd *rd, size_t size, struct td_report *t)
{
    enum coffer_err r;
    struct coffer_rd b;
    TRY(coffer_rd_sub(rd, size, &b));
    TRY(coffer_rd_copy(&b, t->tee_tcb_svn, 16));
    TRY(coffer_rd_copy(&b, t->mrseam, 48));
    TRY(coffer_rd_copy(&b, t->mrsignerseam, 48));
    TRY(coffer_rd_copy(&b, t->seam_attributes, 8));
    TRY(coffer_rd_u64le(&b, &t->td_attributes));
    TRY(coffer_rd_u64le(&b, &t->xfam));
    TRY(coffer_rd_copy(&b, t->mrtd, 48));
    TRY(coffer_rd_copy(&b, t->mrconfigid, 48));
    TRY(coffer_rd_copy(&b, t->mrowner, 48));
    TRY(coffer_rd_copy(&b, t->mrownerconfig, 48));
    for (int i = 0; i < 4; i++)
        TRY(coffer_rd_copy(&b, t->rtmr[i], 48));
    TRY(coffer_rd_copy(&b, t->report_data, 64));
    t->v15 = size == TD_REPORT15_SIZE;
    if (t->v15) {
        TRY(coffer_rd_copy(&b, t->tee_tcb_svn2, 16));
        TRY(coffer_rd_copy(&b, t->mrservicetd, 48));
    }
    return coffer_rd_expect_end(&b);
}

/* QE report, its signature, QE auth data, then certification data that
 * must be type 5; rd must end exactly after it. */
static enum coffer_err qe_part_read(struct coffer_rd *rd, struct intel_quote *q)
{
    enum coffer_err r;
    struct coffer_rd save = *rd;
    TRY(coffer_rd_bytes(&save, SGX_REPORT_SIZE, &q->qe_report_raw));
    TRY(sgx_report_read(rd, &q->qe_report));
    TRY(coffer_rd_bytes(rd, 64, &q->qe_report_sig));
    uint16_t auth_size;
    TRY(coffer_rd_u16le(rd, &auth_size));
    q->qe_auth_size = auth_size;
    TRY(coffer_rd_bytes(rd, auth_size, &q->qe_auth));
    uint16_t type;
    uint32_t csize;
    TRY(coffer_rd_u16le(rd, &type));
    TRY(coffer_rd_u32le(rd, &csize));
    if (type != 5)
        return COFFER_FAIL(type >= 1 && type <= 7 ? COFFER_E_UNSUPPORTED : COFFER_E_MALFORMED,
                           "quote: certification data type %u, want 5 (PCK certificate chain)", type);
    if (csize != coffer_rd_left(rd))
        return COFFER_FAIL(COFFER_E_MALFORMED, "quote: certification data size %u, %zu bytes left in its container",
                           csize, coffer_rd_left(rd));
    const uint8_t *pem;
    TRY(coffer_rd_bytes(rd, csize, &pem));
    size_t n = csize;
    if (n > 0) {
        struct coffer_rd last;
        const uint8_t *lp;
        coffer_rd_init(&last, pem, n);
        TRY(coffer_rd_skip(&last, n - 1));
        TRY(coffer_rd_bytes(&last, 1, &lp));
        if (*lp == 0)
            n--;
    }
    if (n == 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "quote: empty PCK certificate chain");
    q->pck_pem = pem;
    q->pck_pem_size = n;
    return coffer_rd_expect_end(rd);
}

enum coffer_err coffer_attest__intel_quote_parse(const uint8_t *data, size_t size, struct intel_quote *q)
{
    enum coffer_err r;
    memset(q, 0, sizeof(*q));
    if (size > INTEL_QUOTE_MAX_SIZE)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "quote of %zu bytes (cap %u)", size, INTEL_QUOTE_MAX_SIZE);
    struct coffer_rd rd;
    coffer_rd_init(&rd, data, size);
    const uint8_t *vendor;
    uint32_t tee;
    TRY(coffer_rd_u16le(&rd, &q->version));
    TRY(coffer_rd_u16le(&rd, &q->key_type));
    TRY(coffer_rd_u32le(&rd, &tee));
    TRY(coffer_rd_u16le(&rd, &q->qe_svn));
    TRY(coffer_rd_u16le(&rd, &q->pce_svn));
    TRY(coffer_rd_bytes(&rd, 16, &vendor));
    TRY(coffer_rd_skip(&rd, 20));
    if (q->version < 3 || q->version > 5)
        return COFFER_FAIL(COFFER_E_BAD_VERSION, "quote: version %u (coffer reads 3, 4, 5)", q->version);
    if (q->key_type != 2)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "quote: attestation key type %u (want 2, ECDSA P-256)", q->key_type);
    q->tee_type = q->version == 3 ? INTEL_TEE_SGX : tee;
    if (q->tee_type != INTEL_TEE_SGX && q->tee_type != INTEL_TEE_TDX)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "quote: TEE type 0x%08x", q->tee_type);
    if (!coffer_ct_eq(vendor, intel_qe_vendor, 16))
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "quote: QE vendor ID is not Intel's");

    size_t body_size;
    if (q->version == 5) {
        uint16_t type;
        uint32_t bsize;
        TRY(coffer_rd_u16le(&rd, &type));
        TRY(coffer_rd_u32le(&rd, &bsize));
        bool ok = (type == 1 && bsize == SGX_REPORT_SIZE && q->tee_type == INTEL_TEE_SGX) ||
                  (type == 2 && bsize == TD_REPORT10_SIZE && q->tee_type == INTEL_TEE_TDX) ||
                  (type == 3 && bsize == TD_REPORT15_SIZE && q->tee_type == INTEL_TEE_TDX);
        if (!ok)
            return COFFER_FAIL(COFFER_E_MALFORMED, "quote v5: body type %u with size %u does not fit TEE type 0x%x",
                               type, bsize, q->tee_type);
        q->body_type = type;
        body_size = bsize;
    } else {
        q->body_type = q->tee_type == INTEL_TEE_SGX ? 1 : 2;
        body_size = q->tee_type == INTEL_TEE_SGX ? SGX_REPORT_SIZE : TD_REPORT10_SIZE;
    }
    if (q->tee_type == INTEL_TEE_SGX)
        TRY(sgx_report_read(&rd, &q->sgx));
    else
        TRY(td_report_read(&rd, body_size, &q->td));
    q->signed_region = data;
    q->signed_size = rd.pos;

    uint32_t sig_len;
    struct coffer_rd sd;
    TRY(coffer_rd_u32le(&rd, &sig_len));
    TRY(coffer_rd_sub(&rd, sig_len, &sd));
    TRY(coffer_rd_bytes(&sd, 64, &q->sig));
    TRY(coffer_rd_bytes(&sd, 64, &q->att_key));
    if (q->version == 3) {
        TRY(qe_part_read(&sd, q));
    } else {
        uint16_t type;
        uint32_t csize;
        struct coffer_rd inner;
        TRY(coffer_rd_u16le(&sd, &type));
        TRY(coffer_rd_u32le(&sd, &csize));
        if (type != 6)
            return COFFER_FAIL(COFFER_E_UNSUPPORTED, "quote v%u: certification data type %u, want 6", q->version, type);
        if (csize != coffer_rd_left(&sd))
            return COFFER_FAIL(COFFER_E_MALFORMED, "quote: QE certification data size %u, %zu bytes left", csize,
                               coffer_rd_left(&sd));
        TRY(coffer_rd_sub(&sd, csize, &inner));
        TRY(qe_part_read(&inner, q));
    }
    if (coffer_rd_left(&sd) != 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "quote: %zu unused bytes inside the signature data",
                           coffer_rd_left(&sd));
    q->trailing_size = coffer_rd_left(&rd);
    for (size_t i = 0; i < q->trailing_size; i++) {
        uint8_t b;
        TRY(coffer_rd_u8(&rd, &b));
        if (b != 0)
            return COFFER_FAIL(COFFER_E_TRAILING, "quote: non-zero byte at offset %zu after the signature data",
                               rd.pos - 1);
    }
    return COFFER_OK;
}
