"""`docker-archive:PATH`: the format of `docker save` / `docker load` (and podman's default).

    manifest.json         [{"Config": "<hex>.json", "RepoTags": ["busybox:latest"],
                            "Layers": ["<diff hex>.tar", ...]}, ...]
    <hex>.json            the image config (its digest is the image id)
    <diff hex>.tar        each layer, uncompressed (older docker: <id>/layer.tar; docker 25+:
                          blobs/sha256/<hex>) - reading follows whatever paths manifest.json names
    repositories          {"busybox": {"latest": "<top layer id>"}} (legacy; written for old tools)

There is no registry manifest inside: the source synthesizes a Docker schema 2 manifest whose
layer digests are the diff ids (an uncompressed layer's digest is its diff id), verified by copy()
as every blob is. The destination decompresses layers that arrive compressed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from corral.errors import InvalidArgument
from corral.images import manifest as mf
from corral.images import reference
from corral.images.transports.archive import ArchiveReader, ArchiveWriter
from corral.images.transports.base import ImageDestination, ImageSource
from corral.store.content import VerifyingReader
from corral.store.streams import Reader, decompress, detect_compression


@dataclass(frozen=True)
class ArchivedImage:
    config: str
    repo_tags: tuple[str, ...]  # full names
    layers: tuple[str, ...]


class DockerArchive:
    def __init__(self, reader: ArchiveReader) -> None:
        self.reader = reader
        try:
            doc = json.loads(reader.read("manifest.json"))
            self.images = [ArchivedImage(str(e["Config"]),
                                         tuple(str(reference.parse(t)) for t in e.get("RepoTags") or ()),
                                         tuple(str(x) for x in e["Layers"]))
                           for e in doc]
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidArgument(f"{reader.name}: malformed manifest.json: {e!r}") from None

    def source(self, index: int) -> DockerArchiveSource:
        return DockerArchiveSource(self, self.images[index])

    def close(self) -> None:
        self.reader.close()


class DockerArchiveSource(ImageSource):
    def __init__(self, archive: DockerArchive, image: ArchivedImage) -> None:
        self.archive = archive
        self.image = image
        self.reference = f"docker-archive:{archive.reader.name}"
        r = archive.reader
        config_raw = r.read(image.config)
        self.config_desc = mf.Descriptor(mf.DOCKER_CONFIG, _sha256(config_raw), len(config_raw))
        self.blobs = {self.config_desc.digest: image.config}
        try:
            diffs = mf.diff_ids(json.loads(config_raw))
        except ValueError:
            raise InvalidArgument(f"{self.reference}: malformed image config {image.config}") from None
        if len(diffs) != len(image.layers):
            raise InvalidArgument(f"{self.reference}: {len(image.layers)} layers but "
                                  f"{len(diffs)} diff ids in {image.config}")
        layers = []
        for path, diff in zip(image.layers, diffs, strict=True):
            with r.open(path) as f:
                compression = detect_compression(f.read(6))
            if compression:
                with r.open(path) as f:
                    h = hashlib.sha256()
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                    digest = "sha256:" + h.hexdigest()
                media_type = mf.DOCKER_LAYER_GZIP if compression == "gzip" else mf.OCI_LAYER_ZSTD
            else:
                digest, media_type = diff, mf.DOCKER_LAYER
            layers.append(mf.Descriptor(media_type, digest, r.size(path)))
            self.blobs[digest] = path
        self.manifest = mf.Manifest(mf.DOCKER_MANIFEST, self.config_desc, tuple(layers))

    def get_manifest(self, digest: str | None = None) -> tuple[bytes, str]:
        return self.manifest.to_bytes(), mf.DOCKER_MANIFEST

    def get_blob(self, desc: mf.Descriptor) -> Reader:
        path = self.blobs.get(desc.digest)
        if path is None:
            raise InvalidArgument(f"{self.reference}: blob {desc.digest} is not in the archive")
        return self.archive.reader.open(path)


class DockerArchiveDestination(ImageDestination):
    supported_manifest_types = (mf.DOCKER_MANIFEST, mf.OCI_MANIFEST)

    def __init__(self, target: str | Path | IO[bytes], names: Sequence[str] = ()) -> None:
        self.reference = f"docker-archive:{target}"
        self.names = list(names)
        self.writer = ArchiveWriter(target)
        self.entries: list[dict[str, Any]] = []
        self.repositories: dict[str, dict[str, str]] = {}
        self.diff_ids: tuple[str, ...] = ()
        self.config_digest = ""

    def prepare(self, manifest: mf.Manifest, config: Mapping[str, Any]) -> None:
        self.diff_ids = mf.diff_ids(config)
        self.config_digest = manifest.config.digest

    @staticmethod
    def _layer_name(diff_id: str) -> str:
        return f"{diff_id[7:]}.tar"

    def has_blob(self, desc: mf.Descriptor, *, layer_index: int | None = None) -> bool:
        name = f"{desc.digest[7:]}.json" if layer_index is None else \
            self._layer_name(self.diff_ids[layer_index])
        return name in self.writer.names

    def put_blob(self, desc: mf.Descriptor, stream: Reader, *, layer_index: int | None,
                 reopen: Callable[[], Reader] | None = None) -> None:
        if layer_index is None:
            self.writer.add_stream(f"{desc.digest[7:]}.json", stream, desc.size)
            return
        diff = self.diff_ids[layer_index]
        compression = mf.compression_of(desc.media_type)
        if not compression:
            self.writer.add_stream(self._layer_name(diff), stream, desc.size)
            return
        fd, tmp = tempfile.mkstemp(prefix="corral-layer-")
        try:
            plain = VerifyingReader(decompress(stream, compression), diff, None,
                                    f"layer {desc.digest}: uncompressed content")
            with os.fdopen(fd, "wb") as out:
                while chunk := plain.read(1 << 20):
                    out.write(chunk)
            self.writer.add_file(self._layer_name(diff), Path(tmp))
        finally:
            os.unlink(tmp)

    def put_manifest(self, raw: bytes, media_type: str, *, names: Sequence[str] = ()) -> None:
        tags = [reference.parse(n) for n in (self.names or names)]
        layers = [self._layer_name(d) for d in self.diff_ids]
        self.entries.append({"Config": f"{self.config_digest[7:]}.json",
                             "RepoTags": [str(t) for t in tags if t.tag] or None,
                             "Layers": layers})
        for t in tags:
            if t.tag and layers:
                self.repositories.setdefault(t.familiar_name(), {})[t.tag] = self.diff_ids[-1][7:]

    def commit(self) -> None:
        self.writer.add_bytes("manifest.json", json.dumps(self.entries).encode())
        if self.repositories:
            self.writer.add_bytes("repositories", json.dumps(self.repositories).encode())
        self.writer.commit()

    def close(self) -> None:
        self.writer.close()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
