#!/usr/bin/env python3
"""Writes a plugin package for the console stand-in (console_standin.py): a zip holding
manifest.json and, when signed, `_signature`, the stand-in's stand-in for the daemon's RSA
signature (HMAC-SHA256 of the manifest under the key in --signing-key-file). Not a real
.difypkg: it only exercises the bootstrap script's upload, refusal and task handling.

Usage: make_package.py OUT --plugin-id ID --version V [--signing-key-file F] [--install-error TEXT]
"""

import argparse
import hashlib
import hmac
import json
import zipfile

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--plugin-id", required=True)
parser.add_argument("--version", required=True)
parser.add_argument("--signing-key-file")
parser.add_argument("--install-error")
args = parser.parse_args()
meta = {"plugin_id": args.plugin_id, "version": args.version}
if args.install_error:
    meta["install_error"] = args.install_error
manifest = json.dumps(meta, sort_keys=True).encode()
with zipfile.ZipFile(args.out, "w") as z:
    z.writestr("manifest.json", manifest)
    if args.signing_key_file:
        key = open(args.signing_key_file).read().strip().encode()
        z.writestr("_signature", hmac.new(key, manifest, hashlib.sha256).hexdigest())
