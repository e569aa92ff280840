"""Linux capabilities from config.json's `process.capabilities`: names, bounding set, capset, ambient.

Names this runtime or the kernel does not know ("CAP_FOO", or a number above
/proc/sys/kernel/cap_last_cap) are ignored, as runc (which warns) and crun do: `check()` returns
them for the caller's warning. A malformed section is a CapsError.

Call order (the core's job), in the container's init:
    drop_bounding(bounding) -> keep_caps_across_setuid() -> setgroups/setresgid/setresuid
    -> apply(capabilities)
"""

from __future__ import annotations

import errno
import os

from corral.runtime.errors import RuntimeFailure

# linux/ffi.py and syscalls.py are imported where the kernel is called: check() runs in the
# runtime's main process, which makes no such calls; the rest runs in the container's process,
# which has them imported (before pivot_root) with syscalls.py

NAMES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

TYPE_CHECKING = False  # typing costs milliseconds (it imports re) on every start
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
NUMBERS: dict[str, int] = {name: number for number, name in enumerate(NAMES)}
SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")

_PR_SET_KEEPCAPS = 8
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_RAISE = 2
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class CapsError(RuntimeFailure):
    """An unknown capability name, or the kernel refusing a capability change."""




_last_cap: int | None = None


def last_cap() -> int:
    """The highest capability number the running kernel knows.

    Read once per process (check() runs before the fork, so the container's init, whose /proc
    may not be mounted, has it already).
    """
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _last_cap = int(f.read())
        except OSError:
            return len(NAMES) - 1
    return _last_cap


def check(capabilities: Mapping[str, Sequence[str]]) -> list[str]:
    """Validate `process.capabilities`; returns the names that will be ignored.

    A malformed section (unknown set, not a list of strings) is a CapsError. Capability names
    this runtime or kernel does not know are ignored like runc does ("ignoring unknown or
    unavailable capabilities: [...]" is the warning the caller should log): ignoring a name only
    ever grants less.
    """
    ignored: list[str] = []
    top = last_cap()
    for set_name, names in capabilities.items():
        if set_name not in SETS:
            raise CapsError(f"process.capabilities: unknown set {set_name!r}")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CapsError(f"process.capabilities.{set_name} must be a list of names")
        for name in names:
            if NUMBERS.get(name, top + 1) > top and name not in ignored:
                ignored.append(name)
    return ignored


def to_mask(names: Iterable[str]) -> int:
    """The bit mask of the capabilities among `names` that this kernel has (others are ignored)."""
    top = last_cap()
    mask = 0
    for name in names:
        number = NUMBERS.get(name)
        if number is not None and number <= top:
            mask |= 1 << number
    return mask


def names_of(mask: int) -> list[str]:
    """The capability names of the bits set in `mask`."""
    return [name for number, name in enumerate(NAMES) if mask & (1 << number)]


def _own_mask(field: str) -> int:
    """One capability set of this process ("CapPrm", "CapBnd", ...) from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    return 0


def _prctl(option: int, arg2: int, what: str, arg3: int = 0) -> None:
    from corral.runtime.linux import syscalls

    try:
        syscalls.prctl(option, arg2, arg3)
    except OSError as err:
        raise CapsError(f"{what}: {os.strerror(err.errno or 0)}") from None


def drop_bounding(keep: Sequence[str]) -> None:
    """Drop from the bounding set every capability not in `keep` (needs CAP_SETPCAP)."""
    kept = to_mask(keep)
    for number in range(last_cap() + 1):
        if not kept & (1 << number):
            _prctl(_PR_CAPBSET_DROP, number, f"dropping {NAMES[number]} from the bounding set")


def keep_caps_across_setuid() -> None:
    """Keep the permitted set when switching from uid 0 to another uid (cleared by apply())."""
    _prctl(_PR_SET_KEEPCAPS, 1, "prctl(PR_SET_KEEPCAPS)")


def apply(capabilities: Mapping[str, Sequence[str]]) -> None:
    """Set effective/permitted/inheritable with capset(2), then the ambient set.

    Missing sets are empty, as in runc. Ambient capabilities the kernel refuses (not in both
    permitted and inheritable) are skipped, as crun does.
    """
    check(capabilities)
    masks = {s: to_mask(capabilities.get(s, ())) for s in ("effective", "permitted", "inheritable")}
    from corral.runtime.linux import ffi

    class Header(ffi.Structure):
        _fields_ = (("version", ffi.c_uint32), ("pid", ffi.c_int))

    class Data(ffi.Structure):
        _fields_ = (("effective", ffi.c_uint32), ("permitted", ffi.c_uint32),
                    ("inheritable", ffi.c_uint32))

    header = Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (Data * 2)()
    for word in (0, 1):
        data[word].effective = (masks["effective"] >> (32 * word)) & 0xFFFFFFFF
        data[word].permitted = (masks["permitted"] >> (32 * word)) & 0xFFFFFFFF
        data[word].inheritable = (masks["inheritable"] >> (32 * word)) & 0xFFFFFFFF
    if ffi.libc.capset(ffi.byref(header), data) != 0:  # syscalls.py does not wrap capset(2)
        err = ffi.get_errno()
        missing = masks["permitted"] & ~_own_mask("CapPrm")
        hint = f"; the runtime itself lacks {', '.join(names_of(missing))}" if missing else ""
        raise CapsError(f"capset: {os.strerror(err)} (effective {masks['effective']:#x}, "
                        f"permitted {masks['permitted']:#x}, inheritable {masks['inheritable']:#x})"
                        f"{hint}")
    _prctl(_PR_SET_KEEPCAPS, 0, "prctl(PR_SET_KEEPCAPS, 0)")
    ambient = to_mask(capabilities.get("ambient", ()))
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, "clearing the ambient set")
    for number in range(last_cap() + 1):
        if ambient & (1 << number):
            _raise_ambient(number)


def _raise_ambient(number: int) -> None:
    from corral.runtime.linux import syscalls

    try:
        syscalls.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, number)
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EINVAL):
            raise CapsError(f"raising ambient {NAMES[number]}: {os.strerror(err.errno or 0)}") from None
