"""Tar archives as image containers: random-access reading and streaming writing.

`ArchiveReader` indexes a tar file once (name -> member) and opens members in place, so loading
a 1 GB archive reads it once; stdin and compressed archives (docker load accepts gzip, bzip2,
xz, zstd) are first spooled, decompressed, to a temp file. Member names are normalized and
symlinks between members (old docker archives link duplicate layers) are followed inside the
archive only.

`ArchiveWriter` writes members in order to a temp file beside the target, renamed into place by
`commit()` (or straight to a stream such as stdout), so a failed save leaves no partial file.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import tempfile
from pathlib import Path
from typing import IO

from corral.errors import InvalidArgument, NotFound
from corral.store.extract import normalize_name
from corral.store.streams import PeekReader, Reader, decompress, detect_compression

_FIXED_MTIME = 0


class ArchiveReader:
    def __init__(self, source: str | Path | IO[bytes], *, spool_dir: Path | None = None) -> None:
        self._spool: str | None = None
        self.name = str(source) if isinstance(source, str | Path) else "stdin"
        try:
            if isinstance(source, str | Path):
                self.file: IO[bytes] = open(source, "rb")  # noqa: SIM115 - closed in close()
            else:
                self.file = source
        except FileNotFoundError:
            raise NotFound(f"open {source}: no such file or directory") from None
        except IsADirectoryError:
            raise InvalidArgument(f"{source} is a directory, not an archive") from None
        head = self.file.read(6)
        compression = detect_compression(head)
        seekable = isinstance(source, str | Path) or _seekable(self.file)
        if compression or not seekable:
            try:
                self._spool_to_file(head, compression, spool_dir)
            except BaseException:
                self.close()
                raise
        else:
            self.file.seek(0)
        try:
            self.tar = tarfile.open(fileobj=self.file, mode="r:")  # noqa: SIM115 - closed in close()
            self.members = {"/".join(normalize_name(m.name)): m for m in self.tar.getmembers()}
        except (tarfile.TarError, InvalidArgument, EOFError) as e:
            self.close()
            raise InvalidArgument(f"{self.name}: not a valid image archive: {e}") from None

    def _spool_to_file(self, head: bytes, compression: str, spool_dir: Path | None) -> None:
        fd, self._spool = tempfile.mkstemp(dir=spool_dir, prefix="archive-")
        peek = PeekReader(self.file)
        peek.head = head
        src = decompress(peek, compression)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        except InvalidArgument as e:  # corrupt or truncated compressed data
            raise InvalidArgument(f"{self.name}: {e}") from None
        if self.file is not None:
            self.file.close()
        self.file = open(self._spool, "rb")  # noqa: SIM115 - closed in close()

    def _member(self, name: str, hops: int = 0) -> tarfile.TarInfo:
        key = "/".join(normalize_name(name))
        m = self.members.get(key)
        if m is None:
            raise NotFound(f"{self.name}: {name} is missing from the archive")
        if (m.issym() or m.islnk()) and hops < 16:
            target = m.linkname if m.islnk() or m.linkname.startswith("/") else \
                os.path.join(os.path.dirname(key), m.linkname)
            return self._member(target, hops + 1)
        if not m.isreg():
            raise InvalidArgument(f"{self.name}: {name} is not a file")
        return m

    def exists(self, name: str) -> bool:
        return "/".join(normalize_name(name)) in self.members

    def size(self, name: str) -> int:
        return self._member(name).size

    def open(self, name: str) -> IO[bytes]:
        f = self.tar.extractfile(self._member(name))
        assert f is not None
        return f

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()
        if self._spool:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._spool)


def _seekable(f: IO[bytes]) -> bool:
    try:
        return f.seekable()
    except (AttributeError, ValueError):
        return False


class ArchiveWriter:
    """Tar members written in order; nothing at `path` until commit()."""

    def __init__(self, target: str | Path | IO[bytes]) -> None:
        self.path: Path | None = None
        self.tmp: str | None = None
        if isinstance(target, str | Path):
            self.path = Path(target)
            try:
                fd, self.tmp = tempfile.mkstemp(dir=self.path.parent or ".", prefix=f".{self.path.name}.")
            except FileNotFoundError:
                raise NotFound(f"open {target}: no such file or directory") from None
            self.out: IO[bytes] = os.fdopen(fd, "wb")
        else:
            self.out = target
        self.tar = tarfile.open(fileobj=self.out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.names: set[str] = set()
        self.committed = False

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = size, 0o644, _FIXED_MTIME
        ti.uname = ti.gname = ""
        return ti

    def add_dir(self, name: str) -> None:
        if name in self.names:
            return
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, _FIXED_MTIME
        self.tar.addfile(ti)
        self.names.add(name)

    def add_bytes(self, name: str, data: bytes) -> None:
        self.tar.addfile(self._info(name, len(data)), io.BytesIO(data))
        self.names.add(name)

    def add_stream(self, name: str, stream: Reader, size: int) -> None:
        """Copy exactly `size` bytes of `stream` as member `name`."""
        self.tar.addfile(self._info(name, size), _Exact(stream, size, name))
        self.names.add(name)

    def add_file(self, name: str, path: Path) -> None:
        with open(path, "rb") as f:
            self.tar.addfile(self._info(name, os.fstat(f.fileno()).st_size), f)
        self.names.add(name)

    def commit(self) -> None:
        self.tar.close()
        if self.path is not None and self.tmp is not None:
            self.out.flush()
            os.fsync(self.out.fileno())
            self.out.close()
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
        else:
            self.out.flush()
        self.committed = True

    def close(self) -> None:
        if self.committed:
            return
        # Abandon without writing the end-of-archive blocks: a cut stream must not look whole.
        self.tar.closed = True  # type: ignore[attr-defined]
        stream = self.tar.fileobj
        if stream is not None and hasattr(stream, "closed"):
            stream.closed = True
        if self.tmp is not None:
            with contextlib.suppress(Exception):
                self.out.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)


class _Exact:
    """A reader that fails loudly if `stream` has fewer than `size` bytes."""

    def __init__(self, stream: Reader, size: int, name: str) -> None:
        self.stream, self.left, self.name = stream, size, name

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        want = self.left if n < 0 else min(n, self.left)
        data = self.stream.read(want)
        if not data:
            raise InvalidArgument(f"{self.name}: truncated: {self.left} bytes missing")
        self.left -= len(data)
        if self.left == 0:
            drain = getattr(self.stream, "drain", None)
            if drain is not None:
                drain()  # EOF of a VerifyingReader: the digest check
        return data
