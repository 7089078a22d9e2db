"""Tests of the python3-http template: start the real server, talk HTTP/1.1 over its Unix socket.

Run: python3 tests/templates/test_python3_http.py
Stdlib only. Each test class builds a bundle in a temp dir from templates/python3-http,
writes its own handler into function/, and starts `python3 index.py` from the bundle root
with IRONFAAS_SOCKET set (the interpreter running the tests is used as python3).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(ROOT, "templates", "python3-http")

ECHO_HANDLER = textwrap.dedent('''
    import sys
    import time


    def handle(event, context):
        p = event.path
        if p == "/dict":
            return {"statusCode": 201, "body": {"ok": True}, "headers": {"X-Test": "yes"}}
        if p == "/dict-list-headers":
            return {"statusCode": 202, "body": "text", "headers": [("X-A", "1"), ("X-B", "2")]}
        if p == "/dict-status-only":
            return {"statusCode": 418}
        if p == "/plain-dict":
            return {"hello": "world"}
        if p == "/list":
            return [1, 2, 3]
        if p == "/str":
            return "h\\u00e9llo"
        if p == "/bytes":
            return b"\\x00\\x01\\x02"
        if p == "/bytes-typed":
            return {"body": b"\\x89PNG", "headers": {"content-type": "image/png"}}
        if p == "/number":
            return {"body": 42}
        if p == "/none":
            return None
        if p == "/tuple1":
            return ("only body",)
        if p == "/tuple2":
            return ("created", 201)
        if p == "/tuple2-headers":
            return ("with headers", {"X-T": "h"})
        if p == "/tuple3":
            return ({"a": 1}, 202, {"X-T": "3"})
        if p == "/raise":
            raise ValueError("secret-detail-xyz")
        if p == "/bad-status":
            return {"statusCode": "not a status"}
        if p == "/close":
            return {"body": "bye", "headers": {"Connection": "close"}}
        if p == "/sleep":
            time.sleep(0.3)
            return {"body": {"slept": True}}
        if p == "/pkg":
            import ironfaas_fake_pkg
            return {"body": {"value": ironfaas_fake_pkg.VALUE, "first": sys.path[0]}}
        query = event.query
        return {"body": {
            "method": event.method,
            "path": event.path,
            "query_first": {k: query.get(k) for k in query},
            "query_lists": {k: query.getlist(k) for k in query},
            "query_item_a": query["a"] if "a" in query else None,
            "headers": dict(event.headers),
            "h_lower": event.headers.get("x-custom-header"),
            "h_upper": event.headers.get("X-CUSTOM-HEADER"),
            "h_item": event.headers["X-Custom-Header"] if "x-custom-header" in event.headers else None,
            "h_missing": event.headers.get("x-not-sent", "default"),
            "body": event.body.decode("latin-1"),
            "body_type": type(event.body).__name__,
            "hostname": context.hostname,
        }}
''')


def make_bundle(tmp, handler_source):
    bundle = os.path.join(tmp, "bundle")
    shutil.copytree(TEMPLATE, bundle, ignore=shutil.ignore_patterns("template.yml", "__pycache__"))
    with open(os.path.join(bundle, "function", "handler.py"), "w") as f:
        f.write(handler_source)
    return bundle


def start_server(bundle, sock_path, stderr_path, extra_env=None):
    env = dict(os.environ, IRONFAAS_SOCKET=sock_path, PYTHONUNBUFFERED="1")
    env.update(extra_env or {})
    stderr = open(stderr_path, "wb")
    proc = subprocess.Popen([sys.executable, "index.py"], cwd=bundle, env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr)
    stderr.close()
    return proc


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


class Client:
    """A raw HTTP/1.1 client on one Unix-socket connection (so keep-alive is observable)."""

    def __init__(self, sock_path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(sock_path)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, path, headers=None, body=b"", http="HTTP/1.1"):
        lines = ["%s %s %s" % (method, path, http), "Host: fn"]
        headers = dict(headers or {})
        if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in headers):
            headers["Content-Length"] = str(len(body))
        lines += ["%s: %s" % kv for kv in headers.items()]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return self.read_response(head=(method == "HEAD"))

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, _ = (lines[0] + " ").split(" ", 2)
        assert version == "HTTP/1.1", lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return int(status), {k: ", ".join(v) for k, v in headers.items()}

    def read_response(self, head=False):
        status, headers = self.read_head()
        assert "transfer-encoding" not in headers, headers
        if status in (204, 304):
            return Response(status, headers, b"")
        assert "content-length" in headers, "no Content-Length in %r" % headers
        length = int(headers["content-length"])
        if head:
            return Response(status, headers, b"")
        while len(self.buf) < length:
            self._recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        return Response(status, headers, body)

    def at_eof(self):
        """True if the server closed the connection (and sent nothing more)."""
        if self.buf:
            return False
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False


class ServerCase(unittest.TestCase):
    handler_source = ECHO_HANDLER
    extra_env = {"HOSTNAME": "test-host"}

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ironfaas-py-test-")
        cls.bundle = make_bundle(cls.tmp, cls.handler_source)
        cls.prepare_bundle(cls.bundle)
        cls.sock_path = os.path.join(cls.tmp, "fn.sock")
        cls.stderr_path = os.path.join(cls.tmp, "stderr.log")
        cls.proc = start_server(cls.bundle, cls.sock_path, cls.stderr_path, cls.extra_env)
        deadline = time.monotonic() + 10
        while True:
            try:
                c = Client(cls.sock_path)
                try:
                    if c.request("GET", "/_/health").status == 200:
                        break
                finally:
                    c.close()
            except OSError:
                pass
            if cls.proc.poll() is not None or time.monotonic() > deadline:
                cls.tearDownClass()
                raise RuntimeError("server did not become healthy; stderr:\n" + cls.stderr())
            time.sleep(0.01)

    @classmethod
    def prepare_bundle(cls, bundle):
        pass

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.terminate()
            try:
                cls.proc.wait(5)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def stderr(cls):
        with open(cls.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def setUp(self):
        self.client = Client(self.sock_path)

    def tearDown(self):
        self.client.close()

    def get(self, path, **kw):
        return self.client.request("GET", path, **kw)


class TestPython3Http(ServerCase):
    def test_health_is_not_passed_to_handler(self):
        r = self.get("/_/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"OK")

    def test_method_path_query_headers_body(self):
        r = self.client.request(
            "POST", "/sub/path?a=1&b=x%20y+z&a=2&empty=",
            headers={"X-Custom-Header": "Value-1", "Content-Type": "text/plain"},
            body=b"hello body")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        d = r.json()
        self.assertEqual(d["method"], "POST")
        self.assertEqual(d["path"], "/sub/path")
        self.assertEqual(d["query_first"], {"a": "1", "b": "x y z", "empty": ""})
        self.assertEqual(d["query_lists"], {"a": ["1", "2"], "b": ["x y z"], "empty": [""]})
        self.assertEqual(d["query_item_a"], "1")
        self.assertEqual(d["h_lower"], "Value-1")
        self.assertEqual(d["h_upper"], "Value-1")
        self.assertEqual(d["h_item"], "Value-1")
        self.assertEqual(d["h_missing"], "default")
        self.assertEqual(d["headers"]["Content-Type"], "text/plain")
        self.assertEqual(d["body"], "hello body")
        self.assertEqual(d["body_type"], "bytes")
        self.assertEqual(d["hostname"], "test-host")

    def test_root_path_and_no_query(self):
        d = self.get("/").json()
        self.assertEqual(d["path"], "/")
        self.assertEqual(d["query_first"], {})
        self.assertEqual(d["body"], "")

    def test_lowercase_header_names_read_in_any_case(self):
        d = self.get("/", headers={"x-custom-header": "lower"}).json()
        self.assertEqual(d["h_upper"], "lower")
        self.assertEqual(d["headers"]["X-Custom-Header"], "lower")

    def test_all_methods_reach_the_handler(self):
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"):
            r = self.client.request(method, "/m")
            self.assertEqual(r.status, 200, method)
            self.assertEqual(r.json()["method"], method)

    def test_head_has_length_but_no_body(self):
        r = self.client.request("HEAD", "/str")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-length"], str(len("h\u00e9llo".encode())))
        # The next response on the same connection must parse: no stray body bytes were sent.
        self.assertEqual(self.get("/str").body, "h\u00e9llo".encode())

    def test_keep_alive_two_requests_one_connection(self):
        r1 = self.get("/one")
        r2 = self.get("/two")
        self.assertEqual(r1.json()["path"], "/one")
        self.assertEqual(r2.json()["path"], "/two")
        self.assertNotIn("connection", r1.headers)

    def test_pipelined_requests(self):
        self.client.send(b"GET /p1 HTTP/1.1\r\nHost: fn\r\n\r\nGET /p2 HTTP/1.1\r\nHost: fn\r\n\r\n")
        self.assertEqual(self.client.read_response().json()["path"], "/p1")
        self.assertEqual(self.client.read_response().json()["path"], "/p2")

    def test_connection_close_is_honoured(self):
        r = self.get("/", headers={"Connection": "close"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("connection"), "close")
        self.assertTrue(self.client.at_eof())

    def test_http10_closes_by_default(self):
        r = self.client.request("GET", "/", http="HTTP/1.0")
        self.assertEqual(r.status, 200)
        self.assertTrue(self.client.at_eof())

    def test_handler_connection_close_header_closes(self):
        r = self.get("/close")
        self.assertEqual(r.body, b"bye")
        self.assertEqual(r.headers.get("connection"), "close")
        self.assertTrue(self.client.at_eof())

    def test_chunked_request_body(self):
        self.client.send(
            b"POST /chunked HTTP/1.1\r\nHost: fn\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")
        r = self.client.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body"], "hello, world")
        # The connection is still usable after the chunked body and its trailer.
        self.assertEqual(self.get("/after").json()["path"], "/after")

    def test_large_body(self):
        body = bytes(range(256)) * 8192  # 2 MiB
        r = self.client.request("POST", "/big", body=body)
        self.assertEqual(r.json()["body"].encode("latin-1"), body)

    def test_expect_100_continue(self):
        self.client.send(b"POST /expect HTTP/1.1\r\nHost: fn\r\nContent-Length: 4\r\n"
                         b"Expect: 100-continue\r\n\r\n")
        # The interim response must arrive before any body byte is sent.
        status, _ = self.client.read_head()
        self.assertEqual(status, 100)
        self.client.send(b"data")
        r = self.client.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body"], "data")

    def test_dict_return_with_status_headers_body(self):
        r = self.get("/dict")
        self.assertEqual(r.status, 201)
        self.assertEqual(r.headers["x-test"], "yes")
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.json(), {"ok": True})

    def test_dict_return_with_header_pairs_and_str_body(self):
        r = self.get("/dict-list-headers")
        self.assertEqual(r.status, 202)
        self.assertEqual((r.headers["x-a"], r.headers["x-b"]), ("1", "2"))
        self.assertEqual(r.body, b"text")
        self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")

    def test_dict_return_status_only(self):
        r = self.get("/dict-status-only")
        self.assertEqual(r.status, 418)
        self.assertEqual(r.body, b"")

    def test_plain_dict_and_list_are_json_bodies(self):
        r = self.get("/plain-dict")
        self.assertEqual((r.status, r.json()), (200, {"hello": "world"}))
        self.assertEqual(r.headers["content-type"], "application/json")
        r = self.get("/list")
        self.assertEqual((r.status, r.json()), (200, [1, 2, 3]))

    def test_str_bytes_and_other_bodies(self):
        r = self.get("/str")
        self.assertEqual(r.body, "h\u00e9llo".encode("utf-8"))
        self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
        r = self.get("/bytes")
        self.assertEqual(r.body, b"\x00\x01\x02")
        self.assertEqual(r.headers["content-type"], "application/octet-stream")
        r = self.get("/bytes-typed")
        self.assertEqual(r.body, b"\x89PNG")
        self.assertEqual(r.headers["content-type"], "image/png")
        self.assertEqual(self.get("/number").body, b"42")

    def test_none_is_empty_200(self):
        r = self.get("/none")
        self.assertEqual((r.status, r.body, r.headers["content-length"]), (200, b"", "0"))

    def test_tuple_returns(self):
        r = self.get("/tuple1")
        self.assertEqual((r.status, r.body), (200, b"only body"))
        r = self.get("/tuple2")
        self.assertEqual((r.status, r.body), (201, b"created"))
        r = self.get("/tuple2-headers")
        self.assertEqual((r.status, r.body, r.headers["x-t"]), (200, b"with headers", "h"))
        r = self.get("/tuple3")
        self.assertEqual((r.status, r.json(), r.headers["x-t"]), (202, {"a": 1}, "3"))
        self.assertEqual(r.headers["content-type"], "application/json")

    def test_exception_is_500_without_traceback(self):
        r = self.get("/raise")
        self.assertEqual(r.status, 500)
        self.assertEqual(r.body, b"Internal Server Error")
        self.assertNotIn(b"secret-detail-xyz", r.body)
        # The connection survives, and the traceback went to stderr.
        self.assertEqual(self.get("/ok").status, 200)
        deadline = time.monotonic() + 5
        while "secret-detail-xyz" not in self.stderr() and time.monotonic() < deadline:
            time.sleep(0.01)
        err = self.stderr()
        self.assertIn("Traceback", err)
        self.assertIn("ValueError: secret-detail-xyz", err)

    def test_invalid_status_is_500(self):
        self.assertEqual(self.get("/bad-status").status, 500)

    def test_malformed_request_is_400(self):
        self.client.send(b"NONSENSE\r\n\r\n")
        status, _ = self.client.read_head()
        self.assertEqual(status, 400)

    def test_concurrency_20_parallel_requests(self):
        results = []
        errors = []

        def call():
            try:
                c = Client(self.sock_path)
                results.append(c.request("GET", "/sleep").json())
                c.close()
            except Exception as e:  # collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=call) for _ in range(20)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        elapsed = time.monotonic() - start
        self.assertEqual(errors, [])
        self.assertEqual(results, [{"slept": True}] * 20)
        # Each call sleeps 0.3 s: run one at a time they would take 6 s.
        self.assertLess(elapsed, 3.0)


class TestPythonPackages(ServerCase):
    """requirements.txt dependencies are installed into python_packages/ by the build step."""

    @classmethod
    def prepare_bundle(cls, bundle):
        pkg = os.path.join(bundle, "python_packages", "ironfaas_fake_pkg")
        os.makedirs(pkg)
        with open(os.path.join(pkg, "__init__.py"), "w") as f:
            f.write("VALUE = 42\n")

    def test_python_packages_importable_and_first_on_path(self):
        r = self.get("/pkg")
        self.assertEqual(r.status, 200, self.stderr())
        d = r.json()
        self.assertEqual(d["value"], 42)
        self.assertEqual(os.path.basename(d["first"]), "python_packages")


class TestGracefulStop(ServerCase):
    def test_sigterm_finishes_the_call_in_flight_then_exits_0(self):
        self.client.send(b"GET /sleep HTTP/1.1\r\nHost: fn\r\n\r\n")
        time.sleep(0.1)
        self.proc.send_signal(signal.SIGTERM)
        r = self.client.read_response()
        self.assertEqual((r.status, r.json()), (200, {"slept": True}))
        self.assertEqual(r.headers.get("connection"), "close")
        self.assertEqual(self.proc.wait(5), 0)
        self.assertFalse(os.path.exists(self.sock_path))


class TestStartupFailures(unittest.TestCase):
    def run_bundle(self, handler_source):
        tmp = tempfile.mkdtemp(prefix="ironfaas-py-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        bundle = make_bundle(tmp, handler_source)
        sock_path = os.path.join(tmp, "fn.sock")
        stderr_path = os.path.join(tmp, "stderr.log")
        proc = start_server(bundle, sock_path, stderr_path)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.fail("the server kept running with a broken handler")
        with open(stderr_path, "rb") as f:
            return code, f.read().decode("utf-8", "replace"), os.path.exists(sock_path)

    def test_import_error_exits_non_zero_with_traceback(self):
        code, err, listening = self.run_bundle('raise RuntimeError("boom at import")\n')
        self.assertNotEqual(code, 0)
        self.assertIn("Traceback", err)
        self.assertIn("RuntimeError: boom at import", err)
        self.assertFalse(listening)

    def test_syntax_error_exits_non_zero(self):
        code, err, _ = self.run_bundle("def handle(event, context)\n    return 1\n")
        self.assertNotEqual(code, 0)
        self.assertIn("SyntaxError", err)

    def test_missing_handle_exits_non_zero(self):
        code, err, _ = self.run_bundle("def other(event, context):\n    return 1\n")
        self.assertNotEqual(code, 0)
        self.assertIn("handle", err)


class TestTcpListen(unittest.TestCase):
    def test_listens_on_host_and_port_without_ironfaas_socket(self):
        tmp = tempfile.mkdtemp(prefix="ironfaas-py-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        bundle = make_bundle(tmp, ECHO_HANDLER)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        env = {k: v for k, v in os.environ.items() if k != "IRONFAAS_SOCKET"}
        env.update(HOST="127.0.0.1", PORT=str(port))
        proc = subprocess.Popen([sys.executable, "index.py"], cwd=bundle, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    self.fail("server did not listen on 127.0.0.1:%d" % port)
                time.sleep(0.01)
        s.sendall(b"GET /tcp?x=1 HTTP/1.1\r\nHost: fn\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:100])
        self.assertEqual(json.loads(data.split(b"\r\n\r\n", 1)[1])["path"], "/tcp")


class TestStartFd(unittest.TestCase):
    """A warm spare: with IRONFAAS_START_FD the runtime waits before loading the handler."""

    def start(self, tmp):
        bundle = make_bundle(tmp, "import os\nopen(os.path.join(os.environ['MARK_DIR'], 'loaded'), 'w').close()\n"
                                  "def handle(event, context):\n    return os.environ.get('IRONFAAS_START_FD', 'unset')\n")
        sock = os.path.join(tmp, "fn.sock")
        read_end, write_end = os.pipe()
        env = dict(os.environ, IRONFAAS_SOCKET=sock, IRONFAAS_START_FD=str(read_end), MARK_DIR=tmp)
        proc = subprocess.Popen([sys.executable, "index.py"], cwd=bundle, env=env, pass_fds=(read_end,),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(read_end)
        self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.wait()))
        return proc, sock, write_end

    def test_waits_for_the_byte_then_loads_and_serves(self):
        tmp = tempfile.mkdtemp(prefix="ironfaas-py-start-")
        self.addCleanup(shutil.rmtree, tmp, True)
        proc, sock, go = self.start(tmp)
        time.sleep(0.5)
        self.assertIsNone(proc.poll())
        self.assertFalse(os.path.exists(os.path.join(tmp, "loaded")), "handler loaded before the byte")
        self.assertFalse(os.path.exists(sock), "listening before the byte")
        os.write(go, b"s")
        os.close(go)
        # The socket file appears at bind(), a moment before listen(): connect until accepted.
        deadline = time.monotonic() + 10
        while True:
            try:
                c = Client(sock)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        try:
            r = c.request("GET", "/")
        finally:
            c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"unset", "the start descriptor is not left to the handler")

    def test_end_of_file_exits_without_loading(self):
        tmp = tempfile.mkdtemp(prefix="ironfaas-py-start-")
        self.addCleanup(shutil.rmtree, tmp, True)
        proc, _, go = self.start(tmp)
        time.sleep(0.2)
        os.close(go)
        self.assertEqual(proc.wait(10), 0)
        self.assertFalse(os.path.exists(os.path.join(tmp, "loaded")))


if __name__ == "__main__":
    unittest.main()
