"""What the scenarios share: building ironfaas, starting the platform and the tools they measure
against (nginx, nats-server, wrk), HTTP calls, process memory and CPU, and statistics."""

import base64
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
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE_ECHO = os.path.join(REPO, "tests", "fixtures", "native_echo.rs")

INSTALL_HINTS = {
    "wrk": "apt-get install wrk (or scripts/install-test-deps as root)",
    "nginx": "apt-get install nginx-light (or scripts/install-test-deps as root)",
    "nats-server": "apt-get install nats-server (or scripts/install-test-deps as root)",
    "rustc": "install Rust (https://rustup.rs)",
    "cargo": "install Rust (https://rustup.rs)",
    "node": "apt-get install nodejs",
    "cc": "apt-get install gcc",
}


class BenchError(Exception):
    """A scenario could not produce its figures; the message says why and what to do."""


def find_tool(name):
    """The path of a tool, looking in the sbin folders too (nginx and nats-server live there)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if not path:
        raise BenchError(f"{name} is missing: {INSTALL_HINTS.get(name, 'install it')}")
    return path


def require(*tools):
    """Fails with an install hint unless every tool is there."""
    for tool in tools:
        find_tool(tool)


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Building


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")


def build_ironfaas():
    """Builds the `ironfaas` binary in release mode; returns its path."""
    require("cargo")
    log("cargo build --release -p ironfaas")
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "ironfaas"], cwd=REPO, check=True)
    binary = os.path.join(target_dir(), "release", "ironfaas")
    if not os.access(binary, os.X_OK):
        raise BenchError(f"cargo built no {binary}; is CARGO_TARGET_DIR right?")
    return binary


def compile_native_echo(dest):
    """Compiles tests/fixtures/native_echo.rs (std only, thread per connection) to `dest`."""
    require("rustc")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    subprocess.run(["rustc", "-O", "--edition", "2021", "-o", dest, FIXTURE_ECHO], check=True)


def echo_project(work, name="echo", image="bench/echo:1", labels=None):
    """A project folder with one native echo function (template `binary`); returns its path."""
    project = os.path.join(work, f"project-{name}")
    compile_native_echo(os.path.join(project, name, "handler"))
    with open(os.path.join(project, "stack.yml"), "w") as f:
        f.write(f"provider:\n  name: openfaas\nfunctions:\n  {name}:\n    lang: binary\n"
                f"    handler: ./{name}\n    image: {image}\n")
        if labels:
            f.write("    labels:\n")
            for k, v in labels.items():
                f.write(f"      {k}: \"{v}\"\n")
    return project


# ---------------------------------------------------------------------------------------------
# Processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, grace=15):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def descendants(pid):
    """Every process below `pid` (children, their children, ...)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def process_name(pid):
    """A process's command name; "" once it is gone."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def memory_kib(pid):
    """(RSS, PSS) of one process in KiB; PSS shares each shared page among its users."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return rss, pss


def proc_usage(pids):
    """CPU seconds (user+system) and context switches of every thread of `pids`."""
    cpu, switches = 0.0, 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu += (int(fields[11]) + int(fields[12])) / tick
                with open(f"/proc/{pid}/task/{task}/status") as f:
                    switches += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
            except (FileNotFoundError, ProcessLookupError):
                pass
    return cpu, switches


# ---------------------------------------------------------------------------------------------
# HTTP


def call(url, method="GET", body=None, headers=None, timeout=60):
    """One HTTP call on a new connection; (status, body bytes)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        conn.request(method, u.path + (f"?{u.query}" if u.query else ""), body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def call_json(url, method="GET", body=None, ok=(200, 202), headers=None):
    status, data = call(url, method, body, headers)
    if status not in ok:
        raise BenchError(f"{method} {url} answered {status}: {data[:300]!r}")
    return json.loads(data or b"null")


def wait_http(url, limit=60):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            status, _ = call(url, timeout=2)
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(f"nothing answers at {url} after {limit}s")


# ---------------------------------------------------------------------------------------------
# The platform


BENCH_PASSWORD = "ironfaas-bench-password"
BENCH_AUTHORIZATION = "Basic " + base64.b64encode(f"admin:{BENCH_PASSWORD}".encode()).decode()


class Platform:
    """`ironfaas serve` on a free loopback port with its own data dir."""

    def __init__(self, binary, work, name="serve", args=()):
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = os.path.join(work, f"data-{name}")
        # The admin's password for basic auth (on by default): the platform takes it on its first
        # start, the CLI finds it in IRONFAAS_PASSWORD, api() sends it.
        self.env = dict(os.environ, IRONFAAS_LOG="warn", OPENFAAS_URL=self.url,
                        IRONFAAS_DATA_DIR=self.data_dir, IRONFAAS_ADMIN_PASSWORD=BENCH_PASSWORD,
                        IRONFAAS_PASSWORD=BENCH_PASSWORD)
        self.log_path = os.path.join(work, f"{name}.log")
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{self.port}", *args],
                                     env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{self.url}/healthz")
        except BenchError:
            self.stop()
            raise BenchError(f"ironfaas serve did not start; its log:\n{self.log_tail()}") from None

    @property
    def pid(self):
        return self.proc.pid

    def log_tail(self, lines=30):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-lines:])

    def cli(self, *args, cwd=None):
        """Runs an `ironfaas` command against this platform; its stdout."""
        r = subprocess.run([self.binary, *args], cwd=cwd, env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"ironfaas {' '.join(args)} failed ({r.returncode}):\n{r.stderr}{r.stdout}")
        return r.stdout

    def up(self, project, stack="stack.yml"):
        """Builds and deploys a stack; returns when its replicas are ready."""
        self.cli("up", "-f", stack, cwd=project)

    def describe(self, name):
        return json.loads(self.cli("describe", name, "--json"))

    def endpoints(self, name):
        return [i["endpoint"] for i in self.describe(name).get("instances", []) if i.get("state") == "ready"]

    def api(self, method, path, body=None, ok=(200, 202)):
        return call_json(self.url + path, method, body, ok, {"Authorization": BENCH_AUTHORIZATION})

    def deploy(self, service, image, labels=None):
        self.api("POST", "/system/functions", {"service": service, "image": image, "labels": labels or {}})

    def scale(self, name, replicas):
        self.api("POST", f"/system/scale-function/{name}", {"serviceName": name, "replicas": replicas})

    def replica_pids(self):
        return descendants(self.pid)

    def memory(self):
        """The memory of the gateway and of everything it started, in KiB."""
        gw_rss, gw_pss = memory_kib(self.pid)
        rss = pss = 0
        pids = self.replica_pids()
        for pid in pids:
            r, p = memory_kib(pid)
            rss += r
            pss += p
        # A sandboxed replica is bubblewrap, its namespace's init and the function: count the
        # functions, measure all three.
        functions = sum(1 for pid in pids if process_name(pid) not in ("bwrap", ""))
        return {"gateway_rss_kib": gw_rss, "gateway_pss_kib": gw_pss, "children": functions,
                "processes": len(pids),
                "children_rss_kib": rss, "children_pss_kib": pss,
                "total_rss_kib": gw_rss + rss, "total_pss_kib": gw_pss + pss}

    def stop(self):
        stop_process(self.proc, grace=30)
        self.log_file.close()


# ---------------------------------------------------------------------------------------------
# Tools the scenarios measure with or against


NGINX_CONF = """
worker_processes {workers};
daemon off;
error_log {dir}/nginx-error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    {http}
}}
"""


class Nginx:
    """nginx in the foreground with a generated configuration; `http` is the http{} block's body."""

    def __init__(self, work, name, workers, http_block):
        binary = find_tool("nginx")
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(workers=workers, dir=self.dir, http=http_block))
        self.proc = subprocess.Popen([binary, "-c", conf, "-p", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def worker_pids(self):
        return descendants(self.proc.pid)

    def stop(self):
        stop_process(self.proc)


class NatsServer:
    """nats-server with JetStream on a free loopback port and a temp store dir."""

    def __init__(self, work, env=None):
        binary = find_tool("nats-server")
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        store = tempfile.mkdtemp(prefix="nats-", dir=work)
        self.proc = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", store],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise BenchError("nats-server did not start") from None
                time.sleep(0.05)

    def stop(self):
        stop_process(self.proc)


# Percentiles wrk prints for the latency distribution (its `done` hook; values in µs).
WRK_PERCENTILES = [10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99]

WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("IRONBENCH requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d min=%d max=%d",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout, latency.min, latency.max))
  for _, p in ipairs({%s}) do
    io.write(string.format(" p%g=%d", p, latency:percentile(p)))
  end
  io.write("\\n")
end
""".replace("{%s}", "{" + ", ".join(str(p) for p in WRK_PERCENTILES) + "}")


def wrk(url, connections, duration, work, pids=(), setup_lua="", allow_errors=False):
    """Runs `wrk -t1`; requests/s, latency percentiles in µs, and when `pids` are given the CPU
    and context switches of those processes per call."""
    script = os.path.join(work, f"wrk-{abs(hash(setup_lua))}.lua")
    if not os.path.exists(script):
        with open(script, "w") as f:
            f.write(setup_lua + WRK_DONE)
    before = proc_usage(pids)
    r = subprocess.run([find_tool("wrk"), "-t1", f"-c{connections}", f"-d{duration}s", "-s", script, url],
                       capture_output=True, text=True)
    after = proc_usage(pids)
    line = next((l for l in r.stdout.splitlines() if l.startswith("IRONBENCH")), None)
    if r.returncode != 0 or line is None:
        raise BenchError(f"wrk against {url} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    fields = dict(kv.split("=") for kv in line.split()[1:])
    calls = int(fields["requests"])
    errors = sum(int(fields[k]) for k in ("non2xx", "connect", "read", "write", "timeout"))
    if errors and not allow_errors:
        raise BenchError(f"wrk saw {errors} errors against {url}:\n{r.stdout}")
    result = {
        "rps": calls / (int(fields["duration_us"]) / 1e6),
        "requests": calls,
        "errors": errors,
        "min_us": float(fields["min"]),
        "max_us": float(fields["max"]),
        "percentiles_us": {str(p): float(fields[f"p{p:g}"]) for p in WRK_PERCENTILES},
    }
    result["p50_us"] = result["percentiles_us"]["50"]
    result["p99_us"] = result["percentiles_us"]["99"]
    result["p99.9_us"] = result["percentiles_us"]["99.9"]
    if pids and calls:
        result["cpu_us_per_call"] = (after[0] - before[0]) * 1e6 / calls
        result["switches_per_call"] = (after[1] - before[1]) / calls
    return result


# ---------------------------------------------------------------------------------------------
# Statistics


def percentile(values, p):
    """The `p`th percentile by nearest rank (the value at or above p % of the sample)."""
    ordered = sorted(values)
    if not ordered:
        raise BenchError("percentile of no values")
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


def spread(values):
    """Median and range of the rounds of one figure."""
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "rounds": values}


def median_of(rounds, key):
    return statistics.median(r[key] for r in rounds)


def fmt_spread(s, unit="", digits=0):
    """`median (min–max)`."""
    f = f"{{:,.{digits}f}}"
    if len(s["rounds"]) == 1:
        return f.format(s["median"]) + unit
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}–{f.format(s['max'])})"


def mib(kib):
    return kib / 1024
