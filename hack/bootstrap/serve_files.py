#!/usr/bin/env python3
"""Serves a directory over HTTP on 127.0.0.1 (plugin packages for the bootstrap tests' `url`
source); prints `PORT <n>` once listening. Usage: serve_files.py DIR"""

import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer



class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *_):
        pass


handler = functools.partial(Quiet, directory=sys.argv[1])
server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
