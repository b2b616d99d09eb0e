/* json_fuzz.c — strict JSON parsing and typed access (base/json.c) plus the
 * base64 and hex decoders over the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "coffer/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    json_t *v;
    if (coffer_json_parse(data, size, 1 << 20, &v) == COFFER_OK) {
        const char *s;
        int64_t n;
        json_t *o;
        (void)coffer_json_get_string(v, "$", "a", false, &s);
        (void)coffer_json_get_int(v, "$", "n", false, &n);
        (void)coffer_json_get_object(v, "$", "o", false, &o);
        char *dump;
        size_t dn;
        if (coffer_json_dump(v, &dump, &dn) == COFFER_OK)
            coffer_free(dump);
        json_decref(v);
    }
    uint8_t *dec;
    size_t dn;
    if (coffer_base64_decode((const char *)data, size, &dec, &dn) == COFFER_OK)
        coffer_free(dec);
    uint8_t key[16];
    (void)coffer_hex_decode((const char *)data, size, key, sizeof(key));
    return 0;
}
