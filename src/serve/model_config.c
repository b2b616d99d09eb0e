/*
 * model_config.c — the --model_config_file: protobuf text format of
 * ModelServerConfig, for the fields TF Serving users put there.
 *
 * Design: two passes. A tokenizer over struct coffer_rd (tracking line and
 * column) feeds a generic text-format parser that builds a small tree of
 * fields (name, position, scalar or children); an interpreter then walks the
 * tree against the known schema, so every error names the line and column of
 * the field that caused it:
 *   model_config_list { config { name, base_path, model_platform,
 *     model_version_policy { latest { num_versions } | all {} |
 *                            specific { versions ... } },
 *     version_labels { key value } } }
 * Text-format details accepted: # comments, "..." and '...' strings with C
 * escapes (adjacent strings concatenate), ':' optional before a message,
 * '<' '>' as braces, '[a, b]' lists, ',' or ';' after a field. Unknown or
 * unsupported fields are errors, not silently ignored: a typo in a serving
 * config should not quietly serve the wrong thing.
 *
 * Invariants: I1 nesting depth and field count are capped before anything
 * grows with them. I2 every error carries "line L column C". I3 on failure
 * the caller owns nothing.
 *
 * The same tree serves the other text-format files TF Serving reads:
 * --ssl_config_file (SSLConfig: PEM contents inline; the strings are wiped
 * when freed, as they hold a private key), --monitoring_config_file
 * (MonitoringConfig.prometheus_config) and --batching_parameters_file
 * (BatchingParameters, whose fields are wrapper messages { value: N }).
 *
 * Trusts: nothing in the text.
 */
#include "serve_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 16
#define MAX_NODES 100000
#define MAX_MODELS COFFER_SERVE__MAX_MODELS /* duplicate checks are quadratic: keep them bounded */
#define MAX_LABELS COFFER_SERVE__MAX_LABELS

/* ---------------------------------------------------------------- tokens */

enum tok_kind { T_EOF, T_IDENT, T_STRING, T_NUMBER, T_PUNCT };

struct tok {
    enum tok_kind kind;
    int line, col;
    char punct;
    const uint8_t *p; /* IDENT/NUMBER text */
    size_t n;
    char *str; /* STRING: decoded, owned */
    size_t str_len;
};

struct lexer {
    struct coffer_rd rd;
    int line, col;
    struct tok cur;
    bool have;
    size_t nodes;
};

/* Which file is being read, for messages ("model config", "ssl config"). */
static _Thread_local const char *file_kind = "model config";

static enum coffer_err at(int line, int col, const char *fmt, ...) COFFER_PRINTF(3, 4);
static enum coffer_err at(int line, int col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return COFFER_FAIL(COFFER_E_MALFORMED, "%s: line %d column %d: %s", file_kind, line, col, msg);
}

static bool peek_byte(struct lexer *lx, uint8_t *c)
{
    if (coffer_rd_left(&lx->rd) == 0)
        return false;
    *c = lx->rd.data[lx->rd.pos];
    return true;
}

static void advance(struct lexer *lx)
{
    uint8_t c;
    if (coffer_rd_u8(&lx->rd, &c) != COFFER_OK)
        return;
    if (c == '\n') {
        lx->line++;
        lx->col = 1;
    } else {
        lx->col++;
    }
}

static bool is_ident_start(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_ident(uint8_t c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
static bool is_num(uint8_t c) { return (c >= '0' && c <= '9') || c == '-' || c == '+'; }

static void tok_clear(struct tok *t)
{
    if (t->str != NULL)
        coffer_memzero(t->str, t->str_len); /* strings may be private keys (ssl config) */
    coffer_free(t->str);
    memset(t, 0, sizeof(*t));
}

static enum coffer_err lex_string(struct lexer *lx, struct tok *t)
{
    struct coffer_buf b;
    coffer_buf_init(&b, lx->rd.size + 1, true); /* wiped on growth and free */
    enum coffer_err r = COFFER_OK;
    uint8_t c;
    /* one or more adjacent literals */
    for (;;) {
        uint8_t q;
        if (!peek_byte(lx, &q) || (q != '"' && q != '\''))
            break;
        int sl = lx->line, sc = lx->col;
        advance(lx);
        for (;;) {
            if (!peek_byte(lx, &c) || c == '\n') {
                r = at(sl, sc, "unterminated string");
                goto out;
            }
            advance(lx);
            if (c == q)
                break;
            if (c == '\\') {
                int el = lx->line, ec = lx->col - 1;
                if (!peek_byte(lx, &c)) {
                    r = at(el, ec, "unterminated string");
                    goto out;
                }
                advance(lx);
                switch (c) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                case 'a': c = '\a'; break;
                case 'b': c = '\b'; break;
                case 'f': c = '\f'; break;
                case 'v': c = '\v'; break;
                case '\\': case '\'': case '"': case '?': break;
                case 'x': {
                    int v = 0, k = 0;
                    uint8_t h;
                    while (k < 2 && peek_byte(lx, &h) &&
                           ((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F'))) {
                        v = v * 16 + (h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                        advance(lx);
                        k++;
                    }
                    if (k == 0) {
                        r = at(el, ec, "\\x without hex digits");
                        goto out;
                    }
                    c = (uint8_t)v;
                    break;
                }
                default:
                    if (c >= '0' && c <= '7') {
                        int v = c - '0', k = 1;
                        uint8_t o;
                        while (k < 3 && peek_byte(lx, &o) && o >= '0' && o <= '7') {
                            v = v * 8 + (o - '0');
                            advance(lx);
                            k++;
                        }
                        if (v > 255) {
                            r = at(el, ec, "octal escape over 255");
                            goto out;
                        }
                        c = (uint8_t)v;
                    } else {
                        r = at(el, ec, "unknown escape \\%c", c >= 0x20 && c < 0x7f ? c : '?');
                        goto out;
                    }
                }
            }
            if (c == 0) {
                r = at(sl, sc, "NUL byte in a string");
                goto out;
            }
            if ((r = coffer_buf_put_u8(&b, c)) != COFFER_OK)
                goto out;
        }
        /* whitespace may separate adjacent literals */
        while (peek_byte(lx, &c) && (c == ' ' || c == '\t' || c == '\r' || c == '\n'))
            advance(lx);
    }
    if ((r = coffer_buf_put_u8(&b, 0)) != COFFER_OK)
        goto out;
    t->kind = T_STRING;
    size_t n;
    t->str = (char *)coffer_buf_steal(&b, &n);
    t->str_len = n - 1;
    return COFFER_OK;
out:
    coffer_buf_free(&b);
    return r;
}

static enum coffer_err lex_next(struct lexer *lx, struct tok *t)
{
    memset(t, 0, sizeof(*t));
    uint8_t c;
    for (;;) {
        if (!peek_byte(lx, &c)) {
            t->kind = T_EOF;
            t->line = lx->line;
            t->col = lx->col;
            return COFFER_OK;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            advance(lx);
        } else if (c == '#') {
            while (peek_byte(lx, &c) && c != '\n')
                advance(lx);
        } else {
            break;
        }
    }
    t->line = lx->line;
    t->col = lx->col;
    if (c == '"' || c == '\'')
        return lex_string(lx, t);
    size_t start = lx->rd.pos;
    if (is_ident_start(c)) {
        while (peek_byte(lx, &c) && (is_ident(c) || c == '.'))
            advance(lx);
        t->kind = T_IDENT;
    } else if (is_num(c)) {
        advance(lx);
        while (peek_byte(lx, &c) && (is_ident(c) || c == '.' || c == '-' || c == '+'))
            advance(lx);
        t->kind = T_NUMBER;
    } else if (strchr("{}<>:[],;", c) != NULL && c != 0) {
        advance(lx);
        t->kind = T_PUNCT;
        t->punct = (char)c;
        return COFFER_OK;
    } else {
        return at(t->line, t->col, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
    }
    t->p = lx->rd.data + start;
    t->n = lx->rd.pos - start;
    return COFFER_OK;
}

static enum coffer_err peek(struct lexer *lx, struct tok **t)
{
    if (!lx->have) {
        enum coffer_err r = lex_next(lx, &lx->cur);
        if (r != COFFER_OK)
            return r;
        lx->have = true;
    }
    *t = &lx->cur;
    return COFFER_OK;
}

/* Take the current token (ownership of its string moves to *out). */
static void take(struct lexer *lx, struct tok *out)
{
    *out = lx->cur;
    memset(&lx->cur, 0, sizeof(lx->cur));
    lx->have = false;
}

static bool is_punct(const struct tok *t, char c) { return t->kind == T_PUNCT && t->punct == c; }

/* ------------------------------------------------------------------ tree */

struct node {
    char *name;
    int line, col;
    bool is_msg;
    struct tok value; /* scalar */
    struct node *kids;
    size_t nkids, cap;
};

static void node_free(struct node *n)
{
    for (size_t i = 0; i < n->nkids; i++)
        node_free(&n->kids[i]);
    coffer_free(n->kids);
    coffer_free(n->name);
    tok_clear(&n->value);
}

static struct node *add_kid(struct lexer *lx, struct node *parent, const struct tok *name_tok)
{
    if (++lx->nodes > MAX_NODES) {
        at(name_tok->line, name_tok->col, "more than %d fields", MAX_NODES);
        return NULL;
    }
    if (parent->nkids == parent->cap) {
        size_t nc = parent->cap ? parent->cap * 2 : 4;
        struct node *k = coffer_realloc(parent->kids, nc * sizeof(*k));
        if (k == NULL)
            return NULL;
        parent->kids = k;
        parent->cap = nc;
    }
    struct node *n = &parent->kids[parent->nkids];
    memset(n, 0, sizeof(*n));
    n->name = coffer_malloc(name_tok->n + 1);
    if (n->name == NULL)
        return NULL;
    memcpy(n->name, name_tok->p, name_tok->n);
    n->name[name_tok->n] = '\0';
    n->line = name_tok->line;
    n->col = name_tok->col;
    parent->nkids++;
    return n;
}

static enum coffer_err parse_fields(struct lexer *lx, struct node *msg, char close, int depth);

/* After the field name (and optional ':'): a message body or a scalar. */
static enum coffer_err parse_value(struct lexer *lx, struct node *n, int depth)
{
    struct tok *t;
    enum coffer_err r = peek(lx, &t);
    if (r != COFFER_OK)
        return r;
    if (is_punct(t, '{') || is_punct(t, '<')) {
        char close = t->punct == '{' ? '}' : '>';
        if (depth >= MAX_DEPTH)
            return at(t->line, t->col, "messages nested deeper than %d", MAX_DEPTH);
        struct tok open;
        take(lx, &open);
        n->is_msg = true;
        return parse_fields(lx, n, close, depth + 1);
    }
    if (t->kind == T_STRING || t->kind == T_NUMBER || t->kind == T_IDENT) {
        take(lx, &n->value);
        return COFFER_OK;
    }
    return at(t->line, t->col, "expected a value for field '%s'", n->name);
}

static enum coffer_err parse_fields(struct lexer *lx, struct node *msg, char close, int depth)
{
    for (;;) {
        struct tok *t;
        enum coffer_err r = peek(lx, &t);
        if (r != COFFER_OK)
            return r;
        if (t->kind == T_EOF) {
            if (close == 0)
                return COFFER_OK;
            return at(t->line, t->col, "missing '%c' before the end of the file", close);
        }
        if (close != 0 && is_punct(t, close)) {
            struct tok c;
            take(lx, &c);
            return COFFER_OK;
        }
        if (t->kind != T_IDENT)
            return at(t->line, t->col, "expected a field name");
        struct tok name;
        take(lx, &name);
        if ((r = peek(lx, &t)) != COFFER_OK)
            return r;
        bool colon = is_punct(t, ':');
        if (colon) {
            struct tok c;
            take(lx, &c);
            if ((r = peek(lx, &t)) != COFFER_OK)
                return r;
        }
        if (is_punct(t, '[')) {
            /* a list: name: [v, v, ...] of scalars or messages */
            struct tok open;
            take(lx, &open);
            if ((r = peek(lx, &t)) != COFFER_OK)
                return r;
            if (is_punct(t, ']')) {
                take(lx, &open);
            } else {
                for (;;) {
                    struct node *n = add_kid(lx, msg, &name);
                    if (n == NULL)
                        return lx->nodes > MAX_NODES ? COFFER_E_MALFORMED : COFFER_E_NOMEM;
                    if ((r = parse_value(lx, n, depth)) != COFFER_OK)
                        return r;
                    if ((r = peek(lx, &t)) != COFFER_OK)
                        return r;
                    if (is_punct(t, ']')) {
                        take(lx, &open);
                        break;
                    }
                    if (!is_punct(t, ','))
                        return at(t->line, t->col, "expected ',' or ']' in the list of '%.*s'", (int)name.n,
                                  (const char *)name.p);
                    take(lx, &open);
                }
            }
        } else {
            if (!colon && !is_punct(t, '{') && !is_punct(t, '<'))
                return at(t->line, t->col, "expected ':' after field name '%.*s'", (int)name.n, (const char *)name.p);
            struct node *n = add_kid(lx, msg, &name);
            if (n == NULL)
                return lx->nodes > MAX_NODES ? COFFER_E_MALFORMED : COFFER_E_NOMEM;
            if ((r = parse_value(lx, n, depth)) != COFFER_OK)
                return r;
        }
        if ((r = peek(lx, &t)) != COFFER_OK)
            return r;
        if (is_punct(t, ',') || is_punct(t, ';')) {
            struct tok sep;
            take(lx, &sep);
        }
    }
}

/* ------------------------------------------------------------ interpret */

static enum coffer_err want_msg(const struct node *n)
{
    return n->is_msg ? COFFER_OK : at(n->line, n->col, "field '%s' is a message: expected '{'", n->name);
}

static enum coffer_err get_string(const struct node *n, char **out)
{
    if (n->is_msg || n->value.kind != T_STRING)
        return at(n->line, n->col, "field '%s' expects a quoted string", n->name);
    if (*out != NULL)
        return at(n->line, n->col, "field '%s' is given more than once", n->name);
    *out = coffer_strdup(n->value.str);
    return *out != NULL ? COFFER_OK : COFFER_E_NOMEM;
}

static enum coffer_err get_int(const struct node *n, int64_t min, int64_t max, int64_t *out)
{
    if (n->is_msg || n->value.kind != T_NUMBER)
        return at(n->line, n->col, "field '%s' expects an integer", n->name);
    char buf[32];
    if (n->value.n >= sizeof(buf))
        return at(n->line, n->col, "field '%s': integer too long", n->name);
    memcpy(buf, n->value.p, n->value.n);
    buf[n->value.n] = '\0';
    const char *s = buf;
    bool neg = false;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        base = 16, s += 2;
    if (*s == '\0')
        return at(n->line, n->col, "field '%s': '%s' is not an integer", n->name, buf);
    uint64_t v = 0;
    for (; *s; s++) {
        int d = *s >= '0' && *s <= '9' ? *s - '0' : base == 16 && ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'f') ? (*s | 0x20) - 'a' + 10 : -1;
        if (d < 0 || d >= base)
            return at(n->line, n->col, "field '%s': '%s' is not an integer", n->name, buf);
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return at(n->line, n->col, "field '%s': %s is out of range", n->name, buf);
        v = v * (uint64_t)base + (uint64_t)d;
    }
    int64_t val;
    if (!neg) {
        if (v > (uint64_t)max || (int64_t)v < min)
            return at(n->line, n->col, "field '%s': %s is out of range", n->name, buf);
        val = (int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX + 1)
            return at(n->line, n->col, "field '%s': %s is out of range", n->name, buf);
        val = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        if (val < min)
            return at(n->line, n->col, "field '%s': %s is out of range", n->name, buf);
    }
    *out = val;
    return COFFER_OK;
}

static enum coffer_err unknown(const struct node *n, const char *where)
{
    return at(n->line, n->col, "unknown or unsupported field '%s' in %s", n->name, where);
}

static enum coffer_err parse_policy(const struct node *pn, struct coffer_serve_version_policy *p)
{
    enum coffer_err r = want_msg(pn);
    if (r != COFFER_OK)
        return r;
    bool set = false;
    for (size_t i = 0; i < pn->nkids; i++) {
        const struct node *k = &pn->kids[i];
        if (set)
            return at(k->line, k->col, "model_version_policy holds more than one of latest, all, specific");
        set = true;
        if ((r = want_msg(k)) != COFFER_OK)
            return r;
        if (strcmp(k->name, "latest") == 0) {
            p->kind = COFFER_SERVE_POLICY_LATEST;
            for (size_t j = 0; j < k->nkids; j++) {
                const struct node *f = &k->kids[j];
                int64_t v;
                if (strcmp(f->name, "num_versions") != 0)
                    return unknown(f, "latest");
                if ((r = get_int(f, 0, UINT32_MAX, &v)) != COFFER_OK)
                    return r;
                p->num_versions = (uint32_t)v;
            }
        } else if (strcmp(k->name, "all") == 0) {
            p->kind = COFFER_SERVE_POLICY_ALL;
            if (k->nkids > 0)
                return unknown(&k->kids[0], "all");
        } else if (strcmp(k->name, "specific") == 0) {
            p->kind = COFFER_SERVE_POLICY_SPECIFIC;
            p->versions = coffer_calloc(k->nkids ? k->nkids : 1, sizeof(*p->versions));
            if (p->versions == NULL)
                return COFFER_E_NOMEM;
            for (size_t j = 0; j < k->nkids; j++) {
                const struct node *f = &k->kids[j];
                if (strcmp(f->name, "versions") != 0)
                    return unknown(f, "specific");
                if ((r = get_int(f, INT64_MIN, INT64_MAX, &p->versions[p->version_count])) != COFFER_OK)
                    return r;
                p->version_count++;
            }
            if (p->version_count == 0)
                return at(k->line, k->col, "specific lists no versions");
        } else {
            return unknown(k, "model_version_policy");
        }
    }
    return COFFER_OK;
}

static void model_free(struct coffer_serve_model_config *m)
{
    coffer_free(m->name);
    coffer_free(m->base_path);
    coffer_free(m->platform);
    coffer_free(m->policy.versions);
    for (size_t i = 0; i < m->label_count; i++)
        coffer_free(m->labels[i].label);
    coffer_free(m->labels);
    memset(m, 0, sizeof(*m));
}

static enum coffer_err parse_model(const struct node *cn, struct coffer_serve_model_config *m)
{
    enum coffer_err r = want_msg(cn);
    if (r != COFFER_OK)
        return r;
    bool have_policy = false;
    m->labels = coffer_calloc(cn->nkids ? cn->nkids : 1, sizeof(*m->labels));
    if (m->labels == NULL)
        return COFFER_E_NOMEM;
    for (size_t i = 0; i < cn->nkids && r == COFFER_OK; i++) {
        const struct node *f = &cn->kids[i];
        if (strcmp(f->name, "name") == 0) {
            r = get_string(f, &m->name);
        } else if (strcmp(f->name, "base_path") == 0) {
            r = get_string(f, &m->base_path);
        } else if (strcmp(f->name, "model_platform") == 0) {
            if ((r = get_string(f, &m->platform)) == COFFER_OK && strcmp(m->platform, "tensorflow") != 0 &&
                strcmp(m->platform, "onnx") != 0)
                r = at(f->line, f->col, "model_platform \"%.64s\" is not supported (tensorflow or onnx)", m->platform);
        } else if (strcmp(f->name, "model_version_policy") == 0) {
            if (have_policy)
                r = at(f->line, f->col, "field 'model_version_policy' is given more than once");
            have_policy = true;
            if (r == COFFER_OK)
                r = parse_policy(f, &m->policy);
        } else if (strcmp(f->name, "version_labels") == 0) {
            if ((r = want_msg(f)) != COFFER_OK)
                break;
            if (m->label_count == MAX_LABELS) {
                r = at(f->line, f->col, "more than %d version_labels", MAX_LABELS);
                break;
            }
            struct coffer_serve_version_label *l = &m->labels[m->label_count];
            bool have_value = false;
            for (size_t j = 0; j < f->nkids && r == COFFER_OK; j++) {
                const struct node *g = &f->kids[j];
                if (strcmp(g->name, "key") == 0)
                    r = get_string(g, &l->label);
                else if (strcmp(g->name, "value") == 0)
                    r = get_int(g, INT64_MIN, INT64_MAX, &l->version), have_value = true;
                else
                    r = unknown(g, "version_labels");
            }
            m->label_count++;
            if (r != COFFER_OK)
                break;
            if (l->label == NULL || l->label[0] == '\0')
                r = at(f->line, f->col, "version_labels without a key");
            else if (!have_value)
                r = at(f->line, f->col, "version_labels \"%.64s\" without a value", l->label);
            for (size_t j = 0; j + 1 < m->label_count && r == COFFER_OK; j++)
                if (strcmp(m->labels[j].label, l->label) == 0)
                    r = at(f->line, f->col, "version label \"%.64s\" is given more than once", l->label);
        } else {
            r = unknown(f, "config");
        }
    }
    if (r != COFFER_OK)
        return r;
    if (m->name == NULL || m->name[0] == '\0')
        return at(cn->line, cn->col, "config without a name");
    if (m->base_path == NULL || m->base_path[0] == '\0')
        return at(cn->line, cn->col, "config \"%.64s\" without a base_path", m->name);
    if (m->platform == NULL && (m->platform = coffer_strdup("")) == NULL)
        return COFFER_E_NOMEM;
    return COFFER_OK;
}

void coffer_serve_config_free(struct coffer_serve_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->model_count; i++)
        model_free(&c->models[i]);
    coffer_free(c->models);
    memset(c, 0, sizeof(*c));
}

static enum coffer_err interpret(const struct node *root, struct coffer_serve_config *c)
{
    const struct node *list = NULL;
    for (size_t i = 0; i < root->nkids; i++) {
        const struct node *f = &root->kids[i];
        if (strcmp(f->name, "model_config_list") != 0)
            return unknown(f, "ModelServerConfig");
        if (list != NULL)
            return at(f->line, f->col, "field 'model_config_list' is given more than once");
        list = f;
    }
    if (list == NULL)
        return at(1, 1, "no model_config_list");
    enum coffer_err r = want_msg(list);
    if (r != COFFER_OK)
        return r;
    c->models = coffer_calloc(list->nkids ? list->nkids : 1, sizeof(*c->models));
    if (c->models == NULL)
        return COFFER_E_NOMEM;
    for (size_t i = 0; i < list->nkids; i++) {
        const struct node *f = &list->kids[i];
        if (strcmp(f->name, "config") != 0)
            return unknown(f, "model_config_list");
        if (c->model_count == MAX_MODELS)
            return at(f->line, f->col, "more than %d models", MAX_MODELS);
        struct coffer_serve_model_config *m = &c->models[c->model_count++];
        if ((r = parse_model(f, m)) != COFFER_OK)
            return r;
        for (size_t j = 0; j + 1 < c->model_count; j++)
            if (strcmp(c->models[j].name, m->name) == 0)
                return at(f->line, f->col, "model \"%.64s\" is configured more than once", m->name);
    }
    return COFFER_OK;
}

/* Text -> field tree (the caller frees root with node_free). */
static enum coffer_err parse_tree(const void *text, size_t size, struct node *root)
{
    memset(root, 0, sizeof(*root));
    root->is_msg = true;
    struct lexer lx = {.line = 1, .col = 1};
    coffer_rd_init(&lx.rd, text, size);
    coffer_err_clear();
    enum coffer_err r = parse_fields(&lx, root, 0, 0);
    tok_clear(&lx.cur);
    return r;
}

enum coffer_err coffer_serve_config_parse(const void *text, size_t size, struct coffer_serve_config *out)
{
    memset(out, 0, sizeof(*out));
    file_kind = "model config";
    struct node root;
    enum coffer_err r = parse_tree(text, size, &root);
    struct coffer_serve_config c = {0};
    if (r == COFFER_OK)
        r = interpret(&root, &c);
    node_free(&root);
    if (r != COFFER_OK) {
        coffer_serve_config_free(&c);
        return r;
    }
    *out = c;
    return COFFER_OK;
}

/* ------------------------------------------- ssl, monitoring and batching */

static enum coffer_err get_bool(const struct node *n, bool *out)
{
    static const char *const t[] = {"true", "True", "t", "1"}, *const f[] = {"false", "False", "f", "0"};
    if (!n->is_msg && (n->value.kind == T_IDENT || n->value.kind == T_NUMBER)) {
        for (size_t i = 0; i < 4; i++) {
            if (n->value.n == strlen(t[i]) && memcmp(n->value.p, t[i], n->value.n) == 0) {
                *out = true;
                return COFFER_OK;
            }
            if (n->value.n == strlen(f[i]) && memcmp(n->value.p, f[i], n->value.n) == 0) {
                *out = false;
                return COFFER_OK;
            }
        }
    }
    return at(n->line, n->col, "field '%s' expects true or false", n->name);
}

/* A wrapper message { value: X } (google.protobuf.*Value); the bare scalar
 * is accepted too. Returns the node holding the scalar. */
static enum coffer_err unwrap(const struct node *n, const struct node **out)
{
    *out = n;
    if (!n->is_msg)
        return COFFER_OK;
    if (n->nkids != 1 || strcmp(n->kids[0].name, "value") != 0)
        return at(n->line, n->col, "field '%s' expects { value: ... }", n->name);
    *out = &n->kids[0];
    return COFFER_OK;
}

void coffer_serve_ssl_config_free(struct coffer_serve_ssl_config *c)
{
    if (c == NULL)
        return;
    if (c->server_key != NULL)
        coffer_memzero(c->server_key, strlen(c->server_key));
    coffer_free(c->server_key);
    coffer_free(c->server_cert);
    coffer_free(c->custom_ca);
    memset(c, 0, sizeof(*c));
}

enum coffer_err coffer_serve_ssl_config_parse(const void *text, size_t size, struct coffer_serve_ssl_config *out)
{
    memset(out, 0, sizeof(*out));
    file_kind = "ssl config";
    struct node root;
    struct coffer_serve_ssl_config c = {0};
    enum coffer_err r = parse_tree(text, size, &root);
    bool have_verify = false;
    for (size_t i = 0; i < root.nkids && r == COFFER_OK; i++) {
        const struct node *f = &root.kids[i];
        if (strcmp(f->name, "server_key") == 0)
            r = get_string(f, &c.server_key);
        else if (strcmp(f->name, "server_cert") == 0)
            r = get_string(f, &c.server_cert);
        else if (strcmp(f->name, "custom_ca") == 0)
            r = get_string(f, &c.custom_ca);
        else if (strcmp(f->name, "client_verify") == 0) {
            r = have_verify ? at(f->line, f->col, "field 'client_verify' is given more than once")
                            : get_bool(f, &c.client_verify);
            have_verify = true;
        } else
            r = unknown(f, "SSLConfig");
    }
    if (r == COFFER_OK && (c.server_key == NULL || c.server_key[0] == '\0'))
        r = at(1, 1, "server_key is missing");
    if (r == COFFER_OK && (c.server_cert == NULL || c.server_cert[0] == '\0'))
        r = at(1, 1, "server_cert is missing");
    if (r == COFFER_OK && c.client_verify && (c.custom_ca == NULL || c.custom_ca[0] == '\0'))
        r = at(1, 1, "client_verify needs custom_ca (the CA that signs client certificates)");
    if (r == COFFER_OK && c.custom_ca == NULL && (c.custom_ca = coffer_strdup("")) == NULL)
        r = COFFER_E_NOMEM;
    node_free(&root);
    if (r != COFFER_OK) {
        coffer_serve_ssl_config_free(&c);
        return r;
    }
    *out = c;
    return COFFER_OK;
}

void coffer_serve_monitoring_config_free(struct coffer_serve_monitoring_config *c)
{
    if (c == NULL)
        return;
    coffer_free(c->prometheus_path);
    memset(c, 0, sizeof(*c));
}

enum coffer_err coffer_serve_monitoring_config_parse(const void *text, size_t size,
                                                     struct coffer_serve_monitoring_config *out)
{
    memset(out, 0, sizeof(*out));
    file_kind = "monitoring config";
    struct node root;
    struct coffer_serve_monitoring_config c = {0};
    enum coffer_err r = parse_tree(text, size, &root);
    bool seen = false;
    for (size_t i = 0; i < root.nkids && r == COFFER_OK; i++) {
        const struct node *f = &root.kids[i];
        if (strcmp(f->name, "prometheus_config") != 0) {
            r = unknown(f, "MonitoringConfig");
            break;
        }
        if (seen) {
            r = at(f->line, f->col, "field 'prometheus_config' is given more than once");
            break;
        }
        seen = true;
        if ((r = want_msg(f)) != COFFER_OK)
            break;
        for (size_t j = 0; j < f->nkids && r == COFFER_OK; j++) {
            const struct node *g = &f->kids[j];
            if (strcmp(g->name, "enable") == 0)
                r = get_bool(g, &c.prometheus_enable);
            else if (strcmp(g->name, "path") == 0) {
                if ((r = get_string(g, &c.prometheus_path)) == COFFER_OK && c.prometheus_path[0] != '\0' &&
                    c.prometheus_path[0] != '/')
                    r = at(g->line, g->col, "path \"%.64s\" does not start with '/'", c.prometheus_path);
            } else
                r = unknown(g, "prometheus_config");
        }
    }
    if (r == COFFER_OK && (c.prometheus_path == NULL || c.prometheus_path[0] == '\0')) {
        coffer_free(c.prometheus_path);
        if ((c.prometheus_path = coffer_strdup(COFFER_SERVE_PROMETHEUS_PATH)) == NULL)
            r = COFFER_E_NOMEM;
    }
    node_free(&root);
    if (r != COFFER_OK) {
        coffer_serve_monitoring_config_free(&c);
        return r;
    }
    *out = c;
    return COFFER_OK;
}

void coffer_serve_batching_config_free(struct coffer_serve_batching_config *c)
{
    if (c == NULL)
        return;
    coffer_free(c->thread_pool_name);
    coffer_free(c->allowed_batch_sizes);
    memset(c, 0, sizeof(*c));
}

static enum coffer_err batching_field(const struct node *f, struct coffer_serve_batching_config *c, size_t *nallowed)
{
    static const struct {
        const char *name;
        size_t off;
        int64_t min;
    } ints[] = {
        {"max_batch_size", offsetof(struct coffer_serve_batching_config, max_batch_size), 1},
        {"batch_timeout_micros", offsetof(struct coffer_serve_batching_config, batch_timeout_micros), 0},
        {"max_enqueued_batches", offsetof(struct coffer_serve_batching_config, max_enqueued_batches), 1},
        {"num_batch_threads", offsetof(struct coffer_serve_batching_config, num_batch_threads), 1},
        {"max_execution_batch_size", offsetof(struct coffer_serve_batching_config, max_execution_batch_size), 1},
    };
    const struct node *v;
    enum coffer_err r;
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (strcmp(f->name, ints[i].name) == 0) {
            if ((r = unwrap(f, &v)) != COFFER_OK)
                return r;
            return get_int(v, ints[i].min, INT64_MAX, (int64_t *)(void *)((char *)c + ints[i].off));
        }
    }
    if (strcmp(f->name, "thread_pool_name") == 0) {
        if ((r = unwrap(f, &v)) != COFFER_OK)
            return r;
        coffer_free(c->thread_pool_name);
        c->thread_pool_name = NULL;
        return get_string(v, &c->thread_pool_name);
    }
    if (strcmp(f->name, "allowed_batch_sizes") == 0) {
        int64_t x;
        if ((r = get_int(f, 1, INT64_MAX, &x)) != COFFER_OK)
            return r;
        if (*nallowed > 0 && x <= c->allowed_batch_sizes[*nallowed - 1])
            return at(f->line, f->col, "allowed_batch_sizes must increase: %lld after %lld", (long long)x,
                      (long long)c->allowed_batch_sizes[*nallowed - 1]);
        c->allowed_batch_sizes[(*nallowed)++] = x;
        return COFFER_OK;
    }
    if (strcmp(f->name, "pad_variable_length_inputs") == 0)
        return get_bool(f, &c->pad_variable_length_inputs);
    if (strcmp(f->name, "enable_large_batch_splitting") == 0) {
        if ((r = unwrap(f, &v)) != COFFER_OK)
            return r;
        return get_bool(v, &c->enable_large_batch_splitting);
    }
    return unknown(f, "BatchingParameters");
}

enum coffer_err coffer_serve_batching_config_parse(const void *text, size_t size,
                                                   struct coffer_serve_batching_config *out)
{
    memset(out, 0, sizeof(*out));
    file_kind = "batching config";
    struct node root;
    struct coffer_serve_batching_config c = {
        .max_batch_size = 1000, .batch_timeout_micros = 0, .max_enqueued_batches = 10, .num_batch_threads = 0};
    enum coffer_err r = parse_tree(text, size, &root);
    size_t nallowed = 0;
    if (r == COFFER_OK) {
        c.allowed_batch_sizes = coffer_calloc(root.nkids ? root.nkids : 1, sizeof(int64_t));
        if (c.allowed_batch_sizes == NULL)
            r = COFFER_E_NOMEM;
    }
    for (size_t i = 0; i < root.nkids && r == COFFER_OK; i++) {
        const struct node *f = &root.kids[i];
        /* singular fields once (linear: the first repeat stops the loop) */
        bool repeated = strcmp(f->name, "allowed_batch_sizes") == 0;
        for (size_t j = 0; j < i && r == COFFER_OK && !repeated; j++)
            if (strcmp(root.kids[j].name, f->name) == 0)
                r = at(f->line, f->col, "field '%s' is given more than once", f->name);
        if (r == COFFER_OK)
            r = batching_field(f, &c, &nallowed);
    }
    c.allowed_batch_size_count = nallowed;
    if (r == COFFER_OK && nallowed > 0 && c.allowed_batch_sizes[nallowed - 1] != c.max_batch_size)
        r = at(1, 1, "the last allowed_batch_sizes entry (%lld) must equal max_batch_size (%lld)",
               (long long)c.allowed_batch_sizes[nallowed - 1], (long long)c.max_batch_size);
    if (r == COFFER_OK && c.max_execution_batch_size != 0 && !c.enable_large_batch_splitting)
        r = at(1, 1, "max_execution_batch_size needs enable_large_batch_splitting");
    if (r == COFFER_OK && c.thread_pool_name == NULL && (c.thread_pool_name = coffer_strdup("batch_threads")) == NULL)
        r = COFFER_E_NOMEM;
    node_free(&root);
    if (r != COFFER_OK) {
        coffer_serve_batching_config_free(&c);
        return r;
    }
    *out = c;
    return COFFER_OK;
}
