"""/dev inside the container: the default devices, config.json's devices, /dev/ptmx and the
/dev/fd-style symlinks. Every entry is made through a directory fd resolved inside the root.

In a user namespace mknod is not allowed: the host's node is bind-mounted instead (runc does the
same).
"""

from __future__ import annotations

import os
import stat

from corral.runtime.errors import suppress
from corral.runtime.linux import inroot
from corral.runtime.linux import syscalls as sc
from corral.runtime.spec import Device

DEFAULT_DEVICES = (
    Device("c", "/dev/null", 1, 3, 0o666, 0, 0),
    Device("c", "/dev/zero", 1, 5, 0o666, 0, 0),
    Device("c", "/dev/full", 1, 7, 0o666, 0, 0),
    Device("c", "/dev/random", 1, 8, 0o666, 0, 0),
    Device("c", "/dev/urandom", 1, 9, 0o666, 0, 0),
    Device("c", "/dev/tty", 5, 0, 0o666, 0, 0),
)
SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)
_KIND = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _make_node(rootfd: int, dev: Device, *, bind: bool) -> None:
    dirfd, name = inroot.parent_dir(rootfd, dev.path)
    try:
        with suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dirfd)  # replace whatever the image put there (never followed)
        if bind:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o644, dir_fd=dirfd))
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
            try:
                sc.mount(dev.path, inroot.proc_path(fd), None, sc.MS_BIND)
            finally:
                os.close(fd)
            return
        os.mknod(name, _KIND[dev.type] | (dev.file_mode & 0o7777),
                 os.makedev(dev.major, dev.minor), dir_fd=dirfd)
        os.chown(name, dev.uid, dev.gid, dir_fd=dirfd, follow_symlinks=False)
    finally:
        os.close(dirfd)


def _symlink(rootfd: int, target: str, link: str) -> None:
    dirfd, name = inroot.parent_dir(rootfd, link)
    try:
        with suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dirfd)
        os.symlink(target, name, dir_fd=dirfd)
    finally:
        os.close(dirfd)


def create(rootfd: int, devices: tuple[Device, ...], *, in_userns: bool,
           default_devices: bool) -> None:
    """Make /dev's nodes and links. `default_devices` is false when /dev is the host's bind."""
    old_umask = os.umask(0)
    try:
        configured = {d.path for d in devices}
        defaults = tuple(d for d in DEFAULT_DEVICES if d.path not in configured)
        wanted = (defaults if default_devices else ()) + devices
        for dev in wanted:
            _make_node(rootfd, dev, bind=in_userns)
        if default_devices:
            _symlink(rootfd, "pts/ptmx", "/dev/ptmx")
            for target, link in SYMLINKS:
                _symlink(rootfd, target, link)
            if os.path.exists("/proc/kcore"):
                _symlink(rootfd, "/proc/kcore", "/dev/core")
    finally:
        os.umask(old_umask)
