/*
 * predict_view.c — a PredictRequest decoded in place: the protobuf-c structs
 * that protobuf_c_message_unpack would give, built by a small wire scanner
 * whose tensor_content fields point into the message rather than into
 * copies of it (a 600 kB image otherwise goes through two more 600 kB
 * buffers before it reaches the model).
 *
 * Design: a fast path with protobuf-c as its fallback, as rest_fast.c is
 * beside jansson. It accepts only what it can give protobuf-c's exact
 * answer for: the fields coffer reads (PredictRequest 1-3, ModelSpec 1-4,
 * Int64Value 1, the inputs map entry 1-2, TensorProto 1-4, TensorShapeProto
 * 2-3, Dim 1-2) with their declared wire types; a singular sub-message at
 * most once (protobuf-c merges repeats) and at most one member of the
 * version oneof; tags and lengths within protobuf-c's own bounds (a tag of
 * at most 5 bytes, a length of at most 5 bytes and under 2 GiB; varints
 * that coffer_rd_varint takes). Scalars and strings given twice: the last
 * wins, as in protobuf-c. Anything else (the typed value fields, unknown
 * or newer fields, fixed-width or group wire types, a malformed message)
 * is COFFER_E_UNSUPPORTED, and the caller unpacks with protobuf-c, which
 * gives every error. tests/serve/test_proto_view.c and the predict_request
 * fuzz target check both paths give the same answer.
 *
 * Invariants: I1 every byte is read through coffer_rd. I2 what is built
 * borrows the message (tensor_content) and the scratch (the structs,
 * arrays and NUL-terminated copies of the strings), so it lives until the
 * scratch is freed and the message is released, whichever comes first.
 * I3 nothing is allocated from a count before the counting pass went over
 * the bytes that hold it (a count is at most the message size / 2).
 */
#include "serve_int.h"

#include <limits.h>
#include <string.h>

#include "google/protobuf/wrappers.pb-c.h"

#define DECLINE COFFER_E_UNSUPPORTED

struct field {
    uint32_t num, wire;
    uint64_t v;           /* a varint's value, or a length */
    struct coffer_rd sub; /* a length-delimited field's bytes */
};

/* The next field of rd, or DECLINE where protobuf-c's reading could differ
 * from ours: only varint and length-delimited wire types. */
static enum coffer_err next(struct coffer_rd *rd, struct field *f)
{
    size_t p0 = rd->pos;
    uint64_t tag;
    if (coffer_rd_varint(rd, &tag) != COFFER_OK || rd->pos - p0 > 5 || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return DECLINE;
    f->num = (uint32_t)(tag >> 3);
    f->wire = (uint32_t)(tag & 7);
    if (f->wire == 0)
        return coffer_rd_varint(rd, &f->v) == COFFER_OK ? COFFER_OK : DECLINE;
    if (f->wire != 2)
        return DECLINE;
    size_t p1 = rd->pos;
    if (coffer_rd_varint(rd, &f->v) != COFFER_OK || rd->pos - p1 > 5 || f->v > INT_MAX ||
        coffer_rd_sub(rd, (size_t)f->v, &f->sub) != COFFER_OK)
        return DECLINE;
    return COFFER_OK;
}

/* A NUL-terminated copy of a string field in the scratch (protobuf-c's
 * char *; an embedded NUL ends it for its readers there as here). */
static enum coffer_err str(struct coffer_serve__scratch *s, struct field *f, char **out)
{
    const uint8_t *p;
    size_t n = coffer_rd_left(&f->sub);
    if (coffer_rd_bytes(&f->sub, n, &p) != COFFER_OK)
        return DECLINE;
    char *c = coffer_serve__scratch_alloc(s, n + 1, 1);
    if (c == NULL)
        return COFFER_E_NOMEM;
    if (n > 0)
        memcpy(c, p, n);
    *out = c;
    return COFFER_OK;
}

#define WANT(f, w)                                                                                                 \
    do {                                                                                                           \
        if ((f).wire != (w))                                                                                       \
            return DECLINE;                                                                                        \
    } while (0)

/* A message of descriptor d in the scratch, with its defaults. */
static void *new_msg(struct coffer_serve__scratch *s, const ProtobufCMessageDescriptor *d)
{
    void *m = coffer_serve__scratch_alloc(s, 1, d->sizeof_message);
    if (m != NULL)
        protobuf_c_message_init(d, m);
    return m;
}

/* Read the next field of rd into f while *r is fine and bytes are left;
 * a field the scanner cannot read sets *r to DECLINE. */
static bool more(struct coffer_rd *rd, struct field *f, enum coffer_err *r)
{
    if (*r != COFFER_OK || coffer_rd_left(rd) == 0)
        return false;
    if (next(rd, f) != COFFER_OK) {
        *r = DECLINE;
        return false;
    }
    return true;
}

static enum coffer_err int64_value(struct coffer_rd rd, struct coffer_serve__scratch *s, Google__Protobuf__Int64Value **out)
{
    Google__Protobuf__Int64Value *v = new_msg(s, &google__protobuf__int64_value__descriptor);
    if (v == NULL)
        return COFFER_E_NOMEM;
    struct field f;
    enum coffer_err r = COFFER_OK;
    while (more(&rd, &f, &r)) {
        if (f.num != 1)
            return DECLINE;
        WANT(f, 0);
        v->value = (int64_t)f.v;
    }
    *out = v;
    return r;
}

static enum coffer_err model_spec(struct coffer_rd rd, struct coffer_serve__scratch *s,
                                  Tensorflow__Serving__ModelSpec **out)
{
    Tensorflow__Serving__ModelSpec *ms = new_msg(s, &tensorflow__serving__model_spec__descriptor);
    if (ms == NULL)
        return COFFER_E_NOMEM;
    struct field f;
    enum coffer_err r = COFFER_OK;
    while (more(&rd, &f, &r)) {
        WANT(f, 2);
        switch (f.num) {
        case 1: r = str(s, &f, &ms->name); break;
        case 3: r = str(s, &f, &ms->signature_name); break;
        case 2:
        case 4:
            /* the version oneof: one member, once */
            if (ms->version_choice_case != TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE__NOT_SET)
                return DECLINE;
            if (f.num == 2) {
                ms->version_choice_case = TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION;
                r = int64_value(f.sub, s, &ms->version);
            } else {
                ms->version_choice_case = TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION_LABEL;
                r = str(s, &f, &ms->version_label);
            }
            break;
        default: return DECLINE;
        }
    }
    *out = ms;
    return r;
}

static enum coffer_err shape(struct coffer_rd rd, struct coffer_serve__scratch *s, Tensorflow__TensorShapeProto **out)
{
    Tensorflow__TensorShapeProto *sh = new_msg(s, &tensorflow__tensor_shape_proto__descriptor);
    if (sh == NULL)
        return COFFER_E_NOMEM;
    /* pass 1: the fields' kinds, and how many dims */
    struct coffer_rd t = rd;
    struct field f;
    size_t n = 0;
    enum coffer_err r = COFFER_OK;
    while (more(&t, &f, &r)) {
        if (f.num == 2) {
            WANT(f, 2);
            n++;
        } else if (f.num == 3) {
            WANT(f, 0);
            sh->unknown_rank = f.v != 0;
        } else {
            return DECLINE;
        }
    }
    if (r != COFFER_OK)
        return r;
    Tensorflow__TensorShapeProto__Dim **dp = coffer_serve__scratch_alloc(s, n, sizeof(*dp));
    Tensorflow__TensorShapeProto__Dim *dv = coffer_serve__scratch_alloc(s, n, sizeof(*dv));
    if (dp == NULL || dv == NULL)
        return COFFER_E_NOMEM;
    /* pass 2: the dims */
    size_t i = 0;
    while (more(&rd, &f, &r)) {
        if (f.num != 2)
            continue;
        tensorflow__tensor_shape_proto__dim__init(&dv[i]);
        struct field g;
        while (more(&f.sub, &g, &r)) {
            if (g.num == 1) {
                WANT(g, 0);
                dv[i].size = (int64_t)g.v;
            } else if (g.num == 2) {
                WANT(g, 2); /* the name: read by no one */
            } else {
                return DECLINE;
            }
        }
        dp[i] = &dv[i];
        i++;
    }
    sh->n_dim = n;
    sh->dim = dp;
    *out = sh;
    return r;
}

static enum coffer_err tensor(struct coffer_rd rd, struct coffer_serve__scratch *s, Tensorflow__TensorProto **out)
{
    Tensorflow__TensorProto *tp = new_msg(s, &tensorflow__tensor_proto__descriptor);
    if (tp == NULL)
        return COFFER_E_NOMEM;
    struct field f;
    enum coffer_err r = COFFER_OK;
    while (more(&rd, &f, &r)) {
        switch (f.num) {
        case 1: /* an enum: protobuf-c keeps the low 32 bits */
            WANT(f, 0);
            tp->dtype = (Tensorflow__DataType)(int32_t)(uint32_t)f.v;
            break;
        case 2:
            WANT(f, 2);
            if (tp->tensor_shape != NULL)
                return DECLINE; /* protobuf-c would merge the two */
            r = shape(f.sub, s, &tp->tensor_shape);
            break;
        case 3: /* version_number: read by no one */
            WANT(f, 0);
            break;
        case 4: {
            WANT(f, 2);
            const uint8_t *p;
            size_t n = coffer_rd_left(&f.sub);
            if (coffer_rd_bytes(&f.sub, n, &p) != COFFER_OK)
                return DECLINE;
            tp->tensor_content.data = (uint8_t *)(uintptr_t)p; /* borrowed: I2 */
            tp->tensor_content.len = n;
            break;
        }
        default: return DECLINE; /* the typed value fields, and the rest */
        }
    }
    *out = tp;
    return r;
}

static enum coffer_err entry(struct coffer_rd rd, struct coffer_serve__scratch *s,
                             Tensorflow__Serving__PredictRequest__InputsEntry **out)
{
    Tensorflow__Serving__PredictRequest__InputsEntry *e =
        new_msg(s, &tensorflow__serving__predict_request__inputs_entry__descriptor);
    if (e == NULL)
        return COFFER_E_NOMEM;
    struct field f;
    enum coffer_err r = COFFER_OK;
    while (more(&rd, &f, &r)) {
        WANT(f, 2);
        if (f.num == 1) {
            r = str(s, &f, &e->key);
        } else if (f.num == 2) {
            if (e->value != NULL)
                return DECLINE;
            r = tensor(f.sub, s, &e->value);
        } else {
            return DECLINE;
        }
    }
    *out = e;
    return r;
}

/* see serve_int.h */
enum coffer_err coffer_serve__predict_request_view(const uint8_t *data, size_t size, struct coffer_serve__scratch *s,
                                                   Tensorflow__Serving__PredictRequest *m)
{
    tensorflow__serving__predict_request__init(m);
    struct coffer_rd rd;
    coffer_rd_init(&rd, data, size);
    /* pass 1: the fields' kinds, and how many inputs and filters */
    struct field f;
    size_t n_in = 0, n_filter = 0, n_spec = 0;
    enum coffer_err r = COFFER_OK;
    while (more(&rd, &f, &r)) {
        WANT(f, 2);
        switch (f.num) {
        case 1: n_spec++; break;
        case 2: n_in++; break;
        case 3: n_filter++; break;
        default: return DECLINE;
        }
    }
    if (r != COFFER_OK || n_spec > 1)
        return DECLINE; /* n_spec > 1: protobuf-c would merge them */
    m->inputs = coffer_serve__scratch_alloc(s, n_in, sizeof(*m->inputs));
    m->output_filter = coffer_serve__scratch_alloc(s, n_filter, sizeof(*m->output_filter));
    if (m->inputs == NULL || m->output_filter == NULL)
        return COFFER_E_NOMEM;
    /* pass 2 */
    coffer_rd_init(&rd, data, size);
    while (more(&rd, &f, &r)) {
        switch (f.num) {
        case 1: r = model_spec(f.sub, s, &m->model_spec); break;
        case 2: r = entry(f.sub, s, &m->inputs[m->n_inputs++]); break;
        default: r = str(s, &f, &m->output_filter[m->n_output_filter++]); break;
        }
    }
    return r;
}
