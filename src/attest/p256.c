/*
 * p256.c — the hot path of quote verification: ECDSA P-256 / SHA-256 with
 * raw keys and signatures as Intel lays them out (x || y, r || s, big-endian).
 *
 * Design: OpenSSL 3.0's EVP layer fetches algorithms and decodes keys
 * through providers on every call and takes global locks while doing so;
 * measured here, importing a raw key through EVP_PKEY_fromdata plus
 * EVP_DigestVerify cost ~150 us and scaled negatively across threads. This
 * file uses the EC_KEY / ECDSA_do_verify interface (deprecated in 3.0, still
 * supported and maintained through 3.x) with one P-256 group built once,
 * which verifies in ~50 us and scales with cores. Only verification lives
 * here; no private keys.
 *
 * Invariants: I1 a point is used only after EC_POINT_oct2point accepted it
 * (it checks the point lies on the curve; P-256 has cofactor 1, so that is
 * the full public-key check). I2 success only when ECDSA_do_verify returns
 * exactly 1.
 * Trusts: OpenSSL's EC arithmetic.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "attest_int.h"

#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>

static EC_GROUP *p256;
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;

static void p256_init(void)
{
    p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
}

enum coffer_err coffer_attest__p256_verify(const uint8_t xy[64], const uint8_t rs[64], const uint8_t *msg, size_t n)
{
    pthread_once(&p256_once, p256_init);
    if (p256 == NULL)
        return COFFER_E_CRYPTO;
    uint8_t pt[65], h[32];
    pt[0] = 0x04;
    memcpy(pt + 1, xy, 64);
    enum coffer_err r = COFFER_E_CRYPTO;
    EC_KEY *key = EC_KEY_new();
    EC_POINT *p = EC_POINT_new(p256);
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *br = BN_bin2bn(rs, 32, NULL), *bs = BN_bin2bn(rs + 32, 32, NULL);
    if (key == NULL || p == NULL || sig == NULL || br == NULL || bs == NULL || EC_KEY_set_group(key, p256) != 1)
        goto out;
    if (EC_POINT_oct2point(p256, p, pt, sizeof(pt), NULL) != 1 || EC_KEY_set_public_key(key, p) != 1) {
        r = COFFER_E_MALFORMED; /* not a point on P-256 */
        goto out;
    }
    if (ECDSA_SIG_set0(sig, br, bs) != 1)
        goto out;
    br = bs = NULL;
    SHA256(msg, n, h);
    r = ECDSA_do_verify(h, 32, sig, key) == 1 ? COFFER_OK : COFFER_E_SIGNATURE;
out:
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(sig);
    EC_POINT_free(p);
    EC_KEY_free(key);
    ERR_clear_error();
    return r;
}

enum coffer_err coffer_attest__p256_xy(EVP_PKEY *pk, uint8_t xy[64])
{
    uint8_t pt[65];
    size_t n = 0;
    char group[32] = "";
    size_t gl = 0;
    if (pk == NULL || !EVP_PKEY_is_a(pk, "EC") ||
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &gl) != 1 ||
        strcmp(group, "prime256v1") != 0 ||
        EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &n) != 1 || n != 65 ||
        pt[0] != 0x04) {
        ERR_clear_error();
        return COFFER_FAIL(COFFER_E_CERT, "certificate key is not an uncompressed EC P-256 key");
    }
    memcpy(xy, pt + 1, 64);
    return COFFER_OK;
}
