/* grpc_frame_fuzz.c — gRPC message framing (Length-Prefixed-Message through
 * coffer_rd), gzip inflation with a cap, grpc-timeout parsing and the
 * grpc-message percent-encoding (src/net/grpc.c) over arbitrary bytes. */
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct coffer_rd rd;
    coffer_rd_init(&rd, data, size);
    for (int i = 0; i < 64 && coffer_rd_left(&rd) > 0; i++) {
        bool compressed;
        const uint8_t *msg;
        size_t msg_size;
        size_t before = rd.pos;
        if (coffer_net_grpc_frame_parse(&rd, 1 << 16, &compressed, &msg, &msg_size) != COFFER_OK) {
            if (rd.pos != before)
                abort(); /* a failed parse never moves the cursor */
            break;
        }
        if (msg_size > (1 << 16) || rd.pos != before + 5 + msg_size)
            abort();
        if (compressed) {
            struct coffer_buf out;
            coffer_buf_init(&out, 0, false);
            if (coffer_net_gzip_inflate(msg, msg_size, 1 << 16, &out) == COFFER_OK && out.size > (1 << 16))
                abort();
            coffer_buf_free(&out);
        }
    }
    /* the same bytes as a header value */
    char text[64];
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    uint64_t ns;
    (void)coffer_net_grpc_timeout_parse(text, &ns);
    char enc[3 * sizeof(text) + 1];
    coffer_net__grpc_percent_encode(text, enc, sizeof(enc));
    return 0;
}
