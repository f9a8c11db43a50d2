#!/usr/bin/env python3
"""Serves a directory over HTTP on 127.0.0.1 (plugin packages for the bootstrap tests' `url`
source), or over HTTPS with a certificate and key; prints `PORT <n>` once listening.

With --marketplace it is a STAND-IN for the marketplace's download endpoint instead, the one
call Dify's api makes to install from it (see console_standin.py's header):
`GET /api/v1/plugins/download?unique_identifier=<author/name:version@sha256>` answers with
`DIR/<sha256>.difypkg`, and 404 for any other identifier or path.

Usage: serve_files.py DIR [CERT KEY] | serve_files.py --marketplace DIR"""

import functools
import os
import re
import ssl
import sys
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

UNIQUE_IDENTIFIER = re.compile(r"^[a-z0-9_-]+/[a-z0-9_-]+:[0-9A-Za-z.+-]+@([0-9a-f]{64})$")


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *_):
        pass


class Marketplace(Quiet):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        uid = dict(urllib.parse.parse_qsl(url.query)).get("unique_identifier", "")
        match = UNIQUE_IDENTIFIER.match(uid)
        path = match and os.path.join(self.directory, match.group(1) + ".difypkg")
        if url.path != "/api/v1/plugins/download" or not path or not os.path.isfile(path):
            return self.send_error(404, "plugin not found")
        with open(path, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self):
        self.send_error(405, "the download endpoint answers GET only")


args = sys.argv[1:]
marketplace = args[:1] == ["--marketplace"]
if marketplace:
    args = args[1:]
handler = functools.partial(Marketplace if marketplace else Quiet, directory=args[0])
server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
if len(args) == 3:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args[1], args[2])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
