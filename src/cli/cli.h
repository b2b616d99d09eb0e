/*
 * cli.h — private to the `coffer` binary: the subcommand table and the
 * helpers every subcommand shares (error reporting, exit codes).
 */
#ifndef COFFER_CLI_H
#define COFFER_CLI_H

#include <stdio.h>

#include "coffer/base.h"

/* Exit codes: 0 success, 1 the operation failed, 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

struct cli_cmd {
    const char *name;
    const char *summary;
    /* argv[0] is the subcommand's name. Returns an exit code. */
    int (*run)(int argc, char **argv);
    void (*help)(FILE *out);
};

/* The table, terminated by a zeroed entry (commands.c). */
extern const struct cli_cmd cli_commands[];

/* Print "coffer <what>: <strerror>: <detail>" to stderr; returns CLI_FAIL. */
int cli_fail(const char *what, enum coffer_err err);
/* Print a usage error and a pointer to help; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) COFFER_PRINTF(2, 3);

#ifdef COFFER_HAVE_PF
int cmd_pf(int argc, char **argv);
void cmd_pf_help(FILE *out);
#endif

#ifdef COFFER_HAVE_COORDINATOR
int cmd_status(int argc, char **argv);
void cmd_status_help(FILE *out);
int cmd_manifest(int argc, char **argv);
void cmd_manifest_help(FILE *out);
int cmd_secret(int argc, char **argv);
void cmd_secret_help(FILE *out);
int cmd_certificate(int argc, char **argv);
void cmd_certificate_help(FILE *out);
int cmd_activate(int argc, char **argv);
void cmd_activate_help(FILE *out);
int cmd_coordinator(int argc, char **argv);
void cmd_coordinator_help(FILE *out);
int cmd_recover(int argc, char **argv);
void cmd_recover_help(FILE *out);
int cmd_check(int argc, char **argv);
void cmd_check_help(FILE *out);
#endif

#ifdef COFFER_HAVE_ATTEST
#include "coffer/attest.h"
/* Read a coffer attestation policy (JSON) from a file; errors name the file. */
enum coffer_err cli_policy_load(const char *path, struct coffer_attest_policy *out);
int cmd_attest(int argc, char **argv);
void cmd_attest_help(FILE *out);
#endif

#ifdef COFFER_HAVE_RUN
int cmd_secret_provider(int argc, char **argv);
void cmd_secret_provider_help(FILE *out);
int cmd_provision(int argc, char **argv);
void cmd_provision_help(FILE *out);
int cmd_run(int argc, char **argv);
void cmd_run_help(FILE *out);
#endif

#ifdef COFFER_HAVE_NN
int cmd_infer(int argc, char **argv);
void cmd_infer_help(FILE *out);
int cmd_inspect(int argc, char **argv);
void cmd_inspect_help(FILE *out);
int cmd_bench(int argc, char **argv);
void cmd_bench_help(FILE *out);
int cmd_calibrate(int argc, char **argv);
void cmd_calibrate_help(FILE *out);
#endif

#ifdef COFFER_HAVE_SERVE
int cmd_serve(int argc, char **argv);
void cmd_serve_help(FILE *out);
int cmd_predict(int argc, char **argv);
void cmd_predict_help(FILE *out);
#endif

#endif
