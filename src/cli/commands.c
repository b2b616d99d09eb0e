/*
 * commands.c — the table of `coffer` subcommands. A module's CLI file adds
 * one row here, guarded by COFFER_HAVE_<MODULE>.
 */
#include "cli.h"

const struct cli_cmd cli_commands[] = {
#ifdef COFFER_HAVE_PF
    {"pf", "Gramine-compatible protected files: gen-key, encrypt, decrypt", cmd_pf, cmd_pf_help},
#endif
#ifdef COFFER_HAVE_NN
    {"infer", "run an ONNX model on tensor files (.pb, .npy)", cmd_infer, cmd_infer_help},
    {"inspect", "describe an ONNX model: inputs, outputs, ops, parameters, arena", cmd_inspect, cmd_inspect_help},
#endif
    {0},
};
