/*
 * update.c — manifest updates as MarbleRun has them (marblerun.md §1b,
 * "Update semantics"):
 *
 *  - package update: a document with only {"Packages": {name:
 *    {"SecurityVersion": n}}}, by a user holding UpdateSecurityVersion on
 *    every package it names; SecurityVersion only goes up; applied at once;
 *    the intermediate CA and the shared certificate secrets are renewed, so
 *    marbles activated before it and after it stop trusting each other.
 *  - full update: a whole new manifest by a user holding UpdateManifest. It
 *    waits as the one pending update until UpdateThreshold users of the
 *    *current* manifest holding UpdateManifest (0: all of them) have
 *    acknowledged it by uploading the same bytes; the updater's upload
 *    counts as the first acknowledgement. Any of them may cancel it.
 *    (The current manifest's updaters decide, not the new one's: otherwise
 *    one updater could write a manifest in which only they may approve.)
 *    Applying it keeps secrets whose name and kind did not change (under
 *    RotateRootSecret only user-defined ones, and a new root secret),
 *    keeps the activation counts of marbles of the same name, renews the
 *    intermediate CA and, with RecoveryKeys, makes new recovery secrets.
 *
 * Every step is one audit line, made durable before the state is sealed.
 * The pending update is part of the sealed state, so it survives restarts.
 *
 * Trusts: the caller (api.c) for the client certificate; nothing in the
 * documents, which are parsed and validated here or by manifest.c.
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "coord_int.h"

void coord_pending_free(struct pending_update *p)
{
    if (p == NULL)
        return;
    coffer_free(p->raw);
    coffer_manifest_free(p->manifest);
    coffer_free(p->acked);
    coffer_free(p);
}

static bool may_update_manifest(const struct coffer_manifest *m, const struct coffer_mf_user *u)
{
    return coffer_manifest_user_may(m, u, COFFER_ROLE_MANIFEST, NULL, COFFER_ACTION_UPDATE_MANIFEST);
}

static void fingerprint_hex(const void *raw, size_t size, char out[65])
{
    uint8_t fp[32];
    SHA256(raw, size, fp);
    coffer_hex_encode(fp, 32, out);
}

/* Acknowledgements needed, and given so far. */
static void ack_counts(const struct coffer_coord *c, size_t *needed, size_t *given)
{
    const struct coffer_manifest *m = c->manifest;
    size_t updaters = 0;
    *given = 0;
    for (size_t i = 0; i < m->users_count; i++) {
        if (!may_update_manifest(m, &m->users[i]))
            continue;
        updaters++;
        if (c->pending->acked[i])
            (*given)++;
    }
    *needed = m->update_threshold ? m->update_threshold : updaters;
}

static enum coffer_err pending_reply(const struct coffer_coord *c, const char *message, bool with_manifest,
                                     json_t **out)
{
    const struct coffer_manifest *m = c->manifest;
    size_t needed, given;
    ack_counts(c, &needed, &given);
    json_t *missing = json_array();
    for (size_t i = 0; missing != NULL && i < m->users_count; i++)
        if (may_update_manifest(m, &m->users[i]) && !c->pending->acked[i])
            json_array_append_new(missing, json_string(m->users[i].name));
    *out = json_pack("{s:s,s:o,s:I}", "message", message, "missingUsers", missing, "missingAcknowledgments",
                     (json_int_t)(needed > given ? needed - given : 0));
    if (*out != NULL && with_manifest && coord_json_set_b64(*out, "manifest", c->pending->raw, c->pending->size) != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return *out != NULL ? COFFER_OK : COFFER_E_NOMEM;
}

/* ---- sealed state */

enum coffer_err coord_pending_to_json(const struct coffer_coord *c, json_t *state)
{
    if (c->pending == NULL)
        return COFFER_OK;
    json_t *p = json_object(), *acked = json_array();
    int rc = p == NULL || acked == NULL;
    for (size_t i = 0; !rc && i < c->manifest->users_count; i++)
        if (c->pending->acked[i])
            rc |= json_array_append_new(acked, json_string(c->manifest->users[i].name));
    if (!rc)
        rc |= coord_json_set_b64(p, "manifest", c->pending->raw, c->pending->size) |
              json_object_set_new(p, "acked", acked) | json_object_set_new(state, "pending_update", p);
    else {
        json_decref(p);
        json_decref(acked);
    }
    return rc ? COFFER_E_NOMEM : COFFER_OK;
}

static enum coffer_err pending_new(struct coffer_coord *c, const uint8_t *raw, size_t size,
                                   struct pending_update **out)
{
    struct pending_update *p = coffer_calloc(1, sizeof(*p));
    if (p == NULL)
        return COFFER_E_NOMEM;
    enum coffer_err r = coffer_manifest_parse(raw, size, &p->manifest);
    if (r == COFFER_OK)
        r = coffer_manifest_check_templates(p->manifest);
    if (r == COFFER_OK && ((p->raw = coffer_malloc(size)) == NULL ||
                           (p->acked = coffer_calloc(c->manifest->users_count + 1, sizeof(bool))) == NULL))
        r = COFFER_E_NOMEM;
    if (r != COFFER_OK) {
        coord_pending_free(p);
        return r;
    }
    memcpy(p->raw, raw, size);
    p->size = size;
    *out = p;
    return COFFER_OK;
}

enum coffer_err coord_pending_from_json(struct coffer_coord *c, const json_t *state)
{
    json_t *p = json_object_get(state, "pending_update");
    if (p == NULL)
        return COFFER_OK;
    uint8_t *raw;
    size_t size;
    json_t *acked = json_object_get(p, "acked");
    enum coffer_err r = coord_json_get_b64(p, "$.pending_update", "manifest", &raw, &size);
    if (r == COFFER_OK) {
        r = pending_new(c, raw, size, &c->pending);
        coffer_free(raw);
    }
    size_t i;
    json_t *name;
    json_array_foreach(acked, i, name) {
        for (size_t k = 0; r == COFFER_OK && json_is_string(name) && k < c->manifest->users_count; k++)
            if (strcmp(c->manifest->users[k].name, json_string_value(name)) == 0)
                c->pending->acked[k] = true;
    }
    return r;
}

/* ---- package updates */

/* A package update has the one top-level key Packages. */
static bool is_package_update(const json_t *top)
{
    const char *k;
    json_t *v;
    if (!json_is_object(top) || json_object_size(top) != 1)
        return false;
    json_object_foreach((json_t *)top, k, v) {
        if (strcasecmp(k, "Packages") != 0)
            return false;
    }
    return true;
}

static enum coffer_err renew_shared_certs(struct coffer_coord *c)
{
    for (size_t i = 0; i < c->manifest->secrets_count; i++) {
        const struct coffer_mf_secret *s = &c->manifest->secrets[i];
        struct secret_val *v = &c->secrets[i];
        if (s->user_defined || !s->shared || s->type == COFFER_SECRET_SYMMETRIC || s->type == COFFER_SECRET_PLAIN)
            continue;
        coffer_secret_free(v->key);
        coffer_free(v->cert);
        *v = (struct secret_val){0};
    }
    return coord_generate_secrets(c);
}

static enum coffer_err package_update(struct coffer_coord *c, const struct coffer_mf_user *u, const json_t *top,
                                      json_t **out)
{
    const struct coffer_manifest *m = c->manifest;
    const char *key;
    json_t *pkgs = NULL, *v;
    json_object_foreach((json_t *)top, key, v) pkgs = v;
    if (!json_is_object(pkgs) || json_object_size(pkgs) == 0)
        return COFFER_FAIL(COFFER_E_JSON, "$.Packages: expected a non-empty object of package name to "
                           "{\"SecurityVersion\": n}");
    uint16_t *svn = coffer_malloc((m->packages_count + 1) * sizeof(*svn));
    json_t *changed = json_object();
    enum coffer_err r = svn && changed ? COFFER_OK : COFFER_E_NOMEM;
    if (r == COFFER_OK)
        memcpy(svn, c->svn, m->packages_count * sizeof(*svn));
    const char *name;
    json_object_foreach(pkgs, name, v) {
        if (r != COFFER_OK)
            break;
        char path[300];
        snprintf(path, sizeof(path), "$.Packages.%s", name);
        const struct coffer_mf_package *pkg = coffer_manifest_package(m, name);
        json_t *n = NULL;
        const char *k;
        json_t *f;
        if (pkg == NULL) {
            r = COFFER_FAIL(COFFER_E_JSON, "%s: the manifest has no package of this name", path);
            break;
        }
        if (!json_is_object(v) || json_object_size(v) != 1) {
            r = COFFER_FAIL(COFFER_E_JSON, "%s: a package update sets SecurityVersion and nothing else", path);
            break;
        }
        json_object_foreach(v, k, f) {
            if (strcasecmp(k, "SecurityVersion") == 0)
                n = f;
        }
        if (n == NULL || !json_is_integer(n) || json_integer_value(n) < 0 || json_integer_value(n) > 0xffff) {
            r = COFFER_FAIL(COFFER_E_JSON, "%s.SecurityVersion: expected an integer from 0 to 65535 (and no other "
                            "field)", path);
            break;
        }
        size_t i = (size_t)(pkg - m->packages);
        uint16_t want = (uint16_t)json_integer_value(n);
        if (!pkg->has_svn) {
            r = COFFER_FAIL(COFFER_E_JSON, "%s: the package has no SecurityVersion to raise (it is identified by "
                            "its measurement alone)", path);
        } else if (!coffer_manifest_user_may(m, u, COFFER_ROLE_PACKAGES, name,
                                             COFFER_ACTION_UPDATE_SECURITY_VERSION)) {
            r = COFFER_FAIL(COFFER_E_DENIED, "user %s may not update the SecurityVersion of package %s", u->name,
                            name);
        } else if (want < c->svn[i]) {
            r = COFFER_FAIL(COFFER_E_JSON, "%s.SecurityVersion: %u is below the current %u (no downgrades)", path,
                            want, c->svn[i]);
        } else {
            svn[i] = want;
            if (json_object_set_new(changed, name, json_integer(want)) != 0)
                r = COFFER_E_NOMEM;
        }
    }
    if (r == COFFER_OK) {
        json_t *line = json_pack("{s:s,s:O}", "user", u->name, "packages", changed);
        r = coord_log(c, "security version increased", line);
    }
    if (r == COFFER_OK) {
        for (size_t i = 0; i < m->packages_count; i++) {
            c->svn[i] = svn[i];
            c->manifest->packages[i].security_version = svn[i];
        }
        if ((r = coffer_pki_rotate_intermediate(c->pki)) == COFFER_OK && (r = renew_shared_certs(c)) == COFFER_OK)
            r = coord_commit(c);
    }
    if (r == COFFER_OK) {
        coffer_info("package update by %s applied; the intermediate CA was renewed", u->name);
        *out = json_pack("{s:s,s:[],s:i}", "message", "SecurityVersion increased; the intermediate CA was renewed: "
                         "restart running marbles", "missingUsers", "missingAcknowledgments", 0);
        r = *out ? COFFER_OK : COFFER_E_NOMEM;
    }
    json_decref(changed);
    coffer_free(svn);
    return r;
}

/* ---- full updates */

/* Install the pending manifest. Caller holds cfg exclusively. */
static enum coffer_err apply_update(struct coffer_coord *c, json_t **recovery)
{
    *recovery = NULL;
    struct coffer_manifest *old = c->manifest, *nm = c->pending->manifest;
    struct secret_val *sv = coffer_calloc(nm->secrets_count + 1, sizeof(*sv));
    uint64_t *act = coffer_calloc(nm->marbles_count + 1, sizeof(*act));
    uint16_t *svn = coffer_calloc(nm->packages_count + 1, sizeof(*svn));
    struct coffer_secret *root = NULL;
    enum coffer_err r = sv && act && svn ? COFFER_OK : COFFER_E_NOMEM;
    if (r == COFFER_OK && nm->rotate_root_secret &&
        ((r = coffer_secret_new(32, &root)) != COFFER_OK || (r = coffer_random(root->data, 32)) != COFFER_OK))
        root = NULL;
    if (r == COFFER_OK)
        r = coffer_pki_rotate_intermediate(c->pki);
    /* the values before the rotation stay reachable as .Previous.Secrets */
    if (r == COFFER_OK && nm->rotate_root_secret)
        r = coord_prev_snapshot(c);
    if (r != COFFER_OK) {
        coffer_free(sv);
        coffer_free(act);
        coffer_free(svn);
        coffer_secret_free(root);
        return r;
    }
    /* from here on nothing fails before the swap */
    for (size_t i = 0; i < nm->secrets_count; i++) {
        const struct coffer_mf_secret *s = &nm->secrets[i];
        const struct coffer_mf_secret *o = coffer_manifest_secret(old, s->name);
        if (o == NULL || o->type != s->type || o->size_bits != s->size_bits || o->shared != s->shared ||
            o->user_defined != s->user_defined || (nm->rotate_root_secret && !s->user_defined))
            continue;
        struct secret_val *from = &c->secrets[o - old->secrets];
        sv[i] = *from;
        *from = (struct secret_val){0};
    }
    for (size_t i = 0; i < nm->packages_count; i++)
        svn[i] = nm->packages[i].security_version;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < nm->marbles_count; i++) {
        const struct coffer_mf_marble *o = coffer_manifest_marble(old, nm->marbles[i].name);
        if (o != NULL)
            act[i] = c->activations[o - old->marbles];
    }
    coord_free_secrets(c);
    c->secrets = sv;
    c->activations = act;
    c->svn = svn;
    c->manifest = nm;
    pthread_mutex_unlock(&c->mu);
    coffer_manifest_free(old);
    coffer_free(c->manifest_raw);
    c->manifest_raw = c->pending->raw;
    c->manifest_size = c->pending->size;
    c->pending->manifest = NULL;
    c->pending->raw = NULL;
    coord_pending_free(c->pending);
    c->pending = NULL;
    if (root != NULL) {
        coffer_secret_free(c->root_secret);
        c->root_secret = root;
    }
    char fph[65];
    fingerprint_hex(c->manifest_raw, c->manifest_size, fph);
    if ((r = coord_generate_secrets(c)) != COFFER_OK || (r = coord_recovery_secrets(c, recovery)) != COFFER_OK ||
        (r = coord_log(c, "update applied", json_pack("{s:s}", "manifestFingerprint", fph))) != COFFER_OK ||
        (r = coord_commit(c)) != COFFER_OK) {
        json_decref(*recovery);
        *recovery = NULL;
        return r;
    }
    coffer_info("manifest update applied (fingerprint %s); the intermediate CA was renewed", fph);
    return COFFER_OK;
}

/* After an acknowledgement: apply when enough, else seal the pending state. */
static enum coffer_err settle(struct coffer_coord *c, json_t **out)
{
    size_t needed, given;
    ack_counts(c, &needed, &given);
    if (given < needed) {
        enum coffer_err r = coord_commit(c);
        return r == COFFER_OK ? pending_reply(c, "acknowledged; waiting for the others", false, out) : r;
    }
    json_t *rec;
    enum coffer_err r = apply_update(c, &rec);
    if (r != COFFER_OK)
        return r;
    *out = json_pack("{s:s,s:[],s:i}", "message", "all acknowledgements in: the update is applied", "missingUsers",
                     "missingAcknowledgments", 0);
    if (*out != NULL && json_object_size(rec) > 0)
        json_object_set(*out, "recoverySecrets", rec);
    json_decref(rec);
    return *out ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err user_of(struct coffer_coord *c, const uint8_t *cert, size_t size,
                               const struct coffer_mf_user **u)
{
    if (c->state != COFFER_COORD_ACCEPTING_MARBLES)
        return COFFER_FAIL(COFFER_E_STATE, "updates need a manifest (state %d)", c->state);
    if ((*u = coord_find_user(c, cert, size)) == NULL)
        return COFFER_FAIL(COFFER_E_DENIED, "no user in the manifest has this client certificate");
    return COFFER_OK;
}

enum coffer_err coffer_coord_update(struct coffer_coord *c, const uint8_t *user_cert, size_t user_cert_size,
                                    const void *raw, size_t size, json_t **out)
{
    *out = NULL;
    json_t *top = NULL;
    const struct coffer_mf_user *u;
    pthread_rwlock_wrlock(&c->cfg);
    enum coffer_err r = user_of(c, user_cert, user_cert_size, &u);
    if (r == COFFER_OK && (r = coffer_json_parse(raw, size, COFFER_MANIFEST_MAX_SIZE, &top)) != COFFER_OK)
        coffer_err_context("update manifest");
    if (r == COFFER_OK && is_package_update(top)) {
        r = package_update(c, u, top, out);
    } else if (r == COFFER_OK) {
        char fph[65];
        fingerprint_hex(raw, size, fph);
        if (!may_update_manifest(c->manifest, u))
            r = COFFER_FAIL(COFFER_E_DENIED, "user %s may not update the manifest (no UpdateManifest role)", u->name);
        else if (c->pending != NULL)
            r = COFFER_FAIL(COFFER_E_STATE, "an update is already pending; acknowledge or cancel it first");
        else if ((r = pending_new(c, raw, size, &c->pending)) == COFFER_OK) {
            c->pending->acked[u - c->manifest->users] = true;
            r = coord_log(c, "update initiated", json_pack("{s:s,s:s}", "user", u->name, "manifestFingerprint", fph));
            if (r == COFFER_OK) {
                r = settle(c, out);
            } else {
                coord_pending_free(c->pending); /* not logged: not pending */
                c->pending = NULL;
            }
        }
    }
    json_decref(top);
    pthread_rwlock_unlock(&c->cfg);
    return r;
}

enum coffer_err coffer_coord_update_ack(struct coffer_coord *c, const uint8_t *user_cert, size_t user_cert_size,
                                        const void *raw, size_t size, json_t **out)
{
    *out = NULL;
    const struct coffer_mf_user *u;
    pthread_rwlock_wrlock(&c->cfg);
    enum coffer_err r = user_of(c, user_cert, user_cert_size, &u);
    char fph[65];
    fingerprint_hex(raw, size, fph);
    if (r != COFFER_OK) {
    } else if (c->pending == NULL) {
        r = COFFER_FAIL(COFFER_E_NOT_FOUND, "no update is pending");
    } else if (!may_update_manifest(c->manifest, u)) {
        r = COFFER_FAIL(COFFER_E_DENIED, "user %s may not acknowledge updates (no UpdateManifest role)", u->name);
    } else if (c->pending->size != size || memcmp(c->pending->raw, raw, size) != 0) {
        char want[65];
        fingerprint_hex(c->pending->raw, c->pending->size, want);
        r = COFFER_FAIL(COFFER_E_JSON, "$.manifest: not the pending update (SHA-256 %s; the pending one is %s)", fph,
                        want);
    } else if (c->pending->acked[u - c->manifest->users]) {
        r = COFFER_FAIL(COFFER_E_STATE, "user %s has already acknowledged this update", u->name);
    } else if ((r = coord_log(c, "update acknowledged",
                              json_pack("{s:s,s:s}", "user", u->name, "manifestFingerprint", fph))) == COFFER_OK) {
        c->pending->acked[u - c->manifest->users] = true;
        r = settle(c, out);
    }
    pthread_rwlock_unlock(&c->cfg);
    return r;
}

enum coffer_err coffer_coord_update_cancel(struct coffer_coord *c, const uint8_t *user_cert, size_t user_cert_size)
{
    const struct coffer_mf_user *u;
    pthread_rwlock_wrlock(&c->cfg);
    enum coffer_err r = user_of(c, user_cert, user_cert_size, &u);
    if (r != COFFER_OK) {
    } else if (!may_update_manifest(c->manifest, u)) {
        r = COFFER_FAIL(COFFER_E_DENIED, "user %s may not cancel updates (no UpdateManifest role)", u->name);
    } else if (c->pending == NULL) {
        r = COFFER_FAIL(COFFER_E_NOT_FOUND, "no update is pending");
    } else if ((r = coord_log(c, "update cancelled", json_pack("{s:s}", "user", u->name))) == COFFER_OK) {
        coord_pending_free(c->pending);
        c->pending = NULL;
        r = coord_commit(c);
    }
    pthread_rwlock_unlock(&c->cfg);
    return r;
}

enum coffer_err coffer_coord_update_pending(struct coffer_coord *c, json_t **out)
{
    *out = NULL;
    pthread_rwlock_rdlock(&c->cfg);
    enum coffer_err r = c->pending == NULL ? COFFER_FAIL(COFFER_E_NOT_FOUND, "no update is pending")
                                           : pending_reply(c, "an update is waiting for acknowledgements", true, out);
    pthread_rwlock_unlock(&c->cfg);
    return r;
}
