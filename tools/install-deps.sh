#!/usr/bin/env bash
# Install the Debian packages listed in tools/packages.txt (as root), only
# when some are missing, so a machine that has them all starts at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t pkgs < <(grep -v '^\s*#' "$here/packages.txt" | grep -v '^\s*$')
missing=()
for p in "${pkgs[@]}"; do
  # Debian's kubernetes-client ships /usr/bin/kubectl, which clashes with another
  # package's kubectl (Google's, Kubernetes' own): any kubectl with kustomize will do
  if [ "$p" = kubernetes-client ] && command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
