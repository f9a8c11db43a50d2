"""A stand-in for Dify's api-websocket behind gunicorn (tests/websocket_capacity.rs): Dify's api
is not in any registry, but the server that limits its connections is gunicorn with Dify's
worker class (geventwebsocket's GeventWebSocketWorker, Debian's python3-gunicorn,
python3-gevent and python3-gevent-websocket), run with the settings the chart renders.

    /health     200 "ok" (the readiness probe's path), printing `health answered`
    any other   with a WebSocket upgrade: held open until the client closes it, then
                printing `websocket closed`

One line on stdout per event, so a test can tell their order.
"""


def app(environ, start_response):
    ws = environ.get("wsgi.websocket")
    if ws is not None:
        while ws.receive() is not None:
            pass
        print("websocket closed", flush=True)
        return []
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    print("health answered", flush=True)
    return [b"ok"]
