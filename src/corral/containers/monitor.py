"""conmon, the per-container monitor (as podman drives it), and the files it leaves.

    corral (CLI)                 conmon (daemonizes itself)          runtime
    ------------                 --------------------------          -------
    launch(): spawn conmon  -->  fork, setsid, subreaper
                                 bind <bundle>/attach, ctl fifo
                                 run `runtime create` -------------> container waits at exec
                            <--  sync pipe: {"data": <pid>}           (or {"data": -1, "message"})
    attach (optional), then `runtime start` ----------------------->  the program runs
                                 holds stdio / pty, writes ctr.log (k8s-file)
                                 on exit: <bundle>/exit (code), <bundle>/oom (if OOM-killed),
                                 then runs the exit command: `corral container cleanup <id>`

conmon outlives the CLI, so a detached container keeps its logs and its exit code even when the
command that started it was SIGKILLed. The exit command does `--rm` and teardown without any CLI.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from corral.errors import CorralError
from corral.records import NamedTuple
from corral.runtime import jsonio  # json's C scanner without the json package's imports

TYPE_CHECKING = False  # not typing's (see cli/container.py)
if TYPE_CHECKING:
    from corral.containers.ociruntime import Runtime  # `ps` reads state without a runtime

CONMON = "/usr/bin/conmon"
_SYNC_FD = 3  # conmon's sync pipe, as fd 3 in conmon (_OCI_SYNCPIPE)


class Launch(NamedTuple):
    container_id: str
    name: str
    bundle: str
    runtime: Runtime
    log_path: str
    exit_command: Sequence[str]
    tty: bool = False
    stdin: bool = False
    keep_stdin: bool = False  # stdin survives a client's detach (docker's -d -i, -it)
    log: bool = True  # False: --log-driver none


class CreateFailed(CorralError):
    """The runtime refused to create the container; `message` is its complaint."""


def launch(req: Launch, while_waiting: Callable[[], object] | None = None) -> tuple[int, int]:
    """Start conmon (which runs `runtime create`); return (container pid, conmon pid).

    `while_waiting` runs while conmon and the runtime create the container (tens of ms in which
    this process would only block): the caller's imports for what comes next go there."""
    conmon = CONMON
    if not os.path.exists(conmon):
        import shutil

        conmon = shutil.which("conmon") or ""
        if not conmon:
            raise CorralError("conmon is not installed (Debian package conmon)")
    b = req.bundle
    argv = [
        conmon, "--api-version", "1",
        "-c", req.container_id, "-u", req.container_id, "-n", req.name,
        "-r", req.runtime.path, "--runtime-arg", "--root", "--runtime-arg", req.runtime.state_root,
        "-b", b, "-p", os.path.join(b, "pidfile"), "--persist-dir", b,
        "--conmon-pidfile", os.path.join(b, "conmon.pid"),
        "--full-attach", "--socket-dir-path", b,
        "-l", f"k8s-file:{req.log_path}" if req.log else "none", "--log-level", "error", "--no-sync-log",
    ]  # fmt: skip
    if req.tty:
        argv.append("-t")
    if req.stdin:
        argv.append("-i")
        if req.keep_stdin:
            argv.append("--leave-stdin-open")
    if req.exit_command:
        argv += ["--exit-command", req.exit_command[0]]
        for arg in req.exit_command[1:]:
            argv += ["--exit-command-arg", arg]
    read_end, write_end = os.pipe()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("_OCI_")}
        env["_OCI_SYNCPIPE"] = str(_SYNC_FD)
        # posix_spawn, not subprocess (~1 ms of imports): every other fd of ours is close-on-exec.
        # conmon runs in the bundle dir: conmon 2.1 also drops its `oom` marker in its working
        # directory, not only in the bundle, and must not litter the caller's.
        here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(b)
            pid = os.posix_spawn(conmon, argv, env, file_actions=[
                (os.POSIX_SPAWN_DUP2, write_end, _SYNC_FD),  # first (the pipe may be fd 0-2)
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ])
        finally:
            os.fchdir(here)
            os.close(here)
        os.close(write_end)
        write_end = -1
        if while_waiting is not None:
            while_waiting()
        message = _read_sync(read_end)
        os.waitpid(pid, 0)  # conmon's first process exits once the monitor has daemonized
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    pid = int(str(message.get("data", -1)))
    if pid <= 0:
        raise CreateFailed(str(message.get("message") or "the runtime failed to create the container"))
    return pid, conmon_pid(b)


def _read_sync(fd: int) -> dict[str, object]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    if not data.strip():
        return {"data": -1, "message": "conmon exited without reporting the container"}
    try:
        return dict(jsonio.loads(data.splitlines()[0]))
    except ValueError:
        return {"data": -1, "message": data.decode(errors="replace").strip()}


def conmon_pid(bundle: str) -> int:
    try:
        with open(os.path.join(bundle, "conmon.pid"), "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def exit_status(bundle: str) -> tuple[int, bool] | None:
    """(exit code, OOM-killed) once conmon has recorded the exit, else None."""
    try:
        with open(os.path.join(bundle, "exit"), "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    if not text.strip():
        return None  # conmon writes the file atomically, but be safe about an empty read
    return int(text), os.path.exists(os.path.join(bundle, "oom"))


def wait_exit(bundle: str, pid: int, timeout: float | None = None) -> tuple[int, bool] | None:
    """Block until conmon records the exit of the container whose init is `pid`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    _wait_pid(pid, timeout)
    delay = 0.0005
    while True:
        status = exit_status(bundle)
        if status is not None:
            return status
        if not os.path.exists(bundle) or (deadline is not None and time.monotonic() > deadline):
            return None
        if not alive(conmon_pid(bundle)):
            return exit_status(bundle)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _wait_pid(pid: int, timeout: float | None) -> None:
    """Wait for a process that is not our child to exit (pidfd + poll)."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()
