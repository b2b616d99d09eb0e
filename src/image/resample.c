/*
 * resample.c — resize, centre crop and normalisation of decoded images.
 *
 * Design: separable resampling with a triangle filter whose support grows
 * with the shrink factor (as PIL's antialiased bilinear does), so a 4x
 * reduction averages the 4x4 block under each output pixel instead of
 * sampling between two of them. Weights are computed once per output column
 * and row; the horizontal pass writes a float intermediate, the vertical
 * pass rounds to 8 bits.
 *
 * Trusts: the image struct (made by decode.c); sizes are checked again.
 */
#include <math.h>
#include <string.h>

#include "coffer/image.h"

struct taps {
    uint32_t *first;  /* per output index: first source index */
    uint32_t *count;  /* per output index: number of taps */
    float *w;         /* per output index: `stride` weights */
    uint32_t stride;
};

static void taps_free(struct taps *t)
{
    coffer_free(t->first);
    coffer_free(t->count);
    coffer_free(t->w);
}

/* Output i covers source [x0 + i * s, x0 + (i + 1) * s), s = len / out. */
static enum coffer_err taps_make(uint32_t in_size, double x0, double len, uint32_t out_size, struct taps *t)
{
    memset(t, 0, sizeof(*t));
    double s = len / out_size;
    double support = s > 1.0 ? s : 1.0; /* triangle half-width in source pixels */
    uint32_t stride = (uint32_t)ceil(support) * 2 + 2;
    t->first = coffer_calloc(out_size, sizeof(uint32_t));
    t->count = coffer_calloc(out_size, sizeof(uint32_t));
    t->w = coffer_calloc((size_t)out_size * stride, sizeof(float));
    if (t->first == NULL || t->count == NULL || t->w == NULL) {
        taps_free(t);
        return COFFER_E_NOMEM;
    }
    t->stride = stride;
    for (uint32_t i = 0; i < out_size; i++) {
        double center = x0 + (i + 0.5) * s;
        long lo = (long)floor(center - support);
        long hi = (long)ceil(center + support);
        if (lo < 0)
            lo = 0;
        if (hi > (long)in_size)
            hi = (long)in_size;
        double total = 0;
        uint32_t n = 0;
        float *w = t->w + (size_t)i * stride;
        for (long j = lo; j < hi && n < stride; j++) {
            double d = fabs((j + 0.5 - center) / support);
            double v = d < 1.0 ? 1.0 - d : 0.0;
            if (n == 0 && v == 0.0) {
                lo = j + 1;
                continue;
            }
            w[n++] = (float)v;
            total += v;
        }
        if (total <= 0.0) { /* a box outside the image: the nearest pixel */
            long k = (long)floor(center);
            lo = k < 0 ? 0 : (k >= (long)in_size ? (long)in_size - 1 : k);
            w[0] = 1.0f;
            n = 1;
            total = 1.0;
        }
        for (uint32_t k = 0; k < n; k++)
            w[k] = (float)(w[k] / total);
        t->first[i] = (uint32_t)lo;
        t->count[i] = n;
    }
    return COFFER_OK;
}

enum coffer_err coffer_image_resample(const struct coffer_image *in, double x0, double y0, double cw, double ch,
                                      uint32_t w, uint32_t h, struct coffer_image *out)
{
    if (in == NULL || out == NULL || in->pixels == NULL || w == 0 || h == 0 || w > COFFER_IMAGE_MAX_SIDE ||
        h > COFFER_IMAGE_MAX_SIDE || (uint64_t)w * h > COFFER_IMAGE_MAX_PIXELS || !(cw > 0) || !(ch > 0))
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "image: resize to %ux%u is not possible", w, h);
    memset(out, 0, sizeof(*out));
    uint32_t c = in->channels;
    struct taps tx, ty;
    enum coffer_err r = taps_make(in->width, x0, cw, w, &tx);
    if (r != COFFER_OK)
        return r;
    if ((r = taps_make(in->height, y0, ch, h, &ty)) != COFFER_OK) {
        taps_free(&tx);
        return r;
    }
    float *mid = coffer_calloc((size_t)in->height * w * c, sizeof(float));
    uint8_t *px = coffer_malloc((size_t)w * h * c);
    if (mid == NULL || px == NULL) {
        r = COFFER_E_NOMEM;
        goto done;
    }
    for (uint32_t y = 0; y < in->height; y++) {
        const uint8_t *src = in->pixels + (size_t)y * in->width * c;
        float *dst = mid + (size_t)y * w * c;
        for (uint32_t x = 0; x < w; x++) {
            const float *wt = tx.w + (size_t)x * tx.stride;
            for (uint32_t k = 0; k < c; k++) {
                float acc = 0;
                for (uint32_t j = 0; j < tx.count[x]; j++)
                    acc += wt[j] * src[(size_t)(tx.first[x] + j) * c + k];
                dst[(size_t)x * c + k] = acc;
            }
        }
    }
    for (uint32_t y = 0; y < h; y++) {
        const float *wt = ty.w + (size_t)y * ty.stride;
        for (uint32_t x = 0; x < w * c; x++) {
            float acc = 0;
            for (uint32_t j = 0; j < ty.count[y]; j++)
                acc += wt[j] * mid[(size_t)(ty.first[y] + j) * w * c + x];
            long v = lroundf(acc);
            px[(size_t)y * w * c + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    *out = (struct coffer_image){.width = w, .height = h, .channels = c, .pixels = px};
    px = NULL;
done:
    coffer_free(mid);
    coffer_free(px);
    taps_free(&tx);
    taps_free(&ty);
    return r;
}

void coffer_image_prep_default(struct coffer_image_prep *p, uint32_t width, uint32_t height)
{
    *p = (struct coffer_image_prep){.width = width, .height = height, .crop_fraction = 1.0f, .scale = 1.0f / 255};
    for (int k = 0; k < 3; k++)
        p->std[k] = 1.0f;
}

enum coffer_err coffer_image_to_tensor(const struct coffer_image *img, const struct coffer_image_prep *prep,
                                       float *out)
{
    if (img == NULL || prep == NULL || out == NULL || img->pixels == NULL || !(prep->crop_fraction > 0) ||
        prep->crop_fraction > 1)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "image: the crop fraction must be in (0, 1]");
    for (uint32_t k = 0; k < img->channels; k++)
        if (prep->std[k] == 0)
            return COFFER_FAIL(COFFER_E_INVALID_ARG, "image: std of channel %u is 0", k);
    /* the source box: the whole image, or the centred box of the output's
     * aspect ratio covering crop_fraction of the shorter side */
    double x0 = 0, y0 = 0, cw = img->width, ch = img->height;
    if (prep->keep_aspect || prep->crop_fraction < 1) {
        double want = (double)prep->width / prep->height;
        if ((double)img->width / img->height > want) {
            ch = img->height * (double)prep->crop_fraction;
            cw = ch * want;
        } else {
            cw = img->width * (double)prep->crop_fraction;
            ch = cw / want;
        }
        x0 = (img->width - cw) / 2;
        y0 = (img->height - ch) / 2;
    }
    struct coffer_image sized;
    const struct coffer_image *src = img;
    if (x0 != 0 || y0 != 0 || cw != img->width || ch != img->height || img->width != prep->width ||
        img->height != prep->height) {
        enum coffer_err r = coffer_image_resample(img, x0, y0, cw, ch, prep->width, prep->height, &sized);
        if (r != COFFER_OK)
            return r;
        src = &sized;
    }
    uint32_t c = src->channels;
    size_t plane = (size_t)src->width * src->height;
    for (size_t i = 0; i < plane; i++)
        for (uint32_t k = 0; k < c; k++) {
            float v = ((float)src->pixels[i * c + k] * prep->scale - prep->mean[k]) / prep->std[k];
            out[prep->nhwc ? i * c + k : (size_t)k * plane + i] = v;
        }
    if (src == &sized)
        coffer_image_free(&sized);
    return COFFER_OK;
}
