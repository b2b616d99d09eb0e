/*
 * coffer/image.h — image files to input tensors, for the serving client
 * (`coffer predict -i photo.jpg`): PNG through libpng, JPEG through libjpeg,
 * a separable antialiased resize, a centre crop and per-channel
 * normalisation into float32 NCHW or NHWC.
 *
 * Decoding trusts nothing in the file: the format is recognised and the
 * declared size read with the bounds-checked reader, sizes are capped
 * (COFFER_IMAGE_MAX_SIDE, COFFER_IMAGE_MAX_PIXELS) before anything is
 * allocated, and every libpng/libjpeg error comes back as an error naming
 * the format and what was wrong.
 */
#ifndef COFFER_IMAGE_H
#define COFFER_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/base.h"

#define COFFER_IMAGE_MAX_SIDE 32768u
#define COFFER_IMAGE_MAX_PIXELS (64u << 20)

enum coffer_image_format { COFFER_IMAGE_UNKNOWN = 0, COFFER_IMAGE_PNG, COFFER_IMAGE_JPEG };

/* 8-bit pixels, rows top to bottom, channels interleaved (1: grey, 3: RGB). */
struct coffer_image {
    uint32_t width, height, channels;
    uint8_t *pixels;
};

/* Which format the bytes are, by their signature (UNKNOWN if neither). */
enum coffer_image_format coffer_image_sniff(const uint8_t *data, size_t size);

/* Decodes a PNG or JPEG into `channels` (1 or 3) channels: colour is
 * converted to grey by luminance, grey repeated into RGB, alpha dropped
 * (composited over black), 16-bit samples reduced to 8. */
COFFER_NODISCARD enum coffer_err coffer_image_decode(const uint8_t *data, size_t size, unsigned channels,
                                                     struct coffer_image *out);
void coffer_image_free(struct coffer_image *img);

/* How an image becomes a tensor: resized so that a centre crop of
 * `crop_fraction` (0 < f <= 1) of the shorter side fills height x width
 * (crop_fraction 1 with keep_aspect false stretches the whole image);
 * then value = (pixel * scale - mean[c]) / std[c]. */
struct coffer_image_prep {
    uint32_t width, height;
    bool keep_aspect;
    float crop_fraction;
    float scale;
    float mean[3], std[3];
    bool nhwc; /* default false: channels first, as torchvision models take them */
};

/* The defaults: pixel / 255, mean 0, std 1, NCHW, stretch to size. */
void coffer_image_prep_default(struct coffer_image_prep *p, uint32_t width, uint32_t height);

/* Resamples to w x h with a triangle (bilinear) filter widened by the
 * scale factor when shrinking, so downscaling averages instead of
 * aliasing; the source box is (x0, y0, cw, ch) in source pixels. */
COFFER_NODISCARD enum coffer_err coffer_image_resample(const struct coffer_image *in, double x0, double y0,
                                                       double cw, double ch, uint32_t w, uint32_t h,
                                                       struct coffer_image *out);

/* Writes channels * height * width floats to out, by prep. */
COFFER_NODISCARD enum coffer_err coffer_image_to_tensor(const struct coffer_image *img,
                                                        const struct coffer_image_prep *prep, float *out);

#endif
