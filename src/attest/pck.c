/*
 * pck.c — the SGX extension of an Intel PCK certificate
 * (OID 1.2.840.113741.1.13.1, attestation.md §1.4): PPID, the TCB (16
 * component SVNs, PCESVN, CPUSVN), PCE-ID, FMSPC, SGX type.
 *
 * Design: the extension value is walked with the bounded DER reader
 * (der.c), never with OpenSSL's generic ASN1_TYPE decoder, so the whole
 * parser runs over the base/ cursor and is easy to fuzz. Each element is
 * SEQUENCE { OID, value }; OIDs are matched as exact encoded bytes.
 *
 * Invariants: I1 every required element (.1 .2 .3 .4 .5) appears exactly
 * once, and each TCB component (.2.1 - .2.18) exactly once. I2 values have
 * exactly the type and length the format gives; anything else is an error.
 * I3 trailing bytes anywhere are an error.
 * Trusts: nothing here; the certificate's signature is checked elsewhere
 * (dcap.c) before these values are used for a decision.
 */
#include "attest_int.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>

/* 1.2.840.113741.1.13.1 */
static const uint8_t sgx_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};
#define SGX_OID_SIZE sizeof(sgx_oid)

enum { TAG_INT = 0x02, TAG_OCTET = 0x04, TAG_OID = 0x06, TAG_ENUM = 0x0a, TAG_SEQ = 0x30 };

/* Match an OID body against sgx_oid + suffix; returns the last arc or -1. */
static int oid_arc(const struct coffer_rd *oid, const uint8_t *suffix, size_t suffix_size)
{
    if (coffer_rd_left(oid) != SGX_OID_SIZE + suffix_size + 1)
        return -1;
    struct coffer_rd o = *oid;
    const uint8_t *base, *mid;
    uint8_t last;
    if (coffer_rd_bytes(&o, SGX_OID_SIZE, &base) != COFFER_OK || coffer_rd_bytes(&o, suffix_size, &mid) != COFFER_OK ||
        coffer_rd_u8(&o, &last) != COFFER_OK)
        return -1;
    if (memcmp(base, sgx_oid, SGX_OID_SIZE) != 0 || (suffix_size > 0 && memcmp(mid, suffix, suffix_size) != 0))
        return -1;
    return last < 0x80 ? last : -1;
}

/* One SEQUENCE { OID, value } element. */
static enum coffer_err element(struct coffer_rd *rd, struct coffer_rd *oid, uint8_t *vtag, struct coffer_rd *val)
{
    enum coffer_err r;
    uint8_t tag;
    struct coffer_rd seq;
    if ((r = coffer_attest__der_next(rd, &tag, &seq)) != COFFER_OK)
        return r;
    if (tag != TAG_SEQ)
        return COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: element tag 0x%02x, want SEQUENCE", tag);
    if ((r = coffer_attest__der_next(&seq, &tag, oid)) != COFFER_OK)
        return r;
    if (tag != TAG_OID)
        return COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: element without an OID");
    if ((r = coffer_attest__der_next(&seq, vtag, val)) != COFFER_OK)
        return r;
    return coffer_rd_expect_end(&seq);
}

static enum coffer_err octets(const struct coffer_rd *val, uint8_t tag, const char *name, uint8_t *out, size_t n)
{
    if (tag != TAG_OCTET || coffer_rd_left(val) != n)
        return COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: %s must be an OCTET STRING of %zu bytes", name, n);
    struct coffer_rd v = *val;
    return coffer_rd_copy(&v, out, n);
}

static enum coffer_err tcb_parse(struct coffer_rd *seq, struct pck_ext *out)
{
    enum coffer_err r;
    uint32_t seen = 0;
    static const uint8_t suffix[] = {0x02};
    while (coffer_rd_left(seq) > 0) {
        struct coffer_rd oid, val;
        uint8_t tag;
        if ((r = element(seq, &oid, &tag, &val)) != COFFER_OK)
            return r;
        int arc = oid_arc(&oid, suffix, sizeof(suffix));
        if (arc < 1 || arc > 18)
            return COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: unknown TCB element");
        if (seen & (1u << arc))
            return COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: TCB element %d twice", arc);
        seen |= 1u << arc;
        if (arc == 18) {
            if ((r = octets(&val, tag, "CPUSVN", out->cpusvn, 16)) != COFFER_OK)
                return r;
            continue;
        }
        uint64_t v;
        if (tag != TAG_INT)
            return COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: TCB element %d is not an INTEGER", arc);
        if ((r = coffer_attest__der_uint(&val, arc == 17 ? 0xffff : 0xff, &v)) != COFFER_OK)
            return r;
        if (arc == 17)
            out->pcesvn = (uint16_t)v;
        else
            out->comp[arc - 1] = (uint8_t)v;
    }
    if (seen != 0x7fffeu)
        return COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: TCB lacks elements (mask 0x%x)", seen);
    return COFFER_OK;
}

enum coffer_err coffer_attest__pck_ext_parse(const uint8_t *der, size_t size, struct pck_ext *out)
{
    enum coffer_err r;
    memset(out, 0, sizeof(*out));
    struct coffer_rd rd, seq;
    uint8_t tag;
    coffer_rd_init(&rd, der, size);
    if ((r = coffer_attest__der_next(&rd, &tag, &seq)) != COFFER_OK)
        return r;
    if (tag != TAG_SEQ)
        return COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: not a SEQUENCE");
    if ((r = coffer_rd_expect_end(&rd)) != COFFER_OK)
        return r;
    uint32_t seen = 0;
    while (coffer_rd_left(&seq) > 0) {
        struct coffer_rd oid, val;
        if ((r = element(&seq, &oid, &tag, &val)) != COFFER_OK)
            return r;
        int arc = oid_arc(&oid, NULL, 0);
        if (arc < 1 || arc > 7)
            return COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: unknown element");
        if (seen & (1u << arc))
            return COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: element %d twice", arc);
        seen |= 1u << arc;
        switch (arc) {
        case 1:
            r = octets(&val, tag, "PPID", out->ppid, 16);
            break;
        case 2:
            r = tag == TAG_SEQ ? tcb_parse(&val, out)
                               : COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: TCB is not a SEQUENCE");
            break;
        case 3:
            r = octets(&val, tag, "PCE-ID", out->pceid, 2);
            break;
        case 4:
            r = octets(&val, tag, "FMSPC", out->fmspc, 6);
            break;
        case 5: {
            uint64_t v;
            if (tag != TAG_ENUM)
                r = COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: SGX type is not ENUMERATED");
            else if ((r = coffer_attest__der_uint(&val, 2, &v)) == COFFER_OK)
                out->sgx_type = (int)v;
            break;
        }
        case 6: {
            uint8_t piid[16];
            r = octets(&val, tag, "platform instance ID", piid, 16);
            break;
        }
        default: /* 7: configuration; not used for decisions, type checked */
            if (tag != TAG_SEQ)
                r = COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: configuration is not a SEQUENCE");
            break;
        }
        if (r != COFFER_OK)
            return r;
    }
    if ((seen & 0x3eu) != 0x3eu)
        return COFFER_FAIL(COFFER_E_MALFORMED, "PCK extension: required elements missing (mask 0x%x)", seen);
    return COFFER_OK;
}

enum coffer_err coffer_attest__pck_ext_from_cert(X509 *cert, struct pck_ext *out)
{
    memset(out, 0, sizeof(*out));
    ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    if (obj == NULL) {
        ERR_clear_error();
        return COFFER_FAIL(COFFER_E_CRYPTO, "cannot make the SGX extension OID");
    }
    int i = X509_get_ext_by_OBJ(cert, obj, -1);
    int j = i >= 0 ? X509_get_ext_by_OBJ(cert, obj, i) : -1;
    ASN1_OBJECT_free(obj);
    ERR_clear_error();
    if (i < 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "PCK certificate has no SGX extension");
    if (j >= 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "PCK certificate has two SGX extensions");
    ASN1_OCTET_STRING *d = X509_EXTENSION_get_data(X509_get_ext(cert, i));
    if (d == NULL)
        return COFFER_FAIL(COFFER_E_MALFORMED, "PCK certificate: empty SGX extension");
    return coffer_attest__pck_ext_parse(ASN1_STRING_get0_data(d), (size_t)ASN1_STRING_length(d), out);
}
