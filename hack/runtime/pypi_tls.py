"""A Python package mirror over HTTPS for tests/runtime_airgap.rs: the real pypiserver (PyPI,
installed by `scripts/runtime build` into target/runtime/pypi) serving a directory of wheels,
behind Python's own TLS with a certificate the test's throwaway CA signed.

    python3 pypi_tls.py PACKAGES_DIR CERT KEY ADDRESS PORT
"""
import socketserver
import ssl
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pypiserver


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Quiet(WSGIRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("pypi_tls: " + (fmt % args) + "\n")


def main():
    packages, cert, key, address, port = sys.argv[1:6]
    app = pypiserver.app(roots=[packages], authenticate=[], password_file=".")
    server = make_server(address, int(port), app, server_class=Server, handler_class=Quiet)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    sys.stderr.write(f"pypi_tls: serving {packages} on https://{address}:{port}\n")
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
