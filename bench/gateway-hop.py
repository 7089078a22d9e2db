#!/usr/bin/env python3
"""What the gateway adds per call, against a direct call and nginx, in the same run.

Starts `ironfaas serve` (release build) on loopback with a temporary data dir, deploys the
native echo function (tests/fixtures/native_echo.rs, compiled with rustc -O), starts nginx as a
reverse proxy to the same replica with as many workers as the gateway has threads, and runs wrk
against the three at each concurrency, several rounds interleaved. Prints medians of
requests/s and p50/p99 latency, and the headline ratios.

Usage: bench/gateway-hop.py [--duration 10] [--rounds 3] [--concurrency 1,64] [--json FILE]
Needs: wrk and nginx (Debian packages `wrk` and `nginx-light`), rustc, cargo.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(REPO, "target", "release", "ironfaas")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing answers at {url}")


def to_us(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1, "ms": 1000, "s": 1_000_000}[unit]


def proc_usage(pids):
    """CPU seconds (user+system) and context switches of every thread of `pids`."""
    cpu, switches = 0.0, 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu += (int(fields[11]) + int(fields[12])) / tick
                with open(f"/proc/{pid}/task/{task}/status") as f:
                    switches += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
            except (FileNotFoundError, ProcessLookupError):
                pass
    return cpu, switches


def wrk(url, connections, duration, pids=()):
    before = proc_usage(pids)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_us(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_us(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or "Socket errors" in out:
        sys.exit(f"wrk saw errors against {url}:\n{out}")
    after = proc_usage(pids)
    calls = int(re.search(r"(\d+) requests in", out).group(1))
    result = {"rps": rps, "p50_us": p50, "p99_us": p99}
    if pids:
        result["cpu_us_per_call"] = (after[0] - before[0]) * 1e6 / calls
        result["switches_per_call"] = (after[1] - before[1]) / calls
    return result


NGINX_CONF = """
worker_processes {workers};
daemon off;
error_log {dir}/nginx-error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    upstream replica {{ server {replica}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://replica;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,64")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "rustc", "cargo"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (apt-get install wrk nginx-light)")

    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "ironfaas"], cwd=REPO, check=True)
    work = tempfile.mkdtemp(prefix="ironfaas-bench-")
    procs = []
    try:
        fn_dir = os.path.join(work, "project", "echo")
        os.makedirs(fn_dir)
        subprocess.run(["rustc", "-O", "--edition", "2021", "-o", os.path.join(fn_dir, "handler"),
                        os.path.join(REPO, "tests", "fixtures", "native_echo.rs")], check=True)
        with open(os.path.join(work, "project", "stack.yml"), "w") as f:
            f.write("provider:\n  name: openfaas\nfunctions:\n  echo:\n    lang: binary\n"
                    "    handler: ./echo\n    image: bench/echo:1\n")

        gw_port = free_port()
        gateway = f"http://127.0.0.1:{gw_port}"
        env = dict(os.environ, IRONFAAS_LOG="warn", OPENFAAS_URL=gateway,
                   IRONFAAS_DATA_DIR=os.path.join(work, "data"))
        procs.append(subprocess.Popen([BINARY, "serve", "--listen", f"127.0.0.1:{gw_port}"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(f"{gateway}/healthz")
        subprocess.run([BINARY, "up"], cwd=os.path.join(work, "project"), env=env, check=True,
                       stdout=subprocess.DEVNULL)
        status = json.loads(subprocess.run([BINARY, "describe", "echo", "--json"], env=env, check=True,
                                           capture_output=True, text=True).stdout)
        replica = status["instances"][0]["endpoint"].removeprefix("tcp://")

        workers = os.cpu_count()
        nginx_port = free_port()
        with open(os.path.join(work, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(workers=workers, dir=work, replica=replica, port=nginx_port))
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(work, "nginx.conf"), "-p", work],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(nginx)
        targets = {
            "direct": (f"http://{replica}/", []),
            "nginx": (f"http://127.0.0.1:{nginx_port}/", None),
            "gateway": (f"{gateway}/function/echo", [procs[0].pid]),
        }
        for url, _ in targets.values():
            wait_http(url)
            wrk(url, 4, 1)  # warm up connections and caches
        workers_of_nginx = subprocess.run(["pgrep", "-P", str(nginx.pid)], capture_output=True,
                                          text=True).stdout.split()
        targets["nginx"] = (targets["nginx"][0], [int(p) for p in workers_of_nginx])

        results = {}
        for c in [int(x) for x in args.concurrency.split(",")]:
            runs = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, (url, pids) in targets.items():
                    runs[name].append(wrk(url, c, args.duration, pids))
            results[c] = {
                name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                for name, rs in runs.items()
            }

        print(f"\nmachine: {os.cpu_count()} cores; gateway: tokio with {workers} threads; "
              f"nginx: {workers} workers; wrk -t1, {args.duration}s x {args.rounds} rounds, medians\n")
        print("| concurrency | target | requests/s | p50 | p99 | proxy CPU per call | proxy context switches per call |")
        print("|---:|---|---:|---:|---:|---:|---:|")
        for c, by in results.items():
            for name, r in by.items():
                cpu = f"{r['cpu_us_per_call']:.1f} µs" if "cpu_us_per_call" in r else "-"
                sw = f"{r['switches_per_call']:.2f}" if "switches_per_call" in r else "-"
                print(f"| {c} | {name} | {r['rps']:,.0f} | {r['p50_us']:.0f} µs | {r['p99_us']:.0f} µs | {cpu} | {sw} |")
        print()
        for c, by in results.items():
            d, n, g = by["direct"], by["nginx"], by["gateway"]
            print(f"c={c}: gateway adds {g['p50_us'] - d['p50_us']:.0f} µs p50 / {g['p99_us'] - d['p99_us']:.0f} µs p99; "
                  f"nginx adds {n['p50_us'] - d['p50_us']:.0f} µs p50 / {n['p99_us'] - d['p99_us']:.0f} µs p99; "
                  f"throughput gateway/nginx = {g['rps'] / n['rps']:.2f}x, gateway/direct = {g['rps'] / d['rps']:.2f}x")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"concurrency": results, "duration_s": args.duration, "rounds": args.rounds}, f, indent=2)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
