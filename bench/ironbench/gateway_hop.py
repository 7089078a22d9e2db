"""Gateway hop: what the gateway adds per call, against a direct call and nginx, in the same run.

Deploys the native echo function (tests/fixtures/native_echo.rs compiled with rustc -O, template
`binary`, pinned to one replica so the autoscaler does not add any), starts nginx as a reverse
proxy to the same replica with keep-alive upstream connections and as many workers as the
gateway has threads (one per core), and runs `wrk -t1` against the replica directly, through
nginx and through the gateway at each concurrency, the three interleaved in every round.
Proxy CPU per call is the user+system CPU time of the proxy's threads (from /proc) divided by
the calls it served.
"""

import os
import statistics

from . import common, svg

NAME = "gateway-hop"
TARGETS = ("direct", "nginx", "gateway")
PINNED = {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "1"}

NGINX_PROXY = """
    upstream replica {{ server {replica}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://replica;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""


def run(ctx):
    common.require("wrk", "nginx", "rustc")
    concurrency = [1, 16, 64]
    duration = 1 if ctx.quick else 8
    platform = ctx.platform()
    platform.up(common.echo_project(ctx.work, labels=PINNED))
    replica = platform.endpoints("echo")[0].removeprefix("tcp://")
    workers = os.cpu_count()
    nginx_port = common.free_port()
    nginx = ctx.own(common.Nginx(ctx.work, "nginx-proxy", workers,
                                 NGINX_PROXY.format(replica=replica, port=nginx_port)))
    urls = {
        "direct": f"http://{replica}/",
        "nginx": f"http://127.0.0.1:{nginx_port}/",
        "gateway": f"{platform.url}/function/echo",
    }
    for url in urls.values():
        common.wait_http(url)
        common.wrk(url, 4, 1, ctx.work)  # warm up connections and caches
    pids = {"direct": [], "nginx": nginx.worker_pids(), "gateway": [platform.pid]}

    results = {}
    for c in concurrency:
        runs = {name: [] for name in TARGETS}
        for r in range(ctx.rounds):
            common.log(f"gateway hop: c={c}, round {r + 1}/{ctx.rounds}")
            for name in TARGETS:
                runs[name].append(common.wrk(urls[name], c, duration, ctx.work, pids[name]))
        by_target = {}
        for name, rs in runs.items():
            figures = {k: common.spread(x[k] for x in rs)
                       for k in ("rps", "p50_us", "p99_us", "p99.9_us", "cpu_us_per_call", "switches_per_call")
                       if k in rs[0]}
            figures["percentiles_us"] = {p: statistics.median(x["percentiles_us"][p] for x in rs)
                                         for p in rs[0]["percentiles_us"]}
            by_target[name] = figures
        # Ratios and differences within each round, then their median: the rounds share the
        # machine's state, so these move less than the figures themselves.
        d, n, g = runs["direct"], runs["nginx"], runs["gateway"]
        headline = {
            "gateway_over_nginx_rps": common.spread(g[i]["rps"] / n[i]["rps"] for i in range(ctx.rounds)),
            "gateway_over_direct_rps": common.spread(g[i]["rps"] / d[i]["rps"] for i in range(ctx.rounds)),
        }
        for p in ("p50", "p99", "p99.9"):
            k = f"{p}_us"
            headline[f"gateway_adds_{k}"] = common.spread(g[i][k] - d[i][k] for i in range(ctx.rounds))
            headline[f"nginx_adds_{k}"] = common.spread(n[i][k] - d[i][k] for i in range(ctx.rounds))
        results[str(c)] = {"targets": by_target, "headline": headline}

    return {
        "setup": {"cores": os.cpu_count(), "gateway_threads": workers, "nginx_workers": workers,
                  "wrk": f"wrk -t1 -cC -d{duration}s", "duration_s": duration, "rounds": ctx.rounds,
                  "concurrency": concurrency, "replicas": 1},
        "concurrency": results,
    }


def report(result):
    s = result["setup"]
    lines = [
        f"{s['cores']} cores; gateway: {s['gateway_threads']} threads; nginx: {s['nginx_workers']} workers; "
        f"`{s['wrk']}`, {s['rounds']} rounds interleaved; medians (min–max of the rounds)",
        "",
        "| c | target | requests/s | p50 | p99 | p99.9 | proxy CPU per call | proxy context switches per call |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c, by in result["concurrency"].items():
        for name in TARGETS:
            r = by["targets"][name]
            cpu = common.fmt_spread(r["cpu_us_per_call"], " µs", 1) if "cpu_us_per_call" in r else "-"
            sw = f"{r['switches_per_call']['median']:.2f}" if "switches_per_call" in r else "-"
            lines.append(f"| {c} | {name} | {common.fmt_spread(r['rps'])} | {common.fmt_spread(r['p50_us'], ' µs')} | "
                         f"{common.fmt_spread(r['p99_us'], ' µs')} | {common.fmt_spread(r['p99.9_us'], ' µs')} | {cpu} | {sw} |")
    lines.append("")
    for c, by in result["concurrency"].items():
        h = by["headline"]
        lines.append(
            f"- c={c}: gateway/nginx throughput **{h['gateway_over_nginx_rps']['median']:.2f}x** "
            f"(rounds {', '.join(f'{x:.2f}' for x in h['gateway_over_nginx_rps']['rounds'])}), "
            f"gateway/direct {h['gateway_over_direct_rps']['median']:.2f}x; the gateway adds "
            f"{h['gateway_adds_p50_us']['median']:+.0f} µs p50 / {h['gateway_adds_p99_us']['median']:+.0f} µs p99, "
            f"nginx {h['nginx_adds_p50_us']['median']:+.0f} µs / {h['nginx_adds_p99_us']['median']:+.0f} µs")
    return lines


COLORS = {"direct": "#777777", "nginx": "#2ca02c", "gateway": "#1f77b4"}


def charts(result, out_dir):
    conc = result["concurrency"]
    # Latency distribution: one panel per concurrency, percentile on a "nines" axis.
    fig = svg.Figure(300 * len(conc) + 80, 400, "Gateway hop: latency distribution (wrk, median of the rounds per percentile)")
    for k, (c, by) in enumerate(conc.items()):
        series = []
        for name in TARGETS:
            pts = [(svg.nines(float(p)), v) for p, v in by["targets"][name]["percentiles_us"].items()]
            series.append((name, pts, COLORS[name]))
        values = [v for _, pts, _ in series for _, v in pts]
        panel = fig.panel(60 + k * 300, 50, 240, 270, f"concurrency {c}",
                          svg.NinesAxis(max(x for _, pts, _ in series for x, _ in pts)),
                          svg.LogAxis(min(values), max(values)),
                          x_label="percentile", y_label="latency (µs)" if k == 0 else "")
        for name, pts, color in series:
            panel.line(pts, color, markers=True)
    fig.legend([(n, COLORS[n]) for n in TARGETS], 60, 385)
    fig.save(os.path.join(out_dir, "gateway-hop-latency.svg"))

    # Throughput against concurrency, with the rounds' range as error bars.
    fig = svg.Figure(640, 400, "Gateway hop: requests/s against concurrency (wrk -t1, median and range of rounds)")
    cs = [int(c) for c in conc]
    top = max(by["targets"][n]["rps"]["max"] for by in conc.values() for n in TARGETS)
    panel = fig.panel(80, 50, 520, 270, "", svg.LogAxis(min(cs), max(cs), explicit=cs),
                      svg.LinearAxis(0, top * 1.05), x_label="concurrent connections", y_label="requests/s")
    for name in TARGETS:
        pts = [(int(c), by["targets"][name]["rps"]["median"]) for c, by in conc.items()]
        panel.line(pts, COLORS[name], markers=True)
        for c, by in conc.items():
            r = by["targets"][name]["rps"]
            panel.error_bar(int(c), r["min"], r["max"], COLORS[name])
    fig.legend([(n, COLORS[n]) for n in TARGETS], 80, 385)
    fig.save(os.path.join(out_dir, "gateway-hop-throughput.svg"))
