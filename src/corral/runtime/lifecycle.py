"""start, kill and delete of an existing container (the verbs parse flags and call these)."""

from __future__ import annotations

import os
import select
import time

from corral.runtime.container import Container, Status, process_start_time
from corral.runtime.errors import InvalidState, RuntimeFailure
from corral.runtime.log import Logger


def start(container: Container, log: Logger) -> None:
    """Open exec.fifo for reading: init's blocked open returns, it writes "0" and execs."""
    status = container.status()
    if status is Status.RUNNING or status is Status.PAUSED:
        raise InvalidState("cannot start an already running container")
    if status is Status.STOPPED:
        raise InvalidState("cannot start a container that has stopped")
    container.require(status.can_start(), "start")
    fd = os.open(container.fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        while True:
            readable, _, _ = select.select([fd], [], [], 0.05)
            if readable:
                if os.read(fd, 1) != b"0":
                    raise InvalidState("cannot start an already running container")
                break
            if not container.alive():
                raise RuntimeFailure("container init exited before start")
    finally:
        os.close(fd)
    try:  # noqa: SIM105 (contextlib stays off the start path)
        os.unlink(container.fifo_path)
    except FileNotFoundError:  # a concurrent start
        pass
    _run_hooks(container, "poststart", Status.RUNNING, log)


def _run_hooks(container: Container, kind: str, status: Status, log: Logger) -> None:
    """poststart/poststop, whose failures are warnings; nothing is imported without hooks."""
    assert container.state is not None
    if not (container.state.config.get("hooks") or {}).get(kind):
        return
    from corral.runtime import hooks
    from corral.runtime.spec import parse

    spec = parse(container.state.config, container.state.bundle)
    hooks.run_logged(kind, spec.hooks, container.oci_state(status), log.warning)


def signal_quietly(pid: int, signum: int) -> None:
    """kill(2), where a process that has just exited is not an error."""
    try:  # noqa: SIM105
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def parse_signal(text: str) -> int:
    """"9", "KILL", "SIGKILL", "kill" -> 9 (runc accepts all of these)."""
    import signal

    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise RuntimeFailure(f"unknown signal {text!r}") from None


def kill(container: Container, signum: int, *, all_processes: bool) -> None:
    if all_processes:
        # Whatever is left in the cgroup; nothing left is no error (runc, crun): podman and
        # containerd's shim send `kill --all` to containers whose init already exited.
        for pid in container.cgroup().pids():
            signal_quietly(pid, signum)
        return
    if not container.status().can_kill():
        raise InvalidState("container not running")
    assert container.state is not None
    os.kill(container.state.pid, signum)


def wait_gone(pid: int, start_time: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while process_start_time(pid) == start_time:
        try:  # noqa: SIM105
            os.waitpid(pid, os.WNOHANG)  # our child after `run`: reap it
        except ChildProcessError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"container init {pid} did not exit")
        time.sleep(0.002)


def delete(container: Container, *, force: bool, log: Logger) -> None:
    """Remove a stopped (or created) container; with force, kill it first."""
    from corral.runtime.cgroups.common import remove_if_empty  # here: `start` needs neither
    from corral.runtime.linux.signals import SIGKILL

    status = container.status()
    state = container.state
    if state is None:  # create died before writing state.json
        container.remove_dir()
        return
    if not status.can_delete() and not force:
        raise InvalidState(f"cannot delete container {container.id} that is not stopped: "
                           f"{status.value}")
    if status is Status.STOPPED and remove_if_empty(state.cgroup_paths.values()):
        pass  # nothing was left in the cgroup: no Manager, no look at the host's layout
    else:
        manager = container.cgroup()
        if status is not Status.STOPPED:
            manager.kill_all()
            signal_quietly(state.pid, SIGKILL)
            wait_gone(state.pid, state.start_time)
        manager.destroy(kill_leftovers=True)
    container.remove_dir()
    _run_hooks(container, "poststop", Status.STOPPED, log)
