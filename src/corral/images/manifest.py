"""OCI and Docker schema 2 manifests, indexes and descriptors, and platform selection.

Parsing validates the shape (a malformed manifest is one clear error) and keeps the raw bytes
elsewhere: digests are always taken over the bytes as received, never over a re-serialization.
"""

from __future__ import annotations

import json
import platform as _platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.errors import InvalidArgument
from corral.images.reference import is_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
LAYER_TYPES = {
    OCI_LAYER: "",
    DOCKER_LAYER: "",
    OCI_LAYER_GZIP: "gzip",
    DOCKER_LAYER_GZIP: "gzip",
    OCI_LAYER_NONDIST_GZIP: "gzip",
    DOCKER_FOREIGN_LAYER: "gzip",
    OCI_LAYER_ZSTD: "zstd",
}

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"


def compression_of(media_type: str) -> str:
    """'' (plain tar), 'gzip' or 'zstd'; an unknown layer media type is an error."""
    try:
        return LAYER_TYPES[media_type]
    except KeyError:
        raise InvalidArgument(f"unsupported layer media type {media_type!r}") from None


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`linux/arm64/v8`, `linux/amd64`, `arm64` (os defaults to linux)."""
        parts = text.lower().split("/")
        if len(parts) == 1:
            parts = ["linux", *parts]
        if len(parts) > 3 or not all(parts):
            raise InvalidArgument(f"invalid platform {text!r}: want os/arch[/variant]")
        return normalize(cls(*parts))

    def to_json(self) -> dict[str, str]:
        d = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        return d


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
                 "armel": "arm", "i386": "386", "i686": "386"}


def normalize(p: Platform) -> Platform:
    arch = _ARCH_ALIASES.get(p.architecture, p.architecture)
    variant = p.variant
    if arch == "arm64" and variant == "v8":
        variant = ""
    return Platform(p.os, arch, variant)


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    return normalize(Platform("linux", machine, "v7" if machine.startswith("armv7") else ""))


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            d["urls"] = list(self.urls)
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform is not None:
            d["platform"] = self.platform.to_json()
        return d

    @classmethod
    def from_json(cls, d: Any, where: str) -> Descriptor:
        if not isinstance(d, dict):
            raise InvalidArgument(f"malformed {where}: descriptor is not an object")
        digest, size, media_type = d.get("digest"), d.get("size"), d.get("mediaType", "")
        if not isinstance(digest, str) or not is_digest(digest):
            raise InvalidArgument(f"malformed {where}: bad digest {digest!r}")
        if not isinstance(size, int) or size < 0:
            raise InvalidArgument(f"malformed {where}: bad size {size!r}")
        if not isinstance(media_type, str):
            raise InvalidArgument(f"malformed {where}: bad mediaType")
        plat = d.get("platform")
        platform = None
        if isinstance(plat, dict):
            platform = normalize(Platform(str(plat.get("os", "")), str(plat.get("architecture", "")),
                                          str(plat.get("variant", ""))))
        ann = d.get("annotations") or {}
        return cls(media_type, digest, size, dict(ann) if isinstance(ann, dict) else {},
                   platform, tuple(d.get("urls") or ()))


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        d: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type,
                             "config": self.config.to_json(),
                             "layers": [layer.to_json() for layer in self.layers]}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return json.dumps(d, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        d: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type,
                             "manifests": [m.to_json() for m in self.manifests]}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return json.dumps(d, separators=(",", ":")).encode()


def _load(raw: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"malformed {where}: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"malformed {where}: not a JSON object")
    return doc


def sniff_media_type(raw: bytes, declared: str = "") -> str:
    """The media type of a manifest: the declared one, else the document's, else by shape."""
    if declared and declared not in ("application/json", "text/plain"):
        return declared
    doc = _load(raw, "manifest")
    mt = doc.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    if "manifests" in doc:
        return OCI_INDEX
    if doc.get("schemaVersion") == 1:
        raise InvalidArgument("unsupported manifest: Docker schema 1 is deprecated")
    return OCI_MANIFEST


def parse_manifest(raw: bytes, media_type: str) -> Manifest:
    if media_type not in MANIFEST_TYPES:
        raise InvalidArgument(f"unsupported manifest media type {media_type!r}")
    doc = _load(raw, "manifest")
    if doc.get("schemaVersion") != 2:
        raise InvalidArgument(f"malformed manifest: schemaVersion {doc.get('schemaVersion')!r}")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InvalidArgument("malformed manifest: no layers list")
    config = Descriptor.from_json(doc.get("config"), "manifest config")
    ann = doc.get("annotations") or {}
    return Manifest(media_type, config,
                    tuple(Descriptor.from_json(x, "manifest layer") for x in layers),
                    dict(ann) if isinstance(ann, dict) else {})


def parse_index(raw: bytes, media_type: str) -> Index:
    if media_type not in INDEX_TYPES:
        raise InvalidArgument(f"unsupported index media type {media_type!r}")
    doc = _load(raw, "index")
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise InvalidArgument("malformed index: no manifests list")
    ann = doc.get("annotations") or {}
    return Index(media_type, tuple(Descriptor.from_json(x, "index entry") for x in entries),
                 dict(ann) if isinstance(ann, dict) else {})


def select_platform(index: Index, want: Platform | None = None) -> Descriptor:
    """The index entry for `want` (default: this machine), as containerd's matcher picks it."""
    want = normalize(want or host_platform())
    candidates = [m for m in index.manifests if m.media_type in MANIFEST_TYPES or not m.media_type]
    for m in candidates:
        p = m.platform
        if p and p.os == want.os and p.architecture == want.architecture and (
                not want.variant or p.variant == want.variant):
            return m
    if len(candidates) == 1 and candidates[0].platform is None:
        return candidates[0]
    available = ", ".join(str(m.platform) for m in candidates if m.platform) or "none"
    raise InvalidArgument(f"no image found in manifest list for platform {want} (has: {available})")


def parse_config(raw: bytes) -> dict[str, Any]:
    """An image config, checked for the fields corral relies on (rootfs.diff_ids)."""
    doc = _load(raw, "image config")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise InvalidArgument("malformed image config: no rootfs.diff_ids")
    for d in rootfs["diff_ids"]:
        if not isinstance(d, str) or not is_digest(d):
            raise InvalidArgument(f"malformed image config: bad diff id {d!r}")
    return doc


def diff_ids(config: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(config.get("rootfs", {}).get("diff_ids", ()))


_TO_OCI = {DOCKER_CONFIG: OCI_CONFIG, DOCKER_LAYER_GZIP: OCI_LAYER_GZIP, DOCKER_LAYER: OCI_LAYER,
           DOCKER_FOREIGN_LAYER: OCI_LAYER_NONDIST_GZIP}
_TO_DOCKER = {OCI_CONFIG: DOCKER_CONFIG, OCI_LAYER_GZIP: DOCKER_LAYER_GZIP, OCI_LAYER: DOCKER_LAYER,
              OCI_LAYER_NONDIST_GZIP: DOCKER_FOREIGN_LAYER}


def convert_manifest(m: Manifest, media_type: str) -> Manifest:
    """The same image under the other manifest format (blobs unchanged, media types renamed)."""
    if m.media_type == media_type:
        return m
    table = _TO_OCI if media_type == OCI_MANIFEST else _TO_DOCKER
    if media_type == DOCKER_MANIFEST and any(layer.media_type == OCI_LAYER_ZSTD for layer in m.layers):
        raise InvalidArgument("a zstd-compressed image cannot be stored as a Docker schema 2 manifest")

    def conv(d: Descriptor) -> Descriptor:
        return Descriptor(table.get(d.media_type, d.media_type), d.digest, d.size,
                          d.annotations, d.platform, d.urls)

    return Manifest(media_type, conv(m.config), tuple(conv(x) for x in m.layers),
                    m.annotations if media_type == OCI_MANIFEST else {})
