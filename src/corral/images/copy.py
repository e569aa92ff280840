"""copy(src, dst): pull, push, save, load and import are all this one operation.

The sequence (containers/image's copy.Image, simplified):
  1. read the source's manifest; an index picks the instance for `platform` (default: this host)
  2. read and verify the config; check it has a diff id per layer
  3. convert the manifest if the destination does not store its format (Docker schema 2 <-> OCI)
  4. dst.prepare(manifest, config); config and layers go over unless dst already has them, each
     stream wrapped in a VerifyingReader (size + digest checked at EOF); layers in parallel when
     the destination allows
  5. dst.put_manifest(raw, media_type, names=...)
The caller commits or closes the destination (see transports/base.py).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from corral.errors import InvalidArgument
from corral.images import manifest as mf
from corral.images.transports.base import ImageDestination, ImageSource
from corral.store.content import DigestMismatch, VerifyingReader
from corral.store.streams import Reader


class Progress(Protocol):
    """What copy() reports to (corral.images.registry.progress.Progress has this shape)."""

    def start(self, short_id: str, action: str, total: int | None) -> Callable[[int], None]: ...

    def done(self, short_id: str, status: str) -> None: ...


class _NoProgress:
    def start(self, short_id: str, action: str, total: int | None) -> Callable[[int], None]:
        return lambda n: None

    def done(self, short_id: str, status: str) -> None:
        pass

_MAX_CONFIG = 8 << 20
_MAX_MANIFEST = 4 << 20


@dataclass(frozen=True)
class CopyResult:
    manifest_digest: str
    manifest_media_type: str
    manifest: bytes
    image_id: str  # the config digest
    config: dict[str, Any]


class _ProgressReader(VerifyingReader):
    """Verifies (unless the source already does) and reports bytes read."""

    def __init__(self, raw: Reader, desc: mf.Descriptor, advance: Callable[[int], None],
                 verify: bool) -> None:
        super().__init__(raw, desc.digest if verify else None, desc.size if verify else None,
                         f"layer {desc.digest}")
        self.verify = verify
        self.advance = advance

    def read(self, n: int = -1) -> bytes:
        if self.verify:
            data = super().read(n)
        else:
            data = self.raw.read(n)
            if not data:
                self.done = True
        if data:
            self.advance(len(data))
        return data


def _verified_bytes(raw: bytes, digest: str, what: str) -> None:
    got = "sha256:" + hashlib.sha256(raw).hexdigest()
    if got != digest:
        raise DigestMismatch(f"{what} {digest}: digest mismatch: content is {got}")


def read_manifest(src: ImageSource, platform: mf.Platform | None = None,
                  ) -> tuple[bytes, str, mf.Manifest]:
    """The source's image manifest, through an index if there is one."""
    raw, media_type = src.get_manifest()
    media_type = mf.sniff_media_type(raw, media_type)
    if media_type in mf.INDEX_TYPES:
        entry = mf.select_platform(mf.parse_index(raw, media_type), platform)
        raw, media_type = src.get_manifest(entry.digest)
        _verified_bytes(raw, entry.digest, "manifest")
        media_type = mf.sniff_media_type(raw, media_type or entry.media_type)
    if len(raw) > _MAX_MANIFEST:
        raise InvalidArgument(f"manifest of {src.reference} is too large ({len(raw)} bytes)")
    return raw, media_type, mf.parse_manifest(raw, media_type)


def read_blob(src: ImageSource, desc: mf.Descriptor, what: str, limit: int) -> bytes:
    if desc.size > limit:
        raise InvalidArgument(f"{what} {desc.digest} is too large ({desc.size} bytes)")
    with VerifyingReader(src.get_blob(desc), desc.digest, desc.size, f"{what} {desc.digest}") as r:
        return r.read()


def copy(src: ImageSource, dst: ImageDestination, *, platform: mf.Platform | None = None,
         names: Sequence[str] = (), progress: Progress | None = None,
         words: tuple[str, str, str] = ("Copying blob", "Done", "Already exists"),
         parallel: int = 4) -> CopyResult:
    """Copy one image from `src` to `dst`; returns what was written. See the module docstring."""
    raw, media_type, manifest = read_manifest(src, platform)
    config_raw = read_blob(src, manifest.config, "config", _MAX_CONFIG)
    config = mf.parse_config(config_raw)
    diff_ids = mf.diff_ids(config)
    if len(diff_ids) != len(manifest.layers):
        raise InvalidArgument(f"malformed image {src.reference}: {len(manifest.layers)} layers "
                              f"but {len(diff_ids)} diff ids in its config")
    for layer in manifest.layers:
        mf.compression_of(layer.media_type)
    if media_type not in dst.supported_manifest_types:
        manifest = mf.convert_manifest(manifest, dst.supported_manifest_types[0])
        media_type = manifest.media_type
        raw = manifest.to_bytes()
    dst.prepare(manifest, config)
    report = progress or _NoProgress()
    action, finished, skipped = words

    if not dst.has_blob(manifest.config, layer_index=None):
        dst.put_blob(manifest.config, VerifyingReader(io.BytesIO(config_raw), manifest.config.digest,
                                                      manifest.config.size), layer_index=None,
                     reopen=lambda: io.BytesIO(config_raw))

    def one_layer(i: int) -> None:
        desc = manifest.layers[i]
        short = desc.digest[7:19]
        if dst.has_blob(desc, layer_index=i):
            report.done(short, skipped)
            return
        advance = report.start(short, action, desc.size)

        def reopen() -> _ProgressReader:
            return _ProgressReader(src.get_blob(desc), desc, advance, not src.verifies_blobs)

        with reopen() as stream:
            dst.put_blob(desc, stream, layer_index=i, reopen=reopen)
            stream.drain()
        report.done(short, finished)

    indexes = range(len(manifest.layers))
    if dst.parallel_layers and parallel > 1 and len(manifest.layers) > 1:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            for future in [pool.submit(one_layer, i) for i in indexes]:
                future.result()
    else:
        for i in indexes:
            one_layer(i)
    dst.put_manifest(raw, media_type, names=names)
    return CopyResult("sha256:" + hashlib.sha256(raw).hexdigest(), media_type, raw,
                      manifest.config.digest, config)
