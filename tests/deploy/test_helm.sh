#!/usr/bin/env bash
# deploy/helm/coffer: Helm is not in Debian 12, so the chart is rendered by
# deploy/helm/render.py (the Go-template subset the chart uses; anything else
# is an error). Renders with the default values (SGX), simulation, and a
# values file (Kata, 5 replicas, an existing claim); each passes yamllint and
# deploy/check-k8s.py and carries what its values ask for. The renderer's
# refusals are checked too. No cluster, no Helm: `helm install` itself is not
# run here (docs/deploy.md). Usage: test_helm.sh COFFER_BIN SHARED_DIR
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/cli/lib.sh"
render="/usr/bin/python3 $src/deploy/helm/render.py"
chart=$src/deploy/helm/coffer
lint='{extends: default, rules: {line-length: {max: 140}, document-start: disable, truthy: {check-keys: false}}}'
check() { # NAME: lint and check NAME.yaml
  expect 0 "$1: yamllint" -- yamllint -d "$lint" -f parsable "$1.yaml"
  expect 0 "$1: check-k8s" -- /usr/bin/python3 "$src/deploy/check-k8s.py" --namespace coffer \
    --external Secret/coffer-sim-platform-key --external PersistentVolumeClaim/shared-models "$1.yaml"
}
props() { # NAME PYTHON-ASSERTIONS over `docs` (objects by kind/name in `o`)
  expect 0 "$1: $3" -- /usr/bin/python3 -c "
import sys, yaml
docs = [d for d in yaml.safe_load_all(open('$1.yaml')) if d]
o = {(d['kind'], d['metadata']['name']): d for d in docs}
def main(kind, name): return o[(kind, name)]['spec']['template']['spec']['containers'][0]
$2
"
}
expect 0 "render with the default values" -- $render "$chart" --namespace coffer
cp out sgx.yaml
has "^# Source: coffer/templates/coordinator.yaml" sgx.yaml "helm template's Source lines"
check sgx
props sgx "
assert main('StatefulSet', 'coordinator')['image'] == 'coffer-gramine:latest'
assert main('StatefulSet', 'coordinator')['args'] == ['coffer-coordinator']
assert main('Deployment', 'model-server')['args'] == ['coffer-serve']
assert o[('Deployment', 'model-server')]['spec']['replicas'] == 2
lim = main('Deployment', 'model-server')['resources']['limits']
assert lim['sgx.intel.com/epc'] == '1Gi' and lim['sgx.intel.com/enclave'] == 1 and lim['sgx.intel.com/provision'] == 1, lim
assert not any(e['name'].startswith('EDG_') for e in main('StatefulSet', 'coordinator').get('env', [])), 'EDG_* in SGX mode'
assert [p['port'] for p in o[('Service', 'coordinator-client-api')]['spec']['ports']] == [4433]
assert [p['port'] for p in o[('Service', 'coordinator-mesh-api')]['spec']['ports']] == [2001]
assert sorted(p['port'] for p in o[('Service', 'model-server')]['spec']['ports']) == [8500, 8501]
vct = o[('StatefulSet', 'coordinator')]['spec']['volumeClaimTemplates'][0]
assert vct['spec']['resources']['requests']['storage'] == '1Gi'
assert ('PersistentVolumeClaim', 'coffer-models') in o
assert 'runtimeClassName' not in o[('Deployment', 'model-server')]['spec']['template']['spec']
" "SGX: the Gramine image, device-plugin resources, services, sealed-state volume"

expect 0 "render in simulation" -- $render "$chart" --set simulation=true --set model.name=digits --set coordinator.threads=2
cp out sim.yaml
check sim
props sim "
c = main('StatefulSet', 'coordinator')
assert c['image'] == 'coffer:latest' and '--simulation' in c['args'] and '--threads=2' in c['args'], c['args']
env = {e['name']: e['value'] for e in c['env']}
assert env['EDG_COORDINATOR_CLIENT_ADDR'] == ':4433' and env['EDG_COORDINATOR_MESH_ADDR'] == ':2001', env
assert env['EDG_COORDINATOR_DNS_NAMES'] == 'localhost,coordinator-client-api,coordinator-mesh-api', env
assert env['EDG_COORDINATOR_SEAL_DIR'] == '/coffer/coordinator-data'
s = main('Deployment', 'model-server')
assert '--model_name=digits' in s['args'] and '--model_base_path=models/digits' in s['args'], s['args']
assert '--coordinator=coordinator-mesh-api:2001' in s['args']
for d in docs:
    for c in (d.get('spec', {}).get('template', {}).get('spec', {}).get('containers') or []):
        r = c.get('resources', {})
        assert not any(k.startswith('sgx.') for k in list(r.get('limits', {})) + list(r.get('requests', {}))), c['name']
" "simulation: the plain image, --simulation, EDG_* env, no SGX resources"

cat > values-kata.yaml <<'YAML'
runtimeClassName: kata-qemu-sgx
modelServer:
  replicas: 5
  service:
    type: LoadBalancer
model:
  existingClaim: shared-models
coordinator:
  persistence:
    storageClass: fast-ssd
    size: 5Gi
YAML
expect 0 "render with a values file" -- $render "$chart" -f values-kata.yaml
cp out kata.yaml
check kata
props kata "
ms = o[('Deployment', 'model-server')]
assert ms['spec']['replicas'] == 5
assert ms['spec']['template']['spec']['runtimeClassName'] == 'kata-qemu-sgx'
assert o[('StatefulSet', 'coordinator')]['spec']['template']['spec']['runtimeClassName'] == 'kata-qemu-sgx'
assert ms['spec']['template']['spec']['volumes'][0]['persistentVolumeClaim']['claimName'] == 'shared-models'
assert ('PersistentVolumeClaim', 'coffer-models') not in o, 'no claim made when one exists'
assert o[('Service', 'model-server')]['spec']['type'] == 'LoadBalancer'
vct = o[('StatefulSet', 'coordinator')]['spec']['volumeClaimTemplates'][0]['spec']
assert vct['storageClassName'] == 'fast-ssd' and vct['resources']['requests']['storage'] == '5Gi'
" "values: runtime class, replicas, existing claim, service type, storage"
expect 0 "simulation ignores the runtime class" -- $render "$chart" --set simulation=true --set runtimeClassName=kata-qemu-sgx
if grep -q runtimeClassName out; then bad "runtimeClassName in simulation"; else ok; fi

# the renderer refuses what it does not implement, and malformed templates
mkdir -p bad/templates
printf 'apiVersion: v2\nname: bad\nversion: 0.0.1\n' > bad/Chart.yaml
printf 'x: 1\n' > bad/values.yaml
printf 'a: {{ .Values.x | sha256sum }}\n' > bad/templates/a.yaml
expect 1 "an unsupported function" -- $render bad
has "function 'sha256sum' is not in the supported subset" err "names the function"
printf '{{ if .Values.x }}\na: 1\n' > bad/templates/a.yaml
expect 1 "a missing end" -- $render bad
has "missing {{ end }}" err "names the missing end"
printf 'a: {{ required "x.y is required" .Values.y }}\n' > bad/templates/a.yaml
expect 1 "required" -- $render bad
has "x.y is required" err "required's message"
printf '{{- define "t" -}}v={{ . }}{{- end }}\n' > bad/templates/_h.tpl
printf 'a: {{ include "t" .Values.x | quote }}\nb: {{ printf "%%s-%%d" "n" 3 }}\n{{- range $k, $v := dict "p" 1 "q" 2 }}\n{{ $k }}: {{ $v }}\n{{- end }}\nc: {{ default "d" .Values.none }}\n' > bad/templates/a.yaml
expect 0 "include, printf, range over a map, default" -- $render bad
has '^a: "v=1"$' out "include piped to quote"
has '^b: n-3$' out "printf"
has '^p: 1$' out "range over a map"
has '^c: d$' out "default"
finish "deploy helm"
