"""`docker://`: a registry as an image source and destination (over registry/client.py).

Source: the manifest (or index) by tag or digest, blobs as `BlobStream`s, which verify size and
digest themselves (so copy() does not hash them again) and resume dropped connections.
Destination: HEAD before each upload; a blob missing from the target repository is first
mounted from another repository of the same registry that has it (`mount_from`, e.g. the
image's other names there), else uploaded — monolithic, or in `chunk_size` PATCHes. Layers go
in parallel (the client's pool is thread-safe). The manifest is put under the reference's tag
or digest last, so a reader never sees a manifest whose blobs are missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from corral.images import manifest as mf
from corral.images import reference
from corral.images.registry import credentials
from corral.images.registry.auth import Credentials
from corral.images.registry.client import RegistryClient
from corral.images.registry.hosts import host_config
from corral.images.transports.base import ImageDestination, ImageSource
from corral.store.streams import ReadAhead, Reader


@dataclass(frozen=True)
class RegistryOptions:
    """The flags every registry command shares (podman's names)."""

    tls_verify: bool | None = None  # None: decided by hosts.py (loopback / registries.conf)
    cert_dir: Path | None = None
    authfile: Path | None = None
    credentials: Credentials | None = None  # --creds; else from the auth files
    chunk_size: int | None = None  # upload in PATCHes of this size; None: one PUT


DEFAULT_OPTIONS = RegistryOptions()
# Blobs this big are received and hashed on a thread of their own: with the store's own
# threads (decompress; tar + diff id) a pull keeps both cores busy.
_READ_AHEAD_FROM = 8 << 20


def connect(ref: reference.Reference, options: RegistryOptions = DEFAULT_OPTIONS) -> RegistryClient:
    """A client for `ref`'s registry with the user's TLS settings and credentials."""
    creds = options.credentials or credentials.lookup(ref.domain, ref.path, authfile=options.authfile)
    host = host_config(ref.domain, tls_verify=options.tls_verify, cert_dir=options.cert_dir)
    return RegistryClient(host, credentials=creds)


class RegistrySource(ImageSource):
    verifies_blobs = True

    def __init__(self, ref: reference.Reference, client: RegistryClient) -> None:
        self.ref = ref
        self.client = client
        self.reference = f"docker://{ref}"
        self.top_digest = ""

    def get_manifest(self, digest: str | None = None) -> tuple[bytes, str]:
        target = digest or self.ref.digest or self.ref.tag or reference.DEFAULT_TAG
        got = self.client.get_manifest(self.ref.path, target)
        if digest is None:
            self.top_digest = got.digest  # the index's, for a multi-platform image: docker's "Digest:"
        return got.data, got.media_type

    def get_blob(self, desc: mf.Descriptor) -> Reader:
        stream = self.client.open_blob(self.ref.path, desc.digest, desc.size)
        return ReadAhead(stream) if desc.size >= _READ_AHEAD_FROM else stream

    def close(self) -> None:
        self.client.close()


class RegistryDestination(ImageDestination):
    parallel_layers = True

    def __init__(self, ref: reference.Reference, client: RegistryClient, *,
                 mount_from: Sequence[str] = (), chunk_size: int | None = None) -> None:
        self.ref = ref
        self.client = client
        self.reference = f"docker://{ref}"
        self.mount_from = [repo for repo in mount_from if repo != ref.path]
        self.chunk_size = chunk_size
        self.manifest_digest = ""
        self.mounted: dict[str, str] = {}  # digest -> the repository it was mounted from

    def prepare(self, manifest: mf.Manifest, config: Mapping[str, Any]) -> None:
        pass

    def has_blob(self, desc: mf.Descriptor, *, layer_index: int | None = None) -> bool:
        if self.client.blob_exists(self.ref.path, desc.digest):
            return True
        for repo in self.mount_from:
            if self.client.mount_blob(self.ref.path, desc.digest, repo):
                self.mounted[desc.digest] = repo
                return True
        return False

    def put_blob(self, desc: mf.Descriptor, stream: Reader, *, layer_index: int | None,
                 reopen: Callable[[], Reader] | None = None) -> None:
        # A big layer is read and hashed on a thread while this one sends.
        ahead = ReadAhead(stream) if desc.size >= _READ_AHEAD_FROM else None
        streams = [ahead or stream]

        def open_body() -> BinaryIO:  # the first attempt reads `stream`; a retry reopens
            if streams:
                return cast(BinaryIO, _Closing(streams.pop()))
            if reopen is None:
                raise ConnectionError(f"upload of {desc.digest} dropped and cannot be restarted")
            return cast(BinaryIO, _Closing(reopen()))

        try:
            self.client.upload_blob(self.ref.path, desc.digest, desc.size, open_body,
                                    chunk_size=self.chunk_size)
            if ahead is not None:
                ahead.drain()  # to EOF, where the local blob's own check raises
        finally:
            if ahead is not None:
                ahead.close()

    def put_manifest(self, raw: bytes, media_type: str, *, names: Sequence[str] = ()) -> None:
        target = self.ref.digest or self.ref.tag or reference.DEFAULT_TAG
        self.manifest_digest = self.client.put_manifest(self.ref.path, target, raw, media_type)

    def close(self) -> None:
        self.client.close()


class _Closing:
    """A Reader as the context manager upload_blob opens; the stream itself is the caller's."""

    def __init__(self, raw: Reader) -> None:
        self.raw = raw

    def read(self, n: int = -1) -> bytes:
        return self.raw.read(n)

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


__all__ = ["DEFAULT_OPTIONS", "RegistryDestination", "RegistryOptions", "RegistrySource",
           "connect"]
