"""Cold start per template: scale from zero to the first response byte, measured at the client.

Deploys one small function per template (binary: the native echo; bash-streaming, node,
python3-http: one-line handlers; rust: the template's own example function), and for each run
scales the function to zero, waits until its replica is gone and 300 ms more (a function at zero
has been idle; the spare sandbox, which scaling to zero starts building, is ready by then), then
times one call from sending the request to the first byte of the answer. The runs go round the templates in turn, so the
machine's noise spreads over all of them alike.
"""

import http.client
import math
import os
import shutil
import statistics
import time

from . import common, svg

NAME = "cold-start"
# How long a function stays at zero before the measured call.
IDLE_S = 0.3

TEMPLATES = {
    # function name: (lang, handler folder)
    "cold-binary": ("binary", "binary"),
    "cold-bash": ("bash-streaming", "bash"),
    "cold-node": ("node", "node"),
    "cold-python": ("python3-http", "python"),
    "cold-rust": ("rust", "rust"),
}


def project(work):
    root = os.path.join(work, "project-cold")
    for _, folder in TEMPLATES.values():
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    common.compile_native_echo(os.path.join(root, "binary", "handler"))
    shutil.rmtree(os.path.join(root, "rust"))
    shutil.copytree(os.path.join(common.REPO, "templates", "rust", "function"), os.path.join(root, "rust"))
    files = {
        "bash/handler.sh": "echo hello\n",
        "node/handler.js": "module.exports = async () => 'hello';\n",
        "python/handler.py": "def handle(event, context):\n    return 'hello'\n",
    }
    for rel, text in files.items():
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
    with open(os.path.join(root, "stack.yml"), "w") as f:
        f.write("provider:\n  name: openfaas\nfunctions:\n")
        for name, (lang, folder) in TEMPLATES.items():
            f.write(f"  {name}:\n    lang: {lang}\n    handler: ./{folder}\n    image: bench/{name}:1\n")
    return root


def first_byte(port, function):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.perf_counter()
        conn.request("GET", f"/function/{function}")
        response = conn.getresponse()
        response.read(1)
        took = time.perf_counter() - started
        if response.status != 200:
            raise common.BenchError(f"{function} answered {response.status} from zero")
        return took
    finally:
        conn.close()


def measure(ctx, sandbox, runs, spare="on"):
    """Per template, `runs` cold starts on a platform started with `--sandbox SANDBOX
    --spare-sandbox SPARE`."""
    args = ["--sandbox", sandbox, "--spare-sandbox", spare]
    if spare != "on":
        sandbox = f"{sandbox}-spare-{spare}"
    platform = ctx.platform(f"serve-sandbox-{sandbox}", args)
    common.log(f"cold start (sandbox {sandbox}): building one function per template (the rust one compiles "
               "with cargo)")
    platform.up(project(os.path.join(ctx.work, f"sandbox-{sandbox}")))
    times = {name: [] for name in TEMPLATES}
    for i in range(runs):
        common.log(f"cold start (sandbox {sandbox}): run {i + 1}/{runs}")
        for name in TEMPLATES:
            platform.scale(name, 0)
            deadline = time.time() + 30
            while platform.api("GET", f"/system/function/{name}").get("instances"):
                if time.time() > deadline:
                    raise common.BenchError(f"{name} still has replicas 30 s after scaling to zero")
                time.sleep(0.02)
            # A function at zero has been idle (15 minutes by default): give its spare, which
            # scaling to zero starts building, the moment it needs before the call.
            time.sleep(IDLE_S)
            times[name].append(first_byte(platform.port, name) * 1000)
    ctx.release(platform)
    results = {}
    for name, ms in times.items():
        results[TEMPLATES[name][0]] = {
            "p50_ms": statistics.median(ms), "p99_ms": common.percentile(ms, 99),
            "p25_ms": common.percentile(ms, 25), "p75_ms": common.percentile(ms, 75),
            "min_ms": min(ms), "max_ms": max(ms), "runs_ms": ms,
        }
    return results


def sandbox_supported(ctx):
    """Whether `serve --sandbox on` starts here (root, bubblewrap, cgroups)."""
    try:
        ctx.release(ctx.platform("probe-sandbox", ["--sandbox", "on"]))
        return True
    except common.BenchError:
        return False


def run(ctx):
    common.require("rustc", "node", "cargo")
    runs = 3 if ctx.quick else 20
    os.makedirs(ctx.work, exist_ok=True)
    result = {"setup": {"runs": runs}, "templates": measure(ctx, "off", runs)}
    if sandbox_supported(ctx):
        result["sandboxed"] = measure(ctx, "on", runs)
        result["sandboxed_no_spare"] = measure(ctx, "on", runs, spare="off")
        result["sandboxed_warm"] = measure(ctx, "on", runs, spare="warm")
    else:
        common.log("cold start: this machine cannot run the sandbox; measured plain processes only")
    return result


def variants(result):
    """(label, per-template figures) for each way the replicas ran."""
    out = [("plain process", result["templates"])]
    if result.get("sandboxed"):
        out.append(("sandboxed", result["sandboxed"]))
    if result.get("sandboxed_no_spare"):
        out.append(("sandboxed, no spare", result["sandboxed_no_spare"]))
    if result.get("sandboxed_warm"):
        out.append(("sandboxed, warm spare", result["sandboxed_warm"]))
    return out


def report(result):
    lines = [f"scale from zero to the first response byte, {result['setup']['runs']} runs per template; "
             "plain processes (`--sandbox off`) and, where this machine supports it, the sandbox "
             "(`--sandbox on`, the default as root: a function at zero keeps a spare sandbox) and the "
             "sandbox made per start (`--spare-sandbox off`) and the warm spare (`--spare-sandbox warm`)",
             "", "| template | replica | p50 | p99 | p25–p75 | min | max |", "|---|---|---:|---:|---:|---:|---:|"]
    for label, templates in variants(result):
        for lang, r in templates.items():
            lines.append(f"| {lang} | {label} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | "
                         f"{r['p25_ms']:.1f}–{r['p75_ms']:.1f} ms | {r['min_ms']:.1f} ms | {r['max_ms']:.1f} ms |")
    return lines


# The targets for the median, drawn on the chart.
TARGET_P50_MS = {"binary": 5, "python3-http": 50}
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]


def charts(result, out_dir):
    short = {"plain process": "plain", "sandboxed": "sandbox", "sandboxed, no spare": "sandbox, no spare",
             "sandboxed, warm spare": "sandbox, warm spare"}
    templates = {f"{lang} ({short[label]})": (lang, r)
                 for label, by in variants(result) for lang, r in by.items()}
    everything = [v for _, r in templates.values() for v in r["runs_ms"]]
    axis = svg.LogAxis(min(everything), max(everything))
    # Bins of equal width on the log axis: 12 per decade.
    lo, hi = axis.lo, axis.hi
    edges = [lo * 10 ** (k / 12) for k in range(int(round(12 * math.log10(hi / lo))) + 1)]
    row_h, top = 90, 50
    fig = svg.Figure(720, top + row_h * len(templates) + 50,
                     f"Cold start: scale from zero to first byte, {result['setup']['runs']} runs per template")
    for k, (title, (lang, r)) in enumerate(templates.items()):
        counts = [sum(1 for v in r["runs_ms"] if a <= v < b or (b == edges[-1] and v == b))
                  for a, b in zip(edges, edges[1:])]
        last = k == len(templates) - 1
        panel = fig.panel(170, top + k * row_h, 520, row_h - 30, "", axis,
                          svg.LinearAxis(0, max(counts), ticks=2, integer=True),
                          x_label="milliseconds (log scale)" if last else "", x_ticks=True)
        fig.text(15, top + k * row_h + 25, title, size=12, weight="bold")
        fig.text(15, top + k * row_h + 40, f"p50 {r['p50_ms']:.1f} ms", size=10, color="#555")
        fig.text(15, top + k * row_h + 53, f"p99 {r['p99_ms']:.1f} ms", size=10, color="#555")
        for (a, b), n in zip(zip(edges, edges[1:]), counts):
            if n:
                panel.bar(a, b, n, COLORS[k % len(COLORS)])
        panel.vline(r["p50_ms"], "#222", "p50")
        if lang in TARGET_P50_MS:
            panel.vline(TARGET_P50_MS[lang], "#d62728", f"target {TARGET_P50_MS[lang]} ms",
                        dash="2,3", label_below=True)
    fig.text(15, top + row_h * len(templates) + 35, "bars: runs per bin (12 bins per decade); dashed black line: the median; dotted red line: the target for the median",
             size=10, color="#555")
    fig.save(os.path.join(out_dir, "cold-start.svg"))
