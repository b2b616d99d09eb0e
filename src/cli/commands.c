/*
 * commands.c — the table of `coffer` subcommands. A module's CLI file adds
 * one row here, guarded by COFFER_HAVE_<MODULE>.
 */
#include "cli.h"

const struct cli_cmd cli_commands[] = {
#ifdef COFFER_HAVE_PF
    {"pf", "Gramine-compatible protected files: gen-key, encrypt, decrypt", cmd_pf, cmd_pf_help},
#endif
#ifdef COFFER_HAVE_ATTEST
    {"attest", "attestation evidence: make, verify offline (SGX, TDX, SNP, simulation)", cmd_attest, cmd_attest_help},
#endif
    {0},
};
