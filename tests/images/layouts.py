"""Writing OCI image layouts in tests (what skopeo's `oci:` transport reads and writes)."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_LAYER_TYPES = {"": "application/vnd.oci.image.layer.v1.tar",
                "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
                "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}


def _put(root: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs/sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs/sha256" / digest).write_bytes(data)
    return "sha256:" + digest


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    return data


def write_layout(root: Path, layers: Sequence[bytes], *, ref: str = "latest",
                 compression: str = "gzip", config: dict[str, Any] | None = None,
                 diff_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """An OCI layout holding one image; returns its manifest (as a dict)."""
    descs = []
    for layer in layers:
        blob = compress(layer, compression)
        descs.append({"mediaType": _LAYER_TYPES[compression], "digest": _put(root, blob),
                      "size": len(blob)})
    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
           "config": {"Cmd": ["sh"]}, **(config or {}),
           "rootfs": {"type": "layers", "diff_ids": list(diff_ids) if diff_ids is not None else
                      ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]}}
    cfg_raw = json.dumps(cfg).encode()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": _put(root, cfg_raw), "size": len(cfg_raw)},
                "layers": descs}
    raw = json.dumps(manifest).encode()
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": _put(root, raw), "size": len(raw),
         "annotations": {"org.opencontainers.image.ref.name": ref}}]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return manifest
