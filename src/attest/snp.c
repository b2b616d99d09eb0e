/*
 * snp.c — AMD SEV-SNP attestation reports (attestation.md §3): parse the
 * 1184-byte ATTESTATION_REPORT, pick the product, verify ARK -> ASK/ASVK ->
 * VCEK/VLEK at the caller's time against the pinned AMD chains, the report
 * signature (ECDSA P-384 / SHA-384, little-endian R and S), the binding of
 * the certificate's TCB to REPORTED_TCB and of its hwID to CHIP_ID.
 *
 * Design: the report is read field by field through the base/ cursor; every
 * "reserved, zero" range is enforced before any signature work. The pinned
 * chains (roots_data.c) are parsed once per product. VCEK/VLEK extension
 * values are walked with the DER reader (der.c); hwID is accepted raw or
 * wrapped in an OCTET STRING, by length, as AMD's KDS has served both.
 *
 * Extended evidence (the report followed by the host's certificate table,
 * snp_certs.c) brings its own VCEK/VLEK; a VCEK/VLEK the caller gives too
 * must be the same certificate. An ASK/ARK in the table is only compared
 * with the pinned ones, never used to build the chain.
 *
 * Invariants: I1 the ARK is always the pinned one; a chain never ends
 * anywhere else. I2 the report's SIGNING_KEY field must name the key type
 * of the certificate given (VCEK vs VLEK). I3 the TCB compared with the
 * certificate is REPORTED_TCB, never CURRENT_TCB. I4 claims are written
 * only after every check passed.
 * Trusts: roots_data.c, OpenSSL (RSA-PSS chains, ECDSA P-384).
 */
#include "attest_int.h"

#include <pthread.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#define SNP_REPORT_SIZE COFFER_ATTEST_SNP_REPORT_SIZE
#define SNP_SIGNED_SIZE 0x2a0

_Static_assert(0x2a0 + 72 + 72 + 0x170 == SNP_REPORT_SIZE, "SNP report size");

enum snp_product { SNP_MILAN = 0, SNP_GENOA, SNP_TURIN, SNP_MILAN_VLEK, SNP_PRODUCT_COUNT };

struct snp_report {
    uint32_t version, guest_svn, vmpl, sig_algo, signer;
    uint64_t policy, current_tcb, platform_info, reported_tcb, committed_tcb, launch_tcb;
    uint8_t family_id[16], image_id[16];
    uint8_t report_data[64], measurement[48], host_data[32], id_key_digest[48], author_key_digest[48];
    uint8_t report_id[32], report_id_ma[32], chip_id[64];
    uint8_t cpuid_fam, cpuid_mod, cpuid_step;
    const uint8_t *sig; /* R (72) || S (72), little-endian */
};

static enum coffer_err zeros(struct coffer_rd *rd, size_t n, const char *what)
{
    const uint8_t *p;
    enum coffer_err r = coffer_rd_bytes(rd, n, &p);
    if (r != COFFER_OK)
        return r;
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "SNP report: %s is not zero (offset 0x%zx)", what, rd->pos - n + i);
    return COFFER_OK;
}

#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        if ((r = (x)) != COFFER_OK)                                                                                    \
            return r;                                                                                                  \
    } while (0)

static enum coffer_err snp_parse(const uint8_t *data, size_t size, struct snp_report *s)
{
    enum coffer_err r;
    struct coffer_rd rd;
    memset(s, 0, sizeof(*s));
    if (size != SNP_REPORT_SIZE)
        return COFFER_FAIL(size < SNP_REPORT_SIZE ? COFFER_E_TRUNCATED : COFFER_E_TRAILING,
                           "SNP report of %zu bytes, want %d", size, SNP_REPORT_SIZE);
    coffer_rd_init(&rd, data, size);
    TRY(coffer_rd_u32le(&rd, &s->version));
    TRY(coffer_rd_u32le(&rd, &s->guest_svn));
    TRY(coffer_rd_u64le(&rd, &s->policy));
    TRY(coffer_rd_copy(&rd, s->family_id, 16));
    TRY(coffer_rd_copy(&rd, s->image_id, 16));
    TRY(coffer_rd_u32le(&rd, &s->vmpl));
    TRY(coffer_rd_u32le(&rd, &s->sig_algo));
    TRY(coffer_rd_u64le(&rd, &s->current_tcb));
    TRY(coffer_rd_u64le(&rd, &s->platform_info));
    TRY(coffer_rd_u32le(&rd, &s->signer));
    TRY(zeros(&rd, 4, "reserved 0x04C"));
    TRY(coffer_rd_copy(&rd, s->report_data, 64));
    TRY(coffer_rd_copy(&rd, s->measurement, 48));
    TRY(coffer_rd_copy(&rd, s->host_data, 32));
    TRY(coffer_rd_copy(&rd, s->id_key_digest, 48));
    TRY(coffer_rd_copy(&rd, s->author_key_digest, 48));
    TRY(coffer_rd_copy(&rd, s->report_id, 32));
    TRY(coffer_rd_copy(&rd, s->report_id_ma, 32));
    TRY(coffer_rd_u64le(&rd, &s->reported_tcb));
    if (s->version >= 3) {
        TRY(coffer_rd_u8(&rd, &s->cpuid_fam));
        TRY(coffer_rd_u8(&rd, &s->cpuid_mod));
        TRY(coffer_rd_u8(&rd, &s->cpuid_step));
    } else {
        TRY(zeros(&rd, 3, "CPUID fields of a v2 report"));
    }
    TRY(zeros(&rd, 21, "reserved 0x18B"));
    TRY(coffer_rd_copy(&rd, s->chip_id, 64));
    TRY(coffer_rd_u64le(&rd, &s->committed_tcb));
    TRY(coffer_rd_skip(&rd, 8)); /* current and committed firmware versions */
    TRY(coffer_rd_u64le(&rd, &s->launch_tcb));
    TRY(coffer_rd_skip(&rd, 16)); /* launch and current mitigation vectors */
    TRY(zeros(&rd, 0x98, "reserved 0x208"));
    if (rd.pos != SNP_SIGNED_SIZE)
        return COFFER_FAIL(COFFER_E_INTERNAL, "SNP report: signed part ends at 0x%zx", rd.pos);
    struct coffer_rd sig = rd;
    TRY(coffer_rd_bytes(&sig, 144, &s->sig));
    TRY(coffer_rd_skip(&rd, 48));
    TRY(zeros(&rd, 24, "signature R high bytes"));
    TRY(coffer_rd_skip(&rd, 48));
    TRY(zeros(&rd, 24, "signature S high bytes"));
    TRY(zeros(&rd, 0x170, "reserved 0x330"));
    TRY(coffer_rd_expect_end(&rd));
    if (s->version < 2 || s->version > 5)
        return COFFER_FAIL(COFFER_E_BAD_VERSION, "SNP report: version %u (coffer reads 2..5)", s->version);
    if (s->sig_algo != 1)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "SNP report: signature algorithm %u (want 1, ECDSA P-384)", s->sig_algo);
    if (!(s->policy & (1ull << 17)))
        return COFFER_FAIL(COFFER_E_MALFORMED, "SNP report: POLICY bit 17 (reserved, must be 1) is clear");
    uint32_t key = (s->signer >> 2) & 7;
    if ((s->signer >> 5) != 0 || (key != 0 && key != 1 && key != 7))
        return COFFER_FAIL(COFFER_E_MALFORMED, "SNP report: signer info 0x%x has reserved values", s->signer);
    if (s->vmpl > 3)
        return COFFER_FAIL(COFFER_E_MALFORMED, "SNP report: VMPL %u", s->vmpl);
    return COFFER_OK;
}

/* ------------------------------------------------------- pinned chains */

static const struct {
    const uint8_t *pem;
    const size_t *size;
    const char *ask_cn, *ark_cn;
} pinned[SNP_PRODUCT_COUNT] = {
    [SNP_MILAN] = {coffer_attest__root_amd_milan_ask_ark, &coffer_attest__root_amd_milan_ask_ark_size, "SEV-Milan",
                   "ARK-Milan"},
    [SNP_GENOA] = {coffer_attest__root_amd_genoa_ask_ark, &coffer_attest__root_amd_genoa_ask_ark_size, "SEV-Genoa",
                   "ARK-Genoa"},
    [SNP_TURIN] = {coffer_attest__root_amd_turin_ask_ark, &coffer_attest__root_amd_turin_ask_ark_size, "SEV-Turin",
                   "ARK-Turin"},
    [SNP_MILAN_VLEK] = {coffer_attest__root_amd_milan_asvk_ark, &coffer_attest__root_amd_milan_asvk_ark_size,
                        "SEV-VLEK-Milan", "ARK-Milan"},
};

static X509 *chain_ask[SNP_PRODUCT_COUNT], *chain_ark[SNP_PRODUCT_COUNT];
static pthread_once_t chains_once = PTHREAD_ONCE_INIT;

static void chains_init(void)
{
    for (int i = 0; i < SNP_PRODUCT_COUNT; i++) {
        STACK_OF(X509) *sk;
        if (coffer_attest__pem_certs(pinned[i].pem, *pinned[i].size, 2, false, &sk) != COFFER_OK)
            continue;
        X509 *ask = sk_X509_value(sk, 0), *ark = sk_X509_value(sk, 1);
        char a[64], b[64];
        coffer_attest__cert_cn(ask, a, sizeof(a));
        coffer_attest__cert_cn(ark, b, sizeof(b));
        /* the pinned ARK must be self-signed and sign the ASK, or the product stays unusable */
        if (strcmp(a, pinned[i].ask_cn) == 0 && strcmp(b, pinned[i].ark_cn) == 0 &&
            X509_verify(ark, X509_get0_pubkey(ark)) == 1 && X509_verify(ask, X509_get0_pubkey(ark)) == 1) {
            X509_up_ref(ask);
            X509_up_ref(ark);
            chain_ask[i] = ask;
            chain_ark[i] = ark;
        }
        sk_X509_pop_free(sk, X509_free);
    }
    ERR_clear_error();
    coffer_err_clear();
}

/* ------------------------------------------------------ VCEK extensions */

struct vcek_info {
    char product[32];
    int spl[10]; /* index = arc under .3 (1 bl, 2 tee, 3 snp, 8 ucode, 9 fmc); -1 absent */
    uint8_t hwid[64];
    size_t hwid_size;
};

static const ASN1_OCTET_STRING *ext_value(X509 *x, const char *oid)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    int i = o != NULL ? X509_get_ext_by_OBJ(x, o, -1) : -1;
    int j = i >= 0 ? X509_get_ext_by_OBJ(x, o, i) : -1;
    ASN1_OBJECT_free(o);
    ERR_clear_error();
    if (i < 0 || j >= 0)
        return NULL;
    return X509_EXTENSION_get_data(X509_get_ext(x, i));
}

static enum coffer_err vcek_parse(X509 *x, struct vcek_info *v)
{
    enum coffer_err r;
    memset(v, 0, sizeof(*v));
    for (int i = 0; i < 10; i++)
        v->spl[i] = -1;
    const ASN1_OCTET_STRING *e = ext_value(x, "1.3.6.1.4.1.3704.1.2");
    struct coffer_rd rd, body;
    uint8_t tag;
    if (e != NULL) {
        coffer_rd_init(&rd, ASN1_STRING_get0_data(e), (size_t)ASN1_STRING_length(e));
        TRY(coffer_attest__der_next(&rd, &tag, &body));
        if (tag != 0x16 || coffer_rd_left(&body) >= sizeof(v->product) || coffer_rd_left(&rd) != 0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "VCEK: productName is not a short IA5String");
        TRY(coffer_rd_copy(&body, v->product, coffer_rd_left(&body)));
    }
    for (int arc = 1; arc <= 9; arc++) {
        char oid[40];
        snprintf(oid, sizeof(oid), "1.3.6.1.4.1.3704.1.3.%d", arc);
        if ((e = ext_value(x, oid)) == NULL)
            continue;
        uint64_t val;
        coffer_rd_init(&rd, ASN1_STRING_get0_data(e), (size_t)ASN1_STRING_length(e));
        TRY(coffer_attest__der_next(&rd, &tag, &body));
        if (tag != 0x02 || coffer_rd_left(&rd) != 0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "VCEK: SPL extension .3.%d is not an INTEGER", arc);
        TRY(coffer_attest__der_uint(&body, 255, &val));
        v->spl[arc] = (int)val;
    }
    if ((e = ext_value(x, "1.3.6.1.4.1.3704.1.4")) != NULL) {
        size_t n = (size_t)ASN1_STRING_length(e);
        coffer_rd_init(&rd, ASN1_STRING_get0_data(e), n);
        if (n == 64 || n == 8) { /* raw bytes (older KDS certificates; Turin: 8) */
            v->hwid_size = n;
            TRY(coffer_rd_copy(&rd, v->hwid, n));
        } else {
            TRY(coffer_attest__der_next(&rd, &tag, &body));
            n = coffer_rd_left(&body);
            if (tag != 0x04 || (n != 64 && n != 8) || coffer_rd_left(&rd) != 0)
                return COFFER_FAIL(COFFER_E_MALFORMED, "VCEK: hwID is neither 64/8 raw bytes nor an OCTET STRING of them");
            v->hwid_size = n;
            TRY(coffer_rd_copy(&body, v->hwid, n));
        }
    }
    return COFFER_OK;
}

static int product_from_name(const char *name)
{
    if (strncmp(name, "Milan", 5) == 0)
        return SNP_MILAN;
    if (strncmp(name, "Genoa", 5) == 0)
        return SNP_GENOA;
    if (strncmp(name, "Turin", 5) == 0)
        return SNP_TURIN;
    return -1;
}

static int product_from_cpuid(const struct snp_report *s)
{
    if (s->cpuid_fam == 0x19 && s->cpuid_mod <= 0x0f)
        return SNP_MILAN;
    if (s->cpuid_fam == 0x19 && ((s->cpuid_mod >= 0x10 && s->cpuid_mod <= 0x1f) || (s->cpuid_mod >= 0xa0 && s->cpuid_mod <= 0xaf)))
        return SNP_GENOA;
    if (s->cpuid_fam == 0x1a)
        return SNP_TURIN;
    return -1;
}

/* REPORTED_TCB bytes for (bl, tee, snp, ucode, fmc) per product layout. */
static void tcb_parts(uint64_t tcb, int product, int out[10])
{
    uint8_t b[8];
    coffer_store_u64le(b, tcb);
    for (int i = 0; i < 10; i++)
        out[i] = -1;
    if (product == SNP_TURIN) {
        out[9] = b[0];
        out[1] = b[1];
        out[2] = b[2];
        out[3] = b[3];
    } else {
        out[1] = b[0];
        out[2] = b[1];
        out[3] = b[6];
    }
    out[8] = b[7];
}

#define FAIL(step, code, ...) coffer_attest__fail(out, (step), COFFER_FAIL((code), __VA_ARGS__))

static enum coffer_err snp_chain(X509 *leaf, int product, time_t now, struct coffer_attest_claims *out)
{
    enum coffer_attest_step S = COFFER_ATTEST_STEP_SNP_CHAIN;
    X509 *ask = chain_ask[product], *ark = chain_ark[product];
    if (ask == NULL || ark == NULL)
        return FAIL(S, COFFER_E_INTERNAL, "SNP: the pinned AMD chain for this product does not verify");
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    enum coffer_err r = COFFER_OK;
    if (store == NULL || untrusted == NULL || ctx == NULL || X509_STORE_add_cert(store, ark) != 1 ||
        !sk_X509_push(untrusted, ask) || X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
        r = FAIL(S, COFFER_E_CRYPTO, "SNP chain: cannot set up verification");
        goto done;
    }
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(p, now); /* not X509_STRICT: AMD VCEKs have no AKID (attestation.md §4) */
    X509_VERIFY_PARAM_set_depth(p, 2);
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        bool t = e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID;
        r = FAIL(S, t ? COFFER_E_EXPIRED : COFFER_E_CERT, "SNP chain: %s at depth %d (X509 error %d)",
                 X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(ctx), e);
        goto done;
    }
    STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(ctx);
    if (built == NULL || sk_X509_num(built) != 3 || X509_cmp(sk_X509_value(built, 2), ark) != 0)
        r = FAIL(S, COFFER_E_CERT, "SNP chain: does not end at the pinned ARK");
done:
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    ERR_clear_error();
    return r;
}

/* AMD's CRL: signed by the pinned ARK (RSA-PSS), current at now, and not
 * listing the ASK/ASVK under it. */
static enum coffer_err amd_crl_check(const struct coffer_attest_verify_opts *opts, int product,
                                     struct coffer_attest_claims *out)
{
    enum coffer_attest_step S = COFFER_ATTEST_STEP_SNP_CHAIN;
    X509_CRL *crl;
    enum coffer_err r = coffer_attest__crl_parse(opts->amd_crl, opts->amd_crl_size, &crl);
    if (r != COFFER_OK)
        return coffer_attest__fail(out, S, r);
    X509 *ark = chain_ark[product], *ask = chain_ask[product];
    time_t now = opts->now;
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ark)) != 0 ||
        X509_CRL_verify(crl, X509_get0_pubkey(ark)) != 1)
        r = FAIL(S, COFFER_E_SIGNATURE, "SNP: the AMD CRL is not signed by the pinned ARK");
    else if (next == NULL || X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &now) >= 0 || X509_cmp_time(next, &now) <= 0)
        r = FAIL(S, COFFER_E_EXPIRED, "SNP: the AMD CRL is not current at the verification time");
    else {
        X509_REVOKED *rev = NULL;
        if (X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(ask)) == 1)
            r = FAIL(S, COFFER_E_REVOKED, "SNP: the ASK/ASVK is revoked by AMD's CRL");
    }
    X509_CRL_free(crl);
    ERR_clear_error();
    return r;
}

static void fill(const struct snp_report *s, struct coffer_attest_claims *c)
{
    c->kind = COFFER_ATTEST_KIND_SNP;
    c->debug = (s->policy & (1ull << 19)) != 0;
    memcpy(c->report_data, s->report_data, 64);
    memcpy(c->measurement, s->measurement, 48);
    memcpy(c->host_data, s->host_data, 32);
    memcpy(c->chip_id, s->chip_id, 64);
    memcpy(c->family_id, s->family_id, 16);
    memcpy(c->image_id, s->image_id, 16);
    memcpy(c->id_key_digest, s->id_key_digest, 48);
    memcpy(c->author_key_digest, s->author_key_digest, 48);
    c->platform_info = s->platform_info;
    c->current_tcb = s->current_tcb;
    c->snp_policy = s->policy;
    c->vmpl = s->vmpl;
    c->guest_svn = s->guest_svn;
    c->reported_tcb = s->reported_tcb;
}

/* The report, then, in extended evidence, the certificate table after it. */
static enum coffer_err snp_split(const uint8_t *ev, size_t size, struct snp_report *s,
                                 struct coffer_attest_snp_cert_table *t)
{
    memset(t, 0, sizeof(*t));
    if (size <= SNP_REPORT_SIZE)
        return snp_parse(ev, size, s);
    enum coffer_err r = snp_parse(ev, SNP_REPORT_SIZE, s);
    if (r == COFFER_OK &&
        (r = coffer_attest_snp_cert_table_parse(ev + SNP_REPORT_SIZE, size - SNP_REPORT_SIZE, t)) != COFFER_OK)
        coffer_err_context("SNP extended evidence (report + %zu bytes)", size - SNP_REPORT_SIZE);
    return r;
}

enum coffer_err coffer_attest__snp_decode(const uint8_t *ev, size_t size, struct coffer_attest_claims *out)
{
    struct snp_report s;
    struct coffer_attest_snp_cert_table t;
    memset(out, 0, sizeof(*out));
    enum coffer_err r = snp_split(ev, size, &s, &t);
    if (r != COFFER_OK)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_PARSE, r);
    fill(&s, out);
    return COFFER_OK;
}

static X509 *der_cert(const uint8_t *der, size_t size)
{
    const unsigned char *p = der;
    X509 *x = size <= INT32_MAX ? d2i_X509(NULL, &p, (long)size) : NULL;
    if (x != NULL && p != der + size) {
        X509_free(x);
        x = NULL;
    }
    ERR_clear_error();
    return x;
}

/* The ASK and ARK a certificate table may carry are never trusted: each
 * must be the pinned one (the ASK entry may hold the ASK or, for Milan, the
 * ASVK), or the evidence is refused so a wrong root cannot pass unnoticed. */
static enum coffer_err table_chain_check(const struct coffer_attest_snp_cert_table *t, int product,
                                         struct coffer_attest_claims *out)
{
    enum coffer_attest_step S = COFFER_ATTEST_STEP_SNP_CHAIN;
    const struct coffer_attest_snp_cert_entry *e;
    enum coffer_err r = COFFER_OK;
    if ((e = coffer_attest_snp_cert_table_find(t, COFFER_ATTEST_SNP_CERT_ASK)) != NULL) {
        X509 *x = der_cert(e->data, e->length);
        bool milan = product == SNP_MILAN || product == SNP_MILAN_VLEK;
        if (x == NULL)
            r = FAIL(S, COFFER_E_MALFORMED, "SNP: the ASK in the evidence's certificate table is not one DER certificate");
        else if (X509_cmp(x, chain_ask[product]) != 0 &&
                 !(milan && X509_cmp(x, chain_ask[product == SNP_MILAN ? SNP_MILAN_VLEK : SNP_MILAN]) == 0))
            r = FAIL(S, COFFER_E_CERT,
                     "SNP: the ASK in the evidence's certificate table is not AMD's pinned %s", pinned[product].ask_cn);
        X509_free(x);
    }
    if (r == COFFER_OK && (e = coffer_attest_snp_cert_table_find(t, COFFER_ATTEST_SNP_CERT_ARK)) != NULL) {
        X509 *x = der_cert(e->data, e->length);
        if (x == NULL)
            r = FAIL(S, COFFER_E_MALFORMED, "SNP: the ARK in the evidence's certificate table is not one DER certificate");
        else if (X509_cmp(x, chain_ark[product]) != 0)
            r = FAIL(S, COFFER_E_CERT,
                     "SNP: the ARK in the evidence's certificate table is not AMD's pinned %s; a root that comes "
                     "with evidence is never trusted",
                     pinned[product].ark_cn);
        X509_free(x);
    }
    return r;
}

/* The VCEK/VLEK: the certificate table's when the evidence has one, else
 * the one the verifier was given; both present must be the same. */
static enum coffer_err key_cert(const struct coffer_attest_snp_cert_table *t, bool vlek,
                                const struct coffer_attest_verify_opts *opts, X509 **leaf, bool *from_table,
                                struct coffer_attest_claims *out)
{
    enum coffer_attest_step S = COFFER_ATTEST_STEP_SNP_CHAIN;
    const char *kn = vlek ? "VLEK" : "VCEK";
    const struct coffer_attest_snp_cert_entry *e =
        coffer_attest_snp_cert_table_find(t, vlek ? COFFER_ATTEST_SNP_CERT_VLEK : COFFER_ATTEST_SNP_CERT_VCEK);
    X509 *mine = NULL, *given = NULL;
    *leaf = NULL;
    *from_table = e != NULL;
    if (e != NULL && (mine = der_cert(e->data, e->length)) == NULL)
        return FAIL(S, COFFER_E_MALFORMED, "SNP: the %s in the evidence's certificate table is not one DER certificate",
                    kn);
    if (opts->snp_key_cert != NULL && (given = der_cert(opts->snp_key_cert, opts->snp_key_cert_size)) == NULL) {
        X509_free(mine);
        return FAIL(S, COFFER_E_MALFORMED, "SNP: the VCEK/VLEK is not one DER certificate");
    }
    if (mine != NULL && given != NULL && X509_cmp(mine, given) != 0) {
        X509_free(mine);
        X509_free(given);
        return FAIL(S, COFFER_E_CERT,
                    "SNP: the %s in the evidence's certificate table is not the certificate given to the verifier "
                    "(--vcek or vcek.der/vlek.der); drop one of them",
                    kn);
    }
    if (mine == NULL && given == NULL) {
        if (t->header_size > 0)
            return FAIL(S, COFFER_E_NOT_FOUND,
                        "SNP: report signed by a %s; the evidence's certificate table has none and none was given", kn);
        return FAIL(S, COFFER_E_NOT_FOUND, "SNP: no VCEK/VLEK certificate was given");
    }
    if (mine != NULL) {
        X509_free(given);
        *leaf = mine;
    } else {
        *leaf = given;
    }
    return COFFER_OK;
}

enum coffer_err coffer_attest__snp_verify(const uint8_t *ev, size_t size, const struct coffer_attest_verify_opts *opts,
                                          struct coffer_attest_claims *out)
{
    struct snp_report s;
    struct coffer_attest_snp_cert_table t;
    enum coffer_err r;
    memset(out, 0, sizeof(*out));
    if ((r = snp_split(ev, size, &s, &t)) != COFFER_OK)
        return coffer_attest__fail(out, COFFER_ATTEST_STEP_PARSE, r);
    uint32_t key_type = (s.signer >> 2) & 7;
    if (key_type == 7)
        return FAIL(COFFER_ATTEST_STEP_SNP_SIGNATURE, COFFER_E_SIGNATURE, "SNP report is unsigned (SIGNING_KEY = none)");
    bool vlek = key_type == 1, from_table;
    X509 *leaf;
    if ((r = key_cert(&t, vlek, opts, &leaf, &from_table, out)) != COFFER_OK)
        return r;
    EVP_PKEY *pk;
    struct vcek_info v;
    char cn[64];
    coffer_attest__cert_cn(leaf, cn, sizeof(cn));
    if ((r = vcek_parse(leaf, &v)) != COFFER_OK) {
        coffer_attest__fail(out, COFFER_ATTEST_STEP_SNP_CHAIN, r);
        goto done;
    }
    if (strcmp(cn, vlek ? "SEV-VLEK" : "SEV-VCEK") != 0) {
        r = FAIL(COFFER_ATTEST_STEP_SNP_CHAIN, COFFER_E_CERT, "SNP: report signed by a %s, certificate CN is \"%s\"",
                 vlek ? "VLEK" : "VCEK", cn);
        goto done;
    }
    int product = s.version >= 3 ? product_from_cpuid(&s) : product_from_name(v.product);
    if (product < 0) {
        r = FAIL(COFFER_ATTEST_STEP_SNP_CHAIN, COFFER_E_UNSUPPORTED, "SNP: unknown product (CPUID %02x/%02x, name \"%s\")",
                 s.cpuid_fam, s.cpuid_mod, v.product);
        goto done;
    }
    if (v.product[0] != '\0' && product_from_name(v.product) != product) {
        r = FAIL(COFFER_ATTEST_STEP_SNP_CHAIN, COFFER_E_CERT, "SNP: certificate is for %s, the report's CPU is not",
                 v.product);
        goto done;
    }
    if (vlek) {
        if (product != SNP_MILAN) {
            r = FAIL(COFFER_ATTEST_STEP_SNP_CHAIN, COFFER_E_UNSUPPORTED, "SNP: no pinned VLEK chain for this product");
            goto done;
        }
        product = SNP_MILAN_VLEK;
    }
    pthread_once(&chains_once, chains_init);
    if ((r = snp_chain(leaf, product, opts->now, out)) != COFFER_OK)
        goto done;
    if ((r = table_chain_check(&t, product, out)) != COFFER_OK)
        goto done;
    if (opts->amd_crl != NULL && (r = amd_crl_check(opts, product, out)) != COFFER_OK)
        goto done;
    pk = X509_get0_pubkey(leaf);
    char group[32] = "";
    size_t gl;
    if (pk == NULL || !EVP_PKEY_is_a(pk, "EC") ||
        EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &gl) != 1 || strcmp(group, "secp384r1") != 0) {
        ERR_clear_error();
        r = FAIL(COFFER_ATTEST_STEP_SNP_CHAIN, COFFER_E_CERT, "SNP: the VCEK/VLEK key is not EC P-384");
        goto done;
    }
    r = coffer_attest__ecdsa_verify(pk, "SHA384", s.sig, 72, true, ev, SNP_SIGNED_SIZE);
    if (r != COFFER_OK) {
        r = FAIL(COFFER_ATTEST_STEP_SNP_SIGNATURE, r, "SNP report signature by the %s does not verify",
                 vlek ? "VLEK" : "VCEK");
        goto done;
    }
    int rep[10];
    tcb_parts(s.reported_tcb, product == SNP_MILAN_VLEK ? SNP_MILAN : product, rep);
    static const int arcs[] = {1, 2, 3, 8, 9};
    static const char *names[] = {"blSPL", "teeSPL", "snpSPL", "ucodeSPL", "fmcSPL"};
    for (int i = 0; i < 5; i++) {
        int a = arcs[i];
        if (rep[a] < 0)
            continue;
        if (v.spl[a] != rep[a]) {
            r = FAIL(COFFER_ATTEST_STEP_SNP_TCB, COFFER_E_POLICY, "SNP: certificate %s %d, REPORTED_TCB has %d", names[i],
                     v.spl[a], rep[a]);
            goto done;
        }
    }
    if (!vlek && !(s.signer & 2)) {
        static const uint8_t zero[64];
        bool ok = v.hwid_size == 64 ? coffer_ct_eq(v.hwid, s.chip_id, 64)
                  : v.hwid_size == 8 ? coffer_ct_eq(v.hwid, s.chip_id, 8) && coffer_ct_eq(s.chip_id + 8, zero, 56)
                                     : false;
        if (!ok) {
            r = FAIL(COFFER_ATTEST_STEP_SNP_CHIP_ID, COFFER_E_POLICY, "SNP: VCEK hwID is not the report's CHIP_ID");
            goto done;
        }
    }
    fill(&s, out);
    static const char *pnames[SNP_PRODUCT_COUNT] = {"Milan", "Genoa", "Turin", "Milan"};
    snprintf(out->snp_product, sizeof(out->snp_product), "%s", pnames[product]);
    out->snp_bl_spl = rep[1];
    out->snp_tee_spl = rep[2];
    out->snp_snp_spl = rep[3];
    out->snp_ucode_spl = rep[8];
    out->snp_fmc_spl = rep[9];
    out->snp_key_from_evidence = from_table;
    out->collateral_checked = false;
done:
    X509_free(leaf);
    return r;
}

enum coffer_err coffer_attest_snp_cert_check(const uint8_t *der, size_t size, time_t now,
                                             struct coffer_attest_snp_cert *out)
{
    struct coffer_attest_claims scratch;
    struct coffer_attest_claims *claims_out = &scratch;
    memset(out, 0, sizeof(*out));
    const unsigned char *p = der;
    X509 *leaf = der != NULL ? d2i_X509(NULL, &p, (long)size) : NULL;
    if (leaf == NULL || p != der + size) {
        X509_free(leaf);
        ERR_clear_error();
        return COFFER_FAIL(COFFER_E_MALFORMED, "SNP: the VCEK/VLEK is not one DER certificate");
    }
    struct vcek_info v;
    char cn[64];
    enum coffer_err r = vcek_parse(leaf, &v);
    coffer_attest__cert_cn(leaf, cn, sizeof(cn));
    int product = product_from_name(v.product);
    bool vlek = strcmp(cn, "SEV-VLEK") == 0;
    if (r == COFFER_OK && !vlek && strcmp(cn, "SEV-VCEK") != 0)
        r = COFFER_FAIL(COFFER_E_CERT, "SNP: certificate CN \"%s\" is neither SEV-VCEK nor SEV-VLEK", cn);
    if (r == COFFER_OK && product < 0)
        r = COFFER_FAIL(COFFER_E_UNSUPPORTED, "SNP: unknown product \"%s\"", v.product);
    if (r == COFFER_OK && vlek && product != SNP_MILAN)
        r = COFFER_FAIL(COFFER_E_UNSUPPORTED, "SNP: no pinned VLEK chain for %s", v.product);
    if (r == COFFER_OK) {
        pthread_once(&chains_once, chains_init);
        r = snp_chain(leaf, vlek ? SNP_MILAN_VLEK : product, now, claims_out);
    }
    if (r == COFFER_OK) {
        snprintf(out->product, sizeof(out->product), "%s", v.product);
        out->vlek = vlek;
        out->bl_spl = v.spl[1];
        out->tee_spl = v.spl[2];
        out->snp_spl = v.spl[3];
        out->ucode_spl = v.spl[8];
        out->fmc_spl = v.spl[9];
        memcpy(out->hwid, v.hwid, sizeof(v.hwid));
        out->hwid_size = v.hwid_size;
    }
    X509_free(leaf);
    return r;
}

enum coffer_err coffer_attest_amd_roots_check(void)
{
    pthread_once(&chains_once, chains_init);
    static const char *names[SNP_PRODUCT_COUNT] = {"Milan", "Genoa", "Turin", "Milan VLEK"};
    for (int i = 0; i < SNP_PRODUCT_COUNT; i++)
        if (chain_ask[i] == NULL || chain_ark[i] == NULL)
            return COFFER_FAIL(COFFER_E_INTERNAL, "pinned AMD %s chain does not verify (ARK self-signature, ASK by ARK)",
                               names[i]);
    return COFFER_OK;
}

#ifdef COFFER_TESTING
static X509 *saved_ask[SNP_PRODUCT_COUNT], *saved_ark[SNP_PRODUCT_COUNT];
static bool saved[SNP_PRODUCT_COUNT];

enum coffer_err coffer_attest_test_pin_amd_chain(const char *product, const uint8_t *ask_der, size_t ask_size,
                                                 const uint8_t *ark_der, size_t ark_size)
{
    static const char *names[SNP_PRODUCT_COUNT] = {"Milan", "Genoa", "Turin", "Milan-VLEK"};
    int i = -1;
    for (int k = 0; k < SNP_PRODUCT_COUNT; k++)
        if (strcmp(product, names[k]) == 0)
            i = k;
    if (i < 0)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "unknown product %s", product);
    pthread_once(&chains_once, chains_init);
    if (!saved[i]) {
        saved_ask[i] = chain_ask[i];
        saved_ark[i] = chain_ark[i];
        saved[i] = true;
    } else {
        X509_free(chain_ask[i]);
        X509_free(chain_ark[i]);
    }
    if (ask_der == NULL) {
        chain_ask[i] = saved_ask[i];
        chain_ark[i] = saved_ark[i];
        saved[i] = false;
        return COFFER_OK;
    }
    const unsigned char *p1 = ask_der, *p2 = ark_der;
    chain_ask[i] = d2i_X509(NULL, &p1, (long)ask_size);
    chain_ark[i] = d2i_X509(NULL, &p2, (long)ark_size);
    ERR_clear_error();
    return chain_ask[i] != NULL && chain_ark[i] != NULL ? COFFER_OK
                                                        : COFFER_FAIL(COFFER_E_MALFORMED, "test AMD chain does not parse");
}
#endif
