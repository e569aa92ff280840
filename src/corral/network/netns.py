"""Persistent network namespaces: a fresh netns bind-mounted on a file, like `ip netns add`.

corral makes each container's netns itself (as podman does) so the network can be plumbed before
the runtime starts the container, which then joins it by path from config.json. The namespace is
made in a short-lived thread: `unshare(CLONE_NEWNET)` moves only the calling thread, so the
caller's own namespace never changes. This is on `corral run`'s path, so it uses the runtime's
syscall seam and the interpreter's own `_thread`/`_socket` (no ctypes, threading or socket
package imports). The directory holding the mounts is made a shared mount on
itself (as /run/netns is) so an unmount here also reaches the copies that mount namespaces
created meanwhile got of it.
"""

from __future__ import annotations

import _socket
import _thread
import contextlib
import errno
import fcntl
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from corral.runtime.linux import syscalls

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def _bind(source: str, target: str, flags: int = 0) -> None:
    syscalls.mount(source, target, None, syscalls.MS_BIND | flags, None)


def _unmount(target: Path) -> None:
    """Detach `target`; one that is not (or no longer) mounted is fine."""
    try:
        syscalls.umount2(str(target), syscalls.MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise


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
        _bind(str(directory), str(directory), syscalls.MS_REC)
    syscalls.mount("none", str(directory), None, syscalls.MS_SHARED | syscalls.MS_REC, None)
    marker.touch()


def _loopback_up() -> None:
    """Bring `lo` up in the calling thread's network namespace."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
    finally:
        s.close()


def create(path: Path) -> None:
    """Make a new network namespace (loopback up) pinned at `path`; existing ones are kept."""
    with _dir_lock(path.parent):
        if exists(path):
            return
        _ensure_shared_dir(path.parent)
        path.touch(exist_ok=True)
        failure: list[BaseException] = []
        done = _thread.allocate_lock()
        done.acquire()

        def in_new_namespace() -> None:
            try:
                syscalls.unshare(syscalls.CLONE_NEWNET)
                _loopback_up()
                _bind(f"/proc/self/task/{_thread.get_native_id()}/ns/net", str(path))
            except BaseException as e:
                failure.append(e)
            finally:
                done.release()

        _thread.start_new_thread(in_new_namespace, ())
        done.acquire()  # the thread's last act; it ends right after, in its own namespace
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
        _unmount(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if not any(entry.name != ".shared" for entry in os.scandir(directory)):
            _unmount_dir(directory)


def _unmount_dir(directory: Path) -> None:
    _unmount(directory)
    with contextlib.suppress(FileNotFoundError):
        (directory / ".shared").unlink()


def unmount_dir(directory: Path) -> None:
    """Drop the shared mount on `directory` even if namespaces remain (tests' cleanup)."""
    if directory.exists():
        with _dir_lock(directory):
            _unmount_dir(directory)
