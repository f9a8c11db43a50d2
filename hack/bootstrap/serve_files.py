#!/usr/bin/env python3
"""Serves a directory over HTTP on 127.0.0.1 (plugin packages for the bootstrap tests' `url`
source), or over HTTPS with a certificate and key; prints `PORT <n>` once listening.
Usage: serve_files.py DIR [CERT KEY]"""

import functools
import ssl
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer



class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *_):
        pass


handler = functools.partial(Quiet, directory=sys.argv[1])
server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
if len(sys.argv) == 4:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
