#!/usr/bin/env python3
"""Cold start per template: scale from zero to the first response byte, measured at the client.

Starts `ironfaas serve` (release build) on loopback with a temporary data dir, deploys one small
function per template (binary, bash-streaming, node, python3-http), and for each run scales the
function to zero, waits until its replica is gone, then times one call from sending the request
to the first byte of the answer. Prints p50 and p99 per template.

Usage: bench/cold-start.py [--runs 20] [--json FILE]
"""

import argparse
import http.client
import json
import os
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

STACK = """provider:
  name: openfaas
functions:
  cold-binary:
    lang: binary
    handler: ./binary
    image: bench/cold-binary:1
  cold-bash:
    lang: bash-streaming
    handler: ./bash
    image: bench/cold-bash:1
  cold-node:
    lang: node
    handler: ./node
    image: bench/cold-node:1
  cold-python:
    lang: python3-http
    handler: ./python
    image: bench/cold-python:1
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(gateway, method, path, body=None):
    req = urllib.request.Request(gateway + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def first_byte(port, function):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    conn.request("GET", f"/function/{function}")
    response = conn.getresponse()
    response.read(1)
    took = time.perf_counter() - started
    status = response.status
    conn.close()
    if status != 200:
        sys.exit(f"{function} answered {status}")
    return took


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "ironfaas"], cwd=REPO, check=True)
    work = tempfile.mkdtemp(prefix="ironfaas-cold-")
    serve = None
    try:
        project = os.path.join(work, "project")
        for d in ("binary", "bash", "node", "python"):
            os.makedirs(os.path.join(project, d))
        subprocess.run(["rustc", "-O", "--edition", "2021", "-o", os.path.join(project, "binary", "handler"),
                        os.path.join(REPO, "tests", "fixtures", "native_echo.rs")], check=True)
        files = {
            "bash/handler.sh": "echo hello\n",
            "node/handler.js": "module.exports = async () => 'hello';\n",
            "python/handler.py": "def handle(event, context):\n    return 'hello'\n",
            "stack.yml": STACK,
        }
        for rel, text in files.items():
            with open(os.path.join(project, rel), "w") as f:
                f.write(text)
        port = free_port()
        gateway = f"http://127.0.0.1:{port}"
        env = dict(os.environ, IRONFAAS_LOG="warn", OPENFAAS_URL=gateway, IRONFAAS_DATA_DIR=os.path.join(work, "data"))
        serve = subprocess.Popen([BINARY, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                api(gateway, "GET", "/healthz")
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        subprocess.run([BINARY, "up"], cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
        results = {}
        for function in ("cold-binary", "cold-bash", "cold-node", "cold-python"):
            times = []
            for _ in range(args.runs):
                api(gateway, "POST", f"/system/scale-function/{function}", {"serviceName": function, "replicas": 0})
                while api(gateway, "GET", f"/system/function/{function}").get("instances"):
                    time.sleep(0.02)
                times.append(first_byte(port, function) * 1000)
            results[function] = {"p50_ms": statistics.median(times), "p99_ms": percentile(times, 99),
                                 "min_ms": min(times), "runs": len(times)}
        print(f"\ncold start, scale from zero to first response byte, {args.runs} runs each\n")
        print("| template | p50 | p99 | min |")
        print("|---|---:|---:|---:|")
        for function, r in results.items():
            print(f"| {function.removeprefix('cold-')} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['min_ms']:.1f} ms |")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        if serve:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=15)
            except subprocess.TimeoutExpired:
                serve.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
