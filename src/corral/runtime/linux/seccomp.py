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

Speed: `prepare(seccomp, cache_dir=...)` in the main process before the fork compiles the profile
once (libseccomp's export) and caches the BPF program; `load()` in the init then installs it with
seccomp(2) directly. Without prepare(), load() builds the filter through libseccomp as before.
"""

from __future__ import annotations

import errno as errno_module
import os

from corral.runtime.errors import RuntimeFailure, suppress

TYPE_CHECKING = False  # typing costs milliseconds (it imports re) on every start
if TYPE_CHECKING:
    import ctypes
    from collections.abc import Mapping, Sequence
    from typing import Any

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
        if not isinstance(rule, dict):
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
    if not isinstance(arg, dict):
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
    lib.seccomp_export_bpf.argtypes, lib.seccomp_export_bpf.restype = [ctx, c_int], c_int
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
    """Install the filter of `linux.seccomp` in the calling process.

    Returns the notify listener fd when a rule uses SCMP_ACT_NOTIFY, else None. When `prepare()`
    compiled this profile earlier in this process (or in the process that forked it), the
    compiled program is installed with seccomp(2) directly; otherwise libseccomp builds and
    loads it here.
    """
    check(seccomp)
    # only after prepare() (which imported _json): the init may already be past pivot_root
    compiled = _prepared.get(_canonical(seccomp)) if _prepared else None
    if compiled is not None:
        return _install(*compiled)
    lib = _libseccomp()
    ctx = _build(lib, seccomp)
    try:
        _check_rc(lib.seccomp_load(ctx), "loading the filter")
        if _uses_notify(seccomp):
            fd = int(lib.seccomp_notify_fd(ctx))
            _check_rc(fd, "getting the notify fd")
            return fd
        return None
    finally:
        lib.seccomp_release(ctx)


# ---------------------------------------------------------------- compiled programs

# seccomp(2) and its flags (linux/seccomp.h); TSYNC is never needed (single-threaded)
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277, "riscv64": 277, "ppc64le": 358, "s390x": 348}
_SECCOMP_SET_MODE_FILTER = 1
_KERNEL_FLAGS = {
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
_FLAG_NEW_LISTENER = 8
_CACHE_MAGIC = b"corral-seccomp-bpf 1\n"

# canonical profile JSON -> (BPF program, seccomp(2) flags), filled by prepare()
_prepared: dict[str, tuple[bytes, int]] = {}


def _canonical(seccomp: Mapping[str, Any]) -> str:
    """json.dumps(seccomp, sort_keys=True, separators=(",", ":")) through the C encoder only
    (the json package would import re; see corral.runtime.jsonio)."""
    import _json

    def refuse(obj: object) -> object:
        raise SeccompError(f"seccomp: {type(obj).__name__} value in the profile")

    encode = _json.make_encoder(None, refuse, _json.encode_basestring_ascii, None, ":", ",",
                                True, False, True)
    return "".join(encode(seccomp, 0))


def prepare(seccomp: Mapping[str, Any], *, cache_dir: str | None = None) -> None:
    """Compile the profile now, so that a later load() (in a forked child) skips libseccomp.

    The runtime's main process calls this before it forks the container's init: building a
    profile like podman's default costs libseccomp about 15 ms, and the program it makes depends
    only on the profile. With `cache_dir` (root-owned, e.g. under the state root) the program is
    kept across runs, and a cached profile costs no libseccomp at all. Hosts whose seccomp(2)
    number is not known here keep loading through libseccomp (dlopen'ed here, before any
    pivot_root). Either way, after prepare() the init needs nothing from the host's filesystem.
    """
    check(seccomp)
    key = _canonical(seccomp)
    if key in _prepared:
        return
    if os.uname().machine not in _SYS_SECCOMP:
        _libseccomp()  # load() will build through libseccomp: dlopen it while the host is in reach
        return
    path = _cache_path(cache_dir, key) if cache_dir else None
    program = _read_cache(path, key) if path else None
    if program is None:
        program = _export(seccomp)
        if path:
            _write_cache(path, key, program)
    flags = 0
    for flag in seccomp.get("flags") or ():
        flags |= _KERNEL_FLAGS.get(flag, 0)
    if _uses_notify(seccomp):
        flags |= _FLAG_NEW_LISTENER
    _prepared[key] = (program, flags)


def _export(seccomp: Mapping[str, Any]) -> bytes:
    """The BPF program libseccomp makes for the profile (what seccomp_load would install)."""
    lib = _libseccomp()
    ctx = _build(lib, seccomp)
    fd = os.memfd_create("corral-seccomp", os.MFD_CLOEXEC)
    try:
        _check_rc(lib.seccomp_export_bpf(ctx, fd), "exporting the filter")
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)
        lib.seccomp_release(ctx)


def _cache_path(cache_dir: str, key: str) -> str:
    import zlib

    # crc32 only spreads the names: the file holds the whole profile and is checked against it
    return os.path.join(cache_dir, f"{zlib.crc32(key.encode()):08x}-{len(key)}.bpf")


def _read_cache(path: str, key: str) -> bytes | None:
    header = _CACHE_MAGIC + key.encode() + b"\n"
    try:
        with open(path, "rb") as f:
            if not _trusted(os.fstat(f.fileno())) or not _trusted(os.stat(os.path.dirname(path))):
                return None  # someone else could have written it: never install it
            data = f.read()
    except OSError:
        return None
    program = data[len(header):]
    if not data.startswith(header) or not program or len(program) % 8:
        return None  # another profile with the same name, or a damaged file: rebuild
    return program


def _trusted(st: os.stat_result) -> bool:
    """Ours and writable by nobody else: a cached filter is installed without a second look."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _write_cache(path: str, key: str, program: bytes) -> None:
    """Atomically (temp file + rename); a cache that cannot be written is no error."""
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(_CACHE_MAGIC + key.encode() + b"\n" + program)
        os.replace(temp, path)
    except OSError:
        with suppress(OSError):
            os.unlink(temp)


def _install(program: bytes, flags: int) -> int | None:
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, program); the listener fd with NEW_LISTENER."""
    from corral.runtime.linux import ffi  # imported before pivot_root with syscalls.py

    class SockFprog(ffi.Structure):
        _fields_ = (("len", ffi.c_ushort), ("filter", ffi.c_void_p))

    buffer = (ffi.c_char * len(program)).from_buffer_copy(program)
    fprog = SockFprog(len(program) // 8, ffi.addressof(buffer))
    rc = ffi.function("syscall", ffi.c_long)(
        ffi.c_long(_SYS_SECCOMP[os.uname().machine]), ffi.c_long(_SECCOMP_SET_MODE_FILTER),
        ffi.c_long(flags), ffi.byref(fprog))
    if rc < 0:
        raise SeccompError(f"seccomp: loading the filter: {os.strerror(ffi.get_errno())}")
    return int(rc) if flags & _FLAG_NEW_LISTENER else None


def _uses_notify(seccomp: Mapping[str, Any]) -> bool:
    return any(rule["action"] == "SCMP_ACT_NOTIFY" for rule in seccomp.get("syscalls") or ())


def _build(lib: ctypes.CDLL, seccomp: Mapping[str, Any]) -> int:
    """A libseccomp filter context holding the whole profile; the caller releases it."""
    import ctypes

    class ArgCmp(ctypes.Structure):
        _fields_ = (
            ("arg", ctypes.c_uint),
            ("op", ctypes.c_int),
            ("datum_a", ctypes.c_uint64),
            ("datum_b", ctypes.c_uint64),
        )

    default = _action_value(seccomp["defaultAction"], seccomp.get("defaultErrnoRet"), "defaultAction")
    ctx: int = lib.seccomp_init(default)
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
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return ctx


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
