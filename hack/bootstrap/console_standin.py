#!/usr/bin/env python3
"""A STAND-IN for Dify's console API, for testing the bootstrap Job's script.

Dify's api and plugin daemon are not available to the tests (no registry serves them), so
this server reproduces the contract recorded by running Dify 1.14.1 with plugin daemon 0.6.0:
../shared/reference/dify-console-bootstrap.md. It keeps to that contract, refusals included:

- setup before a validated init → 401 not_init_validated; a wrong INIT_PASSWORD → 401;
- every authenticated console call needs the access cookie AND the CSRF pair (cookie
  __Host-csrf_token + header X-CSRF-Token); the cookies are Secure (__Host-);
- a credential is validated before it is stored, by calling the model endpoint for real (the
  OpenAI-compatible stub): a wrong key → 400 invalid_param with the upstream 401 text, an
  unreachable endpoint → 400 with the connection error, nothing stored on failure;
- the same credential name again → 400 "already exists"; rotation is PUT + credential_id;
- an unsigned package is refused at upload ("bad signature"); a failed install task carries
  the installer's output.

Where the reference is silent, the shapes follow Dify 1.14.1's controllers (plugin list,
task, credential list with `available_credentials`, default model) and are marked "shape:".
What it does NOT reproduce: the daemon's RSA signatures (a package here is "signed" when it
carries `_signature` = HMAC-SHA256 of its manifest under the key in --signing-key-file, the
stand-in's operator key; marketplace packages are signed with it too, as the stand-in for
Dify's own key), real plugin installs (a package whose manifest has `install_error` fails its
task with that text, as uv's output would), encryption of stored secrets.

The marketplace source: the reference records no call of it, so its contract is taken from
Dify's public clients (the web console's `installPackageFromMarketPlace`, scripts that install
plugins offline) and marked "shape:": `POST …/plugin/install/marketplace`
`{"plugin_unique_identifiers": [uid]}` → `{all_installed, task_id}` as for a package; the api
downloads `GET <MARKETPLACE_API_URL>/api/v1/plugins/download?unique_identifier=<uid>` and hands
the package to the daemon, whose signature check applies. With the marketplace off
(MARKETPLACE_ENABLED=false; here: no --marketplace-api-url) → 400 "marketplace is not enabled";
a download the marketplace refuses → 400 with its status. The marketplace itself is a plain
file server in the tests (hack/bootstrap/serve_files.py --marketplace), a stand-in as well.

Usage: console_standin.py --init-password-file F --signing-key-file F [--marketplace-api-url URL]
Prints `PORT <n>` when listening on 127.0.0.1. Test controls (not Dify's): `GET /_standin/state`
returns what it holds (secret fields replaced by their SHA-256) and every state-changing
request it accepted; `POST /_standin/hide-credentials-once` makes the next credential read
list none, as if another run created the credential between a read and a create.
"""

import argparse
import base64
import hashlib
import hmac
import io
import json
import secrets
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 * 1024 * 1024
WS = "/console/api/workspaces/current"
COMPAT = "langgenius/openai_api_compatible/openai_api_compatible"
OPENAI = "langgenius/openai/openai"
PLUGIN_OF = {COMPAT: "langgenius/openai_api_compatible", OPENAI: "langgenius/openai"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--init-password-file", required=True)
    parser.add_argument("--signing-key-file", required=True)
    parser.add_argument("--marketplace-api-url", help="MARKETPLACE_API_URL; without it the marketplace is off")
    args = parser.parse_args()
    marketplace = args.marketplace_api_url
    init_password = open(args.init_password_file).read().strip()
    signing_key = open(args.signing_key_file).read().strip().encode()
    lock = threading.Lock()
    tenant = "5e2f6f0c-0000-4000-8000-000000000001"
    state = {
        "setup": False, "account": None, "init_sessions": set(), "access": {},
        "plugins": {}, "uploads": {}, "tasks": {}, "credentials": {}, "default_model": None,
        "apps": {}, "app_keys": {}, "writes": [], "hide_once": False,
    }

    def validate(provider, model, credentials):
        """What the plugin does in the daemon pod: one call to the endpoint."""
        if provider == COMPAT:
            base, key = credentials.get("endpoint_url", ""), credentials.get("api_key", "")
        else:
            base = credentials.get("openai_api_base") or "https://api.openai.com/v1"
            key = credentials.get("openai_api_key", "")
            model = credentials.get("validate_model") or "gpt-4o-mini"
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 5}).encode()
        req = urllib.request.Request(base.rstrip("/") + "/chat/completions", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read(MAX_BODY)
            return None
        except urllib.error.HTTPError as e:
            text = e.read(4096).decode("utf-8", "replace")
            return f"Credentials validation failed with status code {e.code} and response body {text}"
        except (urllib.error.URLError, OSError) as e:
            return f"Credentials validation failed: {getattr(e, 'reason', e)}"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def send(self, status, body=None, cookies=()):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for c in cookies:
                self.send_header("Set-Cookie", c)
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, code, message):
            self.send(status, {"code": code, "message": message, "status": status})

        def cookies(self):
            jar = {}
            for part in self.headers.get("Cookie", "").split(";"):
                if "=" in part:
                    k, v = part.split("=", 1)
                    jar[k.strip()] = v.strip()
            return jar

        def authed(self):
            jar = self.cookies()
            token = jar.get("__Host-access_token")
            csrf = jar.get("__Host-csrf_token")
            if not token or token not in state["access"]:
                self.error(401, "unauthorized", "Invalid token.")
                return False
            if not csrf or self.headers.get("X-CSRF-Token") != csrf or state["access"][token] != csrf:
                self.error(401, "unauthorized", "CSRF token is missing or invalid.")
                return False
            return True

        def body(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ValueError("too large")
            return self.rfile.read(length)

        def json_body(self):
            return json.loads(self.body() or b"{}")

        def wrote(self, what):
            state["writes"].append(f"{self.command} {urllib.parse.urlsplit(self.path).path} {what}".strip())

        def do_GET(self):
            with lock:
                self.route("GET")

        def do_POST(self):
            with lock:
                self.route("POST")

        def do_PUT(self):
            with lock:
                self.route("PUT")

        def do_DELETE(self):
            with lock:
                self.route("DELETE")

        def route(self, method):
            url = urllib.parse.urlsplit(self.path)
            path, query = url.path, dict(urllib.parse.parse_qsl(url.query))
            if path == "/_standin/state":
                return self.send(200, public_state())
            if path == "/_standin/hide-credentials-once" and method == "POST":
                state["hide_once"] = True
                return self.send(200, {})
            if path == "/console/api/setup" and method == "GET":
                return self.send(200, {"step": "finished" if state["setup"] else "not_started"})
            if path == "/console/api/init" and method == "POST":
                if state["setup"]:
                    return self.error(403, "already_setup", "Dify has been successfully installed.")
                if self.json_body().get("password") != init_password:
                    return self.error(401, "init_validate_failed", "Init validation failed. Please check the password and try again.")
                session = secrets.token_hex(16)
                state["init_sessions"].add(session)
                return self.send(201, {"result": "success"}, [f"session={session}; HttpOnly; Path=/"])
            if path == "/console/api/setup" and method == "POST":
                if state["setup"]:
                    return self.error(403, "already_setup", "Dify has been successfully installed.")
                if self.cookies().get("session") not in state["init_sessions"]:
                    return self.error(401, "not_init_validated", "Init validation has not been completed yet.")
                body = self.json_body()
                state["account"] = {"email": body["email"], "name": body["name"], "password": body["password"]}
                state["setup"] = True
                self.wrote(body["email"])
                return self.send(201, {"result": "success"})
            if path == "/console/api/login" and method == "POST":
                body = self.json_body()
                account = state["account"]
                try:
                    password = base64.b64decode(body.get("password", "")).decode()
                except ValueError:
                    password = None
                if not account or body.get("email") != account["email"] or password != account["password"]:
                    return self.error(401, "authentication_failed", "Invalid email or password.")
                access, csrf = secrets.token_hex(16), secrets.token_hex(16)
                state["access"][access] = csrf
                attrs = "; Secure; Path=/; SameSite=Lax"
                return self.send(200, {"result": "success"}, [
                    f"__Host-access_token={access}; HttpOnly{attrs}",
                    f"__Host-refresh_token={secrets.token_hex(16)}; HttpOnly{attrs}",
                    f"__Host-csrf_token={csrf}{attrs}",
                ])
            if path.startswith("/console/api/") and not self.authed():
                return None
            if path == "/console/api/workspaces" and method == "GET":
                return self.send(200, {"workspaces": [{"id": tenant, "name": "Workspace", "current": True}]})
            if path == f"{WS}/plugin/list" and method == "GET":
                plugins = [{"plugin_id": p, "plugin_unique_identifier": uid} for p, uid in state["plugins"].items()]
                return self.send(200, {"plugins": plugins, "total": len(plugins)})  # shape: PluginListApi
            if path == f"{WS}/plugin/upload/pkg" and method == "POST":
                return self.upload()
            if path == f"{WS}/plugin/install/marketplace" and method == "POST":
                return self.install_from_marketplace(self.json_body().get("plugin_unique_identifiers", []))
            if path == f"{WS}/plugin/install/pkg" and method == "POST":
                return self.install(self.json_body().get("plugin_unique_identifiers", []))
            if path.startswith(f"{WS}/plugin/tasks/") and method == "GET":
                return self.task(path.rsplit("/", 1)[1])
            if path == f"{WS}/model-providers" and method == "GET":
                return self.providers()
            if path.startswith(f"{WS}/model-providers/"):
                return self.credentials(method, path[len(f"{WS}/model-providers/"):], query)
            if path == f"{WS}/default-model":
                return self.default_model(method, query)
            if path == "/console/api/apps" and method == "POST":
                app = secrets.token_hex(8)
                state["apps"][app] = self.json_body().get("name")
                self.wrote(app)
                return self.send(201, {"id": app, "mode": "chat"})
            if path.startswith("/console/api/apps/") and path.endswith("/api-keys") and method == "POST":
                token = "app-" + secrets.token_hex(12)
                state["app_keys"][token] = path.split("/")[4]
                return self.send(201, {"id": secrets.token_hex(8), "token": token})
            if path.startswith("/console/api/apps/") and method == "DELETE":
                state["apps"].pop(path.split("/")[4], None)
                self.wrote("")
                return self.send(204)
            if path == "/v1/chat-messages" and method == "POST":
                return self.chat()
            return self.error(404, "not_found", f"{method} {path}")

        def upload(self):
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + self.headers.get("Content-Type", "").encode() + b"\r\n\r\n" + self.body()
            )
            pkg = next((p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "pkg"), None)
            if pkg is None:
                return self.error(400, "invalid_param", "pkg is required")
            uid, problem = accept(pkg.get_payload(decode=True))
            if problem:
                return self.error(400, "invalid_param", problem)
            self.wrote(uid)
            return self.send(200, {"unique_identifier": uid, "manifest": state["uploads"][uid]})

        def install_from_marketplace(self, uids):
            # shape: PluginInstallFromMarketplaceApi (see the header)
            if not marketplace:
                return self.error(400, "invalid_param", "marketplace is not enabled")
            for uid in uids:
                url = marketplace.rstrip("/") + "/api/v1/plugins/download?" + urllib.parse.urlencode({"unique_identifier": uid})
                try:
                    with urllib.request.urlopen(url, timeout=10) as resp:
                        content = resp.read(MAX_BODY)
                except urllib.error.HTTPError as e:
                    return self.error(400, "invalid_param", f"download plugin pkg failed: {e.code} {e.reason}")
                except (urllib.error.URLError, OSError) as e:
                    return self.error(400, "invalid_param", f"download plugin pkg failed: {getattr(e, 'reason', e)}")
                got, problem = accept(content)
                if problem:
                    return self.error(400, "invalid_param", problem)
                if got != uid:
                    return self.error(400, "invalid_param", f"the marketplace's package is {got}, not {uid}")
            return self.install(uids)

        def install(self, uids):
            if not uids or any(uid not in state["uploads"] for uid in uids):
                return self.error(400, "invalid_param", "plugin not found, please upload it first")
            task = secrets.token_hex(8)
            state["tasks"][task] = {"uids": uids, "polls": 0}
            self.wrote(task)
            return self.send(200, {"all_installed": False, "task_id": task})

        def task(self, task_id):
            task = state["tasks"].get(task_id)
            if task is None:
                return self.error(404, "not_found", "task not found")
            task["polls"] += 1
            plugins = []
            status = "running"
            if task["polls"] > 1:  # the first poll sees it running, the next its end
                status = "success"
                for uid in task["uids"]:
                    meta = state["uploads"][uid]
                    if meta.get("install_error"):
                        status = "failed"
                        plugins.append({"plugin_unique_identifier": uid, "plugin_id": meta["plugin_id"], "status": "failed", "message": meta["install_error"]})
                    else:
                        state["plugins"][meta["plugin_id"]] = uid
                        plugins.append({"plugin_unique_identifier": uid, "plugin_id": meta["plugin_id"], "status": "success", "message": ""})
            # shape: PluginTaskApi
            return self.send(200, {"task": {"id": task_id, "status": status, "total_plugins": len(task["uids"]), "plugins": plugins}})

        def credentials(self, method, rest, query):
            if rest.endswith("/models/credentials"):
                provider = rest[: -len("/models/credentials")]
                body = self.json_body() if method in ("POST", "PUT") else {}
                model = query.get("model") or body.get("model")
            elif rest.endswith("/credentials"):
                provider, model = rest[: -len("/credentials")], None
                body = self.json_body() if method in ("POST", "PUT") else {}
            else:
                return self.error(404, "not_found", rest)
            if PLUGIN_OF.get(provider) not in state["plugins"]:
                return self.error(400, "invalid_param", f"Provider {provider} does not exist.")
            stored = state["credentials"].setdefault(f"{provider}|{model}", [])
            if method == "GET" and model is None:
                # shape: ModelProviderCredentialApi.get returns the current credential only,
                # its secret fields masked (the list is in the provider list).
                current = stored[-1]["credentials"] if stored else None
                return self.send(200, {"credentials": current and {k: "****" for k in current}})
            if method == "GET":
                # shape: ModelProviderModelCredentialApi.get
                return self.send(200, {"credentials": {}, "current_credential_id": None,
                                       "available_credentials": listed_credentials(stored)})
            name = body.get("name")
            if method == "POST" and any(c["name"] == name for c in stored):
                return self.error(400, "invalid_param", f"Credential with name '{name}' already exists.")
            problem = validate(provider, model, body.get("credentials", {}))
            if problem:
                return self.error(400, "invalid_param", problem)
            if method == "POST":
                stored.append({"credential_id": secrets.token_hex(8), "name": name, "credentials": body["credentials"]})
                self.wrote(name)
                return self.send(201, {"result": "success"})
            target = next((c for c in stored if c["credential_id"] == body.get("credential_id")), None)
            if target is None:
                return self.error(404, "not_found", "credential not found")
            target.update(name=name, credentials=body["credentials"])
            self.wrote(name)
            return self.send(200, {"result": "success"})

        def providers(self):
            # shape: ModelProviderListApi.get, the fields this script reads
            data = []
            for provider, plugin in PLUGIN_OF.items():
                if plugin in state["plugins"]:
                    stored = state["credentials"].get(f"{provider}|None", [])
                    data.append({"provider": provider, "custom_configuration": {
                        "status": "active" if stored else "no-configure",
                        "available_credentials": listed_credentials(stored)}})
            return self.send(200, {"data": data})

        def default_model(self, method, query):
            if method == "GET":
                return self.send(200, {"data": state["default_model"]})  # shape: DefaultModelApi
            setting = self.json_body()["model_settings"][0]
            provider, model = setting["provider"], setting["model"]
            if not any(state["credentials"].get(k) for k in (f"{provider}|{model}", f"{provider}|None")):
                return self.error(400, "invalid_param", f"Model {model} of {provider} has no credential.")
            state["default_model"] = {"model": model, "model_type": "llm", "provider": {"provider": provider}}
            self.wrote(model)
            return self.send(200, {"result": "success"})

        def chat(self):
            app = state["app_keys"].get(self.headers.get("Authorization", "").removeprefix("Bearer "))
            if app is None or app not in state["apps"]:
                return self.error(401, "unauthorized", "Access token is invalid")
            default = state["default_model"]
            stored = state["credentials"].get(f"{default['provider']['provider']}|{default['model']}") or \
                state["credentials"].get(f"{default['provider']['provider']}|None")
            problem = validate(default["provider"]["provider"], default["model"], stored[0]["credentials"])
            if problem:
                return self.error(400, "completion_request_error", problem)
            return self.send(200, {"answer": "OK", "conversation_id": secrets.token_hex(8)})

    def accept(content):
        """The daemon's check of a package: (unique identifier, None), or (None, the refusal)."""
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as z:
                manifest = z.read("manifest.json")
                signature = z.read("_signature").decode() if "_signature" in z.namelist() else ""
        except (zipfile.BadZipFile, KeyError):
            return None, "invalid plugin package"
        want = hmac.new(signing_key, manifest, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, want):
            return None, "plugin verification has been enabled, and the plugin you want to install has a bad signature"
        meta = json.loads(manifest)
        uid = f"{meta['plugin_id']}:{meta['version']}@{hashlib.sha256(content).hexdigest()}"
        state["uploads"][uid] = meta
        return uid, None

    def listed_credentials(stored):
        listed = [{"credential_id": c["credential_id"], "credential_name": c["name"]} for c in stored]
        if state["hide_once"]:
            state["hide_once"], listed = False, []
        return listed

    def public_state():
        def fingerprint(creds):
            return {k: (hashlib.sha256(v.encode()).hexdigest() if k in ("api_key", "openai_api_key") else v)
                    for k, v in creds.items()}
        return {
            "setup": state["setup"],
            "account": state["account"] and {"email": state["account"]["email"], "name": state["account"]["name"]},
            "plugins": sorted(state["plugins"]),
            "credentials": {k: [{"credential_id": c["credential_id"], "name": c["name"], "credentials": fingerprint(c["credentials"])}
                                for c in v] for k, v in state["credentials"].items() if v},
            "default_model": state["default_model"],
            "apps": len(state["apps"]),
            "writes": state["writes"],
        }

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
