/*
 * template.c — rendering marble parameters: MarbleRun's template subset.
 *
 * Design: a single pass over the template text. Outside actions, bytes are
 * copied; an action `{{ FUNC PATH }}` (optionally `{{-` / `-}}`, which trim
 * the white space beside them, as in Go) is split into two words, PATH is
 * resolved through the caller's lookup, and FUNC encodes the value. The
 * subset is what MarbleRun manifests use; anything else (pipelines,
 * variables, conditionals) is refused with the action's offset rather than
 * rendered wrongly. The dry run at manifest upload resolves every path
 * against the manifest's secrets with dummy values.
 *
 * Trusts: nothing in the template. Invariants: I1 output is only appended
 * to the caller's buffer (a secret buffer holds key material safely).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "coffer/coordinator.h"

#define ACTION_MAX 512

static enum coffer_err apply(const char *func, const uint8_t *data, size_t size, enum coffer_tmpl_form form,
                             int secret_type, enum coffer_tmpl_kind kind, size_t at, struct coffer_buf *out)
{
    if (strcmp(func, "raw") == 0) {
        if (kind != COFFER_TMPL_FILE)
            return COFFER_FAIL(COFFER_E_MALFORMED, "template action at offset %zu: raw is for Files only", at);
        return coffer_buf_put(out, data, size);
    }
    if (strcmp(func, "hex") == 0) {
        enum coffer_err r = coffer_buf_reserve(out, 2 * size + 1);
        if (r != COFFER_OK)
            return r;
        coffer_hex_encode(data, size, (char *)out->data + out->size);
        out->size += 2 * size;
        return COFFER_OK;
    }
    if (strcmp(func, "base64") == 0) {
        size_t n = coffer_base64_encoded_len(size);
        enum coffer_err r = coffer_buf_reserve(out, n + 1);
        if (r != COFFER_OK)
            return r;
        coffer_base64_encode(data, size, (char *)out->data + out->size);
        out->size += n;
        return COFFER_OK;
    }
    if (strcmp(func, "pem") == 0) {
        switch (form) {
        case COFFER_TMPL_CERT: return coffer_pem_append(out, "CERTIFICATE", data, size);
        case COFFER_TMPL_PUBLIC_KEY: return coffer_pem_append(out, "PUBLIC KEY", data, size);
        case COFFER_TMPL_PRIVATE_KEY: return coffer_pem_append(out, "PRIVATE KEY", data, size);
        default:
            return COFFER_FAIL(COFFER_E_MALFORMED,
                               "template action at offset %zu: pem needs a certificate or a key", at);
        }
    }
    if (strcmp(func, "string") == 0) {
        if (kind != COFFER_TMPL_ENV)
            return COFFER_FAIL(COFFER_E_MALFORMED, "template action at offset %zu: string is for Env only", at);
        if (secret_type != COFFER_SECRET_PLAIN)
            return COFFER_FAIL(COFFER_E_MALFORMED, "template action at offset %zu: string is for plain secrets only",
                               at);
        if (memchr(data, 0, size) != NULL)
            return COFFER_FAIL(COFFER_E_MALFORMED, "template action at offset %zu: the value holds a NUL byte", at);
        return coffer_buf_put(out, data, size);
    }
    return COFFER_FAIL(COFFER_E_MALFORMED,
                       "template action at offset %zu: unknown function \"%s\" (raw, hex, base64, pem, string)", at,
                       func);
}

/* see coffer/coordinator.h */
enum coffer_err coffer_tmpl_render(const uint8_t *tmpl, size_t size, enum coffer_tmpl_kind kind,
                                   coffer_tmpl_lookup_fn lookup, void *arg, struct coffer_buf *out)
{
    struct coffer_rd rd;
    coffer_rd_init(&rd, tmpl, size);
    enum coffer_err r = COFFER_OK;
    while (coffer_rd_left(&rd) > 0 && r == COFFER_OK) {
        const uint8_t *rest = rd.data + rd.pos;
        size_t left = coffer_rd_left(&rd);
        const uint8_t *open = memmem(rest, left, "{{", 2);
        size_t text = open ? (size_t)(open - rest) : left;
        bool trim_left = open != NULL && text + 2 < left && rest[text + 2] == '-';
        size_t keep = text;
        if (trim_left)
            while (keep > 0 && isspace(rest[keep - 1]))
                keep--;
        if ((r = coffer_buf_put(out, rest, keep)) != COFFER_OK || (r = coffer_rd_skip(&rd, text)) != COFFER_OK)
            break;
        if (open == NULL)
            break;
        size_t at = rd.pos;
        const uint8_t *body = rd.data + rd.pos + 2;
        size_t body_left = coffer_rd_left(&rd) - 2;
        const uint8_t *close = memmem(body, body_left, "}}", 2);
        if (close == NULL)
            return COFFER_FAIL(COFFER_E_MALFORMED, "template action at offset %zu has no closing }}", at);
        size_t blen = (size_t)(close - body);
        if (blen >= ACTION_MAX)
            return COFFER_FAIL(COFFER_E_MALFORMED, "template action at offset %zu is too long", at);
        char action[ACTION_MAX];
        memcpy(action, body, blen);
        action[blen] = '\0';
        char *a = action;
        bool trim_right = false;
        if (trim_left)
            a++;
        size_t alen = strlen(a);
        if (alen > 0 && a[alen - 1] == '-') {
            trim_right = true;
            a[--alen] = '\0';
        }
        char func[64], path[ACTION_MAX], extra[8];
        int words = sscanf(a, " %63s %511s %7s", func, path, extra);
        if (words != 2)
            return COFFER_FAIL(COFFER_E_MALFORMED,
                               "template action at offset %zu: expected {{ FUNC .Path }}, got {{%s}}", at, action);
        const uint8_t *data = NULL;
        size_t dsize = 0;
        enum coffer_tmpl_form form = COFFER_TMPL_BYTES;
        int stype = -1;
        r = lookup(arg, path, &data, &dsize, &form, &stype);
        if (r == COFFER_E_NOT_FOUND)
            return COFFER_FAIL(COFFER_E_NOT_FOUND, "template action at offset %zu: %s does not exist", at, path);
        if (r != COFFER_OK)
            return r;
        if ((r = apply(func, data, dsize, form, stype, kind, at, out)) != COFFER_OK)
            return r;
        if ((r = coffer_rd_skip(&rd, 2 + blen + 2)) != COFFER_OK)
            return r;
        if (trim_right)
            while (coffer_rd_left(&rd) > 0 && isspace(rd.data[rd.pos]))
                rd.pos++;
    }
    return r;
}

/* ---- dry run */

struct dry {
    const struct coffer_manifest *m;
};

/* printable, so that `string` renders it in the dry run */
static const uint8_t dummy[32] = "dummy-value-for-the-dry-run-0123";

static enum coffer_err dry_lookup(void *arg, const char *path, const uint8_t **data, size_t *size,
                                  enum coffer_tmpl_form *form, int *secret_type)
{
    const struct dry *d = arg;
    *data = dummy;
    *size = sizeof(dummy);
    *form = COFFER_TMPL_BYTES;
    *secret_type = -1;
    static const struct {
        const char *path;
        enum coffer_tmpl_form form;
    } fixed[] = {
        {".MarbleRun.MarbleCert.Cert", COFFER_TMPL_CERT},
        {".MarbleRun.MarbleCert.Public", COFFER_TMPL_PUBLIC_KEY},
        {".MarbleRun.RootCA.Cert", COFFER_TMPL_CERT},
        {".MarbleRun.CoordinatorRoot.Cert", COFFER_TMPL_CERT},
        {".MarbleRun.CoordinatorIntermediate.Cert", COFFER_TMPL_CERT},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strcmp(path, fixed[i].path) == 0) {
            *form = fixed[i].form;
            return COFFER_OK;
        }
    if (strcmp(path, ".MarbleRun.MarbleCert.Private") == 0)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, ".MarbleRun.MarbleCert.Private: a coffer marble keeps its own "
                           "private key (it sends a CSR), so the coordinator cannot render it");
    const char *prefix = ".Secrets.", *previous_prefix = ".Previous.Secrets.";
    bool previous = strncmp(path, previous_prefix, strlen(previous_prefix)) == 0;
    if (!previous && strncmp(path, prefix, strlen(prefix)) != 0)
        return COFFER_E_NOT_FOUND;
    char name[ACTION_MAX];
    snprintf(name, sizeof(name), "%s", path + strlen(previous ? previous_prefix : prefix));
    char *part = strchr(name, '.');
    if (part != NULL)
        *part++ = '\0';
    const struct coffer_mf_secret *s = coffer_manifest_secret(d->m, name);
    if (s == NULL)
        return COFFER_E_NOT_FOUND;
    *secret_type = (int)s->type;
    bool cert = s->type == COFFER_SECRET_CERT_RSA || s->type == COFFER_SECRET_CERT_ECDSA ||
                s->type == COFFER_SECRET_CERT_ED25519;
    if (part == NULL) {
        *form = cert ? COFFER_TMPL_PUBLIC_KEY : COFFER_TMPL_BYTES;
        return COFFER_OK;
    }
    if (!cert)
        return COFFER_E_NOT_FOUND;
    if (strcmp(part, "Cert") == 0)
        *form = COFFER_TMPL_CERT;
    else if (strcmp(part, "Public") == 0)
        *form = COFFER_TMPL_PUBLIC_KEY;
    else if (strcmp(part, "Private") == 0)
        *form = COFFER_TMPL_PRIVATE_KEY;
    else
        return COFFER_E_NOT_FOUND;
    return COFFER_OK;
}

/* see coffer/coordinator.h */
enum coffer_err coffer_manifest_check_templates(const struct coffer_manifest *m)
{
    struct dry d = {.m = m};
    for (size_t i = 0; i < m->marbles_count; i++) {
        const struct coffer_mf_marble *mb = &m->marbles[i];
        for (int pass = 0; pass < 2; pass++) {
            const struct coffer_mf_value *vals = pass == 0 ? mb->files : mb->env;
            size_t n = pass == 0 ? mb->files_count : mb->env_count;
            for (size_t k = 0; k < n; k++) {
                if (vals[k].no_templates)
                    continue;
                struct coffer_buf out;
                coffer_buf_init(&out, 0, true);
                enum coffer_err r = coffer_tmpl_render(vals[k].data, vals[k].size,
                                                       pass == 0 ? COFFER_TMPL_FILE : COFFER_TMPL_ENV, dry_lookup,
                                                       &d, &out);
                coffer_buf_free(&out);
                if (r == COFFER_E_NOMEM)
                    return r;
                if (r != COFFER_OK) {
                    char detail[600];
                    snprintf(detail, sizeof(detail), "%s", coffer_err_detail());
                    return COFFER_FAIL(COFFER_E_JSON, "$.Marbles.%s.Parameters.%s.%s: %s", mb->name,
                                       pass == 0 ? "Files" : "Env", vals[k].name, detail);
                }
            }
        }
    }
    return COFFER_OK;
}
