"""Sustained load: a fixed rate of calls through the gateway to the native echo (pinned to one
replica) for minutes, from an open-loop generator (bench/ironbench/loadgen.py), with each
second's latency and the gateway's RSS sampled every second. A leak shows as RSS that keeps
growing; a stall as a second whose p99 stands out.
"""

import os

from . import common, loadgen, svg

NAME = "sustained"
PINNED = {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "1"}


def run(ctx):
    common.require("rustc")
    seconds = 10 if ctx.quick else int(ctx.minutes * 60)
    rate = ctx.rate
    platform = ctx.platform()
    platform.up(common.echo_project(ctx.work, labels=PINNED))
    common.wait_http(f"{platform.url}/function/echo")
    start_memory = platform.memory()
    common.log(f"sustained: {rate} calls/s for {seconds} s")
    cpu_before, _ = common.proc_usage([platform.pid])
    out = loadgen.run_open_loop("127.0.0.1", platform.port, "/function/echo", rate, seconds,
                                lambda: common.memory_kib(platform.pid)[0])
    cpu_after, _ = common.proc_usage([platform.pid])
    end_memory = platform.memory()
    if out["errors"]:
        common.log(f"sustained: {out['errors']} errors: {out['error_kinds']}; the gateway's log ends with:\n"
                   f"{platform.log_tail()}")
    lat = out["all_us"]
    calls = len(lat)
    if not calls:
        raise common.BenchError("sustained: no call was answered")
    rss = out["samples"]
    return {
        "setup": {"rate": rate, "seconds": seconds, "replicas": 1,
                  "generator": "bench/ironbench/loadgen.py (open loop, keep-alive pool up to 512 connections)"},
        "calls": calls,
        "errors": out["errors"],
        "error_kinds": out["error_kinds"],
        "achieved_rate": calls / seconds,
        "connections_used": out["connections"],
        "p50_us": common.percentile(lat, 50),
        "p99_us": common.percentile(lat, 99),
        "p99.9_us": common.percentile(lat, 99.9),
        "max_us": lat[-1],
        "worst_second_p99_us": max(s["p99_us"] or 0 for s in out["per_second"]),
        "worst_schedule_lag_ms": max(s["schedule_lag_ms"] for s in out["per_second"]),
        "gateway_cpu_us_per_call": (cpu_after - cpu_before) * 1e6 / calls,
        "gateway_rss_kib_start": start_memory["gateway_rss_kib"],
        "gateway_rss_kib_end": end_memory["gateway_rss_kib"],
        "gateway_rss_kib_max": max(rss),
        "replica_rss_kib_start": start_memory["children_rss_kib"],
        "replica_rss_kib_end": end_memory["children_rss_kib"],
        "per_second": out["per_second"],
        "gateway_rss_kib_per_second": rss,
    }


def report(r):
    s = r["setup"]
    mib = common.mib
    return [
        f"{s['rate']:,} calls/s for {s['seconds']} s through the gateway to the native echo (1 replica); {s['generator']}",
        "",
        "| calls | errors | achieved rate | p50 | p99 | p99.9 | max | worst second's p99 | gateway CPU per call | gateway RSS start → end (max) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['calls']:,} | {r['errors']} | {r['achieved_rate']:,.0f}/s | {r['p50_us']:.0f} µs | {r['p99_us']:.0f} µs | "
        f"{r['p99.9_us']:.0f} µs | {r['max_us'] / 1000:.1f} ms | {r['worst_second_p99_us']:.0f} µs | "
        f"{r['gateway_cpu_us_per_call']:.1f} µs | {mib(r['gateway_rss_kib_start']):.1f} → "
        f"{mib(r['gateway_rss_kib_end']):.1f} MiB ({mib(r['gateway_rss_kib_max']):.1f}) |",
        "",
        f"generator: at most {r['connections_used']} connections open; worst lateness of a send against its "
        f"schedule {r['worst_schedule_lag_ms']:.1f} ms",
    ] + ([f"errors: " + "; ".join(f"{k} ×{n}" for k, n in r["error_kinds"].items())] if r["errors"] else [])


def charts(r, out_dir):
    per = [p for p in r["per_second"] if p["calls"]]
    seconds = r["setup"]["seconds"]
    values = [p[k] for p in per for k in ("p50_us", "p99_us", "max_us")]
    fig = svg.Figure(760, 520, f"Sustained load: {r['setup']['rate']:,} calls/s through the gateway for {seconds} s")
    xaxis = svg.LinearAxis(0, seconds)
    panel = fig.panel(80, 50, 640, 270, "latency per second (open loop, from send to last byte)", xaxis,
                      svg.LogAxis(min(values), max(values)), y_label="latency (µs)")
    colors = {"p50_us": "#1f77b4", "p99_us": "#ff7f0e", "max_us": "#bbbbbb"}
    for key in ("max_us", "p99_us", "p50_us"):
        panel.line([(p["second"] + 0.5, p[key]) for p in per], colors[key], width=1.4)
    rss = [common.mib(v) for v in r["gateway_rss_kib_per_second"]]
    low, high = min(rss), max(rss)
    panel2 = fig.panel(80, 370, 640, 90, "gateway RSS", xaxis,
                       svg.LinearAxis(max(0.0, low - 1), high + 1, ticks=3), x_label="seconds", y_label="MiB")
    panel2.line([(i, v) for i, v in enumerate(rss)], "#2ca02c", width=1.6)
    fig.legend([("p50", colors["p50_us"]), ("p99", colors["p99_us"]), ("max", colors["max_us"]),
                ("gateway RSS", "#2ca02c")], 80, 505)
    fig.save(os.path.join(out_dir, "sustained.svg"))
