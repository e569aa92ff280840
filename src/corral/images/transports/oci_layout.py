"""The OCI image layout (`oci:DIR[:REF]`), as a directory and, via oci_archive.py, as a tar.

    oci-layout            {"imageLayoutVersion": "1.0.0"}
    index.json            the entry points; `org.opencontainers.image.ref.name` names them
    blobs/sha256/<hex>    content-addressed blobs

Reading takes the entry whose ref name (or `io.containerd.image.name`) is REF, or the only
entry. Writing adds blobs (temp + rename) and replaces the index entry of the same ref name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol

from corral.errors import InvalidArgument, NotFound
from corral.fsutil import atomic_write
from corral.images import manifest as mf
from corral.images import reference
from corral.images.transports.base import ImageDestination, ImageSource
from corral.store.content import check_digest
from corral.store.streams import Reader

LAYOUT_FILE = "oci-layout"
LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'


class Files(Protocol):
    """Where the layout's files are: a directory or an ArchiveReader."""

    def exists(self, name: str) -> bool: ...
    def open(self, name: str) -> IO[bytes]: ...
    def read(self, name: str) -> bytes: ...


class DirFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def exists(self, name: str) -> bool:
        return (self.root / name).exists()

    def open(self, name: str) -> IO[bytes]:
        try:
            return open(self.root / name, "rb")
        except FileNotFoundError:
            raise NotFound(f"{self.root}: {name} is missing") from None

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()


def blob_name(digest: str) -> str:
    return f"blobs/sha256/{check_digest(digest)[7:]}"


def entry_name(desc: mf.Descriptor) -> str:
    """The image name an index entry carries (full reference), or '' if none/just a tag."""
    full = desc.annotations.get(mf.ANNOTATION_IMAGE_NAME, "")
    if full:
        return full
    ref = desc.annotations.get(mf.ANNOTATION_REF_NAME, "")
    if ref and ("/" in ref or ":" in ref):
        with contextlib.suppress(InvalidArgument):
            return str(reference.parse(ref))
    return ""


def read_index(files: Files, where: str) -> mf.Index:
    if not files.exists("index.json"):
        raise InvalidArgument(f"{where}: not an OCI layout (no index.json)")
    raw = files.read("index.json")
    return mf.parse_index(raw, mf.sniff_media_type(raw) if raw else mf.OCI_INDEX)


class OCILayoutSource(ImageSource):
    def __init__(self, path: str | Path, ref: str = "", *, files: Files | None = None,
                 entry: mf.Descriptor | None = None) -> None:
        self.files: Files = files or DirFiles(Path(path))
        self.reference = f"oci:{path}" + (f":{ref}" if ref else "")
        self.entry = entry or self._pick(ref)

    def _pick(self, ref: str) -> mf.Descriptor:
        entries = read_index(self.files, self.reference).manifests
        if ref:
            for e in entries:
                if ref in (e.annotations.get(mf.ANNOTATION_REF_NAME),
                           e.annotations.get(mf.ANNOTATION_IMAGE_NAME)):
                    return e
            raise NotFound(f"{self.reference}: no image named {ref!r} in the layout")
        if len(entries) != 1:
            raise InvalidArgument(f"{self.reference}: {len(entries)} images in the layout, "
                                  "name one (oci:DIR:REF)")
        return entries[0]

    def get_manifest(self, digest: str | None = None) -> tuple[bytes, str]:
        if digest is None:
            return self.files.read(blob_name(self.entry.digest)), self.entry.media_type
        return self.files.read(blob_name(digest)), ""

    def get_blob(self, desc: mf.Descriptor) -> Reader:
        return self.files.open(blob_name(desc.digest))


class OCILayoutDestination(ImageDestination):
    supported_manifest_types = (mf.OCI_MANIFEST,)
    parallel_layers = True

    def __init__(self, path: str | Path, ref: str = "") -> None:
        self.root = Path(path)
        self.ref = ref
        self.reference = f"oci:{path}" + (f":{ref}" if ref else "")
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        if self.root.joinpath("index.json").exists():
            self.index = read_index(DirFiles(self.root), self.reference)
        else:
            self.index = mf.Index(mf.OCI_INDEX, ())
        self.pending: list[mf.Descriptor] = []

    def has_blob(self, desc: mf.Descriptor, *, layer_index: int | None = None) -> bool:
        return (self.root / blob_name(desc.digest)).exists()

    def put_blob(self, desc: mf.Descriptor, stream: Reader, *, layer_index: int | None,
                 reopen: Callable[[], Reader] | None = None) -> None:
        target = self.root / blob_name(desc.digest)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(1 << 20):
                    out.write(chunk)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_manifest(self, raw: bytes, media_type: str, *, names: Sequence[str] = ()) -> None:
        desc = mf.Descriptor(media_type, _digest(raw), len(raw))
        target = self.root / blob_name(desc.digest)
        if not target.exists():
            atomic_write(target, raw)
        refs = [self.ref] if self.ref else list(names)
        if not refs:
            self.pending.append(desc)
        for r in refs:
            self.pending.append(mf.Descriptor(media_type, desc.digest, desc.size,
                                              index_annotations(r)))

    def commit(self) -> None:
        names = {d.annotations.get(mf.ANNOTATION_REF_NAME) for d in self.pending} - {None}
        kept = [d for d in self.index.manifests
                if d.annotations.get(mf.ANNOTATION_REF_NAME) not in names]
        index = mf.Index(mf.OCI_INDEX, (*kept, *self.pending))
        atomic_write(self.root / LAYOUT_FILE, LAYOUT_VERSION)
        atomic_write(self.root / "index.json", index.to_bytes())


def index_annotations(ref: str) -> Mapping[str, str]:
    """ref.name as given (skopeo: a tag or a name); the full name for containerd/podman too."""
    ann = {mf.ANNOTATION_REF_NAME: ref}
    with contextlib.suppress(InvalidArgument):
        if "/" in ref or ":" in ref or "." in ref:
            ann[mf.ANNOTATION_IMAGE_NAME] = str(reference.parse(ref))
    return ann


def _digest(raw: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(raw).hexdigest()
