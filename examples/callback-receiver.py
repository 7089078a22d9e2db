#!/usr/bin/env python3
"""Prints every callback it receives: the receiving end of an asynchronous call's X-Callback-Url.

    python3 examples/callback-receiver.py [--port 9091]

For each POST it prints one line with the call id, the function, its status code and the
retries it took, then the body, and answers 200.
"""

import argparse
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        h = self.headers
        print(
            f"callback {h.get('X-Call-Id', '-')}: {h.get('X-Function-Name', '-')} answered "
            f"{h.get('X-Function-Status', '-')} after {h.get('X-Retry', '0')} retries",
            flush=True,
        )
        print(f"  {body}", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9091)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    print(f"callback-receiver: listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
