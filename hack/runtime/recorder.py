#!/usr/bin/python3
"""An HTTP server that records every request: the runtime lane's stand-in for a program that
is not in any registry (the plugin daemon behind the hook proxy, the sandbox behind squid's
reverse proxy, an egress target behind squid's forward proxy).

    recorder.py PORT LOG

Listens on every address of its pod (as the programs it stands in for do). Each request
(method, path with query, headers) is appended to LOG as one JSON line and sent back as the
response body, with status 200.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder(BaseHTTPRequestHandler):
    def handle_one(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20)).decode("utf-8", "replace")
        record = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        line = json.dumps(record, sort_keys=True)
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        out = (line + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_one

    def log_message(self, fmt, *args):
        sys.stderr.write("recorder: " + (fmt % args) + "\n")


if __name__ == "__main__":
    PORT, LOG = int(sys.argv[1]), sys.argv[2]
    open(LOG, "a").close()
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer(("0.0.0.0", PORT), Recorder).serve_forever()
