"""Density: many functions scaled to zero, then many warm replicas.

1. Deploys N functions (1,000; --quick: 50) of the native echo's bundle with the label
   `com.openfaas.scale.min: "0"`: a function deployed with min 0 starts with no replica (the
   scenario checks that nothing was started). Measures `GET /system/functions` (the full
   list, one keep-alive connection, time to the last byte; 50 calls per round) and the
   gateway's RSS before and after.
2. Deploys one more function of the same bundle pinned to R replicas (100; --quick: 5) and
   measures the replicas' memory (RSS, and PSS, which shares the pages the replicas have in
   common) and what the gateway's own RSS grew by, per replica.
"""

import http.client
import statistics
import time

from . import common

NAME = "density"
ZERO = {"com.openfaas.scale.min": "0"}


def list_latencies(port, calls):
    """Seconds per `GET /system/functions` on one keep-alive connection; and the answer's size."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times, size = [], 0
    try:
        for _ in range(calls):
            started = time.perf_counter()
            conn.request("GET", "/system/functions", headers={"Authorization": common.BENCH_AUTHORIZATION})
            r = conn.getresponse()
            body = r.read()
            times.append(time.perf_counter() - started)
            if r.status != 200:
                raise common.BenchError(f"GET /system/functions answered {r.status}")
            size = len(body)
    finally:
        conn.close()
    return times, size


def run(ctx):
    common.require("rustc")
    functions = 50 if ctx.quick else 1000
    replicas = 5 if ctx.quick else 100
    calls = 10 if ctx.quick else 50
    platform = ctx.platform()
    # The bundle every function of this scenario runs; deployed itself with min 0 too.
    platform.up(common.echo_project(ctx.work, labels=ZERO))
    if platform.replica_pids():
        raise common.BenchError("a function deployed with com.openfaas.scale.min=0 started a replica")
    before = platform.memory()
    common.log(f"density: deploying {functions} functions scaled to zero")
    started = time.time()
    for i in range(functions):
        platform.deploy(f"fn-{i:04d}", "bench/echo:1", ZERO)
    deploy_s = time.time() - started
    listed = platform.api("GET", "/system/functions")
    if len(listed) != functions + 1:
        raise common.BenchError(f"/system/functions lists {len(listed)} functions, expected {functions + 1}")
    running = sum(f.get("replicas", 0) for f in listed)
    if running or platform.replica_pids():
        raise common.BenchError(f"functions deployed with min 0 have {running} replicas")
    list_latencies(platform.port, 3)  # warm up
    rounds, size = [], 0
    for r in range(ctx.rounds):
        times, size = list_latencies(platform.port, calls)
        rounds.append(times)
    after = platform.memory()

    common.log(f"density: one function with {replicas} warm replicas")
    pinned = {"com.openfaas.scale.min": str(replicas), "com.openfaas.scale.max": str(replicas)}
    started = time.time()
    platform.deploy("warm", "bench/echo:1", pinned)
    warm_deploy_s = time.time() - started
    ready = len(platform.endpoints("warm"))
    if ready != replicas:
        raise common.BenchError(f"function warm has {ready} ready replicas, expected {replicas}")
    time.sleep(1)  # let the replicas finish their start-up allocations
    warm = platform.memory()
    if warm["children"] != replicas:
        raise common.BenchError(f"the gateway has {warm['children']} child processes, expected {replicas}")
    all_ms = [t * 1000 for times in rounds for t in times]
    return {
        "setup": {"functions": functions, "replicas": replicas, "list_calls_per_round": calls, "rounds": ctx.rounds},
        "deploy_seconds": deploy_s,
        "list": {
            "p50_ms": statistics.median(all_ms), "p99_ms": common.percentile(all_ms, 99),
            "p50_ms_rounds": common.spread(statistics.median(t) * 1000 for t in rounds),
            "bytes": size,
        },
        "gateway_rss_kib_one_function": before["gateway_rss_kib"],
        "gateway_rss_kib_all_functions": after["gateway_rss_kib"],
        "gateway_rss_kib_per_function": (after["gateway_rss_kib"] - before["gateway_rss_kib"]) / functions,
        "warm": {
            "deploy_seconds": warm_deploy_s,
            "replicas_rss_kib": warm["children_rss_kib"],
            "replicas_pss_kib": warm["children_pss_kib"],
            "rss_kib_per_replica": warm["children_rss_kib"] / replicas,
            "pss_kib_per_replica": warm["children_pss_kib"] / replicas,
            "gateway_rss_kib": warm["gateway_rss_kib"],
            "gateway_rss_kib_per_replica": (warm["gateway_rss_kib"] - after["gateway_rss_kib"]) / replicas,
            "total_rss_kib": warm["total_rss_kib"],
        },
    }


def report(result):
    s, l, w = result["setup"], result["list"], result["warm"]
    mib = common.mib
    return [
        f"| figure | value |", "|---|---:|",
        f"| {s['functions']:,} functions scaled to zero: deploy time (sequential POSTs) | {result['deploy_seconds']:.1f} s |",
        f"| `GET /system/functions` with {s['functions'] + 1:,} functions ({l['bytes'] / 1024:,.0f} KiB), "
        f"p50 of {s['list_calls_per_round'] * s['rounds']} calls (rounds' p50s) | "
        f"**{l['p50_ms']:.2f} ms** ({l['p50_ms_rounds']['min']:.2f}–{l['p50_ms_rounds']['max']:.2f}) |",
        f"| same, p99 | {l['p99_ms']:.2f} ms |",
        f"| gateway RSS with 1 function / with {s['functions'] + 1:,} | "
        f"{mib(result['gateway_rss_kib_one_function']):.1f} / {mib(result['gateway_rss_kib_all_functions']):.1f} MiB |",
        f"| gateway RSS per function scaled to zero | {result['gateway_rss_kib_per_function']:.1f} KiB |",
        f"| {s['replicas']} warm replicas of the native echo: deploy until all ready | {w['deploy_seconds']:.1f} s |",
        f"| their RSS, total / per replica | {mib(w['replicas_rss_kib']):.1f} MiB / {w['rss_kib_per_replica']:,.0f} KiB |",
        f"| their PSS (shared pages split), total / per replica | {mib(w['replicas_pss_kib']):.1f} MiB / {w['pss_kib_per_replica']:,.0f} KiB |",
        f"| gateway RSS growth per warm replica | {w['gateway_rss_kib_per_replica']:.1f} KiB |",
        f"| whole platform RSS (gateway + replicas) | {mib(w['total_rss_kib']):.1f} MiB |",
    ]


def charts(result, out_dir):
    """No chart: the figures are single numbers."""
