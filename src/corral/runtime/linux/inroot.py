"""Paths the image controls, resolved inside the root with openat2(RESOLVE_IN_ROOT).

A symlink in the rootfs (`/dev -> /etc`, `mnt -> ../../..`) resolves as if the rootfs were `/`,
so nothing an image holds can make the runtime create, change or mount a file on the host. The
fds returned are O_PATH; act on them through `proc_path(fd)` ("/proc/self/fd/N").
"""

from __future__ import annotations

import errno
import os

from corral.runtime.linux import syscalls as sc

_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
_PATH = os.O_PATH | os.O_CLOEXEC


def proc_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _rel(path: str) -> str:
    return os.path.normpath("/" + path).lstrip("/") or "."


def open_path(rootfd: int, path: str, flags: int = _PATH) -> int:
    """Open `path` (absolute or relative, taken inside the root); raises FileNotFoundError."""
    return sc.openat2(rootfd, _rel(path), flags | os.O_CLOEXEC, _RESOLVE)


def ensure_dir(rootfd: int, path: str, mode: int = 0o755) -> int:
    """mkdir -p inside the root; returns an O_PATH fd of the directory."""
    rel = _rel(path)
    try:
        return open_path(rootfd, rel, _PATH | os.O_DIRECTORY)
    except FileNotFoundError:
        pass
    parent, name = os.path.split(rel)
    parent_fd = ensure_dir(rootfd, parent, mode) if parent else os.dup(rootfd)
    try:
        dirfd = os.open(proc_path(parent_fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.mkdir(name, mode, dir_fd=dirfd)
        except FileExistsError:
            pass  # raced, or a symlink: resolving again below follows it inside the root
        finally:
            os.close(dirfd)
    finally:
        os.close(parent_fd)
    try:
        return open_path(rootfd, rel, _PATH | os.O_DIRECTORY)
    except FileNotFoundError:
        raise OSError(errno.ENOENT, f"cannot create directory /{rel}: dangling symlink") from None


def ensure_file(rootfd: int, path: str, mode: int = 0o644) -> int:
    """Create an empty file (a bind-mount target) inside the root unless something is there."""
    rel = _rel(path)
    try:
        return open_path(rootfd, rel)
    except FileNotFoundError:
        pass
    parent, name = os.path.split(rel)
    parent_fd = ensure_dir(rootfd, parent) if parent else os.dup(rootfd)
    try:
        dirfd = os.open(proc_path(parent_fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         mode, dir_fd=dirfd)
            os.close(fd)
        except FileExistsError:
            pass
        finally:
            os.close(dirfd)
    finally:
        os.close(parent_fd)
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
