"""seccomp filters from config.json's `linux.seccomp`, built and loaded with libseccomp (ctypes).

The semantics follow runc (libcontainer/seccomp): unknown syscall names are ignored (a profile
written for a newer kernel still loads), a rule whose action equals the default action is
skipped, libseccomp's own no_new_privs handling is switched off (the core sets it when the config
asks), and when one argument index appears twice in a rule the conditions become separate rules
(OR) instead of one rule (AND). SECCOMP_FILTER_FLAG_TSYNC is accepted and ignored: the runtime is
single-threaded.

`check()` validates in pure Python, so `create` can refuse a bad config before touching the
system without loading libseccomp; `load()` loads libseccomp.so.2 lazily, only when a config has
a seccomp section.

Call order (the core's job): `check()` during validation; in the container's init, `load()` as
late as possible before execve: while still holding CAP_SYS_ADMIN when noNewPrivileges is false,
after prctl(PR_SET_NO_NEW_PRIVS) when it is true. `load()` returns the notify listener fd when a
rule uses SCMP_ACT_NOTIFY, else None; the init hands that fd to the runtime's main process (the
listener socket is a host path), which passes it on with `send_listener()`.
"""

from __future__ import annotations

import errno as errno_module
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from corral.runtime.errors import RuntimeFailure

if TYPE_CHECKING:
    import ctypes

# libseccomp's action values (seccomp.h). ERRNO and TRACE carry a 16-bit value.
_ACT_KILL_PROCESS = 0x80000000
_ACT_KILL_THREAD = 0x00000000
_ACT_TRAP = 0x00030000
_ACT_ERRNO = 0x00050000
_ACT_TRACE = 0x7FF00000
_ACT_NOTIFY = 0x7FC00000
_ACT_LOG = 0x7FFC0000
_ACT_ALLOW = 0x7FFF0000

# OCI action name -> (libseccomp base value, takes an errno/trace value)
ACTIONS: dict[str, tuple[int, bool]] = {
    "SCMP_ACT_KILL": (_ACT_KILL_THREAD, False),
    "SCMP_ACT_KILL_PROCESS": (_ACT_KILL_PROCESS, False),
    "SCMP_ACT_KILL_THREAD": (_ACT_KILL_THREAD, False),
    "SCMP_ACT_TRAP": (_ACT_TRAP, False),
    "SCMP_ACT_ERRNO": (_ACT_ERRNO, True),
    "SCMP_ACT_TRACE": (_ACT_TRACE, True),
    "SCMP_ACT_ALLOW": (_ACT_ALLOW, False),
    "SCMP_ACT_LOG": (_ACT_LOG, False),
    "SCMP_ACT_NOTIFY": (_ACT_NOTIFY, False),
}

# enum scmp_compare
OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# OCI architecture name -> libseccomp's name for seccomp_arch_resolve_name()
ARCHES: dict[str, str] = {
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel",
    "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_PARISC": "parisc",
    "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64",
}

# enum scmp_filter_attr
_ATTR_CTL_NNP = 3
_ATTR_CTL_LOG = 6
_ATTR_CTL_SSB = 7
_ATTR_CTL_OPTIMIZE = 8
_ATTR_CTL_WAITKILL = 10

# OCI flag -> (filter attribute to set to 1, or None when nothing is needed; minimum API level)
FLAGS: dict[str, tuple[int | None, int]] = {
    "SECCOMP_FILTER_FLAG_TSYNC": (None, 1),
    "SECCOMP_FILTER_FLAG_LOG": (_ATTR_CTL_LOG, 3),
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": (_ATTR_CTL_SSB, 4),
    # SCMP_FLTATR_CTL_WAITKILL: libseccomp >= 2.6 (API level 7); refused by load() below that
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": (_ATTR_CTL_WAITKILL, 7),
}

_MAX_ARGS = 6
_NR_SCMP_ERROR = -1


class SeccompError(RuntimeFailure):
    """An invalid seccomp section, or libseccomp refusing it; the message names the culprit."""


# ---------------------------------------------------------------- validation (pure Python)


def check(seccomp: Mapping[str, Any]) -> None:
    """Validate `linux.seccomp` without loading anything; raise SeccompError naming the problem."""
    _action_value(seccomp.get("defaultAction"), seccomp.get("defaultErrnoRet"), "defaultAction")
    if seccomp.get("defaultAction") == "SCMP_ACT_NOTIFY":
        raise SeccompError("seccomp: SCMP_ACT_NOTIFY cannot be the defaultAction")
    for arch in _list(seccomp, "architectures", "linux.seccomp"):
        if arch not in ARCHES:
            raise SeccompError(f"seccomp: unknown architecture {arch!r}")
    for flag in _list(seccomp, "flags", "linux.seccomp"):
        if flag not in FLAGS:
            raise SeccompError(f"seccomp: unknown flag {flag!r}")
    uses_notify = False
    for index, rule in enumerate(_list(seccomp, "syscalls", "linux.seccomp")):
        where = f"linux.seccomp.syscalls[{index}]"
        if not isinstance(rule, Mapping):
            raise SeccompError(f"seccomp: {where} is not an object")
        names = _list(rule, "names", where)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise SeccompError(f"seccomp: {where}.names must be a non-empty list of syscall names")
        _action_value(rule.get("action"), rule.get("errnoRet"), f"{where}.action")
        uses_notify = uses_notify or rule.get("action") == "SCMP_ACT_NOTIFY"
        for arg_index, arg in enumerate(_list(rule, "args", where)):
            _condition(arg, f"{where}.args[{arg_index}]")
    if uses_notify and not seccomp.get("listenerPath"):
        raise SeccompError("seccomp: SCMP_ACT_NOTIFY is used but listenerPath is not set")


def _list(obj: Mapping[str, Any], key: str, where: str) -> Sequence[Any]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SeccompError(f"seccomp: {where}.{key} must be a list")
    return value


def _action_value(name: Any, errno_ret: Any, where: str) -> int:
    """libseccomp's value for an OCI action; ERRNO and TRACE default to EPERM like runc."""
    if name not in ACTIONS:
        raise SeccompError(f"seccomp: {where}: unknown action {name!r}")
    base, takes_value = ACTIONS[name]
    if not takes_value:
        return base
    if errno_ret is None:
        errno_ret = errno_module.EPERM
    if not isinstance(errno_ret, int) or isinstance(errno_ret, bool) or not 0 <= errno_ret <= 0xFFFF:
        raise SeccompError(f"seccomp: {where}: invalid errnoRet {errno_ret!r}")
    return base | errno_ret


def _condition(arg: Any, where: str) -> tuple[int, int, int, int]:
    """(index, operator, valueOne, valueTwo) of one OCI argument comparison."""
    if not isinstance(arg, Mapping):
        raise SeccompError(f"seccomp: {where} is not an object")
    index = arg.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < _MAX_ARGS:
        raise SeccompError(f"seccomp: {where}: invalid argument index {index!r}")
    op = arg.get("op")
    if op not in OPERATORS:
        raise SeccompError(f"seccomp: {where}: unknown operator {op!r}")
    values = []
    for key in ("value", "valueTwo"):
        value = arg.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
            raise SeccompError(f"seccomp: {where}: invalid {key} {value!r}")
        values.append(value)
    return index, OPERATORS[op], values[0], values[1]


# ---------------------------------------------------------------- loading (libseccomp)

_lib: ctypes.CDLL | None = None


def _libseccomp() -> ctypes.CDLL:
    """libseccomp.so.2 with its prototypes, loaded on first use."""
    global _lib
    if _lib is not None:
        return _lib
    import ctypes

    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as err:
        raise SeccompError(f"seccomp: cannot load libseccomp.so.2 (install libseccomp2): {err}") from err
    ctx, u32, c_int = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int
    lib.seccomp_init.argtypes, lib.seccomp_init.restype = [u32], ctx
    lib.seccomp_release.argtypes, lib.seccomp_release.restype = [ctx], None
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = u32
    lib.seccomp_arch_add.argtypes, lib.seccomp_arch_add.restype = [ctx, u32], c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = c_int
    lib.seccomp_attr_set.argtypes, lib.seccomp_attr_set.restype = [ctx, c_int, u32], c_int
    lib.seccomp_rule_add_array.argtypes = [ctx, u32, c_int, ctypes.c_uint, ctypes.c_void_p]
    lib.seccomp_rule_add_array.restype = c_int
    lib.seccomp_load.argtypes, lib.seccomp_load.restype = [ctx], c_int
    lib.seccomp_notify_fd.argtypes, lib.seccomp_notify_fd.restype = [ctx], c_int
    lib.seccomp_api_get.argtypes, lib.seccomp_api_get.restype = [], ctypes.c_uint
    lib.seccomp_version.argtypes, lib.seccomp_version.restype = [], ctypes.POINTER(ctypes.c_uint * 3)
    _lib = lib
    return lib


def library_version() -> str | None:
    """libseccomp's version ("2.5.4"), or None when the library is missing."""
    try:
        lib = _libseccomp()
    except SeccompError:
        return None
    major, minor, micro = lib.seccomp_version().contents
    return f"{major}.{minor}.{micro}"


def supported_flags() -> list[str]:
    """The OCI flags this libseccomp and kernel can apply (runtime-spec features `supportedFlags`)."""
    try:
        api = int(_libseccomp().seccomp_api_get())
    except SeccompError:
        return []
    return [name for name, (_attr, level) in FLAGS.items() if level <= api]


def _check_rc(rc: int, what: str) -> None:
    if rc < 0:
        raise SeccompError(f"seccomp: {what}: {os.strerror(-rc)}")


def load(seccomp: Mapping[str, Any]) -> int | None:
    """Build the filter of `linux.seccomp` and load it into the calling process.

    Returns the notify listener fd when a rule uses SCMP_ACT_NOTIFY, else None.
    """
    check(seccomp)
    import ctypes

    class ArgCmp(ctypes.Structure):
        _fields_ = (
            ("arg", ctypes.c_uint),
            ("op", ctypes.c_int),
            ("datum_a", ctypes.c_uint64),
            ("datum_b", ctypes.c_uint64),
        )

    lib = _libseccomp()
    default = _action_value(seccomp["defaultAction"], seccomp.get("defaultErrnoRet"), "defaultAction")
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise SeccompError(f"seccomp: seccomp_init refused defaultAction {seccomp['defaultAction']}")
    try:
        for arch in seccomp.get("architectures") or ():
            token = lib.seccomp_arch_resolve_name(ARCHES[arch].encode())
            if token == 0:
                raise SeccompError(f"seccomp: libseccomp does not know architecture {arch}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc != -errno_module.EEXIST:  # the native arch is already in the filter
                _check_rc(rc, f"adding architecture {arch}")
        _set_flags(lib, ctx, seccomp.get("flags") or ())
        # libseccomp would set no_new_privs itself; the core does it when the config asks.
        _check_rc(lib.seccomp_attr_set(ctx, _ATTR_CTL_NNP, 0), "clearing no_new_privs")
        rules = seccomp.get("syscalls") or ()
        if len(rules) > 8:  # a binary tree is faster for long profiles; optional like runc's
            lib.seccomp_attr_set(ctx, _ATTR_CTL_OPTIMIZE, 2)
        for rule in rules:
            action = _action_value(rule["action"], rule.get("errnoRet"), "action")
            if action == default:
                continue  # libseccomp refuses rules that repeat the default action
            conditions = [_condition(arg, "args") for arg in rule.get("args") or ()]
            indexes = [c[0] for c in conditions]
            groups = [[c] for c in conditions] if len(set(indexes)) < len(indexes) else [conditions]
            for name in rule["names"]:
                number = lib.seccomp_syscall_resolve_name(name.encode())
                if number == _NR_SCMP_ERROR:
                    continue  # unknown to this libseccomp: ignored, like runc
                for group in groups:
                    array = (ArgCmp * max(len(group), 1))(*[ArgCmp(*c) for c in group])
                    rc = lib.seccomp_rule_add_array(
                        ctx, action, number, len(group), ctypes.cast(array, ctypes.c_void_p)
                    )
                    _check_rc(rc, f"adding rule {rule['action']} for syscall {name}")
        _check_rc(lib.seccomp_load(ctx), "loading the filter")
        if any(rule["action"] == "SCMP_ACT_NOTIFY" for rule in rules):
            fd = int(lib.seccomp_notify_fd(ctx))
            _check_rc(fd, "getting the notify fd")
            return fd
        return None
    finally:
        lib.seccomp_release(ctx)


def _set_flags(lib: ctypes.CDLL, ctx: int, flags: Sequence[str]) -> None:
    api = int(lib.seccomp_api_get())
    for flag in flags:
        attr, level = FLAGS[flag]
        if api < level:
            raise SeccompError(f"seccomp: flag {flag} is not supported by libseccomp/kernel (API {api})")
        if attr is not None:
            _check_rc(lib.seccomp_attr_set(ctx, attr, 1), f"setting flag {flag}")


def send_listener(listener_path: str, fd: int, *, pid: int, state: Mapping[str, Any],
                  metadata: str = "") -> None:
    """Send the notify fd to the seccomp agent at `listenerPath` (runtime-spec config-linux.md).

    One SCM_RIGHTS message carrying the fd, with the containerProcessState JSON as payload.
    """
    import json
    import socket

    message = {"ociVersion": state.get("ociVersion", "1.0.2"), "fds": ["seccompFd"], "pid": pid,
               "metadata": metadata, "state": dict(state)}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as agent:
            agent.connect(listener_path)
            socket.send_fds(agent, [json.dumps(message).encode()], [fd])
    except OSError as err:
        raise SeccompError(f"seccomp: sending the notify fd to listenerPath {listener_path}: "
                           f"{err.strerror or err}") from None
