/*
 * manifest.c — MarbleRun's manifest schema, parsed and validated.
 *
 * Design: jansson parses (duplicate keys rejected); this file walks the tree
 * with a JSON path in hand, so every error names the field that is wrong.
 * Struct-like objects match keys case-insensitively, as MarbleRun's Go
 * decoder does, and ignore unknown keys; two keys of one object that differ
 * only in case are refused (jansson lets them through, Go would silently
 * pick one). Map keys (package, marble, secret, user and role names) are
 * case-sensitive. Everything lives in one arena freed with the manifest.
 * The checks are MarbleRun's Check() (marblerun.md §1a), plus coffer's
 * package kinds (TEE: SGX, TDX, SNP, Simulation).
 *
 * Trusts: nothing in the input. Invariants: I1 a manifest returned by
 * coffer_manifest_parse satisfies every rule checked here, so later code
 * may rely on cross references (a marble's package exists, a role's
 * resources exist, a user's roles exist).
 */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "coffer/coordinator.h"

#define PATH_MAX_LEN 600

struct ctx {
    struct coffer_arena *arena;
};

static enum coffer_err bad(const char *path, const char *fmt, ...) COFFER_PRINTF(2, 3);
static enum coffer_err bad(const char *path, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return COFFER_FAIL(COFFER_E_JSON, "%s: %s", path, msg);
}

static void child(char *out, const char *path, const char *key)
{
    snprintf(out, PATH_MAX_LEN, "%s.%s", path, key);
}

/* A struct-like object: refuse keys that collide ignoring case. */
static enum coffer_err check_fields(const json_t *obj, const char *path)
{
    if (!json_is_object(obj))
        return bad(path, "expected an object, got %s", coffer_json_type_name(obj));
    const char *k1, *k2;
    json_t *v1, *v2;
    void *it1 = json_object_iter((json_t *)obj);
    for (; it1 != NULL; it1 = json_object_iter_next((json_t *)obj, it1)) {
        k1 = json_object_iter_key(it1);
        void *it2 = json_object_iter_next((json_t *)obj, it1);
        for (; it2 != NULL; it2 = json_object_iter_next((json_t *)obj, it2)) {
            k2 = json_object_iter_key(it2);
            if (strcasecmp(k1, k2) == 0)
                return bad(path, "keys \"%s\" and \"%s\" differ only in case", k1, k2);
        }
    }
    (void)v1;
    (void)v2;
    return COFFER_OK;
}

/* Member of a struct-like object, matched ignoring case; NULL when absent
 * or null. */
static json_t *field(const json_t *obj, const char *key)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (strcasecmp(k, key) == 0)
            return json_is_null(v) ? NULL : v;
    }
    return NULL;
}

static const char *dup(struct ctx *c, const char *s) { return coffer_arena_strdup(c->arena, s); }

static enum coffer_err get_string(struct ctx *c, const json_t *obj, const char *path, const char *key, bool required,
                                  const char **out)
{
    char p[PATH_MAX_LEN];
    child(p, path, key);
    json_t *v = field(obj, key);
    if (v == NULL)
        return required ? bad(p, "required") : COFFER_OK;
    if (!json_is_string(v))
        return bad(p, "expected a string, got %s", coffer_json_type_name(v));
    if ((*out = dup(c, json_string_value(v))) == NULL)
        return COFFER_E_NOMEM;
    return COFFER_OK;
}

static enum coffer_err get_uint(const json_t *obj, const char *path, const char *key, uint64_t max, bool *has,
                                uint64_t *out)
{
    char p[PATH_MAX_LEN];
    child(p, path, key);
    json_t *v = field(obj, key);
    if (has)
        *has = v != NULL;
    if (v == NULL)
        return COFFER_OK;
    if (!json_is_integer(v))
        return bad(p, "expected an integer, got %s", coffer_json_type_name(v));
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t)n > max)
        return bad(p, "%lld is out of range (0 to %llu)", (long long)n, (unsigned long long)max);
    *out = (uint64_t)n;
    return COFFER_OK;
}

static enum coffer_err get_bool(const json_t *obj, const char *path, const char *key, bool *out)
{
    char p[PATH_MAX_LEN];
    child(p, path, key);
    json_t *v = field(obj, key);
    if (v == NULL)
        return COFFER_OK;
    if (!json_is_boolean(v))
        return bad(p, "expected a boolean, got %s", coffer_json_type_name(v));
    *out = json_is_true(v);
    return COFFER_OK;
}

static enum coffer_err get_hex(const json_t *obj, const char *path, const char *key, uint8_t *out, size_t size,
                               bool *has)
{
    char p[PATH_MAX_LEN];
    child(p, path, key);
    json_t *v = field(obj, key);
    *has = false;
    if (v == NULL)
        return COFFER_OK;
    if (!json_is_string(v))
        return bad(p, "expected a hex string, got %s", coffer_json_type_name(v));
    const char *s = json_string_value(v);
    if (coffer_hex_decode(s, strlen(s), out, size) != COFFER_OK)
        return bad(p, "expected %zu hex digits (%zu bytes)", 2 * size, size);
    *has = true;
    return COFFER_OK;
}

static enum coffer_err get_strings(struct ctx *c, const json_t *obj, const char *path, const char *key,
                                   const char ***out, size_t *count)
{
    char p[PATH_MAX_LEN];
    child(p, path, key);
    *out = NULL;
    *count = 0;
    json_t *v = field(obj, key);
    if (v == NULL)
        return COFFER_OK;
    if (!json_is_array(v))
        return bad(p, "expected an array of strings, got %s", coffer_json_type_name(v));
    size_t n = json_array_size(v);
    const char **a = coffer_arena_alloc(c->arena, (n + 1) * sizeof(char *), sizeof(char *));
    if (a == NULL)
        return COFFER_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return bad(p, "element %zu: expected a string, got %s", i, coffer_json_type_name(e));
        if ((a[i] = dup(c, json_string_value(e))) == NULL)
            return COFFER_E_NOMEM;
    }
    *out = a;
    *count = n;
    return COFFER_OK;
}

/* A map of name -> object; calls fn for each, in document order. */
static enum coffer_err each_member(const json_t *top, const char *key, const char *path, bool required,
                                   size_t *count, void **array, size_t elem_size, struct ctx *c,
                                   enum coffer_err (*fn)(struct ctx *, const char *name, const json_t *v,
                                                         const char *path, void *elem))
{
    char p[PATH_MAX_LEN];
    child(p, path, key);
    json_t *map = field(top, key);
    *count = 0;
    *array = NULL;
    if (map == NULL || (json_is_object(map) && json_object_size(map) == 0))
        return required ? bad(p, "required, and must not be empty") : COFFER_OK;
    if (!json_is_object(map))
        return bad(p, "expected an object (name to value), got %s", coffer_json_type_name(map));
    size_t n = json_object_size(map);
    uint8_t *a = coffer_arena_alloc(c->arena, n * elem_size, 16);
    if (a == NULL)
        return COFFER_E_NOMEM;
    const char *name;
    json_t *v;
    size_t i = 0;
    json_object_foreach(map, name, v) {
        char ep[PATH_MAX_LEN];
        child(ep, p, name);
        if (name[0] == '\0')
            return bad(p, "an empty name is not allowed");
        const char *copy = dup(c, name);
        if (copy == NULL)
            return COFFER_E_NOMEM;
        enum coffer_err r = fn(c, copy, v, ep, a + i * elem_size);
        if (r != COFFER_OK)
            return r;
        i++;
    }
    *count = n;
    *array = a;
    return COFFER_OK;
}

/* ---- packages */

static enum coffer_err parse_package(struct ctx *c, const char *name, const json_t *v, const char *path, void *elem)
{
    struct coffer_mf_package *pk = elem;
    pk->name = name;
    enum coffer_err r = check_fields(v, path);
    if (r != COFFER_OK)
        return r;
    const char *tee = NULL;
    if ((r = get_string(c, v, path, "TEE", false, &tee)) != COFFER_OK)
        return r;
    char p[PATH_MAX_LEN];
    if (tee == NULL || strcasecmp(tee, "SGX") == 0)
        pk->tee = COFFER_TEE_SGX;
    else if (strcasecmp(tee, "TDX") == 0)
        pk->tee = COFFER_TEE_TDX;
    else if (strcasecmp(tee, "SNP") == 0 || strcasecmp(tee, "SEV-SNP") == 0)
        pk->tee = COFFER_TEE_SNP;
    else if (strcasecmp(tee, "Simulation") == 0)
        pk->tee = COFFER_TEE_SIMULATION;
    else {
        child(p, path, "TEE");
        return bad(p, "unknown TEE \"%s\" (SGX, TDX, SNP or Simulation)", tee);
    }
    uint64_t n;
    bool has;
    if ((r = get_hex(v, path, "UniqueID", pk->unique_id, 32, &pk->has_unique_id)) != COFFER_OK ||
        (r = get_hex(v, path, "SignerID", pk->signer_id, 32, &pk->has_signer_id)) != COFFER_OK)
        return r;
    if ((r = get_uint(v, path, "ProductID", 0xffff, &has, &n)) != COFFER_OK)
        return r;
    pk->has_product_id = has;
    pk->product_id = (uint16_t)n;
    if ((r = get_uint(v, path, "SecurityVersion", 0xffff, &has, &n)) != COFFER_OK)
        return r;
    pk->has_svn = has;
    pk->security_version = (uint16_t)n;
    if ((r = get_bool(v, path, "Debug", &pk->debug)) != COFFER_OK ||
        (r = get_strings(c, v, path, "AcceptedTCBStatuses", &pk->accepted_tcb_statuses,
                         &pk->accepted_tcb_statuses_count)) != COFFER_OK ||
        (r = get_strings(c, v, path, "AcceptedAdvisories", &pk->accepted_advisories,
                         &pk->accepted_advisories_count)) != COFFER_OK)
        return r;
    static const char *const statuses[] = {"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
                                           "ConfigurationAndSWHardeningNeeded", "OutOfDate",
                                           "OutOfDateConfigurationNeeded", "Revoked"};
    for (size_t i = 0; i < pk->accepted_tcb_statuses_count; i++) {
        bool known = false;
        for (size_t k = 0; k < sizeof(statuses) / sizeof(statuses[0]); k++)
            known |= strcasecmp(statuses[k], pk->accepted_tcb_statuses[i]) == 0;
        if (!known) {
            child(p, path, "AcceptedTCBStatuses");
            return bad(p, "unknown TCB status \"%s\"", pk->accepted_tcb_statuses[i]);
        }
    }
    if ((r = get_hex(v, path, "MRTD", pk->mrtd, 48, &pk->has_mrtd)) != COFFER_OK)
        return r;
    for (int i = 0; i < 4; i++) {
        char key[8];
        snprintf(key, sizeof(key), "RTMR%d", i);
        if ((r = get_hex(v, path, key, pk->rtmr[i], 48, &pk->has_rtmr[i])) != COFFER_OK)
            return r;
    }
    if ((r = get_hex(v, path, "Measurement", pk->measurement, 48, &pk->has_measurement)) != COFFER_OK)
        return r;
    if ((r = get_uint(v, path, "VMPL", 3, &pk->has_vmpl, &n)) != COFFER_OK)
        return r;
    pk->max_vmpl = (uint32_t)n;

    /* the identity rule, per kind */
    switch (pk->tee) {
    case COFFER_TEE_SGX: {
        bool triple = pk->has_signer_id || pk->has_product_id || pk->has_svn;
        bool full_triple = pk->has_signer_id && pk->has_product_id && pk->has_svn;
        if (!pk->has_unique_id && !triple)
            return bad(path, "an SGX package needs UniqueID, or SignerID, ProductID and SecurityVersion");
        if ((pk->has_unique_id && triple) || (!pk->has_unique_id && !full_triple)) {
            if (!pk->debug)
                return bad(path, "give either UniqueID alone, or all of SignerID, ProductID and SecurityVersion");
            coffer_warn("manifest %s: mixed or partial identity accepted because Debug is true", path);
        }
        break;
    }
    case COFFER_TEE_TDX:
        if (!pk->has_mrtd)
            return bad(path, "a TDX package needs MRTD");
        break;
    case COFFER_TEE_SNP:
        if (!pk->has_measurement)
            return bad(path, "an SNP package needs Measurement");
        break;
    case COFFER_TEE_SIMULATION:
        if (!pk->has_unique_id)
            return bad(path, "a Simulation package needs UniqueID (the SHA-256 of the executable)");
        break;
    }
    return COFFER_OK;
}

/* ---- marbles */

static enum coffer_err parse_value(struct ctx *c, const char *name, const json_t *v, const char *path,
                                   struct coffer_mf_value *out, bool env)
{
    out->name = name;
    const char *data = NULL, *encoding = "string";
    if (json_is_string(v)) {
        data = json_string_value(v);
    } else if (json_is_object(v)) {
        enum coffer_err r = check_fields(v, path);
        if (r != COFFER_OK || (r = get_string(c, v, path, "Data", false, &data)) != COFFER_OK ||
            (r = get_string(c, v, path, "Encoding", false, &encoding)) != COFFER_OK ||
            (r = get_bool(v, path, "NoTemplates", &out->no_templates)) != COFFER_OK)
            return r;
        if (data == NULL)
            data = "";
        if (encoding == NULL)
            encoding = "string";
    } else {
        return bad(path, "expected a string or an object {Data, Encoding, NoTemplates}, got %s", coffer_json_type_name(v));
    }
    size_t len = strlen(data);
    if (strcasecmp(encoding, "string") == 0) {
        uint8_t *d = coffer_arena_alloc(c->arena, len + 1, 1);
        if (d == NULL)
            return COFFER_E_NOMEM;
        memcpy(d, data, len);
        out->data = d;
        out->size = len;
    } else if (strcasecmp(encoding, "base64") == 0) {
        uint8_t *d;
        size_t n;
        enum coffer_err r = coffer_base64_decode(data, len, &d, &n);
        if (r == COFFER_E_NOMEM)
            return r;
        if (r != COFFER_OK)
            return bad(path, "Data is not valid base64: %s", coffer_err_detail());
        uint8_t *a = coffer_arena_alloc(c->arena, n + 1, 1);
        if (a == NULL) {
            coffer_free(d);
            return COFFER_E_NOMEM;
        }
        memcpy(a, d, n);
        coffer_free(d);
        out->data = a;
        out->size = n;
    } else if (strcasecmp(encoding, "hex") == 0) {
        if (len % 2 != 0)
            return bad(path, "Data is not valid hex: odd number of digits");
        uint8_t *a = coffer_arena_alloc(c->arena, len / 2 + 1, 1);
        if (a == NULL)
            return COFFER_E_NOMEM;
        if (coffer_hex_decode(data, len, a, len / 2) != COFFER_OK)
            return bad(path, "Data is not valid hex: %s", coffer_err_detail());
        out->data = a;
        out->size = len / 2;
    } else {
        return bad(path, "unknown Encoding \"%s\" (string, base64 or hex)", encoding);
    }
    if (env && memchr(out->data, 0, out->size) != NULL)
        return bad(path, "an environment value may not contain a NUL byte");
    return COFFER_OK;
}

static enum coffer_err parse_file_value(struct ctx *c, const char *name, const json_t *v, const char *path,
                                        void *elem)
{
    return parse_value(c, name, v, path, elem, false);
}

static enum coffer_err parse_env_value(struct ctx *c, const char *name, const json_t *v, const char *path, void *elem)
{
    return parse_value(c, name, v, path, elem, true);
}

static enum coffer_err parse_marble(struct ctx *c, const char *name, const json_t *v, const char *path, void *elem)
{
    struct coffer_mf_marble *mb = elem;
    mb->name = name;
    enum coffer_err r = check_fields(v, path);
    if (r != COFFER_OK || (r = get_string(c, v, path, "Package", true, &mb->package)) != COFFER_OK)
        return r;
    bool has;
    if ((r = get_uint(v, path, "MaxActivations", UINT32_MAX, &has, &mb->max_activations)) != COFFER_OK ||
        (r = get_bool(v, path, "DisableSecretBinding", &mb->disable_secret_binding)) != COFFER_OK)
        return r;
    json_t *tls = field(v, "TLS");
    if (tls != NULL && !(json_is_array(tls) && json_array_size(tls) == 0)) {
        char p[PATH_MAX_LEN];
        child(p, path, "TLS");
        return bad(p, "transparent TLS tags are an EGo/Edgeless RT feature that coffer marbles do not have");
    }
    json_t *params = field(v, "Parameters");
    if (params == NULL)
        return COFFER_OK;
    char pp[PATH_MAX_LEN];
    child(pp, path, "Parameters");
    void *a;
    if ((r = check_fields(params, pp)) != COFFER_OK ||
        (r = each_member(params, "Files", pp, false, &mb->files_count, &a, sizeof(struct coffer_mf_value), c,
                         parse_file_value)) != COFFER_OK)
        return r;
    mb->files = a;
    if ((r = each_member(params, "Env", pp, false, &mb->env_count, &a, sizeof(struct coffer_mf_value), c,
                         parse_env_value)) != COFFER_OK)
        return r;
    mb->env = a;
    return get_strings(c, params, pp, "Argv", &mb->argv, &mb->argv_count);
}

/* ---- secrets */

static enum coffer_err parse_secret(struct ctx *c, const char *name, const json_t *v, const char *path, void *elem)
{
    struct coffer_mf_secret *s = elem;
    s->name = name;
    enum coffer_err r = check_fields(v, path);
    const char *type = NULL;
    if (r != COFFER_OK || (r = get_string(c, v, path, "Type", true, &type)) != COFFER_OK)
        return r;
    char p[PATH_MAX_LEN];
    child(p, path, "Type");
    if (strcasecmp(type, "symmetric-key") == 0)
        s->type = COFFER_SECRET_SYMMETRIC;
    else if (strcasecmp(type, "cert-rsa") == 0)
        s->type = COFFER_SECRET_CERT_RSA;
    else if (strcasecmp(type, "cert-ecdsa") == 0)
        s->type = COFFER_SECRET_CERT_ECDSA;
    else if (strcasecmp(type, "cert-ed25519") == 0)
        s->type = COFFER_SECRET_CERT_ED25519;
    else if (strcasecmp(type, "plain") == 0)
        s->type = COFFER_SECRET_PLAIN;
    else
        return bad(p, "unknown secret type \"%s\" (symmetric-key, cert-rsa, cert-ecdsa, cert-ed25519, plain)", type);
    uint64_t n = 0;
    bool has;
    if ((r = get_uint(v, path, "Size", 65536, &has, &n)) != COFFER_OK ||
        (r = get_bool(v, path, "Shared", &s->shared)) != COFFER_OK ||
        (r = get_bool(v, path, "UserDefined", &s->user_defined)) != COFFER_OK)
        return r;
    s->size_bits = (uint32_t)n;
    n = 0; /* get_uint leaves n alone when ValidFor is absent */
    if ((r = get_uint(v, path, "ValidFor", 365000, &has, &n)) != COFFER_OK)
        return r;
    s->valid_for_days = (uint32_t)n;
    child(p, path, "Size");
    switch (s->type) {
    case COFFER_SECRET_SYMMETRIC:
        if (s->size_bits == 0 || s->size_bits % 8 != 0)
            return bad(p, "a symmetric key needs a Size in bits, a non-zero multiple of 8");
        break;
    case COFFER_SECRET_CERT_ECDSA:
        if (!s->user_defined && s->size_bits != 224 && s->size_bits != 256 && s->size_bits != 384 &&
            s->size_bits != 521)
            return bad(p, "an ECDSA key is 224, 256, 384 or 521 bits, not %u", s->size_bits);
        break;
    case COFFER_SECRET_CERT_ED25519:
        if (s->size_bits != 0)
            return bad(p, "an Ed25519 key has no Size");
        break;
    case COFFER_SECRET_CERT_RSA:
        if (!s->user_defined && (s->size_bits < 2048 || s->size_bits > 8192))
            return bad(p, "an RSA key is 2048 to 8192 bits, not %u", s->size_bits);
        break;
    case COFFER_SECRET_PLAIN:
        if (!s->user_defined) {
            child(p, path, "UserDefined");
            return bad(p, "a plain secret must be user-defined");
        }
        break;
    }
    json_t *cert = field(v, "Cert");
    if (cert != NULL) {
        char cp[PATH_MAX_LEN];
        child(cp, path, "Cert");
        if ((r = check_fields(cert, cp)) != COFFER_OK)
            return r;
        if (s->type == COFFER_SECRET_SYMMETRIC || s->type == COFFER_SECRET_PLAIN)
            return bad(cp, "only certificate secrets take a Cert template");
        if (field(cert, "NotAfter") != NULL && s->valid_for_days != 0)
            return bad(cp, "give Cert.NotAfter or ValidFor, not both");
        json_t *subject = field(cert, "Subject");
        if (subject != NULL) {
            char sp[PATH_MAX_LEN];
            child(sp, cp, "Subject");
            if ((r = check_fields(subject, sp)) != COFFER_OK ||
                (r = get_string(c, subject, sp, "CommonName", false, &s->common_name)) != COFFER_OK)
                return r;
        }
        if ((r = get_strings(c, cert, cp, "DNSNames", &s->dns_names, &s->dns_names_count)) != COFFER_OK)
            return r;
    }
    return COFFER_OK;
}

/* ---- users and roles */

static enum coffer_err parse_role(struct ctx *c, const char *name, const json_t *v, const char *path, void *elem)
{
    struct coffer_mf_role *ro = elem;
    ro->name = name;
    const char *type = NULL;
    const char **actions;
    size_t actions_count;
    enum coffer_err r = check_fields(v, path);
    if (r != COFFER_OK || (r = get_string(c, v, path, "ResourceType", true, &type)) != COFFER_OK ||
        (r = get_strings(c, v, path, "ResourceNames", &ro->resource_names, &ro->resource_names_count)) != COFFER_OK ||
        (r = get_strings(c, v, path, "Actions", &actions, &actions_count)) != COFFER_OK)
        return r;
    char p[PATH_MAX_LEN];
    child(p, path, "ResourceType");
    if (strcasecmp(type, "Packages") == 0)
        ro->resource = COFFER_ROLE_PACKAGES;
    else if (strcasecmp(type, "Secrets") == 0)
        ro->resource = COFFER_ROLE_SECRETS;
    else if (strcasecmp(type, "Manifest") == 0)
        ro->resource = COFFER_ROLE_MANIFEST;
    else
        return bad(p, "unknown resource type \"%s\" (Packages, Secrets or Manifest)", type);
    child(p, path, "Actions");
    if (actions_count == 0)
        return bad(p, "a role needs at least one action");
    for (size_t i = 0; i < actions_count; i++) {
        const char *a = actions[i];
        if (ro->resource == COFFER_ROLE_SECRETS && strcasecmp(a, "ReadSecret") == 0)
            ro->actions |= COFFER_ACTION_READ_SECRET;
        else if (ro->resource == COFFER_ROLE_SECRETS && strcasecmp(a, "WriteSecret") == 0)
            ro->actions |= COFFER_ACTION_WRITE_SECRET;
        else if (ro->resource == COFFER_ROLE_PACKAGES && strcasecmp(a, "UpdateSecurityVersion") == 0)
            ro->actions |= COFFER_ACTION_UPDATE_SECURITY_VERSION;
        else if (ro->resource == COFFER_ROLE_MANIFEST && strcasecmp(a, "UpdateManifest") == 0)
            ro->actions |= COFFER_ACTION_UPDATE_MANIFEST;
        else
            return bad(p, "action \"%s\" does not apply to %s", a, type);
    }
    if (ro->resource == COFFER_ROLE_MANIFEST && ro->resource_names_count > 0) {
        child(p, path, "ResourceNames");
        return bad(p, "a Manifest role takes no resource names");
    }
    return COFFER_OK;
}

static enum coffer_err parse_user(struct ctx *c, const char *name, const json_t *v, const char *path, void *elem)
{
    struct coffer_mf_user *u = elem;
    u->name = name;
    const char *pem = NULL;
    enum coffer_err r = check_fields(v, path);
    if (r != COFFER_OK || (r = get_string(c, v, path, "Certificate", true, &pem)) != COFFER_OK ||
        (r = get_strings(c, v, path, "Roles", &u->roles, &u->roles_count)) != COFFER_OK)
        return r;
    char p[PATH_MAX_LEN];
    child(p, path, "Certificate");
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (x == NULL)
        return bad(p, "not a PEM certificate");
    int n = i2d_X509(x, NULL);
    uint8_t *der = n > 0 ? coffer_arena_alloc(c->arena, (size_t)n, 1) : NULL;
    uint8_t *w = der;
    if (der == NULL || i2d_X509(x, &w) != n) {
        X509_free(x);
        return COFFER_E_NOMEM;
    }
    X509_free(x);
    u->cert_der = der;
    u->cert_der_size = (size_t)n;
    return COFFER_OK;
}

static enum coffer_err parse_recovery_key(struct ctx *c, const char *name, const json_t *v, const char *path,
                                          void *elem)
{
    struct coffer_mf_recovery_key *k = elem;
    k->name = name;
    if (!json_is_string(v))
        return bad(path, "expected a PEM public key, got %s", coffer_json_type_name(v));
    if ((k->public_key_pem = dup(c, json_string_value(v))) == NULL)
        return COFFER_E_NOMEM;
    BIO *bio = BIO_new_mem_buf(k->public_key_pem, -1);
    EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    bool rsa = pk != NULL && EVP_PKEY_is_a(pk, "RSA");
    EVP_PKEY_free(pk);
    if (!rsa)
        return bad(path, "not a PEM RSA public key");
    return COFFER_OK;
}

/* ---- cross references */

static bool in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static enum coffer_err check_refs(struct coffer_manifest *m)
{
    char p[PATH_MAX_LEN];
    for (size_t i = 0; i < m->marbles_count; i++) {
        const struct coffer_mf_marble *mb = &m->marbles[i];
        if (coffer_manifest_package(m, mb->package) == NULL) {
            snprintf(p, sizeof(p), "$.Marbles.%s.Package", mb->name);
            return bad(p, "no package named \"%s\"", mb->package);
        }
    }
    for (size_t i = 0; i < m->roles_count; i++) {
        const struct coffer_mf_role *ro = &m->roles[i];
        for (size_t k = 0; k < ro->resource_names_count; k++) {
            const char *n = ro->resource_names[k];
            snprintf(p, sizeof(p), "$.Roles.%s.ResourceNames", ro->name);
            if (ro->resource == COFFER_ROLE_PACKAGES && coffer_manifest_package(m, n) == NULL)
                return bad(p, "no package named \"%s\"", n);
            if (ro->resource == COFFER_ROLE_SECRETS) {
                const struct coffer_mf_secret *s = coffer_manifest_secret(m, n);
                if (s == NULL)
                    return bad(p, "no secret named \"%s\"", n);
                if ((ro->actions & COFFER_ACTION_WRITE_SECRET) && !s->user_defined)
                    return bad(p, "WriteSecret on \"%s\", which is not user-defined", n);
                if ((ro->actions & COFFER_ACTION_READ_SECRET) && !s->shared && !s->user_defined)
                    return bad(p, "ReadSecret on \"%s\", a per-marble secret", n);
            }
        }
    }
    size_t updaters = 0;
    for (size_t i = 0; i < m->users_count; i++) {
        const struct coffer_mf_user *u = &m->users[i];
        for (size_t k = 0; k < u->roles_count; k++)
            if (coffer_manifest_role(m, u->roles[k]) == NULL) {
                snprintf(p, sizeof(p), "$.Users.%s.Roles", u->name);
                return bad(p, "no role named \"%s\"", u->roles[k]);
            }
        for (size_t j = 0; j < i; j++)
            if (m->users[j].cert_der_size == u->cert_der_size &&
                memcmp(m->users[j].cert_der, u->cert_der, u->cert_der_size) == 0) {
                snprintf(p, sizeof(p), "$.Users.%s.Certificate", u->name);
                return bad(p, "the same certificate as user \"%s\"", m->users[j].name);
            }
        if (coffer_manifest_user_may(m, u, COFFER_ROLE_MANIFEST, NULL, COFFER_ACTION_UPDATE_MANIFEST))
            updaters++;
    }
    if (m->update_threshold > updaters)
        return bad("$.Config.UpdateThreshold", "%u, but only %zu users may update the manifest",
                   m->update_threshold, updaters);
    if (m->recovery_threshold == 1 || m->recovery_threshold > m->recovery_keys_count)
        if (m->recovery_threshold != 0)
            return bad("$.Config.RecoveryThreshold", "%u: must be at least 2 and at most the %zu recovery keys",
                       m->recovery_threshold, m->recovery_keys_count);
    return COFFER_OK;
}

static enum coffer_err parse_config(struct ctx *c, struct coffer_manifest *m, const json_t *top)
{
    json_t *cfg = field(top, "Config");
    if (cfg == NULL)
        return COFFER_OK;
    const char *path = "$.Config";
    const char *seal = NULL;
    const char **gates;
    size_t gates_count;
    uint64_t n = 0;
    enum coffer_err r = check_fields(cfg, path);
    if (r != COFFER_OK || (r = get_string(c, cfg, path, "SealMode", false, &seal)) != COFFER_OK ||
        (r = get_strings(c, cfg, path, "FeatureGates", &gates, &gates_count)) != COFFER_OK ||
        (r = get_bool(cfg, path, "RotateRootSecret", &m->rotate_root_secret)) != COFFER_OK)
        return r;
    if ((r = get_uint(cfg, path, "UpdateThreshold", 1000, NULL, &n)) != COFFER_OK)
        return r;
    m->update_threshold = (uint32_t)n;
    n = 0;
    if ((r = get_uint(cfg, path, "RecoveryThreshold", 1000, NULL, &n)) != COFFER_OK)
        return r;
    m->recovery_threshold = (uint32_t)n;
    if (seal == NULL || seal[0] == '\0' || strcasecmp(seal, "ProductKey") == 0)
        m->seal_mode = COFFER_SEAL_PRODUCT_KEY;
    else if (strcasecmp(seal, "UniqueKey") == 0)
        m->seal_mode = COFFER_SEAL_UNIQUE_KEY;
    else if (strcasecmp(seal, "Disabled") == 0)
        m->seal_mode = COFFER_SEAL_DISABLED;
    else
        return bad("$.Config.SealMode", "unknown seal mode \"%s\" (ProductKey, UniqueKey or Disabled)", seal);
    for (size_t i = 0; i < gates_count; i++) {
        if (strcasecmp(gates[i], "SignQuoteEndpoint") == 0)
            m->gate_sign_quote = true;
        else if (strcasecmp(gates[i], "MonotonicCounter") == 0)
            m->gate_monotonic_counter = true;
        else
            return bad("$.Config.FeatureGates", "unknown or unsupported feature gate \"%s\"", gates[i]);
    }
    return COFFER_OK;
}

/* see coffer/coordinator.h */
enum coffer_err coffer_manifest_parse(const void *json, size_t size, struct coffer_manifest **out)
{
    *out = NULL;
    json_t *top;
    enum coffer_err r = coffer_json_parse(json, size, COFFER_MANIFEST_MAX_SIZE, &top);
    if (r != COFFER_OK) {
        coffer_err_context("manifest");
        return r;
    }
    struct coffer_manifest *m = coffer_calloc(1, sizeof(*m));
    if (m == NULL) {
        json_decref(top);
        return COFFER_E_NOMEM;
    }
    if ((r = coffer_arena_new(16384, &m->arena)) != COFFER_OK) {
        coffer_free(m);
        json_decref(top);
        return r;
    }
    struct ctx c = {.arena = m->arena};
    void *a;
    if ((r = check_fields(top, "$")) != COFFER_OK)
        goto out;
    if ((r = each_member(top, "Packages", "$", true, &m->packages_count, &a, sizeof(struct coffer_mf_package), &c,
                         parse_package)) != COFFER_OK)
        goto out;
    m->packages = a;
    if ((r = each_member(top, "Marbles", "$", true, &m->marbles_count, &a, sizeof(struct coffer_mf_marble), &c,
                         parse_marble)) != COFFER_OK)
        goto out;
    m->marbles = a;
    if ((r = each_member(top, "Secrets", "$", false, &m->secrets_count, &a, sizeof(struct coffer_mf_secret), &c,
                         parse_secret)) != COFFER_OK)
        goto out;
    m->secrets = a;
    if ((r = each_member(top, "Roles", "$", false, &m->roles_count, &a, sizeof(struct coffer_mf_role), &c,
                         parse_role)) != COFFER_OK)
        goto out;
    m->roles = a;
    if ((r = each_member(top, "Users", "$", false, &m->users_count, &a, sizeof(struct coffer_mf_user), &c,
                         parse_user)) != COFFER_OK)
        goto out;
    m->users = a;
    if ((r = each_member(top, "RecoveryKeys", "$", false, &m->recovery_keys_count, &a,
                         sizeof(struct coffer_mf_recovery_key), &c, parse_recovery_key)) != COFFER_OK)
        goto out;
    m->recovery_keys = a;
    json_t *tls = field(top, "TLS");
    if (tls != NULL && !(json_is_object(tls) && json_object_size(tls) == 0)) {
        r = bad("$.TLS", "transparent TLS is an EGo/Edgeless RT feature that coffer marbles do not have");
        goto out;
    }
    if ((r = parse_config(&c, m, top)) != COFFER_OK || (r = check_refs(m)) != COFFER_OK)
        goto out;
out:
    json_decref(top);
    if (r != COFFER_OK) {
        coffer_manifest_free(m);
        return r;
    }
    *out = m;
    return COFFER_OK;
}

void coffer_manifest_free(struct coffer_manifest *m)
{
    if (m == NULL)
        return;
    coffer_arena_free(m->arena);
    coffer_free(m);
}

#define FIND(fn, type, array, count)                                              \
    const type *fn(const struct coffer_manifest *m, const char *name)             \
    {                                                                             \
        for (size_t i = 0; name != NULL && i < m->count; i++)                     \
            if (strcmp(m->array[i].name, name) == 0)                              \
                return &m->array[i];                                              \
        return NULL;                                                              \
    }
FIND(coffer_manifest_package, struct coffer_mf_package, packages, packages_count)
FIND(coffer_manifest_marble, struct coffer_mf_marble, marbles, marbles_count)
FIND(coffer_manifest_secret, struct coffer_mf_secret, secrets, secrets_count)
FIND(coffer_manifest_role, struct coffer_mf_role, roles, roles_count)

const struct coffer_mf_user *coffer_manifest_user_by_cert(const struct coffer_manifest *m, const uint8_t *cert_der,
                                                          size_t cert_der_size)
{
    for (size_t i = 0; i < m->users_count; i++)
        if (m->users[i].cert_der_size == cert_der_size &&
            coffer_ct_eq(m->users[i].cert_der, cert_der, cert_der_size))
            return &m->users[i];
    return NULL;
}

bool coffer_manifest_user_may(const struct coffer_manifest *m, const struct coffer_mf_user *user,
                              enum coffer_role_resource resource, const char *name, unsigned action)
{
    for (size_t i = 0; i < user->roles_count; i++) {
        const struct coffer_mf_role *ro = coffer_manifest_role(m, user->roles[i]);
        if (ro == NULL || ro->resource != resource || (ro->actions & action) == 0)
            continue;
        if (resource == COFFER_ROLE_MANIFEST || in_list(ro->resource_names, ro->resource_names_count, name))
            return true;
    }
    return false;
}
