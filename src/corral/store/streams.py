"""Stream plumbing for the one-pass pipeline: tee to the content store, decompress, hash.

A layer is read once: raw bytes -> (verify blob digest) -> tee into the blob's ingest file ->
decompress -> (verify diff id) -> tar extractor. gzip uses python-isal's igzip (several times
zlib's speed), zstd the `zstandard` package; both are imported only when a layer needs them.
"""

from __future__ import annotations

import contextlib
import io
from typing import IO, Any, Protocol, cast

from corral.errors import CorralError, InvalidArgument

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


class Reader(Protocol):
    """What the pipeline passes along: anything with read(n) (files, sockets, decompressors)."""

    def read(self, n: int = -1, /) -> bytes: ...


class Sink(Protocol):
    def write(self, data: bytes) -> int: ...


class Stream:
    """Base of the pipeline's readers: read(n), and drain() to read to the end (where the
    verifying ones check their digests)."""

    def read(self, n: int = -1) -> bytes:
        raise NotImplementedError

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


class TeeReader(Stream):
    """Passes reads through and copies every byte into `sink` (a blob being ingested)."""

    def __init__(self, raw: Reader, sink: Sink) -> None:
        self.raw = raw
        self.sink = sink

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.sink.write(data)
        return data

    def close(self) -> None:
        """The stream it reads belongs to the caller."""


class ReadAhead(Stream):
    """Reads `raw` on a thread, a few chunks ahead of the consumer.

    Pulling a layer is network + blob hash + tee write on one side and decompression + tar +
    file writes + diff-id hash on the other; all of these release the GIL, so two threads keep
    both cores busy. (gzip gets the same from isal's igzip_threaded, which reads on its own
    thread.) Errors raised by `raw` (a digest mismatch at EOF) reach the consumer's read().
    """

    def __init__(self, raw: Reader, chunk: int = 1 << 20, depth: int = 4) -> None:
        import queue
        import threading

        self.raw = raw
        self.chunk = chunk
        self.queue: queue.Queue[bytes | BaseException] = queue.Queue(depth)
        self.buf = b""
        self.pos = 0
        self.eof = False
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="read-ahead", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stopping:
                data = self.raw.read(self.chunk)
                self.queue.put(data)
                if not data:
                    return
        except BaseException as e:  # handed to the consumer
            self.queue.put(e)

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        if self.pos >= len(self.buf):
            if self.eof:
                return b""
            item = self.queue.get()
            if isinstance(item, BaseException):
                self.eof = True
                raise item
            if not item:
                self.eof = True
                return b""
            self.buf, self.pos = item, 0
        if self.pos == 0 and n >= len(self.buf):
            self.pos = len(self.buf)
            return self.buf
        data = self.buf[self.pos:self.pos + n]
        self.pos += len(data)
        return data

    def close(self) -> None:
        """Stop the thread (it may be blocked on a full queue: empty it)."""
        import queue

        self.stopping = True
        for _ in range(100):  # a thread stuck in a read of a dead peer is a daemon: let it be
            if not self.thread.is_alive():
                return
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.05)


class PeekReader(Stream):
    """Lets `detect_compression` look at the first bytes of a stream without losing them."""

    def __init__(self, raw: Reader) -> None:
        self.raw = raw
        self.head = b""

    def peek(self, n: int) -> bytes:
        while len(self.head) < n:
            more = self.raw.read(n - len(self.head))
            if not more:
                break
            self.head += more
        return self.head[:n]

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0:
                data, self.head = self.head + self.raw.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            return data
        return self.raw.read(n)


class _RawAdapter(io.RawIOBase):
    """A `Reader` as the file object decompressors expect (readinto, readable)."""

    def __init__(self, raw: Reader) -> None:
        self.raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self.raw.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def read(self, n: int = -1) -> bytes:
        return self.raw.read(n)


def detect_compression(head: bytes) -> str:
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    if head.startswith(_BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(_XZ_MAGIC):
        return "xz"
    return ""


class _Guarded:
    """Turns a decompressor's own exceptions into one clear error naming the compression."""

    def __init__(self, reader: Reader, compression: str) -> None:
        self.reader = reader
        self.compression = compression

    def read(self, n: int = -1) -> bytes:
        try:
            return self.reader.read(n)
        except CorralError:
            raise  # e.g. a digest mismatch raised underneath
        except Exception as e:  # zlib/isal/zstd/lzma errors, EOFError on truncation
            raise InvalidArgument(f"corrupt {self.compression} data: {e or type(e).__name__}") from None

    def close(self) -> None:
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()


def decompress(raw: Reader, compression: str) -> Reader:
    """A reader of the decompressed bytes of `raw` ('' passes it through)."""
    if compression == "":
        return raw
    return _Guarded(_decompressor(raw, compression), compression)


def _decompressor(raw: Reader, compression: str) -> Reader:
    if compression == "gzip":
        try:
            from isal import igzip_threaded
        except ImportError:  # pragma: no cover - isal is a dependency; stdlib as a fallback
            import gzip

            return gzip.GzipFile(fileobj=_RawAdapter(raw), mode="rb")
        return cast(Reader, igzip_threaded.open(_RawAdapter(raw), "rb", threads=1))  # type: ignore[no-untyped-call]
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], _RawAdapter(raw)), read_across_frames=True, closefd=False)
    if compression == "bzip2":
        import bz2

        return bz2.BZ2File(_RawAdapter(raw))
    if compression == "xz":
        import lzma

        return lzma.LZMAFile(cast(IO[bytes], _RawAdapter(raw)))
    raise InvalidArgument(f"unsupported compression {compression!r}")
