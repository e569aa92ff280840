"""The container's root: its propagation, the switch into it (pivot_root, or chroot with
--no-pivot), then masked and read-only paths and the read-only root."""

from __future__ import annotations

import errno
import os
import stat

from corral.runtime.errors import suppress
from corral.runtime.linux import inroot
from corral.runtime.linux import syscalls as sc
from corral.runtime.linux.mounts import PROPAGATION, remount_bind

TYPE_CHECKING = False  # typing costs milliseconds on every create
if TYPE_CHECKING:
    from collections.abc import Callable


def prepare(rootfs: str, propagation: str | None) -> int:
    """Make the host's mounts invisible-in-return and the rootfs a mount point; returns an
    O_PATH fd of the rootfs mount for in-root resolution."""
    # rslave by default (runc): host mounts still propagate in, nothing propagates out.
    sc.mount(None, "/", None, PROPAGATION.get(propagation or "rslave", sc.MS_SLAVE | sc.MS_REC))
    # before the bind, like runc: the bind then is not shared either, whatever the propagation
    # asked for above, and pivot_root accepts it
    _make_parent_private(rootfs)
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    return os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _make_parent_private(rootfs: str) -> None:
    """pivot_root refuses a new root on, or under, a shared mount: make the mount that holds
    the rootfs private (runc's rootfsParentMountPrivate)."""
    with suppress(OSError):
        sc.mount(None, _mount_point_of(os.path.realpath(rootfs)), None, sc.MS_PRIVATE)


def _mount_point_of(path: str) -> str:
    """The mount point `path` lies on: the longest mountinfo mount point at or above it."""
    best = "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if "\\" in point:  # mountinfo escapes space, tab, newline, backslash as octal
                point = point.encode().decode("unicode_escape")
            if len(point) > len(best) and (path == point or path.startswith(point + "/")):
                best = point
    return best


def pivot(rootfs: str) -> None:
    """pivot_root(".", ".") then detach the old root stacked on top (runc's trick: no temp dir)."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new_root)
        try:
            sc.pivot_root(".", ".")
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            _make_parent_private(rootfs)
            sc.pivot_root(".", ".")
        os.fchdir(old_root)
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old_root)
        os.close(new_root)


def chroot(rootfs: str) -> None:
    """--no-pivot: move the rootfs mount over / and chroot into it."""
    os.chdir(rootfs)
    sc.mount(rootfs, "/", None, sc.MS_MOVE)
    os.chroot(".")
    os.chdir("/")


def _for_each_present(paths: tuple[str, ...], act: Callable[[str], None]) -> None:
    """Call `act` with the /proc/self/fd path of each of `paths` that exists, each resolved
    inside the new root (so an image's symlink cannot point the mount at the host)."""
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for path in paths:
            try:
                fd = inroot.open_path(rootfd, path)
            except FileNotFoundError:
                continue
            try:
                act(inroot.proc_path(fd))
            finally:
                os.close(fd)
    finally:
        os.close(rootfd)


def mask(paths: tuple[str, ...]) -> None:
    """Hide each path: /dev/null over a file, an empty read-only tmpfs over a directory."""
    def hide(target: str) -> None:
        if stat.S_ISDIR(os.stat(target).st_mode):
            sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY, None)
        else:
            sc.mount("/dev/null", target, None, sc.MS_BIND)

    _for_each_present(paths, hide)


def make_readonly(paths: tuple[str, ...], *, in_userns: bool) -> None:
    """Bind each path over itself, then remount the bind read-only (/proc/sys and friends).
    Two passes: the remount must go through a fresh fd that resolves to the new bind mount."""
    _for_each_present(paths, lambda target: sc.mount(target, target, None, sc.MS_BIND | sc.MS_REC))
    _for_each_present(
        paths, lambda target: remount_bind(target, sc.MS_RDONLY | sc.MS_REC, in_userns=in_userns)
    )


def readonly_root(*, in_userns: bool) -> None:
    remount_bind("/", sc.MS_RDONLY, in_userns=in_userns)
