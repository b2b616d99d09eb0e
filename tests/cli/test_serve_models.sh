#!/usr/bin/env bash
# `coffer serve` with several models from a --model_config_file (version
# policies, labels), client-certificate authentication on both ports, a new
# version dropped into a base path and served without a restart, and
# batching with its bounded queue. A TF Serving gRPC client generated at test
# time from the shared protos (tests/serve/grpc_client.py) checks Predict,
# GetModelMetadata, GetModelStatus and every error path; curl checks REST.
# Loopback only, bounded, leaves nothing running.
# Usage: test_serve_models.sh COFFER_BIN SHARED_DIR
coffer=$1
shared=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
if ! command -v grpc_python_plugin >/dev/null || ! /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null; then
  echo "FAIL: needs grpc_python_plugin (protobuf-compiler-grpc), python3-grpcio and python3-protobuf (tools/packages.txt)" >&2
  exit 1
fi

# a CA, the server's certificate from it (localhost), a client's, and a stranger's
sub() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
        openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 1 $3 2>/dev/null; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -subj /CN=ca -days 1 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
sub server localhost "-extfile san.ext"
sub client client ""
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout stranger.key -out stranger.crt -subj /CN=s -days 1 2>/dev/null

"$coffer" pf gen-key -w model_key 2>/dev/null
for v in 1 2 3; do "$coffer" pf encrypt -w model_key -i "$src/models/digits/model.onnx" -o "models/digits/$v/model.onnx" 2>/dev/null; done
"$coffer" pf encrypt -w model_key -i "$src/models/digits/model.onnx" -o models/other/7/model.onnx 2>/dev/null
# TF Serving warm-up files (made by the test's TF client), protected like the models
client_py() { /usr/bin/python3 "$src/tests/serve/grpc_client.py" "$shared/proto/tfserving" . localhost:1 ca.crt client.crt \
                client.key "$1"; }
for kind in good badinput classify; do client_py "warmupfile:warm_$kind:$kind"; done
"$coffer" pf encrypt -w model_key -i warm_good -o models/other/7/assets.extra/tf_serving_warmup_requests 2>/dev/null
cat > models.config <<'CFG'
# two models: digits serves versions 1 and 2 (3 is on disk, not in the policy), other its latest
model_config_list {
  config {
    name: "digits" base_path: "models/digits" model_platform: "onnx"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
  config { name: "other" base_path: "models/other" }
}
CFG

# a typo in the config fails at once, naming line and column
printf 'model_config_list { config { nmae: "x" } }\n' > typo.config
expect 2 "no model source" -- "$coffer" serve --tls-cert server.crt --tls-key server.key --model-key model_key
expect 1 "config typo" -- "$coffer" serve --model_config_file typo.config --tls-cert server.crt --tls-key server.key \
  --model-key model_key --port "$(port)" --rest_api_port 0 --host 127.0.0.1
has "line 1 column 30" err "config error names line and column"

G=$(port); R=$(port)
timeout 200 "$coffer" serve --model_config_file models.config --tls-cert server.crt --tls-key server.key \
  --model-key model_key --ssl_client_ca ca.crt --file_system_poll_wait_seconds 1 --port "$G" --rest_api_port "$R" \
  --host 127.0.0.1 --threads 2 --max_num_load_retries 1 --load_retry_interval_micros 0 > serve.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" serve.log
has "2 models" serve.log "both models served"
has "model other version 7 warmed up with 2 requests" serve.log "warm-up file replayed before serving"
if grep -q "model digits version 1 warmed up" serve.log; then bad "warm-up without a file"; else ok; fi

client() { timeout 150 /usr/bin/python3 "$src/tests/serve/grpc_client.py" "$shared/proto/tfserving" . "localhost:$1" \
             ca.crt client.crt client.key "$2"; }
if client "$G" models > grpc.out 2>&1; then ok; else bad "gRPC client: $(grep -v '^grpc_client: [0-9]' grpc.out | head -5)"; fi
has "grpc_client: [0-9]* passed, 0 failed" grpc.out "every gRPC check"
has 'path="/tensorflow.serving.PredictionService/Predict" status=200 grpc_status=5 ' serve.log "access log: grpc-status of a NOT_FOUND"
has 'path="/tensorflow.serving.PredictionService/Predict" status=200 grpc_status=0 ' serve.log "access log: grpc-status OK"

# REST with the client certificate
C=(curl -s --cacert ca.crt --cert client.crt --key client.key -o body -w '%{http_code}')
U="https://localhost:$R"
python3 -c 'import json; print(json.dumps({"instances": [[[[0.5]*8]*8]]*2}))' > row.json
[ "$("${C[@]}" "$U/v1/models/digits")" = 200 ] && has '"version": "2"' body "REST status" || bad "REST status"
[ "$("${C[@]}" "$U/v1/models/digits/labels/stable/metadata")" = 200 ] && has '"version": "1"' body "REST metadata by label" || bad "REST metadata"
[ "$("${C[@]}" -d @row.json "$U/v1/models/digits:predict")" = 200 ] && has '"predictions"' body "REST predict" || bad "REST predict"
[ "$("${C[@]}" -d @row.json "$U/v1/models/other/versions/7:predict")" = 200 ] && cp body other_plain.json ||
  bad "REST predict on the second model"
[ "$("${C[@]}" -d '{"instances": [1, 2' "$U/v1/models/digits:predict")" = 400 ] && has "JSON Parse error" body "malformed JSON named" || bad "malformed JSON: 400"
[ "$("${C[@]}" -d '{"inputs": {"nope": 1}}' "$U/v1/models/digits:predict")" = 400 ] || bad "wrong input name over REST: 400"
[ "$("${C[@]}" -d @row.json "$U/v1/models/nosuch:predict")" = 404 ] || bad "unknown model over REST: 404"
[ "$("${C[@]}" -d @row.json "$U/v1/models/digits/labels/beta:predict")" = 400 ] || bad "unknown label over REST: 400"
[ "$("${C[@]}" -d '{"examples": [{"image": [0.5]}]}' "$U/v1/models/digits:classify")" = 501 ] &&
  has "has no tensorflow/serving/classify signature" body "classify on a model without one: 501" || bad "classify: 501"
# a CORS preflight is answered as TF answers it; without --rest_api_enable_cors_support, with no
# Access-Control headers (the browser then keeps its page from calling)
[ "$("${C[@]}" -D hdr -X OPTIONS -H 'Origin: https://app.example' "$U/v1/models/digits:predict")" = 200 ] ||
  bad "a CORS preflight: 200"
if grep -qi "^access-control" hdr; then bad "CORS headers without --rest_api_enable_cors_support"; else ok; fi
# a 6 MB body (20000 instances), over the usual 4 MiB caps, is answered
python3 -c 'import json; print(json.dumps({"instances": [[[[0.5]*8]*8]]*20000}))' > big.json
[ "$(stat -c %s big.json)" -gt 5000000 ] || bad "big.json is not big"
[ "$("${C[@]}" -d @big.json "$U/v1/models/digits:predict")" = 200 ] && has '"predictions"' body "6 MB REST predict" \
  || bad "6 MB REST predict: $(head -c 200 body)"
if curl -s --cacert ca.crt "$U/healthz" -o /dev/null; then bad "REST without a client certificate answered"; else ok; fi
if curl -s --cacert ca.crt --cert stranger.crt --key stranger.key "$U/healthz" -o /dev/null; then bad "a certificate from another CA was accepted"; else ok; fi

# Classify, Regress and MultiInference on a model that declares them in its metadata_props
# (tests/serve/example_model.py), batched (the examples of concurrent requests share runs)
/usr/bin/python3 "$src/tests/serve/example_model.py" exm
"$coffer" pf encrypt -w model_key -i exm/tiny/1/model.onnx -o models/tiny/1/model.onnx 2>/dev/null
client_py "warmupfile:warm_examples:examples"
"$coffer" pf encrypt -w model_key -i warm_examples -o models/tiny/1/assets.extra/tf_serving_warmup_requests 2>/dev/null
printf 'max_batch_size { value: 16 }\nbatch_timeout_micros { value: 500 }\n' > tiny_batch.cfg
GT=$(port); RT=$(port)
timeout 100 "$coffer" serve --model_name tiny --model_base_path models/tiny --tls-cert server.crt \
  --tls-key server.key --model-key model_key --ssl_client_ca ca.crt --port "$GT" --rest_api_port "$RT" \
  --host 127.0.0.1 --threads 2 --enable_batching --batching_parameters_file tiny_batch.cfg > tiny.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" tiny.log
has "model tiny version 1 warmed up with 4 requests" tiny.log "classify, regress, multi-inference and predict-on-classification warm-up logs replayed"
if client "$GT" examples > examples.out 2>&1; then ok; else bad "tf.Example APIs: $(grep -v '^grpc_client: [0-9]' examples.out | head -5)"; fi
UT="https://localhost:$RT"
[ "$("${C[@]}" -d '{"examples": [{"x": [1.0, 2.0, 3.0], "k": 1}, {"x": [0, 0, 1], "k": [5]}]}' "$UT/v1/models/tiny:classify")" = 200 ] &&
  has '\[\["cat", 0.268941432\], \["dog", 0.731058598\]\]' body "REST classify" || bad "REST classify: $(head -c 300 body)"
[ "$("${C[@]}" -d '{"context": {"k": 10}, "examples": [{"x": [1, 2, 3]}, {"x": [1.5, 1, 1], "k": -4}]}' "$UT/v1/models/tiny:regress")" = 200 ] &&
  tr -d ' \n' < body | grep -q '"results":\[24.0,2.5\]' && ok || bad "REST regress with a context: $(head -c 300 body)"
[ "$("${C[@]}" -d '{"examples": [{"x": [1, 2], "k": 1}]}' "$UT/v1/models/tiny:classify")" = 400 ] &&
  has "Feature: x of example 0 has 2 values" body "REST classify: a short feature named" || bad "REST classify: short feature"
[ "$("${C[@]}" -d '{"examples": [{"x": [1, "a", 3], "k": 1}]}' "$UT/v1/models/tiny:regress")" = 400 ] &&
  has "mixes value types" body "REST regress: mixed types named" || bad "REST regress: mixed types"
[ "$("${C[@]}" -d '{"signature_name": "classification", "examples": [{"x": [1, 2, 3], "k": 1}]}' "$UT/v1/models/tiny:regress")" = 400 ] &&
  has "Expected regression signature method_name" body "REST regress on the classification signature" || bad "REST regress: wrong signature"
# :predict on the classify and regress signatures: {"b64": serialized tf.Example} instances, as TF runs them
mapfile -t ser < <(client_py "b64examples:1,2,3/1;0,0,1/5")
[ "$("${C[@]}" -d "{\"signature_name\": \"classification\", \"instances\": [{\"b64\": \"${ser[0]}\"}, {\"b64\": \"${ser[1]}\"}]}" "$UT/v1/models/tiny:predict")" = 200 ] &&
  tr -d ' \n' < body | grep -q '"predictions":\[{"classes":\["cat","dog"\],"scores":\[0.268941432,0.731058598\]},{"classes":\["cat","dog"\],' &&
  ok || bad "REST predict on classification: $(head -c 300 body)"
[ "$("${C[@]}" -d "{\"signature_name\": \"regression\", \"inputs\": [{\"b64\": \"${ser[0]}\"}, {\"b64\": \"${ser[1]}\"}]}" "$UT/v1/models/tiny:predict")" = 200 ] &&
  tr -d ' \n' < body | grep -q '"outputs":\[\[15.0\],\[8.0\]\]' && ok || bad "REST predict on regression, columnar: $(head -c 300 body)"
[ "$("${C[@]}" -d '{"signature_name": "regression", "instances": [{"b64": "//8="}]}' "$UT/v1/models/tiny:predict")" = 400 ] &&
  has "Could not parse example input 0" body "REST predict on regression: a malformed example named" || bad "REST predict: malformed example"
[ "$("${C[@]}" -d '{"signature_name": "classification", "instances": [1.0, 2.0]}' "$UT/v1/models/tiny:predict")" = 400 ] &&
  has "Type: Number is not of expected type: string" body "REST predict on classification: numbers refused" || bad "REST predict on classification: numbers"
[ "$("${C[@]}" "$UT/v1/models/tiny/metadata")" = 200 ] && has '"method_name": "tensorflow/serving/classify"' body \
  "REST metadata lists the classification signature" || bad "REST metadata of tiny"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
has 'path="/tensorflow.serving.PredictionService/MultiInference" status=200 grpc_status=0 ' tiny.log "access log: MultiInference"
# a declaration that does not fit the model fails the load, saying why
for b in badscores:"has no output nosuch" badlabels:"has 3 labels; output probs has 2 classes" badregress:"output probs must be float \[batch\] or"; do
  "$coffer" pf encrypt -w model_key -i "exm/${b%%:*}.onnx" -o "${b%%:*}/1/model.onnx" 2>/dev/null
  expect 1 "${b%%:*} fails the start" -- "$coffer" serve --model_base_path "${b%%:*}" --tls-cert server.crt \
    --tls-key server.key --model-key model_key --port "$(port)" --rest_api_port 0 --host 127.0.0.1
  has "${b#*:}" err "${b%%:*}: the bad declaration named"
done

# the caps are the operator's: TF Serving's --grpc_channel_arguments, and coffer's REST body cap
G2=$(port); R2=$(port)
timeout 100 "$coffer" serve --model_config_file models.config --tls-cert server.crt --tls-key server.key \
  --model-key model_key --ssl_client_ca ca.crt --port "$G2" --rest_api_port "$R2" --host 127.0.0.1 --threads 2 \
  --grpc_channel_arguments grpc.max_receive_message_length=1048576,grpc.keepalive_time_ms=1000 \
  --rest_api_max_body_bytes 1048576 --allow_reload_config > caps.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" caps.log
has "grpc.keepalive_time_ms is not used by coffer serve" caps.log "unused channel argument named"
if client "$G2" oversize > over.out 2>&1; then ok; else bad "gRPC message cap: $(head -5 over.out)"; fi
[ "$("${C[@]}" -d @big.json "https://localhost:$R2/v1/models/digits:predict")" = 413 ] || bad "REST body over the cap: 413"
# HandleReloadConfigRequest (allowed on this one), and the REST view of its result
if client "$G2" reload > reload.out 2>&1; then ok; else bad "config reload: $(grep -v '^grpc_client: [0-9]' reload.out | head -5)"; fi
has "config reload of 2 models asked by 127.0.0.1" caps.log "a reload is logged with its client"
wait_log "model other version 7 unloaded" caps.log
[ "$("${C[@]}" "https://localhost:$R2/v1/models/third")" = 200 ] || bad "REST status of a model added by a reload"
[ "$("${C[@]}" "https://localhost:$R2/v1/models/other")" = 404 ] || bad "REST status of a model a reload dropped: 404"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
expect 1 "reload without client certificates" -- "$coffer" serve --model_config_file models.config \
  --tls-cert server.crt --tls-key server.key --model-key model_key --allow_reload_config --port "$(port)" --rest_api_port 0
has "needs client certificates" err "why a reload needs client certificates"
expect 2 "bad channel argument" -- "$coffer" serve --model_config_file models.config --tls-cert server.crt \
  --tls-key server.key --model-key model_key --grpc_channel_arguments grpc.max_receive_message_length=0

# --model_config_file_poll_wait_seconds: a changed config file is served without a restart; one
# that does not parse is logged and changes nothing
cp models.config poll.config
G3=$(port); R3=$(port)
timeout 100 "$coffer" serve --model_config_file poll.config --model_config_file_poll_wait_seconds 1 \
  --tls-cert server.crt --tls-key server.key --model-key model_key --ssl_client_ca ca.crt --port "$G3" \
  --rest_api_port "$R3" --host 127.0.0.1 --threads 1 > poll.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" poll.log
printf 'model_config_list { config { nmae: "x" } }\n' > poll.new && mv poll.new poll.config
wait_log "poll.config changed but does not parse: .*line 1 column 30" poll.log
[ "$("${C[@]}" "https://localhost:$R3/v1/models/other")" = 200 ] || bad "a config file typo changes nothing"
printf 'model_config_list { config { name: "polled" base_path: "models/other" } }\n' > poll.new && mv poll.new poll.config
wait_log "config reloaded: 1 model" poll.log
[ "$("${C[@]}" "https://localhost:$R3/v1/models/polled")" = 200 ] || bad "a model the changed config file adds"
[ "$("${C[@]}" "https://localhost:$R3/v1/models/digits")" = 404 ] || bad "a model the changed config file drops: 404"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
expect 2 "config file poll without a config file" -- "$coffer" serve --model_base_path models/digits \
  --model_config_file_poll_wait_seconds 1 --tls-cert server.crt --tls-key server.key --model-key model_key
has "watches --model_config_file" err "why the config file poll needs a config file"

# coffer predict with a client certificate, and without one
/usr/bin/python3 "$src/tools/digits_io.py" inputs in 1 2>/dev/null
expect 0 "coffer predict with a client certificate" -- "$coffer" predict --url "localhost:$G" --crt ca.crt \
  --cert client.crt --key client.key --model digits -i in/img000.npy --top 1
expect 0 "coffer predict REST with a client certificate" -- "$coffer" predict --rest --url "localhost:$R" --crt ca.crt \
  --cert client.crt --key client.key --model digits -i in/img000.npy --top 1
expect 1 "coffer predict without a client certificate" -- "$coffer" predict --url "localhost:$G" --crt ca.crt \
  --model digits -i in/img000.npy

# a warm-up that fails fails the load, naming the record (as TF Serving); the flag turns warm-up off
for kind in badinput classify; do
  "$coffer" pf encrypt -w model_key -i "$src/models/digits/model.onnx" -o "warm$kind/1/model.onnx" 2>/dev/null
  "$coffer" pf encrypt -w model_key -i "warm_$kind" -o "warm$kind/1/assets.extra/tf_serving_warmup_requests" 2>/dev/null
  expect 1 "warm-up $kind fails the start" -- "$coffer" serve --model_base_path "warm$kind" --tls-cert server.crt \
    --tls-key server.key --model-key model_key --port "$(port)" --rest_api_port 0 --host 127.0.0.1
  case $kind in
    badinput) has "warm-up record 0: input size does not match signature" err "a bad warm-up request named" ;;
    classify) has "warm-up record 0: the model has no tensorflow/serving/classify signature" err "a classify warm-up on a predict-only model named" ;;
  esac
done
# a plain (unencrypted) warm-up file next to a protected model is refused: it must be the model owner's
"$coffer" pf encrypt -w model_key -i "$src/models/digits/model.onnx" -o warmplain/1/model.onnx 2>/dev/null
mkdir -p warmplain/1/assets.extra && cp warm_good warmplain/1/assets.extra/tf_serving_warmup_requests
expect 1 "a plain warm-up file" -- "$coffer" serve --model_base_path warmplain --tls-cert server.crt \
  --tls-key server.key --model-key model_key --port "$(port)" --rest_api_port 0 --host 127.0.0.1
has "warm-up file" err "the warm-up file named"

# a new version dropped into a base path is served without a restart; the old one is unloaded
"$coffer" pf encrypt -w model_key -i "$src/models/digits/model.onnx" -o models/other/8/model.onnx 2>/dev/null
if client "$G" wait:other:8 > wait.out 2>&1; then ok; else bad "version 8 not served: $(cat wait.out | head -3)"; fi
wait_log "model other version 7 unloaded" serve.log
[ "$("${C[@]}" "$U/v1/models/other")" = 200 ] && has '"state": "END"' body "the old version shows END" || bad "status after reload"
# a broken version is reported and the good one keeps serving
mkdir -p models/other/9 && head -c 100000 /dev/urandom > models/other/9/model.onnx
wait_log "model other version 9 failed to load" serve.log
# TF's load retries (--max_num_load_retries 1, no wait here): tried once more on the next scan, then not again
wait_log "model other version 9: load retry 1 of 1" serve.log
"${C[@]}" "$U/v1/models/other/versions/9" > /dev/null; has '"error_code": "' body "failed version has its error in the status"
[ "$("${C[@]}" -d @row.json "$U/v1/models/other:predict")" = 200 ] || bad "version 8 keeps serving next to a broken 9"
# a health Watch open at a graceful stop hears NOT_SERVING and ends UNAVAILABLE, and does not hold the stop
client "$G" watchstop:watching.flag > watchstop.out 2>&1 &
wpid=$!
for _ in $(seq 1200); do [ -s watching.flag ] && break; sleep 0.05; done
[ -s watching.flag ] && ok || bad "the Watch client did not start: $(head -3 watchstop.out)"
t0=$(date +%s)
stop_all
[ $(($(date +%s) - t0)) -lt 8 ] && ok || bad "an open Watch held the graceful stop"
if wait "$wpid"; then ok; else bad "Watch at the stop: $(grep -v '^grpc_client: [0-9]' watchstop.out | head -3)"; fi
has "serve: stopped" serve.log "graceful stop"
[ "$(grep -c "model other version 9 failed to load" serve.log)" = 2 ] && ok ||
  bad "version 9 tried $(grep -c "model other version 9 failed to load" serve.log) times, want 2 (a try and 1 retry)"
has 'path="/grpc.health.v1.Health/Watch" status=200 grpc_status=1 ' serve.log "access log: a cancelled Watch"
has 'path="/grpc.health.v1.Health/Watch" status=200 grpc_status=14 ' serve.log "access log: a Watch ended by the stop"
# at start-up a broken version is fatal (as in TF Serving), and named
expect 1 "start with a broken latest version" -- "$coffer" serve --model_config_file models.config \
  --tls-cert server.crt --tls-key server.key --model-key model_key --port "$(port)" --rest_api_port 0 --host 127.0.0.1
has "model other version 9" err "the broken version named"
rm -r models/other/9 models/other/8

# batching: the whole gRPC check list with batching on (a roomy queue; batches padded to 2, 4 or
# 16 items, each batch thread's one instance re-planned as the sizes change) ...
printf 'max_batch_size { value: 16 }\nnum_batch_threads { value: 2 }\nallowed_batch_sizes: [2, 4, 16]\n' > batch1.cfg
G=$(port); R=$(port)
timeout 200 "$coffer" serve --model_config_file models.config --tls-cert server.crt --tls-key server.key \
  --model-key model_key --ssl_client_ca ca.crt --enable_batching --batching_parameters_file batch1.cfg \
  --port "$G" --rest_api_port "$R" --host 127.0.0.1 --threads 2 > batch1.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" batch1.log
has "batching on" batch1.log "batching announced"
if BATCHING=1 client "$G" models > grpc2.out 2>&1; then ok; else bad "gRPC client with batching: $(grep FAILED grpc2.out | head -5)"; fi
stop_all
# with batching, warm-up makes and warms every batch thread's instances at load, each at the batch
# size it serves (records of 1 and 4 items; sizes 2 and 8 on 2 threads: 1->2, 1->8, 4->8 per thread)
printf 'max_batch_size { value: 8 }\nnum_batch_threads { value: 2 }\nallowed_batch_sizes: [2, 8]\n' > warmbatch.cfg
G=$(port); R=$(port)
timeout 100 "$coffer" serve --model_base_path models/other --model_name other --tls-cert server.crt \
  --tls-key server.key --model-key model_key --enable_batching --batching_parameters_file warmbatch.cfg \
  --port "$G" --rest_api_port "$R" --host 127.0.0.1 --threads 2 > warmbatch.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" warmbatch.log
has "model other version 7 warmed up with 2 requests in [0-9.]* ms (6 runs on 2 instances)" warmbatch.log \
  "batch threads' instances warmed at load"
UW="https://localhost:$R"
# the instance last ran at 8 (warm-up); this batch of 2 re-plans it and answers as the unbatched server did
[ "$(curl -s -o body -w '%{http_code}' --cacert ca.crt -d @row.json "$UW/v1/models/other:predict")" = 200 ] &&
  cmp -s body other_plain.json && ok || bad "a predict after the batched warm-up: $(head -c 300 body)"
stop_all
# --enable_per_model_batching_parameters: a version with VERSION/batching_params.pbtxt batches by
# it (max_batch_size 4, not the server file's 64; the thread count is the server file's), one
# without does not batch; and warm-up records run --num_request_iterations_for_warmup times each
printf 'max_batch_size { value: 64 }\nnum_batch_threads { value: 1 }\n' > server_batch.cfg
printf 'max_batch_size { value: 4 }\nbatch_timeout_micros { value: 100 }\n' > models/other/7/batching_params.pbtxt
G=$(port); R=$(port)
timeout 100 "$coffer" serve --model_config_file models.config --tls-cert server.crt --tls-key server.key \
  --model-key model_key --enable_batching --batching_parameters_file server_batch.cfg \
  --enable_per_model_batching_parameters --num_request_iterations_for_warmup 3 \
  --port "$G" --rest_api_port "$R" --host 127.0.0.1 --threads 2 > permodel.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" permodel.log
has "model other version 7 loaded in [0-9.]* ms (1 inputs, 1 outputs, 1 instance, batching (batching_params.pbtxt))" \
  permodel.log "a version batches with its own parameters"
has "models/digits/2/batching_params.pbtxt: no such file: this version does not batch" permodel.log \
  "a version without its own parameters does not batch"
has "model other version 7 warmed up with 2 requests in [0-9.]* ms (6 runs on 1 instance)" permodel.log \
  "each warm-up record run 3 times"
python3 -c 'import json; print(json.dumps({"instances": [[[[0.5]*8]*8]]*5}))' > five.json
UP="https://localhost:$R"
[ "$(curl -s -o body -w '%{http_code}' --cacert ca.crt -d @five.json "$UP/v1/models/other:predict")" = 400 ] &&
  has "Task size 5 is larger than maximum input batch size 4" body "the version's own max_batch_size" ||
  bad "5 items over the version's max_batch_size 4: 400"
[ "$(curl -s -o body -w '%{http_code}' --cacert ca.crt -d @five.json "$UP/v1/models/digits:predict")" = 200 ] ||
  bad "the unbatched model takes 5 items"
[ "$(curl -s -o body -w '%{http_code}' --cacert ca.crt -d @row.json "$UP/v1/models/other:predict")" = 200 ] ||
  bad "a predict within the version's batch size"
stop_all
rm models/other/7/batching_params.pbtxt
expect 2 "per-model batching without batching" -- "$coffer" serve --model_config_file models.config \
  --tls-cert server.crt --tls-key server.key --model-key model_key --enable_per_model_batching_parameters
has "needs --enable_batching" err "why per-model batching needs batching"
expect 2 "warm-up iterations out of range" -- "$coffer" serve --model_config_file models.config \
  --tls-cert server.crt --tls-key server.key --model-key model_key --num_request_iterations_for_warmup -1

# --rest_api_timeout_in_ms (TF's; 30 s by default): a REST predict that waits in the batch queue
# past it is answered 504 DEADLINE_EXCEEDED; gRPC has its own (grpc-timeout) and is not held to it.
# TF's thread and parallelism flags are taken too.
printf 'max_batch_size { value: 64 }\nbatch_timeout_micros { value: 600000 }\nnum_batch_threads { value: 1 }\n' > slow.cfg
G=$(port); R=$(port)
timeout 100 "$coffer" serve --model_base_path models/other --model_name other --tls-cert server.crt \
  --tls-key server.key --model-key model_key --enable_batching --batching_parameters_file slow.cfg \
  --rest_api_timeout_in_ms 100 --rest_api_num_threads 1 --grpc_max_threads 2 --tensorflow_intra_op_parallelism 1 \
  --tensorflow_inter_op_parallelism 4 --enable_model_warmup=false --rest_api_enable_cors_support \
  --port "$G" --rest_api_port "$R" --host 127.0.0.1 > slow.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" slow.log
has "gRPC on port [0-9]* (2 threads), REST on port [0-9]* (1 thread)" slow.log "TF's per-port thread flags"
has "tensorflow_inter_op_parallelism 4 has no effect" slow.log "inter-op parallelism said to do nothing"
[ "$(curl -s -o body -D hdr -w '%{http_code}' --cacert ca.crt -d @row.json "https://localhost:$R/v1/models/other:predict")" = 504 ] &&
  has "deadline exceeded" body "a REST predict past --rest_api_timeout_in_ms: 504" ||
  bad "a REST predict past --rest_api_timeout_in_ms: 504, got $(cat body)"
# --rest_api_enable_cors_support: TF's three headers on every REST answer (that deferred error
# too), a preflight answered with them, and one without an Origin refused
lc() { tr '[:upper:]' '[:lower:]' < hdr > h; } # header names: as sent over HTTP/1.1, lower case over HTTP/2
lc; has "^access-control-allow-origin: \*" h "CORS on a deferred error answer"
[ "$(curl -s -o body -D hdr -w '%{http_code}' --cacert ca.crt "https://localhost:$R/v1/models/other")" = 200 ] &&
  lc && has "^access-control-allow-origin: \*" h "CORS on a status answer" || bad "REST status with CORS"
[ "$(curl -s -o body -D hdr -w '%{http_code}' --cacert ca.crt -X OPTIONS -H 'Origin: http://localhost:3000' \
     -H 'Access-Control-Request-Method: POST' "https://localhost:$R/v1/models/other:predict")" = 200 ] &&
  lc && has "^access-control-allow-methods: post, get" h "a preflight's allowed methods" &&
  has "^access-control-allow-headers: content-type" h "a preflight's allowed headers" || bad "a CORS preflight: 200"
[ "$(curl -s -o body -w '%{http_code}' --cacert ca.crt -X OPTIONS "https://localhost:$R/v1/models/other:predict")" = 400 ] &&
  has "Origin header is missing in CORS preflight" body "a preflight without an Origin named" ||
  bad "a preflight without an Origin: 400"
expect 0 "gRPC is not held to the REST timeout" -- "$coffer" predict --url "localhost:$G" --crt ca.crt \
  --model other -i in/img000.npy --top 1
stop_all
expect 2 "CORS takes true or false" -- "$coffer" serve --model_config_file models.config \
  --tls-cert server.crt --tls-key server.key --model-key model_key --rest_api_enable_cors_support=maybe
expect 2 "two names for the model threads" -- "$coffer" serve --model_config_file models.config \
  --tls-cert server.crt --tls-key server.key --model-key model_key --model_threads 2 \
  --tensorflow_intra_op_parallelism 1
expect 0 "coffer serve --version" -- "$coffer" serve --version
has "^coffer [0-9]" out "the version printed"

# --aspired_version_policy resource_preserving: the old version unloads before the new one
# loads (the default loads first: serve.log above has version 8 AVAILABLE before 7 unloaded)
l8=$(grep -n "model other version 8 AVAILABLE" serve.log | head -1 | cut -d: -f1)
l7=$(grep -n "model other version 7 unloaded" serve.log | head -1 | cut -d: -f1)
[ -n "$l8" ] && [ -n "$l7" ] && [ "$l8" -lt "$l7" ] && ok || bad "availability-preserving order: 8 loaded at $l8, 7 unloaded at $l7"
mkdir -p rp && cp -r models/other/7 rp/
G=$(port); R=$(port)
timeout 100 "$coffer" serve --model_base_path rp --model_name rp --tls-cert server.crt --tls-key server.key \
  --model-key model_key --aspired_version_policy resource_preserving --file_system_poll_wait_seconds 1 \
  --no-path-check --port 0 --grpc_socket_path "$tmp/rp.sock" --rest_api_port "$R" --host 127.0.0.1 --threads 1 \
  > rp.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" rp.log
"$coffer" pf encrypt -w model_key -i "$src/models/digits/model.onnx" -o rp/8/model.onnx 2>/dev/null
wait_log "model rp version 8 AVAILABLE" rp.log
l8=$(grep -n "model rp version 8 AVAILABLE" rp.log | head -1 | cut -d: -f1)
l7=$(grep -n "model rp version 7 unloaded" rp.log | head -1 | cut -d: -f1)
[ -n "$l8" ] && [ -n "$l7" ] && [ "$l7" -lt "$l8" ] && ok || bad "resource-preserving order: 7 unloaded at $l7, 8 loaded at $l8"
[ "$(curl -s -o body -w '%{http_code}' --cacert ca.crt -d @row.json "https://localhost:$R/v1/models/rp:predict")" = 200 ] ||
  bad "the new version serves after a resource-preserving switch"
# that server's gRPC is on a UNIX socket only (TF's --grpc_socket_path with --port 0), over TLS as on a port
has "gRPC on UNIX socket $tmp/rp.sock" rp.log "the socket named at start-up"
[ -S "$tmp/rp.sock" ] && ok || bad "no socket at $tmp/rp.sock"
if timeout 60 /usr/bin/python3 "$src/tests/serve/grpc_client.py" "$shared/proto/tfserving" . "unix:$tmp/rp.sock" \
     ca.crt client.crt client.key wait:rp:8 > sock.out 2>&1; then ok; else bad "gRPC over the UNIX socket: $(head -3 sock.out)"; fi
has 'path="/tensorflow.serving.PredictionService/Predict" status=200 grpc_status=0 .*remote=unix' rp.log \
  "a socket call in the access log"
stop_all
[ ! -e "$tmp/rp.sock" ] && ok || bad "the socket file outlived the server"
: > notasocket
expect 1 "a file in the socket's place" -- "$coffer" serve --model_base_path rp --model_name rp --tls-cert server.crt \
  --tls-key server.key --model-key model_key --no-path-check --grpc_socket_path notasocket --rest_api_port 0 --port 0
has "notasocket exists and is not a socket" err "the file in the way named"
[ -f notasocket ] && ok || bad "the file in the socket's place was removed"
expect 2 "a negative load retry count" -- "$coffer" serve --model_base_path rp --tls-cert server.crt \
  --tls-key server.key --model-key model_key --max_num_load_retries -1
has "max_num_load_retries must be 0..1000" err "the retry count's range named"
expect 2 "--port 0 without a socket" -- "$coffer" serve --model_base_path rp --tls-cert server.crt \
  --tls-key server.key --model-key model_key --port 0
expect 2 "an unknown version policy" -- "$coffer" serve --model_config_file models.config \
  --tls-cert server.crt --tls-key server.key --model-key model_key --aspired_version_policy fastest
has "availability_preserving or resource_preserving" err "the version policies named"

# ... and a tight one: one batch thread, batches of 8 items, one batch may wait: a
# flood is partly refused, never queued without bound
printf 'max_batch_size { value: 8 }\nbatch_timeout_micros { value: 2000 }\nnum_batch_threads { value: 1 }\nmax_enqueued_batches { value: 1 }\n' > batching.cfg
G=$(port); R=$(port)
timeout 200 "$coffer" serve --model_config_file models.config --tls-cert server.crt --tls-key server.key \
  --model-key model_key --ssl_client_ca ca.crt --enable_batching --batching_parameters_file batching.cfg \
  --port "$G" --rest_api_port "$R" --host 127.0.0.1 --threads 2 > batch.log 2>&1 &
pids+=($!)
wait_log "gRPC on port" batch.log
if client "$G" flood:digits:300 > flood.out 2>&1; then ok; else bad "flood: $(cat flood.out | tail -3)"; fi
has "flood: ok=[1-9]" flood.out "some batched predicts answered"
has "refused=[1-9]" flood.out "overload refused with RESOURCE_EXHAUSTED"
U="https://localhost:$R"
curl -s --no-progress-meter --cacert ca.crt --cert client.crt --key client.key --parallel --parallel-immediate --parallel-max 100 \
  -w '%{http_code}\n' -d @row.json $(for _ in $(seq 300); do printf -- '-o /dev/null %s ' "$U/v1/models/digits:predict"; done) > codes.txt
grep -q '^200$' codes.txt && ok || bad "REST batched predicts answered: $(sort codes.txt | uniq -c)"
grep -q '^429$' codes.txt && ok || bad "REST overload answered 429: $(sort codes.txt | uniq -c)"
[ "$(grep -cv '^\(200\|429\)$' codes.txt)" = 0 ] || bad "REST flood: only 200 and 429 expected: $(sort codes.txt | uniq -c)"
"${C[@]}" "$U/monitoring/prometheus/metrics" > /dev/null
has 'coffer_serve_batch_size_bucket{model="digits",le="8"}' body "batch size histogram"
has 'coffer_serve_batch_queue_depth{model="digits"} 0' body "queue depth gauge, back at 0"
stop_all
has "serve: stopped" batch.log "graceful stop with batching"

finish "serve models"
