"""The shape of every transport (containers/image's ImageSource / ImageDestination).

A source yields a manifest (raw bytes + media type; an index's instances by digest) and blobs
as streams of their stored bytes. A destination is told the manifest and config first
(`prepare`), is asked "already have it?" per blob, accepts blobs, then the manifest, then
`commit()`; `close()` without `commit()` abandons everything. `corral.images.copy.copy()` drives
the sequence and verifies every digest; a destination sees each blob as a `VerifyingReader` and
MUST read it to EOF before it makes the blob visible (EOF is where a mismatch raises).

Ownership: the caller opens a transport, runs one or more copies, commits, closes:

    with RegistrySource(...) as src, LocalDestination(service) as dst:
        result = copy(src, dst, names=[...])
        dst.commit()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from corral.images.manifest import DOCKER_MANIFEST, OCI_MANIFEST, Descriptor, Manifest
from corral.store.streams import Reader


class ImageSource:
    """Where an image is read from. Subclasses implement `get_manifest` and `get_blob`."""

    reference = ""  # for messages: "docker://registry:5000/app:v1", "oci:/tmp/dir:tag"
    # True if get_blob's streams check size and digest themselves (raising at EOF), so copy()
    # does not hash them a second time (the registry client's BlobStream does).
    verifies_blobs = False

    def get_manifest(self, digest: str | None = None) -> tuple[bytes, str]:
        """The raw manifest or index and its media type ('' if the transport does not say).

        With `digest`, one instance of an index (a per-platform manifest)."""
        raise NotImplementedError

    def get_blob(self, desc: Descriptor) -> Reader:
        """The blob's bytes as stored (compressed layers stay compressed); copy() verifies."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections and temp files."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class ImageDestination:
    """Where an image is written to."""

    reference = ""
    # manifest types it stores; copy() converts (Docker schema 2 <-> OCI) to the first one if needed
    supported_manifest_types: tuple[str, ...] = (OCI_MANIFEST, DOCKER_MANIFEST)
    # may put_blob be called for several layers at once from threads?
    parallel_layers = False

    def prepare(self, manifest: Manifest, config: Mapping[str, Any]) -> None:
        """Called once per image before any blob: the manifest to be written and its config."""

    def has_blob(self, desc: Descriptor, *, layer_index: int | None = None) -> bool:
        """Already have this blob (the config if `layer_index` is None)? Then copy skips it."""
        return False

    def put_blob(self, desc: Descriptor, stream: Reader, *, layer_index: int | None,
                 reopen: Callable[[], Reader] | None = None) -> None:
        """Store one blob, read from `stream` to EOF before making anything visible.

        `reopen()` gives a fresh stream of the same blob from byte 0 (to restart an upload)."""
        raise NotImplementedError

    def put_manifest(self, raw: bytes, media_type: str, *, names: Sequence[str] = ()) -> None:
        """The image's manifest (after all its blobs); `names`: tags it gets (full references)."""
        raise NotImplementedError

    def commit(self) -> None:
        """Make everything written visible (archives are finished, store records written)."""

    def close(self) -> None:
        """Abandon whatever was not committed."""

    def __enter__(self) -> ImageDestination:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
