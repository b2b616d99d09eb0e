/*
 * response.c — the response object handlers fill, shared by HTTP/1.1 and
 * HTTP/2, and the request header lookup.
 *
 * Design: a status, a capped body buffer and a buffer of "Name: value\r\n"
 * lines. Header names and values are checked so a handler cannot split the
 * response (no CR, LF, NUL) or override the framing headers the server owns.
 * A failed append marks the response failed; the server then answers 500 or
 * 503 instead of a truncated body.
 *
 * Invariants: I1 every stored header line is a valid field line. I2 a failed
 * response is never sent as the handler left it.
 * Trusts: handler-provided strings only as far as checked. Threading: one
 * response belongs to one worker thread.
 */
#include "net_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void coffer_net__response_init(struct coffer_net_response *r, size_t max_body)
{
    memset(r, 0, sizeof(*r));
    r->status = 200;
    coffer_buf_init(&r->body, max_body, false);
    coffer_buf_init(&r->headers, 16384, false);
}

void coffer_net__response_reset(struct coffer_net_response *r)
{
    r->deferred = NULL;
    r->status = 200;
    r->header_count = 0;
    r->failed = false;
    coffer_buf_reset(&r->body);
    coffer_buf_reset(&r->headers);
}

void coffer_net__response_free(struct coffer_net_response *r)
{
    coffer_buf_free(&r->body);
    coffer_buf_free(&r->headers);
}

void coffer_net_response_set_status(struct coffer_net_response *resp, int status)
{
    if (status >= 200 && status <= 999) /* 1xx are the server's, not a final answer */
        resp->status = status;
}

static bool header_text_ok(const char *s, bool name)
{
    if (name && *s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\r' || c == '\n')
            return false;
        if (name && (c <= 0x20 || c == ':' || c >= 0x7f))
            return false;
        if (!name && c < 0x20 && c != '\t')
            return false;
    }
    return true;
}

enum coffer_err coffer_net_response_add_header(struct coffer_net_response *resp, const char *name, const char *value)
{
    if (name == NULL || value == NULL || !header_text_ok(name, true) || !header_text_ok(value, false))
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "header name or value not allowed");
    if (strcasecmp(name, "content-length") == 0 || strcasecmp(name, "transfer-encoding") == 0 ||
        strcasecmp(name, "connection") == 0)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "header %s is set by the server", name);
    if (resp->header_count >= COFFER_NET__MAX_RESP_HEADERS)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "more than %d response headers", COFFER_NET__MAX_RESP_HEADERS);
    /* four puts, not a printf: headers are added on every answer */
    size_t nn = strlen(name), vn = strlen(value);
    enum coffer_err r = coffer_buf_reserve(&resp->headers, nn + vn + 4);
    if (r == COFFER_OK)
        r = coffer_buf_put(&resp->headers, name, nn);
    if (r == COFFER_OK)
        r = coffer_buf_put(&resp->headers, ": ", 2);
    if (r == COFFER_OK)
        r = coffer_buf_put(&resp->headers, value, vn);
    if (r == COFFER_OK)
        r = coffer_buf_put(&resp->headers, "\r\n", 2);
    if (r != COFFER_OK) {
        resp->failed = true;
        return r;
    }
    resp->header_count++;
    return COFFER_OK;
}

enum coffer_err coffer_net_response_append(struct coffer_net_response *resp, const void *data, size_t size)
{
    enum coffer_err r = coffer_buf_put(&resp->body, data, size);
    if (r != COFFER_OK)
        resp->failed = true;
    return r;
}

void coffer_net_response_error(struct coffer_net_response *resp, int status, const char *message)
{
    coffer_net__response_reset(resp);
    coffer_net_response_set_status(resp, status);
    /* the JSON body, escaped by jansson; a fixed body when that fails */
    json_t *o = json_pack("{s:s}", "error", message != NULL ? message : "");
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    const char *body = text != NULL ? text : "{\"error\":\"internal error\"}";
    if (coffer_buf_put(&resp->body, body, strlen(body)) != COFFER_OK ||
        coffer_buf_printf(&resp->headers, "Content-Type: application/json\r\n") != COFFER_OK) {
        coffer_buf_reset(&resp->body);
        coffer_buf_reset(&resp->headers);
    } else {
        resp->header_count = 1;
    }
    free(text);
    json_decref(o);
}

void coffer_net__call_handler(coffer_net_handler_fn fn, void *arg, const struct coffer_net_request *req,
                              struct coffer_net_response *resp)
{
    enum coffer_err r;
    if (fn == NULL)
        r = COFFER_FAIL(COFFER_E_NOT_FOUND, "no handler");
    else
        r = fn(arg, req, resp);
    if (resp->deferred != NULL)
        return; /* the answer comes later, whatever was returned */
    if (r == COFFER_OK && !resp->failed)
        return;
    if (r == COFFER_E_NOT_FOUND && fn == NULL)
        coffer_net_response_error(resp, 404, "not found");
    else if (r == COFFER_E_NOMEM)
        coffer_net_response_error(resp, 503, "out of memory");
    else if (resp->failed && r == COFFER_OK)
        coffer_net_response_error(resp, 500, "response too large or out of memory");
    else
        coffer_net_response_error(resp, 500, "internal error");
}

int coffer_net__decode_body(const struct coffer_net_server_config *cfg, const struct coffer_net_header *headers,
                            size_t header_count, struct coffer_buf *body)
{
    if (!cfg->decode_gzip_bodies)
        return 0;
    const char *enc = NULL;
    for (size_t i = 0; i < header_count; i++)
        if (strcasecmp(headers[i].name, "content-encoding") == 0)
            enc = headers[i].value;
    if (enc == NULL || strcasecmp(enc, "identity") == 0)
        return 0;
    if (strcasecmp(enc, "gzip") != 0)
        return 415;
    struct coffer_buf plain;
    coffer_buf_init(&plain, cfg->max_body_size, false);
    enum coffer_err r = coffer_net_gzip_inflate(body->data != NULL ? body->data : (const uint8_t *)"", body->size,
                                                cfg->max_body_size, &plain);
    if (r != COFFER_OK) {
        coffer_buf_free(&plain);
        return r == COFFER_E_TOO_LARGE ? 413 : r == COFFER_E_NOMEM ? 503 : 400;
    }
    coffer_buf_free(body);
    *body = plain;
    return 0;
}

const char *coffer_net_request_header(const struct coffer_net_request *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}
