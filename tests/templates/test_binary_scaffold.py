"""Tests of the binary template's scaffold: build handler.c with the template's build step,
start the real ./handler, talk HTTP/1.1 to it over TCP.

Run: python3 tests/templates/test_binary_scaffold.py
Stdlib only; needs a C compiler as `cc`. The scaffold is built once (in setUpModule) the way
`ironfaas build` does it (see template_harness.py); each test class starts its own server
with PORT, HOST and a ready pipe in IRONFAAS_READY_FD, as the platform does.
"""
import os
import shutil
import signal
import socket
import stat
import tempfile
import threading
import time
import unittest

import template_harness as th

TMP = None
BUILD_DIR = None
CONFIG = None
BUILD_STEPS = None


def setUpModule():
    global TMP, BUILD_DIR, CONFIG, BUILD_STEPS
    TMP = tempfile.mkdtemp(prefix="ironfaas-binary-test-")
    BUILD_DIR = os.path.join(TMP, "build")
    # The scaffold as `ironfaas new` gives it: the template's own files, nothing added.
    CONFIG, BUILD_STEPS = th.build("binary", BUILD_DIR, {})


def tearDownModule():
    shutil.rmtree(TMP, True)


def build_ok():
    if not BUILD_STEPS:
        raise AssertionError("the binary template ran no build step for handler.c")
    argv, proc = BUILD_STEPS[-1]
    if proc.returncode != 0:
        raise AssertionError("build step %r failed (%d):\n%s" % (
            argv, proc.returncode, proc.stdout.decode("utf-8", "replace")))


class TestTemplateFile(unittest.TestCase):
    def test_template_yml(self):
        self.assertEqual(CONFIG["language"], "binary")
        self.assertEqual((CONFIG["mode"], CONFIG["listen"]), ("http", "tcp"))
        self.assertEqual(CONFIG["fprocess"], "./handler")
        self.assertEqual(CONFIG["handler_folder"], ".")
        self.assertEqual([s.get("if_exists") for s in CONFIG["build"]], ["handler.c"])
        self.assertIn("handler.c", CONFIG["welcome_message"])


class TestBuild(unittest.TestCase):
    def test_the_scaffold_compiles_without_warnings(self):
        build_ok()
        argv, proc = BUILD_STEPS[-1]
        self.assertEqual(proc.stdout, b"", "compiler output: %r" % proc.stdout)
        handler = os.path.join(BUILD_DIR, "handler")
        self.assertTrue(os.stat(handler).st_mode & stat.S_IXUSR)

    def test_own_binary_is_kept_and_handler_c_not_compiled(self):
        # A user who brings a prebuilt `handler`: the template's handler.c is in the build
        # dir too (handler_folder is "."), and must not replace it.
        with tempfile.TemporaryDirectory(prefix="ironfaas-binary-test-") as tmp:
            own = b"#!/bin/sh\necho mine\n"
            build_dir = os.path.join(tmp, "b")
            _, steps = th.build("binary", build_dir, {"handler": own})
            self.assertTrue(all(p.returncode == 0 for _, p in steps))
            with open(os.path.join(build_dir, "handler"), "rb") as f:
                self.assertEqual(f.read(), own)

    def test_no_handler_c_skips_the_step(self):
        with tempfile.TemporaryDirectory(prefix="ironfaas-binary-test-") as tmp:
            build_dir = os.path.join(tmp, "b")
            shutil.copytree(os.path.join(th.TEMPLATES, "binary"), build_dir,
                            ignore=shutil.ignore_patterns("template.yml", "handler.c"))
            ran = [s for s in CONFIG["build"]
                   if not s.get("if_exists")
                   or os.path.exists(os.path.join(build_dir, s["if_exists"]))]
            self.assertEqual(ran, [])

    def test_a_handler_c_that_does_not_compile_fails_the_build(self):
        with tempfile.TemporaryDirectory(prefix="ironfaas-binary-test-") as tmp:
            build_dir = os.path.join(tmp, "b")
            _, steps = th.build("binary", build_dir, {"handler.c": "int main(void) { return x; }\n"})
            self.assertTrue(steps)
            self.assertNotEqual(steps[-1][1].returncode, 0)
            self.assertFalse(os.path.exists(os.path.join(build_dir, "handler")))


class ServerCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        build_ok()
        cls.tmp = tempfile.mkdtemp(prefix="ironfaas-binary-run-")
        cls.port = th.free_port()
        cls.address = ("127.0.0.1", cls.port)
        env = dict(CONFIG.get("environment") or {}, HOST="127.0.0.1", PORT=str(cls.port))
        cls.server = th.Server(BUILD_DIR, CONFIG["fprocess"], env,
                               os.path.join(cls.tmp, "stderr.log"))
        cls.proc = cls.server.proc
        cls.ready = cls.server.wait_ready_byte()
        if cls.ready != b"1":
            err = cls.server.stderr()
            cls.server.stop()
            shutil.rmtree(cls.tmp, True)
            raise AssertionError("no ready byte (got %r); stderr:\n%s" % (cls.ready, err))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, True)

    def setUp(self):
        self.client = th.Client(self.address)

    def tearDown(self):
        self.client.close()

    def get(self, path, **kw):
        return self.client.request("GET", path, **kw)


class TestServing(ServerCase):
    def test_ready_byte_then_pipe_closed_and_accepting(self):
        self.assertEqual(self.ready, b"1")
        self.assertTrue(self.server.ready_pipe_closed(), "the server kept the ready pipe open")
        # The byte promises a listening socket: a new connection succeeds at once.
        socket.create_connection(self.address, timeout=1).close()

    def test_health(self):
        r = self.get("/_/health")
        self.assertEqual((r.status, r.body), (200, b"OK"))
        r = self.client.request("HEAD", "/_/health")
        self.assertEqual((r.status, r.headers["content-length"]), (200, "2"))

    def test_echo_of_method_and_path(self):
        r = self.get("/some/path?x=1&y=2")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "text/plain; charset=utf-8")
        self.assertEqual(r.body, b"GET /some/path?x=1&y=2\n")
        r = self.client.request("DELETE", "/thing")
        self.assertEqual(r.body, b"DELETE /thing\n")

    def test_content_length_body(self):
        r = self.client.request("POST", "/upload", body=b"x" * 100000)
        self.assertEqual(r.body, b"POST /upload\nbody: 100000 bytes\n")

    def test_chunked_body(self):
        self.client.send(b"POST /c HTTP/1.1\r\nHost: fn\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")
        self.assertEqual(self.client.read_response().body, b"POST /c\nbody: 12 bytes\n")
        self.assertEqual(self.get("/after").body, b"GET /after\n")

    def test_expect_100_continue(self):
        self.client.send(b"POST /e HTTP/1.1\r\nHost: fn\r\nContent-Length: 4\r\n"
                         b"Expect: 100-continue\r\n\r\n")
        status, _ = self.client.read_head()
        self.assertEqual(status, 100)
        self.client.send(b"data")
        self.assertEqual(self.client.read_response().body, b"POST /e\nbody: 4 bytes\n")

    def test_head_has_length_but_no_body(self):
        r = self.client.request("HEAD", "/h")
        self.assertEqual((r.status, r.headers["content-length"]), (200, str(len(b"HEAD /h\n"))))
        self.assertEqual(self.get("/next").body, b"GET /next\n")

    def test_keep_alive_two_requests_one_connection(self):
        r1 = self.get("/one")
        r2 = self.get("/two")
        self.assertEqual((r1.body, r2.body), (b"GET /one\n", b"GET /two\n"))
        self.assertNotIn("connection", r1.headers)
        self.assertNotIn("connection", r2.headers)

    def test_pipelined_requests(self):
        self.client.send(b"GET /p1 HTTP/1.1\r\nHost: fn\r\n\r\n"
                         b"POST /p2 HTTP/1.1\r\nHost: fn\r\nContent-Length: 3\r\n\r\nabc"
                         b"GET /p3 HTTP/1.1\r\nHost: fn\r\n\r\n")
        self.assertEqual(self.client.read_response().body, b"GET /p1\n")
        self.assertEqual(self.client.read_response().body, b"POST /p2\nbody: 3 bytes\n")
        self.assertEqual(self.client.read_response().body, b"GET /p3\n")

    def test_request_sent_byte_by_byte(self):
        for b in b"PUT /slow HTTP/1.1\r\nHost: fn\r\nContent-Length: 2\r\n\r\nok":
            self.client.send(bytes([b]))
        self.assertEqual(self.client.read_response().body, b"PUT /slow\nbody: 2 bytes\n")

    def test_connection_close_is_honoured(self):
        r = self.get("/bye", headers={"Connection": "close"})
        self.assertEqual((r.body, r.headers.get("connection")), (b"GET /bye\n", "close"))
        self.assertTrue(self.client.at_eof())

    def test_http10_closes_by_default_and_keeps_alive_on_request(self):
        r = self.client.request("GET", "/k", headers={"Connection": "keep-alive"}, http="HTTP/1.0")
        self.assertEqual(r.headers.get("connection"), "keep-alive")
        self.client.request("GET", "/c", http="HTTP/1.0")
        self.assertTrue(self.client.at_eof())

    def test_bad_requests(self):
        for raw, status in [
            (b"NONSENSE\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n", 400),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n",
             400),
            (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", 431),
        ]:
            c = th.Client(self.address)
            c.send(raw)
            got, _ = c.read_head()
            self.assertEqual(got, status, raw[:40])
            c.close()
        self.assertEqual(self.get("/still-fine").body, b"GET /still-fine\n")

    def test_parallel_connections(self):
        errors = []

        def call(i):
            try:
                c = th.Client(self.address)
                for j in range(20):
                    body = c.request("GET", "/c%d/%d" % (i, j)).body
                    if body != b"GET /c%d/%d\n" % (i, j):
                        errors.append(body)
                c.close()
            except Exception as e:  # collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])


class TestGracefulStop(ServerCase):
    def test_sigterm_finishes_the_request_in_flight_then_exits_0(self):
        idle = th.Client(self.address)  # an idle keep-alive connection must not block the exit
        self.assertEqual(idle.request("GET", "/idle").status, 200)
        # A request whose body is still arriving when SIGTERM comes is finished.
        self.client.send(b"POST /late HTTP/1.1\r\nHost: fn\r\nContent-Length: 10\r\n\r\n01234")
        time.sleep(0.1)
        self.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        self.assertIsNone(self.proc.poll(), "exited with a request in flight")
        with self.assertRaises(OSError):  # no longer accepting
            socket.create_connection(self.address, timeout=1).close()
        self.client.send(b"56789")
        r = self.client.read_response()
        self.assertEqual(r.body, b"POST /late\nbody: 10 bytes\n")
        self.assertEqual(r.headers.get("connection"), "close")
        self.assertEqual(self.proc.wait(5), 0)
        idle.close()


class TestSigtermWhenIdle(ServerCase):
    def test_sigterm_with_nothing_in_flight_exits_0_at_once(self):
        self.assertEqual(self.get("/x").status, 200)  # leaves an idle keep-alive connection
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(5), 0)
        self.assertLess(time.monotonic() - start, 1.0)


class TestUnixSocket(unittest.TestCase):
    def test_listens_on_ironfaas_socket_when_set(self):
        build_ok()
        with tempfile.TemporaryDirectory(prefix="ironfaas-binary-run-") as tmp:
            sock = os.path.join(tmp, "fn.sock")
            server = th.Server(BUILD_DIR, CONFIG["fprocess"], {"IRONFAAS_SOCKET": sock},
                               os.path.join(tmp, "stderr.log"))
            try:
                self.assertEqual(server.wait_ready_byte(), b"1", server.stderr())
                c = th.Client(sock)
                self.assertEqual(c.request("GET", "/u").body, b"GET /u\n")
                server.proc.send_signal(signal.SIGTERM)
                self.assertEqual(server.proc.wait(5), 0)
                self.assertFalse(os.path.exists(sock))
                c.close()
            finally:
                server.stop()


class TestListenFailure(unittest.TestCase):
    def test_port_in_use_exits_non_zero_without_ready_byte(self):
        build_ok()
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with tempfile.TemporaryDirectory(prefix="ironfaas-binary-run-") as tmp:
            server = th.Server(BUILD_DIR, CONFIG["fprocess"], {"HOST": "127.0.0.1",
                                                               "PORT": str(port)},
                               os.path.join(tmp, "stderr.log"))
            try:
                self.assertNotEqual(server.proc.wait(10), 0)
                self.assertTrue(server.ready_pipe_closed())
                self.assertIn("bind", server.stderr())
            finally:
                server.stop()
                taken.close()


if __name__ == "__main__":
    unittest.main()
