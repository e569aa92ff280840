"""The built-in busybox image, made offline from Debian's busybox-static.

How a user gets it: `corral run busybox ...`, `corral pull busybox` (when no registry answers)
and `corral image builtin` all call `ImageService.ensure_builtin_busybox()`, which makes it if
`docker.io/library/busybox:latest` is not in the store. It is reproducible: entries sorted,
every mtime and the config's `created` set to the busybox binary's own mtime (the time Debian
built it), owners 0:0 with no names (whoever builds it, root or not), so the same /bin/busybox
always gives the same image id.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.images import busybox
from corral.images.manifest import host_platform
from corral.store.pack import pack_dir

if TYPE_CHECKING:
    from corral.images.service import Image, ImageService


def make_busybox_image(service: ImageService, name: str) -> Image:
    epoch = int(os.stat(busybox.BUSYBOX_BINARY).st_mtime)
    created = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    service.content.ingest_dir.mkdir(parents=True, exist_ok=True)
    with service.locks.writers(), \
            tempfile.TemporaryDirectory(dir=service.content.ingest_dir, prefix="builtin-") as tmp:
        rootfs = busybox.make_rootfs(Path(tmp) / "rootfs")
        os.chmod(rootfs, 0o755)
        layer = Path(tmp) / "layer.tar"
        with open(layer, "wb") as f:
            pack_dir(rootfs, f, mtime=epoch, root_owned=True)
        with open(layer, "rb") as f:
            digest = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
        config: dict[str, Any] = {
            "architecture": host_platform().architecture,
            "os": "linux",
            "created": created,
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["sh"],
            },
            "history": [
                {"created": created, "created_by": "corral: busybox rootfs from /bin/busybox"},
                {"created": created, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
                 "empty_layer": True},
            ],
        }
        return service.add_layer_image(config, parent=None, layer=(layer, digest), names=[name])
