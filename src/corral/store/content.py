"""Blobs addressed by sha256: written to a temp path, verified, then renamed into place.

Nothing unverified is ever visible under `blobs/`: `Ingest.commit()` checks size and digest before
the rename, and reads go through `VerifyingReader`, which fails at EOF if the bytes on disk no
longer match their name (umoci's VerifiedReadCloser).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from corral.errors import InvalidArgument, NotFound
from corral.images.reference import is_digest
from corral.store.streams import Reader, Stream

_CHUNK = 1 << 20


class DigestMismatch(InvalidArgument):
    """A blob whose bytes do not match its digest or size."""


def check_digest(digest: str) -> str:
    if not is_digest(digest):
        raise InvalidArgument(f"invalid digest {digest!r}")
    return digest


class VerifyingReader(Stream):
    """Reads `raw` while hashing; raises DigestMismatch at EOF unless size and digest match."""

    def __init__(self, raw: Reader, digest: str | None, size: int | None, what: str = "") -> None:
        self.raw = raw
        self.expected_digest = digest
        self.expected_size = size if size is not None and size >= 0 else None
        self.what = what or (digest or "blob")
        self.hasher = hashlib.sha256()
        self.count = 0
        self.done = False

    def read(self, n: int = -1) -> bytes:
        if self.done:
            return b""
        if n is None or n < 0:
            parts = []
            while chunk := self.read(_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        data = self.raw.read(n)
        if data:
            self.count += len(data)
            self.hasher.update(data)
            if self.expected_size is not None and self.count > self.expected_size:
                raise DigestMismatch(
                    f"{self.what}: size mismatch: more than the expected {self.expected_size} bytes")
            return data
        self._finish()
        return b""

    @property
    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()

    def _finish(self) -> None:
        self.done = True
        if self.expected_size is not None and self.count != self.expected_size:
            raise DigestMismatch(
                f"{self.what}: truncated: got {self.count} of {self.expected_size} bytes")
        if self.expected_digest is not None and self.digest != self.expected_digest:
            raise DigestMismatch(f"{self.what}: digest mismatch: content is {self.digest}")

    def close(self) -> None:
        close = getattr(self.raw, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Ingest:
    """A blob being written: `write()` then `commit()`; anything else leaves no trace."""

    def __init__(self, store: ContentStore, digest: str | None, size: int | None) -> None:
        self.store = store
        self.expected_digest = digest
        self.expected_size = size
        store.ingest_dir.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=store.ingest_dir, prefix="blob-")
        self.file = os.fdopen(fd, "wb", buffering=0)
        self.hasher = hashlib.sha256()
        self.count = 0
        self.committed = False

    def write(self, data: bytes | memoryview) -> int:
        self.hasher.update(data)
        self.count += len(data)
        self.file.write(data)
        return len(data)

    def copy_from(self, stream: Reader) -> None:
        while chunk := stream.read(_CHUNK):
            self.write(chunk)

    @property
    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()

    def commit(self) -> str:
        """Verify and move into place; returns the digest. Idempotent if the blob exists."""
        self.file.close()
        what = self.expected_digest or "blob"
        if self.expected_size is not None and self.count != self.expected_size:
            self.abort()
            raise DigestMismatch(f"{what}: size mismatch: got {self.count} of "
                                 f"{self.expected_size} bytes")
        if self.expected_digest is not None and self.digest != self.expected_digest:
            self.abort()
            raise DigestMismatch(f"{what}: digest mismatch: content is {self.digest}")
        target = self.store.path(self.digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, target)
        self.committed = True
        return self.digest

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)

    def __enter__(self) -> Ingest:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.committed:
            self.abort()


class ContentStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.ingest_dir = self.root / "ingest"

    def path(self, digest: str) -> Path:
        return self.blobs_dir / check_digest(digest)[7:]

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store") from None

    def open(self, digest: str) -> VerifyingReader:
        """A reader that fails at EOF if the stored bytes do not match `digest`."""
        path = self.path(digest)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the reader
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store") from None
        return VerifyingReader(f, digest, os.fstat(f.fileno()).st_size, f"blob {digest}")

    def read(self, digest: str) -> bytes:
        with self.open(digest) as r:
            return r.read()

    def ingest(self, digest: str | None = None, size: int | None = None) -> Ingest:
        return Ingest(self, digest, size)

    def write(self, data: bytes, digest: str | None = None) -> str:
        """Store `data` (verified against `digest` if given); returns its digest."""
        if digest is None:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.has(digest):
            return digest
        with self.ingest(digest, len(data)) as w:
            w.write(data)
            return w.commit()

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(digest))

    def digests(self) -> Iterator[str]:
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.blobs_dir):
                if len(name) == 64:
                    yield "sha256:" + name

    def clean_ingest(self) -> None:
        """Remove what killed commands left in ingest/ (call with the gc lock held: every
        command that writes there holds the writers lock meanwhile)."""
        from corral.store.extract import remove_path

        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.ingest_dir):
                remove_path(self.ingest_dir / name)
