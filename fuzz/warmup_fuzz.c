/* warmup_fuzz.c — TF Serving warm-up file bytes (TFRecord-framed
 * PredictionLog records) -> the requests they hold (Predict, Classify,
 * Regress, MultiInference), each decoded
 * under small limits as the loader does; the same bytes also go through the
 * grpc.health.v1 HealthCheckRequest decoder. */
#include "coffer/serve.h"
#include "serve_limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct coffer_serve_limits lim;
    fuzz_serve_limits(&lim);
    struct coffer_serve_warmup_record *recs;
    size_t count;
    if (coffer_serve_warmup_parse(data, size, &recs, &count) == COFFER_OK) {
        for (size_t i = 0; i < count; i++) {
            if (recs[i].request < data || recs[i].request + recs[i].size > data + size)
                __builtin_trap(); /* records point into the input */
            struct coffer_serve_status st;
            if (recs[i].kind == COFFER_SERVE_LOG_PREDICT) {
                struct coffer_serve_predict_request req;
                if (coffer_serve_predict_request_decode(recs[i].request, recs[i].size, &lim, &req, &st) == COFFER_OK)
                    coffer_serve_predict_request_free(&req);
            } else if (recs[i].kind == COFFER_SERVE_LOG_MULTI) {
                struct coffer_serve_multi_request req;
                if (coffer_serve_multi_request_decode(recs[i].request, recs[i].size, &lim, &req, &st) == COFFER_OK)
                    coffer_serve_multi_request_free(&req);
            } else if (recs[i].kind == COFFER_SERVE_LOG_CLASSIFY || recs[i].kind == COFFER_SERVE_LOG_REGRESS) {
                struct coffer_serve_model_spec spec;
                struct coffer_serve_examples ex;
                if (coffer_serve_example_request_decode(recs[i].request, recs[i].size, &lim, &spec, &ex, &st) ==
                    COFFER_OK) {
                    coffer_serve_examples_free(&ex);
                    coffer_serve_model_spec_free(&spec);
                }
            } else {
                __builtin_trap(); /* the parser keeps only these kinds */
            }
        }
        coffer_free(recs);
    }
    char *service;
    struct coffer_serve_status st;
    if (coffer_serve_health_request_decode(data, size, &service, &st) == COFFER_OK)
        coffer_free(service);
    return 0;
}
