/* Tests for image/: decoding PNG and JPEG, refusing bad files, resizing,
 * cropping and normalising into tensors. */
#include <stdio.h> /* before jpeglib.h */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#include "coffer/image.h"
#include "testutil.h"

/* A w x h RGB test pattern: smooth gradients JPEG keeps well. */
static uint8_t *pattern(uint32_t w, uint32_t h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    assert_non_null(p);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(x * 255 / (w - 1));
            q[1] = (uint8_t)(y * 255 / (h - 1));
            q[2] = 128;
        }
    return p;
}

static uint8_t *encode_jpeg(const uint8_t *rgb, uint32_t w, uint32_t h, int comps, size_t *size)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&c, &buf, &n);
    c.image_width = w;
    c.image_height = h;
    c.input_components = comps;
    c.in_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < h) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *size = n;
    return buf;
}

static uint8_t *encode_png(const uint8_t *px, uint32_t w, uint32_t h, png_uint_32 format, size_t *size)
{
    png_image img;
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    img.width = w;
    img.height = h;
    img.format = format;
    png_alloc_size_t n = 0;
    assert_true(png_image_write_to_memory(&img, NULL, &n, 0, px, 0, NULL));
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    assert_true(png_image_write_to_memory(&img, buf, &n, 0, px, 0, NULL));
    *size = n;
    return buf;
}

static void test_sniff(void **state)
{
    (void)state;
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0};
    static const uint8_t jpg[] = {0xff, 0xd8, 0xff, 0xe0};
    assert_int_equal(coffer_image_sniff(png, sizeof(png)), COFFER_IMAGE_PNG);
    assert_int_equal(coffer_image_sniff(jpg, sizeof(jpg)), COFFER_IMAGE_JPEG);
    assert_int_equal(coffer_image_sniff(jpg, 2), COFFER_IMAGE_UNKNOWN);
    assert_int_equal(coffer_image_sniff((const uint8_t *)"\x93NUMPY", 6), COFFER_IMAGE_UNKNOWN);
    struct coffer_image img;
    assert_int_equal(coffer_image_decode((const uint8_t *)"GIF89a", 6, 3, &img), COFFER_E_BAD_HEADER);
    assert_int_equal(coffer_image_decode(png, sizeof(png), 2, &img), COFFER_E_INVALID_ARG);
}

/* The committed digit sample: 8x8 grey, the held-out image's 0..16 values
 * times 15, so every pixel is a multiple of 15 and at most 240. */
static void test_png_digit_sample(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/models/digits/samples/000_7.png", COFFER_SOURCE_DIR);
    size_t n;
    uint8_t *d = tu_read(path, &n);
    struct coffer_image g, c;
    assert_int_equal(coffer_image_decode(d, n, 1, &g), COFFER_OK);
    assert_int_equal(g.width, 8);
    assert_int_equal(g.height, 8);
    int nonzero = 0;
    for (size_t i = 0; i < 64; i++) {
        assert_int_equal(g.pixels[i] % 15, 0);
        assert_true(g.pixels[i] <= 240);
        nonzero += g.pixels[i] != 0;
    }
    assert_true(nonzero > 5);
    assert_int_equal(coffer_image_decode(d, n, 3, &c), COFFER_OK);
    for (size_t i = 0; i < 64; i++)
        for (int k = 0; k < 3; k++)
            assert_int_equal(c.pixels[i * 3 + k], g.pixels[i]);
    coffer_image_free(&g);
    coffer_image_free(&c);
    free(d);
}

static void test_png_round_trip_and_alpha(void **state)
{
    (void)state;
    uint8_t *rgb = pattern(37, 21);
    size_t n;
    uint8_t *f = encode_png(rgb, 37, 21, PNG_FORMAT_RGB, &n);
    struct coffer_image img;
    assert_int_equal(coffer_image_decode(f, n, 3, &img), COFFER_OK);
    assert_int_equal(img.width, 37);
    assert_int_equal(img.height, 21);
    assert_memory_equal(img.pixels, rgb, 37 * 21 * 3);
    coffer_image_free(&img);
    free(f);
    /* RGBA: half transparent white over black is mid grey; fully
     * transparent is black */
    uint8_t rgba[2 * 4] = {255, 255, 255, 128, 10, 200, 30, 0};
    f = encode_png(rgba, 2, 1, PNG_FORMAT_RGBA, &n);
    assert_int_equal(coffer_image_decode(f, n, 3, &img), COFFER_OK);
    assert_true(img.pixels[0] > 100 && img.pixels[0] < 200);
    assert_int_equal(img.pixels[3], 0);
    assert_int_equal(img.pixels[4], 0);
    assert_int_equal(img.pixels[5], 0);
    coffer_image_free(&img);
    free(f);
    free(rgb);
}

static void test_jpeg_round_trip(void **state)
{
    (void)state;
    uint8_t *rgb = pattern(64, 48);
    size_t n;
    uint8_t *f = encode_jpeg(rgb, 64, 48, 3, &n);
    struct coffer_image img, grey;
    assert_int_equal(coffer_image_decode(f, n, 3, &img), COFFER_OK);
    assert_int_equal(img.width, 64);
    assert_int_equal(img.height, 48);
    int worst = 0;
    for (size_t i = 0; i < 64 * 48 * 3; i++) {
        int d = abs((int)img.pixels[i] - rgb[i]);
        worst = d > worst ? d : worst;
    }
    assert_true(worst <= 12); /* quality 95 on smooth gradients */
    /* grey by luminance: 0.299 R + 0.587 G + 0.114 B */
    assert_int_equal(coffer_image_decode(f, n, 1, &grey), COFFER_OK);
    for (size_t i = 0; i < 64 * 48; i++) {
        double y = 0.299 * rgb[i * 3] + 0.587 * rgb[i * 3 + 1] + 0.114 * rgb[i * 3 + 2];
        assert_true(abs((int)grey.pixels[i] - (int)(y + 0.5)) <= 12);
    }
    coffer_image_free(&img);
    coffer_image_free(&grey);
    free(f);
    /* a grey JPEG read as RGB repeats the grey */
    uint8_t g[16 * 8];
    for (size_t i = 0; i < sizeof(g); i++)
        g[i] = (uint8_t)(i * 2);
    f = encode_jpeg(g, 16, 8, 1, &n);
    assert_int_equal(coffer_image_decode(f, n, 3, &img), COFFER_OK);
    for (size_t i = 0; i < 16 * 8; i++) {
        assert_int_equal(img.pixels[i * 3], img.pixels[i * 3 + 1]);
        assert_int_equal(img.pixels[i * 3], img.pixels[i * 3 + 2]);
    }
    coffer_image_free(&img);
    free(f);
    free(rgb);
}

static void test_bad_files(void **state)
{
    (void)state;
    uint8_t *rgb = pattern(40, 30);
    size_t np, nj;
    uint8_t *p = encode_png(rgb, 40, 30, PNG_FORMAT_RGB, &np);
    uint8_t *j = encode_jpeg(rgb, 40, 30, 3, &nj);
    struct coffer_image img;
    /* every truncation before the closing IEND chunk (12 bytes, after all
     * the pixel data) fails with an error: never a crash, never a
     * half-decoded image reported as good */
    for (size_t cut = 0; cut < np - 12; cut += 3) {
        enum coffer_err r = coffer_image_decode(p, cut, 3, &img);
        assert_int_not_equal(r, COFFER_OK);
        assert_null(img.pixels);
    }
    for (size_t cut = 3; cut < nj - 2; cut += 11) {
        enum coffer_err r = coffer_image_decode(j, cut, 3, &img);
        if (r == COFFER_OK) /* libjpeg pads a cut-off scan with grey and warns; the size must still be right */
            assert_int_equal(img.width * img.height, 40 * 30);
        coffer_image_free(&img);
    }
    /* a flipped byte in the PNG's data fails its CRC or zlib check */
    p[np / 2] ^= 0x55;
    assert_int_not_equal(coffer_image_decode(p, np, 3, &img), COFFER_OK);
    p[np / 2] ^= 0x55;
    /* a declared size over the limit is refused before decoding */
    uint8_t big[64];
    memcpy(big, p, sizeof(big));
    big[16] = 0, big[17] = 1, big[18] = 0, big[19] = 0; /* width 65536 */
    assert_int_equal(coffer_image_decode(big, sizeof(big), 3, &img), COFFER_E_TOO_LARGE);
    assert_string_not_equal(coffer_err_detail(), "");
    /* a JPEG with its SOI only */
    assert_int_not_equal(coffer_image_decode(j, 4, 3, &img), COFFER_OK);
    free(p);
    free(j);
    free(rgb);
}

static void test_resample(void **state)
{
    (void)state;
    /* vertical stripes 0,255,0,255,... halved: a triangle filter as wide
     * as the shrink factor averages neighbours (about 128) where naive
     * sampling would give all 0 or all 255 */
    uint8_t px[8 * 2];
    for (size_t i = 0; i < sizeof(px); i++)
        px[i] = (i % 2) ? 255 : 0;
    struct coffer_image in = {.width = 8, .height = 2, .channels = 1, .pixels = px}, out;
    assert_int_equal(coffer_image_resample(&in, 0, 0, 8, 2, 4, 1, &out), COFFER_OK);
    for (int x = 1; x < 3; x++)
        assert_true(abs(out.pixels[x] - 128) <= 1);
    assert_true(out.pixels[0] > 60 && out.pixels[3] < 200);
    coffer_image_free(&out);
    /* the same size is the identity */
    assert_int_equal(coffer_image_resample(&in, 0, 0, 8, 2, 8, 2, &out), COFFER_OK);
    assert_memory_equal(out.pixels, px, sizeof(px));
    coffer_image_free(&out);
    /* a constant image stays constant at any size */
    uint8_t flat[5 * 3 * 3];
    memset(flat, 77, sizeof(flat));
    struct coffer_image f = {.width = 5, .height = 3, .channels = 3, .pixels = flat};
    uint32_t sizes[][2] = {{1, 1}, {2, 7}, {13, 11}, {5, 3}};
    for (size_t s = 0; s < 4; s++) {
        assert_int_equal(coffer_image_resample(&f, 0, 0, 5, 3, sizes[s][0], sizes[s][1], &out), COFFER_OK);
        for (size_t i = 0; i < (size_t)sizes[s][0] * sizes[s][1] * 3; i++)
            assert_int_equal(out.pixels[i], 77);
        coffer_image_free(&out);
    }
    assert_int_equal(coffer_image_resample(&f, 0, 0, 5, 3, 0, 3, &out), COFFER_E_INVALID_ARG);
    assert_int_equal(coffer_image_resample(&f, 0, 0, 0, 3, 3, 3, &out), COFFER_E_INVALID_ARG);
}

static void test_to_tensor(void **state)
{
    (void)state;
    uint8_t px[2 * 2 * 3] = {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110};
    struct coffer_image img = {.width = 2, .height = 2, .channels = 3, .pixels = px};
    struct coffer_image_prep p;
    coffer_image_prep_default(&p, 2, 2);
    float t[12];
    assert_int_equal(coffer_image_to_tensor(&img, &p, t), COFFER_OK);
    /* NCHW: plane of R, then G, then B */
    assert_float_equal(t[0], 0.0f, 1e-6);
    assert_float_equal(t[1], 30 / 255.0f, 1e-6);
    assert_float_equal(t[4], 10 / 255.0f, 1e-6);
    assert_float_equal(t[11], 110 / 255.0f, 1e-6);
    p.nhwc = true;
    p.scale = 1.0f;
    p.mean[1] = 10;
    p.std[1] = 2;
    assert_int_equal(coffer_image_to_tensor(&img, &p, t), COFFER_OK);
    assert_float_equal(t[1], 0.0f, 1e-6);  /* (10 - 10) / 2 */
    assert_float_equal(t[4], 15.0f, 1e-6); /* (40 - 10) / 2 */
    assert_float_equal(t[5], 50.0f, 1e-6);
    p.std[2] = 0;
    assert_int_equal(coffer_image_to_tensor(&img, &p, t), COFFER_E_INVALID_ARG);
    /* centre crop: a 6x2 image whose middle 2x2 is 200, to 2x2 with
     * keep_aspect, sees only the middle */
    uint8_t wide[12] = {0, 0, 200, 200, 0, 0, 0, 0, 200, 200, 0, 0};
    struct coffer_image w = {.width = 6, .height = 2, .channels = 1, .pixels = wide};
    struct coffer_image_prep q;
    coffer_image_prep_default(&q, 2, 2);
    q.keep_aspect = true;
    q.scale = 1.0f;
    float four[4];
    assert_int_equal(coffer_image_to_tensor(&w, &q, four), COFFER_OK);
    for (int i = 0; i < 4; i++)
        assert_float_equal(four[i], 200.0f, 0.5);
    float one;
    coffer_image_prep_default(&q, 1, 1);
    q.scale = 1.0f;
    q.keep_aspect = false; /* stretched, the whole image is averaged */
    assert_int_equal(coffer_image_to_tensor(&w, &q, &one), COFFER_OK);
    assert_true(one > 40 && one < 100);
    q.crop_fraction = 0;
    assert_int_equal(coffer_image_to_tensor(&w, &q, &one), COFFER_E_INVALID_ARG);
}

struct fault_arg {
    const uint8_t *png, *jpg;
    size_t np, nj;
};

static enum coffer_err fault_body(void *arg)
{
    struct fault_arg *a = arg;
    struct coffer_image img, out;
    enum coffer_err r = coffer_image_decode(a->png, a->np, 3, &img);
    if (r != COFFER_OK)
        return r;
    r = coffer_image_resample(&img, 0, 0, img.width, img.height, 7, 5, &out);
    coffer_image_free(&img);
    if (r != COFFER_OK)
        return r;
    coffer_image_free(&out);
    r = coffer_image_decode(a->jpg, a->nj, 1, &img);
    coffer_image_free(&img);
    return r;
}

static void test_alloc_faults(void **state)
{
    (void)state;
    uint8_t *rgb = pattern(16, 16);
    struct fault_arg a;
    a.png = encode_png(rgb, 16, 16, PNG_FORMAT_RGB, &a.np);
    a.jpg = encode_jpeg(rgb, 16, 16, 3, &a.nj);
    tu_fault_loop(fault_body, &a);
    free((void *)a.png);
    free((void *)a.jpg);
    free(rgb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff),         cmocka_unit_test(test_png_digit_sample),
        cmocka_unit_test(test_png_round_trip_and_alpha), cmocka_unit_test(test_jpeg_round_trip),
        cmocka_unit_test(test_bad_files),     cmocka_unit_test(test_resample),
        cmocka_unit_test(test_to_tensor),     cmocka_unit_test(test_alloc_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
