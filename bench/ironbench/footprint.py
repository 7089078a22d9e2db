"""Idle footprint: the memory of the whole platform (`ironfaas serve` and every process it
started) while nothing calls it, first with no function, then with the examples
(examples/stack.yml: transform and gdpr-cleanup on python3-http, csv-worker on node, wordcount on
bash-streaming; the secret gdpr-cleanup needs is created first, as examples/run does)
deployed. RSS counts every page a process maps; PSS splits the shared ones among the processes
sharing them, so the PSS total is what the platform costs the machine. Each figure is the
median of samples taken a second apart after the platform settled.
"""

import os
import shutil
import statistics
import time

from . import common

NAME = "idle-footprint"


def sample(platform, samples):
    taken = []
    for i in range(samples):
        if i:
            time.sleep(1)
        taken.append(platform.memory())
    return {k: statistics.median(m[k] for m in taken) for k in taken[0]}


def run(ctx):
    common.require("node")
    settle, samples = (1, 2) if ctx.quick else (5, 5)
    platform = ctx.platform()
    time.sleep(settle)
    empty = sample(platform, samples)
    examples = os.path.join(ctx.work, "examples")
    shutil.copytree(os.path.join(common.REPO, "examples"), examples)
    common.log("idle footprint: building and deploying examples/stack.yml")
    platform.cli("secret", "create", "db-password", "--from-literal", "bench-db-password")
    platform.up(examples)
    time.sleep(settle)
    deployed = sample(platform, samples)
    processes = {}
    for pid in platform.replica_pids():
        try:
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
        except FileNotFoundError:
            continue
        rss, pss = common.memory_kib(pid)
        p = processes.setdefault(name, {"count": 0, "rss_kib": 0, "pss_kib": 0})
        p["count"] += 1
        p["rss_kib"] += rss
        p["pss_kib"] += pss
    return {"setup": {"settle_s": settle, "samples": samples}, "empty": empty, "examples": deployed,
            "example_processes": processes}


def report(result):
    mib = common.mib
    e, x = result["empty"], result["examples"]
    lines = ["| state | gateway RSS | processes started | their RSS | total RSS | total PSS |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, m in (("no functions", e), ("examples/stack.yml deployed", x)):
        lines.append(f"| {name} | {mib(m['gateway_rss_kib']):.1f} MiB | {m['processes']:.0f} | "
                     f"{mib(m['children_rss_kib']):.1f} MiB | **{mib(m['total_rss_kib']):.1f} MiB** | "
                     f"{mib(m['total_pss_kib']):.1f} MiB |")
    lines.append("")
    lines.append("processes of the examples: " + ", ".join(
        f"{name} ×{p['count']} {mib(p['rss_kib']):.1f} MiB RSS / {mib(p['pss_kib']):.1f} MiB PSS"
        for name, p in sorted(result["example_processes"].items())))
    return lines


def charts(result, out_dir):
    """No chart: the figures are single numbers."""
