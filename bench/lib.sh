# bench/lib.sh — pieces the server benchmarks share (sourced by
# net_bench.sh, serve_bench.sh, serve_overhead.sh and serve_rollover.sh): a
# P-256 certificate for 127.0.0.1, the nginx peer answering a fixed JSON body
# over TLS, and the load generators' readings; the coffer build and models of the inference benchmarks. Callers
# set `tmp` (a scratch folder, mode 755) before the functions that use it.

# bench_coffer_models MODEL NAME: build coffer in build/bench (Release) and,
# when build/nn-bench-models lacks MODEL's files, export the peer models
# there (../shared/bench/export_models.py). Sets coffer and models (absolute
# paths). Run from the repository root; NAME names the build log.
bench_coffer_models() {
  local model=$1 log=${TMPDIR:-/tmp}/$2_build.log
  local shared=${COFFER_SHARED_DIR:-$(cd .. && pwd)/shared}
  [ -f "$shared/bench/export_models.py" ] || shared=/work/shared
  cmake -S . -B build/bench -G Ninja -DCOFFER_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/bench --target coffer >"$log" || { cat "$log" >&2; exit 1; }
  coffer=$PWD/build/bench/src/cli/coffer
  models=$PWD/build/nn-bench-models
  if [ ! -f "$models/${model}_dyn.onnx" ] || [ ! -f "$models/${model}_in.f32" ]; then
    mkdir -p "$models"
    /usr/bin/python3 "$shared/bench/export_models.py" "$models" >/dev/null
  fi
}

# bench_scratch: tmp, a scratch folder (mode 755) removed at exit, and spid,
# the server the caller starts (stopped at exit when set).
bench_scratch() {
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  spid=""
  trap 'if [ -n "$spid" ]; then kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT
}

# A free TCP port on 127.0.0.1.
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# $tmp/cert.pem and $tmp/key.pem: a self-signed P-256 certificate for 127.0.0.1.
bench_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
  chmod 644 "$tmp/key.pem" "$tmp/cert.pem"
}

# bench_nginx WORKERS BODY: Debian's nginx (access_log off, HTTP/1.1 and h2
# over TLS with $tmp's certificate) answering `return 200 'BODY'` as
# application/json on a free port. Sets nport and npid (the caller kills it).
bench_nginx() {
  local workers=$1 body=$2
  nport=$(free_port)
  cat >"$tmp/nginx.conf" <<NGX
worker_processes $workers;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  # nginx closes a connection after 1000 requests by default; wrk reconnects
  # but h2load does not, so allow as many as the bench makes (both protocols)
  keepalive_requests 100000000;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  server {
    listen 127.0.0.1:$nport ssl http2;
    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    location / { default_type application/json; return 200 '$body'; }
  }
}
NGX
  nginx -c "$tmp/nginx.conf" -g 'daemon off;' &
  npid=$!
}

# proc_cpu PID...: user + system CPU seconds the processes have used so
# far, all their threads (/proc/PID/stat).
proc_cpu() {
  local p
  for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done |
    awk -v hz="$(getconf CLK_TCK)" '{s += $1} END {printf "%.4f\n", s / hz}'
}

# cpu_begin / cpu_end REQUESTS: with CPU_LOG=FILE and CPU_PIDS="PID...",
# the CPU a request took in a load run, in µs: the server's (CPU_PIDS, from
# /proc) and the load generator's (GNU time's user + system, written to
# $tmp/client_cpu by the runner), appended to FILE as "SERVER CLIENT".
cpu_begin() {
  # shellcheck disable=SC2086 # CPU_PIDS is a list
  [ -z "${CPU_LOG:-}" ] || cpu0=$(proc_cpu $CPU_PIDS)
}
cpu_end() {
  [ -n "${CPU_LOG:-}" ] || return 0
  local cpu1
  # shellcheck disable=SC2086 # CPU_PIDS is a list
  cpu1=$(proc_cpu $CPU_PIDS)
  awk -v a="$cpu0" -v b="$cpu1" -v n="$1" '{c = $1 + $2} END {if (n > 0) printf "%.1f %.1f\n", (b - a) * 1e6 / n, c * 1e6 / n}' \
    "$tmp/client_cpu" >>"$CPU_LOG"
}

# nginx_pids: nginx's master ($npid) and its workers, for CPU_PIDS.
nginx_pids() {
  # shellcheck disable=SC2046 # one PID a word
  echo "$npid" $(awk -v p="$npid" '$4 == p {print $1}' /proc/[0-9]*/stat 2>/dev/null || true)
}

# run_wrk URL [wrk options...]: requests per second of `wrk -t2 -c32 -d10s`;
# errors and non-2xx answers are reported on stderr, not hidden. With
# WRK_LATENCY=FILE, the 50 % and 99 % latencies (ms) are appended there;
# with CPU_LOG, the CPU a request took (cpu_end).
run_wrk() {
  local url=$1 o
  shift
  cpu_begin
  o=$(/usr/bin/time -f "%U %S" -o "$tmp/client_cpu" wrk -t2 -c32 -d10s --latency "$@" "$url")
  cpu_end "$(awk '/ requests in / {print $1}' <<<"$o")"
  if grep -qE 'Non-2xx|Socket errors' <<<"$o"; then
    echo "warning: $url: $(grep -E 'Non-2xx|Socket errors' <<<"$o" | tr '\n' ' ')" >&2
  fi
  if [ -n "${WRK_LATENCY:-}" ]; then
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
         $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)} END {printf "%.3f %.3f\n", p50, p99}' <<<"$o" >>"$WRK_LATENCY"
  fi
  awk '/^Requests\/sec/ {print $2}' <<<"$o"
}

# run_h2 URL [h2load options...]: succeeded requests per second of
# `h2load -t2 -D10` (failed or errored requests do not count). With
# H2_LATENCY=FILE, the 50 % and 99 % request times (ms) from h2load's
# per-request log are appended there; with CPU_LOG, the CPU a succeeded
# request took (cpu_end).
run_h2() {
  local url=$1 log="$tmp/h2load.log" o
  shift
  rm -f "$log"
  cpu_begin
  o=$(/usr/bin/time -f "%U %S" -o "$tmp/client_cpu" h2load -D10 -t2 --log-file="$log" "$@" "$url" 2>/dev/null)
  cpu_end "$(awk '/^requests:/ {print $8}' <<<"$o")"
  awk '/^finished in/ {gsub("s,","",$3); t=$3} /^requests:/ {ok=$8} END {printf "%.1f\n", ok / t}' <<<"$o"
  if [ -n "${H2_LATENCY:-}" ]; then
    sort -n -k3 "$log" | awk '{d[NR] = $3} END {printf "%.3f %.3f\n", d[int(NR * 0.5)] / 1000, d[int(NR * 0.99)] / 1000}' \
      >>"$H2_LATENCY"
  fi
}
