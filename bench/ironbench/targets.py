"""The headline figures of each scenario and the targets of the benchmark issue they answer."""

import math

from . import common


def headline(name, r):
    """The figures a scenario must produce (a smoke run checks only that they are there)."""
    if name == "gateway-hop":
        out = {}
        for c, by in r["concurrency"].items():
            h = by["headline"]
            out[f"c={c} gateway/nginx requests/s"] = h["gateway_over_nginx_rps"]["median"]
            out[f"c={c} gateway adds p50 µs"] = h["gateway_adds_p50_us"]["median"]
            out[f"c={c} gateway adds p99 µs"] = h["gateway_adds_p99_us"]["median"]
            out[f"c={c} gateway CPU µs per call"] = by["targets"]["gateway"]["cpu_us_per_call"]["median"]
            out[f"c={c} nginx CPU µs per call"] = by["targets"]["nginx"]["cpu_us_per_call"]["median"]
        return out
    if name == "cold-start":
        out = {}
        for prefix, by in (("", r["templates"]), ("sandboxed ", r.get("sandboxed") or {})):
            for lang, t in by.items():
                out[f"{prefix}{lang} p50 ms"] = t["p50_ms"]
                out[f"{prefix}{lang} p99 ms"] = t["p99_ms"]
        return out
    if name == "async":
        out = {}
        for backend, b in r["backends"].items():
            out[f"{backend} enqueue/s (no workers)"] = b["enqueue_no_workers_rps"]["median"]
            out[f"{backend} end-to-end jobs/s"] = b["end_to_end_jobs_per_s"]["median"]
        return out
    if name == "density":
        return {"list p50 ms": r["list"]["p50_ms"],
                "gateway RSS MiB with all functions": common.mib(r["gateway_rss_kib_all_functions"]),
                "RSS KiB per warm replica": r["warm"]["rss_kib_per_replica"],
                "PSS KiB per warm replica": r["warm"]["pss_kib_per_replica"]}
    if name == "idle-footprint":
        return {"empty total RSS MiB": common.mib(r["empty"]["total_rss_kib"]),
                "examples total RSS MiB": common.mib(r["examples"]["total_rss_kib"]),
                "examples total PSS MiB": common.mib(r["examples"]["total_pss_kib"])}
    if name == "sustained":
        return {"achieved calls/s": r["achieved_rate"], "p50 µs": r["p50_us"], "p99 µs": r["p99_us"],
                "gateway RSS MiB start": common.mib(r["gateway_rss_kib_start"]),
                "gateway RSS MiB end": common.mib(r["gateway_rss_kib_end"])}
    raise KeyError(name)


def check(name, r):
    """Raises unless every headline figure of `r` is a finite number."""
    figures = headline(name, r)
    if not figures:
        raise common.BenchError(f"{name} produced no figures")
    for k, v in figures.items():
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise common.BenchError(f"{name}: figure '{k}' is {v!r}, not a number")
    return figures


def _verdict(value, limit, lower_is_better, unit, digits=1):
    met = value <= limit if lower_is_better else value >= limit
    gap = abs(value - limit)
    pct = gap / limit * 100 if limit else 0
    f = f"{{:,.{digits}f}}"
    if met:
        return "met", f"met ({f.format(gap)} {unit} to spare)".replace("  ", " ")
    return "missed", f"**missed** by {f.format(gap)} {unit} ({pct:.0f} %)".replace("  ", " ")


def evaluate(results):
    """[(target, measured, verdict text, met?)] for the scenarios present in `results`."""
    rows = []
    hop = results.get("gateway-hop")
    if hop:
        c1 = hop["concurrency"].get("1", {}).get("headline")
        if c1:
            v = c1["gateway_adds_p50_us"]["median"]
            rows.append(("gateway hop adds ≤ 20 µs at p50, c=1", f"{v:+.0f} µs", *_verdict(v, 20, True, "µs", 0)))
            v = c1["gateway_adds_p99_us"]["median"]
            rows.append(("gateway hop adds ≤ 60 µs at p99, c=1", f"{v:+.0f} µs", *_verdict(v, 60, True, "µs", 0)))
        for c, by in hop["concurrency"].items():
            v = by["headline"]["gateway_over_nginx_rps"]["median"]
            rows.append((f"gateway throughput ≥ 1.0x nginx, c={c}", f"{v:.2f}x", *_verdict(v, 1.0, False, "x", 2)))
    cold = results.get("cold-start")
    if cold:
        for how, t in (("", cold["templates"]), (", sandboxed", cold.get("sandboxed") or {})):
            if "binary" in t:
                v = t["binary"]["p50_ms"]
                rows.append((f"cold start, native (binary){how} ≤ 5 ms p50", f"{v:.1f} ms",
                             *_verdict(v, 5, True, "ms")))
            if "python3-http" in t:
                v = t["python3-http"]["p50_ms"]
                rows.append((f"cold start, python3-http{how} ≤ 50 ms p50", f"{v:.1f} ms",
                             *_verdict(v, 50, True, "ms")))
    jobs = results.get("async")
    if jobs:
        for backend, b in jobs["backends"].items():
            v = b["end_to_end_jobs_per_s"]["median"]
            rows.append((f"async ≥ 10,000 jobs/s end to end ({backend})", f"{v:,.0f}/s",
                         *_verdict(v, 10_000, False, "jobs/s", 0)))
    idle = results.get("idle-footprint")
    if idle:
        v = common.mib(idle["empty"]["total_rss_kib"])
        rows.append(("idle platform ≤ 20 MiB RSS (no functions)", f"{v:.1f} MiB", *_verdict(v, 20, True, "MiB")))
    density = results.get("density")
    if density:
        n = density["setup"]["functions"]
        v = density["list"]["p50_ms"]
        note = "" if n >= 1000 else f" (only {n} functions: a quick run)"
        rows.append((f"1,000 functions listed in ≤ 10 ms{note}", f"{v:.2f} ms", *_verdict(v, 10, True, "ms", 2)))
    return rows
