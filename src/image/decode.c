/*
 * decode.c — PNG (libpng's simplified API) and JPEG (libjpeg) from memory.
 *
 * Design: the format is recognised by its signature and, for PNG, the
 * declared size read from IHDR with the bounds-checked reader, so that an
 * oversized image is refused before libpng allocates anything; JPEG's size
 * comes from jpeg_read_header and is checked before decompression starts.
 * libjpeg reports errors by calling error_exit, which here longjmps back
 * with the library's message kept for the error detail.
 *
 * Trusts: nothing in the input; the libraries' own bounds checks for the
 * compressed data.
 */
#include <stdio.h> /* before jpeglib.h, which uses FILE and size_t */
#include <string.h>

#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>

#include "coffer/image.h"

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

enum coffer_image_format coffer_image_sniff(const uint8_t *data, size_t size)
{
    if (size >= sizeof(png_sig) && memcmp(data, png_sig, sizeof(png_sig)) == 0)
        return COFFER_IMAGE_PNG;
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return COFFER_IMAGE_JPEG;
    return COFFER_IMAGE_UNKNOWN;
}

void coffer_image_free(struct coffer_image *img)
{
    if (img == NULL)
        return;
    coffer_free(img->pixels);
    memset(img, 0, sizeof(*img));
}

static enum coffer_err check_size(const char *fmt, uint32_t w, uint32_t h)
{
    if (w == 0 || h == 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "%s: image of %ux%u pixels", fmt, w, h);
    if (w > COFFER_IMAGE_MAX_SIDE || h > COFFER_IMAGE_MAX_SIDE || (uint64_t)w * h > COFFER_IMAGE_MAX_PIXELS)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "%s: image of %ux%u pixels is over the limit (%u per side, %u in all)",
                           fmt, w, h, COFFER_IMAGE_MAX_SIDE, COFFER_IMAGE_MAX_PIXELS);
    return COFFER_OK;
}

static enum coffer_err decode_png(const uint8_t *data, size_t size, unsigned channels, struct coffer_image *out)
{
    struct coffer_rd rd;
    coffer_rd_init(&rd, data, size);
    uint32_t len, type, w, h;
    enum coffer_err r;
    if ((r = coffer_rd_skip(&rd, sizeof(png_sig))) != COFFER_OK || (r = coffer_rd_u32be(&rd, &len)) != COFFER_OK ||
        (r = coffer_rd_u32be(&rd, &type)) != COFFER_OK || (r = coffer_rd_u32be(&rd, &w)) != COFFER_OK ||
        (r = coffer_rd_u32be(&rd, &h)) != COFFER_OK)
        return COFFER_FAIL(COFFER_E_TRUNCATED, "PNG: the file ends inside its header (%zu bytes)", size);
    if (type != 0x49484452u /* IHDR */ || len != 13)
        return COFFER_FAIL(COFFER_E_MALFORMED, "PNG: the first chunk is not a 13-byte IHDR");
    if ((r = check_size("PNG", w, h)) != COFFER_OK)
        return r;
    png_image img;
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, data, size))
        return COFFER_FAIL(COFFER_E_MALFORMED, "PNG: %s", img.message);
    if (img.width != w || img.height != h) {
        png_image_free(&img);
        return COFFER_FAIL(COFFER_E_INTERNAL, "PNG: libpng read another size than IHDR declares");
    }
    img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    size_t n = (size_t)w * h * channels;
    uint8_t *px = coffer_malloc(n);
    if (px == NULL) {
        png_image_free(&img);
        return COFFER_E_NOMEM;
    }
    png_color black = {0, 0, 0};
    if (!png_image_finish_read(&img, &black, px, (png_int_32)(w * channels), NULL)) {
        enum coffer_err e = COFFER_FAIL(COFFER_E_MALFORMED, "PNG: %s", img.message);
        png_image_free(&img);
        coffer_free(px);
        return e;
    }
    *out = (struct coffer_image){.width = w, .height = h, .channels = channels, .pixels = px};
    return COFFER_OK;
}

struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void jpeg_on_error(j_common_ptr cinfo)
{
    struct jpeg_err *e = (struct jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo)
{
    (void)cinfo; /* warnings (say, extraneous bytes) are not printed */
}

static enum coffer_err decode_jpeg(const uint8_t *data, size_t size, unsigned channels, struct coffer_image *out)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_err err;
    uint8_t *volatile px = NULL;
    volatile enum coffer_err r = COFFER_OK;
    memset(&err, 0, sizeof(err));
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    err.mgr.output_message = jpeg_on_message;
    if (setjmp(err.jump) != 0) {
        jpeg_destroy_decompress(&cinfo);
        coffer_free(px);
        return r != COFFER_OK ? r : COFFER_FAIL(COFFER_E_MALFORMED, "JPEG: %s", err.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if ((r = check_size("JPEG", cinfo.image_width, cinfo.image_height)) != COFFER_OK)
        longjmp(err.jump, 1);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        r = COFFER_FAIL(COFFER_E_UNSUPPORTED, "JPEG: CMYK images are not supported (convert to RGB first)");
        longjmp(err.jump, 1);
    }
    cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != (int)channels) {
        r = COFFER_FAIL(COFFER_E_INTERNAL, "JPEG: libjpeg gave %d components, not %u", cinfo.output_components,
                        channels);
        longjmp(err.jump, 1);
    }
    size_t stride = (size_t)cinfo.output_width * channels;
    px = coffer_malloc(stride * cinfo.output_height);
    if (px == NULL) {
        r = COFFER_E_NOMEM;
        longjmp(err.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = px + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    *out = (struct coffer_image){
        .width = cinfo.output_width, .height = cinfo.output_height, .channels = channels, .pixels = px};
    jpeg_destroy_decompress(&cinfo);
    return COFFER_OK;
}

enum coffer_err coffer_image_decode(const uint8_t *data, size_t size, unsigned channels, struct coffer_image *out)
{
    if (out == NULL || (data == NULL && size > 0) || (channels != 1 && channels != 3))
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "image: channels must be 1 or 3");
    memset(out, 0, sizeof(*out));
    switch (coffer_image_sniff(data, size)) {
    case COFFER_IMAGE_PNG: return decode_png(data, size, channels, out);
    case COFFER_IMAGE_JPEG: return decode_jpeg(data, size, channels, out);
    default: return COFFER_FAIL(COFFER_E_BAD_HEADER, "image: neither a PNG nor a JPEG file (by its first bytes)");
    }
}
