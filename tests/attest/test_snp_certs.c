/* test_snp_certs.c — SEV-SNP extended evidence: the host's certificate
 * table (GHCB extended guest request data, configfs-tsm auxblob) after the
 * report. Tables are built here from the recorded vectors' VCEK/VLEK DER and
 * the pinned AMD roots: the parser's every malformed case, extended evidence
 * that verifies with no certificate given, and the negatives (truncated,
 * bad offsets, the VCEK under a wrong GUID only, another chip's VCEK, an
 * ASK/ARK that is not AMD's, a VCEK that disagrees with the one given), and
 * the configfs-tsm provider writing report + auxblob from a stand-in folder. */
#include "attest_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* The index-th certificate of a PEM file under vectors/attest, as DER. */
static uint8_t *pem_der(const char *rel, int index, size_t *size)
{
    size_t n;
    uint8_t *pem = at_read(rel, &n);
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    X509 *x = NULL;
    for (int i = 0; i <= index; i++) {
        X509_free(x);
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        assert_non_null(x);
    }
    uint8_t *out = at_x509_der(x, size);
    X509_free(x);
    BIO_free(b);
    free(pem);
    return out;
}

/* A self-signed certificate that merely calls itself ARK-Milan. */
static uint8_t *fake_ark(size_t *size)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    assert_non_null(k);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"ARK-Milan", -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    ASN1_TIME_set(X509_getm_notBefore(x), 1600000000);
    ASN1_TIME_set(X509_getm_notAfter(x), 2600000000);
    X509_set_pubkey(x, k);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    uint8_t *out = at_x509_der(x, size);
    X509_NAME_free(n);
    X509_free(x);
    EVP_PKEY_free(k);
    return out;
}

static void assert_detail(const char *want)
{
    if (strstr(coffer_err_detail(), want) == NULL)
        fail_msg("detail \"%s\" does not say \"%s\"", coffer_err_detail(), want);
}

static void parse_fails(const uint8_t *t, size_t n, enum coffer_err code, const char *want)
{
    struct coffer_attest_snp_cert_table tab;
    enum coffer_err r = coffer_attest_snp_cert_table_parse(t, n, &tab);
    if (r != code)
        fail_msg("table: want %s, got %s: %s", coffer_err_name(code), coffer_err_name(r), coffer_err_detail());
    assert_detail(want);
}

static void test_snp_cert_table_parse(void **state)
{
    (void)state;
    size_t vn, an, kn, tn;
    uint8_t *vcek = at_read("snp/gsev-milan-v2/vcek.der", &vn);
    uint8_t *ask = pem_der("roots/amd_milan_ask_ark.pem", 0, &an);
    uint8_t *ark = pem_der("roots/amd_milan_ask_ark.pem", 1, &kn);
    const struct at_cert_entry good[] = {{AT_GUID_VCEK, vcek, vn}, {AT_GUID_ASK, ask, an}, {AT_GUID_ARK, ark, kn}};
    uint8_t *t = at_snp_table(good, 3, &tn);
    struct coffer_attest_snp_cert_table tab;
    assert_int_equal(coffer_attest_snp_cert_table_parse(t, tn, &tab), COFFER_OK);
    assert_int_equal(tab.count, 3);
    assert_int_equal(tab.header_size, 96);
    /* the GUID bytes are the text's bytes in order (RFC 4122), pinned here */
    static const uint8_t vcek_wire[16] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                                          0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
    assert_memory_equal(t, vcek_wire, 16);
    const struct coffer_attest_snp_cert_entry *e = coffer_attest_snp_cert_table_find(&tab, COFFER_ATTEST_SNP_CERT_VCEK);
    assert_non_null(e);
    assert_int_equal(e->length, vn);
    assert_memory_equal(e->data, vcek, vn);
    e = coffer_attest_snp_cert_table_find(&tab, COFFER_ATTEST_SNP_CERT_ARK);
    assert_non_null(e);
    assert_int_equal(e->offset, 96 + vn + an);
    assert_memory_equal(e->data, ark, kn);
    assert_null(coffer_attest_snp_cert_table_find(&tab, COFFER_ATTEST_SNP_CERT_VLEK));
    assert_string_equal(coffer_attest_snp_cert_kind_name(tab.entries[1].kind), "ASK");

    /* only the all-zero entry: well-formed, nothing in it */
    uint8_t zero[24] = {0};
    assert_int_equal(coffer_attest_snp_cert_table_parse(zero, 24, &tab), COFFER_OK);
    assert_int_equal(tab.count, 0);
    /* an unknown GUID is kept and ignored */
    const struct at_cert_entry other[] = {{"92f81bc3-5811-4d3d-97ff-d19f88dc67ea", ask, 10}, {AT_GUID_VCEK, vcek, vn}};
    size_t on;
    uint8_t *o = at_snp_table(other, 2, &on);
    assert_int_equal(coffer_attest_snp_cert_table_parse(o, on, &tab), COFFER_OK);
    assert_int_equal(tab.entries[0].kind, COFFER_ATTEST_SNP_CERT_OTHER);
    free(o);

    /* every truncation fails: in the entries (no terminator), in a certificate (past the end) */
    for (size_t len = 0; len < tn; len++) {
        enum coffer_err r = coffer_attest_snp_cert_table_parse(t, len, &tab);
        if (r == COFFER_OK)
            fail_msg("table cut to %zu of %zu bytes parsed", len, tn);
        assert_int_equal(r, len < 96 ? COFFER_E_TRUNCATED : COFFER_E_RANGE);
    }
    parse_fails(t, 50, COFFER_E_TRUNCATED, "no all-zero entry");
    parse_fails(t, tn - 1, COFFER_E_RANGE, "past the end");

    uint8_t *m = malloc(tn + 1);
    /* the VCEK pointed into the table's header */
    memcpy(m, t, tn);
    coffer_store_u32le(m + 16, 72);
    parse_fails(m, tn, COFFER_E_RANGE, "inside the table's 96-byte header");
    /* offset + length past the end, also where u32 arithmetic would wrap */
    memcpy(m, t, tn);
    coffer_store_u32le(m + 24 + 20, (uint32_t)(an + 1));
    parse_fails(m, tn, COFFER_E_RANGE, "entries 1 (ASK) and 2 (ARK) overlap");
    memcpy(m, t, tn);
    coffer_store_u32le(m + 48 + 16, 0xffffff00u);
    coffer_store_u32le(m + 48 + 20, 0x200u);
    parse_fails(m, tn, COFFER_E_RANGE, "entry 2 (ARK) covers bytes 4294967040..4294967552, past the end");
    /* two entries over the same bytes */
    memcpy(m, t, tn);
    coffer_store_u32le(m + 24 + 16, 96);
    parse_fails(m, tn, COFFER_E_RANGE, "entries 0 (VCEK) and 1 (ASK) overlap");
    /* a GUID twice */
    memcpy(m, t, tn);
    memcpy(m + 48, m, 16);
    parse_fails(m, tn, COFFER_E_MALFORMED, "entries 0 and 2 have the same GUID (VCEK, 63da758d-e664-4564-adc5-f4b93be8accd)");
    /* a zero GUID that still has an offset: no terminator where one was meant */
    memcpy(m, t, tn);
    memset(m + 24, 0, 16);
    parse_fails(m, tn, COFFER_E_MALFORMED, "entry 1 has a zero GUID but offset");
    /* an empty certificate */
    memcpy(m, t, tn);
    coffer_store_u32le(m + 20, 0);
    parse_fails(m, tn, COFFER_E_MALFORMED, "entry 0 (VCEK, 63da758d-e664-4564-adc5-f4b93be8accd) is empty");
    /* the VCEK GUID in the mixed-endian EFI layout */
    memcpy(m, t, tn);
    static const uint8_t vcek_efi[16] = {0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45,
                                         0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
    memcpy(m, vcek_efi, 16);
    parse_fails(m, tn, COFFER_E_MALFORMED, "entry 0 carries the VCEK GUID in mixed-endian (EFI) byte order");
    /* a byte after the last certificate */
    memcpy(m, t, tn);
    m[tn] = 0;
    parse_fails(m, tn + 1, COFFER_E_TRAILING, "1 bytes after the last certificate");
    free(m);
    /* oversize, and too many entries */
    uint8_t *big = calloc(1, COFFER_ATTEST_SNP_CERTS_MAX + 1);
    parse_fails(big, COFFER_ATTEST_SNP_CERTS_MAX + 1, COFFER_E_TOO_LARGE, "more than the 16384 the kernel hands out");
    struct at_cert_entry many[COFFER_ATTEST_SNP_CERT_ENTRIES_MAX + 1];
    char guids[COFFER_ATTEST_SNP_CERT_ENTRIES_MAX + 1][40];
    for (int i = 0; i <= COFFER_ATTEST_SNP_CERT_ENTRIES_MAX; i++) {
        snprintf(guids[i], sizeof(guids[i]), "%08x-0000-4000-8000-000000000000", 0x1000 + i);
        many[i] = (struct at_cert_entry){guids[i], ask, 1};
    }
    size_t mn;
    uint8_t *mt = at_snp_table(many, COFFER_ATTEST_SNP_CERT_ENTRIES_MAX + 1, &mn);
    parse_fails(mt, mn, COFFER_E_TOO_LARGE, "more than 32 entries");
    free(mt);
    mt = at_snp_table(many, COFFER_ATTEST_SNP_CERT_ENTRIES_MAX, &mn);
    assert_int_equal(coffer_attest_snp_cert_table_parse(mt, mn, &tab), COFFER_OK);
    free(mt);
    free(big);
    free(t);
    free(vcek);
    free(ask);
    free(ark);
}

static enum coffer_err verify(const uint8_t *ev, size_t n, const uint8_t *cert, size_t cn, time_t now,
                              struct coffer_attest_claims *c)
{
    struct coffer_attest_verify_opts o = {.now = now, .snp_key_cert = cert, .snp_key_cert_size = cn};
    return coffer_attest_evidence_verify(ev, n, &o, c);
}

/* report || table(entries) */
static uint8_t *extended(const uint8_t *rep, const struct at_cert_entry *e, size_t count, size_t *size)
{
    size_t tn;
    uint8_t *t = at_snp_table(e, count, &tn), *ev = at_concat(rep, 1184, t, tn, size);
    free(t);
    return ev;
}

static void test_snp_extended_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *vec, *cert, *guid, *roots;
    } vs[] = {
        {"snp/gsev-milan-v2", "vcek.der", AT_GUID_VCEK, "roots/amd_milan_ask_ark.pem"},
        {"snp/gcp-milan-v5", "vcek.der", AT_GUID_VCEK, "roots/amd_milan_ask_ark.pem"},
        {"snp/trustee-milan-v3-vlek", "vlek.der", AT_GUID_VLEK, "roots/amd_milan_asvk_ark.pem"},
    };
    for (size_t i = 0; i < 3; i++) {
        char rel[128];
        size_t rn, cn, an, kn, en;
        json_t *exp = at_expected(vs[i].vec);
        time_t at = at_verify_at(exp);
        snprintf(rel, sizeof(rel), "%s/report.bin", vs[i].vec);
        uint8_t *rep = at_read(rel, &rn);
        snprintf(rel, sizeof(rel), "%s/%s", vs[i].vec, vs[i].cert);
        uint8_t *cert = at_read(rel, &cn);
        uint8_t *ask = pem_der(vs[i].roots, 0, &an), *ark = pem_der(vs[i].roots, 1, &kn);
        const struct at_cert_entry e[] = {{vs[i].guid, cert, cn}, {AT_GUID_ASK, ask, an}, {AT_GUID_ARK, ark, kn}};
        uint8_t *ev = extended(rep, e, 3, &en);
        assert_int_equal(coffer_attest_evidence_kind(ev, en), COFFER_ATTEST_KIND_SNP);
        /* verifies with nothing given: the same claims as the bare report with its certificate */
        struct coffer_attest_claims bare, c;
        assert_int_equal(verify(rep, rn, cert, cn, at, &bare), COFFER_OK);
        enum coffer_err r = verify(ev, en, NULL, 0, at, &c);
        if (r != COFFER_OK)
            fail_msg("%s extended: %s at %s", vs[i].vec, coffer_err_detail(), coffer_attest_step_name(c.failed_step));
        assert_true(c.snp_key_from_evidence);
        assert_false(bare.snp_key_from_evidence);
        c.snp_key_from_evidence = false;
        assert_memory_equal(&c, &bare, sizeof(c));
        /* the same certificate given as well: fine, and the table's still counts */
        assert_int_equal(verify(ev, en, cert, cn, at, &c), COFFER_OK);
        assert_true(c.snp_key_from_evidence);
        /* decode reads the report part */
        assert_int_equal(coffer_attest_evidence_decode(ev, en, &c), COFFER_OK);
        assert_memory_equal(c.measurement, bare.measurement, 48);
        /* the VCEK/VLEK alone in the table is enough */
        free(ev);
        ev = extended(rep, e, 1, &en);
        assert_int_equal(verify(ev, en, NULL, 0, at, &c), COFFER_OK);
        /* 2053: the certificate from the table has expired like any other */
        at_assert_fails(verify(ev, en, NULL, 0, at_time("2053-01-01T00:00:00Z"), &c), &c, COFFER_E_EXPIRED,
                        COFFER_ATTEST_STEP_SNP_CHAIN);
        /* every truncation of the table fails while parsing, never later */
        for (size_t len = rn + 1; len < en; len++) {
            r = verify(ev, len, NULL, 0, at, &c);
            if (r == COFFER_OK || c.failed_step != COFFER_ATTEST_STEP_PARSE)
                fail_msg("%s cut to %zu: %s at %s", vs[i].vec, len, coffer_err_name(r),
                         coffer_attest_step_name(c.failed_step));
        }
        /* the ASK/ARK only, the key certificate given: that one is used */
        free(ev);
        ev = extended(rep, e + 1, 2, &en);
        assert_int_equal(verify(ev, en, cert, cn, at, &c), COFFER_OK);
        assert_false(c.snp_key_from_evidence);
        at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_NOT_FOUND, COFFER_ATTEST_STEP_SNP_CHAIN);
        assert_detail("the evidence's certificate table has none and none was given");
        free(ev);
        free(rep);
        free(cert);
        free(ask);
        free(ark);
        json_decref(exp);
    }
}

static void test_snp_extended_negatives(void **state)
{
    (void)state;
    json_t *exp = at_expected("snp/gsev-milan-v2");
    time_t at = at_verify_at(exp);
    size_t rn, cn, gn, an, kn, gan, gkn, fn, en;
    uint8_t *rep = at_read("snp/gsev-milan-v2/report.bin", &rn);
    uint8_t *cert = at_read("snp/gsev-milan-v2/vcek.der", &cn);
    uint8_t *gcert = at_read("snp/gcp-milan-v5/vcek.der", &gn);
    uint8_t *ask = pem_der("roots/amd_milan_ask_ark.pem", 0, &an), *ark = pem_der("roots/amd_milan_ask_ark.pem", 1, &kn);
    uint8_t *gask = pem_der("roots/amd_genoa_ask_ark.pem", 0, &gan);
    uint8_t *gark = pem_der("roots/amd_genoa_ask_ark.pem", 1, &gkn);
    uint8_t *fark = fake_ark(&fn);
    struct coffer_attest_claims c;
    uint8_t *ev;

    /* the VCEK under a GUID that is not the VCEK's only: no key certificate */
    const struct at_cert_entry wrong_guid[] = {{"92f81bc3-5811-4d3d-97ff-d19f88dc67ea", cert, cn}};
    ev = extended(rep, wrong_guid, 1, &en);
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_NOT_FOUND, COFFER_ATTEST_STEP_SNP_CHAIN);
    assert_detail("report signed by a VCEK; the evidence's certificate table has none");
    free(ev);
    const struct at_cert_entry as_vlek[] = {{AT_GUID_VLEK, cert, cn}};
    ev = extended(rep, as_vlek, 1, &en);
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_NOT_FOUND, COFFER_ATTEST_STEP_SNP_CHAIN);
    free(ev);
    /* another chip's VCEK in the table: its key did not sign the report */
    const struct at_cert_entry other_chip[] = {{AT_GUID_VCEK, gcert, gn}};
    ev = extended(rep, other_chip, 1, &en);
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_SIGNATURE, COFFER_ATTEST_STEP_SNP_SIGNATURE);
    /* ... and when the verifier is given the right one, the two disagree */
    at_assert_fails(verify(ev, en, cert, cn, at, &c), &c, COFFER_E_CERT, COFFER_ATTEST_STEP_SNP_CHAIN);
    assert_detail("is not the certificate given to the verifier");
    free(ev);
    /* an ARK in the table that is not AMD's Milan ARK: a self-made one, Genoa's */
    const struct at_cert_entry bad_ark[] = {{AT_GUID_VCEK, cert, cn}, {AT_GUID_ASK, ask, an}, {AT_GUID_ARK, fark, fn}};
    ev = extended(rep, bad_ark, 3, &en);
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_CERT, COFFER_ATTEST_STEP_SNP_CHAIN);
    assert_detail("the ARK in the evidence's certificate table is not AMD's pinned ARK-Milan");
    /* given the VCEK too changes nothing: the table's ARK is still wrong */
    at_assert_fails(verify(ev, en, cert, cn, at, &c), &c, COFFER_E_CERT, COFFER_ATTEST_STEP_SNP_CHAIN);
    free(ev);
    const struct at_cert_entry genoa_ark[] = {{AT_GUID_VCEK, cert, cn}, {AT_GUID_ARK, gark, gkn}};
    ev = extended(rep, genoa_ark, 2, &en);
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_CERT, COFFER_ATTEST_STEP_SNP_CHAIN);
    free(ev);
    const struct at_cert_entry genoa_ask[] = {{AT_GUID_VCEK, cert, cn}, {AT_GUID_ASK, gask, gan}};
    ev = extended(rep, genoa_ask, 2, &en);
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_CERT, COFFER_ATTEST_STEP_SNP_CHAIN);
    assert_detail("the ASK in the evidence's certificate table is not AMD's pinned SEV-Milan");
    free(ev);
    /* an ARK entry that is not a certificate at all */
    const struct at_cert_entry junk_ark[] = {{AT_GUID_VCEK, cert, cn}, {AT_GUID_ARK, (const uint8_t *)"not DER", 7}};
    ev = extended(rep, junk_ark, 2, &en);
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_MALFORMED, COFFER_ATTEST_STEP_SNP_CHAIN);
    free(ev);
    /* a VCEK entry that is not one DER certificate (the VCEK and a byte more) */
    uint8_t *cert1 = at_concat(cert, cn, (const uint8_t *)"\0", 1, &fn);
    const struct at_cert_entry junk_vcek[] = {{AT_GUID_VCEK, cert1, fn}};
    ev = extended(rep, junk_vcek, 1, &en);
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_MALFORMED, COFFER_ATTEST_STEP_SNP_CHAIN);
    free(ev);
    free(cert1);
    /* bad offsets and a GUID in the wrong byte order fail at parse */
    const struct at_cert_entry good[] = {{AT_GUID_VCEK, cert, cn}, {AT_GUID_ASK, ask, an}};
    ev = extended(rep, good, 2, &en);
    assert_int_equal(verify(ev, en, NULL, 0, at, &c), COFFER_OK);
    coffer_store_u32le(ev + 1184 + 24 + 16, 8);
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_RANGE, COFFER_ATTEST_STEP_PARSE);
    assert_detail("SNP extended evidence");
    coffer_store_u32le(ev + 1184 + 24 + 16, (uint32_t)(72 + cn + 1));
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_RANGE, COFFER_ATTEST_STEP_PARSE);
    coffer_store_u32le(ev + 1184 + 24 + 16, (uint32_t)(72 + cn));
    static const uint8_t efi[8] = {3, 2, 1, 0, 5, 4, 7, 6}; /* mixed-endian: the first three fields swapped */
    uint8_t g[8];
    for (int i = 0; i < 8; i++)
        g[i] = ev[1184 + efi[i]];
    memcpy(ev + 1184, g, 8);
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_MALFORMED, COFFER_ATTEST_STEP_PARSE);
    free(ev);
    /* a tampered report with a good table still fails at its signature */
    ev = extended(rep, good, 2, &en);
    ev[0x90] ^= 1;
    at_assert_fails(verify(ev, en, NULL, 0, at, &c), &c, COFFER_E_SIGNATURE, COFFER_ATTEST_STEP_SNP_SIGNATURE);
    free(ev);
    free(rep);
    free(cert);
    free(gcert);
    free(ask);
    free(ark);
    free(gask);
    free(gark);
    free(fark);
    json_decref(exp);
}

/* configfs-tsm stand-in, filled by the test hook the way the kernel fills a
 * report folder when it is made: inblob, outblob (the SNP report),
 * generation, and auxblob (the host's table) unless aux is NULL. */
struct tsm_stand_in {
    const uint8_t *report, *aux;
    size_t report_size, aux_size;
    char dir[700];
};

static void put(const char *dir, const char *name, const void *d, size_t n)
{
    char p[800];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    assert_int_equal(coffer_file_write_atomic(p, d, n, 0600), COFFER_OK);
}

static void tsm_clean(struct tsm_stand_in *s)
{
    static const char *names[] = {"inblob", "outblob", "generation", "auxblob"};
    char p[800];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", s->dir, names[i]);
        unlink(p);
    }
    rmdir(s->dir);
    s->dir[0] = '\0';
}

static void tsm_fill(const char *dir, void *arg)
{
    struct tsm_stand_in *s = arg;
    if (s->dir[0] != '\0')
        tsm_clean(s); /* the provider is done with the previous folder */
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    put(dir, "inblob", "", 0);
    put(dir, "outblob", s->report, s->report_size);
    put(dir, "generation", "1\n", 2);
    if (s->aux != NULL)
        put(dir, "auxblob", s->aux, s->aux_size);
}

static void test_snp_provider_auxblob(void **state)
{
    (void)state;
    char base[512];
    snprintf(base, sizeof(base), "%s/snp-tsm-XXXXXX", getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(base));
    setenv("COFFER_TSM_REPORT_DIR", base, 1);
    json_t *exp = at_expected("snp/gsev-milan-v2");
    time_t at = at_verify_at(exp);
    size_t rn, cn, tn, n;
    uint8_t *rep = at_read("snp/gsev-milan-v2/report.bin", &rn);
    uint8_t *cert = at_read("snp/gsev-milan-v2/vcek.der", &cn);
    const struct at_cert_entry e[] = {{AT_GUID_VCEK, cert, cn}};
    uint8_t *t = at_snp_table(e, 1, &tn);
    uint8_t rd[64] = {0x5a, 0x5b};
    uint8_t *ev;
    struct coffer_attest_claims c;
    struct tsm_stand_in s = {.report = rep, .report_size = rn, .aux = t, .aux_size = tn};
    coffer_attest_test_tsm_hook(tsm_fill, &s);

    /* the host attached a table: report || auxblob, which verifies on its own */
    assert_int_equal(coffer_attest_provider_evidence(COFFER_ATTEST_PROVIDER_TSM, rd, &ev, &n), COFFER_OK);
    assert_int_equal(n, rn + tn);
    assert_memory_equal(ev, rep, rn);
    assert_memory_equal(ev + rn, t, tn);
    assert_int_equal(verify(ev, n, NULL, 0, at, &c), COFFER_OK);
    assert_true(c.snp_key_from_evidence);
    uint8_t *in;
    size_t inn;
    char p[800];
    snprintf(p, sizeof(p), "%s/inblob", s.dir);
    assert_int_equal(coffer_file_read_all(p, 4096, &in, &inn), COFFER_OK);
    assert_int_equal(inn, 64);
    assert_memory_equal(in, rd, 64);
    coffer_free(in);
    coffer_free(ev);
    tsm_clean(&s);
    /* no auxblob (an older kernel) and an empty one (no certificates): the bare report */
    s.aux = NULL;
    assert_int_equal(coffer_attest_provider_evidence(COFFER_ATTEST_PROVIDER_TSM, rd, &ev, &n), COFFER_OK);
    assert_int_equal(n, rn);
    coffer_free(ev);
    tsm_clean(&s);
    s.aux = t;
    s.aux_size = 0;
    assert_int_equal(coffer_attest_provider_evidence(COFFER_ATTEST_PROVIDER_TSM, rd, &ev, &n), COFFER_OK);
    assert_int_equal(n, rn);
    coffer_free(ev);
    tsm_clean(&s);
    /* a table that does not parse is left out: the bare report, still good with its VCEK */
    s.aux_size = tn - 1;
    assert_int_equal(coffer_attest_provider_evidence(COFFER_ATTEST_PROVIDER_TSM, rd, &ev, &n), COFFER_OK);
    assert_int_equal(n, rn);
    assert_int_equal(verify(ev, n, cert, cn, at, &c), COFFER_OK);
    coffer_free(ev);
    tsm_clean(&s);
    /* RA-TLS through configfs-tsm: both extensions carry the extended form.
     * The stand-in's report cannot bind a fresh key, so the certificate
     * verifies up to the binding and fails there, after the evidence (from
     * the table alone) has passed. */
    s.aux_size = tn;
    X509 *x;
    EVP_PKEY *k;
    assert_int_equal(coffer_attest_ratls_make(COFFER_ATTEST_PROVIDER_TSM, &x, &k), COFFER_OK);
    ASN1_OBJECT *tcg_oid = OBJ_txt2obj("2.23.133.5.4.9", 1);
    int ti = X509_get_ext_by_OBJ(x, tcg_oid, -1);
    ASN1_OBJECT_free(tcg_oid);
    assert_true(ti >= 0);
    const ASN1_OCTET_STRING *tcg = X509_EXTENSION_get_data(X509_get_ext(x, ti));
    const uint8_t *tev, *claims;
    size_t tevn, claimsn;
    assert_int_equal(coffer_attest_ratls_extensions_parse(ASN1_STRING_get0_data(tcg), (size_t)ASN1_STRING_length(tcg),
                                                          &tev, &tevn, &claims, &claimsn),
                     COFFER_OK);
    assert_int_equal(tevn, rn + tn);
    assert_memory_equal(tev + rn, t, tn);
    struct coffer_attest_verify_opts o = {.now = at};
    enum coffer_err r = coffer_attest_ratls_verify_x509(x, &o, NULL, &c);
    assert_int_equal(r, COFFER_E_POLICY);
    assert_int_equal(c.failed_step, COFFER_ATTEST_STEP_POLICY);
    assert_detail("RA-TLS binding");
    X509_free(x);
    EVP_PKEY_free(k);
    tsm_clean(&s);
    coffer_attest_test_tsm_hook(NULL, NULL);
    unsetenv("COFFER_TSM_REPORT_DIR");
    assert_int_equal(rmdir(base), 0);
    free(t);
    free(rep);
    free(cert);
    json_decref(exp);
}

int at_run_snp_certs(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snp_cert_table_parse),
        cmocka_unit_test(test_snp_extended_vectors),
        cmocka_unit_test(test_snp_extended_negatives),
        cmocka_unit_test(test_snp_provider_auxblob),
    };
    return cmocka_run_group_tests_name("attest_snp_certs", tests, NULL, NULL);
}
