"""seccomp filters loaded for real into forked children: errno values, kills, argument filters."""

from __future__ import annotations

import ctypes
import errno
import json
import operator
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral.runtime.linux import seccomp
from corral.runtime.linux.seccomp import SeccompError
from tests.runtime.forked import errno_of, run_forked

NATIVE = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def profile(*rules: dict[str, Any], default: str = "SCMP_ACT_ALLOW", **extra: Any) -> dict[str, Any]:
    return {"defaultAction": default, "architectures": NATIVE, "syscalls": list(rules), **extra}


def deny_mkdir(**rule: Any) -> dict[str, Any]:
    return {"names": ["mkdir", "mkdirat"], **rule}


def mkdir_errno() -> int:
    """The errno of mkdir(2) in this process (0: it worked; the directory is removed again)."""
    path = f"{tempfile.gettempdir()}/corral-seccomp-{os.getpid()}-{uuid.uuid4().hex}"
    result = errno_of(lambda: os.mkdir(path))
    if result == 0:
        os.rmdir(path)
    return result


@pytest.fixture(params=["libseccomp", "prepared"])
def way(request: pytest.FixtureRequest) -> str:
    """How load() installs the filter: built by libseccomp in the child, or compiled by
    prepare() in the parent and installed with seccomp(2) (libseccomp unusable in the child)."""
    return str(request.param)


def loaded(config: dict[str, Any], then: Callable[[], Any], way: str) -> Callable[[], Any]:
    if way == "prepared":
        seccomp.prepare(config)

    def child() -> Any:
        if way == "prepared":
            seccomp._libseccomp = no_libseccomp  # type: ignore[assignment]
        seccomp.load(config)
        return then()
    return child


def no_libseccomp() -> Any:
    raise AssertionError("load() used libseccomp although the profile was prepared")


def test_refused_syscall_returns_configured_errno_and_others_work(way: str) -> None:
    def probe() -> dict[str, int]:
        return {"mkdir": mkdir_errno(), "getpid_ok": int(os.getpid() > 0),
                "stat": errno_of(lambda: os.stat("/"))}

    result = run_forked(loaded(profile(deny_mkdir(action="SCMP_ACT_ERRNO", errnoRet=38)), probe, way))
    assert result.value == {"mkdir": 38, "getpid_ok": 1, "stat": 0}


def test_errno_defaults_to_eperm(way: str) -> None:
    result = run_forked(loaded(profile(deny_mkdir(action="SCMP_ACT_ERRNO")), mkdir_errno, way))
    assert result.value == errno.EPERM


def test_unfiltered_child_can_mkdir() -> None:
    assert run_forked(mkdir_errno).value == 0


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_the_process_with_sigsys(action: str, way: str) -> None:
    result = run_forked(loaded(profile(deny_mkdir(action=action)), mkdir_errno, way))
    assert result.killed_by == "SIGSYS"
    assert result.value is None


def test_trace_without_tracer_fails_with_enosys(way: str) -> None:
    result = run_forked(loaded(profile(deny_mkdir(action="SCMP_ACT_TRACE", errnoRet=7)), mkdir_errno, way))
    assert result.value == errno.ENOSYS


def test_log_allows_the_call(way: str) -> None:
    result = run_forked(loaded(profile(deny_mkdir(action="SCMP_ACT_LOG")), mkdir_errno, way))
    assert result.value == 0


def test_default_errno_with_an_allow_list(way: str) -> None:
    """defaultAction ERRNO + defaultErrnoRet: everything not allowed fails with that errno."""
    allowed = ["read", "write", "close", "exit", "exit_group", "rt_sigreturn", "rt_sigprocmask",
               "rt_sigaction", "brk", "mmap", "munmap", "mremap", "madvise", "futex", "getpid",
               "newfstatat", "fstat", "lseek", "getrandom"]
    config = profile({"names": allowed, "action": "SCMP_ACT_ALLOW"},
                     default="SCMP_ACT_ERRNO", defaultErrnoRet=errno.EOPNOTSUPP)

    def probe() -> dict[str, int]:
        return {"mkdir": errno_of(lambda: os.mkdir("/tmp/never-created")),
                "getpid": int(os.getpid() > 0)}

    assert run_forked(loaded(config, probe, way)).value == {"mkdir": errno.EOPNOTSUPP, "getpid": 1}


OPS: dict[str, Callable[[int, int], bool]] = {
    "SCMP_CMP_NE": operator.ne,
    "SCMP_CMP_LT": operator.lt,
    "SCMP_CMP_LE": operator.le,
    "SCMP_CMP_EQ": operator.eq,
    "SCMP_CMP_GE": operator.ge,
    "SCMP_CMP_GT": operator.gt,
}
OFFSETS = [0, 18, 23, 63]


def lseek_refusals() -> list[int]:
    """The lseek(2) offsets the filter refuses (seeking a regular file never fails on its own)."""
    fd = os.open("/proc/self/exe", os.O_RDONLY)
    refused = [value for value in OFFSETS
               if errno_of(lambda v=value: os.lseek(fd, v, os.SEEK_SET)) == errno.EACCES]
    os.close(fd)
    return refused


@pytest.mark.parametrize("op", sorted(OPS))
def test_argument_comparators(op: str, way: str) -> None:
    rule = {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES,
            "args": [{"index": 1, "op": op, "value": 23}]}
    result = run_forked(loaded(profile(rule), lseek_refusals, way))
    assert result.value == [v for v in OFFSETS if OPS[op](v, 23)]


def test_masked_eq_compares_under_the_mask(way: str) -> None:
    # refuse offsets whose low 3 bits are all set: 23 (0b10111) and 63 (0b111111)
    rule = {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES,
            "args": [{"index": 1, "op": "SCMP_CMP_MASKED_EQ", "value": 7, "valueTwo": 7}]}
    assert run_forked(loaded(profile(rule), lseek_refusals, way)).value == [23, 63]


def test_same_argument_twice_means_either_value(way: str) -> None:
    """runc's rule: conditions on one argument index become separate rules (OR)."""
    rule = {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES,
            "args": [{"index": 1, "op": "SCMP_CMP_EQ", "value": 18},
                     {"index": 1, "op": "SCMP_CMP_EQ", "value": 63}]}
    assert run_forked(loaded(profile(rule), lseek_refusals, way)).value == [18, 63]


def test_conditions_on_different_arguments_must_all_match(way: str) -> None:
    rule = {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES,
            "args": [{"index": 1, "op": "SCMP_CMP_EQ", "value": 23},
                     {"index": 2, "op": "SCMP_CMP_EQ", "value": os.SEEK_SET}]}

    def probe() -> list[int]:
        fd = os.open("/proc/self/exe", os.O_RDONLY)
        return [errno_of(lambda: os.lseek(fd, 23, os.SEEK_SET)),
                errno_of(lambda: os.lseek(fd, 23, os.SEEK_CUR)),
                errno_of(lambda: os.lseek(fd, 18, os.SEEK_SET))]

    assert run_forked(loaded(profile(rule), probe, way)).value == [errno.EACCES, 0, 0]


def test_unknown_and_foreign_syscalls_are_ignored(way: str) -> None:
    rule = deny_mkdir(action="SCMP_ACT_ERRNO", errnoRet=5)
    rule["names"] = ["no_such_syscall_anywhere", "socketcall", *rule["names"]]
    assert run_forked(loaded(profile(rule), mkdir_errno, way)).value == 5


def test_supported_flags_load(way: str) -> None:
    config = profile(deny_mkdir(action="SCMP_ACT_ERRNO", errnoRet=9),
                     flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                            "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
    assert run_forked(loaded(config, mkdir_errno, way)).value == 9


def test_notify_returns_a_listener_fd(way: str) -> None:
    config = profile(deny_mkdir(action="SCMP_ACT_NOTIFY"), listenerPath="/run/unused.sock")

    def child() -> str:
        fd = seccomp.load(config)
        assert fd is not None
        return os.readlink(f"/proc/self/fd/{fd}")

    if way == "prepared":
        seccomp.prepare(config)
    assert run_forked(child).value == "anon_inode:seccomp notify"


def test_no_new_privs_is_left_to_the_caller() -> None:
    def child() -> str:
        seccomp.load(profile(deny_mkdir(action="SCMP_ACT_ERRNO")))
        with open("/proc/self/status") as f:
            return next(line.split()[1] for line in f if line.startswith("NoNewPrivs:"))

    assert run_forked(child).value == "0"


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (profile(deny_mkdir(action="SCMP_ACT_EXPLODE")), "SCMP_ACT_EXPLODE"),
        (profile(default="SCMP_ACT_NOPE"), "SCMP_ACT_NOPE"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}, "SCMP_ARCH_Z80"),
        (profile(flags=["SECCOMP_FILTER_FLAG_BOGUS"]), "SECCOMP_FILTER_FLAG_BOGUS"),
        (profile(deny_mkdir(action="SCMP_ACT_ERRNO",
                            args=[{"index": 0, "op": "SCMP_CMP_ALMOST", "value": 1}])),
         "SCMP_CMP_ALMOST"),
        (profile(deny_mkdir(action="SCMP_ACT_ERRNO", args=[{"index": 6, "op": "SCMP_CMP_EQ"}])),
         "index 6"),
        (profile(deny_mkdir(action="SCMP_ACT_ERRNO", errnoRet=70000)), "70000"),
        (profile(deny_mkdir(action="SCMP_ACT_NOTIFY")), "listenerPath"),
        (profile(default="SCMP_ACT_NOTIFY"), "defaultAction"),
        (profile({"names": [], "action": "SCMP_ACT_ERRNO"}), "names"),
    ],
)
def test_invalid_config_is_refused_naming_the_problem(config: dict[str, Any], named: str) -> None:
    with pytest.raises(SeccompError, match=named):
        seccomp.check(config)
    with pytest.raises(SeccompError, match=named):
        seccomp.load(config)  # validated before anything is built: the test process stays clean


def test_unsupported_flag_is_refused_at_load() -> None:
    if "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" in seccomp.supported_flags():
        pytest.skip("this libseccomp (>= 2.6) supports every flag the spec knows")
    config = profile(flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])
    seccomp.check(config)  # a flag the spec knows...

    def child() -> str:
        try:
            seccomp.load(config)
        except SeccompError as err:
            return str(err)
        return "loaded"

    assert "WAIT_KILLABLE_RECV" in run_forked(child).value  # ...that libseccomp 2.5 cannot set


def test_check_does_not_load_libseccomp() -> None:
    """`create` validates with check(); libseccomp is only loaded when a filter is built."""
    code = ("from corral.runtime.linux import seccomp;"
            "seccomp.check({'defaultAction': 'SCMP_ACT_ALLOW'});"
            "print('libseccomp' in open('/proc/self/maps').read())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class NotifData(ctypes.Structure):
    _fields_ = (("nr", ctypes.c_int), ("arch", ctypes.c_uint32),
                ("instruction_pointer", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6))


class Notif(ctypes.Structure):
    _fields_ = (("id", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("data", NotifData))


class NotifResp(ctypes.Structure):
    _fields_ = (("id", ctypes.c_uint64), ("val", ctypes.c_int64), ("error", ctypes.c_int32),
                ("flags", ctypes.c_uint32))


def answer_one_notification(listener: int, errno_value: int) -> tuple[int, int]:
    """Act as the seccomp agent for one syscall: refuse it with `errno_value`; (pid, nr) of it."""
    lib = seccomp._libseccomp()
    request, response = ctypes.POINTER(Notif)(), ctypes.POINTER(NotifResp)()
    assert lib.seccomp_notify_alloc(ctypes.byref(request), ctypes.byref(response)) == 0
    try:
        assert lib.seccomp_notify_receive(listener, request) == 0
        response.contents.id = request.contents.id
        response.contents.val = 0
        response.contents.error = -errno_value
        response.contents.flags = 0
        assert lib.seccomp_notify_respond(listener, response) == 0
        return request.contents.pid, request.contents.data.nr
    finally:
        lib.seccomp_notify_free(request, response)


def test_notify_fd_reaches_the_agent_which_answers_the_syscall(tmp_path: Path) -> None:
    listener_path = str(tmp_path / "agent.sock")
    config = profile(deny_mkdir(action="SCMP_ACT_NOTIFY"), listenerPath=listener_path,
                     listenerMetadata="hello-agent")
    state = {"ociVersion": "1.1.0", "id": "notify-test", "status": "creating", "pid": 0,
             "bundle": "/nowhere"}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as agent:
        agent.bind(listener_path)
        agent.listen(1)
        agent.settimeout(10)
        pid = os.fork()
        if pid == 0:
            code = 100
            try:
                fd = seccomp.load(config)
                assert fd is not None
                seccomp.send_listener(listener_path, fd, pid=os.getpid(), state=state,
                                      metadata=config["listenerMetadata"])
                os.close(fd)
                code = mkdir_errno()
            finally:
                os._exit(code)
        try:
            connection, _ = agent.accept()
            with connection:
                payload, fds, _flags, _addr = socket.recv_fds(connection, 65536, 1)
            assert len(fds) == 1
            caller, number = answer_one_notification(fds[0], errno.ENOMSG)
            os.close(fds[0])
        finally:
            _, status = os.waitpid(pid, 0)
    assert json.loads(payload) == {"ociVersion": "1.1.0", "fds": ["seccompFd"], "pid": pid,
                                   "metadata": "hello-agent", "state": state}
    assert caller == pid
    lib = seccomp._libseccomp()
    assert number in (lib.seccomp_syscall_resolve_name(b"mkdir"),
                      lib.seccomp_syscall_resolve_name(b"mkdirat"))
    assert os.waitstatus_to_exitcode(status) == errno.ENOMSG


def test_send_listener_names_a_missing_agent(tmp_path: Path) -> None:
    with pytest.raises(SeccompError, match=r"listenerPath .*agent\.sock: No such file"):
        seccomp.send_listener(str(tmp_path / "agent.sock"), 0, pid=1, state={})


PREPARED_CHILD = """
import os, sys
from corral.runtime.linux import seccomp
config = {"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
seccomp.prepare(config, cache_dir=sys.argv[1])
uses_lib = "libseccomp" in open("/proc/self/maps").read()
seccomp.load(config)
try:
    os.mkdir(sys.argv[1] + "/never")
    result = 0
except OSError as err:
    result = err.errno
print(uses_lib, result)
"""


def prepared_run(cache_dir: Path) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PREPARED_CHILD, str(cache_dir)],
                         capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.split()


def test_cached_program_needs_no_libseccomp(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert prepared_run(cache) == ["True", "38"]   # first run: libseccomp compiles, cache written
    [cached] = cache.iterdir()
    assert prepared_run(cache) == ["False", "38"]  # later runs: straight from the cache
    assert [p.name for p in cache.iterdir()] == [cached.name]


@pytest.mark.parametrize("damage", ["truncated", "other-profile", "group-writable", "not-ours"])
def test_damaged_or_foreign_cache_file_is_rebuilt(tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    prepared_run(cache)
    [cached] = cache.iterdir()
    good = cached.read_bytes()
    if damage == "truncated":
        cached.write_bytes(good[:-3])
    elif damage == "other-profile":  # same file name, another profile's program: never used
        cached.write_bytes(good.replace(b'"errnoRet":38', b'"errnoRet":39'))
    elif damage == "group-writable":  # anyone in the group could have planted it
        cached.chmod(0o664)
    else:
        os.chown(cached, 1000, 1000)
    assert prepared_run(cache) == ["True", "38"]
    assert cached.read_bytes() == good


def test_prepare_exports_what_libseccomp_would_load() -> None:
    config = profile(deny_mkdir(action="SCMP_ACT_ERRNO", errnoRet=38))
    program = seccomp._export(config)
    assert len(program) % 8 == 0 and len(program) > 8
    assert seccomp._export(config) == program  # deterministic: cacheable
