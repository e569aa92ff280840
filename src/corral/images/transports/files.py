"""A source for an image made on this machine (import, commit, the built-in image).

The image's blobs are files (or bytes) that the caller has just written; copy() verifies them
like any other source's.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping

from corral.errors import NotFound
from corral.images.manifest import Descriptor
from corral.images.transports.base import ImageSource
from corral.store.streams import Reader


class FilesSource(ImageSource):
    def __init__(self, manifest: bytes, media_type: str, blobs: Mapping[str, str | os.PathLike[str] | bytes],
                 reference: str = "local build") -> None:
        self.manifest = manifest
        self.media_type = media_type
        self.blobs = blobs
        self.reference = reference

    def get_manifest(self, digest: str | None = None) -> tuple[bytes, str]:
        return self.manifest, self.media_type

    def get_blob(self, desc: Descriptor) -> Reader:
        blob = self.blobs.get(desc.digest)
        if blob is None:
            raise NotFound(f"blob {desc.digest} is not part of {self.reference}")
        if isinstance(blob, bytes):
            return io.BytesIO(blob)
        return open(blob, "rb")
