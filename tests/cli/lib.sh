# lib.sh — sourced by the CLI tests: a scratch folder removed at exit, the
# servers a test started stopped at exit, and small assertions that count.
#   expect STATUS DESCRIPTION -- command...   run it (bounded), check its exit status;
#                                             its stdout and stderr land in ./out and ./err
#   has PATTERN FILE DESCRIPTION              FILE contains PATTERN (grep)
#   ok / bad MESSAGE                          count a pass / a failure
#   port                                      a free TCP port on 127.0.0.1
#   pids+=($!) after starting a server        stop_all (also at exit) stops them: TERM, then wait
#   wait_log PATTERN FILE                     wait (15 s at most) until FILE contains PATTERN
#   finish NAME                               print "NAME: N passed, N failed"; exit status
set -euo pipefail
tmp=$(mktemp -d)
pid=
_cleanup() { if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; fi; rm -rf "$tmp"; }
pids=()
stop_all() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; pids=(); }
trap 'stop_all; _cleanup' EXIT
cd "$tmp"
export COFFER_SIM_PLATFORM_KEY=$tmp/sim-key.pem HOME=$tmp
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
expect() {
  local want=$1 what=$2
  shift 3
  set +e
  timeout 60 "$@" >out 2>err
  local got=$?
  set -e
  if [ "$got" -eq "$want" ]; then ok; else bad "$what: exit $got, want $want: $(tail -2 err)"; fi
}
has() { if grep -q -- "$1" "$2"; then ok; else bad "$3: '$1' not in $2: $(tail -2 "$2")"; fi; }
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
finish() {
  echo "$1: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
wait_log() {
  for _ in $(seq 150); do grep -q "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done
  bad "timed out waiting for '$1' in $2: $(tail -2 "$2")"
  return 1
}

# flip_byte FILE OFFSET: inverts one byte in place (a constant write would be
# no change when the byte already had that value, 1 time in 256)
flip_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
