/*
 * cmd_coordinator.c — the coordinator's client commands, shaped like
 * MarbleRun's CLI so its users' habits work:
 *
 *   coffer status [ADDR]
 *   coffer manifest set FILE [ADDR]       coffer manifest get [-o FILE] [ADDR]
 *   coffer manifest verify FILE|HASH [ADDR]   coffer manifest signature FILE
 *   coffer manifest log [ADDR]
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
                 "  --cert FILE, --key FILE  your user certificate and key (PEM), for secrets\n"
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
    fprintf(out, "usage: coffer manifest set FILE [ADDR]\n"
                 "       coffer manifest get [-o FILE] [ADDR]\n"
                 "       coffer manifest verify FILE|SHA256 [ADDR]\n"
                 "       coffer manifest signature FILE\n"
                 "       coffer manifest log [ADDR]\n\n"
                 "set uploads a MarbleRun-schema manifest (JSON); verify checks that the deployed\n"
                 "manifest is exactly FILE (or has that SHA-256); log prints the audit log.\n");
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
    int argc;
    char **argv; /* positionals */
};

enum { OPT_COORD = 1000, OPT_POLICY, OPT_CERT, OPT_KEY, OPT_CACHE, OPT_TIMEOUT, OPT_RAW, OPT_SIM, OPT_COLLATERAL };

static int parse(const char *cmd, int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"coordinator", required_argument, NULL, OPT_COORD}, {"policy", required_argument, NULL, OPT_POLICY},
        {"insecure", no_argument, NULL, 'i'},                {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},            {"coordinator-cert", required_argument, NULL, OPT_CACHE},
        {"output", required_argument, NULL, 'o'},             {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"raw", required_argument, NULL, OPT_RAW},            {"help", no_argument, NULL, 'h'},
        {"simulation", no_argument, NULL, OPT_SIM},           {"collateral", required_argument, NULL, OPT_COLLATERAL},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->cc.cache_path = "coordinator-cert.pem";
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "io:h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_COORD: o->cc.address = optarg; break;
        case OPT_POLICY: o->cc.policy_path = optarg; break;
        case 'i': o->cc.insecure = true; break;
        case OPT_CERT: o->cc.cert_path = optarg; break;
        case OPT_KEY: o->cc.key_path = optarg; break;
        case OPT_CACHE: o->cc.cache_path = optarg; break;
        case 'o': o->output = optarg; break;
        case OPT_TIMEOUT: o->cc.timeout_s = atol(optarg); break;
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
        if ((r = coffer_file_read_all(o.argv[1], COFFER_MANIFEST_MAX_SIZE, &d, &n)) != COFFER_OK)
            return finish(&o, "manifest set", r);
        char *b64 = coffer_malloc(coffer_base64_encoded_len(n) + 32);
        if (b64 == NULL) {
            coffer_free(d);
            return finish(&o, "manifest set", COFFER_E_NOMEM);
        }
        strcpy(b64, "{\"manifest\": \"");
        coffer_base64_encode(d, n, b64 + strlen(b64));
        strcat(b64, "\"}");
        r = coord_client_call(&o.cc, "POST", "/api/v2/manifest", b64, &rep);
        if (r == COFFER_OK) {
            char h[65];
            sha256_hex(d, n, h);
            fprintf(stderr, "Manifest set (SHA-256 %s).\n", h);
        }
        coffer_free(b64);
        coffer_free(d);
        coord_reply_free(&rep);
        return finish(&o, "manifest set", r);
    }
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
