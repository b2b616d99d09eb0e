/* gen_serve_seeds.c — writes the binary PredictRequest seeds of
 * fuzz/seeds/predict_request with coffer's own encoder: tensor_content and
 * typed-field inputs, int64 and string inputs, a version and a version
 * label, an output filter; numeric inputs in tensor_content alone (the
 * in-place decoder's form). Usage: gen_serve_seeds DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/serve.h"

static void put(const char *dir, const char *name, const struct coffer_serve_predict_request *req, bool content)
{
    uint8_t *pb;
    size_t n;
    if (coffer_serve_predict_request_encode(req, content, &pb, &n) != COFFER_OK)
        exit(1);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(pb, 1, n, f) != n || fclose(f) != 0)
        exit(1);
    coffer_free(pb);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    struct coffer_serve_tensor ts[3];
    int64_t img[] = {1, 4, 4, 3}, ids[] = {3}, s[] = {2};
    if (coffer_serve_tensor_init(&ts[0], "input", COFFER_SERVE_DT_FLOAT, 4, img) != COFFER_OK ||
        coffer_serve_tensor_init(&ts[1], "ids", COFFER_SERVE_DT_INT64, 1, ids) != COFFER_OK ||
        coffer_serve_tensor_init(&ts[2], "s", COFFER_SERVE_DT_STRING, 1, s) != COFFER_OK)
        return 1;
    for (size_t i = 0; i < ts[0].count; i++)
        ((float *)ts[0].data)[i] = (float)i / 7.0f;
    ((int64_t *)ts[1].data)[2] = -5;
    if (coffer_serve_tensor_set_string(&ts[2], 0, "\x89PNG", 4) != COFFER_OK)
        return 1;
    char *filter[] = {"probs"};
    struct coffer_serve_predict_request req = {
        .spec = {.name = "resnet50-v15-fp32", .signature_name = "serving_default"},
        .inputs = ts, .input_count = 1};
    put(argv[1], "resnet_tensor_content.pb", &req, true);
    put(argv[1], "resnet_float_val.pb", &req, false);
    req.spec.has_version = true;
    req.spec.version = 3;
    req.input_count = 3;
    req.output_filter = filter;
    req.output_filter_count = 1;
    put(argv[1], "three_inputs_typed.pb", &req, false);
    req.spec.has_version = false;
    req.spec.version_label = "stable";
    put(argv[1], "three_inputs_content.pb", &req, true);
    /* numeric inputs only, in tensor_content: the in-place decoder's form */
    req.input_count = 2;
    req.spec.version_label = NULL;
    req.spec.has_version = true;
    req.spec.version = 12;
    put(argv[1], "two_inputs_content_version.pb", &req, true);
    req.spec.has_version = false;
    req.spec.version_label = "stable";
    /* a scalar-like float input with a version label */
    coffer_serve_tensor_free(&ts[0]);
    int64_t one[] = {1};
    if (coffer_serve_tensor_init(&ts[0], "input", COFFER_SERVE_DT_FLOAT, 1, one) != COFFER_OK)
        return 1;
    req.input_count = 1;
    put(argv[1], "short_typed.pb", &req, false);
    for (int i = 0; i < 3; i++)
        coffer_serve_tensor_free(&ts[i]);
    return 0;
}
