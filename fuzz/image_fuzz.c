/* libFuzzer target: PNG and JPEG decoding (grey and RGB) and the resize
 * and normalisation that follow it in `coffer predict`. */
#include <stdlib.h>

#include "coffer/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned channels = size > 0 && (data[size - 1] & 1) ? 1 : 3;
    struct coffer_image img;
    if (coffer_image_decode(data, size, channels, &img) != COFFER_OK)
        return 0;
    if ((uint64_t)img.width * img.height <= (1u << 20)) {
        struct coffer_image_prep p;
        coffer_image_prep_default(&p, 7, 5);
        p.crop_fraction = 0.875f;
        float *t = malloc(sizeof(float) * 7 * 5 * channels);
        if (t != NULL && coffer_image_to_tensor(&img, &p, t) != COFFER_OK)
            abort(); /* a decoded image always converts */
        free(t);
    }
    coffer_image_free(&img);
    return 0;
}
