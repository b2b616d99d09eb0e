/*
 * calib.c — int8 calibration tables (include/coffer/nn.h): written from
 * the ranges a model loaded with calibrate recorded (kernels/fast.c,
 * q8_note), read at an int8 load into m->qr.
 *
 * The table is text, so that an operator can read and diff it:
 *
 *     # coffer calibration table 1
 *     LO HI NAME
 *
 * one line a value, LO <= HI finite floats, NAME the value's name in the
 * ONNX graph to the end of the line (names may hold spaces, not line
 * breaks). Lines starting with '#' after the header, and empty ones, are
 * skipped. Read through coffer_rd; every error names the line.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_int.h"

#define CALIB_HEADER "# coffer calibration table 1"
#define CALIB_LINE_MAX 4096

/* The next line of rd (without its '\n' or "\r\n") as [*p, *p + *n). */
static enum coffer_err next_line(struct coffer_rd *rd, const uint8_t **p, size_t *n)
{
    size_t left = coffer_rd_left(rd), len = 0;
    const uint8_t *s = rd->data + rd->pos;
    while (len < left && s[len] != '\n')
        len++;
    enum coffer_err r = coffer_rd_bytes(rd, len, p);
    if (r == COFFER_OK && coffer_rd_left(rd) > 0)
        r = coffer_rd_skip(rd, 1);
    if (r == COFFER_OK && len > 0 && s[len - 1] == '\r')
        len--;
    *n = len;
    return r;
}

/* A float token of [*p, end) up to the next space, *p moved past it and
 * one space. */
static bool take_float(const uint8_t **p, const uint8_t *end, float *out)
{
    char tok[64];
    size_t k = 0;
    while (*p + k < end && (*p)[k] != ' ')
        k++;
    if (k == 0 || k >= sizeof(tok))
        return false;
    memcpy(tok, *p, k);
    tok[k] = '\0';
    char *e;
    *out = strtof(tok, &e);
    if (*e != '\0' || !isfinite(*out))
        return false;
    *p += k + (*p + k < end);
    return true;
}

enum coffer_err nn_calib_parse(struct coffer_nn_model *m, const void *text, size_t size)
{
    struct coffer_rd rd;
    coffer_rd_init(&rd, text, size);
    struct nn_qrange *qr = coffer_calloc(m->g.n_vals ? m->g.n_vals : 1, sizeof(*qr));
    if (qr == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "calibration table: %zu ranges", m->g.n_vals);
    const uint8_t *p;
    size_t n, line = 1, count = 0;
    enum coffer_err r = next_line(&rd, &p, &n);
    if (r != COFFER_OK || n != strlen(CALIB_HEADER) || memcmp(p, CALIB_HEADER, n) != 0) {
        coffer_free(qr);
        return COFFER_FAIL(COFFER_E_MALFORMED, "calibration table: line 1 is not '%s'", CALIB_HEADER);
    }
    while (coffer_rd_left(&rd) > 0) {
        line++;
        if ((r = next_line(&rd, &p, &n)) != COFFER_OK)
            break;
        if (n == 0 || p[0] == '#')
            continue;
        const uint8_t *end = p + n;
        float lo, hi;
        if (n > CALIB_LINE_MAX) {
            r = COFFER_FAIL(COFFER_E_TOO_LARGE, "calibration table: line %zu: %zu bytes (cap %d)", line, n,
                            CALIB_LINE_MAX);
            break;
        }
        if (!take_float(&p, end, &lo) || !take_float(&p, end, &hi) || lo > hi) {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "calibration table: line %zu: expected 'LO HI NAME', LO <= HI finite",
                            line);
            break;
        }
        size_t nl = (size_t)(end - p), v = 0;
        for (; v < m->g.n_vals; v++) {
            const char *name = m->g.vals[v].name;
            if (name != NULL && strlen(name) == nl && memcmp(name, p, nl) == 0)
                break;
        }
        if (nl == 0 || v == m->g.n_vals) {
            r = COFFER_FAIL(COFFER_E_INVALID_ARG, "calibration table: line %zu: no value '%.*s' in the model", line,
                            nl > 80 ? 80 : (int)nl, (const char *)p);
            break;
        }
        if (qr[v].set) {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "calibration table: line %zu: '%.*s' a second time", line,
                            nl > 80 ? 80 : (int)nl, (const char *)p);
            break;
        }
        qr[v] = (struct nn_qrange){.lo = lo, .hi = hi, .set = true};
        count++;
    }
    if (r == COFFER_OK && count == 0)
        r = COFFER_FAIL(COFFER_E_INVALID_ARG, "calibration table: no ranges");
    if (r != COFFER_OK) {
        coffer_free(qr);
        return r;
    }
    coffer_free(m->qr);
    m->qr = qr;
    return COFFER_OK;
}

enum coffer_err coffer_nn_calibration_table(const struct coffer_nn_model *m, char **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    if (!m->calibrating || m->qr == NULL)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "calibration table: the model was not loaded to calibrate");
    struct coffer_buf b;
    coffer_buf_init(&b, 0, false);
    enum coffer_err r = coffer_buf_printf(&b, "%s\n", CALIB_HEADER);
    size_t count = 0;
    for (size_t v = 0; v < m->g.n_vals && r == COFFER_OK; v++) {
        if (!m->qr[v].set)
            continue;
        const char *name = m->g.vals[v].name;
        if (name == NULL || name[0] == '\0' || strpbrk(name, "\r\n") != NULL) {
            r = COFFER_FAIL(COFFER_E_UNSUPPORTED, "calibration table: value %zu's name is empty or breaks a line", v);
            break;
        }
        r = coffer_buf_printf(&b, "%.9g %.9g %s\n", (double)m->qr[v].lo, (double)m->qr[v].hi, m->g.vals[v].name);
        count++;
    }
    if (r == COFFER_OK && count == 0)
        r = COFFER_FAIL(COFFER_E_INVALID_ARG, "calibration table: no range recorded: no run yet, or no "
                                              "convolution of this model reads the blocked layout (int8 would "
                                              "take none of its layers)");
    if (r == COFFER_OK)
        r = coffer_buf_put_u8(&b, 0);
    if (r != COFFER_OK) {
        coffer_buf_free(&b);
        return r;
    }
    *out = (char *)coffer_buf_steal(&b, size);
    (*size)--; /* (the terminating NUL) */
    return COFFER_OK;
}
