#!/usr/bin/env python3
"""A stand-in for a legacy customer system: a tiny standard-library HTTP server.

It speaks the old system's dialect: POST /customers with a JSON object holding exactly the
fields NAME, EMAIL, COUNTRY and CONSENT ("Y" or "N"), upper-case keys, nothing else. It
answers 201 with the customer number it filed the record under, and 400 with an error for
anything else. Records are kept in memory and printed as they arrive.

    python3 examples/legacy-backend/server.py [--port 9090]
"""

import argparse
import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIELDS = {"NAME", "EMAIL", "COUNTRY", "CONSENT"}


class Legacy(BaseHTTPRequestHandler):
    server_version = "legacy-crm/1987"
    customers = {}

    def answer(self, status, value):
        body = json.dumps(value, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self.answer(200, {"status": "up", "customers": len(self.customers)})
        else:
            self.answer(404, {"ERROR": f"NO SUCH RESOURCE {self.path}"})

    def do_POST(self):
        if self.path != "/customers":
            self.answer(404, {"ERROR": f"NO SUCH RESOURCE {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            record = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self.answer(400, {"ERROR": "BODY IS NOT JSON"})
            return
        if not isinstance(record, dict) or set(record) != FIELDS:
            got = sorted(record) if isinstance(record, dict) else type(record).__name__
            self.answer(400, {"ERROR": f"EXPECTED FIELDS {sorted(FIELDS)}, GOT {got}"})
            return
        if record["CONSENT"] not in ("Y", "N"):
            self.answer(400, {"ERROR": "CONSENT MUST BE Y OR N"})
            return
        number = "C" + hashlib.sha256(record["EMAIL"].encode()).hexdigest()[:8].upper()
        self.customers[number] = record
        print(f"legacy-backend: filed {number}: {json.dumps(record)}", flush=True)
        self.answer(201, {"CUSTNO": number, "STATUS": "FILED"})

    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Legacy)
    print(f"legacy-backend: listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
