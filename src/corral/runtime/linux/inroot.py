"""Paths the image controls, resolved inside the root with openat2(RESOLVE_IN_ROOT).

A symlink in the rootfs (`/dev -> /etc`, `mnt -> ../../..`) resolves as if the rootfs were `/`,
so nothing an image holds can make the runtime create, change or mount a file on the host. The
fds returned are O_PATH; act on them through `proc_path(fd)` ("/proc/self/fd/N").
"""

from __future__ import annotations

import errno
import os

from corral.runtime.linux import syscalls as sc

TYPE_CHECKING = False  # typing costs milliseconds (it imports re) on every start
if TYPE_CHECKING:
    from collections.abc import Callable

_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
_PATH = os.O_PATH | os.O_CLOEXEC
_MAX_LINKS = 40


def proc_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _rel(path: str) -> str:
    return os.path.normpath("/" + path).lstrip("/") or "."


def open_path(rootfd: int, path: str, flags: int = _PATH) -> int:
    """Open `path` (absolute or relative, taken inside the root); raises FileNotFoundError."""
    return sc.openat2(rootfd, _rel(path), flags | os.O_CLOEXEC, _RESOLVE)


def _dangling_target(dirfd: int, parent: str, name: str) -> str | None:
    """Where a dangling symlink `name` points, as a path inside the root; None if not a link."""
    try:
        link = os.readlink(name, dir_fd=dirfd)
    except OSError:
        return None
    return link if link.startswith("/") else os.path.join("/", parent, link)


def _create_in_parent(rootfd: int, rel: str, make: Callable[[str, int], None],
                      depth: int) -> str | None:
    """Create the leaf of `rel` with `make(name, dirfd)`; if a dangling symlink is in the way,
    return its target (to be created instead, still inside the root)."""
    parent, name = os.path.split(rel)
    parent_fd = ensure_dir(rootfd, parent, _depth=depth + 1) if parent else os.dup(rootfd)
    try:
        dirfd = os.open(proc_path(parent_fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            make(name, dirfd)
        except FileExistsError:
            return _dangling_target(dirfd, parent, name)
        finally:
            os.close(dirfd)
    finally:
        os.close(parent_fd)
    return None


def ensure_dir(rootfd: int, path: str, mode: int = 0o755, *, _depth: int = 0) -> int:
    """mkdir -p inside the root (following symlinks inside it); returns an O_PATH fd."""
    rel = _rel(path)
    try:
        return open_path(rootfd, rel, _PATH | os.O_DIRECTORY)
    except FileNotFoundError:
        pass
    if _depth > _MAX_LINKS:
        raise OSError(errno.ELOOP, f"cannot create directory /{rel}: too many levels of symlinks")
    target = _create_in_parent(rootfd, rel, lambda name, fd: os.mkdir(name, mode, dir_fd=fd),
                               _depth)
    if target is not None:
        return ensure_dir(rootfd, target, mode, _depth=_depth + 1)
    return open_path(rootfd, rel, _PATH | os.O_DIRECTORY)


def _touch(name: str, dirfd: int, mode: int) -> None:
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    os.close(os.open(name, flags, mode, dir_fd=dirfd))


def ensure_file(rootfd: int, path: str, mode: int = 0o644, *, _depth: int = 0) -> int:
    """Create an empty file (a bind-mount target) inside the root unless something is there."""
    rel = _rel(path)
    try:
        return open_path(rootfd, rel)
    except FileNotFoundError:
        pass
    if _depth > _MAX_LINKS:
        raise OSError(errno.ELOOP, f"cannot create /{rel}: too many levels of symlinks")
    target = _create_in_parent(rootfd, rel, lambda name, fd: _touch(name, fd, mode), _depth)
    if target is not None:
        return ensure_file(rootfd, target, mode, _depth=_depth + 1)
    return open_path(rootfd, rel)


def parent_dir(rootfd: int, path: str) -> tuple[int, str]:
    """A real directory fd (not O_PATH) of `path`'s parent inside the root, and the leaf name,
    for the *at() calls (mknod, symlink, unlink) that act on a name without following it."""
    parent, name = os.path.split(_rel(path))
    pfd = ensure_dir(rootfd, parent) if parent else os.dup(rootfd)
    try:
        return os.open(proc_path(pfd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), name
    finally:
        os.close(pfd)
