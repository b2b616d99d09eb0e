/*
 * crypto.c — AES-128-GCM per node and the CMAC key derivation.
 *
 * Design: OpenSSL's EVP interfaces; the cipher and MAC implementations are
 * fetched once per process, and each handle or thread owns its cipher
 * context, re-keyed per node (every node has its own key). A failed tag
 * check wipes the output before returning (STYLE §3.5).
 * Trusts: OpenSSL for AES-GCM and CMAC; nothing else.
 * Invariants: I1 no key or KDF input is left on the stack.
 */
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <pthread.h>
#include <string.h>

#include "pf_int.h"

static EVP_CIPHER *gcm_cipher;
static EVP_MAC *cmac_mac;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_algorithms(void)
{
    gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    cmac_mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
}

static const uint8_t zero_iv[12];

enum coffer_err pf_gcm_init(struct pf_gcm *g)
{
    pthread_once(&fetch_once, fetch_algorithms);
    g->ctx = NULL;
    if (gcm_cipher == NULL)
        return COFFER_FAIL(COFFER_E_CRYPTO, "AES-128-GCM is not available from OpenSSL");
#ifdef COFFER_TESTING
    void *probe = coffer_malloc(1); /* lets allocation fault injection reach here */
    if (probe == NULL)
        return COFFER_E_NOMEM;
    coffer_free(probe);
#endif
    g->ctx = EVP_CIPHER_CTX_new();
    if (g->ctx == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "allocating a cipher context");
    if (EVP_CipherInit_ex2(g->ctx, gcm_cipher, NULL, NULL, 1, NULL) != 1) {
        EVP_CIPHER_CTX_free(g->ctx);
        g->ctx = NULL;
        return COFFER_FAIL(COFFER_E_CRYPTO, "initialising AES-128-GCM");
    }
    return COFFER_OK;
}

void pf_gcm_free(struct pf_gcm *g)
{
    EVP_CIPHER_CTX_free(g->ctx); /* cleanses the key schedule */
    g->ctx = NULL;
}

enum coffer_err pf_gcm_encrypt(struct pf_gcm *g, const uint8_t key[16], const uint8_t *iv, const void *in,
                               size_t size, void *out, uint8_t tag[16])
{
    int n = 0, f = 0;
    if (EVP_CipherInit_ex2(g->ctx, NULL, key, iv ? iv : zero_iv, 1, NULL) != 1 ||
        EVP_CipherUpdate(g->ctx, out, &n, in, (int)size) != 1 ||
        EVP_CipherFinal_ex(g->ctx, (uint8_t *)out + n, &f) != 1 ||
        EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
        return COFFER_FAIL(COFFER_E_CRYPTO, "AES-GCM encryption failed");
    return COFFER_OK;
}

enum coffer_err pf_gcm_decrypt(struct pf_gcm *g, const uint8_t key[16], const uint8_t *iv, const void *in,
                               size_t size, void *out, const uint8_t tag[16])
{
    int n = 0, f = 0;
    if (EVP_CipherInit_ex2(g->ctx, NULL, key, iv ? iv : zero_iv, 0, NULL) != 1 ||
        EVP_CipherUpdate(g->ctx, out, &n, in, (int)size) != 1 ||
        EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(uintptr_t)tag) != 1)
        return COFFER_FAIL(COFFER_E_CRYPTO, "AES-GCM decryption failed");
    if (EVP_CipherFinal_ex(g->ctx, (uint8_t *)out + n, &f) != 1) {
        coffer_memzero(out, size);
        return COFFER_E_AUTH;
    }
    return COFFER_OK;
}

/* see coffer/pf.h */
enum coffer_err coffer_pf_kdf(const coffer_pf_key kdk, const uint8_t nonce[32], coffer_pf_key out)
{
    pthread_once(&fetch_once, fetch_algorithms);
    if (cmac_mac == NULL)
        return COFFER_FAIL(COFFER_E_CRYPTO, "CMAC is not available from OpenSSL");
    /* NIST SP 800-108 counter mode, one block: counter, label, nonce, bits. */
    uint8_t input[104];
    memset(input, 0, sizeof(input));
    coffer_store_u32le(input, 1);
    memcpy(input + 4, "SGX-PROTECTED-FS-METADATA-KEY", 29);
    memcpy(input + 68, nonce, 32);
    coffer_store_u32le(input + 100, 128);

    enum coffer_err r = COFFER_OK;
    EVP_MAC_CTX *m = EVP_MAC_CTX_new(cmac_mac);
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)"AES-128-CBC", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t outl = 0;
    if (m == NULL || EVP_MAC_init(m, kdk, COFFER_PF_KEY_SIZE, params) != 1 ||
        EVP_MAC_update(m, input, sizeof(input)) != 1 || EVP_MAC_final(m, out, &outl, 16) != 1 || outl != 16)
        r = COFFER_FAIL(COFFER_E_CRYPTO, "AES-CMAC key derivation failed");
    EVP_MAC_CTX_free(m);
    coffer_memzero(input, sizeof(input));
    return r;
}
