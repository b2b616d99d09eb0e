/* model_config_fuzz.c — the --model_config_file text-format parser over
 * arbitrary bytes: a config or a line/column error, never a crash. */
#include <stdlib.h>

#include "coffer/serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    struct coffer_serve_config c;
    if (coffer_serve_config_parse(data, size, &c) == COFFER_OK) {
        for (size_t i = 0; i < c.model_count; i++)
            if (c.models[i].name == NULL || c.models[i].base_path == NULL || c.models[i].platform == NULL)
                abort();
        coffer_serve_config_free(&c);
    }
    return 0;
}
