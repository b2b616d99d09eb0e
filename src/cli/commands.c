/*
 * commands.c — the table of `coffer` subcommands. A module's CLI file adds
 * one row here, guarded by COFFER_HAVE_<MODULE>.
 */
#include "cli.h"

const struct cli_cmd cli_commands[] = {
#ifdef COFFER_HAVE_PF
    {"pf", "Gramine-compatible protected files: gen-key, encrypt, decrypt", cmd_pf, cmd_pf_help},
#endif
#ifdef COFFER_HAVE_COORDINATOR
    {"coordinator", "run the coordinator (manifest, attestation, certificates, secrets)", cmd_coordinator,
     cmd_coordinator_help},
    {"activate", "activate as a marble, then run the workload with its files and env", cmd_activate,
     cmd_activate_help},
    {"status", "the coordinator's state", cmd_status, cmd_status_help},
    {"check", "wait until the coordinator is up, verified and ready", cmd_check, cmd_check_help},
    {"manifest", "set, get, verify and update the coordinator's manifest", cmd_manifest, cmd_manifest_help},
    {"recover", "bring a coordinator in recovery mode back with a recovery key", cmd_recover, cmd_recover_help},
    {"secret", "set and get user-defined secrets", cmd_secret, cmd_secret_help},
    {"certificate", "the coordinator's root, intermediate or chain (verified)", cmd_certificate, cmd_certificate_help},
#endif
#ifdef COFFER_HAVE_ATTEST
    {"attest", "attestation evidence: make, verify offline (SGX, TDX, SNP, simulation)", cmd_attest, cmd_attest_help},
#endif
#ifdef COFFER_HAVE_RUN
    {"secret-provider", "release a key to attested workloads (Gramine secret provisioning, RA-TLS)",
     cmd_secret_provider, cmd_secret_provider_help},
    {"provision", "fetch a key from a secret provider over RA-TLS", cmd_provision, cmd_provision_help},
    {"run", "batch inference over protected files, with the key from a secret provider", cmd_run, cmd_run_help},
#endif
#ifdef COFFER_HAVE_NN
    {"infer", "run an ONNX model on tensor files (.pb, .npy)", cmd_infer, cmd_infer_help},
    {"inspect", "describe an ONNX model: inputs, outputs, ops, parameters, arena", cmd_inspect, cmd_inspect_help},
    {"bench", "time an ONNX model: latency, throughput, peak memory, load time (one JSON line)", cmd_bench,
     cmd_bench_help},
    {"calibrate", "record an ONNX model's activation ranges for --precision int8 (a calibration table)",
     cmd_calibrate, cmd_calibrate_help},
#endif
#ifdef COFFER_HAVE_SERVE
    {"serve", "TensorFlow-Serving-compatible model server (gRPC, REST) over TLS", cmd_serve, cmd_serve_help},
    {"predict", "send predictions to a model server (gRPC or REST), with latency statistics", cmd_predict,
     cmd_predict_help},
#endif
    {0},
};
