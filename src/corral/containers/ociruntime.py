"""The OCI runtime, driven through its runc-compatible command line.

corral talks to every runtime through runc's command line (argv, exit code, stderr), with
`--root <runroot>/runtime/<name>` so every runtime keeps its state apart and a reboot (runroot
is volatile) forgets it. crun, runc or any runc-compatible binary is run as a process. The
bundled corral-runtime gets the same argv, but its short verbs (start, kill, delete, pause,
resume, update) run as `corral.runtime.cli.main(argv)` in a forked child of the CLI: a new
interpreter would cost ~10 ms per call on the `run --rm` path. `create` and `exec` still run
the launcher (conmon starts `create`; `exec` becomes the runtime), so the state is the same
whichever way a verb ran, and the CLI and other runtimes stay interchangeable.

The runtime is chosen by `--runtime`, then `CORRAL_RUNTIME`, then `runtime = "..."` in the
`[engine]` table of corral's config file (`CORRAL_CONFIG`, default /etc/corral/corral.toml),
then `DEFAULT`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

from corral.errors import CannotExecute, CommandNotFound, CorralError, InvalidArgument
from corral.records import NamedTuple

TYPE_CHECKING = False  # not typing's: `ps` and `exec` must not import typing (~2 ms)

DEFAULT = "corral-runtime"
CONFIG_FILE = "/etc/corral/corral.toml"
# What corral-runtime's forked verbs import (its verb modules and what they load lazily):
# `preload` brings them in while the CLI waits anyway, so each forked verb starts with them.
_VERB_MODULES = ("corral.runtime.cli", "corral.runtime.flags", "corral.runtime.verbs.start",
                 "corral.runtime.verbs.kill", "corral.runtime.verbs.delete",
                 "corral.runtime.container", "corral.runtime.lifecycle",
                 "corral.runtime.linux.signals", "corral.runtime.cgroups.common")

_NOT_FOUND = r"(?i)not found|no such file or directory"
_CANNOT_EXEC = r"(?i)permission denied|operation not permitted|is a directory|exec format error"


class Runtime(NamedTuple):
    name: str
    path: str
    state_root: str
    bundled: bool = False  # corral's own corral-runtime: verbs may run in a forked child

    def argv(self, *args: str) -> list[str]:
        return [self.path, "--root", self.state_root, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> int:
        """Run one verb; its exit code (with `check`, a failure raises its one-line message)."""
        return self.begin(*args, timeout=timeout).result(check)

    def begin(self, *args: str, timeout: float = 60) -> Call:
        """Start one verb and return at once; `Call.result()` waits for it. stdout goes to
        /dev/null and stderr (the runtime's error line) into a pipe, whichever way it runs."""
        argv = self.argv(*args)
        read_end, write_end = os.pipe()
        try:
            if self.bundled and _single_threaded():
                pid = _fork_main(argv[1:], write_end)
            else:  # posix_spawn, not subprocess (~1 ms of imports): our fds are close-on-exec
                pid = os.posix_spawn(self.path, argv, os.environ, file_actions=[
                    (os.POSIX_SPAWN_DUP2, write_end, 2),
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                ])
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return Call(f"{self.name} {args[0]}", pid, read_end, timeout)

    def preload(self) -> None:
        """Import what the forked verbs (start, kill, delete) need; call it while waiting."""
        if not self.bundled:
            return
        import contextlib

        for name in _VERB_MODULES:
            # a module the runtime's layout no longer has: the child imports what it needs
            with contextlib.suppress(ImportError):
                __import__(name)

    def start(self, cid: str) -> None:
        self.run("start", cid)

    def kill(self, cid: str, signal: str, *, all_processes: bool = False) -> bool:
        """Send `signal`; False when the container is already gone."""
        return self.run("kill", *(["--all"] if all_processes else []), cid, signal, check=False) == 0

    def delete(self, cid: str) -> Call:
        """Start forgetting the container (force: kill what is left); `result(check=False)`
        waits: a container it never knew is fine. The caller may work meanwhile."""
        return self.begin("delete", "--force", cid)

    def pause(self, cid: str) -> None:
        self.run("pause", cid)

    def resume(self, cid: str) -> None:
        self.run("resume", cid)

    def update(self, cid: str, resources_file: str) -> None:
        self.run("update", "--resources", resources_file, cid)


def configured_name(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("CORRAL_RUNTIME")
    if env:
        return env
    config = os.environ.get("CORRAL_CONFIG") or CONFIG_FILE
    if os.path.isfile(config):
        import tomllib

        try:
            with open(config) as f:
                engine = tomllib.loads(f.read()).get("engine", {})
        except (OSError, ValueError) as e:
            raise InvalidArgument(f"reading {config}: {e}") from e
        if isinstance(engine.get("runtime"), str):
            return str(engine["runtime"])
    return DEFAULT


def find(name: str, runroot: str) -> Runtime:
    """The runtime called `name` (a name on PATH, corral-runtime, or a path to a binary)."""
    if "/" in name:
        path: str | None = name if os.access(name, os.X_OK) else None
    else:
        venv_bin = os.path.join(os.path.dirname(sys.executable), name)
        if os.path.exists(venv_bin):
            path = venv_bin
        else:
            import shutil

            path = shutil.which(name)
    if path is None:
        raise InvalidArgument(f"OCI runtime {name!r} not found")
    label = os.path.basename(name)
    bundled = name == DEFAULT and path == os.path.join(os.path.dirname(sys.executable), DEFAULT)
    return Runtime(label, path, os.path.join(runroot, "runtime", label), bundled)


def _single_threaded() -> bool:
    """A fork copies only the calling thread: with others alive, exec. The kernel's count, so
    threads made without `threading` (netns.py's `_thread`) count too."""
    return len(os.listdir("/proc/self/task")) == 1


class Call(NamedTuple):
    """A runtime verb under way: its process and the read end of its stderr."""

    label: str
    pid: int
    stderr: int
    timeout: float

    def result(self, check: bool = True) -> int:
        """Wait for the verb (killed after `timeout` seconds); its exit code."""
        import select

        deadline = time.monotonic() + self.timeout
        chunks = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.stderr], [], [], left)[0]:
                    os.kill(self.pid, 9)
                    os.waitpid(self.pid, 0)
                    raise CorralError(f"{self.label}: no answer after {self.timeout:g} s")
                chunk = os.read(self.stderr, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self.stderr)
        code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        if check and code != 0:
            raise CorralError(f"{self.label}: {error_message(b''.join(chunks).decode(errors='replace'))}")
        return code


def _fork_main(argv: list[str], stderr_fd: int) -> int:
    """`corral-runtime <argv>` as `corral.runtime.cli.main(argv)` in a forked child: the same
    verb, flags and state root as the launcher's, without a new interpreter and its imports."""
    sys.stdout.flush()  # else the child's buffers would repeat what the CLI has not flushed yet
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            _child_stdio(stderr_fd)
            from corral.runtime.cli import main

            code = main(argv)
            sys.stdout.flush()
            sys.stderr.flush()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException as e:
            os.write(2, f"{type(e).__name__}: {e}\n".encode())
        finally:
            os._exit(code)
    return pid


def _child_stdio(stderr_fd: int) -> None:
    """stdin/stdout on /dev/null, stderr into the pipe, and the CLI's Python signal handlers
    (attach's proxies) back to the defaults a fresh runtime process would have."""
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal  # the C module: `signal` builds enums (~1 ms)

    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(stderr_fd, 2)
    os.close(devnull)
    os.close(stderr_fd)
    for signum in range(1, _signal.NSIG):
        handler = _signal.getsignal(signum)
        if callable(handler) and handler is not _signal.default_int_handler:
            _signal.signal(signum, _signal.SIG_DFL)


def error_message(stderr: str) -> str:
    """The runtime's complaint as one line (JSON log lines or plain text, the last one wins)."""
    import json

    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                return str(json.loads(line).get("msg", line))
            except ValueError:
                pass
        return line.removeprefix("Error: ")
    return "unknown error"


def start_error(message: str, args: Sequence[str]) -> CorralError:
    """Docker's mapping of a failed create/exec: 127 not found, 126 cannot execute, else 125."""
    import re

    program = args[0] if args else ""
    message = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    if re.search(_CANNOT_EXEC, message) and "exec" in message:
        return CannotExecute(f"{program}: permission denied: cannot execute ({message})")
    if re.search(_NOT_FOUND, message) and ("exec" in message or "executable" in message or program in message):
        return CommandNotFound(f"{program}: executable file not found in $PATH ({message})")
    return CorralError(message)
