#!/usr/bin/env bash
# coffer's main job, README command one. Everything on loopback, in
# simulation mode (this machine has no TEE: said on every line that matters),
# with the real parts: protected files, attestation evidence, RA-TLS, the
# coordinator, the ONNX runtime and the digits model in models/digits.
#
#  Part 1, the batch flow of the PyTorch-in-Gramine demo: the model owner
#  encrypts a model and the data owner the inputs; a secret provider releases
#  the wrap key over RA-TLS only to a workload whose evidence matches; `coffer
#  run` decrypts in memory, infers, and writes encrypted results; the owner
#  decrypts them and scores them against the held-out labels.
#
#  Part 2, the TF-Serving-in-SGX demo: the coordinator (MarbleRun's role),
#  the manifest, the model key as the owner's secret, `coffer serve` attesting
#  and receiving its certificate and the key, and `coffer predict` over
#  gRPC/TLS pinned to the coordinator's intermediate certificate, with the
#  refusals a user must see.
#
# usage: bash tools/demo.sh [--model digits|resnet50]
#  --model resnet50 serves torchvision's resnet50 (v1.5, exported here with
#  /usr/bin/python3 and python3-torch; weights=None and a fixed seed, so
#  nothing is downloaded and its classes are arbitrary) in part 2, and sends
#  it a JPEG with ImageNet preprocessing; the digits model stays in part 1.
#
# Installs what it needs (tools/packages.txt), builds, leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
model=digits
while [ $# -gt 0 ]; do
  case "$1" in
  --model) model=${2:-}; shift 2 || { echo "usage: demo.sh [--model digits|resnet50]" >&2; exit 2; } ;;
  *) echo "usage: demo.sh [--model digits|resnet50]" >&2; exit 2 ;;
  esac
done
case "$model" in digits | resnet50) ;; *) echo "demo.sh: --model is digits or resnet50" >&2; exit 2 ;; esac
bash tools/install-deps.sh
echo "== building coffer (build/release)"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "$(nproc)" >/dev/null
coffer=$root/build/release/src/cli/coffer
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
export COFFER_SIM_PLATFORM_KEY=$work/sim-platform-key.pem
say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_log() { for _ in $(seq 100); do grep -q "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done; echo "timed out waiting for $2" >&2; exit 1; }
# inverts one byte in place (writing a constant would change nothing 1 time in 256)
flip_byte() { local b; b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
measurement=$(sha256sum "$coffer" | cut -d' ' -f1)

say "PART 1: batch inference over protected files (simulation: no TEE on this machine)"
say "the model owner makes a wrap key and encrypts the model, bound to the path the job opens"
run "$coffer" pf gen-key -w wrap_key
run "$coffer" pf encrypt -w wrap_key -i "$root/models/digits/model.onnx" -o enc/model.onnx
say "the data owner encrypts the 360 held-out digits (never trained on)"
python3 "$root/tools/digits_io.py" inputs plain_inputs
run "$coffer" pf encrypt -w wrap_key -i plain_inputs -o enc/inputs >/dev/null 2>&1
rm -rf plain_inputs
say "the trusted machine runs a secret provider: it releases the key only to evidence of the expected program"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout provider.key -out provider.crt \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 1 2>/dev/null
P=$(port)
echo "\$ coffer secret-provider --secret wrap_key --cert provider.crt --key provider.key --listen 127.0.0.1:$P --simulation --measurement ${measurement:0:16}..."
"$coffer" secret-provider --secret wrap_key --cert provider.crt --key provider.key --listen "127.0.0.1:$P" \
  --simulation --measurement "$measurement" > provider.log 2>&1 &
pids+=($!)
wait_log "listening on port" provider.log
say "the job attests over RA-TLS, gets the key, decrypts in memory, infers, writes encrypted results"
run "$coffer" run --model enc/model.onnx --input enc/inputs --output enc/results \
  --secret-provider "localhost:$P" --ca provider.crt --simulation 2>&1 | tail -2
echo "provider: $(grep -o 'result=released kind=[a-z]*' provider.log | head -1)"
say "the owner decrypts the results (protected files bound to their paths) and scores them"
"$coffer" pf decrypt -V -w wrap_key -i enc/results -o results >/dev/null 2>&1
python3 "$root/tools/digits_io.py" score results labels.txt
say "refusals: a provider that expects another program gives nothing; a tampered model does not load"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
P2=$(port)
"$coffer" secret-provider --secret wrap_key --cert provider.crt --key provider.key --listen "127.0.0.1:$P2" \
  --simulation --measurement "$(printf 'another program' | sha256sum | cut -d' ' -f1)" > provider2.log 2>&1 &
pids+=($!)
wait_log "listening on port" provider2.log
if "$coffer" run --model enc/model.onnx --input enc/inputs --output enc/nope --secret-provider "localhost:$P2" \
   --ca provider.crt --simulation 2>err; then echo "released to the wrong program!"; exit 1; fi
echo "job:      $(tail -1 err)"
echo "provider: $(grep -o 'result=refused.*' provider2.log | head -1 | cut -c1-150)"
cp enc/model.onnx enc/tampered.onnx
flip_byte enc/tampered.onnx $((4096 * 3 + 5))
if "$coffer" run --model enc/tampered.onnx --input enc/inputs --output enc/nope --key wrap_key --no-path-check 2>err; then
  echo "tampered model accepted!"; exit 1; fi
echo "tampered: $(tail -1 err)"

say "PART 2: the serving flow (TF Serving in an enclave, with a coordinator in MarbleRun's role)"
CP=$(port); MP=$(port); G=$(port); R=$(port)
echo "\$ coffer coordinator --simulation --client-addr 127.0.0.1:$CP --mesh-addr 127.0.0.1:$MP --seal-dir coordinator-state"
"$coffer" coordinator --simulation --client-addr "127.0.0.1:$CP" --mesh-addr "127.0.0.1:$MP" \
  --seal-dir coordinator-state --threads 1 > coordinator.log 2>&1 &
pids+=($!)
wait_log "client API on port" coordinator.log
if [ "$model" = resnet50 ]; then
  say "the model owner exports resnet50 from torchvision (weights=None, seed 0: nothing downloaded, classes arbitrary)"
  /usr/bin/python3 "$root/tools/nn-export-models.py" plain resnet50 2>/dev/null | grep -v "^note"
  /usr/bin/python3 -c 'import torchvision; print("\n".join(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"]))' > classes.txt
  plain_model=plain/resnet50.onnx
  # a 320x240 colour photo-like test image, made from a digit sample
  /usr/bin/python3 -c 'from PIL import Image, ImageOps; import sys
im = ImageOps.colorize(Image.open(sys.argv[1]).resize((320, 240), Image.BICUBIC), "navy", "orange")
im.save(sys.argv[2], quality=90)' "$root/models/digits/samples/000_7.png" photo.jpg
  inputs=(-i photo.jpg); prep=(--imagenet --input-name input); load=(--batch 1 --cnum 1 --loop 3); one=photo.jpg
else
  plain_model=$root/models/digits/model.onnx
  cp "$root/models/digits/labels.txt" classes.txt
  # the held-out sample images (8-bit grey PNG, pixel values x15, named
  # INDEX_LABEL.png): the client scales them back to the model's pixel/16
  cp "$root"/models/digits/samples/00[0-8]_*.png .
  inputs=(-i 000_7.png -i 001_6.png -i 002_3.png -i 006_2.png -i 007_8.png); prep=(--channels 1 --scale 1/240)
  load=(--batch 8 --cnum 2 --loop 25); one=008_9.png
fi
say "the model owner encrypts the model into TF Serving's layout and makes a user certificate"
run "$coffer" pf gen-key -w model_key
run "$coffer" pf encrypt -w model_key -i "$plain_model" -o "models/$model/1/model.onnx"
rm -rf plain
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout user.key -out user.crt \
  -subj /CN=model-owner -days 1 2>/dev/null
cert=$(awk 'NF {sub(/\r/, ""); printf "%s\\n",$0;}' user.crt)
cat > manifest.json <<JSON
{"Packages": {"model-server": {"TEE": "Simulation", "UniqueID": "$measurement"},
              "unknown-build": {"TEE": "Simulation", "UniqueID": "$(printf 'another program' | sha256sum | cut -d' ' -f1)"}},
 "Marbles": {"tf-server": {"Package": "model-server",
                           "Parameters": {"Files": {"/dev/attestation/keys/default": "{{ raw .Secrets.pfKey }}"}}},
             "rogue-server": {"Package": "unknown-build",
                              "Parameters": {"Files": {"/dev/attestation/keys/default": "{{ raw .Secrets.pfKey }}"}}}},
 "Secrets": {"pfKey": {"Type": "symmetric-key", "Size": 128, "UserDefined": true}},
 "Users": {"model-owner": {"Certificate": "$cert", "Roles": ["secret-manager"]}},
 "Roles": {"secret-manager": {"ResourceType": "Secrets", "ResourceNames": ["pfKey"], "Actions": ["WriteSecret", "ReadSecret"]}}}
JSON
A=127.0.0.1:$CP
say "the administrator sets the manifest; the owner verifies the coordinator and uploads the model key"
run "$coffer" manifest set manifest.json "$A" --simulation 2>&1 | grep -v "^coffer: \|warn"
run "$coffer" secret set --raw pfKey=model_key "$A" --simulation --cert user.crt --key user.key 2>&1 | grep -v "^coffer: \|warn"
say "the model server starts in its TEE, attests to the coordinator, gets its certificate and the key"
echo "\$ coffer serve --coordinator 127.0.0.1:$MP --marble-type tf-server --simulation --model_base_path models/$model --model_name $model --port $G --rest_api_port $R"
"$coffer" serve --coordinator "127.0.0.1:$MP" --marble-type tf-server --simulation --model_base_path "models/$model" \
  --model_name "$model" --port "$G" --rest_api_port "$R" --host 127.0.0.1 > serve.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" serve.log
grep -o "serve: .*" serve.log | head -3
say "a client fetches the coordinator's intermediate certificate and sends predictions over gRPC/TLS"
run "$coffer" certificate intermediate -o coordinator.crt "$A" --simulation 2>&1 | grep -v "^coffer: \|warn"
run "$coffer" predict --url "localhost:$G" --crt coordinator.crt --model "$model" "${prep[@]}" \
  --labels classes.txt --top 1 "${inputs[@]}"
run "$coffer" predict --url "localhost:$G" --crt coordinator.crt --model "$model" "${prep[@]}" \
  -i "$one" "${load[@]}" --top 1 | tail -1
run "$coffer" predict --rest --url "localhost:$R" --crt coordinator.crt --model "$model" "${prep[@]}" \
  -i "$one" --labels classes.txt --top 1
say "refusals: a client that does not trust the coordinator; a server build the manifest does not name"
if "$coffer" predict --url "localhost:$G" --crt provider.crt --model "$model" "${prep[@]}" -i "$one" 2>err; then
  echo "untrusted client connected!"; exit 1; fi
echo "client:  $(tail -1 err)"
if "$coffer" serve --coordinator "127.0.0.1:$MP" --marble-type rogue-server --simulation --model_base_path "models/$model" \
   --port "$(port)" --rest_api_port 0 --host 127.0.0.1 2>err; then echo "rogue server got the key!"; exit 1; fi
echo "server:  $(tail -1 err | cut -c1-200)"
say "the coordinator's audit log (the model key itself is never logged)"
run "$coffer" manifest log "$A" --simulation 2>/dev/null | cut -c1-110
say "demo: all steps passed (simulation mode: no hardware protection on this machine)"
