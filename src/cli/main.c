/*
 * main.c — `coffer`: dispatch to git-style subcommands.
 *
 *   coffer --help | -h | help [COMMAND]
 *   coffer --version
 *   coffer COMMAND [ARGS...]
 *
 * Only this binary exits; libraries return errors (STYLE §3.6).
 */
#include <stdarg.h>
#include <string.h>

#include "cli.h"

#ifdef COFFER_HAVE_ATTEST
enum coffer_err cli_policy_load(const char *path, struct coffer_attest_policy *out)
{
    uint8_t *d;
    size_t n;
    json_t *j = NULL;
    enum coffer_err r = coffer_file_read_all(path, 1u << 20, &d, &n);
    if (r == COFFER_OK) {
        if ((r = coffer_json_parse(d, n, 1u << 20, &j)) == COFFER_OK)
            r = coffer_attest_policy_from_json(j, out);
        json_decref(j);
        coffer_free(d);
    }
    if (r != COFFER_OK)
        coffer_err_context("policy %s", path);
    return r;
}
#endif

int cli_fail(const char *what, enum coffer_err err)
{
    char msg[768];
    fprintf(stderr, "coffer %s: %s\n", what, coffer_err_format(err, msg, sizeof(msg)));
    return CLI_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "coffer %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'coffer help %s'.\n", cmd);
    return CLI_USAGE;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: coffer [--version] [--help] COMMAND [ARGS]\n\n"
                 "coffer: confidential machine-learning inference.\n\nCommands:\n");
    for (const struct cli_cmd *c = cli_commands; c->name != NULL; c++)
        fprintf(out, "  %-16s %s\n", c->name, c->summary);
    fprintf(out, "\n'coffer help COMMAND' describes one command.\n");
}

static const struct cli_cmd *find(const char *name)
{
    for (const struct cli_cmd *c = cli_commands; c->name != NULL; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || (strcmp(a, "help") == 0 && argc == 2)) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "version") == 0) {
        printf("coffer %s\n", COFFER_VERSION_STRING);
        return CLI_OK;
    }
    if (strcmp(a, "help") == 0) {
        const struct cli_cmd *c = find(argv[2]);
        if (c == NULL) {
            fprintf(stderr, "coffer: no command '%s'\n", argv[2]);
            usage(stderr);
            return CLI_USAGE;
        }
        c->help(stdout);
        return CLI_OK;
    }
    const struct cli_cmd *c = find(a);
    if (c == NULL) {
        fprintf(stderr, "coffer: '%s' is not a coffer command; see 'coffer --help'\n", a);
        return CLI_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
