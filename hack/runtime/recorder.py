#!/usr/bin/python3
"""An HTTP server that records every request: the runtime lane's stand-in for a program that
is not in any registry (the plugin daemon behind the hook proxy, the sandbox behind squid's
reverse proxy, an egress target behind squid's forward proxy).

    recorder.py PORT LOG [ADDRESS]

Prints `recorder listening on ADDRESS:PORT` once it accepts connections. Listens on every address of its pod (as the programs it stands in for do), or on ADDRESS. Each
request (method, path with query, headers, and the address:port it arrived at as "local") is
appended to LOG as one JSON line and sent back as the response body, with status 200. A
WebSocket upgrade (the Traefik lane's /socket.io/) is answered 101 Switching Protocols, the
record follows as the first bytes of the upgraded connection, and then every byte the client
sends is echoed until it closes.
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
            "local": "%s:%d" % self.connection.getsockname()[:2],
        }
        line = json.dumps(record, sort_keys=True)
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        out = (line + "\n").encode()
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.protocol_version = "HTTP/1.1"  # a 101 is an HTTP/1.1 response
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.write(out)
            self.wfile.flush()
            while True:
                data = self.connection.recv(65536)
                if not data:
                    break
                self.connection.sendall(data)
            self.close_connection = True
            return
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
    ADDRESS = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"
    open(LOG, "a").close()
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer((ADDRESS, PORT), Recorder)
    # PORT 0 takes a free port: this line says which, once the recorder accepts connections.
    print("recorder listening on %s:%d" % server.server_address[:2], flush=True)
    server.serve_forever()
