#!/usr/bin/env python3
"""Checks for tests/integration/grafana.sh (python3's standard library only).

  check.py files DIR FAMILIES URL UID      the files of one export: dashboards, provisioning
  check.py names DIR                       every metric name the dashboards query, one a line
  check.py selftest                        the name extractor on known expressions
  check.py scraped FILE...                 the metric names in Prometheus text files
  check.py promql PROM DIR TIMES GPU...    every query evaluated by a real Prometheus

Each check prints what it found and exits 1 with the reasons when something is wrong.
"""
import json
import os
import re
import sys
import urllib.parse
import urllib.request

FAMILIES = ("inference", "storage", "vector", "node")
PANEL_TYPES = ("timeseries", "stat")


def fail(problems):
    for p in problems:
        print("  problem:", p)
    sys.exit(1 if problems else 0)


# ---- a YAML subset: nested mappings and lists of mappings, plain or double-quoted scalars,
# comments. Enough for the provisioning files (and strict: anything else is an error).

def yaml_scalar(s):
    s = s.strip()
    if s.startswith('"'):
        if not s.endswith('"') or len(s) < 2:
            raise ValueError("unterminated string: " + s)
        return json.loads(s)  # the escapes used (\" \\ \xNN) are checked by the caller
    if s in ("true", "false"):
        return s == "true"
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    if not s or s[0] in "'[{&*!|>%@`" or ": " in s or " #" in s:
        raise ValueError("unsupported scalar: " + s)
    return s


def yaml_parse(text):
    lines = []
    for n, raw in enumerate(text.split("\n"), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if "\t" in raw:
            raise ValueError("line %d: a tab" % n)
        lines.append((len(raw) - len(raw.lstrip(" ")), raw.strip(), n))
    pos = 0

    def block(indent):
        nonlocal pos
        if pos < len(lines) and lines[pos][1].startswith("- "):
            out = []
            while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                ind, txt, n = lines[pos]
                lines[pos] = (ind + 2, txt[2:], n)  # the item's first key, at the item's indent
                out.append(block(ind + 2))
            return out
        out = {}
        while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("- "):
            _, txt, n = lines[pos]
            m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*):(?: (.*))?", txt)
            if not m:
                raise ValueError("line %d: not KEY: VALUE: %s" % (n, txt))
            if m.group(1) in out:
                raise ValueError("line %d: %s given twice" % (n, m.group(1)))
            pos += 1
            if m.group(2) is not None:
                out[m.group(1)] = yaml_scalar(m.group(2))
            elif pos < len(lines) and lines[pos][0] > indent:
                out[m.group(1)] = block(lines[pos][0])
            elif pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                out[m.group(1)] = block(indent)
            else:
                raise ValueError("line %d: %s has no value" % (n, m.group(1)))
        return out

    doc = block(0)
    if pos != len(lines):
        raise ValueError("line %d: unexpected indentation" % lines[pos][2])
    return doc


# ---- dashboards

def check_dashboard(path, family, uid):
    problems = []
    try:
        d = json.load(open(path))
    except ValueError as e:
        return ["%s: not JSON: %s" % (path, e)], None
    where = os.path.basename(path)
    if d.get("uid") != "sonde-" + family:
        problems.append("%s: uid %r, not sonde-%s" % (where, d.get("uid"), family))
    if not isinstance(d.get("title"), str) or not d["title"]:
        problems.append(where + ": no title")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        problems.append(where + ": schemaVersion %r" % d.get("schemaVersion"))
    if "sonde" not in d.get("tags", []):
        problems.append(where + ": no tag sonde")
    if not (d.get("time", {}).get("from") and d.get("refresh")):
        problems.append(where + ": no time range or refresh")
    var = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = var.get("datasource", {})
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus" or \
            ds.get("current", {}).get("value") != uid:
        problems.append("%s: datasource variable %r (default uid should be %s)" % (where, ds, uid))
    for name in ("session", "component"):
        v = var.get(name, {})
        if v.get("type") != "query" or not v.get("query", {}).get("query", "").startswith(
                "label_values(") or v.get("datasource", {}).get("uid") != "${datasource}":
            problems.append("%s: variable %s: %r" % (where, name, v))
    panels = d.get("panels")
    if not isinstance(panels, list) or len(panels) < 4:
        return problems + [where + ": fewer than 4 panels"], d
    ids, cells = set(), set()
    for p in panels:
        t = "%s panel %r" % (where, p.get("title"))
        if p.get("type") not in PANEL_TYPES:
            problems.append("%s: type %r" % (t, p.get("type")))
        if not p.get("title"):
            problems.append(t + ": no title")
        if p.get("id") in ids:
            problems.append("%s: id %r again" % (t, p.get("id")))
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["w"] < 1 or g["h"] < 1 or \
                g["x"] < 0 or g["x"] + g["w"] > 24 or g["y"] < 0:
            problems.append("%s: gridPos %r" % (t, g))
        else:
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            if mine & cells:
                problems.append(t + ": overlaps another panel")
            cells |= mine
        if p.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
            problems.append("%s: datasource %r" % (t, p.get("datasource")))
        if not isinstance(p.get("fieldConfig", {}).get("defaults", {}).get("unit"), str):
            problems.append(t + ": no unit")
        targets = p.get("targets", [])
        if not targets:
            problems.append(t + ": no target")
        refs = [x.get("refId") for x in targets]
        if len(set(refs)) != len(refs) or not all(refs):
            problems.append("%s: refIds %r" % (t, refs))
        for x in targets:
            if not isinstance(x.get("expr"), str) or not x["expr"].strip():
                problems.append(t + ": an empty expr")
            if x.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
                problems.append("%s: target datasource %r" % (t, x.get("datasource")))
            if "legendFormat" not in x:
                problems.append(t + ": a target without legendFormat")
    return problems, d


def cmd_files(args):
    top, fams, url, uid = args[0], args[1].split(","), args[2], args[3]
    problems = []
    dash = os.path.join(top, "dashboards")
    have = sorted(os.listdir(dash))
    want = sorted("sonde-%s.json" % f for f in fams)
    if have != want:
        problems.append("dashboards %r, expected %r" % (have, want))
    uids = []
    for f in fams:
        pr, d = check_dashboard(os.path.join(dash, "sonde-%s.json" % f), f, uid)
        problems += pr
        if d:
            uids.append(d.get("uid"))
            print("  %s: %d panels, %d targets" % (f, len(d.get("panels", [])),
                                                 sum(len(p.get("targets", [])) for p in d.get("panels", []))))
    if len(set(uids)) != len(uids):
        problems.append("dashboard uids repeat: %r" % uids)
    left = [os.path.join(r, n) for r, _, ns in os.walk(top) for n in ns if ".tmp" in n]
    if left:
        problems.append("temporary files left: %r" % left)
    try:
        ds = yaml_parse(open(os.path.join(top, "provisioning/datasources/sonde.yaml")).read())
        src = ds["datasources"]
        if ds.get("apiVersion") != 1 or len(src) != 1 or src[0].get("type") != "prometheus" or \
                src[0].get("uid") != uid or src[0].get("url") != url or src[0].get("access") != "proxy" or \
                not src[0].get("name"):
            problems.append("datasources/sonde.yaml: %r" % ds)
        db = yaml_parse(open(os.path.join(top, "provisioning/dashboards/sonde.yaml")).read())
        pv = db["providers"]
        path = pv[0].get("options", {}).get("path", "") if len(pv) == 1 else ""
        if db.get("apiVersion") != 1 or len(pv) != 1 or pv[0].get("type") != "file" or \
                not os.path.isabs(path) or os.path.realpath(path) != os.path.realpath(dash):
            problems.append("dashboards/sonde.yaml: %r (path should be %s)" % (db, os.path.realpath(dash)))
        print("  provisioning: datasource %s -> %s, dashboards from %s" % (uid, url, path))
        try:
            import yaml  # a cross-check where PyYAML is installed; the parse above is what counts
            for f in ("datasources", "dashboards"):
                y = yaml.safe_load(open(os.path.join(top, "provisioning", f, "sonde.yaml")))
                if y != (ds if f == "datasources" else db):
                    problems.append("PyYAML reads %s/sonde.yaml differently: %r" % (f, y))
        except ImportError:
            print("  (PyYAML absent: the ad-hoc parse only)")
    except (OSError, ValueError, KeyError, TypeError) as e:
        problems.append("provisioning: %s: %s" % (type(e).__name__, e))
    fail(problems)


# ---- metric names in PromQL

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN"}


def expr_names(expr):
    """Metric names an expression selects: identifiers that are neither functions, nor
    keywords, nor label names (in {...} or in by/without/on/ignoring/group_x (...)), nor in
    strings, durations or Grafana variables."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)                # strings
    e = re.sub(r"\{[^{}]*\}", "{}", e)                          # label matchers
    e = re.sub(r"\[[^\[\]]*\]", "[]", e)                        # range and subquery windows
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)                          # $variables
    names = set()
    for m in re.finditer(r"(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\(?)", e):
        if m.group(2) == "(" or m.group(1) in KEYWORDS:
            continue
        names.add(m.group(1))
    return names


def label_values_names(q):
    m = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_]\w*\s*\)\s*", q)
    if not m:
        return set() if re.fullmatch(r"\s*label_values\(\s*\w+\s*\)\s*", q) else None
    return expr_names(m.group(1))


def dashboard_queries(top):
    """(family, kind, query) of every target and query variable of the dashboards in top."""
    out = []
    dash = os.path.join(top, "dashboards")
    for f in sorted(os.listdir(dash)):
        d = json.load(open(os.path.join(dash, f)))
        fam = d["uid"].replace("sonde-", "")
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                out.append((fam, "var " + v["name"], v["query"]["query"]))
        for p in d["panels"]:
            for t in p["targets"]:
                out.append((fam, p["title"], t["expr"]))
    return out


def all_names(top):
    names = set()
    for _, kind, q in dashboard_queries(top):
        n = label_values_names(q) if kind.startswith("var ") else expr_names(q)
        if not n and kind.startswith("var "):
            raise SystemExit("cannot read the variable query %r" % q)
        names |= n
    return names


def cmd_names(args):
    for n in sorted(all_names(args[0])):
        print(n)


def cmd_selftest(_):
    cases = {
        'histogram_quantile(0.99, sum by (le, model_name) (rate(a_bucket{x="y", le!="1"}[5m])) '
        'or sum(rate(b:c[$__rate_interval])))': {"a_bucket", "b:c"},
        'sum by (component) (rate(x_total{session=~"$session",component=~"$component"}[1m])) / '
        'sum by (component) (rate(y_total{session=~"$session"}[1m]))': {"x_total", "y_total"},
        "node_load1": {"node_load1"},
        'm1{a="b"} - m2 offset 5m > bool 0': {"m1", "m2"},
        '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m])) * 1e9': {"node_cpu_seconds_total"},
        "max by (model_name) (vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc)":
            {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"},
        'count(up{job="a"} == 1) without (instance)': {"up"},
    }
    problems = []
    for e, want in cases.items():
        got = expr_names(e)
        print("  %s -> %s" % (e[:70], sorted(got)))
        if got != want:
            problems.append("%r: %r, expected %r" % (e, got, want))
    lv = label_values_names('label_values(sonde_up{session=~"$session"}, component)')
    if lv != {"sonde_up"}:
        problems.append("label_values: %r" % lv)
    fail(problems)


# ---- scraped text

def scraped_names(paths):
    names = set()
    for p in paths:
        for line in open(p, errors="replace"):
            line = line.strip()
            if line and not line.startswith("#"):
                names.add(re.split(r"[{\s]", line, 1)[0])
    return names


def cmd_scraped(args):
    for n in sorted(scraped_names(args)):
        print(n)


# ---- a real Prometheus evaluates every query

def prom_get(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def grafana_to_promql(q):
    """What Grafana sends for the dashboards' defaults: every variable at All (.*) and a
    5 s $__rate_interval (4 x the test's 1 s scrape interval, plus one)."""
    return q.replace("$__rate_interval", "5s").replace("$session", ".*") \
        .replace("$component", ".*").replace("$instance", ".*")


def cmd_promql(args):
    base, top, times, gpu = args[0], args[1], [float(t) for t in args[2].split(",")], set(args[3:])
    problems, empty_gpu, n = [], [], 0
    # the check can fail: Prometheus rejects a broken expression, and a name nobody emits is empty
    bad = prom_get(base, "/api/v1/query", {"query": "sum(rate(sonde_up[5s]", "time": times[0]})
    if bad.get("status") != "error":
        problems.append("Prometheus accepted a broken expression: %r" % bad)
    none = prom_get(base, "/api/v1/query", {"query": "sonde_no_such_metric_total", "time": times[0]})
    if none.get("status") != "success" or none["data"]["result"]:
        problems.append("a name nobody emits gave %r" % none)
    for fam, kind, q in dashboard_queries(top):
        n += 1
        q2 = grafana_to_promql(q)
        names = label_values_names(q) if kind.startswith("var ") else expr_names(q)
        gpu_only = bool(names) and names <= gpu
        found, errors = 0, []
        for t in times:
            if kind.startswith("var "):
                m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q2)
                r = prom_get(base, "/api/v1/label/%s/values" % m.group(2),
                             {"match[]": m.group(1), "start": t - 5, "end": t})
                vals = r.get("data") or []
            else:
                r = prom_get(base, "/api/v1/query", {"query": q2, "time": t})
                vals = (r.get("data") or {}).get("result") or []
            if r.get("status") != "success":
                errors.append(r.get("error", r))
            found += len(vals)
        if errors:
            problems.append("%s / %s: %s: Prometheus says %s" % (fam, kind, q2, errors[0]))
        elif not found and gpu_only:
            empty_gpu.append("%s / %s" % (fam, kind))
        elif not found:
            problems.append("%s / %s: %s: no series at any of the times" % (fam, kind, q2))
    print("  %d queries evaluated at %d times; empty (GPU only, no GPU here): %d" % (n, len(times), len(empty_gpu)))
    for e in empty_gpu:
        print("    not checkable here (needs a GPU):", e)
    fail(problems)


def main():
    cmds = {"files": cmd_files, "names": cmd_names, "selftest": cmd_selftest,
            "scraped": cmd_scraped, "promql": cmd_promql}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
