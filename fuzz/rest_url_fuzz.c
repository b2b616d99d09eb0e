/* rest_url_fuzz.c — the REST URL grammar over arbitrary request targets
 * (the first byte picks the method), and the error JSON of any message. */
#include <stdlib.h>
#include <string.h>

#include "coffer/serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    if (size == 0)
        return 0;
    static const char *const methods[] = {"GET", "POST", "OPTIONS", "PUT"};
    const char *method = methods[data[0] & 3];
    struct coffer_serve_rest_route r;
    struct coffer_serve_status st;
    enum coffer_err e = coffer_serve_rest_route_parse(method, (const char *)data + 1, size - 1, &r, &st);
    if (e == COFFER_OK) {
        if (r.kind != COFFER_SERVE_REST_NONE && (r.name == NULL || r.name[0] == '\0'))
            abort();
        coffer_serve_rest_route_free(&r);
    } else {
        char *json;
        size_t n;
        if (coffer_serve_rest_error_json(st.message, &json, &n) == COFFER_OK)
            coffer_free(json);
    }
    return 0;
}
