#!/usr/bin/env bash
# The batch flow (the PyTorch-in-Gramine demo's): a secret provider releases
# the wrap key over RA-TLS to `coffer run`, which decrypts the model and the
# inputs in memory, runs them, and writes encrypted results; the refusals a
# user must see. Loopback only, bounded, leaves nothing running.
# Usage: test_run_cli.sh COFFER_BIN SHARED_DIR
coffer=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
provider() { # MEASUREMENT -> starts a provider, sets P and pid
  P=$(port)
  timeout 120 "$coffer" secret-provider --secret wrap_key --cert s.crt --key s.key --listen "127.0.0.1:$P" \
    --simulation --measurement "$1" > provider.log 2>&1 &
  pid=$!
  for _ in $(seq 50); do grep -q "listening on port" provider.log && break; sleep 0.1; done
}

"$coffer" pf gen-key -w wrap_key 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout s.key -out s.crt \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 30 2>/dev/null
/usr/bin/python3 "$src/tools/digits_io.py" inputs plain_in 40 2>/dev/null
"$coffer" pf encrypt -w wrap_key -i "$src/models/digits/model.onnx" -o enc/model.onnx 2>/dev/null
"$coffer" pf encrypt -w wrap_key -i plain_in -o enc_in 2>/dev/null

provider "$(sha256sum "$coffer" | cut -d' ' -f1)"
expect 0 "coffer run" -- "$coffer" run --model enc/model.onnx --input enc_in --output enc_out \
  --secret-provider "localhost:$P" --ca s.crt --simulation
has "40 input(s) done" err "all inputs done"
# results are protected files bound to their own paths; nothing plaintext was written
expect 0 "decrypt results with -V" -- "$coffer" pf decrypt -V -w wrap_key -i enc_out -o dec_out
expect 0 "score" -- /usr/bin/python3 "$src/tools/digits_io.py" score dec_out labels.txt
has "accuracy: 40/40\|accuracy: 39/40" out "held-out accuracy as PyTorch's"
for f in enc_out/*; do head -c 8 "$f" | grep -q GRAFS_PF && ok || bad "$f is not a protected file"; done > /dev/null
[ "$(ls enc_out | wc -l)" = 40 ] && ok || bad "expected 40 results"

# refusals
cp enc/model.onnx moved.onnx
expect 1 "model bound to another path" -- "$coffer" run --model moved.onnx --input enc_in --output o2 --key wrap_key
has "invalid path" err "path binding named"
expect 0 "--no-path-check" -- "$coffer" run --model moved.onnx --input enc_in --output o3 --key wrap_key --no-path-check
cp enc/model.onnx enc/tampered.onnx
flip_byte enc/tampered.onnx $((4096 * 3 + 5))
expect 1 "tampered model" -- "$coffer" run --model enc/tampered.onnx --input enc_in --output o4 --key wrap_key --no-path-check
has "MAC mismatch" err "tampering named"
[ ! -e o4 ] || [ -z "$(ls o4)" ] && ok || bad "results written from a tampered model"
kill -TERM "$pid"; wait "$pid" || true; pid=
provider "$(printf 'another build' | sha256sum | cut -d' ' -f1)"
expect 1 "provider refuses this workload" -- "$coffer" run --model enc/model.onnx --input enc_in --output o5 \
  --secret-provider "localhost:$P" --ca s.crt --simulation
has "refused our evidence" err "the refusal is explained"
[ ! -e o5 ] && ok || bad "results written without a key"
kill -TERM "$pid"; wait "$pid" || true; pid=
has "result=refused" provider.log "the provider logged the refusal"

finish "run cli"
