"""`system check [--repair]` for the image store: find (and remove) what is damaged.

Damage the store's own writes cannot cause (rename-into-place, atomic records) but a disk, a
power cut without fsync, or a hand in the directory can: a blob whose bytes no longer match
its digest, a snapshot without its files, an image whose blob or layer is gone. With `repair`
the damaged blobs and snapshots are deleted, the images that needed them are removed (their
names go with them: pull or load them again), and gc collects the rest, podman's rule.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from corral.errors import CorralError

if TYPE_CHECKING:
    from corral.images.service import Image, ImageService


def check_store(svc: ImageService, *, repair: bool = False) -> list[str]:
    """One line per problem found (and, with `repair`, fixed)."""
    problems: list[str] = []
    bad_blobs: set[str] = set()
    for digest in sorted(svc.content.digests()):
        try:
            with svc.content.open(digest) as reader:
                reader.drain()
        except CorralError as e:
            problems.append(f"blob {digest}: {str(e).removeprefix(f'blob {digest}: ')}")
            bad_blobs.add(digest)
    bad_snapshots: set[str] = set()
    driver = svc.driver
    for chain in sorted(driver.chain_ids()):
        try:
            driver.info(chain)
            ok = os.path.isdir(driver.path(chain))
        except (OSError, ValueError, KeyError):
            ok = False
        if not ok:
            problems.append(f"layer {chain}: its unpacked files are missing or unreadable")
            bad_snapshots.add(chain)
    damaged: list[str] = []
    for image in svc.list():
        what = _image_damage(svc, image, bad_blobs, bad_snapshots)
        if what:
            names = ", ".join(image.names) or "untagged"
            problems.append(f"image {image.id} ({names}): {what}")
            damaged.append(image.id)
    if repair and problems:
        for digest in bad_blobs:
            svc.content.delete(digest)
        for chain in bad_snapshots:
            driver.remove(chain)
        svc.forget_images(damaged)
        svc.gc()
    return problems


def _image_damage(svc: ImageService, image: Image, bad_blobs: set[str],
                  bad_snapshots: set[str]) -> str:
    needed = [("config", image.id), ("manifest", image.digest)]
    needed += [("layer blob", r["blob_digest"]) for r in svc.layer_records(image)]
    for what, digest in needed:
        if digest in bad_blobs:
            return f"{what} {digest} is corrupt"
        if not svc.content.has(digest):
            return f"{what} {digest} is missing"
    for chain in image.chain_ids:
        if chain in bad_snapshots or not svc.driver.exists(chain):
            return f"layer {chain} is not unpacked"
    return ""
