/*
 * grpc_msgs.c — the gRPC messages of PredictionService and ModelService:
 * PredictRequest/Response, GetModelMetadataRequest/Response and
 * GetModelStatusRequest/Response, between bytes and neutral structs.
 *
 * Design: decoding is size check -> protobuf-c unpack (allocating through
 * coffer_malloc; for a PredictRequest, predict_view.c's in-place decoder
 * first, which builds the same structs without copying tensor_content, and
 * leaves what it does not take to protobuf-c) -> semantic checks with TF's
 * messages -> copy out into owned structs -> free the unpacked message. Encoding builds the
 * protobuf-c structs on the stack and in a scratch list, pointing at the
 * caller's data wherever the wire type allows, and packs once.
 *
 * Invariants: I1 the message size is checked against the limit before
 * unpack. I2 the number of inputs is capped before any tensor is built, and
 * all tensors of a request share one byte budget. I3 on failure the caller
 * gets nothing to free.
 *
 * Trusts: protobuf-c's unpack for wire-level validity.
 */
#include "serve_int.h"

#include <string.h>

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "tensorflow_serving/apis/get_model_metadata.pb-c.h"
#include "tensorflow_serving/apis/get_model_status.pb-c.h"
#include "tensorflow_serving/apis/predict.pb-c.h"

#define SIGNATURE_DEF_MAP_URL "type.googleapis.com/tensorflow.serving.SignatureDefMap"

static enum coffer_err too_big(struct coffer_serve_status *st, size_t size, size_t max)
{
    return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "Received message larger than max (%zu vs. %zu)",
                                   size, max);
}

/* see serve_int.h */
enum coffer_err coffer_serve__message_start(size_t size, const struct coffer_serve_limits **lim,
                                            struct coffer_serve_limits *storage, struct coffer_serve_status *st)
{
    coffer_serve_status_clear(st);
    *lim = coffer_serve__limits(*lim, storage);
    return size > (*lim)->max_message_size ? too_big(st, size, (*lim)->max_message_size) : COFFER_OK;
}

static enum coffer_err bad_message(struct coffer_serve_status *st, const char *what)
{
    return SERVE_INVALID(st, "Could not parse %s: not a valid protobuf message", what);
}

/* --------------------------------------------------------------- ModelSpec */

static char *dup_or_empty(const char *s)
{
    return coffer_strdup(s != NULL ? s : "");
}

enum coffer_err coffer_serve__spec_from_proto(const Tensorflow__Serving__ModelSpec *ms,
                                              struct coffer_serve_model_spec *out)
{
    memset(out, 0, sizeof(*out));
    struct coffer_serve_model_spec s = {0};
    s.name = dup_or_empty(ms->name);
    s.signature_name = dup_or_empty(ms->signature_name);
    if (ms->version_choice_case == TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION) {
        s.has_version = true;
        s.version = ms->version != NULL ? ms->version->value : 0;
    } else if (ms->version_choice_case == TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION_LABEL) {
        s.version_label = dup_or_empty(ms->version_label);
        if (s.version_label == NULL)
            goto nomem;
    }
    if (s.name == NULL || s.signature_name == NULL)
        goto nomem;
    *out = s;
    return COFFER_OK;
nomem:
    coffer_serve_model_spec_free(&s);
    return COFFER_E_NOMEM;
}

enum coffer_err coffer_serve__spec_to_proto(const struct coffer_serve_model_spec *spec,
                                            struct coffer_serve__scratch *s, Tensorflow__Serving__ModelSpec *ms)
{
    tensorflow__serving__model_spec__init(ms);
    ms->name = SERVE_STR(spec->name);
    ms->signature_name = SERVE_STR(spec->signature_name);
    if (spec->has_version) {
        Google__Protobuf__Int64Value *v = coffer_serve__scratch_alloc(s, 1, sizeof(*v));
        if (v == NULL)
            return COFFER_E_NOMEM;
        google__protobuf__int64_value__init(v);
        v->value = spec->version;
        ms->version_choice_case = TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION;
        ms->version = v;
    } else if (spec->version_label != NULL) {
        ms->version_choice_case = TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION_LABEL;
        ms->version_label = spec->version_label;
    }
    return COFFER_OK;
}

/* ---------------------------------------------------------------- tensors */

/* Decode a map<string, TensorProto> into tensors; duplicate keys: last wins. */
typedef struct {
    const char *key;
    const Tensorflow__TensorProto *value;
} map_entry;

static enum coffer_err tensors_from_map(const map_entry *entries, size_t n, const struct coffer_serve_limits *lim,
                                        const char *what, struct coffer_serve_tensor **out, size_t *count,
                                        struct coffer_serve_status *st)
{
    *out = NULL;
    *count = 0;
    if (n > lim->max_tensors)
        return SERVE_INVALID(st, "%zu %s are over the limit of %zu", n, what, lim->max_tensors);
    struct coffer_serve_tensor *ts = coffer_calloc(n ? n : 1, sizeof(*ts));
    if (ts == NULL)
        return coffer_serve__nomem(st);
    size_t budget = lim->max_total_size, m = 0;
    static const Tensorflow__TensorProto empty = TENSORFLOW__TENSOR_PROTO__INIT;
    for (size_t i = 0; i < n; i++) {
        const char *key = entries[i].key != NULL ? entries[i].key : "";
        bool later = false;
        for (size_t j = i + 1; j < n && !later; j++)
            later = strcmp(key, entries[j].key != NULL ? entries[j].key : "") == 0;
        if (later)
            continue; /* a later entry with the same key wins */
        const Tensorflow__TensorProto *tp = entries[i].value != NULL ? entries[i].value : &empty;
        enum coffer_err r = coffer_serve__tensor_from_proto(tp, key, lim, &budget, &ts[m], st);
        if (r != COFFER_OK) {
            coffer_serve_tensors_free(ts, m);
            return r;
        }
        m++;
    }
    *out = ts;
    *count = m;
    return COFFER_OK;
}

/* ------------------------------------------------------------ PredictRequest */

void coffer_serve_predict_request_free(struct coffer_serve_predict_request *req)
{
    if (req == NULL)
        return;
    coffer_serve_model_spec_free(&req->spec);
    coffer_serve_tensors_free(req->inputs, req->input_count);
    for (size_t i = 0; i < req->output_filter_count; i++)
        coffer_free(req->output_filter[i]);
    coffer_free(req->output_filter);
    memset(req, 0, sizeof(*req));
}

enum coffer_err coffer_serve_predict_request_decode(const uint8_t *data, size_t size,
                                                    const struct coffer_serve_limits *lim,
                                                    struct coffer_serve_predict_request *out,
                                                    struct coffer_serve_status *st)
{
    return coffer_serve__predict_request_decode(data, size, lim, true, out, st);
}

/* see serve_int.h */
enum coffer_err coffer_serve__predict_request_decode(const uint8_t *data, size_t size,
                                                     const struct coffer_serve_limits *lim, bool fast,
                                                     struct coffer_serve_predict_request *out,
                                                     struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    struct coffer_serve_limits dl;
    enum coffer_err started = coffer_serve__message_start(size, &lim, &dl, st);
    if (started != COFFER_OK)
        return started;
    /* in place when it can (the tensors' bytes are copied once, from the
     * message into the tensors), else protobuf-c's unpack */
    struct coffer_serve__scratch view_mem = {0};
    Tensorflow__Serving__PredictRequest view, *m = NULL;
    if (fast) {
        if (coffer_serve__predict_request_view(data, size, &view_mem, &view) == COFFER_OK)
            m = &view;
        else
            coffer_serve__scratch_free(&view_mem);
        coffer_err_clear(); /* a declined view is no failure */
    }
    if (m == NULL && (m = tensorflow__serving__predict_request__unpack(&coffer_serve__pb_alloc, size, data)) == NULL)
        return bad_message(st, "PredictRequest");
    struct coffer_serve_predict_request req = {0};
    enum coffer_err r;
    map_entry *entries = NULL;
    if (m->model_spec == NULL) {
        r = SERVE_INVALID(st, "Missing ModelSpec");
        goto out;
    }
    if ((r = coffer_serve__spec_from_proto(m->model_spec, &req.spec)) != COFFER_OK) {
        r = coffer_serve__nomem(st);
        goto out;
    }
    if (m->n_output_filter > lim->max_tensors) {
        r = SERVE_INVALID(st, "%zu output_filter entries are over the limit of %zu", m->n_output_filter,
                          lim->max_tensors);
        goto out;
    }
    if (m->n_inputs > lim->max_tensors) {
        r = SERVE_INVALID(st, "%zu inputs are over the limit of %zu", m->n_inputs, lim->max_tensors);
        goto out;
    }
    entries = coffer_calloc(m->n_inputs ? m->n_inputs : 1, sizeof(*entries));
    req.output_filter = coffer_calloc(m->n_output_filter ? m->n_output_filter : 1, sizeof(char *));
    if (entries == NULL || req.output_filter == NULL) {
        r = coffer_serve__nomem(st);
        goto out;
    }
    for (size_t i = 0; i < m->n_output_filter; i++) {
        if ((req.output_filter[i] = dup_or_empty(m->output_filter[i])) == NULL) {
            r = coffer_serve__nomem(st);
            goto out;
        }
        req.output_filter_count++;
    }
    for (size_t i = 0; i < m->n_inputs; i++) {
        entries[i].key = m->inputs[i]->key;
        entries[i].value = m->inputs[i]->value;
    }
    r = tensors_from_map(entries, m->n_inputs, lim, "inputs", &req.inputs, &req.input_count, st);
out:
    coffer_free(entries);
    if (m == &view)
        coffer_serve__scratch_free(&view_mem);
    else
        tensorflow__serving__predict_request__free_unpacked(m, &coffer_serve__pb_alloc);
    if (r != COFFER_OK) {
        coffer_serve_predict_request_free(&req);
        return r;
    }
    *out = req;
    return COFFER_OK;
}

/* Fill n map entries (InputsEntry/OutputsEntry share a layout: base, key,
 * value) from tensors. */
#define BUILD_TENSOR_MAP(EntryType, entry_init, ts, n, content, s, out_entries, r)              \
    do {                                                                                     \
        EntryType **pp = coffer_serve__scratch_alloc((s), (n), sizeof(*pp));                 \
        EntryType *ev = coffer_serve__scratch_alloc((s), (n), sizeof(*ev));                  \
        Tensorflow__TensorProto *tv = coffer_serve__scratch_alloc((s), (n), sizeof(*tv));    \
        (r) = (pp && ev && tv) ? COFFER_OK : COFFER_E_NOMEM;                                 \
        for (size_t i_ = 0; (r) == COFFER_OK && i_ < (n); i_++) {                            \
            entry_init(&ev[i_]);                                                             \
            ev[i_].key = SERVE_STR((ts)[i_].name);                                           \
            (r) = coffer_serve__tensor_to_proto(&(ts)[i_], (content), (s), &tv[i_]);         \
            ev[i_].value = &tv[i_];                                                          \
            pp[i_] = &ev[i_];                                                                \
        }                                                                                    \
        (out_entries) = pp;                                                                  \
    } while (0)

enum coffer_err coffer_serve_predict_request_encode(const struct coffer_serve_predict_request *req,
                                                    bool tensor_content, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    struct coffer_serve__scratch s = {0};
    Tensorflow__Serving__PredictRequest m = TENSORFLOW__SERVING__PREDICT_REQUEST__INIT;
    Tensorflow__Serving__ModelSpec ms;
    enum coffer_err r = coffer_serve__spec_to_proto(&req->spec, &s, &ms);
    if (r == COFFER_OK) {
        m.model_spec = &ms;
        BUILD_TENSOR_MAP(Tensorflow__Serving__PredictRequest__InputsEntry,
                         tensorflow__serving__predict_request__inputs_entry__init, req->inputs, req->input_count,
                         tensor_content, &s, m.inputs, r);
        m.n_inputs = req->input_count;
        m.n_output_filter = req->output_filter_count;
        m.output_filter = req->output_filter;
    }
    if (r == COFFER_OK)
        r = coffer_serve__pack(&m.base, out, out_size);
    coffer_serve__scratch_free(&s);
    return r;
}

/* ----------------------------------------------------------- PredictResponse */

enum coffer_err coffer_serve_predict_response_encode(const struct coffer_serve_model_spec *resolved,
                                                     const struct coffer_serve_tensor *outputs, size_t count,
                                                     bool tensor_content, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    struct coffer_serve__scratch s = {0};
    Tensorflow__Serving__PredictResponse m = TENSORFLOW__SERVING__PREDICT_RESPONSE__INIT;
    Tensorflow__Serving__ModelSpec ms;
    struct coffer_serve_model_spec spec = *resolved;
    spec.version_label = NULL; /* a response names the resolved version */
    enum coffer_err r = coffer_serve__spec_to_proto(&spec, &s, &ms);
    if (r == COFFER_OK) {
        if (ms.signature_name[0] == '\0')
            ms.signature_name = COFFER_SERVE_DEFAULT_SIGNATURE;
        m.model_spec = &ms;
        BUILD_TENSOR_MAP(Tensorflow__Serving__PredictResponse__OutputsEntry,
                         tensorflow__serving__predict_response__outputs_entry__init, outputs, count, tensor_content,
                         &s, m.outputs, r);
        m.n_outputs = count;
    }
    if (r == COFFER_OK)
        r = coffer_serve__pack(&m.base, out, out_size);
    coffer_serve__scratch_free(&s);
    return r;
}

enum coffer_err coffer_serve_predict_response_decode(const uint8_t *data, size_t size,
                                                     const struct coffer_serve_limits *lim,
                                                     struct coffer_serve_model_spec *spec,
                                                     struct coffer_serve_tensor **outputs, size_t *count,
                                                     struct coffer_serve_status *st)
{
    memset(spec, 0, sizeof(*spec));
    *outputs = NULL;
    *count = 0;
    struct coffer_serve_limits dl;
    enum coffer_err started = coffer_serve__message_start(size, &lim, &dl, st);
    if (started != COFFER_OK)
        return started;
    Tensorflow__Serving__PredictResponse *m =
        tensorflow__serving__predict_response__unpack(&coffer_serve__pb_alloc, size, data);
    if (m == NULL)
        return bad_message(st, "PredictResponse");
    struct coffer_serve_model_spec sp = {0};
    enum coffer_err r = COFFER_OK;
    map_entry *entries = NULL;
    if (m->model_spec != NULL && coffer_serve__spec_from_proto(m->model_spec, &sp) != COFFER_OK) {
        r = coffer_serve__nomem(st);
        goto out;
    }
    if (m->n_outputs > lim->max_tensors) {
        r = SERVE_INVALID(st, "%zu outputs are over the limit of %zu", m->n_outputs, lim->max_tensors);
        goto out;
    }
    entries = coffer_calloc(m->n_outputs ? m->n_outputs : 1, sizeof(*entries));
    if (entries == NULL) {
        r = coffer_serve__nomem(st);
        goto out;
    }
    for (size_t i = 0; i < m->n_outputs; i++) {
        entries[i].key = m->outputs[i]->key;
        entries[i].value = m->outputs[i]->value;
    }
    r = tensors_from_map(entries, m->n_outputs, lim, "outputs", outputs, count, st);
out:
    coffer_free(entries);
    tensorflow__serving__predict_response__free_unpacked(m, &coffer_serve__pb_alloc);
    if (r != COFFER_OK) {
        coffer_serve_model_spec_free(&sp);
        return r;
    }
    *spec = sp;
    return COFFER_OK;
}

/* ------------------------------------------------------------------ metadata */

enum coffer_err coffer_serve_metadata_request_decode(const uint8_t *data, size_t size,
                                                     struct coffer_serve_model_spec *out,
                                                     struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    coffer_serve_status_clear(st);
    struct coffer_serve_limits dl;
    coffer_serve_limits_default(&dl);
    if (size > dl.max_message_size)
        return too_big(st, size, dl.max_message_size);
    Tensorflow__Serving__GetModelMetadataRequest *m =
        tensorflow__serving__get_model_metadata_request__unpack(&coffer_serve__pb_alloc, size, data);
    if (m == NULL)
        return bad_message(st, "GetModelMetadataRequest");
    enum coffer_err r;
    if (m->model_spec == NULL) {
        r = SERVE_INVALID(st, "Missing ModelSpec");
    } else if (m->n_metadata_field == 0) {
        r = SERVE_INVALID(st, "GetModelMetadataRequest must specify at least one metadata_field");
    } else {
        r = COFFER_OK;
        for (size_t i = 0; i < m->n_metadata_field && r == COFFER_OK; i++)
            if (strcmp(m->metadata_field[i], "signature_def") != 0)
                r = SERVE_INVALID(st, "Metadata field %.512s is not supported", m->metadata_field[i]);
        if (r == COFFER_OK && coffer_serve__spec_from_proto(m->model_spec, out) != COFFER_OK)
            r = coffer_serve__nomem(st);
    }
    tensorflow__serving__get_model_metadata_request__free_unpacked(m, &coffer_serve__pb_alloc);
    return r;
}

/* A TensorInfo (dtype, shape with -1 for unknown dims, graph name). */
static enum coffer_err build_info(const struct coffer_serve_tensor_info *in, struct coffer_serve__scratch *s,
                                  Tensorflow__TensorInfo **out)
{
    size_t rank = in->unknown_rank ? 0 : in->rank > COFFER_SERVE_MAX_RANK ? COFFER_SERVE_MAX_RANK : in->rank;
    Tensorflow__TensorInfo *ti = coffer_serve__scratch_alloc(s, 1, sizeof(*ti));
    Tensorflow__TensorShapeProto *sh = coffer_serve__scratch_alloc(s, 1, sizeof(*sh));
    Tensorflow__TensorShapeProto__Dim **dp = coffer_serve__scratch_alloc(s, rank, sizeof(*dp));
    Tensorflow__TensorShapeProto__Dim *dv = coffer_serve__scratch_alloc(s, rank, sizeof(*dv));
    if (ti == NULL || sh == NULL || dp == NULL || dv == NULL)
        return COFFER_E_NOMEM;
    tensorflow__tensor_shape_proto__init(sh);
    for (size_t d = 0; d < rank; d++) {
        tensorflow__tensor_shape_proto__dim__init(&dv[d]);
        dv[d].size = in->dims[d];
        dp[d] = &dv[d];
    }
    sh->n_dim = rank;
    sh->dim = dp;
    sh->unknown_rank = in->unknown_rank;
    tensorflow__tensor_info__init(ti);
    ti->dtype = (Tensorflow__DataType)in->dtype;
    ti->tensor_shape = sh;
    ti->encoding_case = TENSORFLOW__TENSOR_INFO__ENCODING_NAME;
    ti->name = SERVE_STR(in->tensor_name != NULL ? in->tensor_name : in->alias);
    *out = ti;
    return COFFER_OK;
}

/* map<string, TensorInfo> (SignatureDef inputs or outputs). */
#define BUILD_INFO_MAP(EntryType, entry_init, infos, n, s, out_entries, r)                   \
    do {                                                                                 \
        EntryType **mp_ = coffer_serve__scratch_alloc((s), (n), sizeof(*mp_));             \
        EntryType *me_ = coffer_serve__scratch_alloc((s), (n), sizeof(*me_));              \
        (r) = (mp_ && me_) ? COFFER_OK : COFFER_E_NOMEM;                                   \
        for (size_t i_ = 0; (r) == COFFER_OK && i_ < (n); i_++) {                        \
            entry_init(&me_[i_]);                                                         \
            me_[i_].key = SERVE_STR((infos)[i_].alias);                                   \
            (r) = build_info(&(infos)[i_], (s), &me_[i_].value);                          \
            mp_[i_] = &me_[i_];                                                            \
        }                                                                                \
        (out_entries) = mp_;                                                              \
    } while (0)

enum coffer_err coffer_serve_metadata_response_encode(const struct coffer_serve_model_spec *resolved,
                                                      const struct coffer_serve_signature *sigs, size_t count,
                                                      uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    struct coffer_serve__scratch s = {0};
    uint8_t *packed_map = NULL;
    size_t packed_size = 0;
    Tensorflow__Serving__SignatureDefMap map = TENSORFLOW__SERVING__SIGNATURE_DEF_MAP__INIT;
    Tensorflow__Serving__SignatureDefMap__SignatureDefEntry **pp = coffer_serve__scratch_alloc(&s, count, sizeof(*pp));
    Tensorflow__Serving__SignatureDefMap__SignatureDefEntry *ev = coffer_serve__scratch_alloc(&s, count, sizeof(*ev));
    Tensorflow__SignatureDef *sd = coffer_serve__scratch_alloc(&s, count, sizeof(*sd));
    enum coffer_err r = pp && ev && sd ? COFFER_OK : COFFER_E_NOMEM;
    for (size_t i = 0; i < count && r == COFFER_OK; i++) {
        tensorflow__signature_def__init(&sd[i]);
        BUILD_INFO_MAP(Tensorflow__SignatureDef__InputsEntry, tensorflow__signature_def__inputs_entry__init,
                       sigs[i].inputs, sigs[i].input_count, &s, sd[i].inputs, r);
        if (r == COFFER_OK)
            BUILD_INFO_MAP(Tensorflow__SignatureDef__OutputsEntry, tensorflow__signature_def__outputs_entry__init,
                           sigs[i].outputs, sigs[i].output_count, &s, sd[i].outputs, r);
        if (r != COFFER_OK)
            break;
        sd[i].n_inputs = sigs[i].input_count;
        sd[i].n_outputs = sigs[i].output_count;
        sd[i].method_name = SERVE_STR(sigs[i].method_name != NULL ? sigs[i].method_name : COFFER_SERVE_PREDICT_METHOD);
        tensorflow__serving__signature_def_map__signature_def_entry__init(&ev[i]);
        ev[i].key = SERVE_STR(sigs[i].key);
        ev[i].value = &sd[i];
        pp[i] = &ev[i];
    }
    if (r == COFFER_OK) {
        map.n_signature_def = count;
        map.signature_def = pp;
        r = coffer_serve__pack(&map.base, &packed_map, &packed_size);
    }
    if (r == COFFER_OK) {
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        any.type_url = SIGNATURE_DEF_MAP_URL;
        any.value.data = packed_map;
        any.value.len = packed_size;
        Tensorflow__Serving__GetModelMetadataResponse__MetadataEntry entry =
            TENSORFLOW__SERVING__GET_MODEL_METADATA_RESPONSE__METADATA_ENTRY__INIT;
        entry.key = "signature_def";
        entry.value = &any;
        Tensorflow__Serving__GetModelMetadataResponse__MetadataEntry *ep = &entry;
        Tensorflow__Serving__GetModelMetadataResponse m = TENSORFLOW__SERVING__GET_MODEL_METADATA_RESPONSE__INIT;
        Tensorflow__Serving__ModelSpec ms;
        struct coffer_serve_model_spec spec = *resolved;
        spec.version_label = NULL;
        r = coffer_serve__spec_to_proto(&spec, &s, &ms);
        if (r == COFFER_OK) {
            m.model_spec = &ms;
            m.n_metadata = 1;
            m.metadata = &ep;
            r = coffer_serve__pack(&m.base, out, out_size);
        }
    }
    coffer_free(packed_map);
    coffer_serve__scratch_free(&s);
    return r;
}

/* -------------------------------------------------------------------- status */

enum coffer_err coffer_serve_status_request_decode(const uint8_t *data, size_t size,
                                                   struct coffer_serve_model_spec *out, struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    coffer_serve_status_clear(st);
    struct coffer_serve_limits dl;
    coffer_serve_limits_default(&dl);
    if (size > dl.max_message_size)
        return too_big(st, size, dl.max_message_size);
    Tensorflow__Serving__GetModelStatusRequest *m =
        tensorflow__serving__get_model_status_request__unpack(&coffer_serve__pb_alloc, size, data);
    if (m == NULL)
        return bad_message(st, "GetModelStatusRequest");
    enum coffer_err r;
    if (m->model_spec == NULL)
        r = SERVE_INVALID(st, "Missing ModelSpec");
    else if ((r = coffer_serve__spec_from_proto(m->model_spec, out)) != COFFER_OK)
        r = coffer_serve__nomem(st);
    tensorflow__serving__get_model_status_request__free_unpacked(m, &coffer_serve__pb_alloc);
    return r;
}

enum coffer_err coffer_serve_status_select(const char *model, const struct coffer_serve_version_status *all, size_t n,
                                           bool has_version, int64_t version, size_t *first, size_t *count,
                                           struct coffer_serve_status *st)
{
    *first = 0;
    *count = 0;
    coffer_serve_status_clear(st);
    if (!has_version) {
        if (n == 0)
            return coffer_serve_status_set(st, COFFER_SERVE_NOT_FOUND, "Could not find any versions of model %.512s",
                                           model);
        *count = n;
        return COFFER_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (all[i].version == version) {
            *first = i;
            *count = 1;
            return COFFER_OK;
        }
    }
    return coffer_serve_status_set(st, COFFER_SERVE_NOT_FOUND, "Could not find version %lld of model %.512s",
                                   (long long)version, model);
}

enum coffer_err coffer_serve_status_response_encode(const struct coffer_serve_version_status *v, size_t count,
                                                    uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    struct coffer_serve__scratch s = {0};
    Tensorflow__Serving__ModelVersionStatus **pp = coffer_serve__scratch_alloc(&s, count, sizeof(*pp));
    Tensorflow__Serving__ModelVersionStatus *mv = coffer_serve__scratch_alloc(&s, count, sizeof(*mv));
    Tensorflow__Serving__StatusProto *sp = coffer_serve__scratch_alloc(&s, count, sizeof(*sp));
    enum coffer_err r = pp && mv && sp ? COFFER_OK : COFFER_E_NOMEM;
    for (size_t i = 0; i < count && r == COFFER_OK; i++) {
        tensorflow__serving__model_version_status__init(&mv[i]);
        tensorflow__serving__status_proto__init(&sp[i]);
        sp[i].error_code = (Tensorflow__Error__Code)v[i].error_code;
        sp[i].error_message = SERVE_STR(v[i].error_message);
        mv[i].version = v[i].version;
        mv[i].state = (Tensorflow__Serving__ModelVersionStatus__State)v[i].state;
        mv[i].status = &sp[i];
        pp[i] = &mv[i];
    }
    if (r == COFFER_OK) {
        Tensorflow__Serving__GetModelStatusResponse m = TENSORFLOW__SERVING__GET_MODEL_STATUS_RESPONSE__INIT;
        m.n_model_version_status = count;
        m.model_version_status = pp;
        r = coffer_serve__pack(&m.base, out, out_size);
    }
    coffer_serve__scratch_free(&s);
    return r;
}
