"""Persistent network namespaces: a fresh netns bind-mounted on a file, like `ip netns add`.

corral makes each container's netns itself (as podman does) so the network can be plumbed before
the runtime starts the container, which then joins it by path from config.json. The namespace is
made in a short-lived thread: `unshare(CLONE_NEWNET)` moves only the calling thread, so the
caller's own namespace never changes. This is on `corral run`'s path, so it uses the runtime's
syscall seam and the interpreter's own `_thread`/`_socket` (no ctypes, threading or socket
package imports), and str paths through os.path (no pathlib). The directory holding the
mounts is made a shared mount on itself (as /run/netns is) so an unmount here also reaches the
copies that mount namespaces created meanwhile got of it. That mount stays when the last
namespace goes, as `ip netns` and podman leave /run/netns: dropping and making it again would
cost each `run --rm` a bind, a propagation change and an unmount (~3 ms); `unmount_dir` drops
it for whoever removes the whole runroot.
"""

from __future__ import annotations

import _socket
import _thread
import contextlib
import errno
import fcntl
import os
import struct

from corral.fsutil import locked
from corral.runtime.linux import syscalls

TYPE_CHECKING = False  # not typing's: `corral run` does not import typing
if TYPE_CHECKING:
    from corral.fsutil import StrPath

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def _bind(source: str, target: str, flags: int = 0) -> None:
    syscalls.mount(source, target, None, syscalls.MS_BIND | flags, None)


def _unmount(target: str) -> None:
    """Detach `target`; one that is not (or no longer) mounted is fine."""
    try:
        syscalls.umount2(target, syscalls.MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise


def _dir_lock(directory: str) -> contextlib.AbstractContextManager[None]:
    """Serialises making, using and dropping the shared mount on `directory`."""
    os.makedirs(directory, exist_ok=True)
    parent, name = os.path.split(directory)
    return locked(os.path.join(parent, f".{name}.lock"))


def _touch(path: str) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def _ensure_shared_dir(directory: str) -> None:
    """Make `directory` a shared mount point of its own, like `ip netns` does (lock held)."""
    marker = os.path.join(directory, ".shared")
    if os.path.exists(marker):
        return
    if not os.path.ismount(directory):
        _bind(directory, directory, syscalls.MS_REC)
    syscalls.mount("none", directory, None, syscalls.MS_SHARED | syscalls.MS_REC, None)
    _touch(marker)


def _loopback_up() -> None:
    """Bring `lo` up in the calling thread's network namespace."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
    finally:
        s.close()


def create(path: StrPath) -> None:
    """Make a new network namespace (loopback up) pinned at `path`; existing ones are kept."""
    target = os.path.normpath(path)
    directory = os.path.dirname(target)
    with _dir_lock(directory):
        if exists(target):
            return
        _ensure_shared_dir(directory)
        _touch(target)
        failure: list[BaseException] = []
        done = _thread.allocate_lock()
        done.acquire()

        def in_new_namespace() -> None:
            try:
                syscalls.unshare(syscalls.CLONE_NEWNET)
                _loopback_up()
                _bind(f"/proc/self/task/{_thread.get_native_id()}/ns/net", target)
            except BaseException as e:
                failure.append(e)
            finally:
                done.release()

        _thread.start_new_thread(in_new_namespace, ())
        done.acquire()  # the thread's last act; it ends right after, in its own namespace
        if failure:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
            raise failure[0]


def exists(path: StrPath) -> bool:
    """True when `path` pins a network namespace (a bind mount of an nsfs file)."""
    try:
        return os.path.ismount(path)
    except OSError:
        return False


def remove(path: StrPath) -> None:
    """Unpin and delete the namespace file; the kernel frees the namespace (and its veths).
    The directory's shared mount stays (see the module docstring)."""
    path = os.path.normpath(path)
    directory = os.path.dirname(path)
    if not os.path.exists(directory):
        return
    with _dir_lock(directory):
        _unmount(path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def unmount_dir(directory: StrPath) -> None:
    """Drop the shared mount on `directory` even if namespaces remain (before the runroot
    itself is removed: the tests' cleanup)."""
    directory = os.path.normpath(directory)
    if os.path.exists(directory):
        with _dir_lock(directory):
            _unmount(directory)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, ".shared"))
