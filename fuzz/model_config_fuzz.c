/* model_config_fuzz.c — the text-format config parsers (model config, ssl,
 * monitoring, batching) over arbitrary bytes: a config or a line/column
 * error, never a crash. */
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
    struct coffer_serve_ssl_config ssl;
    if (coffer_serve_ssl_config_parse(data, size, &ssl) == COFFER_OK) {
        if (ssl.server_key == NULL || ssl.server_cert == NULL || ssl.custom_ca == NULL)
            abort();
        coffer_serve_ssl_config_free(&ssl);
    }
    struct coffer_serve_monitoring_config mon;
    if (coffer_serve_monitoring_config_parse(data, size, &mon) == COFFER_OK)
        coffer_serve_monitoring_config_free(&mon);
    struct coffer_serve_batching_config bat;
    if (coffer_serve_batching_config_parse(data, size, &bat) == COFFER_OK) {
        for (size_t i = 1; i < bat.allowed_batch_size_count; i++)
            if (bat.allowed_batch_sizes[i] <= bat.allowed_batch_sizes[i - 1])
                abort();
        coffer_serve_batching_config_free(&bat);
    }
    return 0;
}
