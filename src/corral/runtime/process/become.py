"""The last steps shared by a container's init and an exec'd process, inside the container:
find the program, then rlimits, umask, fds, user, capabilities, no_new_privs, seccomp, cwd.

Order (linux/caps.py and linux/seccomp.py's contract): without noNewPrivileges seccomp is loaded
first, while CAP_SYS_ADMIN is still held; then bounding set -> keep caps -> groups/gid/uid ->
capability sets; with noNewPrivileges, prctl(PR_SET_NO_NEW_PRIVS) and seccomp come last.
"""

from __future__ import annotations

import os
import stat

from corral.runtime.errors import RuntimeFailure, suppress
from corral.runtime.linux import syscalls as sc
from corral.runtime.record import record
from corral.runtime.spec import RLIMITS, Process

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@record(frozen=True)
class Program:
    path: str
    args: list[str]
    env: dict[str, str]


def _home(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def lookup(name: str, path_env: str) -> str:
    """exec.LookPath as runc reports it (podman maps these messages to 126/127)."""
    if "/" in name:
        try:
            st = os.stat(name)
        except FileNotFoundError:
            raise RuntimeFailure(f'exec: "{name}": stat {name}: no such file or directory') from None
        if stat.S_ISDIR(st.st_mode) or not os.access(name, os.X_OK):
            raise RuntimeFailure(f'exec: "{name}": permission denied')
        return name
    for directory in path_env.split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeFailure(f'exec: "{name}": executable file not found in $PATH')


def program(process: Process) -> Program:
    """The program to execve, looked up in the container's view of the filesystem."""
    env = dict(e.partition("=")[::2] for e in process.env)
    env.setdefault("HOME", _home(process.user.uid))
    return Program(lookup(process.args[0], env.get("PATH", DEFAULT_PATH)), list(process.args), env)


def preload(process: Process, seccomp: Mapping[str, Any] | None) -> None:
    """Import now what become() and the console need later: after pivot_root or setns(mnt) the
    host's Python modules and libraries are out of reach. (The seccomp program itself is
    compiled by the runtime's main process before it forks: process/create.py's
    prepare_seccomp().)"""
    if process.rlimits:
        import resource  # noqa: F401
    from corral.runtime.linux import caps  # noqa: F401  (always: none given means drop all)
    if seccomp is not None:
        from corral.runtime.linux import seccomp as seccomp_mod  # noqa: F401
    if process.terminal or (seccomp or {}).get("listenerPath"):
        import fcntl  # noqa: F401
        import socket  # noqa: F401


def _rlimits(process: Process) -> None:
    if not process.rlimits:
        return
    import resource

    for r in process.rlimits:
        try:
            resource.setrlimit(RLIMITS[r.type], (r.soft, r.hard))
        except (ValueError, OSError) as e:
            raise RuntimeFailure(f"error setting rlimit {r.type} {r.soft}:{r.hard}: {e}") from None


def _fds(preserve_fds: int) -> None:
    """Keep stdio and the preserved fds (3..3+N-1) open across execve; everything else closes."""
    for fd in range(3, 3 + preserve_fds):
        with suppress(OSError):
            os.set_inheritable(fd, True)
    sc.close_range_cloexec(3 + preserve_fds)


def _switch_user(process: Process) -> None:
    user = process.user
    try:
        os.setgroups(list(user.additional_gids))
    except PermissionError:
        if user.additional_gids:  # setgroups is denied in some user namespaces
            raise
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)


def become(process: Process, seccomp: Mapping[str, Any] | None, *,
           preserve_fds: int) -> int | None:
    """Turn the calling process into `process` (all but the execve). Returns the seccomp
    notify fd when the profile uses SCMP_ACT_NOTIFY."""
    notify_fd = None
    _rlimits(process)
    os.umask(process.user.umask if process.user.umask is not None else 0o022)
    _fds(preserve_fds)
    if seccomp is not None and not process.no_new_privileges:
        from corral.runtime.linux import seccomp as seccomp_mod

        notify_fd = seccomp_mod.load(seccomp)
    from corral.runtime.linux import caps as caps_mod

    # No `capabilities` at all means none, the bounding set included (runc, crun): leaving the
    # host's bounding set would let a setuid binary in the image regain every capability.
    caps = process.capabilities or {}
    caps_mod.drop_bounding(list(caps.get("bounding", ())))
    caps_mod.keep_caps_across_setuid()
    _switch_user(process)
    caps_mod.apply(caps)
    os.chdir(process.cwd)
    if process.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        if seccomp is not None:
            from corral.runtime.linux import seccomp as seccomp_mod

            notify_fd = seccomp_mod.load(seccomp)
    return notify_fd
