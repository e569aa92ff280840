"""`oci-archive:PATH[:REF]`: an OCI layout inside a tar (podman save --format oci-archive).

Reading indexes the tar in place (transports/archive.py). Writing streams blobs straight into
the tar as they arrive (their sizes are in the descriptors) and adds index.json last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from corral.images import manifest as mf
from corral.images.transports.archive import ArchiveReader, ArchiveWriter
from corral.images.transports.base import ImageDestination
from corral.images.transports.oci_layout import (
    LAYOUT_FILE,
    LAYOUT_VERSION,
    OCILayoutSource,
    blob_name,
    entry_name,
    index_annotations,
    read_index,
)
from corral.store.streams import Reader


class OCIArchive:
    """An opened oci-archive: its images (index entries) and a source for each."""

    def __init__(self, reader: ArchiveReader) -> None:
        self.reader = reader
        self.index = read_index(reader, reader.name)

    def entries(self) -> list[tuple[mf.Descriptor, str]]:
        """(index entry, the full name it carries or '')."""
        return [(d, entry_name(d)) for d in self.index.manifests]

    def source(self, entry: mf.Descriptor) -> OCILayoutSource:
        return OCILayoutSource(f"oci-archive:{self.reader.name}", files=self.reader, entry=entry)

    def close(self) -> None:
        self.reader.close()


class OCIArchiveDestination(ImageDestination):
    supported_manifest_types = (mf.OCI_MANIFEST,)

    def __init__(self, target: str | Path | IO[bytes], ref: str = "") -> None:
        self.reference = f"oci-archive:{target}"
        self.ref = ref
        self.writer = ArchiveWriter(target)
        self.writer.add_bytes(LAYOUT_FILE, LAYOUT_VERSION)
        self.writer.add_dir("blobs")
        self.writer.add_dir("blobs/sha256")
        self.entries: list[mf.Descriptor] = []

    def has_blob(self, desc: mf.Descriptor, *, layer_index: int | None = None) -> bool:
        return blob_name(desc.digest) in self.writer.names

    def put_blob(self, desc: mf.Descriptor, stream: Reader, *, layer_index: int | None,
                 reopen: Callable[[], Reader] | None = None) -> None:
        self.writer.add_stream(blob_name(desc.digest), stream, desc.size)

    def put_manifest(self, raw: bytes, media_type: str, *, names: Sequence[str] = ()) -> None:
        import hashlib

        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if blob_name(digest) not in self.writer.names:
            self.writer.add_bytes(blob_name(digest), raw)
        refs = [self.ref] if self.ref else list(names)
        for r in refs or [""]:
            self.entries.append(mf.Descriptor(media_type, digest, len(raw),
                                              index_annotations(r) if r else {}))

    def commit(self) -> None:
        self.writer.add_bytes("index.json", mf.Index(mf.OCI_INDEX, tuple(self.entries)).to_bytes())
        self.writer.commit()

    def close(self) -> None:
        self.writer.close()
