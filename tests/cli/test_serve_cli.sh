#!/usr/bin/env bash
# The serving flow (the TF-Serving-in-SGX demo's), as users run it: a
# coordinator; the manifest; the model key as the owner's secret; `coffer
# serve` activating as a marble and serving the encrypted digits model over
# gRPC and REST; `coffer predict` pinning the coordinator's intermediate
# certificate. And the refusals a user must see. Loopback only, bounded,
# leaves nothing running. Usage: test_serve_cli.sh COFFER_BIN SHARED_DIR
coffer=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

CP=$(port); MP=$(port)
timeout 120 "$coffer" coordinator --simulation --client-addr "127.0.0.1:$CP" --mesh-addr "127.0.0.1:$MP" \
  --seal-dir seal --threads 1 > coord.log 2>&1 &
pids+=($!)
wait_log "client API on port" coord.log
A=127.0.0.1:$CP
"$coffer" pf gen-key -w model_key 2>/dev/null
"$coffer" pf encrypt -w model_key -i "$src/models/digits/model.onnx" -o models/digits/1/model.onnx 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout owner.key -out owner.crt -subj /CN=owner -days 1 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout viewer.key -out viewer.crt -subj /CN=viewer -days 1 2>/dev/null
c1=$(awk 'NF {sub(/\r/, ""); printf "%s\\n",$0;}' owner.crt); c2=$(awk 'NF {sub(/\r/, ""); printf "%s\\n",$0;}' viewer.crt)
cat > manifest.json <<JSON
{"Packages": {"server": {"TEE": "Simulation", "UniqueID": "$(sha256sum "$coffer" | cut -d' ' -f1)"},
              "other": {"TEE": "Simulation", "UniqueID": "$(printf 'another build' | sha256sum | cut -d' ' -f1)"}},
 "Marbles": {"tf-server": {"Package": "server", "Parameters": {"Files": {"/dev/attestation/keys/default": "{{ raw .Secrets.pfKey }}"}}},
             "impostor": {"Package": "other", "Parameters": {"Files": {"/dev/attestation/keys/default": "{{ raw .Secrets.pfKey }}"}}}},
 "Secrets": {"pfKey": {"Type": "symmetric-key", "Size": 128, "UserDefined": true}},
 "Users": {"owner": {"Certificate": "$c1", "Roles": ["w"]}, "viewer": {"Certificate": "$c2", "Roles": ["r"]}},
 "Roles": {"w": {"ResourceType": "Secrets", "ResourceNames": ["pfKey"], "Actions": ["WriteSecret"]},
           "r": {"ResourceType": "Secrets", "ResourceNames": ["pfKey"], "Actions": ["ReadSecret"]}}}
JSON
expect 0 "manifest set" -- "$coffer" manifest set manifest.json "$A" --simulation
expect 1 "a user without the role cannot set the secret" -- "$coffer" secret set --raw pfKey=model_key "$A" \
  --simulation --cert viewer.crt --key viewer.key
has "403" err "role refusal"
expect 0 "secret set" -- "$coffer" secret set --raw pfKey=model_key "$A" --simulation --cert owner.crt --key owner.key
expect 0 "intermediate" -- "$coffer" certificate intermediate -o coordinator.crt "$A" --simulation

# a server whose measurement is not the package's gets no key and does not serve
G=$(port); R=$(port)
expect 1 "impostor server" -- "$coffer" serve --coordinator "127.0.0.1:$MP" --marble-type impostor --simulation \
  --model_base_path models/digits --model_name digits --port "$G" --rest_api_port "$R" --host 127.0.0.1
has "measurement is not in the allowed list\|403" err "impostor refused by the coordinator"

timeout 120 "$coffer" serve --coordinator "127.0.0.1:$MP" --marble-type tf-server --simulation \
  --model_base_path models/digits --model_name digits --port "$G" --rest_api_port "$R" --host 127.0.0.1 \
  --threads 1 > serve.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" serve.log
has "sim-info serve: activated as marble tf-server" serve.log "activation logged, as simulation"

/usr/bin/python3 "$src/tools/digits_io.py" inputs in 8 2>/dev/null
pngs=("$src"/models/digits/samples/*.png)
i=0
while read -r label; do
  f=$(printf 'in/img%03d.npy' "$i")
  expect 0 "gRPC predict $i" -- "$coffer" predict --url "localhost:$G" --crt coordinator.crt --model digits -i "$f" --top 1
  has "1. class $label " out "gRPC prediction $i is the label"
  expect 0 "REST predict $i" -- "$coffer" predict --rest --url "localhost:$R" --crt coordinator.crt --model digits -i "$f" --top 1
  has "1. class $label " out "REST prediction $i is the label"
  i=$((i + 1))
done < labels.txt
expect 0 "concurrent gRPC" -- "$coffer" predict --url "localhost:$G" --crt coordinator.crt --model digits -i in/img000.npy \
  --batch 4 --cnum 3 --loop 10 --top 1
has "30 requests" out "all concurrent requests answered"
# images: the committed samples (8-bit grey PNGs of the held-out digits,
# pixel values x15, named INDEX_LABEL.png), all in one batch
expect 0 "PNG predict" -- "$coffer" predict --url "localhost:$G" --crt coordinator.crt --model digits \
  --channels 1 --scale 1/240 --labels "$src/models/digits/labels.txt" --top 1 "${pngs[@]/#/-i}"
for f in "${pngs[@]}"; do
  label=$(basename "$f" .png); label=${label#*_}
  grep -A1 -F "$f" out | grep "1. class $label " >/dev/null && ok "PNG $label predicted" || bad "PNG $label predicted" out
done
# a JPEG, four times the size: resized back to 8x8 by the client
/usr/bin/python3 -c "from PIL import Image; import sys; Image.open(sys.argv[1]).resize((32, 32), Image.BILINEAR).save(sys.argv[2], quality=95)" \
  "$src/models/digits/samples/000_7.png" seven.jpg
expect 0 "JPEG predict, resized" -- "$coffer" predict --rest --url "localhost:$R" --crt coordinator.crt --model digits \
  --channels 1 --size 8x8 --scale 1/240 --top 1 -i seven.jpg
has "1. class 7 " out "JPEG resized to 8x8 is still a 7"
head -c 40 "${pngs[0]}" > cut.png
expect 1 "truncated PNG" -- "$coffer" predict --url "localhost:$G" --crt coordinator.crt --model digits --channels 1 -i cut.png
has "PNG" err "the image error names the format"
expect 2 "bad image flag" -- "$coffer" predict --url "localhost:$G" --crt coordinator.crt --model digits --size 0x3 -i cut.png
expect 1 "unknown model" -- "$coffer" predict --url "localhost:$G" --crt coordinator.crt --model nosuch -i in/img000.npy
has "NOT_FOUND" err "TF's status for an unknown model"
# a client that does not trust the coordinator's CA cannot connect
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout x.key -out x.crt -subj /CN=x -days 1 2>/dev/null
expect 1 "untrusted CA" -- "$coffer" predict --url "localhost:$G" --crt x.crt --model digits -i in/img000.npy
has "certificate" err "TLS refusal named"
curl -s --cacert coordinator.crt "https://localhost:$R/v1/models/digits" > status.json && has '"state": "AVAILABLE"' status.json "REST model status"
curl -s --cacert coordinator.crt "https://localhost:$R/monitoring/prometheus/metrics" > metrics.txt && has 'coffer_serve_requests_total{api="grpc",result="ok"} [1-9]' metrics.txt "serve metrics"
has 'proto=HTTP/2+gRPC method=POST path="/tensorflow.serving.PredictionService/Predict" status=200' serve.log "one log line per request"
stop_all
has "serve: stopped" serve.log "graceful stop"

# a tampered model does not load, and says why; a moved one fails the path check
"$coffer" pf encrypt -w model_key -i "$src/models/digits/model.onnx" -o bad/1/model.onnx 2>/dev/null
flip_byte bad/1/model.onnx $((4096 * 3 + 9))
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout s.key -out s.crt -subj /CN=localhost -days 1 2>/dev/null
expect 1 "tampered model" -- "$coffer" serve --tls-cert s.crt --tls-key s.key --model-key model_key \
  --model_base_path bad --port "$(port)" --rest_api_port 0 --host 127.0.0.1
has "MAC mismatch" err "tampering named"
mkdir -p moved/1 && cp models/digits/1/model.onnx moved/1/model.onnx
expect 1 "moved model" -- "$coffer" serve --tls-cert s.crt --tls-key s.key --model-key model_key \
  --model_base_path moved --port "$(port)" --rest_api_port 0 --host 127.0.0.1
has "invalid path" err "path binding named"

finish "serve cli"
