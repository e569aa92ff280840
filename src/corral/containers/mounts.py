"""Mount and unmount a container's root filesystem on the host (the one place corral mounts).

The image service describes the rootfs as mounts (containerd's snapshotter shape: overlay with
the image's snapshots as lowerdirs, or a bind of a copy); this module performs them with mount(2)
and takes them down with a detaching umount at cleanup.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_MS_RDONLY = 1
_MS_BIND = 4096
_MS_REC = 16384
_MNT_DETACH = 2
_EINVAL = 22
_ENOENT = 2

# glibc's soname directly: ctypes.util.find_library runs `ldconfig -p`, a process per command.
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(kind: str, source: str, target: Path, options: Sequence[str]) -> None:
    """Mount one description (`overlay` or `bind`) on `target`."""
    flags = 0
    data: list[str] = []
    for opt in options:
        if opt in ("bind", "rbind"):
            flags |= _MS_BIND | (_MS_REC if opt == "rbind" else 0)
        elif opt == "ro":
            flags |= _MS_RDONLY
        elif opt != "rw":
            data.append(opt)
    if kind == "bind":
        flags |= _MS_BIND
    _check(
        _libc.mount(source.encode(), str(target).encode(), kind.encode(), flags,
                    ",".join(data).encode() if data else None),
        f"mount {kind} on {target}",
    )


def mount_all(mounts: Sequence[Any], target: Path) -> None:
    """Mount the image service's descriptions (objects with type/source/options) on `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for m in mounts:
        mount(m.type, m.source, target, tuple(m.options))


def is_mounted(target: Path) -> bool:
    """Whether something is mounted exactly at `target` (by /proc/self/mountinfo)."""
    wanted = str(target).encode()
    with open("/proc/self/mountinfo", "rb") as f:
        return any(line.split(b" ", 5)[4] == wanted for line in f)


def unmount(target: Path) -> None:
    """Detach every mount stacked on `target`; nothing mounted is fine."""
    while True:
        if _libc.umount2(str(target).encode(), _MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err in (_EINVAL, _ENOENT):
                return
            raise OSError(err, f"umount {target}: {os.strerror(err)}")
