/*
 * reload.c — ModelService/HandleReloadConfigRequest's messages:
 * ReloadConfigRequest (a whole ModelServerConfig) into the config the
 * --model_config_file parser makes, with the same checks; and
 * ReloadConfigResponse (a StatusProto).
 *
 * Design: protobuf-c unpacks (it bounds every length by the message); the
 * conversion copies what coffer uses (name, base_path, model_platform,
 * model_version_policy, version_labels) and refuses, with TF's messages
 * where TF has one, what it cannot honour: custom_model_config, a model
 * listed twice, a config without a name or base path, an unknown platform,
 * an empty `specific`, a repeated label.
 * Invariants: I1 on error nothing is handed out (*out is freed and zeroed).
 * Trusts: protobuf-c for the wire format. Threading: pure.
 */
#include "serve_int.h"

#include <string.h>

#include "tensorflow_serving/apis/model_management.pb-c.h"

typedef Tensorflow__Serving__FileSystemStoragePathSourceConfig__ServableVersionPolicy pb_policy;

static enum coffer_err model_from_pb(const Tensorflow__Serving__ModelConfig *c, struct coffer_serve_model_config *m,
                                     struct coffer_serve_status *st)
{
    if (c->name == NULL || c->name[0] == '\0')
        return SERVE_INVALID(st, "ModelConfig without a name");
    if (c->base_path == NULL || c->base_path[0] == '\0')
        return SERVE_INVALID(st, "ModelConfig %.64s without a base_path", c->name);
    const char *platform = c->model_platform != NULL ? c->model_platform : "";
    if (platform[0] != '\0' && strcmp(platform, "tensorflow") != 0 && strcmp(platform, "onnx") != 0)
        return SERVE_INVALID(st, "model_platform \"%.64s\" is not supported (tensorflow or onnx)", platform);
    if (c->n_version_labels > COFFER_SERVE__MAX_LABELS)
        return SERVE_INVALID(st, "more than %d version_labels", COFFER_SERVE__MAX_LABELS);
    if ((m->name = coffer_strdup(c->name)) == NULL || (m->base_path = coffer_strdup(c->base_path)) == NULL ||
        (m->platform = coffer_strdup(platform)) == NULL ||
        (m->labels = coffer_calloc(c->n_version_labels ? c->n_version_labels : 1, sizeof(*m->labels))) == NULL)
        return coffer_serve__nomem(st);
    const pb_policy *p = c->model_version_policy;
    if (p != NULL) {
        switch (p->policy_choice_case) {
        case TENSORFLOW__SERVING__FILE_SYSTEM_STORAGE_PATH_SOURCE_CONFIG__SERVABLE_VERSION_POLICY__POLICY_CHOICE_LATEST:
            m->policy.kind = COFFER_SERVE_POLICY_LATEST;
            m->policy.num_versions = p->latest->num_versions;
            break;
        case TENSORFLOW__SERVING__FILE_SYSTEM_STORAGE_PATH_SOURCE_CONFIG__SERVABLE_VERSION_POLICY__POLICY_CHOICE_ALL:
            m->policy.kind = COFFER_SERVE_POLICY_ALL;
            break;
        case TENSORFLOW__SERVING__FILE_SYSTEM_STORAGE_PATH_SOURCE_CONFIG__SERVABLE_VERSION_POLICY__POLICY_CHOICE_SPECIFIC:
            m->policy.kind = COFFER_SERVE_POLICY_SPECIFIC;
            if (p->specific->n_versions == 0)
                return SERVE_INVALID(st, "model %.64s: specific lists no versions", c->name);
            if ((m->policy.versions = coffer_mallocarray(p->specific->n_versions, sizeof(int64_t))) == NULL)
                return coffer_serve__nomem(st);
            memcpy(m->policy.versions, p->specific->versions, p->specific->n_versions * sizeof(int64_t));
            m->policy.version_count = p->specific->n_versions;
            break;
        default: /* none set: TF's default, latest 1 */
            break;
        }
    }
    for (size_t i = 0; i < c->n_version_labels; i++) {
        const Tensorflow__Serving__ModelConfig__VersionLabelsEntry *e = c->version_labels[i];
        if (e->key == NULL || e->key[0] == '\0')
            return SERVE_INVALID(st, "model %.64s: a version label without a name", c->name);
        /* a map: protobuf says the last duplicate key wins */
        size_t k = 0;
        while (k < m->label_count && strcmp(m->labels[k].label, e->key) != 0)
            k++;
        if (k == m->label_count) {
            if ((m->labels[k].label = coffer_strdup(e->key)) == NULL)
                return coffer_serve__nomem(st);
            m->label_count++;
        }
        m->labels[k].version = e->value;
    }
    return COFFER_OK;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_reload_request_decode(const uint8_t *data, size_t size, struct coffer_serve_config *out,
                                                   struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    coffer_serve_status_clear(st);
    Tensorflow__Serving__ReloadConfigRequest *m =
        tensorflow__serving__reload_config_request__unpack(&coffer_serve__pb_alloc, size, data);
    if (m == NULL)
        return SERVE_INVALID(st, "Could not parse ReloadConfigRequest: not a valid protobuf message");
    enum coffer_err r = COFFER_OK;
    const Tensorflow__Serving__ModelServerConfig *c = m->config;
    if (c == NULL || c->config_case != TENSORFLOW__SERVING__MODEL_SERVER_CONFIG__CONFIG_MODEL_CONFIG_LIST)
        r = SERVE_INVALID(st, "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                              "ModelConfigList is currently supported");
    const Tensorflow__Serving__ModelConfigList *list = r == COFFER_OK ? c->model_config_list : NULL;
    if (r == COFFER_OK && list->n_config > COFFER_SERVE__MAX_MODELS)
        r = SERVE_INVALID(st, "more than %d models", COFFER_SERVE__MAX_MODELS);
    if (r == COFFER_OK && (out->models = coffer_calloc(list->n_config ? list->n_config : 1, sizeof(*out->models))) ==
                              NULL)
        r = coffer_serve__nomem(st);
    for (size_t i = 0; r == COFFER_OK && i < list->n_config; i++) {
        r = model_from_pb(list->config[i], &out->models[out->model_count++], st);
        for (size_t k = 0; r == COFFER_OK && k < i; k++)
            if (strcmp(out->models[k].name, out->models[i].name) == 0)
                r = SERVE_INVALID(st, "Illegal to list model %.64s multiple times in config list",
                                  out->models[i].name);
    }
    tensorflow__serving__reload_config_request__free_unpacked(m, &coffer_serve__pb_alloc);
    if (r != COFFER_OK)
        coffer_serve_config_free(out);
    return r;
}

/* see coffer/serve.h */
enum coffer_err coffer_serve_reload_response_encode(const struct coffer_serve_status *status, uint8_t **out,
                                                    size_t *out_size)
{
    Tensorflow__Serving__StatusProto sp;
    tensorflow__serving__status_proto__init(&sp);
    sp.error_code = (Tensorflow__Error__Code)status->code;
    sp.error_message = SERVE_STR(status->code == COFFER_SERVE_OK ? "" : status->message);
    Tensorflow__Serving__ReloadConfigResponse resp;
    tensorflow__serving__reload_config_response__init(&resp);
    resp.status = &sp;
    return coffer_serve__pack(&resp.base, out, out_size);
}
