#!/usr/bin/env bash
# The Gramine manifest template (deploy/gramine/coffer.manifest.template):
#  1. it renders for serve, run and coordinator with gramine-manifest's Jinja
#     environment (deploy/gramine/render.py) into valid TOML with the settings
#     a production enclave needs (DCAP attestation, no debug, a fixed command
#     line without simulation or insecure flags, every shared library trusted);
#  2. it names every file the programs open: both flows run here natively, in
#     simulation, with exactly the rendered command line and environment,
#     under strace -f, and every file they opened must be trusted, allowed,
#     under an encrypted mount, or provided by Gramine (render.py check-opens).
# No Gramine and no SGX here: the enclave itself is not started (docs/deploy.md).
# Usage: test_gramine.sh COFFER_BIN SHARED_DIR
coffer=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/cli/lib.sh"
render="/usr/bin/python3 $src/deploy/gramine/render.py"
tpl=$src/deploy/gramine/coffer.manifest.template
pids=()
stop_all() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; pids=(); }
trap 'stop_all; [ -n "${KEEP:-}" ] && cp -r . "$KEEP"; _cleanup' EXIT
wait_log() { for _ in $(seq 150); do grep -q "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done; bad "timed out waiting for '$1' in $2: $(tail -2 "$2")"; return 1; }
common=(-Darch_libdir=/lib/x86_64-linux-gnu "-Dcoffer=$coffer")

# --- 1. production renderings
for c in serve run coordinator; do
  expect 0 "render $c" -- $render render -Dcommand=$c "${common[@]}" "$tpl" "prod-$c.manifest"
done
expect 0 "production settings" -- /usr/bin/python3 - "$coffer" <<'PY'
import subprocess, sys, tomllib
coffer = sys.argv[1]
glibc = {"ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libresolv.so.2", "libpthread.so.0", "libdl.so.2", "librt.so.1"}
libs = [l.split()[2] for l in subprocess.check_output(["ldd", coffer], text=True).splitlines()
        if "=>" in l and len(l.split()) > 2 and l.split()[2].startswith("/")]
errors = []
for c, size, threads in (("serve", "1G", 13), ("run", "1G", 8), ("coordinator", "256M", 13)):
    m = tomllib.load(open(f"prod-{c}.manifest", "rb"))
    sgx, argv = m["sgx"], m["loader"]["argv"]
    def want(cond, what):
        if not cond:
            errors.append(f"{c}: {what}")
    want(sgx["remote_attestation"] == "dcap", "remote_attestation dcap")
    want(sgx["debug"] is False, "production enclave (debug = false)")
    want(sgx["enclave_size"] == size, f"enclave_size {size}, got {sgx['enclave_size']}")
    want(sgx["max_threads"] == threads, f"max_threads {threads}, got {sgx['max_threads']}")
    want(argv[1] == c, "argv runs the command")
    for flag in ("--simulation", "--insecure", "--no-path-check", "--plain-model", "--key"):
        want(flag not in argv, f"no {flag} in a production command line")
    want("insecure__use_cmdline_argv" not in m["loader"] and "insecure__use_host_env" not in m["loader"],
         "command line and environment fixed in the manifest")
    want(m["libos"]["entrypoint"] == coffer, "entrypoint is the coffer binary")
    trusted = set(sgx["trusted_files"])
    want(f"file:{coffer}" in trusted, "the binary is trusted")
    for lib in libs:
        if lib.split("/")[-1] not in glibc:
            want(f"file:{lib}" in trusted, f"{lib} trusted")
    want("file:/etc/ssl/openssl.cnf" in trusted, "OpenSSL's configuration trusted")
    want(not any("COFFER_SIM" in k for k in m["loader"].get("env", {})), "no simulation key")
    mounts = m["fs"]["mounts"]
    if c == "serve":
        enc = [x for x in mounts if x.get("type") == "encrypted"]
        want(len(enc) == 1 and enc[0]["key_name"] == "_sgx_mrenclave" and enc[0]["path"] == "/marble-state",
             "the marble state sealed with _sgx_mrenclave")
        want("file:models/resnet50/" in sgx["allowed_files"], "model ciphertext allowed")
    if c == "run":
        want("file:ca.crt" in trusted, "the provider's CA is trusted")
print("\n".join(errors) or "ok", file=sys.stderr if errors else sys.stdout)
sys.exit(1 if errors else 0)
PY
has "^ok$" out "production settings hold"
expect 1 "an unknown command is refused" -- $render render -Dcommand=predict "${common[@]}" "$tpl"
has "command_must_be_serve_run_or_coordinator" err "names the allowed commands"
expect 0 "overrides" -- $render render -Dcommand=serve -Dthreads=8 -Denclave_size=2G -Ddebug=true "${common[@]}" "$tpl"
has 'sgx.max_threads = 21' out "threads sizes max_threads (1 + 2x8 + 4)"
has 'sgx.enclave_size = "2G"' out "enclave_size override"

# --- 2. the files the programs open, in simulation, with the rendered command lines
# run_traced NAME MANIFEST: start the manifest's argv with its loader.env (and
# nothing else) under strace; the trace goes to NAME.trace, output to NAME.log.
run_traced() {
  local name=$1 manifest=$2
  mapfile -d '' -t cmd < <(/usr/bin/python3 -c '
import sys, tomllib
m = tomllib.load(open(sys.argv[1], "rb"))
env = [f"{k}={v}" for k, v in m["loader"].get("env", {}).items()]
# LeakSanitizer cannot run under ptrace: in a sanitizer build, leaks are the
# for the other tests; here only the opened files matter
env.append("ASAN_OPTIONS=detect_leaks=0")
print("\0".join(["env", "-i", *env, "strace", "-f", "-qq", "-o", sys.argv[2],
                 "-e", "trace=open,openat,openat2,creat", sys.argv[3], *m["loader"]["argv"][1:]]), end="")
' "$manifest" "$name.trace" "$coffer")
  timeout 120 "${cmd[@]}" > "$name.log" 2>&1
}
# stop_traced PID: TERM the traced coffer, the deepest process under the
# background job (job -> timeout -> strace -> coffer), then wait for the job
child_of() {
  local d
  for d in /proc/[0-9]*; do
    if [ "$(cut -d' ' -f4 "$d/stat" 2>/dev/null)" = "$1" ]; then echo "${d#/proc/}"; return 0; fi
  done
}
stop_traced() {
  local p=$1 c
  while c=$(child_of "$p") && [ -n "$c" ]; do p=$c; done
  kill -TERM "$p" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
sim=(-Dsimulation=true -Dsim_platform_key=sim-key.pem -Dthreads=1 "${common[@]}")
export COFFER_SIM_PLATFORM_KEY=$tmp/sim-key.pem
"$coffer" attest evidence --report-data 00 -o ev.bin --provider simulation >/dev/null 2>&1 || true  # makes the platform key
[ -f sim-key.pem ] && ok || bad "the simulation platform key was made"
measurement=$(sha256sum "$coffer" | cut -d' ' -f1)

CP=$(port); MP=$(port); G=$(port); R=$(port)
$render render -Dcommand=coordinator "${sim[@]}" -Dclient_addr=127.0.0.1:$CP -Dmesh_addr=127.0.0.1:$MP "$tpl" coord.manifest
run_traced coord coord.manifest &
coord_pid=$!
pids+=($coord_pid)
wait_log "client API on port" coord.log
A=127.0.0.1:$CP
"$coffer" pf gen-key -w model_key 2>/dev/null
"$coffer" pf encrypt -w model_key -i "$src/models/digits/model.onnx" -o models/digits/1/model.onnx 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout owner.key -out owner.crt -subj /CN=owner -days 1 2>/dev/null
cert=$(awk 'NF {sub(/\r/, ""); printf "%s\\n",$0;}' owner.crt)
# what gramine-sgx-sigstruct-view --output-format json prints for a signed enclave
cat > sig.json <<JSON
{"mr_signer": "$(printf signer | sha256sum | cut -d' ' -f1)", "mr_enclave": "$(printf enclave | sha256sum | cut -d' ' -f1)",
 "isv_prod_id": 1, "isv_svn": 3, "debug_enclave": false}
JSON
pkg="/usr/bin/python3 $src/deploy/gramine/sgx-package.py"
expect 0 "package by MRENCLAVE" -- $pkg package sig.json --name sgx-server
has "\"UniqueID\": \"$(printf enclave | sha256sum | cut -d' ' -f1)\"" out "UniqueID is MRENCLAVE"
expect 0 "package by MRSIGNER" -- $pkg package sig.json --name sgx-signed --signer
has '"SecurityVersion": 3' out "minimum ISVSVN"
cp out signed-package.json
$pkg package sig.json --name sgx-server > unique-package.json
expect 0 "policy" -- $pkg policy sig.json
cp out policy.json
expect 1 "the policy loads and refuses simulation evidence" -- "$coffer" attest verify ev.bin --policy policy.json
if grep -qi "unknown key\|malformed\|json" err; then bad "policy.json did not load: $(tail -1 err)"; else ok; fi
expect 0 "ra-tls env" -- $pkg ra-tls-env sig.json
has "^RA_TLS_MRENCLAVE=$(printf enclave | sha256sum | cut -d' ' -f1)$" out "RA_TLS_MRENCLAVE"
has "^RA_TLS_MRSIGNER=any$" out "RA_TLS_MRSIGNER any when MRENCLAVE is pinned"
printf '{"mr_signer": "zz", "mr_enclave": "00", "isv_prod_id": 1, "isv_svn": 1, "debug_enclave": false}' > badsig.json
expect 1 "a malformed sigstruct JSON is refused" -- $pkg package badsig.json
sgx_pkgs=$(/usr/bin/python3 -c 'import json,sys; d={}; [d.update(json.load(open(f))) for f in sys.argv[1:]]; print(json.dumps(d)[1:-1])' \
  unique-package.json signed-package.json)
cat > manifest.json <<JSON
{"Packages": {"server": {"TEE": "Simulation", "UniqueID": "$measurement"}, $sgx_pkgs},
 "Marbles": {"tf-server": {"Package": "server", "Parameters": {"Files": {"/dev/attestation/keys/default": "{{ raw .Secrets.pfKey }}"}}}},
 "Secrets": {"pfKey": {"Type": "symmetric-key", "Size": 128, "UserDefined": true}},
 "Users": {"owner": {"Certificate": "$cert", "Roles": ["w"]}},
 "Roles": {"w": {"ResourceType": "Secrets", "ResourceNames": ["pfKey"], "Actions": ["WriteSecret"]}}}
JSON
expect 0 "manifest set (with the SGX packages sgx-package.py made)" -- "$coffer" manifest set manifest.json "$A" --simulation
expect 0 "secret set" -- "$coffer" secret set --raw pfKey=model_key "$A" --simulation --cert owner.crt --key owner.key
expect 0 "intermediate" -- "$coffer" certificate intermediate -o coordinator.crt "$A" --simulation

$render render -Dcommand=serve "${sim[@]}" -Dcoordinator=127.0.0.1:$MP -Dmodel_base_path=models/digits \
  -Dmodel_name=digits -Dgrpc_port=$G -Drest_port=$R "$tpl" serve.manifest
mkdir -p marble-state
run_traced serve serve.manifest &
serve_pid=$!
pids+=($serve_pid)
wait_log "gRPC on port" serve.log
/usr/bin/python3 "$src/tools/digits_io.py" inputs in 1 2>/dev/null
expect 0 "predict over gRPC from the traced server" -- "$coffer" predict --url "localhost:$G" --crt coordinator.crt \
  --model digits -i in/img000.npy
expect 0 "predict over REST" -- "$coffer" predict --rest --url "localhost:$R" --crt coordinator.crt --model digits -i in/img000.npy
stop_traced $serve_pid
stop_traced $coord_pid
pids=()
has "serve: stopped" serve.log "the traced server stopped on SIGTERM"

# the batch flow: a secret provider (the trusted machine, not in an enclave) and the traced job
"$coffer" pf gen-key -w wrap_key 2>/dev/null
"$coffer" pf encrypt -w wrap_key -i "$src/models/digits/model.onnx" -o enc/model.onnx 2>/dev/null
"$coffer" pf encrypt -w wrap_key -i in -o enc/inputs >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout provider.key -out ca.crt \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 1 2>/dev/null
P=$(port)
timeout 120 "$coffer" secret-provider --secret wrap_key --cert ca.crt --key provider.key --listen "127.0.0.1:$P" \
  --simulation --measurement "$measurement" > provider.log 2>&1 &
pids+=($!)
wait_log "listening on port" provider.log
$render render -Dcommand=run "${sim[@]}" -Dsecret_provider=localhost:$P "$tpl" run.manifest
run_traced run run.manifest || bad "the traced job failed: $(tail -2 run.log)"
[ -f enc/results/img000.npy.output_0.npy ] && ok || bad "the traced job wrote its result: $(tail -2 run.log)"
stop_all

tolerate=()
# grep reads all of ldd's output (no -q): with pipefail, grep -q leaving at
# the first match could kill ldd with SIGPIPE and fail the test, now and then
if ldd "$coffer" | grep libasan >/dev/null; then  # a sanitizer build (never one for an enclave)
  tolerate=(--tolerate "/proc/self/environ=read by the AddressSanitizer runtime of this test build")
fi
for t in coord serve run; do
  expect 0 "$t: every opened file is covered by the manifest" -- \
    /usr/bin/python3 "$src/deploy/gramine/render.py" check-opens "${tolerate[@]}" "$t.manifest" "$t.trace"
  cp out "$t.opens"
  grep '^MISSING' "$t.opens" | sed "s/^/$t: /" >&2 || true  # which file, when one is not covered
  has "all [0-9]* opened files are covered" "$t.opens" "$t coverage summary"
done
has "ok *models/digits/1/model.onnx *(allowed_files models/digits/)" serve.opens "the model is read as allowed ciphertext"
has "ok *marble-state/uuid" serve.opens "the marble UUID is in the marble-state mount"
has "ok *enc/results/img000.npy.output_0.npy" run.opens "results are written where the manifest allows"
has "ok *ca.crt *(trusted_files" run.opens "the provider's CA is read as a trusted file"
has "ok *coordinator-data/" coord.opens "the coordinator's sealed state is where the manifest allows"
has "libcrypto.so.3 *(trusted_files" serve.opens "libraries come from trusted files"
# the checker must fail on a file the manifest does not name
printf '123 openat(AT_FDCWD, "/etc/shadow", O_RDONLY|O_CLOEXEC) = 3\n' > bad.trace
expect 1 "an uncovered file is reported" -- /usr/bin/python3 "$src/deploy/gramine/render.py" check-opens serve.manifest bad.trace
has "MISSING  /etc/shadow" out "names the uncovered file"
# the Makefile's recipes (dry run: no Gramine here)
expect 0 "make -n" -- make -n -f "$src/deploy/gramine/Makefile" COFFER="$coffer" SGX_SIGNER_KEY=key.pem all
has "gramine-manifest -Dcommand=serve -Darch_libdir=/lib/x86_64-linux-gnu -Dcoffer=$coffer" out "renders serve"
has "gramine-sgx-sign --key key.pem --manifest coffer-coordinator.manifest --output coffer-coordinator.manifest.sgx" out "signs"
has "gramine-sgx-sigstruct-view --output-format json coffer-run.sig > coffer-run.sigstruct.json" out "reads the identity"
finish "deploy gramine"
