#!/usr/bin/env bash
# deploy/docker: images are not built here (no Docker daemon and no registry
# in the test environment; hadolint is not in Debian 12). What can be checked
# without building: every COPY source exists in the context it names (the
# repository, or the named contexts `shared` and `ca`) and is let in by the
# Dockerfile's .dockerignore; every stage a COPY --from names is defined;
# every Debian package the Dockerfiles name is in tools/packages.txt, and the
# one package from Gramine's repository is installed only after that
# repository is added, in Dockerfile.gramine only; the runtime package list
# the coffer image computes (runtime-packages.sh) works on the built binary.
# Usage: test_docker.sh COFFER_BIN SHARED_DIR
coffer=$1
shared=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/cli/lib.sh"
mkdir -p ca && touch ca/ca.crt   # the `ca` context: a folder holding the provider's CA
cat > check_dockerfile.py <<'PY'
import fnmatch, os, re, shlex, sys
src, shared, ca, path = sys.argv[1:]
name = os.path.basename(path)
lines = open(path).read().replace("\\\n", " ").splitlines()
packages = {l.strip() for l in open(os.path.join(src, "tools/packages.txt")) if l.strip() and not l.startswith("#")}
ignore = [l.strip() for l in open(path + ".dockerignore") if l.strip() and not l.startswith("#")]
def admitted(rel):  # .dockerignore semantics: last matching pattern wins; "!" re-admits
    keep = True
    for pat in ignore:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        if fnmatch.fnmatch(rel, p) or rel.startswith(p.rstrip("/") + "/"):
            keep = neg
    return keep
contexts = {"shared": shared, "ca": ca}
stages, errors, repo_added, external = set(), [], False, []
for l in lines:
    l = l.strip()
    if not l or l.startswith("#"):
        continue
    word, _, rest = l.partition(" ")
    if word == "FROM":
        m = re.search(r"\bAS\s+(\S+)", rest, re.I)
        if m:
            stages.add(m.group(1))
    elif word == "ADD":
        if "packages.gramineproject.io" in rest:
            repo_added = True
    elif word == "COPY":
        args = shlex.split(rest)
        frm = next((a.split("=", 1)[1] for a in args if a.startswith("--from=")), None)
        srcs = [a for a in args if not a.startswith("--")][:-1]
        for s in srcs:
            if frm is None:
                if not os.path.exists(os.path.join(src, s)):
                    errors.append(f"COPY {s}: not in the repository")
                elif not admitted(s):
                    errors.append(f"COPY {s}: excluded by {name}.dockerignore")
            elif frm in contexts:
                if not os.path.exists(os.path.join(contexts[frm], s)):
                    errors.append(f"COPY --from={frm} {s}: not in that context")
            elif frm not in stages:
                errors.append(f"COPY --from={frm}: no such stage or named context")
    elif word == "RUN" and "apt-get install" in l:
        for cmd in l.split("&&"):
            if "apt-get install" not in cmd or "xargs" in cmd:
                continue  # xargs: the computed runtime list (runtime-packages.sh)
            for pkg in [t for t in shlex.split(cmd.split("apt-get install", 1)[1]) if not t.startswith("-")]:
                if pkg == "gramine":
                    external.append(pkg)
                    if name != "Dockerfile.gramine" or not repo_added:
                        errors.append("gramine installed without Gramine's repository")
                elif pkg not in packages:
                    errors.append(f"package {pkg} is not in tools/packages.txt")
if name == "Dockerfile.gramine" and external != ["gramine"]:
    errors.append(f"Gramine's repository is used for exactly gramine, got {external}")
if name == "Dockerfile" and (repo_added or external):
    errors.append("the coffer image must use Debian only")
print("\n".join(errors) or "ok", file=sys.stderr if errors else sys.stdout)
sys.exit(1 if errors else 0)
PY
for df in Dockerfile Dockerfile.gramine; do
  expect 0 "$df: sources, stages, packages" -- /usr/bin/python3 check_dockerfile.py "$src" "$shared" "$tmp/ca" \
    "$src/deploy/docker/$df"
done
# the checks are not toothless
cp "$src/deploy/docker/Dockerfile.dockerignore" Dockerfile.dockerignore
sed 's|^COPY include |COPY includes |' "$src/deploy/docker/Dockerfile" > Dockerfile
expect 1 "a COPY of a missing source" -- /usr/bin/python3 check_dockerfile.py "$src" "$shared" "$tmp/ca" "$tmp/Dockerfile"
has "COPY includes: not in the repository" err "names the source"
sed 's|cmake ninja-build|cmake ninja-build nodejs|' "$src/deploy/docker/Dockerfile" > Dockerfile
expect 1 "a package not in tools/packages.txt" -- /usr/bin/python3 check_dockerfile.py "$src" "$shared" "$tmp/ca" "$tmp/Dockerfile"
has "package nodejs is not in tools/packages.txt" err "names the package"
sed 's|^COPY src |COPY README.md |' "$src/deploy/docker/Dockerfile" > Dockerfile
expect 1 "a source the .dockerignore leaves out" -- /usr/bin/python3 check_dockerfile.py "$src" "$shared" "$tmp/ca" "$tmp/Dockerfile"
has "excluded by Dockerfile.dockerignore" err "names the exclusion"
expect 0 "runtime-packages.sh on the built binary" -- sh "$src/deploy/docker/runtime-packages.sh" "$coffer"
cp out runtime-packages.txt
for p in libssl3 libjansson4 libc6 libnghttp2-14 libprotobuf-c1; do has "^$p$" runtime-packages.txt "the runtime needs $p"; done
if grep -q -- "-dev$" runtime-packages.txt; then bad "no -dev package at run time"; else ok; fi
while read -r p; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || bad "$p is not an installed package"
done < runtime-packages.txt
ok
finish "deploy docker"
