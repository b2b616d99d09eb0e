#!/usr/bin/python3
"""Render a Helm chart's templates without Helm (Helm is not packaged in
Debian 12), for the tests and for previewing: the subset of Go templates and
Helm functions that deploy/helm/coffer uses, and no more.

    render.py CHART [-f VALUES.yaml ...] [--set KEY=VALUE ...] [--name RELEASE] [--namespace NS]

Prints what `helm template RELEASE CHART` prints: each templates/*.yaml (not
_*.tpl, not NOTES.txt) rendered, after a `# Source: CHART/templates/FILE`
line, documents separated by `---`. Values: the chart's values.yaml, then
each -f file merged over it, then --set (dotted keys; values parsed as YAML
scalars, as `helm --set` does for numbers and booleans).

Template language supported: {{ }} actions with {{- -}} trimming and
{{/* comments */}}; if / else if / else / end, range (lists and maps, with
`$k, $v :=` or `$v :=`), with, define, template; fields (.Values.a.b,
.Release.Name, .Release.Namespace, .Chart.Name/Version/AppVersion, $ and
$var); string, number and boolean literals; parentheses; pipelines; the
functions quote, squote, default, required, toYaml, indent, nindent, printf
(%s %d %v %q), include, tpl-free string helpers (trunc, trimSuffix, lower,
upper, replace, join, toString, int), eq, ne, lt, gt, not, and, or, empty,
list, dict, hasKey, b64enc. Anything else is an error naming the file and
the action, so a chart that strays from the subset fails the tests loudly.
Missing map keys are nil, as in Helm. /usr/bin/python3 with python3-yaml.
"""
import argparse
import base64
import os
import re
import sys

import yaml


class TemplateError(Exception):
    pass


# ---------------------------------------------------------------- lexing
ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def split(src, fname):
    """Text and action pieces, with {{- and -}} whitespace trimming applied."""
    pieces, pos = [], 0
    for m in ACTION.finditer(src):
        text = src[pos:m.start()]
        if m.group(1):
            text = text.rstrip()
        pieces.append(("text", text))
        body = m.group(2).strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            pieces.append(("action", body, fname))
        pos = m.end()
        if m.group(3):
            while pos < len(src) and src[pos] in " \t\r\n":
                pos += 1
    pieces.append(("text", src[pos:]))
    return pieces


TOKEN = re.compile(r'\s*(?:(?P<str>"(?:\\.|[^"\\])*")|(?P<raw>`[^`]*`)|(?P<num>-?\d+(?:\.\d+)?)'
                   r'|(?P<field>(?:\$[A-Za-z0-9_]*)?(?:\.[A-Za-z0-9_]+)+|\$[A-Za-z0-9_]*|\.)'
                   r'|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>:=|[|(),=]))')


def tokens(expr):
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"cannot parse {expr[pos:]!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(expr) and expr[pos].isspace():
            pos += 1
    return out


# ---------------------------------------------------------------- parsing
def parse_pipeline(toks):
    """[[operand, ...], ...] for `a b | c d`; operands are tokens or nested pipelines."""
    cmds, cur, i = [], [], 0
    while i < len(toks):
        kind, val = toks[i]
        if kind == "op" and val == "|":
            cmds.append(cur)
            cur = []
        elif kind == "op" and val == "(":
            depth, j = 1, i + 1
            while j < len(toks) and depth:
                if toks[j] == ("op", "("):
                    depth += 1
                elif toks[j] == ("op", ")"):
                    depth -= 1
                j += 1
            if depth:
                raise TemplateError("unbalanced parentheses")
            cur.append(("pipe", parse_pipeline(toks[i + 1:j - 1])))
            i = j
            continue
        elif kind == "op":
            raise TemplateError(f"unexpected {val!r}")
        else:
            cur.append((kind, val))
        i += 1
    cmds.append(cur)
    if any(not c for c in cmds):
        raise TemplateError("empty command in pipeline")
    return cmds


def parse_decl(toks):
    """`$a, $b := pipeline` -> (["$a", "$b"], pipeline toks); else ([], toks)."""
    if ("op", ":=") in toks:
        k = toks.index(("op", ":="))
        names = [v for (kind, v) in toks[:k] if kind == "field"]
        return names, toks[k + 1:]
    return [], toks


def parse(pieces):
    """Nested node lists: ("text", s) ("out", pipe) ("if", [(pipe, body)...], else) ("range", names, pipe, body, else)
    ("with", pipe, body, else) ("define", name, body) ("template", name, pipe)."""
    pos = 0

    def block(stop):
        nonlocal pos
        nodes = []
        while pos < len(pieces):
            p = pieces[pos]
            pos += 1
            if p[0] == "text":
                if p[1]:
                    nodes.append(("text", p[1]))
                continue
            body, fname = p[1], p[2]
            word = body.split(None, 1)[0] if body else ""
            rest = body[len(word):].strip()
            try:
                if word in stop:
                    return nodes, word, rest
                if word == "if":
                    branches, els = [(parse_pipeline(tokens(rest)), None)], None
                    while True:
                        sub, end, erest = block({"else", "end"})
                        branches[-1] = (branches[-1][0], sub)
                        if end == "end":
                            break
                        if erest.startswith("if "):
                            branches.append((parse_pipeline(tokens(erest[3:])), None))
                            continue
                        els, end, _ = block({"end"})
                        break
                    nodes.append(("if", branches, els))
                elif word in ("range", "with"):
                    names, ptoks = parse_decl(tokens(rest))
                    sub, end, _ = block({"else", "end"})
                    els = block({"end"})[0] if end == "else" else None
                    nodes.append((word, names, parse_pipeline(ptoks), sub, els))
                elif word == "define":
                    sub, _, _ = block({"end"})
                    nodes.append(("define", _string(rest), sub))
                elif word == "template":
                    t = tokens(rest)
                    nodes.append(("template", t[0][1][1:-1], parse_pipeline(t[1:]) if len(t) > 1 else None))
                elif word in ("else", "end"):
                    raise TemplateError(f"unexpected {{{{ {word} }}}}")
                else:
                    nodes.append(("out", parse_pipeline(parse_decl(tokens(body))[1]), parse_decl(tokens(body))[0]))
            except TemplateError as e:
                raise TemplateError(f"{fname}: {{{{ {body} }}}}: {e}") from None
        if stop:
            raise TemplateError(f"missing {{{{ end }}}} (expected one of {sorted(stop)})")
        return nodes, None, None

    return block(set())[0]


def _string(lit):
    lit = lit.strip()
    if len(lit) >= 2 and lit[0] == lit[-1] == '"':
        return bytes(lit[1:-1], "utf-8").decode("unicode_escape")
    if len(lit) >= 2 and lit[0] == lit[-1] == "`":
        return lit[1:-1]
    raise TemplateError(f"expected a string, got {lit!r}")


# ---------------------------------------------------------------- evaluation
def truthy(v):
    return not (v is None or v is False or v == 0 or v == "" or v == [] or v == {})


def to_str(v):
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        return yaml.safe_dump(v, default_flow_style=True).strip()
    return str(v)


def to_yaml(v):
    if v is None:
        return "null"
    return yaml.safe_dump(v, default_flow_style=False, sort_keys=True).rstrip("\n")


def go_printf(fmt, *args):
    out, i = [], 0
    parts = re.split(r"(%[sdvq%])", fmt)
    for p in parts:
        if p == "%%":
            out.append("%")
        elif p in ("%s", "%d", "%v", "%q"):
            if i >= len(args):
                raise TemplateError(f"printf {fmt!r}: missing argument")
            a = args[i]
            i += 1
            out.append('"' + to_str(a).replace('"', '\\"') + '"' if p == "%q" else
                       str(int(a)) if p == "%d" else to_str(a))
        else:
            out.append(p)
    return "".join(out)


def required(msg, v):
    if v is None or v == "":
        raise TemplateError(f"required: {msg}")
    return v


class Renderer:
    def __init__(self, defines):
        self.defines = defines
        self.funcs = {
            "quote": lambda *a: " ".join('"' + to_str(x).replace("\\", "\\\\").replace('"', '\\"') + '"' for x in a),
            "squote": lambda *a: " ".join("'" + to_str(x) + "'" for x in a),
            "default": lambda d, v=None: v if truthy(v) else d,
            "required": required,
            "toYaml": to_yaml,
            "indent": lambda n, s: "\n".join(" " * int(n) + line for line in to_str(s).split("\n")),
            "nindent": lambda n, s: "\n" + "\n".join(" " * int(n) + line for line in to_str(s).split("\n")),
            "printf": go_printf,
            "trunc": lambda n, s: to_str(s)[:int(n)],
            "trimSuffix": lambda suf, s: to_str(s)[:-len(suf)] if suf and to_str(s).endswith(suf) else to_str(s),
            "lower": lambda s: to_str(s).lower(),
            "upper": lambda s: to_str(s).upper(),
            "replace": lambda old, new, s: to_str(s).replace(old, new),
            "join": lambda sep, lst: sep.join(to_str(x) for x in (lst or [])),
            "toString": to_str,
            "int": lambda v: int(v or 0),
            "eq": lambda a, *b: any(a == x for x in b),
            "ne": lambda a, b: a != b,
            "lt": lambda a, b: a < b,
            "gt": lambda a, b: a > b,
            "not": lambda v: not truthy(v),
            "and": lambda *a: next((x for x in a if not truthy(x)), a[-1]),
            "or": lambda *a: next((x for x in a if truthy(x)), a[-1]),
            "empty": lambda v=None: not truthy(v),
            "list": lambda *a: list(a),
            "dict": lambda *a: {a[i]: a[i + 1] for i in range(0, len(a), 2)},
            "hasKey": lambda d, k: isinstance(d, dict) and k in d,
            "b64enc": lambda s: base64.b64encode(to_str(s).encode()).decode(),
            "include": self.include,
        }

    def include(self, name, ctx):
        if name not in self.defines:
            raise TemplateError(f"include: no template named {name!r}")
        return self.run(self.defines[name], ctx, {"$": ctx})

    def field(self, path, dot, vars_):
        if path == ".":
            return dot
        if path.startswith("$"):
            name, _, rest = path.partition(".")
            if name not in vars_:
                raise TemplateError(f"undefined variable {name}")
            v, parts = vars_[name], [p for p in rest.split(".") if p]
        else:
            v, parts = dot, path.strip(".").split(".")
        for p in parts:
            if v is None:
                return None
            if not isinstance(v, dict):
                raise TemplateError(f"{path}: cannot take .{p} of a {type(v).__name__}")
            v = v.get(p)
        return v

    def operand(self, op, dot, vars_):
        kind, val = op
        if kind == "str":
            return _string(val)
        if kind == "raw":
            return val[1:-1]
        if kind == "num":
            return float(val) if "." in val else int(val)
        if kind == "field":
            return self.field(val, dot, vars_)
        if kind == "pipe":
            return self.pipeline(val, dot, vars_)
        if kind == "ident":
            if val in ("true", "false"):
                return val == "true"
            if val == "nil":
                return None
            return self.call(val, [], dot, vars_)
        raise TemplateError(f"unexpected {val!r}")

    def call(self, name, args, dot, vars_):
        if name not in self.funcs:
            raise TemplateError(f"function {name!r} is not in the supported subset")
        try:
            return self.funcs[name](*args)
        except TypeError as e:
            raise TemplateError(f"{name}: {e}") from None

    def pipeline(self, cmds, dot, vars_, piped=None, have=False):
        for cmd in cmds:
            head = cmd[0]
            if head[0] == "ident" and head[1] not in ("true", "false", "nil"):
                args = [self.operand(o, dot, vars_) for o in cmd[1:]]
                if have:
                    args.append(piped)
                piped = self.call(head[1], args, dot, vars_)
            else:
                if len(cmd) != 1 or have:
                    raise TemplateError("a value cannot take arguments")
                piped = self.operand(head, dot, vars_)
            have = True
        return piped

    def run(self, nodes, dot, vars_):
        out = []
        for n in nodes:
            t = n[0]
            if t == "text":
                out.append(n[1])
            elif t == "out":
                v = self.pipeline(n[1], dot, vars_)
                if n[2]:
                    vars_[n[2][0]] = v
                else:
                    out.append(to_str(v))
            elif t == "if":
                for cond, body in n[1]:
                    if truthy(self.pipeline(cond, dot, vars_)):
                        out.append(self.run(body, dot, dict(vars_)))
                        break
                else:
                    if n[2] is not None:
                        out.append(self.run(n[2], dot, dict(vars_)))
            elif t == "with":
                v = self.pipeline(n[2], dot, vars_)
                if truthy(v):
                    out.append(self.run(n[3], v, dict(vars_)))
                elif n[4] is not None:
                    out.append(self.run(n[4], dot, dict(vars_)))
            elif t == "range":
                v = self.pipeline(n[2], dot, vars_)
                items = sorted(v.items()) if isinstance(v, dict) else list(enumerate(v or []))
                if not items and n[4] is not None:
                    out.append(self.run(n[4], dot, dict(vars_)))
                for k, item in items:
                    inner = dict(vars_)
                    if len(n[1]) == 2:
                        inner[n[1][0]], inner[n[1][1]] = k, item
                    elif len(n[1]) == 1:
                        inner[n[1][0]] = item
                    out.append(self.run(n[3], item, inner))
            elif t == "define":
                pass
            elif t == "template":
                ctx = self.pipeline(n[2], dot, vars_) if n[2] else None
                out.append(self.include(n[1], ctx))
        return "".join(out)


def collect_defines(nodes, defines):
    for n in nodes:
        if n[0] == "define":
            defines[n[1]] = n[2]


def merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def set_value(values, assignment):
    key, sep, raw = assignment.partition("=")
    if not sep:
        raise TemplateError(f"--set {assignment!r}: expected KEY=VALUE")
    v = yaml.safe_load(raw) if raw != "" else ""
    if isinstance(v, (dict, list)):
        v = raw
    d = values
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = v


def render_chart(chart, value_files=(), sets=(), name="release-name", namespace="default"):
    meta = yaml.safe_load(open(os.path.join(chart, "Chart.yaml")))
    values = yaml.safe_load(open(os.path.join(chart, "values.yaml"))) or {}
    for f in value_files:
        merge(values, yaml.safe_load(open(f)) or {})
    for s in sets:
        set_value(values, s)
    tdir = os.path.join(chart, "templates")
    files = sorted(os.listdir(tdir))
    trees, defines = {}, {}
    for f in files:
        if f.endswith((".yaml", ".tpl", ".yml")):
            trees[f] = parse(split(open(os.path.join(tdir, f)).read(), f"{meta['name']}/templates/{f}"))
            collect_defines(trees[f], defines)
    root = {"Values": values, "Release": {"Name": name, "Namespace": namespace, "Service": "Helm"},
            "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta.get("appVersion", "")}}
    r = Renderer(defines)
    out = []
    for f in files:
        if f.startswith("_") or not f.endswith((".yaml", ".yml")):
            continue
        try:
            text = r.run(trees[f], root, {"$": root})
        except TemplateError as e:
            raise TemplateError(f"{meta['name']}/templates/{f}: {e}") from None
        if text.strip():
            out.append(f"---\n# Source: {meta['name']}/templates/{f}\n{text.strip()}\n")
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chart")
    ap.add_argument("-f", "--values", action="append", default=[])
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--name", default="coffer")
    ap.add_argument("--namespace", default="coffer")
    a = ap.parse_args()
    try:
        sys.stdout.write(render_chart(a.chart, a.values, a.set, a.name, a.namespace))
    except (TemplateError, OSError, yaml.YAMLError) as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
