"""ironfaas python3-http runtime: serves function/handler.py over HTTP/1.1.

Started by index.py; kept in a module of its own because a script run as
__main__ is compiled on every start while a module's bytecode is cached
(the build step precompiles it), which saves a few milliseconds per start.

The handler contract is OpenFaaS python3-http's: ``handle(event, context)``.

This server is deliberately lean so that a replica answers its first request a
few milliseconds after the process starts. It uses only modules the interpreter
has already loaded at start-up (os, sys, time) and builtin C modules (_socket,
_thread, _signal, errno): importing socket.py, threading, http.server or
asyncio would pull in enum, re, selectors and friends and cost more than the
whole server. json and traceback are imported on first use.

One thread per connection; keep-alive, Content-Length and chunked request
bodies, ``Expect: 100-continue``; every response carries Content-Length.
Listens on the Unix socket in $IRONFAAS_SOCKET, else on $HOST:$PORT
(default 0.0.0.0:8080). ``GET /_/health`` answers 200 ``OK``.
"""
import errno
import os
import sys
import time
import _signal
import _socket
import _thread
from _collections_abc import Mapping

MAX_LINE = 65536
MAX_HEADERS = 100
RECV_SIZE = 65536
TEXT_HTML = "text/html; charset=utf-8"

REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
    204: "No Content", 205: "Reset Content", 206: "Partial Content",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required",
    412: "Precondition Failed", 413: "Content Too Large", 414: "URI Too Long",
    415: "Unsupported Media Type", 416: "Range Not Satisfiable", 417: "Expectation Failed",
    418: "I'm a teapot", 422: "Unprocessable Content", 425: "Too Early",
    428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}

_HEX = frozenset(b"0123456789abcdefABCDEF")


class Headers(Mapping):
    """Request headers: a case-insensitive mapping, names in Title-Case as Flask shows them.

    A header sent several times reads as its values joined with ", ";
    ``getlist(name)`` returns them one by one.
    """

    __slots__ = ("_d",)

    def __init__(self, pairs):
        d = {}
        for name, value in pairs:
            key = name.lower()
            entry = d.get(key)
            if entry is None:
                d[key] = (name.title(), [value])
            else:
                entry[1].append(value)
        self._d = d

    def __getitem__(self, key):
        if not isinstance(key, str):
            raise KeyError(key)
        return ", ".join(self._d[key.lower()][1])

    def get(self, key, default=None, type=None):
        entry = self._d.get(key.lower()) if isinstance(key, str) else None
        if entry is None:
            return default
        value = ", ".join(entry[1])
        if type is None:
            return value
        try:
            return type(value)
        except ValueError:
            return default

    def getlist(self, key, type=None):
        entry = self._d.get(key.lower()) if isinstance(key, str) else None
        return _convert_list(entry[1] if entry else (), type)

    def __contains__(self, key):
        return isinstance(key, str) and key.lower() in self._d

    def __iter__(self):
        return (entry[0] for entry in self._d.values())

    def __len__(self):
        return len(self._d)

    def __repr__(self):
        return "Headers(%r)" % dict(self.items())


class Query(Mapping):
    """Query-string arguments as a multi-dict, like Flask's ``request.args``.

    ``q['a']`` and ``q.get('a')`` give the first value, ``q.getlist('a')`` all of them.
    """

    __slots__ = ("_d",)

    def __init__(self, lists):
        self._d = lists

    def __getitem__(self, key):
        return self._d[key][0]

    def get(self, key, default=None, type=None):
        values = self._d.get(key)
        if not values:
            return default
        if type is None:
            return values[0]
        try:
            return type(values[0])
        except ValueError:
            return default

    def getlist(self, key, type=None):
        return _convert_list(self._d.get(key, ()), type)

    def lists(self):
        return ((k, list(v)) for k, v in self._d.items())

    def to_dict(self, flat=True):
        if flat:
            return {k: v[0] for k, v in self._d.items()}
        return {k: list(v) for k, v in self._d.items()}

    def __contains__(self, key):
        return key in self._d

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def __repr__(self):
        return "Query(%r)" % list((k, v) for k, vs in self._d.items() for v in vs)


def _convert_list(values, type):
    if type is None:
        return list(values)
    out = []
    for value in values:
        try:
            out.append(type(value))
        except ValueError:
            pass
    return out


class Event:
    """The request as the handler sees it (OpenFaaS python3-http ``event``)."""

    def __init__(self, body, headers, method, query, path):
        self.body = body
        self.headers = headers
        self.method = method
        self.query = query
        self.path = path


class Context:
    """Per-call context (OpenFaaS python3-http ``context``)."""

    def __init__(self):
        self.hostname = os.environ.get("HOSTNAME", "localhost")


def unquote(raw, plus):
    """Percent-decode ``raw`` (bytes) to str as UTF-8; ``plus`` also turns '+' into ' '."""
    if plus and b"+" in raw:
        raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        parts = raw.split(b"%")
        out = [parts[0]]
        for part in parts[1:]:
            if len(part) >= 2 and part[0] in _HEX and part[1] in _HEX:
                out.append(bytes((int(part[:2], 16),)))
                out.append(part[2:])
            else:
                out.append(b"%")
                out.append(part)
        raw = b"".join(out)
    return raw.decode("utf-8", "replace")


def parse_query(raw):
    """Parse a raw query string (bytes) into a Query multi-dict."""
    lists = {}
    for item in raw.split(b"&"):
        if item:
            key, _, value = item.partition(b"=")
            lists.setdefault(unquote(key, True), []).append(unquote(value, True))
    return Query(lists)


class BadRequest(Exception):
    """The request cannot be served; answer ``status`` and close the connection."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Closed(Exception):
    """The peer closed the connection in the middle of a request."""


class Reader:
    """Buffered reads from a connected socket."""

    __slots__ = ("sock", "buf", "pos")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.pos = 0

    def _fill(self):
        data = self.sock.recv(RECV_SIZE)
        if not data:
            return False
        self.buf = self.buf[self.pos:] + data if self.pos < len(self.buf) else data
        self.pos = 0
        return True

    def readline(self, too_long_status):
        """One line including its '\\n'; b'' at end of stream; BadRequest if over MAX_LINE."""
        while True:
            i = self.buf.find(b"\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i + 1]
                self.pos = i + 1
                return line
            if len(self.buf) - self.pos > MAX_LINE:
                raise BadRequest(too_long_status, "line too long")
            if not self._fill():
                if self.pos < len(self.buf):
                    raise Closed()
                return b""

    def read(self, n):
        """Exactly ``n`` bytes; Closed if the stream ends first."""
        avail = len(self.buf) - self.pos
        if avail >= n:
            data = self.buf[self.pos:self.pos + n]
            self.pos += n
            return data
        out = bytearray(n)
        out[:avail] = self.buf[self.pos:]
        self.buf = b""
        self.pos = 0
        view = memoryview(out)
        got = avail
        recv_into = self.sock.recv_into
        while got < n:
            k = recv_into(view[got:])
            if not k:
                raise Closed()
            got += k
        return bytes(out)


def read_chunked(reader):
    """Decode a chunked request body (trailers are read and dropped)."""
    parts = []
    while True:
        line = reader.readline(400)
        if not line:
            raise Closed()
        size = line.split(b";", 1)[0].strip()
        if not size or any(c not in _HEX for c in size):
            raise BadRequest(400, "invalid chunk size")
        size = int(size, 16)
        if size == 0:
            while True:
                line = reader.readline(431)
                if not line:
                    raise Closed()
                if line in (b"\r\n", b"\n"):
                    return b"".join(parts)
        parts.append(reader.read(size))
        if reader.readline(400) not in (b"\r\n", b"\n"):
            raise BadRequest(400, "chunk not followed by CRLF")


_json = None


def to_json(value):
    """JSON-encode a response body (compact, UTF-8, str() for unknown types)."""
    global _json
    if _json is None:
        import json
        _json = json
    return _json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def body_bytes(body):
    """Response body as bytes and the Content-Type to use if the handler set none."""
    if body is None:
        return b"", None
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8"), TEXT_HTML
    if isinstance(body, (dict, list)):
        return to_json(body), "application/json"
    return str(body).encode("utf-8"), TEXT_HTML


def status_code(value):
    """Validate a handler's status: an int (or "201 Created"-style str) from 200 to 999."""
    if isinstance(value, str):
        value = int(value.split(None, 1)[0])
    if not isinstance(value, int) or isinstance(value, bool) or not 200 <= value <= 999:
        raise ValueError("invalid status code %r: must be an int from 200 to 999" % (value,))
    return value


def header_pairs(headers):
    """A handler's headers (dict or list of pairs) as validated (name, value) strs."""
    if headers is None:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    out = []
    for name, value in items:
        name = str(name)
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if not name or any(c in name for c in " \t\r\n:\0") or any(c in value for c in "\r\n\0"):
            raise ValueError("invalid response header %r: %r" % (name, value))
        out.append((name, value))
    return out


def make_response(res):
    """Turn a handler's return value into (status, header pairs, body, default type)."""
    status = 200
    headers = None
    if res is None:
        body = None
    elif type(res) is tuple:
        if len(res) == 3:
            body, status, headers = res
        elif len(res) == 2:
            body, second = res
            if isinstance(second, (list, tuple)) or hasattr(second, "items"):
                headers = second
            else:
                status = second
        elif len(res) == 1:
            body = res[0]
        else:
            raise TypeError(
                "a response tuple must be (body), (body, status), (body, headers) or "
                "(body, status, headers); got %d items" % len(res))
        if status is None:
            status = 200
    elif isinstance(res, dict) and ("statusCode" in res or "body" in res or "headers" in res):
        status = res.get("statusCode", 200)
        body = res.get("body")
        headers = res.get("headers")
    else:
        body = res
    status = status_code(status)
    data, default_type = body_bytes(body)
    return status, header_pairs(headers), data, default_type


_date = [0, ""]


def http_date():
    now = int(time.time())
    if _date[0] != now:
        _date[1] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))
        _date[0] = now
    return _date[1]


def encode_response(status, pairs, body, default_type, keep_alive, http10, head):
    """Serialize a response; returns (bytes, keep_alive) (a handler may ask to close)."""
    lines = ["HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, ""))]
    has_type = False
    for name, value in pairs:
        lower = name.lower()
        if lower == "content-type":
            has_type = True
        elif lower == "connection":
            if "close" in value.lower():
                keep_alive = False
            continue
        elif lower in ("content-length", "transfer-encoding"):
            continue
        lines.append("%s: %s\r\n" % (name, value))
    if not has_type and default_type and body:
        lines.append("Content-Type: %s\r\n" % default_type)
    if status == 204 or status == 304:
        body = b""
    else:
        lines.append("Content-Length: %d\r\n" % len(body))
    lines.append("Date: %s\r\n" % http_date())
    if not keep_alive:
        lines.append("Connection: close\r\n")
    elif http10:
        lines.append("Connection: keep-alive\r\n")
    lines.append("\r\n")
    head_bytes = "".join(lines).encode("latin-1")
    return (head_bytes if head else head_bytes + body), keep_alive


def simple_response(status, text, keep_alive=False):
    data = text.encode("utf-8")
    return encode_response(status, [("Content-Type", "text/plain; charset=utf-8")], data,
                           None, keep_alive, False, False)[0]


class Server:
    """Accepts connections and runs the handler, one thread per connection."""

    def __init__(self, handle):
        self.handle = handle
        self.draining = False
        self.inflight = 0
        self.lock = _thread.allocate_lock()

    def serve_connection(self, sock):
        try:
            self._serve(sock, Reader(sock))
        except (OSError, Closed):
            pass
        except BadRequest as e:
            try:
                sock.sendall(simple_response(e.status, e.message + "\n"))
            except OSError:
                pass
        finally:
            sock.close()

    def _serve(self, sock, reader):
        while True:
            line = reader.readline(414)
            skipped = 0
            while line in (b"\r\n", b"\n"):
                skipped += 1
                if skipped > 4:
                    raise BadRequest(400, "empty request line")
                line = reader.readline(414)
            if not line:
                return
            parts = line.rstrip(b"\r\n").split(b" ")
            if len(parts) != 3 or not parts[0]:
                raise BadRequest(400, "malformed request line")
            method, target, version = parts
            if version != b"HTTP/1.1" and version != b"HTTP/1.0":
                if version.startswith(b"HTTP/"):
                    raise BadRequest(505, "only HTTP/1.0 and HTTP/1.1 are supported")
                raise BadRequest(400, "malformed request line")
            http10 = version == b"HTTP/1.0"

            pairs = []
            while True:
                line = reader.readline(431)
                if not line:
                    raise Closed()
                if line == b"\r\n" or line == b"\n":
                    break
                if len(pairs) >= MAX_HEADERS:
                    raise BadRequest(431, "too many header fields")
                name, sep, value = line.partition(b":")
                if not sep or not name or line[0] in b" \t" or b" " in name or b"\t" in name:
                    raise BadRequest(400, "malformed header field")
                pairs.append((name.decode("latin-1"), value.strip().decode("latin-1")))
            headers = Headers(pairs)

            keep_alive = _keep_alive(headers.get("connection"), http10)
            chunked = False
            length = 0
            te = headers.get("transfer-encoding")
            if te is not None:
                codings = [c.strip().lower() for c in te.split(",")]
                if codings != ["chunked"]:
                    raise BadRequest(501, "unsupported Transfer-Encoding: %s" % te)
                chunked = True
                if "content-length" in headers:
                    keep_alive = False
            elif "content-length" in headers:
                values = {v.strip() for v in headers["content-length"].split(",")}
                if len(values) != 1:
                    raise BadRequest(400, "conflicting Content-Length values")
                value = values.pop()
                if not value.isdigit() or not value.isascii():
                    raise BadRequest(400, "invalid Content-Length")
                length = int(value)

            expect = headers.get("expect")
            if expect is not None:
                if expect.strip().lower() != "100-continue":
                    raise BadRequest(417, "unsupported Expect: %s" % expect)
                if not http10 and (chunked or length):
                    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

            if chunked:
                body = read_chunked(reader)
            elif length:
                body = reader.read(length)
            else:
                body = b""

            raw_path, _, raw_query = target.partition(b"?")
            if not raw_path.startswith(b"/"):
                scheme, sep, rest = raw_path.partition(b"://")
                if sep and scheme.isalpha():
                    slash = rest.find(b"/")
                    raw_path = rest[slash:] if slash >= 0 else b"/"
                elif raw_path != b"*":
                    raise BadRequest(400, "malformed request target")
            method = method.decode("latin-1")
            head = method == "HEAD"

            if method == "GET" and raw_path == b"/_/health":
                if self.draining:
                    out = simple_response(503, "Draining\n", keep_alive=False)
                    keep_alive = False
                else:
                    out = simple_response(200, "OK", keep_alive=keep_alive)
                sock.sendall(out)
                if not keep_alive:
                    return
                continue

            with self.lock:
                self.inflight += 1
            try:
                event = Event(body, headers, method, parse_query(raw_query), unquote(raw_path, False))
                try:
                    status, out_pairs, data, default_type = make_response(
                        self.handle(event, Context()))
                    out, keep_alive = encode_response(status, out_pairs, data, default_type,
                                                      keep_alive and not self.draining, http10,
                                                      head)
                except BaseException:
                    import traceback
                    sys.stderr.write("python3-http: error in %s %s\n" % (method, target.decode("latin-1")))
                    traceback.print_exc()
                    sys.stderr.flush()
                    out, keep_alive = encode_response(
                        500, [("Content-Type", "text/plain; charset=utf-8")],
                        b"Internal Server Error", None,
                        keep_alive and not self.draining, http10, head)
                sock.sendall(out)
            finally:
                with self.lock:
                    self.inflight -= 1
            if not keep_alive:
                return


def _keep_alive(connection, http10):
    tokens = [t.strip().lower() for t in connection.split(",")] if connection else ()
    if http10:
        return "keep-alive" in tokens
    return "close" not in tokens


class Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGINT to stop accepting and drain."""


def _on_signal(signum, frame):
    raise Stop()


def load_handler(root):
    """Import function.handler (python_packages/ first on sys.path); exit 1 on failure."""
    packages = os.path.join(root, "python_packages")
    if os.path.isdir(packages):
        sys.path.insert(0, packages)
        if any(name.endswith(".pth") for name in os.listdir(packages)):
            import site
            site.addsitedir(packages)
    try:
        from function import handler
    except BaseException:
        import traceback
        traceback.print_exc()
        sys.stderr.write("python3-http: could not import function/handler.py; exiting\n")
        sys.exit(1)
    handle = getattr(handler, "handle", None)
    if not callable(handle):
        sys.stderr.write("python3-http: function/handler.py defines no handle(event, context); "
                         "exiting\n")
        sys.exit(1)
    return handle


def listen():
    """Bind the Unix socket $IRONFAAS_SOCKET, else TCP $HOST:$PORT; returns (socket, path)."""
    path = os.environ.get("IRONFAAS_SOCKET")
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.bind(path)
        where = "unix:" + path
    else:
        host = os.environ.get("HOST") or "0.0.0.0"
        port = os.environ.get("PORT") or "8080"
        try:
            port_number = int(port)
        except ValueError:
            sys.stderr.write("python3-http: PORT must be a number, got %r\n" % port)
            sys.exit(2)
        family, kind, proto, _, addr = _socket.getaddrinfo(
            host, port_number, _socket.AF_UNSPEC, _socket.SOCK_STREAM, 0, _socket.AI_PASSIVE)[0]
        sock = _socket.socket(family, kind, proto)
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        where = "%s:%d" % (host, port_number)
    sock.listen(1024)
    return sock, path, where


def signal_ready():
    """Tell the platform at once that connections are accepted (see IRONFAAS_READY_FD)."""
    fd = os.environ.pop("IRONFAAS_READY_FD", "")
    if fd.isdigit():
        try:
            os.write(int(fd), b"1")
            os.close(int(fd))
        except OSError:
            pass


def wait_for_start():
    """A warm spare (``serve --spare-sandbox warm``): the platform sets IRONFAAS_START_FD and
    writes one byte to it when a call needs this replica; until then the interpreter waits
    here, before the function's code is loaded. End of file means the spare is not needed."""
    fd = os.environ.pop("IRONFAAS_START_FD", None)
    if fd is None:
        return
    fd = int(fd)
    byte = os.read(fd, 1)  # retried on EINTR by Python itself (PEP 475)
    os.close(fd)
    if not byte:
        os._exit(0)


def main():
    root = os.path.dirname(os.path.abspath(__file__))
    wait_for_start()
    server = Server(load_handler(root))
    lsock, path, where = listen()
    tcp = lsock.family != _socket.AF_UNIX
    _signal.signal(_signal.SIGTERM, _on_signal)
    _signal.signal(_signal.SIGINT, _on_signal)
    sys.stderr.write("python3-http: listening on %s\n" % where)
    sys.stderr.flush()
    signal_ready()
    family = lsock.family
    serve = server.serve_connection
    try:
        while True:
            try:
                fd, _ = lsock._accept()
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    time.sleep(0.01)
                    continue
                if e.errno == errno.ECONNABORTED:
                    continue
                raise
            conn = _socket.socket(family, _socket.SOCK_STREAM, 0, fd)
            if tcp:
                conn.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            _thread.start_new_thread(serve, (conn,))
    except Stop:
        pass
    server.draining = True
    lsock.close()
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass
    while server.inflight:
        time.sleep(0.005)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
