#!/usr/bin/env bash
# coffer-k8s.sh — the Kubernetes steps of the two demos' walkthroughs, for
# coffer: install, wait until ready, port-forward, upload data, uninstall.
# It wraps kubectl (and helm, with --helm); nothing here talks to a cluster
# by itself. docs/deploy.md walks through it.
#
#   coffer-k8s.sh [--dry-run] COMMAND [ARGS]        (namespace: coffer, as the manifests)
#
# Commands:
#   install [--overlay default|kata|simulation] [--helm] [--ca-cert F --ca-key F]
#           [--wrap-key F] [--run-policy F] [--sim-key F] [--set KEY=VALUE ...]
#       create the Secrets and ConfigMap the manifests use, then apply
#       deploy/kubernetes/overlays/OVERLAY (or helm install deploy/helm/coffer,
#       the serving flow only). --ca-cert/--ca-key: the CA that issues the
#       secret provider's certificate (cert-manager, Secret coffer-ca-key-pair);
#       --wrap-key: the batch flow's key (Secret coffer-wrap-key); --run-policy:
#       the attestation policy the provider checks (ConfigMap coffer-run-policy,
#       from deploy/gramine/sgx-package.py policy). Simulation: --sim-key, or a
#       fresh software platform key made with `coffer` and saved as
#       ./coffer-sim-platform-key.pem for your own client commands.
#   wait [--timeout 300s]     until the coordinator and the servers are ready
#   port-forward [client|mesh|grpc|rest|provider]...   (default: client)
#       forward the services to localhost (4433, 2001, 8500, 8501, 4433 for the
#       provider on 4434) until interrupted; prints the addresses to use
#   upload-model DIR          copy DIR (models/NAME/VERSION/model.onnx, encrypted)
#                             onto the coffer-models volume
#   upload-batch DIR          copy DIR (model.onnx, inputs/, encrypted) onto coffer-batch
#   fetch-results DIR         copy results/ (encrypted) from coffer-batch into DIR
#   uninstall [--helm] [--overlay O] [--purge]   remove it (--purge: the volumes
#                             and the namespace too: sealed coordinator state is lost)
#   render [--overlay O | --helm] [--set ...]    print the manifests (no cluster)
# --dry-run prints the kubectl/helm commands instead of running them.
# Environment: KUBECTL (default kubectl), HELM (helm), COFFER (coffer).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
KUBECTL=${KUBECTL:-kubectl}
HELM=${HELM:-helm}
COFFER=${COFFER:-coffer}
ns=coffer
dry=0

usage() { sed -n '/^# Commands:/,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "coffer-k8s: $*" >&2; exit 1; }
bad_usage() { echo "coffer-k8s: $*" >&2; exit 2; }
run() { # print, then run unless --dry-run
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if [ "$dry" -eq 0 ]; then "$@"; fi
}
k() { run "$KUBECTL" -n "$ns" "$@"; }
overlay_dir() {
  case "$1" in
    default|kata|simulation) echo "$here/kubernetes/overlays/$1" ;;
    *) bad_usage "unknown overlay '$1' (default, kata, simulation)" ;;
  esac
}
need_file() { [ -f "$2" ] || die "$1: no such file: $2"; }
# apply_generated KIND NAME ARGS...: create or replace a Secret/ConfigMap from files
apply_generated() {
  local kind=$1 name=$2
  shift 2
  if [ "$dry" -eq 1 ]; then
    k create "$kind" "$name" "$@" --dry-run=client -o yaml
  else
    printf '+ %s -n %s create %s %s ... | %s apply -f -\n' "$KUBECTL" "$ns" "$kind" "$name" "$KUBECTL"
    "$KUBECTL" -n "$ns" create "$kind" "$name" "$@" --dry-run=client -o yaml | "$KUBECTL" -n "$ns" apply -f -
  fi
}

cmd_install() {
  local overlay=default helm=0 ca_cert= ca_key= wrap= policy= simkey= sets=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --overlay) overlay=${2:?--overlay needs a value}; shift 2 ;;
      --helm) helm=1; shift ;;
      --ca-cert) ca_cert=${2:?}; shift 2 ;;
      --ca-key) ca_key=${2:?}; shift 2 ;;
      --wrap-key) wrap=${2:?}; shift 2 ;;
      --run-policy) policy=${2:?}; shift 2 ;;
      --sim-key) simkey=${2:?}; shift 2 ;;
      --set) sets+=(--set "${2:?}"); shift 2 ;;
      *) bad_usage "install: unknown argument '$1'" ;;
    esac
  done
  local dir
  dir=$(overlay_dir "$overlay")
  if [ -n "$ca_cert$ca_key" ]; then
    [ -n "$ca_cert" ] && [ -n "$ca_key" ] || bad_usage "install: --ca-cert and --ca-key go together"
  fi
  [ "$helm" -eq 0 ] || [ -z "$ca_cert$wrap$policy" ] || bad_usage "install --helm installs the serving flow only: no --ca-*, --wrap-key, --run-policy"
  [ "$helm" -eq 0 ] || [ "${#sets[@]}" -gt 0 ] || [ "$overlay" = default ] || [ "$overlay" = simulation ] \
    || bad_usage "install --helm: use --set runtimeClassName=... instead of --overlay kata"
  [ "$helm" -eq 1 ] || [ "${#sets[@]}" -eq 0 ] || bad_usage "install: --set is for --helm"
  for f in "$ca_cert" "$ca_key" "$wrap" "$policy" "$simkey"; do [ -z "$f" ] || need_file install "$f"; done
  run "$KUBECTL" create namespace "$ns" --dry-run=client -o yaml
  [ "$dry" -eq 1 ] || "$KUBECTL" create namespace "$ns" --dry-run=client -o yaml | "$KUBECTL" apply -f -
  [ -z "$ca_cert" ] || apply_generated secret tls coffer-ca-key-pair --cert="$ca_cert" --key="$ca_key"
  [ -z "$wrap" ] || apply_generated secret generic coffer-wrap-key --from-file=wrap_key="$wrap"
  [ -z "$policy" ] || apply_generated configmap coffer-run-policy --from-file=policy.json="$policy"
  local sim=0
  if [ "$overlay" = simulation ]; then sim=1; fi
  if [ "$sim" -eq 1 ]; then
    if [ -z "$simkey" ]; then
      simkey=$PWD/coffer-sim-platform-key.pem
      if [ ! -f "$simkey" ]; then
        run env COFFER_SIM_PLATFORM_KEY="$simkey" "$COFFER" attest evidence --provider simulation \
          --report-data 00 -o /dev/null
      fi
    fi
    apply_generated secret generic coffer-sim-platform-key --from-file=sim-platform-key.pem="$simkey"
    echo "coffer-k8s: SIMULATION: no SGX, no protection. For your client commands:" >&2
    echo "  export COFFER_SIM_PLATFORM_KEY=$simkey" >&2
  fi
  if [ "$helm" -eq 1 ]; then
    [ "$sim" -eq 0 ] || sets+=(--set simulation=true)
    run "$HELM" install coffer "$here/helm/coffer" -n "$ns" "${sets[@]}"
  else
    run "$KUBECTL" apply -k "$dir"
  fi
}

cmd_wait() {
  local timeout=300s
  while [ $# -gt 0 ]; do
    case "$1" in
      --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
      *) bad_usage "wait: unknown argument '$1'" ;;
    esac
  done
  k rollout status statefulset/coordinator --timeout="$timeout"
  k rollout status deployment/model-server --timeout="$timeout"
  k wait --for=condition=Ready pod -l app.kubernetes.io/name=coordinator --timeout="$timeout"
  k wait --for=condition=Ready pod -l app.kubernetes.io/name=model-server --timeout="$timeout"
  echo "coffer-k8s: ready. Verify the coordinator before trusting it: coffer status localhost:4433 (after port-forward)" >&2
}

cmd_port_forward() {
  local svcs=("$@")
  [ ${#svcs[@]} -gt 0 ] || svcs=(client)
  local pids=() s
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT INT TERM
  for s in "${svcs[@]}"; do
    case "$s" in
      client) set -- svc/coordinator-client-api 4433:4433; echo "export COFFER_COORDINATOR=localhost:4433" ;;
      mesh) set -- svc/coordinator-mesh-api 2001:2001 ;;
      grpc) set -- svc/model-server 8500:8500; echo "coffer predict --url localhost:8500 ..." ;;
      rest) set -- svc/model-server 8501:8501 ;;
      provider) set -- svc/secret-provider 4434:4433 ;;
      *) bad_usage "port-forward: unknown service '$s' (client, mesh, grpc, rest, provider)" ;;
    esac
    if [ "$dry" -eq 1 ]; then
      k port-forward "$@" --address localhost
    else
      k port-forward "$@" --address localhost >/dev/null &
      pids+=($!)
    fi
  done
  [ "$dry" -eq 1 ] || wait
}

# copy_via_pod CLAIM to|from LOCAL_DIR SUBDIR: a short-lived pod mounting the
# claim, kubectl cp, the pod deleted (the data is ciphertext throughout)
copy_via_pod() {
  local claim=$1 direction=$2 local_dir=$3 sub=$4 pod=coffer-copy-$1
  local spec
  spec=$(printf '{"apiVersion":"v1","spec":{"restartPolicy":"Never","containers":[{"name":"copy","image":"%s",%s' \
    "${COPY_IMAGE:-debian:12-slim}" '"command":["sleep","600"],"volumeMounts":[{"name":"d","mountPath":"/data"}]}],')
  spec+=$(printf '"volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"%s"}}]}}' "$claim")
  k run "$pod" --image="${COPY_IMAGE:-debian:12-slim}" --restart=Never --overrides="$spec"
  k wait --for=condition=Ready "pod/$pod" --timeout=120s
  if [ "$direction" = to ]; then
    k cp "$local_dir/." "$pod:/data/$sub"
  else
    k cp "$pod:/data/$sub" "$local_dir"
  fi
  k delete pod "$pod" --wait=false
}

cmd_uninstall() {
  local overlay=default helm=0 purge=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --overlay) overlay=${2:?--overlay needs a value}; shift 2 ;;
      --helm) helm=1; shift ;;
      --purge) purge=1; shift ;;
      *) bad_usage "uninstall: unknown argument '$1'" ;;
    esac
  done
  if [ "$helm" -eq 1 ]; then
    run "$HELM" uninstall coffer -n "$ns"
  else
    run "$KUBECTL" delete -k "$(overlay_dir "$overlay")" --ignore-not-found
  fi
  if [ "$purge" -eq 1 ]; then
    k delete pvc --all --ignore-not-found
    run "$KUBECTL" delete namespace "$ns" --ignore-not-found
  else
    echo "coffer-k8s: volumes kept (models, batch data, the coordinator's sealed state); --purge removes them" >&2
  fi
}

cmd_render() {
  local overlay=default helm=0 sets=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --overlay) overlay=${2:?--overlay needs a value}; shift 2 ;;
      --helm) helm=1; shift ;;
      --set) sets+=(--set "${2:?}"); shift 2 ;;
      *) bad_usage "render: unknown argument '$1'" ;;
    esac
  done
  if [ "$helm" -eq 1 ]; then
    /usr/bin/python3 "$here/helm/render.py" "$here/helm/coffer" --namespace "$ns" "${sets[@]}"
  else
    [ "${#sets[@]}" -eq 0 ] || bad_usage "render: --set is for --helm"
    "$KUBECTL" kustomize "$(overlay_dir "$overlay")"
  fi
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    -h|--help) usage ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || usage
command=$1
shift
case "$command" in
  install) cmd_install "$@" ;;
  wait) cmd_wait "$@" ;;
  port-forward) cmd_port_forward "$@" ;;
  upload-model) [ $# -eq 1 ] && [ -d "$1" ] || bad_usage "upload-model DIR (a folder holding NAME/VERSION/model.onnx)"
    copy_via_pod coffer-models to "$1" "" ;;
  upload-batch) [ $# -eq 1 ] && [ -d "$1" ] || bad_usage "upload-batch DIR (model.onnx and inputs/, encrypted)"
    copy_via_pod coffer-batch to "$1" "" ;;
  fetch-results) [ $# -eq 1 ] || bad_usage "fetch-results DIR"
    copy_via_pod coffer-batch from "$1" results ;;
  uninstall) cmd_uninstall "$@" ;;
  render) cmd_render "$@" ;;
  *) bad_usage "unknown command '$command' (install, wait, port-forward, upload-model, upload-batch, fetch-results, uninstall, render)" ;;
esac
