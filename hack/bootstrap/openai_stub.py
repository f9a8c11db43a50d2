#!/usr/bin/env python3
"""A small OpenAI-compatible model endpoint on loopback, for the bootstrap tests.

It is a real HTTP server that the credentials point at: `POST /v1/chat/completions` answers
with a chat completion for a request bearing one of the accepted keys, and refuses any other
key with 401 and OpenAI's error body, as OpenAI and OpenAI-compatible servers (Nutanix
Enterprise AI, vLLM) do. `GET /v1/models` lists the models. Usage:

    openai_stub.py --model NAME [--model NAME...] --keys-file FILE [--tls CERT KEY]

FILE holds the accepted keys, one a line (so no key is on a command line). With --tls it
serves HTTPS with that certificate and key (an endpoint with a site CA). It prints
`PORT <n>` once listening on 127.0.0.1 and serves until killed.
"""

import argparse
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--keys-file", required=True)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    with open(args.keys_file) as f:
        keys = {line.strip() for line in f if line.strip()}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def send(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorised(self):
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer ") and auth[len("Bearer "):] in keys:
                return True
            self.send(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"}})
            return False

        def do_GET(self):
            if self.path.rstrip("/") != "/v1/models":
                return self.send(404, {"error": {"message": "not found"}})
            if self.authorised():
                self.send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in args.model]})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self.send(413, {"error": {"message": "request too large"}})
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self.send(404, {"error": {"message": "not found"}})
            if not self.authorised():
                return
            model = body.get("model")
            if model not in args.model:
                return self.send(404, {"error": {"message": f"The model `{model}` does not exist.", "type": "invalid_request_error"}})
            self.send(200, {
                "id": "chatcmpl-stub", "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "OK"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            })

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
