/*
 * predict_input.c — `coffer predict`'s inputs: tensor files and images.
 *
 * Design: each input is loaded as one example (float32): a tensor file as
 * stored (minus a leading batch dimension of 1), an image decoded by
 * image/ and resized/normalised by the flags. Examples are laid end to end
 * to fill --batch, cycling through the inputs in order.
 *
 * Trusts: nothing in the files (image/ and nn/'s tensor readers check
 * them); flags are parsed strictly.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "coffer/nn.h"
#include "predict_input.h"

const char predict_input_help[] =
    "Images (PNG, JPEG) become float32 tensors by these flags:\n"
    "  --size HxW       resize to H x W (default: the image's own size)\n"
    "  --channels 1|3   grey or RGB (default 3)\n"
    "  --layout L       nchw (default) or nhwc\n"
    "  --scale S        pixel * S before mean/std (default 1/255; a fraction A/B is allowed)\n"
    "  --mean M[,M,M]   subtracted per channel (default 0)\n"
    "  --std S[,S,S]    divided per channel (default 1)\n"
    "  --keep-aspect    resize the shorter side and crop the centre, instead of stretching\n"
    "  --crop-fraction F  crop the centre F of the shorter side first (as torchvision's\n"
    "                   Resize(256) + CenterCrop(224) is 0.875; implies --keep-aspect)\n"
    "  --imagenet       torchvision's ImageNet preprocessing: --size 224x224 --crop-fraction 0.875\n"
    "                   --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225\n";

void predict_input_defaults(struct predict_input_opts *o)
{
    memset(o, 0, sizeof(*o));
    coffer_image_prep_default(&o->prep, 0, 0);
    o->channels = 3;
}

static bool parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !isfinite(v))
        return false;
    if (*end == '/') {
        const char *d = end + 1;
        double w = strtod(d, &end);
        if (end == d || w == 0 || !isfinite(w))
            return false;
        v /= w;
    }
    *out = (float)v;
    return *end == '\0';
}

/* "a" (all three channels) or "a,b,c" */
static bool parse_triple(const char *s, float out[3])
{
    char buf[128];
    if (strlen(s) >= sizeof(buf))
        return false;
    strcpy(buf, s);
    char *parts[3];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        if (n == 3)
            return false;
        parts[n++] = t;
    }
    if (n != 1 && n != 3)
        return false;
    for (int k = 0; k < 3; k++)
        if (!parse_float(parts[n == 1 ? 0 : k], &out[k]))
            return false;
    return true;
}

static bool parse_size(const char *s, uint32_t *w, uint32_t *h)
{
    char *end;
    unsigned long a = strtoul(s, &end, 10), b = a;
    if (end == s)
        return false;
    if (*end == 'x' || *end == 'X') {
        const char *t = end + 1;
        b = strtoul(t, &end, 10);
        if (end == t)
            return false;
    }
    if (*end != '\0' || a == 0 || b == 0 || a > 16384 || b > 16384)
        return false;
    *h = (uint32_t)a;
    *w = (uint32_t)b;
    return true;
}

int predict_input_option(struct predict_input_opts *o, const char *name, const char *arg)
{
    struct coffer_image_prep *p = &o->prep;
    bool ok = true;
    if (strcmp(name, "size") == 0) {
        ok = parse_size(arg, &p->width, &p->height);
    } else if (strcmp(name, "channels") == 0) {
        ok = strcmp(arg, "1") == 0 || strcmp(arg, "3") == 0;
        o->channels = (unsigned)(arg[0] - '0');
    } else if (strcmp(name, "layout") == 0) {
        ok = strcmp(arg, "nchw") == 0 || strcmp(arg, "nhwc") == 0;
        p->nhwc = strcmp(arg, "nhwc") == 0;
    } else if (strcmp(name, "scale") == 0) {
        ok = parse_float(arg, &p->scale) && p->scale != 0;
    } else if (strcmp(name, "mean") == 0) {
        ok = parse_triple(arg, p->mean);
    } else if (strcmp(name, "std") == 0) {
        ok = parse_triple(arg, p->std) && p->std[0] != 0 && p->std[1] != 0 && p->std[2] != 0;
    } else if (strcmp(name, "keep-aspect") == 0) {
        p->keep_aspect = true;
    } else if (strcmp(name, "crop-fraction") == 0) {
        ok = parse_float(arg, &p->crop_fraction) && p->crop_fraction > 0 && p->crop_fraction <= 1;
        p->keep_aspect = true;
    } else if (strcmp(name, "imagenet") == 0) {
        static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        p->width = p->height = 224;
        p->crop_fraction = 0.875f;
        p->keep_aspect = true;
        p->scale = 1.0f / 255;
        memcpy(p->mean, mean, sizeof(mean));
        memcpy(p->std, std, sizeof(std));
        o->channels = 3;
    } else {
        return 0;
    }
    if (!ok) {
        cli_usage("predict", "bad value '%s' for --%s", arg, name);
        return -1;
    }
    return 1;
}

/* One example: its shape (without a batch dimension) and values. */
struct example {
    size_t rank;
    int64_t dims[COFFER_SERVE_MAX_RANK];
    float *values;
    size_t count;
};

static enum coffer_err load_image(const char *path, const uint8_t *d, size_t n, const struct predict_input_opts *o,
                                  struct example *ex)
{
    struct coffer_image img;
    enum coffer_err r = coffer_image_decode(d, n, o->channels, &img);
    if (r != COFFER_OK) {
        coffer_err_context("%s", path);
        return r;
    }
    struct coffer_image_prep p = o->prep;
    if (p.width == 0) {
        p.width = img.width;
        p.height = img.height;
    }
    size_t c = o->channels;
    ex->count = c * p.width * p.height;
    ex->values = coffer_malloc(ex->count * sizeof(float));
    if (ex->values == NULL) {
        coffer_image_free(&img);
        return COFFER_E_NOMEM;
    }
    ex->rank = 3;
    int64_t chw[3] = {(int64_t)c, p.height, p.width}, hwc[3] = {p.height, p.width, (int64_t)c};
    memcpy(ex->dims, p.nhwc ? hwc : chw, sizeof(chw));
    r = coffer_image_to_tensor(&img, &p, ex->values);
    coffer_image_free(&img);
    if (r != COFFER_OK)
        coffer_err_context("%s", path);
    return r;
}

static enum coffer_err load_tensor(const char *path, const uint8_t *d, size_t n, struct example *ex)
{
    struct coffer_nn_tensor t;
    enum coffer_err r = coffer_nn_tensor_read_any(d, n, &t);
    if (r != COFFER_OK) {
        coffer_err_context("%s", path);
        return r;
    }
    if (t.dtype != COFFER_NN_FLOAT) {
        coffer_nn_tensor_release(&t);
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "%s: coffer predict sends float32 tensors", path);
    }
    size_t d0 = t.rank > 0 && t.dims[0] == 1 ? 1 : 0;
    if ((size_t)t.rank - d0 + 1 > COFFER_SERVE_MAX_RANK) {
        coffer_nn_tensor_release(&t);
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "%s: rank %d is over the limit", path, (int)t.rank);
    }
    ex->rank = (size_t)t.rank - d0;
    for (size_t i = 0; i < ex->rank; i++)
        ex->dims[i] = t.dims[i + d0];
    ex->count = t.size / sizeof(float);
    ex->values = coffer_malloc(t.size > 0 ? t.size : 1);
    if (ex->values != NULL)
        memcpy(ex->values, t.data, t.size);
    coffer_nn_tensor_release(&t);
    return ex->values != NULL ? COFFER_OK : COFFER_E_NOMEM;
}

enum coffer_err predict_inputs_load(char *const *paths, int n, const char *name, int batch,
                                    const struct predict_input_opts *o, struct coffer_serve_tensor *out)
{
    struct example *ex = coffer_calloc((size_t)n, sizeof(*ex));
    if (ex == NULL)
        return COFFER_E_NOMEM;
    enum coffer_err r = COFFER_OK;
    for (int i = 0; i < n && r == COFFER_OK; i++) {
        uint8_t *d;
        size_t size;
        if ((r = coffer_file_read_all(paths[i], 1u << 30, &d, &size)) != COFFER_OK)
            break;
        if (coffer_image_sniff(d, size) != COFFER_IMAGE_UNKNOWN)
            r = load_image(paths[i], d, size, o, &ex[i]);
        else
            r = load_tensor(paths[i], d, size, &ex[i]);
        coffer_free(d);
        if (r == COFFER_OK && i > 0 &&
            (ex[i].rank != ex[0].rank || memcmp(ex[i].dims, ex[0].dims, ex[0].rank * sizeof(int64_t)) != 0))
            r = COFFER_FAIL(COFFER_E_INVALID_ARG, "%s: its shape differs from %s's (every input must give the same)",
                            paths[i], paths[0]);
    }
    if (r == COFFER_OK) {
        int64_t dims[COFFER_SERVE_MAX_RANK];
        dims[0] = batch;
        memcpy(dims + 1, ex[0].dims, ex[0].rank * sizeof(int64_t));
        if ((r = coffer_serve_tensor_init(out, name, COFFER_SERVE_DT_FLOAT, ex[0].rank + 1, dims)) == COFFER_OK)
            for (int b = 0; b < batch; b++)
                memcpy((float *)out->data + (size_t)b * ex[0].count, ex[b % n].values, ex[0].count * sizeof(float));
    }
    for (int i = 0; i < n; i++)
        coffer_free(ex[i].values);
    coffer_free(ex);
    return r;
}
