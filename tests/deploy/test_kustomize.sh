#!/usr/bin/env bash
# deploy/kubernetes: `kubectl kustomize` (Debian's kubernetes-client) renders
# every overlay; the output passes deploy/check-k8s.py (references, ports,
# selectors, SGX resources) and yamllint; and each overlay says what it is
# for: SGX device-plugin resources and the node's aesmd on the default runtime,
# Kata's runtime class and an aesmd sidecar, no SGX and --simulation
# everywhere in simulation. No cluster: nothing is applied (docs/deploy.md).
# Usage: test_kustomize.sh COFFER_BIN SHARED_DIR
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/cli/lib.sh"
k8s=$src/deploy/kubernetes
external=(--external Secret/coffer-wrap-key --external ConfigMap/coffer-run-policy
          --external Secret/coffer-ca-key-pair --external Secret/coffer-sim-platform-key)
rendered_lint='{extends: default, rules: {line-length: disable, document-start: disable, truthy: {check-keys: false}, indentation: {indent-sequences: whatever}}}'
command -v kubectl >/dev/null && ok || bad "kubectl is installed (tools/packages.txt: kubernetes-client)"
for o in default kata simulation; do
  expect 0 "kustomize $o" -- kubectl kustomize "$k8s/overlays/$o"
  cp out "$o.yaml"
  expect 0 "$o: check-k8s" -- /usr/bin/python3 "$src/deploy/check-k8s.py" --namespace coffer "${external[@]}" "$o.yaml"
  expect 0 "$o: yamllint of the rendered manifests" -- yamllint -d "$rendered_lint" -f parsable "$o.yaml"
  expect 0 "$o: the overlay's own properties" -- /usr/bin/python3 - "$o" "$o.yaml" <<'PY'
import sys, yaml
overlay, docs = sys.argv[1], [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
errors = []
kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
for want in [("StatefulSet", "coordinator"), ("Service", "coordinator-client-api"), ("Service", "coordinator-mesh-api"),
             ("Deployment", "model-server"), ("Service", "model-server"), ("Deployment", "secret-provider"),
             ("Job", "coffer-run"), ("Issuer", "coffer-ca"), ("Certificate", "secret-provider"),
             ("PersistentVolumeClaim", "coffer-models"), ("PersistentVolumeClaim", "coffer-batch")]:
    if want not in kinds:
        errors.append(f"missing {want}")
ports = {d["metadata"]["name"]: sorted(p["port"] for p in d["spec"]["ports"]) for d in docs if d["kind"] == "Service"}
if ports.get("coordinator-client-api") != [4433] or ports.get("coordinator-mesh-api") != [2001] \
        or ports.get("model-server") != [8500, 8501]:
    errors.append(f"service ports {ports}")
enclaves = {"coordinator", "model-server", "coffer-run"}
for d in docs:
    if d["kind"] not in ("StatefulSet", "Deployment", "Job"):
        continue
    name, spec = d["metadata"]["name"], d["spec"]["template"]["spec"]
    main = next(c for c in spec["containers"] if c["name"] == name)
    lim = (main.get("resources") or {}).get("limits") or {}
    sgx = {k: v for k, v in lim.items() if k.startswith("sgx.intel.com/")}
    vols = {v["name"]: v for v in spec.get("volumes") or []}
    args = main.get("args") or []
    if overlay == "simulation":
        if sgx:
            errors.append(f"{name}: SGX resources in simulation: {sgx}")
        if "aesmd" in vols:
            errors.append(f"{name}: aesmd volume in simulation")
        if not main["image"].startswith("coffer:") or "gramine" in main["image"]:
            errors.append(f"{name}: image {main['image']}")
        if "--simulation" not in args and "--simulation" not in " ".join(args):
            errors.append(f"{name}: no --simulation in {args}")
        if "sim-platform-key" not in vols:
            errors.append(f"{name}: the shared simulation platform key is not mounted")
    elif name in enclaves:
        enclave = {"coordinator": "coffer-coordinator", "model-server": "coffer-serve", "coffer-run": "coffer-run"}[name]
        if main["image"] != "coffer-gramine:latest" or args != [enclave]:
            errors.append(f"{name}: image {main['image']} args {args}")
        if sgx.get("sgx.intel.com/enclave") != 1 or sgx.get("sgx.intel.com/provision") != 1 \
                or "sgx.intel.com/epc" not in sgx:
            errors.append(f"{name}: SGX device-plugin resources {sgx}")
        if any("--simulation" in a for a in args):
            errors.append(f"{name}: --simulation outside the simulation overlay")
        rc = spec.get("runtimeClassName")
        if overlay == "kata":
            if rc != "kata-qemu-sgx":
                errors.append(f"{name}: runtimeClassName {rc}")
            if "hostPath" in vols.get("aesmd", {}) or "emptyDir" not in vols.get("aesmd", {}):
                errors.append(f"{name}: aesmd must be a shared emptyDir in Kata, got {vols.get('aesmd')}")
            if not any(c["name"] == "aesmd" for c in spec["containers"]):
                errors.append(f"{name}: no aesmd sidecar")
        else:
            if rc:
                errors.append(f"{name}: runtimeClassName {rc} on the default runtime")
            if vols.get("aesmd", {}).get("hostPath", {}).get("path") != "/var/run/aesmd":
                errors.append(f"{name}: the node's aesmd socket is not mounted")
print("\n".join(errors) or "ok", file=sys.stderr if errors else sys.stdout)
sys.exit(1 if errors else 0)
PY
done
has "epc: 1Gi" default.yaml "the model server's EPC is its enclave size"
has "epc: 256Mi" default.yaml "the coordinator's EPC is its enclave size"
# the checker catches what it is for
sed 's/targetPort: grpc/targetPort: grcp/' default.yaml > broken.yaml
expect 1 "a Service naming a port no pod has" -- /usr/bin/python3 "$src/deploy/check-k8s.py" --namespace coffer "${external[@]}" broken.yaml
has "targetPort 'grcp'" out "names the port"
expect 1 "a Secret nobody creates" -- /usr/bin/python3 "$src/deploy/check-k8s.py" --namespace coffer default.yaml
has "Secret coffer-wrap-key is neither in the output nor --external" out "names the Secret"
sed 's/sgx.intel.com\/enclave: 1/sgx.intel.com\/enclave: one/' default.yaml > broken.yaml
expect 1 "a malformed quantity" -- /usr/bin/python3 "$src/deploy/check-k8s.py" --namespace coffer "${external[@]}" broken.yaml
finish "deploy kustomize"
