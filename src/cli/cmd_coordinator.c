/*
 * cmd_coordinator.c — the coordinator's client commands, shaped like
 * MarbleRun's CLI so its users' habits work:
 *
 *   coffer status [ADDR]
 *   coffer manifest set FILE [ADDR]       coffer manifest get [-o FILE] [ADDR]
 *   coffer manifest verify FILE|HASH [ADDR]   coffer manifest signature FILE
 *   coffer manifest log [ADDR]
 *   coffer manifest update apply|acknowledge FILE [ADDR] --cert C --key K
 *   coffer manifest update cancel [ADDR] --cert C --key K
 *   coffer manifest update get [--missing] [ADDR]
 *   coffer recover FILE [ADDR] --key RECOVERY_KEY.pem
 *   coffer check [ADDR] [--timeout SECONDS]
 *   coffer secret set FILE [ADDR] --cert C --key K
 *   coffer secret set --raw NAME=KEYFILE [ADDR] --cert C --key K
 *   coffer secret get NAME... [ADDR] --cert C --key K [-o FILE]
 *   coffer certificate root|intermediate|chain [-o FILE] [ADDR]
 *
 * ADDR (host:port) may also come from --coordinator or COFFER_COORDINATOR.
 * Every command first verifies the coordinator (its evidence over its root
 * certificate and a fresh nonce, against --policy), then pins that root;
 * --insecure skips the evidence check and says so.
 */
#include <getopt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include <time.h>

#include "coffer/attest.h"
#include "coffer/coordinator.h"
#include "coord_client.h"

static void common_help(FILE *out)
{
    fprintf(out, "\nCommon options:\n"
                 "  --coordinator HOST:PORT  the coordinator's client API (or COFFER_COORDINATOR,\n"
                 "                           or a last argument HOST:PORT; default localhost:4433)\n"
                 "  --policy FILE            the evidence the coordinator must present (JSON policy)\n"
                 "  --simulation             also accept a simulation coordinator whose evidence\n"
                 "                           this machine's simulation platform key signed\n"
                 "  --collateral DIR         Intel collateral (tcb_info.json, ...) for SGX/TDX quotes\n"
                 "  -i, --insecure           do not verify the coordinator's evidence (says so)\n"
                 "  --cert FILE, --key FILE  your user certificate and key (PEM), for secrets and updates\n"
                 "  --coordinator-cert FILE  where to keep the verified root and intermediate\n"
                 "                           (default ./coordinator-cert.pem)\n"
                 "  -o, --output FILE        write the result to FILE\n"
                 "  --timeout SECONDS        per request (default 30)\n");
}

void cmd_status_help(FILE *out)
{
    fprintf(out, "usage: coffer status [ADDR]\n\nThe coordinator's state: 1 recovery, 2 accepting a manifest, 3 accepting "
                 "marbles;\nand whether it runs in simulation mode.\n");
    common_help(out);
}

void cmd_manifest_help(FILE *out)
{
    fprintf(out, "usage: coffer manifest set FILE [ADDR] [-r RECOVERY_DATA]\n"
                 "       coffer manifest get [-o FILE] [ADDR]\n"
                 "       coffer manifest verify FILE|SHA256 [ADDR]\n"
                 "       coffer manifest signature FILE\n"
                 "       coffer manifest log [ADDR]\n"
                 "       coffer manifest update apply FILE [ADDR] --cert C --key K\n"
                 "       coffer manifest update acknowledge FILE [ADDR] --cert C --key K\n"
                 "       coffer manifest update cancel [ADDR] --cert C --key K\n"
                 "       coffer manifest update get [--missing] [-o FILE] [ADDR]\n\n"
                 "set uploads a MarbleRun-schema manifest (JSON); with RecoveryKeys, the recovery\n"
                 "secrets (one per key, encrypted to it) go to -r FILE (else stdout): keep them,\n"
                 "they are the only way back to the state on another machine. verify checks that\n"
                 "the deployed manifest is exactly FILE (or has that SHA-256); log prints the audit\n"
                 "log. update apply sends a package update ({\"Packages\": {name:\n"
                 "{\"SecurityVersion\": n}}}, applied at once) or a whole new manifest, which waits\n"
                 "until the users holding UpdateManifest acknowledge it with the same file;\n"
                 "cancel drops it; get shows it (--missing: who has not acknowledged yet).\n");
    common_help(out);
}

void cmd_recover_help(FILE *out)
{
    fprintf(out, "usage: coffer recover RECOVERY_DATA [ADDR] --key RECOVERY_KEY.pem\n\n"
                 "Bring a coordinator in recovery mode (state 1: its sealed state does not open\n"
                 "on this platform) back to its state. RECOVERY_DATA is what 'manifest set -r'\n"
                 "saved (the entry this key decrypts is used) or one encrypted secret; the\n"
                 "secret is decrypted with the RSA private key, signed with it, and uploaded\n"
                 "encrypted to the coordinator's ephemeral key (GET /api/v2/recover/public-key,\n"
                 "as MarbleRun's CLI does; in the clear inside TLS when it has none).\n"
                 "With several recovery keys, each holder runs this; the answer says how many\n"
                 "are still needed.\n");
    common_help(out);
}

void cmd_check_help(FILE *out)
{
    fprintf(out, "usage: coffer check [ADDR] [--timeout SECONDS]\n\n"
                 "Wait until the coordinator answers and its evidence verifies (default: up to\n"
                 "60 seconds), then print its state. Exit 0 when it accepts a manifest or\n"
                 "marbles, 1 when it is in recovery mode or does not come up in time.\n");
    common_help(out);
}

void cmd_secret_help(FILE *out)
{
    fprintf(out, "usage: coffer secret set FILE [ADDR] --cert C --key K\n"
                 "       coffer secret set --raw NAME=KEYFILE [ADDR] --cert C --key K\n"
                 "       coffer secret get NAME... [ADDR] --cert C --key K [-o FILE]\n\n"
                 "FILE is MarbleRun's JSON: {\"pfKey\": {\"Key\": \"<base64>\"}}. --raw takes the key's raw\n"
                 "bytes from a file (e.g. the wrap key from 'coffer pf gen-key').\n");
    common_help(out);
}

void cmd_certificate_help(FILE *out)
{
    fprintf(out, "usage: coffer certificate root|intermediate|chain [-o FILE] [ADDR]\n\n"
                 "Verify the coordinator and write its certificate(s) as PEM. Clients of the\n"
                 "model server use the intermediate as their CA.\n");
    common_help(out);
}

struct opts {
    struct coord_client cc;
    const char *output;
    const char *raw;
    const char *recovery_data;
    bool missing;
    bool timeout_set;
    int argc;
    char **argv; /* positionals */
};

enum { OPT_COORD = 1000, OPT_POLICY, OPT_CERT, OPT_KEY, OPT_CACHE, OPT_TIMEOUT, OPT_RAW, OPT_SIM, OPT_COLLATERAL,
       OPT_MISSING };

static int parse(const char *cmd, int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"coordinator", required_argument, NULL, OPT_COORD}, {"policy", required_argument, NULL, OPT_POLICY},
        {"insecure", no_argument, NULL, 'i'},                {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},            {"coordinator-cert", required_argument, NULL, OPT_CACHE},
        {"output", required_argument, NULL, 'o'},             {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"raw", required_argument, NULL, OPT_RAW},            {"help", no_argument, NULL, 'h'},
        {"simulation", no_argument, NULL, OPT_SIM},           {"collateral", required_argument, NULL, OPT_COLLATERAL},
        {"recovery-data", required_argument, NULL, 'r'},      {"missing", no_argument, NULL, OPT_MISSING},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->cc.cache_path = "coordinator-cert.pem";
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "io:hr:k:", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_COORD: o->cc.address = optarg; break;
        case OPT_POLICY: o->cc.policy_path = optarg; break;
        case 'i': o->cc.insecure = true; break;
        case OPT_CERT: o->cc.cert_path = optarg; break;
        case OPT_KEY:
        case 'k': o->cc.key_path = optarg; break;
        case OPT_CACHE: o->cc.cache_path = optarg; break;
        case 'o': o->output = optarg; break;
        case OPT_TIMEOUT:
            o->cc.timeout_s = atol(optarg);
            o->timeout_set = true;
            break;
        case 'r': o->recovery_data = optarg; break;
        case OPT_MISSING: o->missing = true; break;
        case OPT_RAW: o->raw = optarg; break;
        case OPT_SIM: o->cc.simulation = true; break;
        case OPT_COLLATERAL: o->cc.collateral_dir = optarg; break;
        case 'h': return -1;
        default: return cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    o->argc = argc - optind;
    o->argv = argv + optind;
    /* MarbleRun habit: the address as the last argument */
    if (o->cc.address == NULL && o->argc > 0) {
        const char *last = o->argv[o->argc - 1];
        struct stat st;
        if (strchr(last, ':') != NULL && stat(last, &st) != 0) {
            o->cc.address = last;
            o->argc--;
        }
    }
    coord_client_init(&o->cc);
    return 0;
}

/* Write text to -o FILE (mode 0600 when secret) or stdout. */
static int emit(const struct opts *o, const char *what, const void *data, size_t size, bool secret)
{
    if (o->output == NULL) {
        fwrite(data, 1, size, stdout);
        return CLI_OK;
    }
    enum coffer_err r = coffer_file_write_atomic(o->output, data, size, secret ? 0600 : 0644);
    if (r != COFFER_OK)
        return cli_fail(what, r);
    fprintf(stderr, "%s written to %s\n", what, o->output);
    return CLI_OK;
}

static int finish(struct opts *o, const char *what, enum coffer_err r)
{
    coord_client_free(&o->cc);
    return r == COFFER_OK ? CLI_OK : cli_fail(what, r);
}

int cmd_status(int argc, char **argv)
{
    struct opts o;
    int p = parse("status", argc, argv, &o);
    if (p < 0) {
        cmd_status_help(stdout);
        return CLI_OK;
    }
    if (p != 0)
        return p;
    struct coord_reply rep;
    enum coffer_err r = coord_client_call(&o.cc, "GET", "/api/v2/status", NULL, &rep);
    if (r == COFFER_OK) {
        printf("%lld: %s%s\n", (long long)json_integer_value(json_object_get(rep.data, "code")),
               json_string_value(json_object_get(rep.data, "message")),
               json_is_true(json_object_get(rep.data, "simulation")) ? " (SIMULATION: no hardware protection)" : "");
        coord_reply_free(&rep);
    }
    return finish(&o, "status", r);
}

static void sha256_hex(const void *d, size_t n, char out[65])
{
    uint8_t h[32];
    SHA256(d, n, h);
    coffer_hex_encode(h, 32, out);
}

/* {"manifest": "<base64 of FILE>"}; *raw keeps the file's bytes. */
static enum coffer_err manifest_body(const char *path, char **body, uint8_t **raw, size_t *size)
{
    enum coffer_err r = coffer_file_read_all(path, COFFER_MANIFEST_MAX_SIZE, raw, size);
    if (r != COFFER_OK)
        return r;
    *body = coffer_malloc(coffer_base64_encoded_len(*size) + 32);
    if (*body == NULL) {
        coffer_free(*raw);
        return COFFER_E_NOMEM;
    }
    strcpy(*body, "{\"manifest\": \"");
    coffer_base64_encode(*raw, *size, *body + strlen(*body));
    strcat(*body, "\"}");
    return COFFER_OK;
}

/* The recovery secrets of a manifest set or applied update, kept as
 * MarbleRun's CLI keeps them: {"RecoverySecrets": {key: base64}}. */
static enum coffer_err save_recovery_data(const struct opts *o, json_t *secrets)
{
    if (!json_is_object(secrets) || json_object_size(secrets) == 0)
        return COFFER_OK;
    json_t *doc = json_pack("{s:O}", "RecoverySecrets", secrets);
    char *s = NULL;
    size_t n = 0;
    enum coffer_err r = doc ? coffer_json_dump(doc, &s, &n) : COFFER_E_NOMEM;
    json_decref(doc);
    if (r != COFFER_OK)
        return r;
    if (o->recovery_data != NULL) {
        r = coffer_file_write_atomic(o->recovery_data, s, n, 0600);
        if (r == COFFER_OK)
            fprintf(stderr, "Recovery data (%zu secrets, each encrypted to its recovery key) written to %s: keep it "
                            "safe, it is returned only once.\n", json_object_size(secrets), o->recovery_data);
    } else {
        printf("%s\n", s);
        fprintf(stderr, "The recovery data above is returned only once: keep it (or use -r FILE).\n");
    }
    coffer_free(s);
    return r;
}

static void print_pending(const struct opts *o, json_t *data)
{
    size_t i;
    json_t *u;
    const char *msg = json_string_value(json_object_get(data, "message"));
    if (msg != NULL && !o->missing)
        fprintf(stderr, "%s\n", msg);
    json_t *missing = json_object_get(data, "missingUsers");
    if (o->missing) {
        json_array_foreach(missing, i, u)
            printf("%s\n", json_string_value(u));
        return;
    }
    fprintf(stderr, "%lld more acknowledgement(s) needed", (long long)json_integer_value(json_object_get(data,
                                                                                      "missingAcknowledgments")));
    json_array_foreach(missing, i, u)
        fprintf(stderr, "%s%s", i == 0 ? " from: " : ", ", json_string_value(u));
    fprintf(stderr, "\n");
}

static int manifest_update(struct opts *o)
{
    const char *what = o->argc > 1 ? o->argv[1] : "";
    bool apply = strcmp(what, "apply") == 0, ack = strcmp(what, "acknowledge") == 0;
    bool cancel = strcmp(what, "cancel") == 0, get = strcmp(what, "get") == 0;
    if (!apply && !ack && !cancel && !get)
        return cli_usage("manifest", "update takes apply, acknowledge, cancel or get");
    if ((apply || ack) && o->argc != 3)
        return cli_usage("manifest", "update %s takes one FILE", what);
    if ((cancel || get) && o->argc != 2)
        return cli_usage("manifest", "update %s takes no FILE", what);
    if (!get && o->cc.cert_path == NULL)
        return cli_usage("manifest", "update %s needs your user certificate and key: --cert FILE --key FILE", what);
    struct coord_reply rep = {0};
    enum coffer_err r;
    if (get) {
        if ((r = coord_client_call(&o->cc, "GET", "/api/v2/update-manifest", NULL, &rep)) == COFFER_OK) {
            const char *m = json_string_value(json_object_get(rep.data, "manifest"));
            uint8_t *d;
            size_t n;
            if (o->missing) {
                print_pending(o, rep.data);
            } else if (m == NULL || coffer_base64_decode(m, strlen(m), &d, &n) != COFFER_OK) {
                r = COFFER_FAIL(COFFER_E_NET, "the coordinator's pending update reply is malformed");
            } else {
                int rc = emit(o, "pending manifest", d, n, false);
                coffer_free(d);
                print_pending(o, rep.data);
                if (rc != CLI_OK)
                    r = COFFER_E_IO;
            }
        } else if (rep.http_status == 404) {
            fprintf(stderr, "No update is pending.\n");
        }
        coord_reply_free(&rep);
        return finish(o, "manifest update get", r);
    }
    if (cancel) {
        if ((r = coord_client_call(&o->cc, "POST", "/api/v2/update-cancel", NULL, &rep)) == COFFER_OK)
            fprintf(stderr, "The pending update was cancelled.\n");
        coord_reply_free(&rep);
        return finish(o, "manifest update cancel", r);
    }
    uint8_t *d;
    size_t n;
    char *body;
    if ((r = manifest_body(o->argv[2], &body, &d, &n)) != COFFER_OK)
        return finish(o, "manifest update", r);
    r = coord_client_call(&o->cc, "POST", apply ? "/api/v2/update" : "/api/v2/update-manifest", body, &rep);
    if (r == COFFER_OK) {
        print_pending(o, rep.data);
        r = save_recovery_data(o, json_object_get(rep.data, "recoverySecrets"));
    }
    coffer_free(body);
    coffer_free(d);
    coord_reply_free(&rep);
    return finish(o, apply ? "manifest update apply" : "manifest update acknowledge", r);
}

int cmd_manifest(int argc, char **argv)
{
    struct opts o;
    int p = parse("manifest", argc, argv, &o);
    if (p < 0 || (p == 0 && o.argc == 0)) {
        cmd_manifest_help(p < 0 ? stdout : stderr);
        return p < 0 ? CLI_OK : CLI_USAGE;
    }
    if (p != 0)
        return p;
    const char *sub = o.argv[0];
    enum coffer_err r = COFFER_OK;
    struct coord_reply rep = {0};
    if (strcmp(sub, "signature") == 0 || strcmp(sub, "set") == 0 || strcmp(sub, "verify") == 0) {
        if (o.argc != 2)
            return cli_usage("manifest", "%s takes one FILE", sub);
    }
    if (strcmp(sub, "signature") == 0) {
        uint8_t *d;
        size_t n;
        if ((r = coffer_file_read_all(o.argv[1], COFFER_MANIFEST_MAX_SIZE, &d, &n)) == COFFER_OK) {
            char h[65];
            sha256_hex(d, n, h);
            printf("%s\n", h);
            coffer_free(d);
        }
        return finish(&o, "manifest signature", r);
    }
    if (strcmp(sub, "set") == 0) {
        uint8_t *d;
        size_t n;
        char *body;
        if ((r = manifest_body(o.argv[1], &body, &d, &n)) != COFFER_OK)
            return finish(&o, "manifest set", r);
        r = coord_client_call(&o.cc, "POST", "/api/v2/manifest", body, &rep);
        if (r == COFFER_OK) {
            char h[65];
            sha256_hex(d, n, h);
            fprintf(stderr, "Manifest set (SHA-256 %s).\n", h);
            r = save_recovery_data(&o, json_object_get(rep.data, "RecoverySecrets"));
        }
        coffer_free(body);
        coffer_free(d);
        coord_reply_free(&rep);
        return finish(&o, "manifest set", r);
    }
    if (strcmp(sub, "update") == 0)
        return manifest_update(&o);
    if (strcmp(sub, "get") == 0 || strcmp(sub, "verify") == 0 || strcmp(sub, "log") == 0) {
        bool log = strcmp(sub, "log") == 0;
        if ((r = coord_client_call(&o.cc, "GET", log ? "/api/v2/update" : "/api/v2/manifest", NULL, &rep)) != COFFER_OK)
            return finish(&o, sub, r);
        int rc = CLI_OK;
        if (log) {
            size_t i;
            json_t *line;
            json_array_foreach(json_object_get(rep.data, "updateLog"), i, line)
                printf("%s\n", json_string_value(line));
        } else if (strcmp(sub, "get") == 0) {
            const char *m = json_string_value(json_object_get(rep.data, "manifest"));
            uint8_t *d;
            size_t n;
            if (m == NULL || coffer_base64_decode(m, strlen(m), &d, &n) != COFFER_OK) {
                r = COFFER_FAIL(COFFER_E_NET, "the coordinator's manifest reply is malformed");
            } else {
                rc = emit(&o, "manifest", d, n, false);
                coffer_free(d);
            }
        } else {
            const char *fp = json_string_value(json_object_get(rep.data, "manifestFingerprint"));
            char want[65];
            uint8_t *d;
            size_t n;
            if (strlen(o.argv[1]) == 64 && access(o.argv[1], F_OK) != 0) {
                snprintf(want, sizeof(want), "%s", o.argv[1]);
            } else if ((r = coffer_file_read_all(o.argv[1], COFFER_MANIFEST_MAX_SIZE, &d, &n)) == COFFER_OK) {
                sha256_hex(d, n, want);
                coffer_free(d);
            }
            if (r == COFFER_OK && (fp == NULL || strcasecmp(fp, want) != 0))
                r = COFFER_FAIL(COFFER_E_POLICY, "the deployed manifest (SHA-256 %s) is not %s", fp ? fp : "?", want);
            if (r == COFFER_OK)
                fprintf(stderr, "OK: the coordinator runs manifest %s\n", want);
        }
        coord_reply_free(&rep);
        if (rc != CLI_OK) {
            coord_client_free(&o.cc);
            return rc;
        }
        return finish(&o, sub, r);
    }
    return cli_usage("manifest", "unknown subcommand '%s'", sub);
}

int cmd_secret(int argc, char **argv)
{
    struct opts o;
    int p = parse("secret", argc, argv, &o);
    if (p < 0 || (p == 0 && o.argc == 0)) {
        cmd_secret_help(p < 0 ? stdout : stderr);
        return p < 0 ? CLI_OK : CLI_USAGE;
    }
    if (p != 0)
        return p;
    const char *sub = o.argv[0];
    if (o.cc.cert_path == NULL)
        return cli_usage("secret", "secrets need your user certificate and key: --cert FILE --key FILE");
    enum coffer_err r = COFFER_OK;
    struct coord_reply rep = {0};
    if (strcmp(sub, "set") == 0) {
        char *body = NULL;
        if (o.raw != NULL) {
            if (o.argc != 1)
                return cli_usage("secret", "set --raw NAME=FILE takes no FILE argument");
            const char *eq = strchr(o.raw, '=');
            if (eq == NULL || eq == o.raw)
                return cli_usage("secret", "--raw takes NAME=FILE");
            struct coffer_secret *key;
            if ((r = coffer_file_read_secret(eq + 1, 1 << 20, &key)) != COFFER_OK)
                return finish(&o, "secret set", r);
            size_t n = coffer_base64_encoded_len(key->size) + (size_t)(eq - o.raw) + 64;
            body = coffer_malloc(n);
            char *b64 = coffer_malloc(coffer_base64_encoded_len(key->size) + 1);
            if (body != NULL && b64 != NULL) {
                coffer_base64_encode(key->data, key->size, b64);
                snprintf(body, n, "{\"secrets\": {\"%.*s\": {\"Key\": \"%s\"}}}", (int)(eq - o.raw), o.raw, b64);
                coffer_memzero(b64, strlen(b64));
            } else {
                r = COFFER_E_NOMEM;
            }
            coffer_free(b64);
            coffer_secret_free(key);
        } else {
            if (o.argc != 2)
                return cli_usage("secret", "set takes one FILE (or --raw NAME=FILE)");
            struct coffer_secret *file;
            json_t *j = NULL;
            if ((r = coffer_file_read_secret(o.argv[1], 1 << 22, &file)) == COFFER_OK) {
                r = coffer_json_parse(file->data, file->size, 1 << 22, &j);
                coffer_secret_free(file);
            }
            if (r == COFFER_OK) {
                json_t *wrap = json_pack("{s:O}", "secrets", j);
                size_t n;
                r = wrap ? coffer_json_dump(wrap, &body, &n) : COFFER_E_NOMEM;
                json_decref(wrap);
            } else {
                coffer_err_context("%s", o.argv[1]);
            }
            json_decref(j);
        }
        if (r == COFFER_OK)
            r = coord_client_call(&o.cc, "POST", "/api/v2/secrets", body, &rep);
        if (body != NULL) {
            coffer_memzero(body, strlen(body));
            coffer_free(body);
        }
        if (r == COFFER_OK)
            fprintf(stderr, "Secret(s) set.\n");
        coord_reply_free(&rep);
        return finish(&o, "secret set", r);
    }
    if (strcmp(sub, "get") == 0) {
        if (o.argc < 2)
            return cli_usage("secret", "get takes one or more secret names");
        struct coffer_buf path;
        coffer_buf_init(&path, 1 << 16, false);
        r = coffer_buf_printf(&path, "/api/v2/secrets");
        for (int i = 1; i < o.argc && r == COFFER_OK; i++)
            r = coffer_buf_printf(&path, "%ss=%s", i == 1 ? "?" : "&", o.argv[i]);
        if (r == COFFER_OK && (r = coord_client_call(&o.cc, "GET", (const char *)path.data, NULL, &rep)) == COFFER_OK) {
            char *out;
            size_t n;
            json_t *secrets = json_object_get(rep.data, "secrets");
            if ((r = coffer_json_dump(secrets, &out, &n)) == COFFER_OK) {
                int rc = emit(&o, "secrets", out, n, true);
                if (o.output == NULL)
                    putchar('\n');
                coffer_memzero(out, n);
                coffer_free(out);
                if (rc != CLI_OK)
                    r = COFFER_E_IO;
            }
        }
        coffer_buf_free(&path);
        coord_reply_free(&rep);
        return finish(&o, "secret get", r);
    }
    return cli_usage("secret", "unknown subcommand '%s'", sub);
}

int cmd_certificate(int argc, char **argv)
{
    struct opts o;
    int p = parse("certificate", argc, argv, &o);
    if (p < 0 || (p == 0 && o.argc != 1)) {
        cmd_certificate_help(p < 0 ? stdout : stderr);
        return p < 0 ? CLI_OK : CLI_USAGE;
    }
    if (p != 0)
        return p;
    const char *which = o.argv[0];
    if (strcmp(which, "root") != 0 && strcmp(which, "intermediate") != 0 && strcmp(which, "chain") != 0)
        return cli_usage("certificate", "which certificate: root, intermediate or chain");
    enum coffer_err r = coord_client_verify(&o.cc);
    if (r != COFFER_OK)
        return finish(&o, "certificate", r);
    int rc;
    if (strcmp(which, "root") == 0) {
        rc = emit(&o, "root certificate", o.cc.root_pem, strlen(o.cc.root_pem), false);
    } else if (strcmp(which, "intermediate") == 0) {
        rc = emit(&o, "intermediate certificate", o.cc.intermediate_pem, strlen(o.cc.intermediate_pem), false);
    } else {
        size_t a = strlen(o.cc.intermediate_pem), b = strlen(o.cc.root_pem);
        char *both = coffer_malloc(a + b + 1);
        if (both == NULL)
            return finish(&o, "certificate", COFFER_E_NOMEM);
        memcpy(both, o.cc.intermediate_pem, a);
        memcpy(both + a, o.cc.root_pem, b + 1);
        rc = emit(&o, "certificate chain", both, a + b, false);
        coffer_free(both);
    }
    coord_client_free(&o.cc);
    return rc;
}

/* ---- recover */

/* Decrypt one recovery secret (RSA-OAEP-SHA256) with the private key. */
static enum coffer_err oaep_decrypt(EVP_PKEY *k, const uint8_t *ct, size_t ct_n, struct coffer_secret **out)
{
    EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(k, NULL);
    size_t n = 0;
    enum coffer_err r = COFFER_OK;
    if (x == NULL || EVP_PKEY_decrypt_init(x) != 1 || EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(x, EVP_sha256()) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(x, EVP_sha256()) != 1 ||
        EVP_PKEY_decrypt(x, NULL, &n, ct, ct_n) != 1)
        r = COFFER_FAIL(COFFER_E_CRYPTO, "the recovery key cannot decrypt (is it an RSA private key?)");
    if (r == COFFER_OK && (r = coffer_secret_new(n, out)) == COFFER_OK) {
        if (EVP_PKEY_decrypt(x, (*out)->data, &n, ct, ct_n) != 1) {
            coffer_secret_free(*out);
            *out = NULL;
            r = COFFER_FAIL(COFFER_E_CRYPTO, "this recovery secret was not encrypted to this key");
        } else {
            (*out)->size = n;
        }
    }
    EVP_PKEY_CTX_free(x);
    return r;
}

/* The recovery secret for key k in FILE: MarbleRun's recovery data JSON
 * ({"RecoverySecrets": {name: base64}}: the entry k decrypts), or one
 * ciphertext, raw or base64. */
static enum coffer_err recovery_secret(const char *path, EVP_PKEY *k, struct coffer_secret **out)
{
    uint8_t *d;
    size_t n;
    enum coffer_err r = coffer_file_read_all(path, 1 << 20, &d, &n);
    if (r != COFFER_OK)
        return r;
    json_t *doc = NULL, *map = NULL;
    if (coffer_json_parse(d, n, 1 << 20, &doc) == COFFER_OK) {
        map = json_object_get(doc, "RecoverySecrets");
        if (map == NULL)
            map = json_object_get(doc, "recoverySecrets");
        if (!json_is_object(map))
            map = doc;
    }
    r = COFFER_E_NOT_FOUND;
    if (json_is_object(map)) {
        const char *name;
        json_t *v;
        json_object_foreach(map, name, v) {
            uint8_t *ct;
            size_t ct_n;
            const char *b64 = json_string_value(v);
            if (b64 == NULL || coffer_base64_decode(b64, strlen(b64), &ct, &ct_n) != COFFER_OK)
                continue;
            enum coffer_err e = oaep_decrypt(k, ct, ct_n, out);
            coffer_free(ct);
            if (e == COFFER_OK) {
                fprintf(stderr, "Using the recovery secret of key \"%s\".\n", name);
                r = COFFER_OK;
                break;
            }
        }
        if (r != COFFER_OK)
            r = COFFER_FAIL(COFFER_E_NOT_FOUND, "%s holds no recovery secret encrypted to this key", path);
    } else {
        uint8_t *ct = NULL;
        size_t ct_n = 0;
        size_t len = n;
        while (len > 0 && (d[len - 1] == '\n' || d[len - 1] == '\r'))
            len--;
        if (coffer_base64_decode((const char *)d, len, &ct, &ct_n) == COFFER_OK) {
            r = oaep_decrypt(k, ct, ct_n, out);
            coffer_free(ct);
        } else {
            r = oaep_decrypt(k, d, n, out);
        }
    }
    json_decref(doc);
    coffer_free(d);
    return r;
}

/* The secret RSA-OAEP-SHA256-encrypted to the coordinator's ephemeral
 * recovery key (GET /api/v2/recover/public-key, over the attested and
 * pinned TLS), so that it is not in the clear wherever TLS ends, as
 * MarbleRun's CLI does. *out NULL when the coordinator has no such key
 * (404/405: an older one): the secret then goes as it is, inside TLS. */
static enum coffer_err eph_encrypt(struct coord_client *cc, const struct coffer_secret *secret, uint8_t **out,
                                   size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    struct coord_reply rep = {0};
    enum coffer_err r = coord_client_call(cc, "GET", "/api/v2/recover/public-key", NULL, &rep);
    if (r != COFFER_OK) {
        bool absent = rep.http_status == 404 || rep.http_status == 405;
        coord_reply_free(&rep);
        if (absent)
            coffer_err_clear();
        return absent ? COFFER_OK : r;
    }
    const char *k64 = json_string_value(json_object_get(rep.data, "ephemeralPublicKey"));
    uint8_t *der = NULL;
    size_t der_n = 0;
    EVP_PKEY *k = NULL;
    if (k64 == NULL || coffer_base64_decode(k64, strlen(k64), &der, &der_n) != COFFER_OK) {
        r = COFFER_FAIL(COFFER_E_MALFORMED, "the coordinator's ephemeral recovery key is not base64");
    } else {
        const uint8_t *p = der;
        k = d2i_PUBKEY(NULL, &p, (long)der_n);
        if (k == NULL || p != der + der_n || !EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_get_bits(k) < 3072)
            r = COFFER_FAIL(COFFER_E_MALFORMED, "the coordinator's ephemeral recovery key is not an RSA key of 3072 "
                            "bits or more");
    }
    EVP_PKEY_CTX *x = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
    size_t n = 0;
    if (r == COFFER_OK &&
        (x == NULL || EVP_PKEY_encrypt_init(x) != 1 || EVP_PKEY_CTX_set_rsa_padding(x, RSA_PKCS1_OAEP_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_oaep_md(x, EVP_sha256()) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(x, EVP_sha256()) != 1 ||
         EVP_PKEY_encrypt(x, NULL, &n, secret->data, secret->size) != 1 || (*out = coffer_malloc(n)) == NULL ||
         EVP_PKEY_encrypt(x, *out, &n, secret->data, secret->size) != 1)) {
        coffer_free(*out);
        *out = NULL;
        r = COFFER_FAIL(COFFER_E_CRYPTO, "encrypting the recovery secret to the coordinator's ephemeral key failed");
    }
    if (r == COFFER_OK)
        *out_n = n;
    EVP_PKEY_CTX_free(x);
    EVP_PKEY_free(k);
    coffer_free(der);
    coord_reply_free(&rep);
    return r;
}

int cmd_recover(int argc, char **argv)
{
    struct opts o;
    int p = parse("recover", argc, argv, &o);
    if (p < 0 || (p == 0 && o.argc != 1)) {
        cmd_recover_help(p < 0 ? stdout : stderr);
        return p < 0 ? CLI_OK : CLI_USAGE;
    }
    if (p != 0)
        return p;
    if (o.cc.key_path == NULL)
        return cli_usage("recover", "name the recovery private key: --key FILE (PEM)");
    const char *key_path = o.cc.key_path;
    if (o.cc.cert_path == NULL)
        o.cc.key_path = NULL; /* not a TLS client key here */
    struct coffer_secret *pem = NULL, *secret = NULL;
    enum coffer_err r = coffer_file_read_secret(key_path, 1 << 16, &pem);
    EVP_PKEY *k = NULL;
    if (r == COFFER_OK) {
        BIO *b = BIO_new_mem_buf(pem->data, (int)pem->size);
        k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        coffer_secret_free(pem);
        if (k == NULL || !EVP_PKEY_is_a(k, "RSA"))
            r = COFFER_FAIL(COFFER_E_CRYPTO, "%s is not an RSA private key (PEM)", key_path);
    }
    if (r == COFFER_OK)
        r = recovery_secret(o.argv[0], k, &secret);
    uint8_t sig[1024];
    size_t sig_n = sizeof(sig);
    EVP_MD_CTX *md = r == COFFER_OK ? EVP_MD_CTX_new() : NULL;
    if (r == COFFER_OK && (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) != 1 ||
                           EVP_DigestSign(md, sig, &sig_n, secret->data, secret->size) != 1))
        r = COFFER_FAIL(COFFER_E_CRYPTO, "signing the recovery secret failed");
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    char *body = NULL;
    uint8_t *enc = NULL;
    size_t enc_n = 0;
    if (r == COFFER_OK && (r = eph_encrypt(&o.cc, secret, &enc, &enc_n)) == COFFER_OK && enc != NULL)
        fprintf(stderr, "The recovery secret goes encrypted to the coordinator's ephemeral key.\n");
    const uint8_t *up = enc != NULL ? enc : secret ? secret->data : NULL;
    size_t up_n = enc != NULL ? enc_n : secret ? secret->size : 0;
    if (r == COFFER_OK) {
        size_t n = coffer_base64_encoded_len(up_n) + coffer_base64_encoded_len(sig_n) + 80;
        char *s64 = coffer_malloc(coffer_base64_encoded_len(up_n) + 1);
        char *g64 = coffer_malloc(coffer_base64_encoded_len(sig_n) + 1);
        body = coffer_malloc(n);
        if (s64 == NULL || g64 == NULL || body == NULL) {
            r = COFFER_E_NOMEM;
        } else {
            coffer_base64_encode(up, up_n, s64);
            coffer_base64_encode(sig, sig_n, g64);
            snprintf(body, n, "{\"recoverySecret\": \"%s\", \"recoverySecretSignature\": \"%s\"}", s64, g64);
            coffer_memzero(s64, strlen(s64));
        }
        coffer_free(s64);
        coffer_free(g64);
    }
    coffer_free(enc);
    coffer_secret_free(secret);
    struct coord_reply rep = {0};
    if (r == COFFER_OK && (r = coord_client_call(&o.cc, "POST", "/api/v2/recover", body, &rep)) == COFFER_OK) {
        long long left = json_integer_value(json_object_get(rep.data, "remaining"));
        if (left > 0)
            fprintf(stderr, "Recovery secret accepted; %lld more needed.\n", left);
        else
            fprintf(stderr, "Recovered: the coordinator runs with its state again.\n");
    }
    if (body != NULL) {
        coffer_memzero(body, strlen(body));
        coffer_free(body);
    }
    coord_reply_free(&rep);
    return finish(&o, "recover", r);
}

/* ---- check */

int cmd_check(int argc, char **argv)
{
    struct opts o;
    int p = parse("check", argc, argv, &o);
    if (p < 0 || (p == 0 && o.argc != 0)) {
        cmd_check_help(p < 0 ? stdout : stderr);
        return p < 0 ? CLI_OK : CLI_USAGE;
    }
    if (p != 0)
        return p;
    long wait_s = o.timeout_set ? o.cc.timeout_s : 60;
    o.cc.timeout_s = wait_s < 5 ? wait_s : 5; /* per attempt */
    uint64_t deadline = coffer_now_ns() + (uint64_t)wait_s * 1000000000ull;
    enum coffer_err r;
    /* up = it answers; only a network failure is retried: evidence that
     * does not verify is an answer, and a failure */
    while ((r = coord_client_verify(&o.cc)) == COFFER_E_NET || r == COFFER_E_TIMEOUT) {
        if (coffer_now_ns() >= deadline) {
            coffer_err_context("the coordinator at %s did not come up within %ld s", o.cc.address, wait_s);
            return finish(&o, "check", r);
        }
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (r != COFFER_OK)
        return finish(&o, "check", r);
    struct coord_reply rep;
    if ((r = coord_client_call(&o.cc, "GET", "/api/v2/status", NULL, &rep)) != COFFER_OK)
        return finish(&o, "check", r);
    long long code = json_integer_value(json_object_get(rep.data, "code"));
    printf("%lld: %s\n", code, json_string_value(json_object_get(rep.data, "message")));
    coord_reply_free(&rep);
    if (code == COFFER_COORD_RECOVERY)
        r = COFFER_FAIL(COFFER_E_STATE, "the coordinator is up but in recovery mode: run 'coffer recover'");
    else if (code != COFFER_COORD_ACCEPTING_MANIFEST && code != COFFER_COORD_ACCEPTING_MARBLES)
        r = COFFER_FAIL(COFFER_E_STATE, "the coordinator is up but not ready (state %lld)", code);
    return finish(&o, "check", r);
}

/* The coordinator's evidence over its root and our nonce, checked with
 * attest/ against --policy (a coffer attest policy JSON), or the strict
 * default (hardware, no debug, UpToDate). --simulation also accepts
 * simulation evidence signed by this machine's simulation platform key. */
enum coffer_err coord_client_check_evidence(const struct coord_client *c, const uint8_t *evidence, size_t size,
                                            const uint8_t report_data[64]);
enum coffer_err coord_client_check_evidence(const struct coord_client *c, const uint8_t *evidence, size_t size,
                                            const uint8_t report_data[64])
{
    struct coffer_attest_policy p;
    coffer_attest_policy_init(&p);
    enum coffer_err r = COFFER_OK;
    if (c->policy_path != NULL && (r = cli_policy_load(c->policy_path, &p)) != COFFER_OK)
        return r;
    uint8_t sim_key[64];
    bool has_sim_key = false;
    if (c->simulation) {
        p.kinds |= 1u << COFFER_ATTEST_KIND_SIM;
        p.allow_simulation = true;
    }
    if (p.allow_simulation) {
        char path[1024];
        if ((r = coffer_attest_sim_key_path(path, sizeof(path))) != COFFER_OK ||
            (r = coffer_attest_sim_key_public(path, false, sim_key)) != COFFER_OK) {
            coffer_err_context("the simulation platform key that signs a simulation coordinator's evidence");
            return r;
        }
        has_sim_key = true;
    }
    p.check_report_data = true;
    memcpy(p.report_data, report_data, 64);
    struct coffer_attest_collateral *col = NULL;
    if (c->collateral_dir != NULL) {
        enum coffer_attest_step step;
        if ((r = coffer_attest_collateral_load_dir(c->collateral_dir, &col, &step)) != COFFER_OK)
            return r;
    }
    const struct coffer_attest_collateral *cols[1] = {col};
    struct coffer_attest_verify_opts opts = {.now = time(NULL), .collateral = col ? cols : NULL,
                                             .collateral_count = col ? 1 : 0,
                                             .sim_platform_key = has_sim_key ? sim_key : NULL};
    struct coffer_attest_claims claims;
    r = coffer_attest_evidence_verify(evidence, size, &opts, &claims);
    if (r == COFFER_OK)
        r = coffer_attest_policy_check(&p, &claims);
    else
        coffer_err_context("the coordinator's evidence (%s)", coffer_attest_step_name(claims.failed_step));
    coffer_attest_collateral_free(col);
    if (r == COFFER_OK)
        fprintf(stderr, "coffer: the coordinator's %s evidence verified%s\n", coffer_attest_kind_name(claims.kind),
                claims.simulation ? " (SIMULATION: signed by this machine's software key, no hardware protection)"
                                  : "");
    return r;
}
