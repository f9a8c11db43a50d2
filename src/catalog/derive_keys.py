#!/usr/bin/env python3
"""difyrender's keys Job (`difyrender catalog --keys in-cluster`): fills in the release's keys
Secret inside the cluster, exactly as `difyrender secrets render` writes it, so that enabling
the catalog entry needs no step on the operator's machine. Standard-library Python: it runs in
Dify's api image, like the bootstrap Job.

Environment:
  KEYS_SECRET   the keys Secret to fill in; the entry creates it empty (Flux: IfNotPresent)
  KEYS_RECIPE   JSON list, one entry per key of the Secret, in the Secret's order:
                {"key": "SECRET_KEY"} is the master key itself; {"key": K, "purpose": P,
                "format": "hex"|"password"|"base64url32", "length": N} is derived from it
  MASTER_KEY    the form's master key (optional, from the form's Secret): empty means the keys
                Secret's own SECRET_KEY, or a new random one when it has none
  MIN_MASTER_KEY_CHARS, MIN_MASTER_KEY_DISTINCT   the strength a given master key needs
  SERVICEACCOUNT_DIR   token, ca.crt and namespace (default: the pod's service account)
  KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT   the API server (set by the kubelet)

It never changes a key the Secret already has: it adds the missing ones in one merge patch
(guarded by the Secret's resourceVersion), and writes nothing when none is missing. A master
key from the form that differs from the Secret's is refused: the datastores' passwords derive
from the first one (rotate with `difyrender secrets apply`). No key is ever printed.

Exit codes: 0 done; 2 bad input; 20 the API server refused or failed a request;
21 the form's master key differs from the keys Secret's.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import ssl
import sys
import urllib.error
import urllib.request

PREFIX = "difyrender-keys"
EXIT_CONFIG = 2
EXIT_API = 20
EXIT_OTHER_MASTER_KEY = 21
MAX_BODY = 1 << 20  # a Secret is at most 1 MiB


class Failure(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def log(message):
    print(f"{PREFIX}: {message}", flush=True)


def derive(master, purpose):
    return hmac.new(master.encode(), b"difyrender/v1/" + purpose.encode(), hashlib.sha256)


def key_of(master, item):
    """One key of the recipe, as src/values/secrets.rs derive_key writes it."""
    if "purpose" not in item:
        return master
    mac = derive(master, item["purpose"])
    form, length = item["format"], int(item["length"])
    if form == "hex":
        return mac.hexdigest()[:length]
    if form == "password":
        return "P0" + mac.hexdigest()[: length - 2]
    if form == "base64url32":
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")
    raise Failure(EXIT_CONFIG, f"KEYS_RECIPE: {item['key']} has an unknown format {form}")


def check_master_key(key):
    """The strength `difyrender` asks of a master key (src/values/secrets.rs check_master_key)."""
    least = int(os.environ.get("MIN_MASTER_KEY_CHARS", "16"))
    distinct = int(os.environ.get("MIN_MASTER_KEY_DISTINCT", "8"))
    if any(c.isspace() or not c.isprintable() for c in key):
        problem = "contains whitespace or control characters"
    elif len(key) < least:
        problem = f"is {len(key)} characters long; at least {least} are needed"
    elif len(set(key)) < distinct:
        problem = f"has only {len(set(key))} different characters; at least {distinct} are needed"
    else:
        return
    raise Failure(EXIT_CONFIG, f"the form's master key is too weak: it {problem}. Generate one with `openssl rand -hex 32`")


class Api:
    def __init__(self):
        sa = os.environ.get("SERVICEACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount")
        with open(os.path.join(sa, "token")) as f:
            self.token = f.read().strip()
        with open(os.path.join(sa, "namespace")) as f:
            self.namespace = f.read().strip()
        self.context = ssl.create_default_context(cafile=os.path.join(sa, "ca.crt"))
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise Failure(EXIT_CONFIG, "KUBERNETES_SERVICE_HOST is not set")
        host = f"[{host}]" if ":" in host else host
        self.base = f"https://{host}:{port}"

    def call(self, method, path, body=None, content_type="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", "Bearer " + self.token)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as resp:
                return resp.status, json.loads(resp.read(MAX_BODY) or b"{}")
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read(MAX_BODY)).get("message", "")
            except ValueError:
                message = ""
            return e.code, {"message": message or e.reason}
        except (urllib.error.URLError, OSError) as e:
            raise Failure(EXIT_API, f"the API server at {self.base}: {getattr(e, 'reason', e)}") from None


def fill(api, name, recipe, form_key):
    path = f"/api/v1/namespaces/{api.namespace}/secrets/{name}"
    status, secret = api.call("GET", path)
    if status != 200:
        raise Failure(EXIT_API, f"reading Secret {api.namespace}/{name}: HTTP {status}: {secret.get('message', '')}")
    data = secret.get("data") or {}
    have = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
    current = have.get("SECRET_KEY", "")
    if form_key and current and form_key != current:
        raise Failure(
            EXIT_OTHER_MASTER_KEY,
            f"Secret {api.namespace}/{name} holds another master key than the form's: its keys and the "
            "datastores' passwords come from it; keep it (clear the form's master key), or rotate with "
            "`difyrender secrets apply`",
        )
    if form_key and not current:
        check_master_key(form_key)
    master = current or form_key
    if not master:
        master = secrets.token_hex(32)
        log("no master key in the form or the Secret: generated one (keep a copy of SECRET_KEY from the Secret)")
    missing = {}
    for item in recipe:
        if item["key"] not in have:
            missing[item["key"]] = base64.b64encode(key_of(master, item).encode()).decode()
    if not missing:
        log(f"Secret {api.namespace}/{name}: every key present, nothing written")
        return
    patch = {"metadata": {"resourceVersion": secret["metadata"]["resourceVersion"]}, "data": missing}
    status, answer = api.call(
        "PATCH", path + "?fieldManager=difyrender-keys", patch, "application/merge-patch+json"
    )
    if status != 200:
        raise Failure(EXIT_API, f"writing Secret {api.namespace}/{name}: HTTP {status}: {answer.get('message', '')}")
    log(f"Secret {api.namespace}/{name}: added {', '.join(sorted(missing))}")


def main():
    try:
        name = os.environ.get("KEYS_SECRET", "")
        if not name:
            raise Failure(EXIT_CONFIG, "KEYS_SECRET is not set")
        try:
            recipe = json.loads(os.environ.get("KEYS_RECIPE", ""))
        except ValueError:
            raise Failure(EXIT_CONFIG, "KEYS_RECIPE is not JSON") from None
        if not isinstance(recipe, list) or not all(isinstance(i, dict) and "key" in i for i in recipe):
            raise Failure(EXIT_CONFIG, "KEYS_RECIPE is not a list of keys")
        fill(Api(), name, recipe, os.environ.get("MASTER_KEY", ""))
    except Exception as e:  # one reason line, never a traceback (it could quote a key)
        f = e if isinstance(e, Failure) else Failure(EXIT_API, f"unexpected {type(e).__name__}")
        print(f"{PREFIX}: error: {f.reason}", file=sys.stderr, flush=True)
        try:
            with open(os.environ.get("TERMINATION_LOG", "/dev/termination-log"), "w") as out:
                out.write(f"{f.reason} (exit code {f.code})\n")
        except OSError:
            pass
        return f.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
