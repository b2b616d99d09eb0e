#!/usr/bin/env bash
# deploy/coffer-k8s.sh, without a cluster: its usage errors, the kubectl and
# helm commands it would run (--dry-run) for install, wait, port-forward,
# uploads and uninstall, a real install against a stand-in kubectl that
# records its calls and what it was fed, and `render`, which works offline.
# Against a real cluster it is not run here (docs/deploy.md).
# Usage: test_k8s_script.sh COFFER_BIN SHARED_DIR
coffer=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/cli/lib.sh"
s="$src/deploy/coffer-k8s.sh"
k8s=$src/deploy/kubernetes
printf 'ca' > ca.crt; printf 'key' > ca.key; head -c 16 /dev/urandom > wrap_key; printf '{}' > policy.json

expect 2 "no command" -- bash "$s"
expect 2 "unknown command" -- bash "$s" bogus
has "unknown command 'bogus'" err "names it"
expect 2 "unknown overlay" -- bash "$s" --dry-run install --overlay gvisor
has "unknown overlay 'gvisor'" err "names it"
expect 2 "--ca-cert without --ca-key" -- bash "$s" --dry-run install --ca-cert ca.crt
expect 1 "a missing file" -- bash "$s" --dry-run install --wrap-key nothing-here
has "no such file: nothing-here" err "names the file"
expect 2 "helm with the batch flow's secrets" -- bash "$s" --dry-run install --helm --wrap-key wrap_key
expect 2 "--set without --helm" -- bash "$s" --dry-run install --set simulation=true
expect 2 "unknown port-forward target" -- bash "$s" --dry-run port-forward everything
expect 2 "upload-model needs a folder" -- bash "$s" --dry-run upload-model missing-dir

expect 0 "install (dry run)" -- bash "$s" --dry-run install --ca-cert ca.crt --ca-key ca.key --wrap-key wrap_key --run-policy policy.json
has "^+ kubectl create namespace coffer" out "namespace"
has "create secret tls coffer-ca-key-pair --cert=ca.crt --key=ca.key" out "the CA for cert-manager"
has "create secret generic coffer-wrap-key --from-file=wrap_key=wrap_key" out "the wrap key"
has "create configmap coffer-run-policy --from-file=policy.json=policy.json" out "the provider's policy"
has "^+ kubectl apply -k $k8s/overlays/default$" out "applies the default overlay"
expect 0 "install kata" -- bash "$s" --dry-run install --overlay kata
has "apply -k $k8s/overlays/kata$" out "applies the kata overlay"
expect 0 "install with helm in simulation" -- bash "$s" --dry-run install --helm --overlay simulation --sim-key ca.key \
  --set modelServer.replicas=3
has "^+ helm install coffer $src/deploy/helm/coffer -n coffer --set modelServer.replicas=3 --set simulation=true$" out "helm install"
has "create secret generic coffer-sim-platform-key --from-file=sim-platform-key.pem=ca.key" out "the shared simulation key"
has "SIMULATION: no SGX, no protection" err "says simulation"
expect 0 "wait" -- bash "$s" --dry-run wait --timeout 60s
has "rollout status statefulset/coordinator --timeout=60s" out "waits for the coordinator"
has "wait --for=condition=Ready pod -l app.kubernetes.io/name=model-server --timeout=60s" out "waits for the servers"
expect 0 "port-forward" -- bash "$s" --dry-run port-forward client grpc provider
has "port-forward svc/coordinator-client-api 4433:4433 --address localhost" out "the client API, as the TF demo"
has "port-forward svc/model-server 8500:8500" out "gRPC"
has "port-forward svc/secret-provider 4434:4433" out "the provider"
has "export COFFER_COORDINATOR=localhost:4433" out "says which address to use"
mkdir -p models/digits/1 && printf x > models/digits/1/model.onnx
expect 0 "upload-model" -- bash "$s" --dry-run upload-model models
has "cp models/. coffer-copy-coffer-models:/data/" out "copies the folder"
has "delete pod coffer-copy-coffer-models" out "removes the copy pod"
expect 0 "fetch-results" -- bash "$s" --dry-run fetch-results out-dir
has "cp coffer-copy-coffer-batch:/data/results out-dir" out "fetches results"
expect 0 "uninstall" -- bash "$s" --dry-run uninstall
has "delete -k $k8s/overlays/default --ignore-not-found" out "deletes the overlay"
has "volumes kept" err "keeps the volumes by default"
expect 0 "uninstall --purge --helm" -- bash "$s" --dry-run uninstall --helm --purge
has "^+ helm uninstall coffer -n coffer$" out "helm uninstall"
has "delete namespace coffer" out "purges the namespace"

# a real run against a stand-in kubectl: the objects it is fed are the right ones
mkdir -p bin
cat > bin/kubectl <<'SH'
#!/bin/sh
echo "kubectl $*" >> "$KLOG"
case "$*" in
  *--dry-run=client*) exec /usr/bin/python3 -c '
import sys, json
a = sys.argv[1:]
kind = a[a.index("create") + 1]
name = a[a.index("create") + 2] if kind in ("namespace", "configmap") else a[a.index("create") + 3]
print(json.dumps({"kind": kind, "name": name, "args": a}))' "$@" ;;
  *"apply -f -"*) cat >> "$KFED" ;;
esac
SH
chmod +x bin/kubectl
KLOG=$tmp/klog KFED=$tmp/kfed PATH=$tmp/bin:$PATH expect 0 "install against a stand-in kubectl" -- \
  bash "$s" install --overlay simulation --sim-key ca.key --wrap-key wrap_key
has "kubectl apply -k $k8s/overlays/simulation" klog "applied the overlay"
has '"kind": "secret", "name": "coffer-wrap-key"' kfed "fed the wrap-key Secret to apply"
has '"name": "coffer-sim-platform-key"' kfed "fed the simulation key Secret to apply"

# render needs no cluster
expect 0 "render the kata overlay" -- bash "$s" render --overlay kata
has "runtimeClassName: kata-qemu-sgx" out "the kata overlay"
kubectl kustomize "$k8s/overlays/kata" > direct.yaml 2>/dev/null
if cmp -s out direct.yaml; then ok; else bad "render equals kubectl kustomize"; fi
expect 0 "render the chart" -- bash "$s" render --helm --set modelServer.replicas=4
has "replicas: 4" out "with the values given"
finish "deploy k8s script"
