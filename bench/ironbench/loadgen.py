"""An open-loop HTTP/1.1 load generator: GET requests at a fixed rate whatever the server does,
over a pool of keep-alive connections that grows (up to a cap) when all are busy, so a slow
answer does not hold back the next request. Reports each second's latencies.

Latency is measured from the moment the generator means to send a request (after its timer
fired; before it waits for a free connection) to the last byte of the answer: waiting for a
connection counts, the timer's own lateness does not (asyncio's timers have a resolution of a
millisecond). How late each send was against its schedule is reported apart, to show whether
the generator kept up.
"""

import asyncio
import collections
import socket
import statistics


class _Pool:
    def __init__(self, host, port, cap):
        self.host, self.port, self.cap = host, port, cap
        self.idle, self.waiters, self.opened, self.most = [], collections.deque(), 0, 0

    async def get(self):
        if self.idle:
            return self.idle.pop()
        if self.opened < self.cap:
            self.opened += 1
            self.most = max(self.most, self.opened)
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.opened -= 1
                raise
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return reader, writer
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter

    def put(self, conn):
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    def drop(self, conn):
        self.opened -= 1
        conn[1].close()

    def close(self):
        for _, writer in self.idle:
            writer.close()


async def _exchange(conn, request):
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ValueError("answer without Content-Length")
    await reader.readexactly(length)
    return status


async def _run(host, port, path, rate, seconds, cap, every_second):
    loop = asyncio.get_running_loop()
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    pool = _Pool(host, port, cap)
    latencies = [[] for _ in range(seconds)]
    errors = [0] * seconds
    kinds = collections.Counter()
    lag = [0.0] * seconds
    samples = []

    async def one(second, intent):
        try:
            conn = await pool.get()
        except OSError as e:
            errors[second] += 1
            kinds[f"connect: {e}"] += 1
            return
        try:
            status = await _exchange(conn, request)
        except (OSError, ValueError, asyncio.IncompleteReadError) as e:
            errors[second] += 1
            kinds[f"{type(e).__name__}: {e}"[:120]] += 1
            pool.drop(conn)
            return
        latencies[second].append((loop.time() - intent) * 1e6)
        if status != 200:
            errors[second] += 1
            kinds[f"status {status}"] += 1
        pool.put(conn)

    async def sampler(start):
        for s in range(seconds + 1):
            await asyncio.sleep(max(0.0, start + s - loop.time()))
            samples.append(every_second())

    start = loop.time() + 0.05
    sampling = asyncio.create_task(sampler(start))
    tasks = set()
    total = int(rate * seconds)
    for i in range(total):
        scheduled = start + i / rate
        now = loop.time()
        if scheduled > now:
            await asyncio.sleep(scheduled - now)
            now = loop.time()
        second = min(seconds - 1, int(i / rate))
        lag[second] = max(lag[second], now - scheduled)
        task = asyncio.create_task(one(second, now))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    await sampling
    pool.close()
    return latencies, errors, kinds, lag, samples, pool.most


def run_open_loop(host, port, path, rate, seconds, every_second=lambda: None, cap=512):
    """Sends `rate` GETs per second for `seconds`; per second: calls, errors, p50/p99/max latency
    (µs), the send schedule's worst lateness (ms), and `every_second()`'s value (sampled at the
    start of each second and once at the end)."""
    latencies, errors, kinds, lag, samples, most = asyncio.run(_run(host, port, path, rate, seconds, cap, every_second))
    per_second = []
    for s in range(seconds):
        v = sorted(latencies[s])
        per_second.append({
            "second": s, "calls": len(v), "errors": errors[s],
            "p50_us": statistics.median(v) if v else None,
            "p99_us": v[min(len(v) - 1, int(len(v) * 0.99))] if v else None,
            "max_us": v[-1] if v else None,
            "schedule_lag_ms": lag[s] * 1000,
        })
    everything = sorted(x for s in latencies for x in s)
    return {"per_second": per_second, "all_us": everything, "errors": sum(errors), "error_kinds": dict(kinds),
            "samples": samples, "connections": most}
