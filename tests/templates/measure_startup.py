"""Measure process start to first answered request for an http-mode template.

Not a test: it prints figures. It copies templates/<template> (minus
template.yml) into a temp bundle dir and runs --build there once (a shell
command standing in for the template's build steps). Then, for each run, it
starts the template's server (the given command, from the bundle root, with a
fresh IRONFAAS_SOCKET, or with --tcp HOST=127.0.0.1 and a free PORT), connects
to it as soon as it accepts (polling every 0.2 ms), sends one request and reads the whole response. The
time runs from just before the process is spawned to the last byte of the
response. Prints each run and the median.

    python3 tests/templates/measure_startup.py \
        --build 'python3 -m compileall -q --invalidation-mode checked-hash ironfaas_http.py function/handler.py' \
        python3-http -- /root/.pyenv/versions/3.11.7/bin/python3 index.py
    python3 tests/templates/measure_startup.py --path / node -- node index.js
    python3 tests/templates/measure_startup.py --build 'sh build.sh' --path / rust -- ./handler
    python3 tests/templates/measure_startup.py --tcp --path / \
        --build 'cc -O2 -Wall -pthread -o handler handler.c' binary -- ./handler

--path chooses the request (default /_/health; / calls the scaffold handler).
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the response head: %r" % data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed mid-body")
        body += chunk
    return head.split(b"\r\n", 1)[0], body


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def one_run(bundle, command, path, tcp=False):
    with tempfile.TemporaryDirectory() as tmp:
        if tcp:
            address = ("127.0.0.1", free_port())
            env = dict(os.environ, HOST=address[0], PORT=str(address[1]))
            env.pop("IRONFAAS_SOCKET", None)
            family = socket.AF_INET
        else:
            address = os.path.join(tmp, "fn.sock")
            env = dict(os.environ, IRONFAAS_SOCKET=address)
            family = socket.AF_UNIX
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, cwd=bundle, env=env, stderr=subprocess.DEVNULL)
        try:
            while True:
                s = socket.socket(family, socket.SOCK_STREAM)
                try:
                    s.connect(address)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    s.close()
                    if proc.poll() is not None:
                        raise RuntimeError("server exited with %s" % proc.returncode)
                    time.sleep(0.0002)
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _ = read_response(s)
            t1 = time.perf_counter()
            s.close()
        finally:
            proc.terminate()
            proc.wait()
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError("unexpected status %r" % status)
        return (t1 - t0) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--path", default="/_/health")
    parser.add_argument("--build", help="shell command run once in the bundle dir")
    parser.add_argument("--tcp", action="store_true",
                        help="listen=tcp: pass HOST/PORT (a free port) instead of IRONFAAS_SOCKET")
    parser.add_argument("template")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        bundle = os.path.join(tmp, "bundle")
        shutil.copytree(os.path.join(ROOT, "templates", args.template), bundle,
                        ignore=shutil.ignore_patterns("template.yml", "__pycache__"))
        if args.build:
            subprocess.run(args.build, shell=True, cwd=bundle, check=True)
        for _ in range(args.runs):
            times.append(one_run(bundle, args.command, args.path, args.tcp))
    print("%s %s %s: runs (ms) %s" % (args.template, " ".join(args.command), args.path,
                                      " ".join("%.1f" % t for t in times)))
    print("median %.1f ms" % statistics.median(times))


if __name__ == "__main__":
    sys.exit(main())
