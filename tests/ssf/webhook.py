"""A webhook consumer for Tenet's tests: checks X-Tenet-Signature with
Python's own hmac and logs each delivery.

    webhook.py PORT SECRET LOG

Answers 204 to a delivery whose signature verifies (HMAC-SHA256 of
"<t>.<body>" under SECRET) and 401 otherwise; logs one JSON line per
delivery with "verified". Prints "ready" once listening.
"""

import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, secret, log_path = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]


class Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        header = self.headers.get("X-Tenet-Signature", "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        expected = hmac.new(secret, parts.get("t", "").encode() + b"." + body, hashlib.sha256).hexdigest()
        verified = hmac.compare_digest(expected, parts.get("v1", "")) and abs(time.time() - int(parts.get("t", "0"))) < 300
        with open(log_path, "a") as f:
            f.write(json.dumps({"verified": verified, "body": json.loads(body), "type": self.headers.get("Content-Type")}) + "\n")
        self.send_response(204 if verified else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Hook)
print("ready", flush=True)
server.serve_forever()
