#!/usr/bin/env python3
# difyrender bootstrap: makes a fresh Dify usable without a browser (docs/bootstrap.md).
#
# Runs in the Dify api image (python3, standard library only) as the bootstrap Job, after the
# api, worker and plugin daemon are ready. The sequence is Dify's console API as recorded in
# ../shared/reference/dify-console-bootstrap.md (Dify 1.14.1): setup only if not finished
# (init with INIT_PASSWORD, then setup), login (the __Host- cookies are Secure, so this client
# keeps them itself), install only the missing plugins (upload, install, poll the task),
# create the model credential or rotate it with PUT when it changed (read first), set the
# default model, and optionally send one chat message. Run again, it changes nothing.
#
# This file is a template of the chart (templates/_bootstrap.py.tpl) that renders to itself:
# it must never contain a Jinja delimiter (tests/bootstrap/render.rs checks).
#
# Input: environment variables only (secrets by secretKeyRef). Nothing secret is printed.
# On failure it prints ONE line "difyrender-bootstrap: error: <reason>" to stderr, writes the
# same reason to the termination log, and exits with one of these codes:
EXIT_CONFIG = 2  # bad input (a variable missing or malformed)
EXIT_API_UNREACHABLE = 10  # the console API did not answer in time
EXIT_INIT_REFUSED = 11  # INIT_PASSWORD refused by /console/api/init
EXIT_ADMIN_REFUSED = 12  # setup or login refused (e.g. another administrator exists)
EXIT_PACKAGE_FETCH = 13  # a plugin package could not be downloaded (url, oci)
EXIT_PACKAGE_REFUSED = 14  # the plugin daemon refused a package (e.g. its signature)
EXIT_INSTALL_FAILED = 15  # a plugin install failed: its task (the daemon's message: uv's output), or the api's refusal of a marketplace install
EXIT_CREDENTIAL_REFUSED = 16  # the provider refused the credential (wrong key, unreachable)
EXIT_DEFAULT_MODEL = 17  # the default model could not be set
EXIT_SMOKE_TEST = 18  # the one-message smoke test got no answer
EXIT_UNEXPECTED = 19  # the console API answered something this script does not know

import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

PREFIX = "difyrender-bootstrap"
# Bounds on what is read from the network, checked before the body is read.
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_PACKAGE_BYTES = 512 * 1024 * 1024
# The credential's name carries a fingerprint of what it holds, so a re-run sees whether the
# stored credential is current without reading its (encrypted, masked) secret fields.
CREDENTIAL_PREFIX = "difyrender-"
PROVIDERS = {
    "openai": ("langgenius/openai", "langgenius/openai/openai"),
    "openai-compatible": (
        "langgenius/openai_api_compatible",
        "langgenius/openai_api_compatible/openai_api_compatible",
    ),
}


class Failure(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


# The secret inputs, never printed: every line this script writes is scrubbed of them (a
# server's message could echo one back).
SECRET_VARIABLES = ("INIT_PASSWORD", "ADMIN_PASSWORD", "PROVIDER_API_KEY")


def scrub(text):
    for name in SECRET_VARIABLES:
        value = os.environ.get(name, "")
        if value:
            text = text.replace(value, "<" + name + ">")
    return text


def log(message):
    print(scrub(f"{PREFIX}: {message}"), flush=True)


def one_line(text, limit=2000):
    """A message from a server on one line, bounded."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def env(name, default=None, required=True):
    value = os.environ.get(name, "")
    if value == "" and default is not None:
        return default
    if value == "" and required:
        raise Failure(EXIT_CONFIG, f"the environment variable {name} is not set")
    return value


def env_int(name, default):
    raw = env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise Failure(EXIT_CONFIG, f"{name} is not a whole number") from None


class Config:
    def __init__(self):
        self.console = env("DIFY_API_URL").rstrip("/")
        self.init_password = env("INIT_PASSWORD")
        self.email = env("ADMIN_EMAIL")
        self.name = env("ADMIN_NAME")
        self.password = env("ADMIN_PASSWORD")
        self.provider_type = env("PROVIDER_TYPE")
        if self.provider_type not in PROVIDERS:
            raise Failure(EXIT_CONFIG, "PROVIDER_TYPE must be openai or openai-compatible")
        self.plugin_id, self.provider = PROVIDERS[self.provider_type]
        self.url = env("PROVIDER_URL", required=self.provider_type == "openai-compatible")
        self.models = [m for m in env("PROVIDER_MODELS", required=False).split(",") if m]
        if self.provider_type == "openai-compatible" and not self.models:
            raise Failure(EXIT_CONFIG, "PROVIDER_MODELS names no model")
        self.context_size = env_int("PROVIDER_CONTEXT_SIZE", 4096)
        self.max_tokens = env_int("PROVIDER_MAX_TOKENS", 4096)
        # Optional (apiKeySecret.optional, the NKP form's empty field): without a key the Job
        # sets up the administrator and the plugins, and leaves the models to the console.
        self.key_optional = env("PROVIDER_KEY_OPTIONAL", "false") == "true"
        self.api_key = env("PROVIDER_API_KEY", required=not self.key_optional)
        default = self.models[0] if self.models else "gpt-4o-mini"
        self.default_model = env("DEFAULT_MODEL", default)
        # Three whitespace-separated lists of one length (the values allow no whitespace in them).
        names, sources, refs = (env(v, required=False).split() for v in ("PLUGIN_NAMES", "PLUGIN_SOURCES", "PLUGIN_REFS"))
        if not len(names) == len(sources) == len(refs):
            raise Failure(EXIT_CONFIG, "PLUGIN_NAMES, PLUGIN_SOURCES and PLUGIN_REFS differ in length")
        self.plugins = [{"name": n, "source": s, "ref": r} for n, s, r in zip(names, sources, refs)]
        for plugin in self.plugins:
            if plugin["source"] not in ("url", "oci", "marketplace"):
                raise Failure(EXIT_CONFIG, f"plugin {plugin['name']}: source must be url, oci or marketplace")
        self.smoke_test = env("SMOKE_TEST", "false") == "true"
        self.api_wait = env_int("API_WAIT_SECONDS", 900)
        self.task_wait = env_int("TASK_WAIT_SECONDS", 900)
        self.poll = env_int("POLL_SECONDS", 2)


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def message(self):
        """Dify's error text ({"code", "message"}), or the body, on one line."""
        data = self.json()
        if isinstance(data, dict):
            text = data.get("message") or data.get("error") or data.get("code")
            if text:
                return one_line(text)
        return one_line(self.body.decode("utf-8", "replace")) or f"HTTP {self.status}"


def read_bounded(resp, limit, what):
    length = resp.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise Failure(EXIT_UNEXPECTED, f"{what} is {length} bytes, more than {limit}")
    body = resp.read(limit + 1)
    if len(body) > limit:
        raise Failure(EXIT_UNEXPECTED, f"{what} is more than {limit} bytes")
    return body


class Console:
    """Dify's console API with its cookie session and CSRF pair."""

    def __init__(self, base):
        self.base = base
        self.cookies = {}
        # The api Service is in the cluster: never through a site proxy of the environment.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, body=None, raw=None, content_type=None, limit=MAX_JSON_BYTES):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif raw is not None:
            data = raw
            headers["Content-Type"] = content_type
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        csrf = self.cookies.get("__Host-csrf_token") or self.cookies.get("csrf_token")
        if csrf:
            headers["X-CSRF-Token"] = csrf
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            resp = self.opener.open(request, timeout=120)
        except urllib.error.HTTPError as e:
            resp = e
        status = resp.status if hasattr(resp, "status") else resp.code
        for header in resp.headers.get_all("Set-Cookie") or []:
            pair = header.split(";", 1)[0]
            if "=" in pair:
                name, value = pair.split("=", 1)
                self.cookies[name.strip()] = value.strip()
        body = read_bounded(resp, limit, f"the answer to {method} {path}")
        return Response(status, body, resp.headers)

    def expect(self, method, path, body=None, ok=(200, 201), code=EXIT_UNEXPECTED, what=None):
        resp = self.call(method, path, body)
        if resp.status not in ok:
            raise Failure(code, f"{what or method + ' ' + path}: HTTP {resp.status}: {resp.message()}")
        if resp.status == 204:
            return {}
        data = resp.json()
        if not isinstance(data, dict):
            raise Failure(EXIT_UNEXPECTED, f"{method} {path} answered HTTP {resp.status} without a JSON object: {resp.message()}")
        return data


def wait_for_api(console, config):
    """The api answers /console/api/setup; until then (a fresh rollout) try again."""
    deadline = time.monotonic() + config.api_wait
    while True:
        try:
            resp = console.call("GET", "/console/api/setup")
            if resp.status == 200:
                return resp.json() or {}
            last = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as e:
            last = one_line(getattr(e, "reason", e))
        if time.monotonic() >= deadline:
            raise Failure(
                EXIT_API_UNREACHABLE,
                f"Dify's console API at {config.console} did not answer in {config.api_wait} s ({last})",
            )
        time.sleep(config.poll)


def setup(console, config, state):
    if state.get("step") == "finished":
        log("setup: already finished")
        return
    resp = console.call("POST", "/console/api/init", {"password": config.init_password})
    if resp.status == 401:
        raise Failure(EXIT_INIT_REFUSED, f"Dify refused INIT_PASSWORD (/console/api/init: {resp.message()}); the api and this Job must read the same keys Secret")
    if resp.status not in (200, 201):
        raise Failure(EXIT_UNEXPECTED, f"/console/api/init: HTTP {resp.status}: {resp.message()}")
    resp = console.call(
        "POST",
        "/console/api/setup",
        {"email": config.email, "name": config.name, "password": config.password},
    )
    if resp.status not in (200, 201):
        raise Failure(EXIT_ADMIN_REFUSED, f"creating the administrator {config.email} was refused: HTTP {resp.status}: {resp.message()}")
    log(f"setup: administrator {config.email} created")


def login(console, config):
    password = base64.b64encode(config.password.encode()).decode()
    resp = console.call(
        "POST",
        "/console/api/login",
        {"email": config.email, "password": password, "remember_me": True},
    )
    if resp.status != 200:
        raise Failure(
            EXIT_ADMIN_REFUSED,
            f"login as {config.email} was refused: HTTP {resp.status}: {resp.message()} "
            "(an administrator made before with another email or password?)",
        )
    if not any(k.endswith("access_token") for k in console.cookies):
        raise Failure(EXIT_UNEXPECTED, "login answered without an access token cookie")
    workspaces = console.expect("GET", "/console/api/workspaces").get("workspaces", [])
    current = [w for w in workspaces if w.get("current")]
    if not current:
        raise Failure(EXIT_UNEXPECTED, "the administrator has no current workspace")
    log(f"login: {config.email}, workspace {current[0].get('id')}")


PLUGIN = "/console/api/workspaces/current/plugin"


def ssl_context():
    """The image's trusted roots, plus the site's CA bundle (trust.caBundle) when mounted."""
    context = ssl.create_default_context()
    extra = os.environ.get("DIFYRENDER_CA_FILE")
    if extra:
        context.load_verify_locations(cafile=extra)
    return context


def fetch(url, headers=None, limit=MAX_PACKAGE_BYTES):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        resp = urllib.request.urlopen(request, timeout=300, context=ssl_context())
    except urllib.error.HTTPError as e:
        return e.code, read_bounded(e, MAX_JSON_BYTES, url), e.headers
    return resp.status, read_bounded(resp, limit, url), resp.headers


def registry_scheme(host):
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return "http" if name in ("localhost", "127.0.0.1", "[::1]") else "https"


def fetch_oci(ref):
    """The package in an OCI artifact: the first layer of registry/repository:tag or @digest."""
    host, _, rest = ref.partition("/")
    if "@" in rest:
        repository, _, reference = rest.partition("@")
    else:
        repository, _, reference = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
    base = f"{registry_scheme(host)}://{host}/v2/{repository}"
    accept = ",".join(
        [
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ]
    )
    headers = {"Accept": accept}
    status, body, resp_headers = fetch(f"{base}/manifests/{reference}", headers, MAX_JSON_BYTES)
    if status == 401:
        # Anonymous pull: the registry's token service (Docker's token protocol).
        challenge = resp_headers.get("WWW-Authenticate", "")
        fields = dict(
            part.split("=", 1) for part in challenge.replace("Bearer ", "", 1).split(",") if "=" in part
        )
        fields = {k.strip(): v.strip().strip('"') for k, v in fields.items()}
        query = urllib.parse.urlencode({k: fields[k] for k in ("service", "scope") if k in fields})
        status, token_body, _ = fetch(f"{fields.get('realm', '')}?{query}", None, MAX_JSON_BYTES)
        token = json.loads(token_body or b"{}")
        headers["Authorization"] = "Bearer " + (token.get("token") or token.get("access_token") or "")
        status, body, _ = fetch(f"{base}/manifests/{reference}", headers, MAX_JSON_BYTES)
    if status != 200:
        raise Failure(EXIT_PACKAGE_FETCH, f"the OCI artifact {ref}: manifest: HTTP {status}")
    layers = json.loads(body).get("layers") or []
    if not layers:
        raise Failure(EXIT_PACKAGE_FETCH, f"the OCI artifact {ref} has no layer")
    digest = layers[0]["digest"]
    status, blob, _ = fetch(f"{base}/blobs/{digest}", {k: v for k, v in headers.items() if k != "Accept"})
    if status != 200:
        raise Failure(EXIT_PACKAGE_FETCH, f"the OCI artifact {ref}: layer {digest}: HTTP {status}")
    algorithm, _, expected = digest.partition(":")
    if algorithm != "sha256" or hashlib.sha256(blob).hexdigest() != expected:
        raise Failure(EXIT_PACKAGE_FETCH, f"the OCI artifact {ref}: layer {digest} does not match its digest")
    return blob


def package_of(plugin):
    source, ref = plugin["source"], plugin["ref"]
    try:
        if source == "url":
            status, body, _ = fetch(ref)
            if status != 200:
                raise Failure(EXIT_PACKAGE_FETCH, f"the package of {plugin['name']} at {ref}: HTTP {status}")
            return body
        return fetch_oci(ref)
    except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
        raise Failure(EXIT_PACKAGE_FETCH, f"the package of {plugin['name']} ({ref}): {one_line(getattr(e, 'reason', e))}") from None


def multipart(field, filename, content):
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def installed_plugins(console):
    data = console.expect("GET", f"{PLUGIN}/list?page=1&page_size=256")
    return {p.get("plugin_id") for p in data.get("plugins", [])}


def wait_task(console, config, name, task_id):
    deadline = time.monotonic() + config.task_wait
    while True:
        task = console.expect("GET", f"{PLUGIN}/tasks/{task_id}").get("task", {})
        status = task.get("status")
        if status == "success":
            return
        if status == "failed":
            messages = [p.get("message", "") for p in task.get("plugins", []) if p.get("message")]
            raise Failure(EXIT_INSTALL_FAILED, f"installing {name} failed: {one_line(' '.join(messages) or 'no message')}")
        if time.monotonic() >= deadline:
            raise Failure(EXIT_INSTALL_FAILED, f"installing {name} did not finish in {config.task_wait} s (task {task_id}, {status})")
        time.sleep(config.poll)


def install_plugins(console, config):
    have = installed_plugins(console)
    for plugin in config.plugins:
        name = plugin["name"]
        if name in have:
            log(f"plugin {name}: installed")
            continue
        if plugin["source"] == "marketplace":
            ref = plugin["ref"]
            if not ref.startswith(name + ":") or "@" not in ref:
                raise Failure(EXIT_CONFIG, f"plugin {name}: the marketplace source needs ref, the plugin's unique identifier {name}:<version>@<sha256>")
            data = console.expect(
                "POST", f"{PLUGIN}/install/marketplace", {"plugin_unique_identifiers": [ref]},
                code=EXIT_INSTALL_FAILED, what=f"installing {name} from the marketplace",
            )
        else:
            package = package_of(plugin)
            body, content_type = multipart("pkg", name.replace("/", "-") + ".difypkg", package)
            resp = console.call("POST", f"{PLUGIN}/upload/pkg", raw=body, content_type=content_type)
            if resp.status != 200:
                raise Failure(EXIT_PACKAGE_REFUSED, f"the plugin daemon refused the package of {name}: {resp.message()}")
            uid = (resp.json() or {}).get("unique_identifier")
            data = console.expect(
                "POST", f"{PLUGIN}/install/pkg", {"plugin_unique_identifiers": [uid]},
                code=EXIT_INSTALL_FAILED, what=f"installing {name}",
            )
        if not data.get("all_installed"):
            wait_task(console, config, name, data.get("task_id"))
        log(f"plugin {name}: installed now")
        have.add(name)
    if config.plugin_id not in have:
        raise Failure(
            EXIT_INSTALL_FAILED,
            f"the provider's plugin {config.plugin_id} is not installed and bootstrap.plugins names no package for it",
        )


def fingerprint(config, credentials):
    """Names the stored credential after what it holds, keyed with the administrator's
    password: the name shows whether the credential is current and nothing about the key."""
    canonical = json.dumps(credentials, sort_keys=True).encode()
    return CREDENTIAL_PREFIX + hmac.new(config.password.encode(), canonical, hashlib.sha256).hexdigest()[:12]


def stored_credentials(console, config, path, query, what):
    """The stored credentials ({credential_id, credential_name}) of this run's target: a
    model's from its credential endpoint; the provider's (openai) from the provider list,
    since the provider's credential endpoint returns only the current one."""
    if query:
        current = console.expect("GET", path + query, what=f"reading {what}") or {}
        available = current.get("available_credentials") or []
    else:
        providers = console.expect("GET", "/console/api/workspaces/current/model-providers", what=f"reading {what}")
        entry = next((p for p in (providers or {}).get("data") or [] if p.get("provider") == config.provider), {})
        available = (entry.get("custom_configuration") or {}).get("available_credentials") or []
    return [c for c in available if str(c.get("credential_name", "")).startswith(CREDENTIAL_PREFIX)]


def upsert(console, path, query, body, credentials, config, what):
    """Creates the credential or rotates it with PUT when it changed; reads first."""
    name = fingerprint(config, credentials)
    ours = stored_credentials(console, config, path, query, what)
    if any(c.get("credential_name") == name for c in ours):
        log(f"{what}: current")
        return
    payload = dict(body, name=name, credentials=credentials)
    if not ours:
        resp = console.call("POST", path, payload)
        if resp.status in (200, 201):
            log(f"{what}: created")
            return
        if "already exists" not in resp.message():
            raise Failure(EXIT_CREDENTIAL_REFUSED, f"the provider refused {what}: {resp.message()}")
        # Made meanwhile (another run): read it again and rotate it.
        ours = stored_credentials(console, config, path, query, what)
        if not ours:
            raise Failure(EXIT_UNEXPECTED, f"{what}: Dify says it already exists but lists none")
    resp = console.call("PUT", path, dict(payload, credential_id=ours[0]["credential_id"]))
    if resp.status not in (200, 201):
        raise Failure(EXIT_CREDENTIAL_REFUSED, f"the provider refused {what}: {resp.message()}")
    log(f"{what}: rotated")


def configure_provider(console, config):
    base = f"/console/api/workspaces/current/model-providers/{config.provider}"
    if config.provider_type == "openai-compatible":
        for model in config.models:
            credentials = {
                "endpoint_url": config.url,
                "api_key": config.api_key,
                "mode": "chat",
                "context_size": str(config.context_size),
                "max_tokens_to_sample": str(config.max_tokens),
            }
            query = "?" + urllib.parse.urlencode({"model": model, "model_type": "llm"})
            upsert(
                console, f"{base}/models/credentials", query,
                {"model": model, "model_type": "llm"}, credentials, config,
                f"the credential of model {model}",
            )
    else:
        credentials = {"openai_api_key": config.api_key}
        if config.url:
            credentials.update(
                openai_api_base=config.url, api_protocol="chat", validate_model=config.default_model
            )
        upsert(console, f"{base}/credentials", "", {}, credentials, config, "the OpenAI credential")


def set_default_model(console, config):
    path = "/console/api/workspaces/current/default-model"
    current = console.expect("GET", path + "?model_type=llm").get("data") or {}
    provider = (current.get("provider") or {}).get("provider")
    if current.get("model") == config.default_model and provider == config.provider:
        log(f"default model: {config.default_model}, current")
        return
    console.expect(
        "POST", path,
        {"model_settings": [{"model_type": "llm", "provider": config.provider, "model": config.default_model}]},
        code=EXIT_DEFAULT_MODEL, what=f"setting the default model {config.default_model}",
    )
    log(f"default model: {config.default_model}, set")


def smoke_test(console, config):
    app = console.expect(
        "POST", "/console/api/apps",
        {"name": "difyrender smoke test", "mode": "chat", "icon_type": "emoji", "icon": "🤖"},
        code=EXIT_SMOKE_TEST, what="creating the smoke-test app",
    )
    key = console.expect(
        "POST", f"/console/api/apps/{app['id']}/api-keys",
        code=EXIT_SMOKE_TEST, what="creating the smoke-test app's key",
    )
    request = urllib.request.Request(
        config.console + "/v1/chat-messages",
        data=json.dumps({"inputs": {}, "query": "Say OK.", "response_mode": "blocking", "user": "difyrender"}).encode(),
        headers={"Authorization": "Bearer " + key["token"], "Content-Type": "application/json"},
        method="POST",
    )
    try:
        resp = console.opener.open(request, timeout=300)
        answer = json.loads(read_bounded(resp, MAX_JSON_BYTES, "the chat answer")).get("answer", "")
    except urllib.error.HTTPError as e:
        raise Failure(EXIT_SMOKE_TEST, f"the smoke-test message was refused: HTTP {e.code}: {Response(e.code, read_bounded(e, MAX_JSON_BYTES, 'the error'), e.headers).message()}") from None
    if not answer:
        raise Failure(EXIT_SMOKE_TEST, "the smoke-test message got an empty answer")
    console.expect("DELETE", f"/console/api/apps/{app['id']}", ok=(200, 204), code=EXIT_SMOKE_TEST, what="deleting the smoke-test app")
    log(f"smoke test: {config.default_model} answered ({len(answer)} characters)")


def main():
    try:
        config = Config()
        console = Console(config.console)
        setup(console, config, wait_for_api(console, config))
        login(console, config)
        install_plugins(console, config)
        if config.api_key.strip():
            configure_provider(console, config)
            set_default_model(console, config)
            if config.smoke_test:
                smoke_test(console, config)
        else:
            log("no model API key (optional, and its Secret gives none): no provider credential, default model or smoke test; add them in Dify's console")
    except Failure as f:
        fail(f.code, f.reason)
    except (urllib.error.URLError, OSError) as e:
        fail(EXIT_API_UNREACHABLE, f"Dify's console API: {one_line(getattr(e, 'reason', e))}")
    except Exception as e:  # noqa: BLE001 - one reason line, never a traceback
        fail(EXIT_UNEXPECTED, f"unexpected {type(e).__name__}: {one_line(e)}")
    log("done")
    return 0


def fail(code, reason):
    reason = scrub(reason)
    print(f"{PREFIX}: error: {reason}", file=sys.stderr, flush=True)
    try:
        with open(os.environ.get("TERMINATION_LOG", "/dev/termination-log"), "w") as out:
            out.write(f"{reason} (exit code {code})\n")
    except OSError:
        pass
    sys.exit(code)


if __name__ == "__main__":
    sys.exit(main())
