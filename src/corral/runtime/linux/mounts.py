"""config.json mounts, made inside the container's rootfs before pivot_root.

Each destination is resolved inside the root (linux/inroot.py) and the mount goes through
/proc/self/fd/N, so a symlinked destination cannot reach the host. Options become mount(2) flags,
propagation changes (applied after the mount) and the filesystem's data string, as runc does.
"""

from __future__ import annotations

import os
import stat

from corral.runtime.linux import inroot
from corral.runtime.linux import syscalls as sc
from corral.runtime.record import record
from corral.runtime.spec import Mount

TYPE_CHECKING = False  # typing costs milliseconds (it imports re) on every start
if TYPE_CHECKING:
    from collections.abc import Callable

# option -> (clear?, flag)
FLAGS: dict[str, tuple[bool, int]] = {
    "ro": (False, sc.MS_RDONLY), "rw": (True, sc.MS_RDONLY),
    "nosuid": (False, sc.MS_NOSUID), "suid": (True, sc.MS_NOSUID),
    "nodev": (False, sc.MS_NODEV), "dev": (True, sc.MS_NODEV),
    "noexec": (False, sc.MS_NOEXEC), "exec": (True, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS), "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC), "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK), "nomand": (True, sc.MS_MANDLOCK),
    "noatime": (False, sc.MS_NOATIME), "atime": (True, sc.MS_NOATIME),
    "nodiratime": (False, sc.MS_NODIRATIME), "diratime": (True, sc.MS_NODIRATIME),
    "relatime": (False, sc.MS_RELATIME), "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME), "nostrictatime": (True, sc.MS_STRICTATIME),
    "bind": (False, sc.MS_BIND), "rbind": (False, sc.MS_BIND | sc.MS_REC),
    "silent": (False, sc.MS_SILENT), "loud": (True, sc.MS_SILENT),
    "lazytime": (False, sc.MS_LAZYTIME), "nolazytime": (True, sc.MS_LAZYTIME),
    "iversion": (False, sc.MS_I_VERSION), "noiversion": (True, sc.MS_I_VERSION),
    "nosymfollow": (False, sc.MS_NOSYMFOLLOW), "symfollow": (True, sc.MS_NOSYMFOLLOW),
}
# Recursive attributes (runtime-spec "rro", "rnosuid", ...: runc's set) -> (set, clear) for
# mount_setattr(AT_RECURSIVE): they reach the mounts below a bind too, where "ro" does not.
_ATIME = sc.MOUNT_ATTR__ATIME
RECURSIVE: dict[str, tuple[int, int]] = {
    "rro": (sc.MOUNT_ATTR_RDONLY, 0), "rrw": (0, sc.MOUNT_ATTR_RDONLY),
    "rnosuid": (sc.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, sc.MOUNT_ATTR_NOSUID),
    "rnodev": (sc.MOUNT_ATTR_NODEV, 0), "rdev": (0, sc.MOUNT_ATTR_NODEV),
    "rnoexec": (sc.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, sc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (sc.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, sc.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (sc.MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, sc.MOUNT_ATTR_NOSYMFOLLOW),
    "rrelatime": (sc.MOUNT_ATTR_RELATIME, _ATIME), "ratime": (sc.MOUNT_ATTR_RELATIME, _ATIME),
    "rnostrictatime": (sc.MOUNT_ATTR_RELATIME, _ATIME),
    "rnoatime": (sc.MOUNT_ATTR_NOATIME, _ATIME),
    "rstrictatime": (sc.MOUNT_ATTR_STRICTATIME, _ATIME),
    "rnorelatime": (sc.MOUNT_ATTR_STRICTATIME, _ATIME),
}
PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# Options of other runtimes that have no mount(2) meaning here; never passed as data.
_IGNORED = {"defaults", "tmpcopyup", "notmpcopyup", "z", "Z", "U", "copy-symlink", "private-sym"}
# Flags the kernel locks on a mount made in a less privileged user namespace (statvfs bits ==
# MS_* bits for these): a remount must keep them or it fails with EPERM.
_LOCKABLE = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NOATIME | sc.MS_NODIRATIME


@record(frozen=True)
class Options:
    flags: int
    propagation: tuple[int, ...]
    data: str
    recursive: tuple[int, int] = (0, 0)  # mount_setattr (set, clear); (0, 0): none asked


def parse_options(options: tuple[str, ...]) -> Options:
    flags = 0
    propagation = []
    data = []
    attr_set = attr_clr = 0
    for opt in options:
        if opt in FLAGS:
            clear, bit = FLAGS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in RECURSIVE:  # a later option overrides an earlier one ("rro", "rrw")
            bits, cleared = RECURSIVE[opt]
            attr_set = (attr_set & ~cleared) | bits
            attr_clr = attr_clr | cleared if cleared == _ATIME else (attr_clr & ~bits) | cleared
        elif opt not in _IGNORED:
            data.append(opt)
    return Options(flags, tuple(propagation), ",".join(data), (attr_set, attr_clr))


def apply_recursive(fd: int, opts: Options) -> None:
    """The r* options, on the mount `fd` names and every mount below it."""
    if opts.recursive != (0, 0):
        sc.mount_setattr_recursive(fd, *opts.recursive)


def is_bind(m: Mount) -> bool:
    return m.type == "bind" or "bind" in m.options or "rbind" in m.options


def remount_bind(target: str, flags: int, *, in_userns: bool) -> None:
    """Apply ro/nosuid/... to a bind mount (they are ignored on the first bind)."""
    if in_userns:
        flags |= os.statvfs(target).f_flag & _LOCKABLE
    sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | (flags & ~sc.MS_REC & ~sc.MS_BIND))


def apply_propagation(target: str, propagation: tuple[int, ...]) -> None:
    for p in propagation:
        sc.mount(None, target, None, p)


def bind(source: str, rootfd: int, destination: str, opts: Options, *, in_userns: bool) -> None:
    """Bind `source` (a host path) at `destination` inside the root, then apply the flags."""
    is_dir = stat.S_ISDIR(os.stat(source).st_mode)
    fd = (inroot.ensure_dir if is_dir else inroot.ensure_file)(rootfd, destination)
    try:
        sc.mount(source, inroot.proc_path(fd), None, sc.MS_BIND | (opts.flags & sc.MS_REC))
    finally:
        os.close(fd)
    # Reopen: the old fd still names the directory under the new mount.
    fd = inroot.open_path(rootfd, destination)
    try:
        target = inroot.proc_path(fd)
        if opts.flags & ~(sc.MS_BIND | sc.MS_REC):
            remount_bind(target, opts.flags, in_userns=in_userns)
        apply_recursive(fd, opts)
        apply_propagation(target, opts.propagation)
    finally:
        os.close(fd)


def _filesystem(m: Mount, opts: Options, rootfd: int) -> None:
    fd = inroot.ensure_dir(rootfd, m.destination)
    try:
        source = m.source or m.type
        sc.mount(source, inroot.proc_path(fd), m.type, opts.flags, opts.data or None)
    finally:
        os.close(fd)
    if opts.propagation or opts.recursive != (0, 0):
        fd = inroot.open_path(rootfd, m.destination)
        try:
            apply_recursive(fd, opts)
            apply_propagation(inroot.proc_path(fd), opts.propagation)
        finally:
            os.close(fd)


def mount_all(mounts: tuple[Mount, ...], rootfd: int, *, in_userns: bool,
              cgroup_mount: Callable[[Mount, Options, int], None]) -> None:
    """Make every config mount; `cgroup_mount` handles `type: cgroup` (it needs the cgroup
    layout)."""
    for m in mounts:
        opts = parse_options(m.options)
        try:
            if is_bind(m):
                bind(m.source, rootfd, m.destination, opts, in_userns=in_userns)
            elif m.type == "cgroup":
                cgroup_mount(m, opts, rootfd)
            else:
                _filesystem(m, opts, rootfd)
        except OSError as e:
            raise OSError(e.errno, f"mounting {m.source or m.type} to rootfs at "
                                   f"{m.destination}: {e.strerror}") from None
