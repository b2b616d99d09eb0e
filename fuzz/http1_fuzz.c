/* http1_fuzz.c — the HTTP/1.1 request-head parser and the chunked decoder
 * (src/net/http1.c) over arbitrary bytes: the head is parsed from a copy the
 * parser may modify; when it is complete and chunked, the rest is fed to the
 * chunked decoder in two slices split where the first byte says. */
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    uint8_t *copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    struct coffer_net__http1_head head;
    size_t used = 0;
    enum coffer_err r = coffer_net__http1_parse_head(copy, size, 4096, &head, &used);
    if (r == COFFER_OK && used > 0) {
        if (used > size || used > 4096 || head.header_count > COFFER_NET__MAX_HEADERS)
            abort();
        /* every string lies inside the head */
        for (size_t i = 0; i < head.header_count; i++)
            if ((uint8_t *)head.headers[i].name < copy || (uint8_t *)head.headers[i].value >= copy + used)
                abort();
        if (head.chunked) {
            struct coffer_net__chunked c;
            coffer_net__chunked_init(&c);
            struct coffer_buf body;
            coffer_buf_init(&body, 1 << 16, false);
            size_t rest = size - used;
            size_t split = rest > 0 ? data[used] % (rest + 1) : 0;
            size_t k1 = 0, k2 = 0;
            r = coffer_net__chunked_feed(&c, data + used, split, &body, &k1);
            if (r == COFFER_OK && !c.done && k1 == split)
                r = coffer_net__chunked_feed(&c, data + used + k1, rest - k1, &body, &k2);
            if (k1 + k2 > rest || body.size > (1 << 16))
                abort();
            coffer_buf_free(&body);
        }
    } else if (r == COFFER_OK && used != 0) {
        abort();
    }
    free(copy);
    return 0;
}
