"""The local store as a transport: the destination of pull/load/import, the source of push/save.

The destination unpacks each layer while it is received (one pass: tee into the blob's ingest
file, decompress, hash the diff id, extract), verifies everything, then moves blob and snapshot
into place; the image record (and its names) is written last, in one transaction. A command
killed at any point leaves only unreferenced temp files, removed by the next gc.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from corral.errors import InvalidArgument
from corral.images import manifest as mf
from corral.images.transports.base import ImageDestination, ImageSource
from corral.store import snapshots
from corral.store.content import DigestMismatch, VerifyingReader
from corral.store.streams import ReadAhead, Reader, TeeReader, decompress

if TYPE_CHECKING:
    from corral.images.service import Image, ImageService


class LocalSource(ImageSource):
    # content.open() checks size and digest at EOF: copy() need not hash each layer again.
    verifies_blobs = True

    def __init__(self, service: ImageService, image: Image) -> None:
        self.service = service
        self.image = image
        self.reference = image.names[0] if image.names else image.id

    def get_manifest(self, digest: str | None = None) -> tuple[bytes, str]:
        return self.service.content.read(self.image.digest), self.image.manifest_media_type

    def get_blob(self, desc: mf.Descriptor) -> Reader:
        return self.service.content.open(desc.digest)


class LocalDestination(ImageDestination):
    reference = "local store"

    def __init__(self, service: ImageService) -> None:
        self.service = service
        self.parallel_layers = service.driver.independent_layers
        self._writers = contextlib.ExitStack()
        self._writers.enter_context(service.locks.writers())
        self.manifest: mf.Manifest | None = None
        self.config: Mapping[str, Any] = {}
        self.diff_ids: tuple[str, ...] = ()
        self.chain_ids: tuple[str, ...] = ()

    def prepare(self, manifest: mf.Manifest, config: Mapping[str, Any]) -> None:
        self.manifest = manifest
        self.config = config
        self.diff_ids = mf.diff_ids(config)
        self.chain_ids = snapshots.chain_ids(self.diff_ids)

    def has_blob(self, desc: mf.Descriptor, *, layer_index: int | None = None) -> bool:
        if not self.service.content.has(desc.digest):
            return False
        return layer_index is None or self.service.driver.exists(self.chain_ids[layer_index])

    def put_blob(self, desc: mf.Descriptor, stream: Reader, *, layer_index: int | None,
                 reopen: Callable[[], Reader] | None = None) -> None:
        content = self.service.content
        if layer_index is None:
            with content.ingest(desc.digest, desc.size) as ingest:
                ingest.copy_from(stream)
                ingest.commit()
            return
        chain = self.chain_ids[layer_index]
        parent = self.chain_ids[layer_index - 1] if layer_index else None
        diff = self.diff_ids[layer_index]
        compression = mf.compression_of(desc.media_type)
        with content.ingest(desc.digest, desc.size) as ingest:
            tee = TeeReader(stream, ingest)
            # gzip: isal's igzip_threaded already reads on a thread of its own
            ahead = ReadAhead(tee) if compression != "gzip" else None
            plain = decompress(ahead or tee, compression)
            hashed = VerifyingReader(plain, diff, None, f"layer {desc.digest}: uncompressed content")

            def finish() -> None:
                hashed.drain()  # the rest of the tar (padding) and the diff id check
                if ahead is not None:
                    ahead.drain()  # to EOF: its thread is done with `tee` after this
                tee.drain()  # the rest of the blob; the outer VerifyingReader checks its digest
                ingest.commit()

            try:
                self.service.driver.unpack(chain, parent, diff, hashed, finish)
            except DigestMismatch:
                raise  # names the blob already
            except InvalidArgument as e:  # a malformed or unsafe tar: say which layer
                raise type(e)(f"layer {desc.digest}: {e}") from None
            finally:
                hashed.close()
                if ahead is not None:
                    ahead.close()

    def put_manifest(self, raw: bytes, media_type: str, *, names: Sequence[str] = ()) -> None:
        if self.manifest is None:
            raise InvalidArgument("put_manifest before prepare")
        image_id = self.manifest.config.digest
        existing = self.service.by_id(image_id)
        # an image already here keeps the manifest it came with; this one only adds names
        digest = existing.digest if existing else self.service.content.write(raw)
        self.service.record_image(image_id, digest, media_type, self.config, self.manifest,
                                  self.chain_ids, names)

    def close(self) -> None:
        self._writers.close()
