#!/usr/bin/env python3
"""Pushes one file as an OCI artifact whose only layer is the file, as `oras push` does, over
the OCI distribution API (plain HTTP): how an operator publishes a plugin package for
`bootstrap.plugins[].source: oci`. For the bootstrap tests, against the real distribution
registry. Usage: oci_push.py HOST:PORT REPOSITORY TAG FILE"""

import hashlib
import json
import sys
import urllib.parse
import urllib.request

host, repository, tag, path = sys.argv[1:5]
base = f"http://{host}/v2/{repository}"


def blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    req = urllib.request.Request(f"{base}/blobs/uploads/", data=b"", method="POST")
    location = urllib.request.urlopen(req).headers["Location"]
    location = urllib.parse.urljoin(f"http://{host}", location)
    sep = "&" if "?" in location else "?"
    req = urllib.request.Request(f"{location}{sep}digest={digest}", data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req).read()
    return digest


content = open(path, "rb").read()
config = b"{}"
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.dify.plugin.v1",
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": blob(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.dify.plugin.package", "digest": blob(content), "size": len(content),
                "annotations": {"org.opencontainers.image.title": path.rsplit("/", 1)[-1]}}],
}
req = urllib.request.Request(f"{base}/manifests/{tag}", data=json.dumps(manifest).encode(), method="PUT",
                             headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
urllib.request.urlopen(req).read()
