#!/usr/bin/env bash
# `coffer secret-provider` and `coffer provision`, as the batch flow uses
# them: the key is released to a workload whose evidence matches, refused
# otherwise, and the provider stops cleanly. Loopback only, bounded.
# Usage: test_secretprov_cli.sh COFFER_BIN SHARED_DIR
coffer=$1
. "$(dirname "$0")/lib.sh"
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

finish "secret provider cli"
