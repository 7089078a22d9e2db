"""Tests of the rust template: build it with its own build step, start the real ./handler,
talk HTTP/1.1 to it.

Run: python3 tests/templates/test_rust_template.py
Stdlib only; needs cargo (offline is fine: the template uses no crates.io crates). The
template is built once (in setUpModule) with a test handler, the way `ironfaas build` does it
(see template_harness.py); each test class starts its own server process from that bundle,
on the Unix socket in IRONFAAS_SOCKET with a ready pipe in IRONFAAS_READY_FD, as the
platform does.
"""
import os
import shutil
import signal
import socket
import stat
import tempfile
import textwrap
import threading
import time
import unittest

import template_harness as th

HANDLER_RS = textwrap.dedent(r'''
    use std::time::Duration;

    use ironfaas_function::{json_string, Request, Response};

    fn opt(v: Option<&str>) -> String {
        v.map_or("null".to_string(), json_string)
    }

    fn echo(req: &Request) -> Response {
        let headers: Vec<String> = req
            .headers
            .iter()
            .map(|(n, v)| format!("[{},{}]", json_string(n), json_string(v)))
            .collect();
        let b: Vec<String> = req.query_param_all("b").iter().map(|v| json_string(v)).collect();
        let params: Vec<String> = req
            .query_params()
            .iter()
            .map(|(k, v)| format!("[{},{}]", json_string(k), json_string(v)))
            .collect();
        let hex: String = req.body.iter().map(|x| format!("{:02x}", x)).collect();
        Response::json_str(format!(
            concat!(
                "{{\"method\":{},\"path\":{},\"query\":{},\"a\":{},\"b\":[{}],\"params\":[{}],",
                "\"h_lower\":{},\"h_upper\":{},\"h_missing\":{},\"headers\":[{}],",
                "\"body_hex\":{},\"body_text\":{}}}"
            ),
            json_string(&req.method),
            json_string(&req.path),
            json_string(&req.query),
            opt(req.query_param("a").as_deref()),
            b.join(","),
            params.join(","),
            opt(req.header("x-custom-header")),
            opt(req.header("X-CUSTOM-HEADER")),
            opt(req.header("x-not-sent")),
            headers.join(","),
            json_string(&hex),
            json_string(&req.body_text()),
        ))
    }

    pub fn handle(req: Request) -> Response {
        match req.path.as_str() {
            "/panic" => panic!("secret-detail-xyz"),
            "/sleep" => {
                std::thread::sleep(Duration::from_millis(500));
                Response::text("slept")
            }
            "/status" => Response::text("created")
                .with_status(201)
                .with_header("X-Test", "yes")
                .append_header("Set-Cookie", "a=1")
                .append_header("Set-Cookie", "b=2"),
            "/typed" => Response::text("a,b\n").with_header("content-type", "text/csv"),
            "/json" => Response::json_str("{\"ok\":true}"),
            "/html" => Response::html("<p>hi</p>"),
            "/bytes" => Response::bytes("image/png", vec![0x89u8, b'P', b'N', b'G', 0, 255]),
            "/from-str" => Response::from("plain"),
            "/big" => Response::bytes("application/octet-stream", vec![b'x'; 300_000]),
            "/no-content" => Response::new(204).with_body("ignored"),
            "/close" => Response::text("bye").with_header("Connection", "close"),
            "/own-length" => Response::text("four").with_header("Content-Length", "999"),
            "/bad-status" => Response::text("x").with_status(42),
            "/bad-header" => Response::text("x").with_header("X-Bad", "a\r\nInjected: 1"),
            "/env" => Response::text(
                std::env::var("IRONFAAS_READY_FD").unwrap_or_else(|_| "unset".to_string()),
            ),
            _ => echo(&req),
        }
    }
''')

BUILD_DIR = None
TMP = None
BUILD_STEPS = None
CONFIG = None


def setUpModule():
    global BUILD_DIR, TMP, BUILD_STEPS, CONFIG
    TMP = tempfile.mkdtemp(prefix="ironfaas-rust-test-")
    BUILD_DIR = os.path.join(TMP, "build")
    CONFIG, BUILD_STEPS = th.build("rust", BUILD_DIR, {"src/lib.rs": HANDLER_RS})


def tearDownModule():
    shutil.rmtree(TMP, True)


def build_ok():
    if not BUILD_STEPS:
        raise AssertionError("the rust template ran no build step")
    argv, proc = BUILD_STEPS[-1]
    if proc.returncode != 0:
        raise AssertionError("build step %r failed (%d):\n%s" % (
            argv, proc.returncode, proc.stdout.decode("utf-8", "replace")))


class TestTemplateFile(unittest.TestCase):
    def test_template_yml(self):
        self.assertEqual(CONFIG["language"], "rust")
        self.assertEqual(CONFIG["mode"], "http")
        self.assertEqual(CONFIG["listen"], "unix")
        self.assertEqual(CONFIG["fprocess"], "./handler")
        self.assertEqual(CONFIG["handler_folder"], "function")
        self.assertIn("function/src/lib.rs", CONFIG["welcome_message"])
        self.assertIn("pub fn handle(req: Request) -> Response", CONFIG["welcome_message"])


class TestBuild(unittest.TestCase):
    def test_build_produces_an_executable_handler_and_no_target_dir(self):
        build_ok()
        handler = os.path.join(BUILD_DIR, "handler")
        self.assertTrue(os.path.isfile(handler))
        self.assertTrue(os.stat(handler).st_mode & stat.S_IXUSR)
        self.assertFalse(os.path.exists(os.path.join(BUILD_DIR, "target")))
        self.assertFalse(os.path.exists(os.path.join(BUILD_DIR, "function", "target")))

    def test_a_handler_that_does_not_compile_fails_the_build(self):
        with tempfile.TemporaryDirectory(prefix="ironfaas-rust-test-") as tmp:
            bad = "pub fn handle(req: ironfaas_function::Request) -> u32 { req }\n"
            _, steps = th.build("rust", os.path.join(tmp, "b"), {"src/lib.rs": bad})
            self.assertTrue(steps)
            argv, proc = steps[-1]
            self.assertNotEqual(proc.returncode, 0, "the build succeeded with a type error")
            self.assertIn(b"mismatched types", proc.stdout)
            self.assertFalse(os.path.exists(os.path.join(tmp, "b", "handler")))

    def test_the_scaffold_builds_and_answers(self):
        # The template's own function/ (what `ironfaas new --lang rust` gives) as it is.
        with tempfile.TemporaryDirectory(prefix="ironfaas-rust-test-") as tmp:
            bundle = os.path.join(tmp, "b")
            config, steps = th.build("rust", bundle, {})
            argv, proc = steps[-1]
            self.assertEqual(proc.returncode, 0, proc.stdout.decode("utf-8", "replace"))
            sock = os.path.join(tmp, "fn.sock")
            server = th.Server(bundle, config["fprocess"], {"IRONFAAS_SOCKET": sock},
                               os.path.join(tmp, "stderr.log"))
            try:
                self.assertEqual(server.wait_ready_byte(), b"1", server.stderr())
                c = th.Client(sock)
                r = c.request("POST", "/hi?name=Zo%C3%AB", body=b"payload",
                              headers={"Content-Type": "text/plain"})
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json(), {"hello": "Zo\u00eb", "method": "POST", "path": "/hi",
                                            "content_type": "text/plain", "body": "payload"})
                c.close()
            finally:
                server.stop()


class ServerCase(unittest.TestCase):
    """Starts ./handler from the shared bundle for each test class."""

    @classmethod
    def setUpClass(cls):
        build_ok()
        cls.tmp = tempfile.mkdtemp(prefix="ironfaas-rust-run-")
        cls.sock_path = os.path.join(cls.tmp, "fn.sock")
        env = dict(CONFIG.get("environment") or {}, IRONFAAS_SOCKET=cls.sock_path)
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
        self.client = th.Client(self.sock_path)

    def tearDown(self):
        self.client.close()

    def get(self, path, **kw):
        return self.client.request("GET", path, **kw)


class TestReady(ServerCase):
    def test_ready_byte_then_pipe_closed_and_socket_accepting(self):
        self.assertEqual(self.ready, b"1")
        self.assertTrue(self.server.ready_pipe_closed(), "the server kept the ready pipe open")
        self.assertTrue(stat.S_ISSOCK(os.stat(self.sock_path).st_mode))

    def test_ready_fd_is_not_passed_on_in_the_environment(self):
        self.assertEqual(self.get("/env").body, b"unset")

    def test_health(self):
        r = self.get("/_/health")
        self.assertEqual((r.status, r.body), (200, b"OK"))
        r = self.client.request("HEAD", "/_/health")
        self.assertEqual((r.status, r.headers["content-length"]), (200, "2"))
        self.assertEqual(self.get("/after-health").json()["path"], "/after-health")


class TestPassThrough(ServerCase):
    def test_method_path_query_headers_body(self):
        body = bytes(range(256))
        r = self.client.request(
            "PUT", "/some/p%C3%A5th%20x?a=1&b=x+y&b=%2F%26&a=2&flag",
            headers={"X-Custom-Header": "Value One", "Content-Type": "application/x-test"},
            body=body)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        d = r.json()
        self.assertEqual(d["method"], "PUT")
        self.assertEqual(d["path"], "/some/p\u00e5th x")
        self.assertEqual(d["query"], "a=1&b=x+y&b=%2F%26&a=2&flag")
        self.assertEqual(d["a"], "1")
        self.assertEqual(d["b"], ["x y", "/&"])
        self.assertEqual(d["params"], [["a", "1"], ["b", "x y"], ["b", "/&"], ["a", "2"],
                                       ["flag", ""]])
        self.assertEqual(d["h_lower"], "Value One")
        self.assertEqual(d["h_upper"], "Value One")
        self.assertIsNone(d["h_missing"])
        self.assertIn(["X-Custom-Header", "Value One"], d["headers"])
        self.assertIn(["Host", "fn"], d["headers"])
        self.assertEqual(bytes.fromhex(d["body_hex"]), body)

    def test_no_query_and_no_body(self):
        d = self.get("/plain").json()
        self.assertEqual((d["query"], d["a"], d["params"], d["body_hex"]), ("", None, [], ""))

    def test_all_methods_reach_the_handler(self):
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"):
            r = self.client.request(method, "/m")
            self.assertEqual(r.status, 200, method)
            self.assertEqual(r.json()["method"], method)

    def test_absolute_form_target(self):
        d = self.get("http://example.com/abs/path?a=9").json()
        self.assertEqual((d["path"], d["a"]), ("/abs/path", "9"))

    def test_utf8_header_value(self):
        self.client.send("GET /u HTTP/1.1\r\nHost: fn\r\nX-Custom-Header: h\u00e9\r\n\r\n"
                         .encode("utf-8"))
        self.assertEqual(self.client.read_response().json()["h_lower"], "h\u00e9")

    def test_large_body(self):
        body = bytes(range(256)) * 8192  # 2 MiB
        r = self.client.request("POST", "/big-in", body=body)
        self.assertEqual(bytes.fromhex(r.json()["body_hex"]), body)


class TestResponses(ServerCase):
    def test_status_and_headers(self):
        r = self.get("/status")
        self.assertEqual((r.status, r.body), (201, b"created"))
        self.assertEqual(r.headers["x-test"], "yes")
        self.assertEqual(r.headers["set-cookie"], "a=1, b=2")
        self.assertEqual(r.headers["content-type"], "text/plain; charset=utf-8")
        self.assertEqual(r.headers["content-length"], "7")
        self.assertIn("date", r.headers)

    def test_constructors(self):
        r = self.get("/typed")
        self.assertEqual((r.headers["content-type"], r.body), ("text/csv", b"a,b\n"))
        r = self.get("/json")
        self.assertEqual((r.headers["content-type"], r.json()), ("application/json", {"ok": True}))
        r = self.get("/html")
        self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
        r = self.get("/bytes")
        self.assertEqual((r.headers["content-type"], r.body), ("image/png", b"\x89PNG\x00\xff"))
        self.assertEqual(self.get("/from-str").body, b"plain")

    def test_big_response_then_keep_alive(self):
        r = self.get("/big")
        self.assertEqual(r.body, b"x" * 300000)
        self.assertEqual(self.get("/after-big").json()["path"], "/after-big")

    def test_204_has_no_body(self):
        r = self.get("/no-content")
        self.assertEqual(r.status, 204)
        self.assertNotIn("content-length", r.headers)
        # No stray body bytes: the next response on the connection parses.
        self.assertEqual(self.get("/after-204").json()["path"], "/after-204")

    def test_handler_content_length_is_replaced(self):
        r = self.get("/own-length")
        self.assertEqual((r.headers["content-length"], r.body), ("4", b"four"))

    def test_head_has_length_but_no_body(self):
        r = self.client.request("HEAD", "/big")
        self.assertEqual((r.status, r.headers["content-length"]), (200, "300000"))
        self.assertEqual(self.get("/after-head").json()["path"], "/after-head")

    def test_invalid_status_and_header_injection_are_500(self):
        r = self.get("/bad-status")
        self.assertEqual((r.status, r.body), (500, b"Internal Server Error"))
        r = self.get("/bad-header")
        self.assertEqual(r.status, 500)
        self.assertNotIn("injected", r.headers)
        self.assertIn("invalid status 42", self.server.wait_for_stderr("invalid status 42"))


class TestConnections(ServerCase):
    def test_keep_alive_two_requests_one_connection(self):
        r1 = self.get("/one")
        r2 = self.get("/two")
        self.assertEqual((r1.json()["path"], r2.json()["path"]), ("/one", "/two"))
        self.assertNotIn("connection", r1.headers)
        self.assertNotIn("connection", r2.headers)

    def test_pipelined_requests(self):
        self.client.send(b"GET /p1 HTTP/1.1\r\nHost: fn\r\n\r\nGET /p2 HTTP/1.1\r\nHost: fn\r\n\r\n")
        self.assertEqual(self.client.read_response().json()["path"], "/p1")
        self.assertEqual(self.client.read_response().json()["path"], "/p2")

    def test_connection_close_is_honoured(self):
        r = self.get("/", headers={"Connection": "close"})
        self.assertEqual((r.status, r.headers.get("connection")), (200, "close"))
        self.assertTrue(self.client.at_eof())

    def test_handler_connection_close_closes(self):
        r = self.get("/close")
        self.assertEqual((r.body, r.headers.get("connection")), (b"bye", "close"))
        self.assertTrue(self.client.at_eof())

    def test_http10_closes_by_default_and_keeps_alive_on_request(self):
        r = self.client.request("GET", "/", headers={"Connection": "keep-alive"}, http="HTTP/1.0")
        self.assertEqual(r.headers.get("connection"), "keep-alive")
        r = self.client.request("GET", "/", http="HTTP/1.0")
        self.assertEqual(r.status, 200)
        self.assertTrue(self.client.at_eof())

    def test_chunked_request_body(self):
        self.client.send(
            b"POST /chunked HTTP/1.1\r\nHost: fn\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")
        r = self.client.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body_text"], "hello, world")
        # The connection is still usable after the chunked body and its trailer.
        self.assertEqual(self.get("/after").json()["path"], "/after")

    def test_chunked_body_sent_in_pieces(self):
        self.client.send(b"POST /c HTTP/1.1\r\nHost: fn\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab")
        time.sleep(0.05)
        self.client.send(b"c\r\n")
        time.sleep(0.05)
        self.client.send(b"A\r\n0123456789\r\n0\r\n\r\n")
        self.assertEqual(self.client.read_response().json()["body_text"], "abc0123456789")

    def test_expect_100_continue(self):
        self.client.send(b"POST /expect HTTP/1.1\r\nHost: fn\r\nContent-Length: 4\r\n"
                         b"Expect: 100-continue\r\n\r\n")
        # The interim response must arrive before any body byte is sent.
        status, _ = self.client.read_head()
        self.assertEqual(status, 100)
        self.client.send(b"data")
        r = self.client.read_response()
        self.assertEqual((r.status, r.json()["body_text"]), (200, "data"))

    def test_concurrent_requests_run_in_parallel(self):
        results, errors = [], []

        def call():
            try:
                c = th.Client(self.sock_path)
                results.append(c.request("GET", "/sleep").body)
                c.close()
            except Exception as e:  # collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=call) for _ in range(10)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        elapsed = time.monotonic() - start
        self.assertEqual(errors, [])
        self.assertEqual(results, [b"slept"] * 10)
        # Each call sleeps 0.5 s: one at a time they would take 5 s.
        self.assertLess(elapsed, 2.5)


class TestBadRequests(ServerCase):
    def status_for(self, raw):
        self.client.send(raw)
        status, _ = self.client.read_head()
        return status

    def test_malformed_request_line_is_400(self):
        self.assertEqual(self.status_for(b"NONSENSE\r\n\r\n"), 400)

    def test_unknown_http_version_is_505(self):
        self.assertEqual(self.status_for(b"GET / HTTP/2.0\r\n\r\n"), 505)

    def test_unsupported_transfer_encoding_is_501(self):
        self.assertEqual(self.status_for(
            b"POST / HTTP/1.1\r\nHost: fn\r\nTransfer-Encoding: gzip\r\n\r\n"), 501)

    def test_bad_content_length_is_400(self):
        self.assertEqual(self.status_for(
            b"POST / HTTP/1.1\r\nHost: fn\r\nContent-Length: 1x\r\n\r\n"), 400)

    def test_conflicting_content_lengths_are_400(self):
        self.assertEqual(self.status_for(
            b"POST / HTTP/1.1\r\nHost: fn\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
            400)

    def test_bad_chunk_size_is_400(self):
        self.assertEqual(self.status_for(
            b"POST / HTTP/1.1\r\nHost: fn\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), 400)

    def test_chunk_without_crlf_after_its_data_is_400(self):
        self.assertEqual(self.status_for(
            b"POST / HTTP/1.1\r\nHost: fn\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhelloXX\r\n0\r\n\r\n"), 400)

    def test_header_line_too_long_is_431(self):
        self.assertEqual(self.status_for(
            b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n"), 431)

    def test_unsupported_expectation_is_417(self):
        self.assertEqual(self.status_for(
            b"POST / HTTP/1.1\r\nHost: fn\r\nExpect: magic\r\nContent-Length: 0\r\n\r\n"), 417)

    def test_server_still_serves_after_bad_requests(self):
        self.status_for(b"NONSENSE\r\n\r\n")
        c = th.Client(self.sock_path)
        self.assertEqual(c.request("GET", "/fine").json()["path"], "/fine")
        c.close()


class TestPanic(ServerCase):
    def test_panic_is_500_and_the_server_keeps_serving(self):
        r = self.get("/panic")
        self.assertEqual((r.status, r.body), (500, b"Internal Server Error"))
        self.assertNotIn(b"secret-detail-xyz", r.body)
        # The same connection and a new one still work.
        self.assertEqual(self.get("/ok").json()["path"], "/ok")
        c = th.Client(self.sock_path)
        self.assertEqual(c.request("GET", "/new").json()["path"], "/new")
        c.close()
        self.assertIsNone(self.proc.poll())
        err = self.server.wait_for_stderr("answered 500")
        self.assertIn("secret-detail-xyz", err)
        self.assertIn("panicked in GET /panic", err)

    def test_many_panics_in_parallel(self):
        errors = []

        def call():
            try:
                c = th.Client(self.sock_path)
                for _ in range(5):
                    if c.request("GET", "/panic").status != 500:
                        errors.append("not 500")
                c.close()
            except Exception as e:  # collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(self.get("/still").json()["path"], "/still")


class TestGracefulStop(ServerCase):
    def test_sigterm_finishes_the_call_in_flight_then_exits_0(self):
        idle = th.Client(self.sock_path)  # an idle keep-alive connection must not block the exit
        self.assertEqual(idle.request("GET", "/idle").status, 200)
        self.client.send(b"GET /sleep HTTP/1.1\r\nHost: fn\r\n\r\n")
        time.sleep(0.15)
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        r = self.client.read_response()
        self.assertEqual((r.status, r.body), (200, b"slept"))
        self.assertEqual(r.headers.get("connection"), "close")
        # The call was not cut short: it took its full 0.5 s.
        self.assertGreater(time.monotonic() - sent, 0.2)
        self.assertEqual(self.proc.wait(5), 0)
        self.assertFalse(os.path.exists(self.sock_path))
        idle.close()


class TestGracefulStopMidBody(ServerCase):
    def test_a_request_whose_body_is_still_arriving_is_served(self):
        self.client.send(b"POST /slow-body HTTP/1.1\r\nHost: fn\r\nContent-Length: 10\r\n\r\n01234")
        time.sleep(0.1)
        self.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        self.assertIsNone(self.proc.poll(), "exited with a request in flight")
        # The socket file is gone: no new connections.
        with self.assertRaises(OSError):
            th.Client(self.sock_path)
        self.client.send(b"56789")
        r = self.client.read_response()
        self.assertEqual(r.json()["body_text"], "0123456789")
        self.assertEqual(r.headers.get("connection"), "close")
        self.assertEqual(self.proc.wait(5), 0)


class TestGracefulStopMidHead(ServerCase):
    def test_a_request_whose_first_line_is_still_arriving_is_served(self):
        self.client.send(b"GET /ha")
        time.sleep(0.1)
        self.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        self.assertIsNone(self.proc.poll(), "exited with a request in flight")
        self.client.send(b"lf HTTP/1.1\r\nHost: fn\r\n\r\n")
        r = self.client.read_response()
        self.assertEqual((r.status, r.json()["path"]), (200, "/half"))
        self.assertEqual(self.proc.wait(5), 0)


class TestSigintAlsoStops(ServerCase):
    def test_sigint_exits_0(self):
        self.proc.send_signal(signal.SIGINT)
        self.assertEqual(self.proc.wait(5), 0)


class TestTcpListen(unittest.TestCase):
    def test_listens_on_host_and_port_without_ironfaas_socket(self):
        build_ok()
        with tempfile.TemporaryDirectory(prefix="ironfaas-rust-run-") as tmp:
            port = th.free_port()
            server = th.Server(BUILD_DIR, CONFIG["fprocess"],
                               {"HOST": "127.0.0.1", "PORT": str(port)},
                               os.path.join(tmp, "stderr.log"))
            try:
                self.assertEqual(server.wait_ready_byte(), b"1", server.stderr())
                c = th.Client(("127.0.0.1", port))
                self.assertEqual(c.request("GET", "/tcp?a=5").json()["a"], "5")
                self.assertEqual(c.request("GET", "/tcp2").json()["path"], "/tcp2")
                c.send(b"GET /sleep HTTP/1.1\r\nHost: fn\r\n\r\n")
                time.sleep(0.1)
                server.proc.send_signal(signal.SIGTERM)
                self.assertEqual(c.read_response().body, b"slept")
                self.assertEqual(server.proc.wait(5), 0)
                c.close()
                with self.assertRaises(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=1)
            finally:
                server.stop()

    def test_bad_port_exits_2(self):
        build_ok()
        with tempfile.TemporaryDirectory(prefix="ironfaas-rust-run-") as tmp:
            server = th.Server(BUILD_DIR, CONFIG["fprocess"], {"PORT": "http"},
                               os.path.join(tmp, "stderr.log"))
            try:
                self.assertEqual(server.proc.wait(10), 2)
                self.assertIn("PORT must be a port number", server.stderr())
                # No ready byte: the pipe just closes.
                self.assertTrue(server.ready_pipe_closed())
            finally:
                server.stop()


if __name__ == "__main__":
    unittest.main()
