/*
 * predict_input.h — the inputs of `coffer predict`: tensor files (.npy,
 * ONNX .pb) and images (PNG, JPEG) made into one batched float32 tensor.
 */
#ifndef COFFER_CLI_PREDICT_INPUT_H
#define COFFER_CLI_PREDICT_INPUT_H

#include "coffer/image.h"
#include "coffer/serve.h"

struct predict_input_opts {
    struct coffer_image_prep prep; /* width/height 0: the image's own size */
    unsigned channels;             /* 1 or 3 */
};

/* The options' help text, for cmd_predict_help. */
extern const char predict_input_help[];

void predict_input_defaults(struct predict_input_opts *o);
/* Applies one image option (its long name without "--", and its argument);
 * 1 if it was one, 0 if not, -1 (with a usage message printed) if its value
 * is bad. */
int predict_input_option(struct predict_input_opts *o, const char *name, const char *arg);

/* Example k of the batch is input k mod n; every input must give the same
 * example shape. A tensor file's leading dimension of 1 is its batch
 * dimension; an image gives [C, H, W] (or [H, W, C] with nhwc). */
COFFER_NODISCARD enum coffer_err predict_inputs_load(char *const *paths, int n, const char *name, int batch,
                                                     const struct predict_input_opts *o,
                                                     struct coffer_serve_tensor *out);

#endif
