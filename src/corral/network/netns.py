"""Persistent network namespaces: a fresh netns bind-mounted on a file, like `ip netns add`.

corral makes each container's netns itself (as podman does) so the network can be plumbed before
the runtime starts the container, which then joins it by path from config.json. The namespace is
made in a short-lived thread: `unshare(CLONE_NEWNET)` moves only the calling thread, so the
caller's own namespace never changes. The directory holding the mounts is made a shared mount on
itself (as /run/netns is) so an unmount here also reaches the copies that mount namespaces
created meanwhile got of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

_CLONE_NEWNET = 0x40000000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_SHARED = 1 << 20
_MNT_DETACH = 2
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, flags: int) -> None:
    _check(_libc.mount(source.encode(), target.encode(), None, flags, None), f"mount {target}")


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    """Serialises making, using and dropping the shared mount on `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _ensure_shared_dir(directory: Path) -> None:
    """Make `directory` a shared mount point of its own, like `ip netns` does (lock held)."""
    marker = directory / ".shared"
    if marker.exists():
        return
    if not os.path.ismount(directory):
        _mount(str(directory), str(directory), _MS_BIND | _MS_REC)
    _check(_libc.mount(b"none", str(directory).encode(), None, _MS_SHARED | _MS_REC, None),
           f"make {directory} shared")
    marker.touch()


def _loopback_up() -> None:
    """Bring `lo` up in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def create(path: Path) -> None:
    """Make a new network namespace (loopback up) pinned at `path`; existing ones are kept."""
    with _dir_lock(path.parent):
        if exists(path):
            return
        _ensure_shared_dir(path.parent)
        path.touch(exist_ok=True)
        failure: list[BaseException] = []

        def in_new_namespace() -> None:
            try:
                _check(_libc.unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
                _loopback_up()
                _mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", str(path),
                       _MS_BIND)
            except BaseException as e:
                failure.append(e)

        worker = threading.Thread(target=in_new_namespace, name="netns")
        worker.start()
        worker.join()
        if failure:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise failure[0]


def exists(path: Path) -> bool:
    """True when `path` pins a network namespace (a bind mount of an nsfs file)."""
    try:
        return os.path.ismount(path)
    except OSError:
        return False


def remove(path: Path) -> None:
    """Unpin and delete the namespace file; the kernel frees the namespace (and its veths).

    The last one out also drops the directory's shared mount, so nothing stays mounted."""
    directory = path.parent
    if not directory.exists():
        return
    with _dir_lock(directory):
        result = _libc.umount2(str(path).encode(), _MNT_DETACH)
        if result != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
            _check(result, f"umount {path}")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if not any(entry.name != ".shared" for entry in os.scandir(directory)):
            _unmount_dir(directory)


def _unmount_dir(directory: Path) -> None:
    result = _libc.umount2(str(directory).encode(), _MNT_DETACH)
    if result != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
        _check(result, f"umount {directory}")
    with contextlib.suppress(FileNotFoundError):
        (directory / ".shared").unlink()


def unmount_dir(directory: Path) -> None:
    """Drop the shared mount on `directory` even if namespaces remain (tests' cleanup)."""
    if directory.exists():
        with _dir_lock(directory):
            _unmount_dir(directory)
