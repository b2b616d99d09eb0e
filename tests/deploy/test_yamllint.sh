#!/usr/bin/env bash
# yamllint (Debian's yamllint) passes on every YAML file under deploy/, with
# deploy/.yamllint. The Helm chart's templates are Go templates, not YAML:
# their rendered output is linted by test_helm.sh, and kustomize's output by
# test_kustomize.sh. Usage: test_yamllint.sh COFFER_BIN SHARED_DIR
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/cli/lib.sh"
command -v yamllint >/dev/null && ok || bad "yamllint is installed (tools/packages.txt)"
mapfile -t files < <(cd "$src" && find deploy \( -name '*.yaml' -o -name '*.yml' \) -not -path 'deploy/helm/*/templates/*' | sort)
[ "${#files[@]}" -ge 15 ] && ok || bad "found the deploy YAML files (${#files[@]})"
for f in "${files[@]}"; do
  expect 0 "yamllint $f" -- yamllint -c "$src/deploy/.yamllint" -f parsable "$src/$f"
done
# and the configuration is not toothless: a real problem fails
printf 'a: 1\na: 2\nb:   [1,2]   \n' > bad.yaml
expect 1 "yamllint finds duplicate keys and trailing spaces" -- yamllint -c "$src/deploy/.yamllint" -f parsable bad.yaml
has "duplicate" out "duplicate key reported"
finish "deploy yamllint"
