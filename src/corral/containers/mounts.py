"""Mount and unmount a container's root filesystem on the host (the one place corral mounts).

The image service describes the rootfs as mounts (containerd's snapshotter shape: overlay with
the image's snapshots as lowerdirs, or a bind of a copy); this module performs them with mount(2)
and takes them down with a detaching umount at cleanup.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

from corral.runtime.linux import syscalls  # the runtime's seam to mount(2): no ctypes import

TYPE_CHECKING = False  # not typing's: this is on `corral run`'s path
if TYPE_CHECKING:
    from typing import Any


def mount(kind: str, source: str, target: str, options: Sequence[str]) -> None:
    """Mount one description (`overlay` or `bind`) on `target`."""
    flags = 0
    data: list[str] = []
    for opt in options:
        if opt in ("bind", "rbind"):
            flags |= syscalls.MS_BIND | (syscalls.MS_REC if opt == "rbind" else 0)
        elif opt == "ro":
            flags |= syscalls.MS_RDONLY
        elif opt != "rw":
            data.append(opt)
    if kind == "bind":
        flags |= syscalls.MS_BIND
    syscalls.mount(source, target, kind, flags, ",".join(data) if data else None)


def mount_all(mounts: Sequence[Any], target: str) -> None:
    """Mount the image service's descriptions (objects with type/source/options) on `target`."""
    os.makedirs(target, exist_ok=True)
    for m in mounts:
        mount(m.type, m.source, target, tuple(m.options))


def is_mounted(target: str) -> bool:
    """Whether something is mounted exactly at `target` (by /proc/self/mountinfo)."""
    wanted = target.encode()
    with open("/proc/self/mountinfo", "rb") as f:
        return any(line.split(b" ", 5)[4] == wanted for line in f)


def unmount(target: str) -> None:
    """Detach every mount stacked on `target`; nothing mounted is fine."""
    while True:
        try:
            syscalls.umount2(target, syscalls.MNT_DETACH)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):
                return
            raise
