"""Drive the registry with the oras Python client (oras-py), for e2e_oras.rs.

usage: oras_client.py ADDR REPO TAG SUBJECT_JSON WORKDIR

Pushes WORKDIR/sbom.json and WORKDIR/big.bin (chunked uploads) as an artifact
whose config media type gives its artifact type and whose subject is
SUBJECT_JSON ({"mediaType","digest","size"}), pulls it back into
WORKDIR/out, and prints one JSON object describing what happened.
"""

import json
import os
import sys

import oras.client
import oras.oci

addr, repo, tag, subject_json, work = sys.argv[1:6]
os.chdir(work)
target = f"{addr}/{repo}:{tag}"
client = oras.client.OrasClient(hostname=addr, insecure=True)

response = client.push(
    target=target,
    files=["sbom.json:application/vnd.example.sbom.layer.v1+json", "big.bin"],
    manifest_config="config.json:application/vnd.example.sbom.config.v1+json",
    manifest_annotations={"org.example.tool": "oras-py"},
    subject=oras.oci.Subject(**json.loads(subject_json)),
    do_chunked=True,
    chunk_size=64 * 1024,
    quiet=True,
)
pulled = client.pull(target=target, outdir=os.path.join(work, "out"))
tags = client.get_tags(f"{addr}/{repo}")
print(
    json.dumps(
        {
            "push_status": response.status_code,
            "oci_subject": response.headers.get("OCI-Subject"),
            "digest": response.headers.get("Docker-Content-Digest"),
            "pulled": sorted(os.path.basename(p) for p in pulled),
            "tags": tags,
        }
    )
)
