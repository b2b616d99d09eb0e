#!/usr/bin/python3
"""Check rendered Kubernetes manifests for the mistakes a cluster would only
report at apply or run time, without a cluster (kubectl's schema validation
needs one: it downloads the OpenAPI schema from the API server).

    check-k8s.py [--namespace NS] [--external KIND/NAME ...] FILE|- ...

Checks: every object has apiVersion, kind, metadata.name (and the namespace,
if given, on namespaced kinds); no two objects share kind and name; pod
templates: containers have a name and an image, unique port names of at most
15 characters, probes name ports that exist, volume mounts name volumes that
exist, extended resources (sgx.intel.com/...) are limits equal to any request,
memory/cpu requests do not exceed limits; workload selectors match their
template's labels; Services select a pod template and their target ports exist
there; every Secret, ConfigMap and PersistentVolumeClaim a pod uses is in the
output (a Secret may come from a cert-manager Certificate) or named by
--external (what the operator creates: deploy/coffer-k8s.sh install).
Exit 1 with one line per problem. /usr/bin/python3 with python3-yaml.
"""
import argparse
import re
import sys

import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "ClusterIssuer", "RuntimeClass",
                  "PersistentVolume", "StorageClass", "CustomResourceDefinition"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
UNITS = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(v):
    m = re.fullmatch(r"([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(v))
    if not m:
        raise ValueError(f"not a quantity: {v!r}")
    return float(m.group(1)) * UNITS[m.group(2) or ""]


def pod_spec(obj):
    spec = obj.get("spec") or {}
    if obj["kind"] == "Pod":
        return spec
    tpl = spec.get("template") or {}
    if obj["kind"] == "CronJob":
        tpl = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    return tpl.get("spec")


def template_labels(obj):
    if obj["kind"] == "Pod":
        return (obj.get("metadata") or {}).get("labels") or {}
    return (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--namespace")
    ap.add_argument("--external", action="append", default=[], help="KIND/NAME created outside these manifests")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    docs = []
    for f in a.files:
        text = sys.stdin.read() if f == "-" else open(f).read()
        docs += [d for d in yaml.safe_load_all(text) if d is not None]
    problems = []

    def bad(obj, msg):
        md = obj.get("metadata") or {}
        problems.append(f"{obj.get('kind', '?')}/{md.get('name', '?')}: {msg}")

    if not docs:
        problems.append("no objects")
    seen, provided = set(), {("Secret", e.split("/", 1)[1]) if e.startswith("Secret/") else tuple(e.split("/", 1))
                             for e in a.external}
    for o in docs:
        if not isinstance(o, dict):
            problems.append(f"not an object: {o!r:.60}")
            continue
        for k in ("apiVersion", "kind"):
            if not o.get(k):
                bad(o, f"no {k}")
        md = o.get("metadata") or {}
        if not md.get("name"):
            bad(o, "no metadata.name")
        if a.namespace and o.get("kind") not in CLUSTER_SCOPED and md.get("namespace") != a.namespace:
            bad(o, f"namespace {md.get('namespace')!r}, want {a.namespace!r}")
        key = (o.get("kind"), md.get("name"))
        if key in seen:
            bad(o, "defined twice")
        seen.add(key)
        provided.add(key)
        if o.get("kind") == "Certificate":
            provided.add(("Secret", (o.get("spec") or {}).get("secretName")))
        if o.get("kind") == "StatefulSet":
            for t in (o.get("spec") or {}).get("volumeClaimTemplates") or []:
                provided.add(("VolumeClaimTemplate", (t.get("metadata") or {}).get("name")))

    pods = []
    for o in docs:
        if not isinstance(o, dict) or o.get("kind") not in WORKLOADS | {"Pod", "CronJob"}:
            continue
        ps = pod_spec(o)
        if not isinstance(ps, dict) or not ps.get("containers"):
            bad(o, "no containers")
            continue
        labels = template_labels(o)
        sel = ((o.get("spec") or {}).get("selector") or {}).get("matchLabels")
        if o["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}:
            if not sel:
                bad(o, "no spec.selector.matchLabels")
            elif any(labels.get(k) != v for k, v in sel.items()):
                bad(o, f"selector {sel} does not match the template's labels {labels}")
        volumes = {v.get("name") for v in ps.get("volumes") or []}
        claims = {t for (k, t) in provided if k == "VolumeClaimTemplate"} if o["kind"] == "StatefulSet" else set()
        for v in ps.get("volumes") or []:
            refs = [("Secret", (v.get("secret") or {}).get("secretName")),
                    ("ConfigMap", (v.get("configMap") or {}).get("name")),
                    ("PersistentVolumeClaim", (v.get("persistentVolumeClaim") or {}).get("claimName"))]
            for kind, name in refs:
                if name and (kind, name) not in provided:
                    bad(o, f"volume {v.get('name')}: {kind} {name} is neither in the output nor --external")
        ports = {}
        for c in (ps.get("initContainers") or []) + ps["containers"]:
            cname = c.get("name")
            if not cname or not c.get("image"):
                bad(o, f"container {cname!r} needs a name and an image")
            for p in c.get("ports") or []:
                n = p.get("name")
                if not isinstance(p.get("containerPort"), int) or not 0 < p["containerPort"] < 65536:
                    bad(o, f"{cname}: containerPort {p.get('containerPort')!r}")
                if n:
                    if n in ports or len(n) > 15:
                        bad(o, f"{cname}: port name {n!r} repeated or longer than 15")
                    ports[n] = p.get("containerPort")
            for m in c.get("volumeMounts") or []:
                if m.get("name") not in volumes | claims:
                    bad(o, f"{cname}: mount {m.get('mountPath')} names no volume ({m.get('name')})")
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {})
                for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    n = (ref.get(key) or {}).get("name")
                    if n and (kind, n) not in provided:
                        bad(o, f"{cname}: env {e.get('name')}: {kind} {n} is neither in the output nor --external")
            res = c.get("resources") or {}
            req, lim = res.get("requests") or {}, res.get("limits") or {}
            for r, v in list(req.items()) + list(lim.items()):
                try:
                    quantity(v)
                except ValueError as e:
                    bad(o, f"{cname}: {r}: {e}")
            for r in set(req) | set(lim):
                if "/" in r:  # extended resources: limits, and requests equal to them
                    if r not in lim:
                        bad(o, f"{cname}: extended resource {r} needs a limit")
                    elif r in req and quantity(req[r]) != quantity(lim[r]):
                        bad(o, f"{cname}: {r} request and limit differ")
                elif r in req and r in lim and quantity(req[r]) > quantity(lim[r]):
                    bad(o, f"{cname}: {r} request exceeds the limit")
        for c in ps["containers"]:
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                pr = c.get(probe) or {}
                for kind in ("tcpSocket", "httpGet", "grpc"):
                    port = (pr.get(kind) or {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        bad(o, f"{c.get('name')}: {probe} names port {port!r}, not declared")
        pods.append((o, labels, ports))

    for o in docs:
        if not isinstance(o, dict) or o.get("kind") != "Service":
            continue
        sel = (o.get("spec") or {}).get("selector") or {}
        match = [(w, p) for (w, lab, p) in pods if sel and all(lab.get(k) == v for k, v in sel.items())]
        if not match:
            bad(o, f"selector {sel} selects no pod template")
            continue
        for sp in (o.get("spec") or {}).get("ports") or []:
            tp = sp.get("targetPort", sp.get("port"))
            if isinstance(tp, str) and not all(tp in p for _, p in match):
                bad(o, f"targetPort {tp!r} is not a port of {[w['metadata']['name'] for w, _ in match]}")
            if not isinstance(sp.get("port"), int):
                bad(o, f"port {sp.get('port')!r}")

    for p in problems:
        print(f"check-k8s: {p}")
    if not problems:
        print(f"check-k8s: {len(docs)} objects, no problem found")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
