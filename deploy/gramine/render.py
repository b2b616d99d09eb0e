#!/usr/bin/python3
"""Render coffer's Gramine manifest template the way gramine-manifest does, and
check a program's opened files against the rendered manifest.

    render.py render [-D KEY=VALUE ...] [--pkglibdir DIR] TEMPLATE [OUT]
    render.py check-opens MANIFEST STRACE_LOG [STRACE_LOG ...]

`render` uses the Jinja environment gramine-manifest builds
(python/graminelibos/gen_jinja_env.py in Gramine: StrictUndefined, no
autoescape, the globals `gramine` (libos, pkglibdir, runtimedir()), `env` and
`ldd`), then parses the result as TOML, as gramine-manifest does before it
writes. It does not measure trusted files (gramine-sgx-sign does that); it is
for tests and previews on machines without Gramine. Real deployments render
with gramine-manifest (deploy/gramine/Makefile).

`check-opens` reads `strace -f -e trace=open,openat` logs of the program run
natively with the manifest's command line and environment (in simulation), and
checks that every file it opened successfully is reachable inside the enclave:
a trusted or allowed file (or under a trusted or allowed folder), under an
encrypted or tmpfs mount, provided by Gramine itself (its glibc, its pseudo
files), or on the short list of files the program opens when present and does
without inside Gramine (each with its reason). Anything else would fail inside
the enclave, so it is reported and the exit status is 1.

Only /usr/bin/python3 with its standard library and python3-jinja2.
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tomllib

import jinja2

# gramine-manifest's `ldd` global (gen_jinja_env.parse_ldd): the absolute
# paths of the libraries ldd resolves, vdso skipped, sorted.
def ldd(*binaries):
    out = subprocess.check_output(["ldd", *(os.fspath(b) for b in binaries)]).decode("ascii")
    libs = set()
    for line in out.rstrip("\n").split("\n"):
        f = line.strip().split()
        if len(f) == 1 and f[0].endswith(":"):
            continue
        if len(f) >= 3 and f[1] == "=>" and f[2].startswith("/"):
            libs.add(f[2])
        elif len(f) >= 2 and f[0].startswith("/") and f[1].startswith("("):
            libs.add(f[0])
    return sorted(libs)


class Runtimedir:
    def __init__(self, pkglibdir):
        self.pkglibdir = pathlib.Path(pkglibdir)

    def __call__(self, libc="glibc"):
        return self.pkglibdir / "runtime" / libc

    def __str__(self):
        return str(self())


def render(template_text, defines, pkglibdir):
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.globals["gramine"] = {
        "libos": pathlib.Path(pkglibdir) / "libsysdb.so",
        "pkglibdir": pathlib.Path(pkglibdir),
        "runtimedir": Runtimedir(pkglibdir),
    }
    env.globals["env"] = os.environ
    env.globals["ldd"] = ldd
    text = env.from_string(template_text).render(**defines)
    return text, tomllib.loads(text)


# Files Gramine provides inside the enclave without a manifest entry: its
# pseudo file systems (/proc, /sys, /dev emulation; /dev/attestation with
# sgx.remote_attestation) and, with sys.enable_extra_runtime_domain_names_conf,
# /etc/resolv.conf. Listed narrowly: what coffer uses.
GRAMINE_PSEUDO = [
    re.compile(r"^/dev/(null|zero|urandom|random|tty|stdin|stdout|stderr)$"),
    re.compile(r"^/dev/attestation/"),
    re.compile(r"^/proc/(self|\d+)/(exe|maps|stat|status|cmdline|fd|task)(/|$)"),
    re.compile(r"^/proc/(cpuinfo|meminfo|stat)$"),
    re.compile(r"^/sys/devices/system/(cpu|node)/"),
]
RESOLV = "/etc/resolv.conf"

# Files glibc or OpenSSL open when present and do without (in Gramine they are
# not there: access to an unlisted file fails), with the reason that is safe.
TOLERATED = {
    "/etc/ld.so.cache": "Gramine's ld.so finds libraries through LD_LIBRARY_PATH (the manifest sets it)",
    "/etc/localtime": "coffer logs in UTC; without it glibc's local time is UTC too",
    "/etc/nsswitch.conf": "glibc's default (dns then files) applies; a host-chosen one is not wanted",
    "/etc/host.conf": "glibc's default resolver options apply",
    "/etc/gai.conf": "glibc's default address ordering applies",
    "/etc/hosts": "names resolve through DNS; TLS with pinned roots authenticates peers",
}

GLIBC_NAMES = {"ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
               "libresolv.so.2", "libutil.so.1", "libanl.so.1", "libmvec.so.1", "libnss_dns.so.2",
               "libnss_files.so.2"}

OPEN_RE = re.compile(r'^(?:\[pid\s+)?(\d+)\]?\s+(open|openat|openat2|creat)\((?:[^,"]+,\s*)?"((?:[^"\\]|\\.)*)"[^)]*'
                     r'(?:\)|<unfinished \.\.\.>)(?:\s*=\s*(-?\d+))?')
RESUMED_RE = re.compile(r'^(?:\[pid\s+)?(\d+)\]?\s+<\.\.\. (open|openat|openat2|creat) resumed>.*=\s*(-?\d+)')


def parse_strace(path):
    """(path, ok) for every open: ok when it returned a descriptor."""
    pending = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        m = OPEN_RE.match(line)
        if m:
            pid, _, p, ret = m.groups()
            p = p.encode().decode("unicode_escape")
            if ret is None:
                pending[pid] = p
            else:
                yield p, int(ret) >= 0
            continue
        m = RESUMED_RE.match(line)
        if m and m.group(1) in pending:
            yield pending.pop(m.group(1)), int(m.group(3)) >= 0


def uri_path(uri):
    if not uri.startswith("file:"):
        raise ValueError(f"not a file: URI: {uri}")
    rest = uri[len("file:"):]
    return os.path.normpath(rest) + ("/" if rest.endswith("/") else "")


def covered(path, manifest, runtimedir, arch_libdir):
    """The manifest entry that makes `path` reachable inside the enclave, or None."""
    norm = os.path.normpath(path)
    sgx = manifest.get("sgx", {})
    for kind in ("trusted_files", "allowed_files"):
        for e in sgx.get(kind, []):
            u = uri_path(e if isinstance(e, str) else e["uri"])
            if norm == u.rstrip("/") or (u.endswith("/") and norm.startswith(u)):
                return f"{kind} {u}"
    for m in manifest.get("fs", {}).get("mounts", []):
        if m.get("type") in ("encrypted", "tmpfs"):
            u = uri_path(m.get("uri", "file:" + m["path"]))
            if norm == u or norm.startswith(u.rstrip("/") + "/"):
                return f"{m['type']} mount {m['path']}"
    d, base = os.path.split(norm)
    if d == arch_libdir.rstrip("/") and base in GLIBC_NAMES:
        if any(uri_path(e if isinstance(e, str) else e["uri"]).rstrip("/") == runtimedir
               for e in sgx.get("trusted_files", [])):
            return f"Gramine's glibc ({runtimedir}/{base})"
    if any(r.match(norm) for r in GRAMINE_PSEUDO):
        return "Gramine pseudo file"
    if norm == RESOLV and manifest.get("sys", {}).get("enable_extra_runtime_domain_names_conf"):
        return "Gramine's runtime domain names conf"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("-D", "--define", action="append", default=[])
    r.add_argument("--pkglibdir", default="/usr/lib/x86_64-linux-gnu/gramine")
    r.add_argument("template")
    r.add_argument("out", nargs="?")
    c = sub.add_parser("check-opens")
    c.add_argument("--pkglibdir", default="/usr/lib/x86_64-linux-gnu/gramine")
    c.add_argument("--arch-libdir", default="/lib/x86_64-linux-gnu")
    c.add_argument("--tolerate", action="append", default=[], metavar="PATH=REASON",
                   help="one more file the program may open outside the manifest, with why")
    c.add_argument("manifest")
    c.add_argument("traces", nargs="+")
    a = ap.parse_args()
    if a.cmd == "render":
        defines = {}
        for d in a.define:
            k, sep, v = d.partition("=")
            defines[k] = v if sep else True
        try:
            text, _ = render(open(a.template).read(), defines, a.pkglibdir)
        except (jinja2.TemplateError, tomllib.TOMLDecodeError, subprocess.CalledProcessError) as e:
            print(f"render.py: {a.template}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        if a.out:
            open(a.out, "w").write(text)
        else:
            sys.stdout.write(text)
        return 0
    manifest = tomllib.loads(open(a.manifest).read())
    runtimedir = str(Runtimedir(a.pkglibdir)())
    tolerated = dict(TOLERATED)
    for t in a.tolerate:
        path, sep, reason = t.partition("=")
        if not sep or not reason:
            ap.error(f"--tolerate {t!r}: expected PATH=REASON")
        tolerated[os.path.normpath(path)] = reason
    seen, missing = {}, []
    for t in a.traces:
        for p, ok in parse_strace(t):
            if not ok or p in seen:
                continue
            why = covered(p, manifest, runtimedir, a.arch_libdir)
            if why is None and os.path.normpath(p) in tolerated:
                why = "not in the enclave: " + tolerated[os.path.normpath(p)]
            seen[p] = why
            if why is None:
                missing.append(p)
    for p in sorted(seen):
        print(f"{'MISSING' if seen[p] is None else 'ok':8} {p}" + (f"  ({seen[p]})" if seen[p] else ""))
    if not seen:
        print("check-opens: no successful open in the traces", file=sys.stderr)
        return 1
    if missing:
        print(f"check-opens: {len(missing)} opened file(s) the manifest does not cover", file=sys.stderr)
        return 1
    print(f"check-opens: all {len(seen)} opened files are covered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
