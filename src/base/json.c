/*
 * json.c — strict JSON parsing and typed member access over jansson.
 *
 * Design: input from outside is capped in size, parsed with duplicate keys
 * rejected and nothing after the value allowed; every error names the line
 * and column, or the JSON path of the member that was missing or of the
 * wrong type. jansson does the tokenising; the bytes reach it only after the
 * size check. jansson's allocations are wiped on free (constructor below).
 */
#include "coffer/base.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* jansson's memory is wiped before it is freed: JSON documents carry keys
 * (sealed state, secrets requests), and jansson copies strings freely.
 * Installed before main, so every json_t, however made, is covered. */
static void *json_alloc(size_t size) { return malloc(size); }

static void json_release(void *p)
{
    if (p != NULL) {
        coffer_memzero(p, malloc_usable_size(p));
        free(p);
    }
}

__attribute__((constructor)) static void json_install_allocator(void)
{
    json_set_alloc_funcs(json_alloc, json_release);
}

enum coffer_err coffer_json_parse(const void *data, size_t size, size_t max_size, json_t **out)
{
    *out = NULL;
    if (size > max_size)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "JSON document of %zu bytes is over the limit of %zu", size, max_size);
    json_error_t jerr;
    json_t *v = json_loadb(data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        return COFFER_FAIL(COFFER_E_JSON, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    *out = v;
    return COFFER_OK;
}

const char *coffer_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

static enum coffer_err member(const json_t *obj, const char *path, const char *key, bool required, json_t **out)
{
    *out = NULL;
    if (!json_is_object(obj))
        return COFFER_FAIL(COFFER_E_JSON, "%s: expected an object, got %s", path, coffer_json_type_name(obj));
    json_t *v = json_object_get(obj, key);
    if (v == NULL && required)
        return COFFER_FAIL(COFFER_E_JSON, "%s.%s: required member is missing", path, key);
    *out = v;
    return COFFER_OK;
}

static enum coffer_err wrong(const char *path, const char *key, const char *want, const json_t *v)
{
    return COFFER_FAIL(COFFER_E_JSON, "%s.%s: expected %s, got %s", path, key, want, coffer_json_type_name(v));
}

enum coffer_err coffer_json_get_string(const json_t *obj, const char *path, const char *key, bool required, const char **out)
{
    json_t *v;
    enum coffer_err r = member(obj, path, key, required, &v);
    if (r != COFFER_OK || v == NULL)
        return r;
    if (!json_is_string(v))
        return wrong(path, key, "a string", v);
    *out = json_string_value(v);
    return COFFER_OK;
}

enum coffer_err coffer_json_get_int(const json_t *obj, const char *path, const char *key, bool required, int64_t *out)
{
    json_t *v;
    enum coffer_err r = member(obj, path, key, required, &v);
    if (r != COFFER_OK || v == NULL)
        return r;
    if (!json_is_integer(v))
        return wrong(path, key, "an integer", v);
    *out = (int64_t)json_integer_value(v);
    return COFFER_OK;
}

enum coffer_err coffer_json_get_bool(const json_t *obj, const char *path, const char *key, bool required, bool *out)
{
    json_t *v;
    enum coffer_err r = member(obj, path, key, required, &v);
    if (r != COFFER_OK || v == NULL)
        return r;
    if (!json_is_boolean(v))
        return wrong(path, key, "a boolean", v);
    *out = json_is_true(v);
    return COFFER_OK;
}

enum coffer_err coffer_json_get_object(const json_t *obj, const char *path, const char *key, bool required, json_t **out)
{
    json_t *v;
    enum coffer_err r = member(obj, path, key, required, &v);
    if (r != COFFER_OK || v == NULL)
        return r;
    if (!json_is_object(v))
        return wrong(path, key, "an object", v);
    *out = v;
    return COFFER_OK;
}

enum coffer_err coffer_json_get_array(const json_t *obj, const char *path, const char *key, bool required, json_t **out)
{
    json_t *v;
    enum coffer_err r = member(obj, path, key, required, &v);
    if (r != COFFER_OK || v == NULL)
        return r;
    if (!json_is_array(v))
        return wrong(path, key, "an array", v);
    *out = v;
    return COFFER_OK;
}

enum coffer_err coffer_json_dump(const json_t *value, char **out, size_t *out_size)
{
    *out = NULL;
    if (out_size != NULL)
        *out_size = 0;
    char *s = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "serialising JSON");
    char *copy = coffer_strdup(s);
    free(s);
    if (copy == NULL)
        return COFFER_E_NOMEM;
    *out = copy;
    if (out_size != NULL)
        *out_size = strlen(copy);
    return COFFER_OK;
}
