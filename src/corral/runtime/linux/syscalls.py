"""The syscall seam: every kernel call the runtime needs that Python's os module lacks, through
libc (`ffi.py`: ctypes' types without the ctypes package). Failures raise OSError with errno and
the call's name."""

from __future__ import annotations

import os

from corral.runtime.linux import ffi

_libc = ffi.libc

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

CLOSE_RANGE_CLOEXEC = 4

_SYS_OPENAT2 = 437
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}


def _check(result: int, name: str, detail: str = "") -> int:
    if result < 0:
        err = ffi.get_errno()
        raise OSError(err, f"{name}{' ' + detail if detail else ''}: {os.strerror(err)}")
    return result


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ffi.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(ffi.c_int(fd), ffi.c_int(nstype)), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    result = _libc.mount(_b(source), _b(target), _b(fstype), ffi.c_ulong(flags), _b(data))
    _check(result, "mount", f"{source or fstype} on {target}")


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(_b(target), ffi.c_int(flags)), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    number = _SYS_PIVOT_ROOT[os.uname().machine]
    _check(_libc.syscall(ffi.c_long(number), _b(new_root), _b(put_old)), "pivot_root")


class _OpenHow(ffi.Structure):
    _fields_ = (("flags", ffi.c_uint64), ("mode", ffi.c_uint64),
                ("resolve", ffi.c_uint64))


# mount_setattr(2) (Linux 5.12; one number on every architecture): recursive mount attributes
_SYS_MOUNT_SETATTR = 442
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000


class _MountAttr(ffi.Structure):
    _fields_ = (("attr_set", ffi.c_uint64), ("attr_clr", ffi.c_uint64),
                ("propagation", ffi.c_uint64), ("userns_fd", ffi.c_uint64))


def mount_setattr_recursive(fd: int, attr_set: int, attr_clr: int) -> None:
    """Set and clear mount attributes on the mount `fd` names and on every mount below it."""
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    result = _libc.syscall(ffi.c_long(_SYS_MOUNT_SETATTR), ffi.c_int(fd), b"",
                           ffi.c_uint(AT_EMPTY_PATH | AT_RECURSIVE), ffi.byref(attr),
                           ffi.c_size_t(ffi.sizeof(attr)))
    _check(result, "mount_setattr")


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): the kernel resolves `path` with `resolve` (e.g. RESOLVE_IN_ROOT)."""
    how = _OpenHow(flags, mode, resolve)
    result = _libc.syscall(ffi.c_long(_SYS_OPENAT2), ffi.c_int(dirfd), _b(path),
                           ffi.byref(how), ffi.c_size_t(ffi.sizeof(how)))
    return _check(result, "openat2", path)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    args = (ffi.c_ulong(a) for a in (arg2, arg3, arg4, arg5))
    return _check(_libc.prctl(ffi.c_int(option), *args), "prctl")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ffi.c_size_t(len(raw))), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, ffi.c_size_t(len(raw))), "setdomainname")


def close_range_cloexec(first: int) -> None:
    """Mark every fd >= first close-on-exec, so nothing leaks into the container."""
    _check(_libc.close_range(ffi.c_uint(first), ffi.c_uint(0xFFFFFFFF),
                             ffi.c_int(CLOSE_RANGE_CLOEXEC)), "close_range")


def ioctl_int(fd: int, request: int, value: int = 0) -> int:
    """ioctl with an int passed by pointer; returns the int after the call."""
    arg = ffi.c_int(value)
    _check(_libc.ioctl(ffi.c_int(fd), ffi.c_ulong(request), ffi.byref(arg)), "ioctl")
    return arg.value


def ioctl_plain(fd: int, request: int, value: int = 0) -> int:
    """ioctl with an integer argument passed by value (TIOCGPTPEER, TIOCSCTTY)."""
    return _check(_libc.ioctl(ffi.c_int(fd), ffi.c_ulong(request), ffi.c_ulong(value)),
                  "ioctl")
