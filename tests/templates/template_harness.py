"""Helpers for the template tests: build a template the way ironfaas does, start its server
with the ready pipe, and talk raw HTTP/1.1 to it. Stdlib only; not a test itself.

Building follows `ironfaas build`: copy templates/<lang> (minus template.yml) into a build dir,
copy the handler files over <handler_folder>/, then run each build step of template.yml from
the build dir root (argv, no shell; a step with `if_exists` only if that path exists).
template.yml is read with a small parser for the subset the templates use (top-level
scalars, `|` blocks, and `build:` as a list of `if_exists:` / `run: [a, b, 'c d']` items).
"""
import os
import re
import select
import shutil
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATES = os.path.join(ROOT, "templates")


def _unquote(token):
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        inner = token[1:-1]
        return inner.replace("''", "'") if token[0] == "'" else inner.replace('\\"', '"')
    return token


def _flow_list(text):
    """Parse a YAML flow sequence of scalars: [a, "b c", 'd, e']."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise ValueError("expected a [flow, list]: %r" % text)
    items, current, quote = [], "", None
    body = text[1:-1]
    i = 0
    while i < len(body):
        c = body[i]
        if quote:
            current += c
            if c == quote:
                if quote == "'" and body[i + 1:i + 2] == "'":
                    current += "'"
                    i += 1
                else:
                    quote = None
        elif c in "'\"":
            quote = c
            current += c
        elif c == ",":
            items.append(_unquote(current))
            current = ""
        else:
            current += c
        i += 1
    if quote:
        raise ValueError("unterminated quote in %r" % text)
    if current.strip():
        items.append(_unquote(current))
    return items


def load_template(lang):
    """template.yml of templates/<lang> as a dict; `build` is a list of {if_exists, run}."""
    with open(os.path.join(TEMPLATES, lang, "template.yml")) as f:
        lines = f.read().splitlines()
    config = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        m = re.match(r"^([A-Za-z_]+):\s*(.*)$", line)
        if not m:
            continue
        key, value = m.group(1), m.group(2).strip()
        if key == "build" and value == "":
            steps = []
            while i < len(lines) and (lines[i].startswith(" ") or not lines[i].strip()):
                item = lines[i].strip()
                i += 1
                if not item:
                    continue
                if item.startswith("- "):
                    steps.append({})
                    item = item[2:].strip()
                k, _, v = item.partition(":")
                v = v.strip()
                steps[-1][k.strip()] = _flow_list(v) if k.strip() == "run" else _unquote(v)
            config["build"] = steps
        elif value in ("|", "|-", ">"):
            block = []
            while i < len(lines) and (lines[i].startswith(" ") or not lines[i].strip()):
                block.append(lines[i].strip())
                i += 1
            config[key] = "\n".join(block).strip() + "\n"
        elif value == "[]":
            config[key] = []
        elif value == "{}" or value == "":
            config[key] = {}
            while i < len(lines) and lines[i].startswith(" "):
                k, _, v = lines[i].strip().partition(":")
                config[key][k.strip()] = _unquote(v)
                i += 1
        else:
            config[key] = _unquote(value)
    return config


def build(lang, build_dir, handler_files):
    """Build templates/<lang> with `handler_files` ({relative path: text or bytes}, relative to
    the handler folder) into `build_dir`. Returns (config, list of (argv, CompletedProcess) of
    the steps run). Steps are run with check=False; callers assert on the results."""
    config = load_template(lang)
    shutil.copytree(os.path.join(TEMPLATES, lang), build_dir,
                    ignore=shutil.ignore_patterns("template.yml", "__pycache__"))
    handler_dir = os.path.normpath(os.path.join(build_dir, config.get("handler_folder", "function")))
    for rel, content in handler_files.items():
        path = os.path.join(handler_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(path, mode) as f:
            f.write(content)
    ran = []
    for step in config.get("build", []):
        cond = step.get("if_exists")
        if cond and not os.path.exists(os.path.join(build_dir, cond)):
            continue
        proc = subprocess.run(step["run"], cwd=build_dir, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        ran.append((step["run"], proc))
        if proc.returncode != 0:
            break
    return config, ran


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A started template server: its process, the ready pipe and the stderr log."""

    def __init__(self, bundle, fprocess, env, stderr_path, ready_pipe=True):
        self.stderr_path = stderr_path
        self.ready_read = None
        full_env = dict(os.environ)
        for name in ("IRONFAAS_SOCKET", "IRONFAAS_READY_FD", "PORT", "HOST"):
            full_env.pop(name, None)
        full_env.update(env)
        pass_fds = ()
        write_end = None
        if ready_pipe:
            self.ready_read, write_end = os.pipe()
            full_env["IRONFAAS_READY_FD"] = str(write_end)
            pass_fds = (write_end,)
        with open(stderr_path, "wb") as err:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(fprocess.split(), cwd=bundle, env=full_env,
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         pass_fds=pass_fds)
        if write_end is not None:
            os.close(write_end)

    def wait_ready_byte(self, timeout=30):
        """The first byte on the ready pipe, or None if none came within `timeout` seconds."""
        readable, _, _ = select.select([self.ready_read], [], [], timeout)
        if not readable:
            return None
        return os.read(self.ready_read, 1)

    def ready_pipe_closed(self, timeout=5):
        """True if the server closed its end of the ready pipe (EOF) within `timeout`."""
        readable, _, _ = select.select([self.ready_read], [], [], timeout)
        return bool(readable) and os.read(self.ready_read, 1) == b""

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for_stderr(self, text, timeout=5):
        deadline = time.monotonic() + timeout
        while text not in self.stderr() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.stderr()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.ready_read is not None:
            os.close(self.ready_read)
            self.ready_read = None


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        import json
        return json.loads(self.body)


class Client:
    """A raw HTTP/1.1 client on one connection (so keep-alive is observable).

    `address` is a Unix socket path (str) or a (host, port) tuple."""

    def __init__(self, address, timeout=10):
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(address)
        except OSError:
            self.sock.close()
            raise
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
        if version != "HTTP/1.1":
            raise AssertionError("bad status line %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return int(status), {k: ", ".join(v) for k, v in headers.items()}

    def read_response(self, head=False):
        status, headers = self.read_head()
        if "transfer-encoding" in headers:
            raise AssertionError("response with Transfer-Encoding: %r" % headers)
        if status in (204, 304):
            return Response(status, headers, b"")
        if "content-length" not in headers:
            raise AssertionError("no Content-Length in %r" % headers)
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
        except ConnectionResetError:
            return True


def connect_when_listening(address, proc, timeout=30):
    """A Client as soon as `address` accepts; AssertionError if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client(address)
        except OSError:
            if proc.poll() is not None:
                raise AssertionError("server exited with %s before listening" % proc.returncode)
            if time.monotonic() > deadline:
                raise AssertionError("server did not listen on %r" % (address,))
            time.sleep(0.005)
