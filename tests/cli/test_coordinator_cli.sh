#!/usr/bin/env bash
# The coordinator as a user runs it: `coffer coordinator --simulation` on
# loopback, then the client commands (status, manifest set/get/verify/log,
# secret set/get, certificate), every refusal a user must see, a restart
# that keeps the state, and a clean stop. Bounded in time; leaves nothing
# running. Usage: test_coordinator_cli.sh COFFER_BIN SHARED_DIR
coffer=$1
. "$(dirname "$0")/lib.sh"
ports() { local a b; a=$(port); b=$(port); while [ "$a" = "$b" ]; do b=$(port); done; echo "$a $b"; }
runs=0
start() { # each run logs to its own file, $LOG
  runs=$((runs + 1)); LOG=coord-$runs.log
  read -r P1 P2 < <(ports)
  timeout 120 "$coffer" coordinator --simulation --client-addr "127.0.0.1:$P1" --mesh-addr "127.0.0.1:$P2" \
    --seal-dir seal --threads 1 >"$LOG" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "client API on port" "$LOG" 2>/dev/null && break; sleep 0.1; done
  A=127.0.0.1:$P1
  M=127.0.0.1:$P2
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=; }

# a coordinator without a TEE and without --simulation refuses to start
expect 1 "no TEE, no --simulation" -- "$coffer" coordinator --client-addr 127.0.0.1:0 --mesh-addr 127.0.0.1:0 --seal-dir s0
has "will not run without hardware protection" err "refusal names the reason"

start
has "sim-warn SIMULATION MODE" "$LOG" "simulation said in the log level"
expect 0 "status" -- "$coffer" status --simulation "$A"
has "2: Coordinator is ready to accept a manifest. (SIMULATION" out "status text"
expect 1 "status without --simulation refuses simulation evidence" -- "$coffer" status "$A"
has "no trusted platform key" err "the refusal names the step"
expect 0 "status --insecure" -- "$coffer" status --insecure "$A"
has "NOT verified" err "--insecure says so"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout admin.key -out admin.crt -subj /CN=admin -days 30 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -out other.crt -subj /CN=other -days 30 2>/dev/null
cert=$(awk 'NF {sub(/\r/, ""); printf "%s\\n",$0;}' admin.crt)
ocert=$(awk 'NF {sub(/\r/, ""); printf "%s\\n",$0;}' other.crt)
cat > manifest.json <<JSON
{"Packages": {"server": {"TEE": "Simulation", "UniqueID": "$(sha256sum "$coffer" | cut -d' ' -f1)"},
              "other": {"TEE": "Simulation", "UniqueID": "$(printf 'another build' | sha256sum | cut -d' ' -f1)"},
              "sgx": {"SignerID": "$(printf signer | sha256sum | cut -d' ' -f1)", "ProductID": 1, "SecurityVersion": 1}},
 "Marbles": {"tf-server": {"Package": "server", "MaxActivations": 2,
               "Parameters": {"Files": {"/keys/model": "{{ raw .Secrets.pfKey }}"}, "Env": {"KEY_HEX": "{{ hex .Secrets.pfKey }}"},
                              "Argv": ["sh", "-c", "echo argv-from-manifest"]}},
             "impostor": {"Package": "other"}},
 "Secrets": {"pfKey": {"Type": "symmetric-key", "Size": 128, "UserDefined": true}},
 "Users": {"admin": {"Certificate": "$cert", "Roles": ["secret-manager", "updater", "svn"]},
           "other": {"Certificate": "$ocert", "Roles": ["reader", "updater"]}},
 "Roles": {"secret-manager": {"ResourceType": "Secrets", "ResourceNames": ["pfKey"], "Actions": ["WriteSecret", "ReadSecret"]},
           "reader": {"ResourceType": "Secrets", "ResourceNames": ["pfKey"], "Actions": ["ReadSecret"]},
           "updater": {"ResourceType": "Manifest", "Actions": ["UpdateManifest"]},
           "svn": {"ResourceType": "Packages", "ResourceNames": ["sgx"], "Actions": ["UpdateSecurityVersion"]}}}
JSON
echo '{"Packages": {"x": {}}, "Marbles": {"m": {"Package": "x"}}}' > bad.json
expect 1 "invalid manifest" -- "$coffer" manifest set bad.json "$A" --simulation
has '$.Packages.x' err "invalid manifest names the field"
expect 0 "manifest set" -- "$coffer" manifest set manifest.json "$A" --simulation
expect 1 "manifest set twice" -- "$coffer" manifest set manifest.json "$A" --simulation
has "409" err "second manifest refused by state"
expect 0 "manifest verify" -- "$coffer" manifest verify manifest.json "$A" --simulation
expect 1 "manifest verify other" -- "$coffer" manifest verify bad.json "$A" --simulation
expect 0 "manifest get" -- "$coffer" manifest get -o got.json "$A" --simulation
cmp -s manifest.json got.json && ok || bad "manifest get differs"

"$coffer" pf gen-key -w model_key 2>/dev/null
expect 2 "secret set without a user cert" -- "$coffer" secret set --raw pfKey=model_key "$A" --simulation
expect 1 "secret set by a reader" -- "$coffer" secret set --raw pfKey=model_key "$A" --simulation --cert other.crt --key other.key
has "403" err "reader refused with 403"
expect 0 "secret set" -- "$coffer" secret set --raw pfKey=model_key "$A" --simulation --cert admin.crt --key admin.key
expect 0 "secret get" -- "$coffer" secret get pfKey "$A" --simulation --cert other.crt --key other.key
has "\"Private\":\"$(base64 -w0 model_key)\"" out "secret round trip"
echo '{"pfKey": {"Key": "AAEC"}}' > short.json
expect 1 "secret of the wrong size" -- "$coffer" secret set short.json "$A" --simulation --cert admin.crt --key admin.key
has "pfKey.Key" err "wrong size names the field"
# marbles: activation gives the key file, the env and the argv; refusals
expect 0 "activate" -- "$coffer" activate --type tf-server --coordinator "$M" --simulation --root files \
  --cert-out marble.crt --key-out marble.key -- sh -c 'cmp -s files/keys/model model_key && echo "key=$KEY_HEX"'
has "key=$(od -An -tx1 model_key | tr -d ' \n')" out "the workload got the key file and the env"
[ "$(stat -c %a files/keys/model)" = 600 ] && ok || bad "key file mode"
[ "$(stat -c %a marble.key)" = 600 ] && ok || bad "marble key mode"
expect 0 "activate runs the manifest's argv" -- "$coffer" activate --type tf-server --coordinator "$M" --simulation --root files2
has "argv-from-manifest" out "argv from the manifest"
expect 1 "MaxActivations" -- "$coffer" activate --type tf-server --coordinator "$M" --simulation --root files3
has "MaxActivations" err "MaxActivations named"
expect 1 "measurement not in the manifest" -- "$coffer" activate --type impostor --coordinator "$M" --simulation --root files4
has "403" err "impostor refused"
[ ! -e files4 ] && ok || bad "an impostor got files"
expect 1 "unknown marble type" -- "$coffer" activate --type nosuch --coordinator "$M" --simulation --root files5
expect 1 "coordinator not trusted" -- "$coffer" activate --type tf-server --coordinator "$M" --root files6
has "no trusted platform key" err "marble refuses an unverified coordinator"
expect 0 "certificate intermediate" -- "$coffer" certificate intermediate -o tf.crt "$A" --simulation
openssl verify -partial_chain -CAfile tf.crt marble.crt > verify.txt 2>&1 && ok || bad "marble cert does not chain to the intermediate: $(cat verify.txt)"
openssl x509 -in tf.crt -noout -subject | grep -q "Intermediate CA" && ok || bad "intermediate subject"
expect 0 "certificate root" -- "$coffer" certificate root -o root.crt "$A" --simulation
expect 0 "manifest log" -- "$coffer" manifest log "$A" --simulation
has '"event":"secret set"' out "audit log lists the secret set"
grep -q "$(base64 -w0 model_key)" out && bad "the audit log holds the secret" || ok
curl -sk "https://$A/metrics" > metrics.txt && has "coffer_http_requests_total" metrics.txt "metrics served"
has 'method=POST path="/api/v2/secrets" status=200' "$LOG" "one log line per request"
# MarbleRun's v1 paths and the gated endpoints over the real transport
curl -sk "https://$A/status" > v1.json && has '"StatusCode":3' v1.json "v1 status"
curl -sk --cert admin.crt --key admin.key "https://$A/secrets?s=pfKey" > v1.json &&
  has "\"pfKey\":{.*\"Private\":\"$(base64 -w0 model_key)\"" v1.json "v1 secrets: the map itself"
[ "$(curl -sk -o v1.json -w '%{http_code}' -X POST --data-binary x "https://$A/recover")" = 410 ] && ok || bad "v1 recover is gone"
[ "$(curl -sk -o v1.json -w '%{http_code}' --data '{"name": "n", "value": 1}' "https://$A/api/v2/monotonic-counter")" = 403 ] &&
  has "MonotonicCounter feature is not enabled" v1.json "monotonic counters need their feature gate" || bad "monotonic-counter without the gate"

# a restart keeps everything; the root certificate stays the same
stop
start
expect 0 "status after restart" -- "$coffer" status --simulation "$A"
has "3: Coordinator is running" out "state kept"
expect 0 "root after restart" -- "$coffer" certificate root -o root2.crt "$A" --simulation
cmp -s root.crt root2.crt && ok || bad "root changed across a restart"
expect 0 "secret after restart" -- "$coffer" secret get pfKey "$A" --simulation --cert admin.crt --key admin.key
has "$(base64 -w0 model_key)" out "secret kept"
stop
has "coordinator: stopped" "$LOG" "graceful stop"

start
# coffer check: up and ready; nothing there: gives up after --timeout
expect 0 "check" -- "$coffer" check --simulation "$A"
has "3: Coordinator is running" out "check prints the state"
expect 1 "check, nothing listening" -- "$coffer" check --simulation --timeout 1 "127.0.0.1:$(port)"
has "did not come up within 1 s" err "check names the timeout"

# manifest updates: an SVN bump at once; a full update waits for the other updater
echo '{"Packages": {"sgx": {"SecurityVersion": 2}}}' > svn.json
expect 2 "update without a user cert" -- "$coffer" manifest update apply svn.json "$A" --simulation
expect 1 "update by a user without the role" -- "$coffer" manifest update apply svn.json "$A" --simulation --cert other.crt --key other.key
has "403" err "SVN bump refused without UpdateSecurityVersion"
expect 0 "package update" -- "$coffer" manifest update apply svn.json "$A" --simulation --cert admin.crt --key admin.key
echo '{"Packages": {"sgx": {"SecurityVersion": 1}}}' > down.json
expect 1 "downgrade" -- "$coffer" manifest update apply down.json "$A" --simulation --cert admin.crt --key admin.key
has "no downgrades" err "downgrade refused"
sed 's/"MaxActivations": 2/"MaxActivations": 4/' manifest.json > manifest2.json
expect 1 "update get, none pending" -- "$coffer" manifest update get "$A" --simulation
expect 0 "full update" -- "$coffer" manifest update apply manifest2.json "$A" --simulation --cert admin.crt --key admin.key
has "1 more acknowledgement(s) needed from: other" err "missing users named"
expect 0 "update get --missing" -- "$coffer" manifest update get --missing "$A" --simulation
has "^other$" out "missing user listed"
expect 0 "update get" -- "$coffer" manifest update get -o pending.json "$A" --simulation
cmp -s pending.json manifest2.json && ok || bad "pending manifest differs"
expect 1 "still at MaxActivations before the update is applied" -- "$coffer" activate --type tf-server --coordinator "$M" --simulation --root files7
expect 1 "acknowledge another file" -- "$coffer" manifest update acknowledge manifest.json "$A" --simulation --cert other.crt --key other.key
has "not the pending update" err "wrong bytes refused"
expect 0 "acknowledge" -- "$coffer" manifest update acknowledge manifest2.json "$A" --simulation --cert other.crt --key other.key
has "applied" err "update applied at the last acknowledgement"
expect 0 "manifest verify the update" -- "$coffer" manifest verify manifest2.json "$A" --simulation
expect 0 "activate after the update sees the new manifest" -- "$coffer" activate --type tf-server --coordinator "$M" --simulation --root files8 -- true
expect 0 "update apply then cancel" -- "$coffer" manifest update apply manifest.json "$A" --simulation --cert admin.crt --key admin.key
expect 0 "cancel" -- "$coffer" manifest update cancel "$A" --simulation --cert other.crt --key other.key
expect 0 "manifest log" -- "$coffer" manifest log "$A" --simulation
for e in "security version increased" "update initiated" "update acknowledged" "update applied" "update cancelled"; do
  has "\"event\":\"$e\"" out "audit log has $e"
done
stop

# recovery: a manifest with a recovery key; the platform key changes (another
# machine); the coordinator comes up in recovery mode; the key holder recovers
openssl genrsa -out rk.pem 2048 2>/dev/null
rkpub=$(openssl rsa -in rk.pem -pubout 2>/dev/null | awk 'NF {printf "%s\\\\n",$0;}')
sed "s|^{\"Packages\"|{\"RecoveryKeys\": {\"owner\": \"$rkpub\"}, \"Packages\"|" manifest.json > manifest-rk.json
rm -rf seal
start
expect 0 "manifest set with a recovery key" -- "$coffer" manifest set manifest-rk.json "$A" --simulation -r recovery.json
has '"owner"' recovery.json "recovery data saved"
[ "$(stat -c %a recovery.json)" = 600 ] && ok || bad "recovery data mode"
expect 0 "secret set before the move" -- "$coffer" secret set --raw pfKey=model_key "$A" --simulation --cert admin.crt --key admin.key
stop
export COFFER_SIM_PLATFORM_KEY=$tmp/other-platform-key.pem
start
expect 0 "status on the new platform" -- "$coffer" status --simulation "$A"
has "1: Coordinator is in recovery mode" out "recovery mode in status"
expect 1 "check says recovery" -- "$coffer" check --simulation "$A"
openssl genrsa -out wrong.pem 2048 2>/dev/null
expect 1 "recover with another key" -- "$coffer" recover recovery.json "$A" --simulation --key wrong.pem
has "no recovery secret encrypted to this key" err "wrong key named"
expect 0 "recover" -- "$coffer" recover recovery.json "$A" --simulation --key rk.pem
has "Recovered" err "recovered"
has "encrypted to the coordinator's ephemeral key" err "recovery secret sent encrypted to the ephemeral key"
expect 0 "status after recovery" -- "$coffer" status --simulation "$A"
has "3: Coordinator is running" out "state back"
expect 0 "secret after recovery" -- "$coffer" secret get pfKey "$A" --simulation --cert admin.crt --key admin.key
has "$(base64 -w0 model_key)" out "secret recovered"
stop
start
expect 0 "status after a restart on the new platform" -- "$coffer" status --simulation "$A"
has "3: Coordinator is running" out "the key is sealed to the new platform"
stop

finish "coordinator cli"
