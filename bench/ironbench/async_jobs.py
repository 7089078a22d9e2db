"""Asynchronous calls: how fast the gateway stores them, and how many it makes per second from
end to end, with the embedded queue and with NATS JetStream (a nats-server of our own, as
installed and with GOMAXPROCS=1).

The function is the native echo (a no-op that answers at once), pinned to one replica. The
clients are `wrk -t1 -c64` POSTing 2-byte JSON bodies to /async-function/echo with an
X-Callback-Url; every 202 is a stored call.

- enqueue/s (no workers): a gateway started with --async-workers 0, so nothing is taken off
  the queue while wrk runs: the accept path and the queue's durable write alone.
- end to end: a gateway with its 64 workers (the default); wrk enqueues for the same time while
  the workers make the calls and POST each result to the callback receiver (nginx answering
  204 and logging the time and X-Call-Id of each callback). A worker posts the callback before
  it acks the call, so when the queue shows nothing queued, running or retrying, every callback
  has arrived. Jobs/s = callbacks received with status 200 / (last callback - wrk's start).
  "enqueue/s with workers" is wrk's rate in that same run.
"""

import os
import time

from . import common, svg

NAME = "async"
PINNED = {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "1"}

RECEIVER = """
    log_format callback '$msec $http_x_call_id $http_x_function_status';
    server {{
        listen 127.0.0.1:{port};
        location /cb {{
            access_log {log} callback;
            return 204;
        }}
    }}
"""


def post_lua(callback):
    return (f'wrk.method = "POST"\nwrk.body = "{{}}"\n'
            f'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["X-Callback-Url"] = "{callback}"\n')


def depth(platform):
    return sum(d["queued"] + d["running"] + d["retrying"] for d in platform.api("GET", "/system/async"))


class Callbacks:
    """The receiver's log, read as it grows: call ids answered 200, other statuses, last time."""

    def __init__(self, path):
        self.path = path
        open(path, "w").close()  # nginx appends: an empty file starts the count again
        self.offset, self.ok, self.other, self.last = 0, set(), 0, 0.0

    def read(self):
        with open(self.path) as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[:data.rfind("\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            parts = line.split()
            if len(parts) != 3 or parts[1] == "-":  # not a callback (the start-up probe)
                continue
            self.last = max(self.last, float(parts[0]))
            if parts[2] == "200":
                self.ok.add(parts[1])
            else:
                self.other += 1
        return len(self.ok) + self.other


# The queues measured: the embedded one, NATS JetStream as installed, and NATS JetStream with its
# Go runtime on one thread (GOMAXPROCS=1), a tuning for a nats-server sharing a small machine with
# the gateway (docs/operations.md).
# Each: (a name for its gateways' work folders, the nats-server's environment or None).
BACKENDS = {"embedded": ("embedded", None), "nats": ("nats", {}),
            "nats, GOMAXPROCS=1": ("nats-tuned", {"GOMAXPROCS": "1"})}


def start(ctx, name, backend, args=()):
    """A platform with the backend's queue (and its own nats-server for NATS)."""
    _, env = BACKENDS[backend]
    if env is None:
        return ctx.platform(name, list(args)), None
    nats = ctx.own(common.NatsServer(ctx.work, env))
    return ctx.platform(name, [*args, "--queue", nats.url]), nats


def run(ctx):
    common.require("wrk", "nginx", "rustc")
    backends = list(BACKENDS)
    common.require("nats-server")
    duration = 2 if ctx.quick else 10
    connections = 64
    port = common.free_port()
    log = os.path.join(ctx.work, "callbacks.log")
    ctx.own(common.Nginx(ctx.work, "nginx-callbacks", 1, RECEIVER.format(port=port, log=log)))
    callback = f"http://127.0.0.1:{port}/cb"
    common.wait_http(f"http://127.0.0.1:{port}/cb")
    lua = post_lua(callback)
    project = common.echo_project(ctx.work, labels=PINNED)
    results = {}
    for backend in backends:
        # The accept path alone; the rounds store about 2 million calls, past the default limit.
        slug, _ = BACKENDS[backend]
        platform, nats = start(ctx, f"async-{slug}-noworkers", backend,
                               ["--async-workers", "0", "--async-max-queued", "0"])
        platform.up(project)
        url = f"{platform.url}/async-function/echo"
        common.wrk(url, 4, 1, ctx.work, setup_lua=lua)  # warm up
        alone = []
        for r in range(ctx.rounds):
            common.log(f"async {backend}: enqueue without workers, round {r + 1}/{ctx.rounds}")
            alone.append(common.wrk(url, connections, duration, ctx.work, [platform.pid], setup_lua=lua))
        ctx.release(platform, nats)

        # End to end.
        platform, nats = start(ctx, f"async-{slug}", backend)
        platform.up(project)
        url = f"{platform.url}/async-function/echo"
        rounds = []
        for r in range(ctx.rounds):
            common.log(f"async {backend}: end to end, round {r + 1}/{ctx.rounds}")
            callbacks = Callbacks(log)
            started = time.time()
            enq = common.wrk(url, connections, duration, ctx.work, setup_lua=lua)
            enqueue_done = time.time()
            deadline = enqueue_done + 60 + enq["requests"] / 500
            while True:
                if callbacks.read() >= enq["requests"] and depth(platform) == 0:
                    callbacks.read()
                    break
                if time.time() > deadline:
                    raise common.BenchError(
                        f"async {backend}: {callbacks.read()} of {enq['requests']} callbacks after "
                        f"{time.time() - started:.0f} s; queue depth {depth(platform)}")
                time.sleep(0.05)
            if callbacks.other:
                raise common.BenchError(
                    f"async {backend}: {callbacks.other} callbacks reported a status other than 200")
            rounds.append({
                "enqueue_rps": enq["rps"],
                "enqueue_p50_us": enq["p50_us"],
                "enqueue_p99_us": enq["p99_us"],
                "jobs": len(callbacks.ok),
                "jobs_per_s": len(callbacks.ok) / (callbacks.last - started),
                "drain_after_enqueue_s": max(0.0, callbacks.last - enqueue_done),
            })
        ctx.release(platform, nats)
        results[backend] = {
            "enqueue_no_workers_rps": common.spread(x["rps"] for x in alone),
            "enqueue_no_workers_p50_us": common.spread(x["p50_us"] for x in alone),
            "enqueue_no_workers_p99_us": common.spread(x["p99_us"] for x in alone),
            "gateway_cpu_us_per_enqueue": common.spread(x["cpu_us_per_call"] for x in alone),
            "enqueue_with_workers_rps": common.spread(x["enqueue_rps"] for x in rounds),
            "end_to_end_jobs_per_s": common.spread(x["jobs_per_s"] for x in rounds),
            "jobs": common.spread(x["jobs"] for x in rounds),
            "drain_after_enqueue_s": common.spread(x["drain_after_enqueue_s"] for x in rounds),
        }
    return {"setup": {"clients": f"wrk -t1 -c{connections} -d{duration}s", "duration_s": duration,
                      "rounds": ctx.rounds, "workers": 64, "replicas": 1}, "backends": results}


def report(result):
    s = result["setup"]
    lines = [f"`{s['clients']}` POSTing to /async-function/echo (native no-op, 1 replica), gateway with "
             f"{s['workers']} workers; {s['rounds']} rounds; medians (min–max of the rounds)", "",
             "| queue | enqueue/s, no workers | enqueue p50 / p99 | gateway CPU per enqueue | enqueue/s with workers | "
             "end-to-end jobs/s | jobs per round | callbacks still arriving after enqueue stopped |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for backend, r in result["backends"].items():
        lines.append(
            f"| {backend} | {common.fmt_spread(r['enqueue_no_workers_rps'])} | "
            f"{r['enqueue_no_workers_p50_us']['median'] / 1000:.1f} / {r['enqueue_no_workers_p99_us']['median'] / 1000:.1f} ms | "
            f"{r['gateway_cpu_us_per_enqueue']['median']:.0f} µs | "
            f"{common.fmt_spread(r['enqueue_with_workers_rps'])} | **{common.fmt_spread(r['end_to_end_jobs_per_s'])}** | "
            f"{r['jobs']['median']:,.0f} | {r['drain_after_enqueue_s']['median']:.1f} s |")
    return lines


def charts(result, out_dir):
    backends = result["backends"]
    bars = [("enqueue/s, no workers", "enqueue_no_workers_rps", "#9ecae1"),
            ("enqueue/s with workers", "enqueue_with_workers_rps", "#4292c6"),
            ("end-to-end jobs/s", "end_to_end_jobs_per_s", "#08519c")]
    top = max(r[k]["max"] for r in backends.values() for _, k, _ in bars)
    top = max(top, 10_000)
    fig = svg.Figure(660, 380, "Asynchronous calls: stored and made per second (median, range of the rounds)")
    n = len(backends)
    panel = fig.panel(80, 50, 540, 260, "", svg.LinearAxis(0, n), svg.LinearAxis(0, top * 1.05),
                      y_label="per second", x_ticks=False)
    for i, (backend, r) in enumerate(backends.items()):
        fig.text(panel.px(i + 0.5), 50 + 260 + 16, backend, size=11, anchor="middle")
        for j, (_, key, color) in enumerate(bars):
            x0 = i + 0.12 + j * 0.25
            panel.bar(x0, x0 + 0.25, r[key]["median"], color, opacity=1)
            panel.error_bar(x0 + 0.125, r[key]["min"], r[key]["max"], "#222")
    panel.hline(10_000, "#d62728", "target: 10,000 jobs/s end to end")
    x = 80
    for label, _, color in bars:
        fig.add(f"<rect x='{x}' y='343' width='12' height='12' fill='{color}'/>")
        fig.text(x + 16, 353, label, size=11)
        x += 30 + 6.5 * len(label)
    fig.save(os.path.join(out_dir, "async.svg"))
