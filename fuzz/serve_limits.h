/* serve_limits.h — the decode limits the serve fuzz targets share: the
 * server's defaults, scaled down so a fuzzer's inputs reach every cap. */
#ifndef COFFER_FUZZ_SERVE_LIMITS_H
#define COFFER_FUZZ_SERVE_LIMITS_H

#include "coffer/serve.h"

static inline void fuzz_serve_limits(struct coffer_serve_limits *lim)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    coffer_serve_limits_default(lim);
    lim->max_tensor_size = 1 << 20;
    lim->max_total_size = 4 << 20;
    lim->max_tensors = 64;
}

#endif
