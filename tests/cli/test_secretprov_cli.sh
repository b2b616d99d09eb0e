#!/usr/bin/env bash
# `coffer secret-provider` and `coffer provision`, as the batch flow uses
# them: the key is released to a workload whose evidence matches, refused
# otherwise, and the provider stops cleanly. Loopback only, bounded.
# Usage: test_secretprov_cli.sh COFFER_BIN SHARED_DIR
set -euo pipefail
coffer=$1
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
cd "$tmp"
export COFFER_SIM_PLATFORM_KEY=$tmp/sim-key.pem HOME=$tmp
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
expect() {
  local want=$1 what=$2; shift 3
  set +e; timeout 20 "$@" >out 2>err; local got=$?; set -e
  if [ "$got" -eq "$want" ]; then ok; else bad "$what: exit $got, want $want: $(tail -2 err)"; fi
}
has() { grep -q -- "$1" "$2" && ok || bad "$3: '$1' not in $2: $(tail -2 "$2")"; }
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.crt \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 30 2>/dev/null
"$coffer" pf gen-key -w wrap_key 2>/dev/null
me=$(sha256sum "$coffer" | cut -d' ' -f1)

expect 2 "no policy at all" -- "$coffer" secret-provider --secret wrap_key --cert server.crt --key server.key
RA_TLS_MRENCLAVE=any expect 2 "Gramine's variables: all four" -- env RA_TLS_MRENCLAVE=any "$coffer" secret-provider \
  --secret wrap_key --cert server.crt --key server.key
has "must all be set" err "names Gramine's rule"

P=$(port)
timeout 60 "$coffer" secret-provider --secret wrap_key --cert server.crt --key server.key --listen "127.0.0.1:$P" \
  --simulation --measurement "$me" > provider.log 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "listening on port" provider.log && break; sleep 0.1; done
expect 0 "provision" -- "$coffer" provision --servers "localhost:$P" --ca server.crt --simulation -o got_key
cmp -s wrap_key got_key && ok || bad "the key differs"
[ "$(stat -c %a got_key)" = 600 ] && ok || bad "key file mode"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o.key -out other.crt -subj /CN=localhost -days 30 2>/dev/null
expect 1 "untrusted server" -- "$coffer" provision --servers "localhost:$P" --ca other.crt --simulation -o k2
[ ! -e k2 ] && ok || bad "a key was written from an untrusted server"
expect 1 "--set-key outside Gramine" -- "$coffer" provision --servers "localhost:$P" --ca server.crt --simulation --set-key default
has "/dev/attestation/keys/default" err "names the Gramine key file"
kill -TERM "$pid"; wait "$pid" || true; pid=
has "result=released kind=simulation measurement=$me" provider.log "one log line per release"
has "stopped (2 released" provider.log "clean stop with counts"

# a provider expecting another measurement refuses this workload
P=$(port)
timeout 60 "$coffer" secret-provider --secret wrap_key --cert server.crt --key server.key --listen "127.0.0.1:$P" \
  --simulation --measurement "$(printf other | sha256sum | cut -d' ' -f1)" > provider2.log 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "listening on port" provider2.log && break; sleep 0.1; done
expect 1 "wrong measurement" -- "$coffer" provision --servers "localhost:$P" --ca server.crt --simulation -o k3
[ ! -e k3 ] && ok || bad "a key was released to the wrong measurement"
kill -TERM "$pid"; wait "$pid" || true; pid=
has "result=refused" provider2.log "the refusal is logged"
has "not in the policy\|measurement" provider2.log "the refusal names the check"

echo "secret provider cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
