/*
 * csr_fuzz.c — the coordinator's CSR reading, differentially: the fast DER
 * path for the common EC marble CSR and OpenSSL's parser must agree. When
 * the fast path accepts, OpenSSL's must accept with the same SANs and the
 * same key; when it finds a bad signature, OpenSSL's must refuse too.
 * (Where the fast path steps aside, certify uses OpenSSL's parser: nothing
 * to compare.) Nothing may crash or leak.
 *
 * First byte even: the rest is a whole CSR. Odd: the rest is u16 BE
 * subject length, the subject (a Name, as is), then the attributes'
 * contents; the target builds the request info around them with a key of
 * its own and signs it, so that the parts a signature covers get explored
 * with valid signatures too.
 */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/coordinator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *key;
static uint8_t spki[128];
static size_t spki_n;

static void put_tlv(struct coffer_buf *b, uint8_t tag, const uint8_t *v, size_t n)
{
    uint8_t h[5] = {tag};
    size_t hn = 2;
    if (n < 0x80) {
        h[1] = (uint8_t)n;
    } else if (n < 0x100) {
        h[1] = 0x81, h[2] = (uint8_t)n, hn = 3;
    } else {
        h[1] = 0x82, h[2] = (uint8_t)(n >> 8), h[3] = (uint8_t)n, hn = 4;
    }
    if (coffer_buf_put(b, h, hn) != COFFER_OK || coffer_buf_put(b, v, n) != COFFER_OK)
        __builtin_trap();
}

/* SEQ{SEQ{0, subject, spki, [0] attrs}, SEQ{ecdsa-with-SHA256}, BIT STRING sig} */
static bool compose(const uint8_t *d, size_t n, struct coffer_buf *csr)
{
    if (n < 2 || (size_t)(d[0] << 8 | d[1]) > n - 2)
        return false;
    size_t sn = (size_t)(d[0] << 8 | d[1]);
    struct coffer_buf in, tbs, rest;
    coffer_buf_init(&in, 0, false);
    coffer_buf_init(&tbs, 0, false);
    coffer_buf_init(&rest, 0, false);
    static const uint8_t version[] = {0x02, 0x01, 0x00};
    static const uint8_t sigalg[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    if (coffer_buf_put(&in, version, sizeof(version)) != COFFER_OK || coffer_buf_put(&in, d + 2, sn) != COFFER_OK ||
        coffer_buf_put(&in, spki, spki_n) != COFFER_OK)
        __builtin_trap();
    put_tlv(&in, 0xa0, d + 2 + sn, n - 2 - sn);
    put_tlv(&tbs, 0x30, in.data, in.size);
    uint8_t sig[1 + 80];
    size_t sig_n = sizeof(sig) - 1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, sig + 1, &sig_n, tbs.data, tbs.size) != 1)
        __builtin_trap();
    EVP_MD_CTX_free(md);
    sig[0] = 0;
    if (coffer_buf_put(&rest, tbs.data, tbs.size) != COFFER_OK ||
        coffer_buf_put(&rest, sigalg, sizeof(sigalg)) != COFFER_OK)
        __builtin_trap();
    put_tlv(&rest, 0x03, sig, sig_n + 1);
    put_tlv(csr, 0x30, rest.data, rest.size);
    coffer_buf_free(&in);
    coffer_buf_free(&tbs);
    coffer_buf_free(&rest);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (key == NULL) {
        coffer_log_set_level(COFFER_LOG_OFF);
        key = EVP_EC_gen("P-256");
        uint8_t *w = spki;
        int n = key ? i2d_PUBKEY(key, NULL) : 0;
        if (n <= 0 || (size_t)n > sizeof(spki))
            __builtin_trap();
        spki_n = (size_t)i2d_PUBKEY(key, &w);
    }
    if (size < 1 || size > 8192)
        return 0;
    struct coffer_buf csr;
    coffer_buf_init(&csr, 0, false);
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        if (!compose(data + 1, size - 1, &csr)) {
            coffer_buf_free(&csr);
            return 0;
        }
        d = csr.data;
        n = csr.size;
    }
    char *sans[2];
    uint8_t *spk[2];
    size_t spk_n[2];
    enum coffer_err r0 = coffer_pki_csr_check(d, n, false, &sans[0], &spk[0], &spk_n[0]);
    enum coffer_err r1 = coffer_pki_csr_check(d, n, true, &sans[1], &spk[1], &spk_n[1]);
    if (r0 == COFFER_OK &&
        (r1 != COFFER_OK || strcmp(sans[0], sans[1]) != 0 || spk_n[0] != spk_n[1] ||
         memcmp(spk[0], spk[1], spk_n[0]) != 0))
        __builtin_trap();
    if (r0 == COFFER_E_SIGNATURE && r1 == COFFER_OK)
        __builtin_trap();
    for (int i = 0; i < 2; i++) {
        coffer_free(sans[i]);
        coffer_free(spk[i]);
    }
    coffer_buf_free(&csr);
    return 0;
}
