#!/usr/bin/env python3
"""difyrender test: proves from inside the cluster that a Dify release works.

`difyrender test` runs this script in a short-lived Job on the release's own api image; the
runtime test lane runs the same file against real processes. It reads only environment
variables (the api's own names, plus DIFYTEST_*), uses only the standard library and psycopg2
(which the api image has), and never prints a secret.

Output: one line per check, `DIFYTEST {"check": ..., "ok": true|false, "detail": ...}`, on
stdout and in DIFYTEST_RESULT_FILE (default /dev/termination-log, which Kubernetes returns as the
container's termination message; empty: stdout only). Exit code 0 when every check passed.

Environment (the Job copies the api container's variables; secrets by secretKeyRef):
  DIFYTEST_API_URL        api Service, e.g. http://dify-api:5001 (required)
  DIFYTEST_WEB_URL        web Service origin, e.g. http://dify-web:3000 (required); the base path
                          is the path of CONSOLE_WEB_URL
  PLUGIN_DAEMON_URL, PLUGIN_DAEMON_KEY
  DIFYTEST_SANDBOX_URL    default CODE_EXECUTION_ENDPOINT; the Job uses the sandbox Service,
                          whose NetworkPolicy admits the test pod
  CODE_EXECUTION_API_KEY
  AGENT_BACKEND_BASE_URL, AGENT_BACKEND_API_TOKEN   (Dify 1.16.0+; the check runs when set)
  VECTOR_STORE, WEAVIATE_ENDPOINT, WEAVIATE_API_KEY
  DB_HOST, DB_PORT, DB_USERNAME, DB_PASSWORD, DB_DATABASE, DB_EXTRAS
  REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_USE_SSL
  SSRF_PROXY_HTTP_URL
  DIFYTEST_ALLOWED_URL    reachable through the proxy (default the api's MARKETPLACE_API_URL,
                          which the chart's squid allows explicitly, else the Python mirror,
                          else https://marketplace.dify.ai/ unless MARKETPLACE_ENABLED=false:
                          then the check does not run)
  DIFYTEST_MIRROR_URL     the plugin daemon's PIP_MIRROR_URL (air-gapped sites): its index must
                          answer through the proxy (the sandbox's way to it), TLS verified
                          against the system store (the site's CAs with trust.caBundle)
  DIFYTEST_PRIVATE_URL    must be refused by the proxy (default http://169.254.169.254/)
  DIFYTEST_THROUGH_INGRESS=1 and CONSOLE_API_URL: the same requests through the external URL
  DIFYTEST_VERIFY_TLS     "1" to verify the ingress certificate (NKP's default one is self-signed)
  DIFYTEST_TIMEOUT        seconds per request (default 10)
  PROVIDER_TYPE, PROVIDER_URL, PROVIDER_MODELS, DEFAULT_MODEL, PROVIDER_API_KEY
                          with bootstrap.enabled: the bootstrap Job's variables (the key by
                          secretKeyRef); the check "model" sends one chat completion
  PROVIDER_KEY_OPTIONAL   "true" when the key may be missing: left empty, there is no model
                          to ask and the check "model" is not run
  HTTP_PROXY, HTTPS_PROXY, NO_PROXY, http_proxy, https_proxy, no_proxy
                          the plugin daemon's, for the check "model" only
  DIFYRENDER_CA_FILE      the bootstrap Job's site CA bundle, for the check "model" only
  DIFYTEST_MODEL_PROBLEM  why the model cannot be checked (the check fails with it)
  DIFYTEST_CHECKS         comma-separated check names to run (default: all), e.g.
                          postgresql,redis,egress-allowed,egress-private-refused
"""

import json
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ENV = os.environ
TIMEOUT = float(ENV.get("DIFYTEST_TIMEOUT") or 10)
SECRETS = [
    ENV.get(k, "")
    for k in (
        "PLUGIN_DAEMON_KEY",
        "CODE_EXECUTION_API_KEY",
        "WEAVIATE_API_KEY",
        "DB_PASSWORD",
        "REDIS_PASSWORD",
        "SECRET_KEY",
        "AGENT_BACKEND_API_TOKEN",
        "PROVIDER_API_KEY",
    )
]
RESULTS = []


def scrub(text):
    text = " ".join(str(text).split())
    for s in SECRETS:
        if len(s) >= 4:
            text = text.replace(s, "***")
    return text[:160]


def report(check, ok, detail):
    line = "DIFYTEST " + json.dumps(
        {"check": check, "ok": bool(ok), "detail": scrub(detail)}, separators=(",", ":")
    )
    RESULTS.append(line)
    print(line, flush=True)


def need(*names):
    missing = [n for n in names if not ENV.get(n)]
    if missing:
        raise RuntimeError("not set: " + ", ".join(missing))
    return [ENV[n] for n in names]


ONLY = {c.strip() for c in ENV.get("DIFYTEST_CHECKS", "").split(",") if c.strip()}


def run(check, fn):
    if ONLY and check not in ONLY:
        return
    try:
        ok, detail = fn()
    except Exception as e:  # every failure becomes a FAIL line, never a traceback
        ok, detail = False, f"{type(e).__name__}: {e}"
    report(check, ok, detail)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http(method, url, headers=None, body=None, proxy=None, verify=True, timeout=None, context=None):
    """(status, headers, body text) of one request; HTTP errors are answers, not exceptions."""
    handlers = [NoRedirect(), urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {})]
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    elif context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with opener.open(req, timeout=timeout or TIMEOUT) as r:
            return r.status, r.headers, r.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read(65536).decode("utf-8", "replace")
    except urllib.error.URLError as e:
        raise ConnectionError(f"{method} {url}{' via ' + proxy if proxy else ''}: {e.reason}") from None


def api_health():
    (api,) = need("DIFYTEST_API_URL")
    status, _, body = http("GET", api + "/health")
    return status == 200, f"GET /health: {status} {body[:60]}"


def console_setup():
    (api,) = need("DIFYTEST_API_URL")
    status, _, body = http("GET", api + "/console/api/setup")
    step = json.loads(body).get("step") if status == 200 else None
    return step is not None, f"GET /console/api/setup: {status}, step {step}"


def base_path():
    return urllib.parse.urlparse(ENV.get("CONSOLE_WEB_URL", "")).path.rstrip("/")


def web():
    (origin,) = need("DIFYTEST_WEB_URL")
    url = origin + (base_path() or "/")
    status, headers, _ = http("GET", url)
    where = headers.get("Location", "") if 300 <= status < 400 else ""
    return status < 400, f"GET {base_path() or '/'}: {status} {where}".strip()


def plugin_daemon_health():
    (url,) = need("PLUGIN_DAEMON_URL")
    status, _, body = http("GET", url + "/health/check")
    return status == 200, f"GET /health/check: {status} {body[:60]}"


def plugin_daemon_key():
    url, key = need("PLUGIN_DAEMON_URL", "PLUGIN_DAEMON_KEY")
    path = "/plugin/00000000-0000-0000-0000-000000000000/management/list?page=1&page_size=1"
    good, _, _ = http("GET", url + path, {"X-Api-Key": key})
    bad, _, _ = http("GET", url + path, {"X-Api-Key": "difytest-wrong-key"})
    ok = good != 401 and bad == 401
    return ok, f"the api's key: {good}; a wrong key: {bad} (expected 401)"


def sandbox():
    key = need("CODE_EXECUTION_API_KEY")[0]
    url = ENV.get("DIFYTEST_SANDBOX_URL") or need("CODE_EXECUTION_ENDPOINT")[0]
    body = {"language": "python3", "code": "print(6 * 7)", "preload": "", "enable_network": False}
    status, _, text = http("POST", url + "/v1/sandbox/run", {"X-Api-Key": key}, body)
    bad, _, _ = http("POST", url + "/v1/sandbox/run", {"X-Api-Key": "difytest-wrong-key"}, body)
    out = ""
    if status == 200:
        data = json.loads(text)
        out = ((data.get("data") or {}).get("stdout") or "").strip() or data.get("message", "")
    ok = status == 200 and out == "42" and bad == 401
    return ok, f"print(6 * 7) with the api's key: {status} {out!r}; a wrong key: {bad} (expected 401)"


def agent_backend():
    # Dify 1.16.0+: agent_backend has no health endpoint; its OpenAPI document answers when it
    # serves. From 1.16.1 its run API takes the api's token and refuses another.
    (url,) = need("AGENT_BACKEND_BASE_URL")
    status, _, _ = http("GET", url + "/openapi.json")
    detail = f"GET /openapi.json: {status}"
    ok = status == 200
    token = ENV.get("AGENT_BACKEND_API_TOKEN")
    if token:
        good, _, _ = http("GET", url + "/runs/difytest-none", {"Authorization": "Bearer " + token})
        bad, _, _ = http("GET", url + "/runs/difytest-none", {"Authorization": "Bearer difytest-wrong"})
        ok = ok and good != 401 and bad == 401
        detail += f"; /runs with the api's token: {good}; a wrong token: {bad} (expected 401)"
    return ok, detail


def weaviate():
    url, key = need("WEAVIATE_ENDPOINT", "WEAVIATE_API_KEY")
    good, _, _ = http("GET", url + "/v1/schema", {"Authorization": "Bearer " + key})
    bad, _, _ = http("GET", url + "/v1/schema", {"Authorization": "Bearer difytest-wrong-key"})
    return good == 200 and bad == 401, f"GET /v1/schema with the api's key: {good}; a wrong key: {bad} (expected 401)"


def postgresql():
    host, port, user, password, db = need("DB_HOST", "DB_PORT", "DB_USERNAME", "DB_PASSWORD", "DB_DATABASE")
    try:
        import psycopg2  # in the api image
    except ImportError:
        return False, "the python module psycopg2 is missing (the api image has it)"

    extras = dict(p.split("=", 1) for p in ENV.get("DB_EXTRAS", "").split("&") if "=" in p)
    conn = psycopg2.connect(
        host=host, port=int(port), user=user, password=password, dbname=db,
        connect_timeout=int(TIMEOUT), sslmode=extras.get("sslmode", "prefer"),
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, version()")
            who, version = cur.fetchone()
    finally:
        conn.close()
    return True, f"connected to {db} as {who}: {version.split(',')[0]}"


def resp(sock, command):
    """Sends one Redis command (RESP) and returns the first reply line."""
    parts = [c.encode() for c in command]
    sock.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("Redis closed the connection")
        line += chunk
    return line.decode("utf-8", "replace").strip()


def redis():
    host, port, password = need("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD")
    try:
        sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    except OSError as e:
        raise ConnectionError(f"{host}:{port}: {e}") from None
    if ENV.get("REDIS_USE_SSL", "false").lower() == "true":
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
    try:
        unauthenticated = resp(sock, ["PING"])
        auth = resp(sock, ["AUTH", password])
        pong = resp(sock, ["PING"])
    finally:
        sock.close()
    ok = auth == "+OK" and pong == "+PONG" and unauthenticated.startswith("-NOAUTH")
    return ok, f"AUTH with the api's password: {auth}, PING: {pong}; without: {unauthenticated[:30]}"


def model():
    # bootstrap.enabled: the model the bootstrap Job configured answers, asked as Dify's plugin
    # asks it (a chat completion at the same URL, with the same key), from the plugin daemon's
    # namespace. The Job copies the bootstrap Job's PROVIDER_* variables, the key by
    # secretKeyRef.
    problem = ENV.get("DIFYTEST_MODEL_PROBLEM")
    if problem:
        return False, problem
    kind, key = need("PROVIDER_TYPE", "PROVIDER_API_KEY")
    url = ENV.get("PROVIDER_URL", "").strip().rstrip("/")
    if kind == "openai":
        # The OpenAI plugin's openai_api_base is the host; the SDK's base URL is it plus /v1.
        url = url + "/v1" if url else "https://api.openai.com/v1"
    elif not url:
        need("PROVIDER_URL")
    models = [m.strip() for m in ENV.get("PROVIDER_MODELS", "").split(",") if m.strip()]
    name = ENV.get("DEFAULT_MODEL") or (models[0] if models else "gpt-4o-mini")
    url += "/chat/completions"
    body = {"model": name, "messages": [{"role": "user", "content": "Reply with OK."}], "max_tokens": 8}
    # The plugin daemon's proxy variables (copied from its container), honoured as the
    # plugin's HTTP client honours them: the scheme's proxy unless NO_PROXY names the host.
    proxies = urllib.request.getproxies_environment()
    target = urllib.parse.urlparse(url)
    proxy = proxies.get(target.scheme)
    if proxy and urllib.request.proxy_bypass_environment(target.hostname or "", proxies):
        proxy = None
    if proxy and urllib.parse.urlparse(proxy).password:
        SECRETS.append(urllib.parse.urlparse(proxy).password)
    # The site's CA bundle (trust.caBundle), added to the image's roots as the bootstrap Job
    # adds it: the Job's DIFYRENDER_CA_FILE and trust volume are copied.
    context = None
    if ENV.get("DIFYRENDER_CA_FILE") and target.scheme == "https":
        context = ssl.create_default_context()
        context.load_verify_locations(ENV["DIFYRENDER_CA_FILE"])
    try:
        status, headers, text = http("POST", url, {"Authorization": "Bearer " + key}, body, proxy=proxy, timeout=max(TIMEOUT, 60), context=context)
    except (OSError, ConnectionError) as e:
        if "CERTIFICATE_VERIFY_FAILED" in str(e):
            return False, f"endpoint unreachable, its certificate is not trusted (trust.caBundle): {e}"
        return False, f"endpoint unreachable: {e}"
    squid = headers.get("X-Squid-Error", "") if proxy else ""
    if squid or (proxy and status in (502, 503, 504)):
        return False, f"endpoint unreachable through the proxy {proxy}: POST {url}: HTTP {status} {squid}".strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    error = data.get("error")
    message = (error.get("message") if isinstance(error, dict) else error) or text[:80]
    if status in (401, 403):
        return False, f"the endpoint refused the key: POST {url}: HTTP {status} {message}"
    if status != 200:
        return False, f"model {name} did not answer: POST {url}: HTTP {status} {message}"
    choices = data.get("choices") or [{}]
    answer = ((choices[0] or {}).get("message") or {}).get("content")
    if answer is None:
        return False, f"model {name} answered without a message: POST {url}: HTTP 200"
    return True, f"model {name} answered at {url}: {answer.strip()[:30]!r}"


def proxy_error(url, e):
    text = str(getattr(e, "reason", e))
    if "403" in text:
        return f"{url}: refused by the proxy (403)"
    if any(code in text for code in ("500", "502", "503", "504")) or "timed out" in text or isinstance(e, (socket.timeout, TimeoutError)):
        reason = text.rsplit(": ", 1)[-1][:40]
        return f"{url}: the proxy could not reach it ({reason}): no internet egress, or squid needs a parent proxy"
    return text


def allowed_url():
    # The public marketplace unless the api says it is off (MARKETPLACE_ENABLED=false, airgap).
    public = "" if ENV.get("MARKETPLACE_ENABLED") == "false" else "https://marketplace.dify.ai/"
    return ENV.get("DIFYTEST_ALLOWED_URL") or ENV.get("MARKETPLACE_API_URL") or ENV.get("DIFYTEST_MIRROR_URL") or public


def egress_allowed():
    (proxy,) = need("SSRF_PROXY_HTTP_URL")
    url = allowed_url()
    try:
        status, _, _ = http("GET", url, proxy=proxy)
    except Exception as e:
        return False, proxy_error(url, e)
    return True, f"{url} through the proxy: HTTP {status}"


def python_mirror():
    (url,) = need("DIFYTEST_MIRROR_URL")
    proxy = ENV.get("SSRF_PROXY_HTTP_URL")
    try:
        status, headers, _ = http("GET", url, proxy=proxy)
    except Exception as e:
        return False, proxy_error(url, e) if proxy else str(e)
    ctype = headers.get("Content-Type", "").split(";")[0]
    return status < 400, f"{url}{' through the proxy' if proxy else ''}: HTTP {status} {ctype}".strip()


def egress_private_refused():
    (proxy,) = need("SSRF_PROXY_HTTP_URL")
    url = ENV.get("DIFYTEST_PRIVATE_URL") or "http://169.254.169.254/"
    try:
        status, headers, _ = http("GET", url, proxy=proxy)
    except Exception as e:
        text = proxy_error(url, e)
        return "refused by the proxy" in text, text
    squid = headers.get("X-Squid-Error", "")
    if status == 403 and "ERR_ACCESS_DENIED" in squid:
        return True, f"{url}: refused by the proxy (403 {squid})"
    return False, f"{url}: not refused: HTTP {status} {squid}".strip()


def through_ingress():
    (external,) = need("CONSOLE_API_URL")
    verify = ENV.get("DIFYTEST_VERIFY_TLS") == "1"

    def get(path):
        status, headers, body = http("GET", external + path, verify=verify)
        return status, headers.get("Content-Type", ""), body

    def api_route(path, want):
        def check():
            status, ctype, _ = get(path)
            return status in want and "json" in ctype, f"GET {external}{path}: {status} {ctype.split(';')[0]}"
        return check

    def web_route():
        status, ctype, _ = get("/")
        return status < 400, f"GET {external}/: {status} {ctype.split(';')[0]}"

    def hook_route():
        # The plugin daemon answers an unknown hook itself; Traefik's own 404 is plain text,
        # the web's is HTML.
        status, ctype, body = get("/e/00000000-0000-0000-0000-000000000000/difytest")
        ok = "html" not in ctype and "404 page not found" not in body
        return ok, f"GET {external}/e/<hook>: {status} {ctype.split(';')[0]}"

    run("ingress-console-api", api_route("/console/api/setup", {200}))
    run("ingress-web", web_route)
    run("ingress-api", api_route("/api/parameters", {401}))
    run("ingress-service-api", api_route("/v1/parameters", {401}))
    run("ingress-hooks", hook_route)


def main():
    started = time.monotonic()
    run("api-health", api_health)
    run("console-setup", console_setup)
    run("web", web)
    run("plugin-daemon-health", plugin_daemon_health)
    run("plugin-daemon-key", plugin_daemon_key)
    run("sandbox", sandbox)
    if ENV.get("AGENT_BACKEND_BASE_URL"):
        run("agent-backend", agent_backend)
    if ENV.get("VECTOR_STORE", "weaviate") == "weaviate":
        run("weaviate", weaviate)
    run("postgresql", postgresql)
    run("redis", redis)
    # An optional key left empty (bootstrap.provider.apiKeySecret.optional): the bootstrap Job
    # configured no model, so there is none to ask.
    no_model = ENV.get("PROVIDER_KEY_OPTIONAL") == "true" and not ENV.get("PROVIDER_API_KEY", "").strip()
    if (ENV.get("PROVIDER_TYPE") and not no_model) or ENV.get("DIFYTEST_MODEL_PROBLEM"):
        run("model", model)
    if allowed_url():
        run("egress-allowed", egress_allowed)
    if ENV.get("DIFYTEST_MIRROR_URL"):
        run("python-mirror", python_mirror)
    run("egress-private-refused", egress_private_refused)
    if ENV.get("DIFYTEST_THROUGH_INGRESS") == "1":
        through_ingress()
    failed = sum('"ok":false' in line for line in RESULTS)
    print(f"difytest: {len(RESULTS) - failed} passed, {failed} failed in {time.monotonic() - started:.1f}s", flush=True)
    target = ENV.get("DIFYTEST_RESULT_FILE", "/dev/termination-log")
    if target:
        try:
            with open(target, "w") as f:
                f.write("\n".join(RESULTS)[:4000] + "\n")
        except OSError as e:
            print(f"difytest: cannot write {target}: {e}", file=sys.stderr)
    return 1 if failed or not RESULTS else 0


if __name__ == "__main__":
    sys.exit(main())
