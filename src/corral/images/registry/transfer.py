"""Pull and push: copy() between a registry and the local store, plus what docker prints.

The CLI (`corral.cli.registry`) and, later, the API call these; both only format the result.
`docker.io/library/busybox:latest` is special while no registry is reachable: corral makes it
offline (`ImageService.ensure_builtin_busybox`), so the README's first command needs no network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from corral.errors import NotFound
from corral.images import reference
from corral.images.copy import copy
from corral.images.manifest import Platform
from corral.images.registry.client import RegistryError
from corral.images.registry.progress import NullProgress, Progress
from corral.images.transports.registry import (
    DEFAULT_OPTIONS,
    RegistryDestination,
    RegistryOptions,
    RegistrySource,
    connect,
)

if TYPE_CHECKING:
    from corral.images.service import Image, ImageService

BUSYBOX = "docker.io/library/busybox:latest"


@dataclass(frozen=True)
class PullResult:
    ref: reference.Reference
    image: Image
    digest: str  # the manifest digest pulled
    up_to_date: bool  # the name already pointed at this image


@dataclass(frozen=True)
class PushResult:
    ref: reference.Reference
    digest: str
    size: int  # of the manifest, as docker prints it


def pull(service: ImageService, text: str, *, options: RegistryOptions = DEFAULT_OPTIONS,
         platform: Platform | None = None, progress: Progress | None = None) -> PullResult:
    """Fetch `text` (a reference) into the store; the image is listed only once complete."""
    ref = reference.parse(text)
    before = _image_id(service, str(ref))
    try:
        src = RegistrySource(ref, connect(ref, options))
        with src:
            from corral.images.transports.local import LocalDestination

            with LocalDestination(service) as dst:
                result = copy(src, dst, platform=platform, names=[str(ref)] if ref.tag else [],
                              progress=progress or NullProgress(),
                              words=("Downloading", "Pull complete", "Already exists"))
                dst.commit()
    except RegistryError:
        if str(ref) != BUSYBOX:
            raise
        image = service.ensure_builtin_busybox()  # offline: the built-in image
        return PullResult(ref, image, image.digest, before == image.id)
    image = service.get(result.image_id)
    return PullResult(ref, image, src.top_digest or result.manifest_digest, before == image.id)


def push(service: ImageService, source: str, destination: str | None = None, *,
         options: RegistryOptions = DEFAULT_OPTIONS,
         progress: Progress | None = None) -> PushResult:
    """Upload local image `source` to `destination` (default: its own name)."""
    try:
        image = service.get(source)
    except NotFound:
        raise NotFound(f"An image does not exist locally with the tag: {source}") from None
    ref = reference.parse(destination.removeprefix("docker://") if destination else source)
    # Other names of the image in the same registry: blobs there can be mounted, not uploaded.
    siblings = [r.path for r in map(reference.parse, image.names) if r.domain == ref.domain]
    from corral.images.transports.local import LocalSource

    dst = RegistryDestination(ref, connect(ref, options), mount_from=siblings,
                              chunk_size=options.chunk_size)
    with LocalSource(service, image) as src, dst:
        result = copy(src, dst, progress=_MountNotes(progress or NullProgress(), dst),
                      words=("Pushing", "Pushed", "Layer already exists"))
        dst.commit()
    return PushResult(ref, result.manifest_digest, len(result.manifest))


class _MountNotes:
    """Says `Mounted from <repo>` (docker's words) for a layer the registry linked for us."""

    def __init__(self, progress: Progress, dst: RegistryDestination) -> None:
        self.progress = progress
        self.dst = dst

    def start(self, key: str, action: str, total: int | None) -> Callable[[int], None]:
        return self.progress.start(key, action, total)

    def done(self, key: str, text: str) -> None:
        repo = next((r for d, r in self.dst.mounted.items() if d[7:19] == key), None)
        self.progress.done(key, f"Mounted from {repo}" if repo else text)

    def close(self) -> None:
        self.progress.close()


def _image_id(service: ImageService, name: str) -> str | None:
    with contextlib.suppress(NotFound):
        return service.get(name).id
    return None
