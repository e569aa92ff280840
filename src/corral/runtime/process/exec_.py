"""`exec`: a new process in every namespace and the cgroup of a running container.

main opens the init's namespace files, forks the intermediate (added to the cgroup), which
setns()es into them (user first) and forks the process into the pid namespace. The process
becomes its Process (user, caps, seccomp...) and execs; the pipe's close-on-exec tells main it
worked, an ERROR message that it did not (see protocol.py).
"""

from __future__ import annotations

import os

from corral.runtime.cgroups import warmup
from corral.runtime.container import Container
from corral.runtime.errors import RuntimeFailure, suppress
from corral.runtime.linux import console, namespaces
from corral.runtime.linux import syscalls as sc
from corral.runtime.process import become, protocol
from corral.runtime.process.create import prepare_seccomp, write_pid_file
from corral.runtime.process.init import ERROR_PREFIX
from corral.runtime.record import field, record
from corral.runtime.spec import Process, Spec, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import NoReturn


@record(frozen=True)
class ExecRequest:
    process: Process
    console_socket: str | None = None
    pid_file: str | None = None
    preserve_fds: int = 0
    own_terminal: bool = False
    sub_cgroups: Mapping[str, str] = field(default_factory=dict)  # exec --cgroup


def container_spec(container: Container) -> Spec:
    assert container.state is not None
    return parse(container.state.config, container.state.bundle)


def _namespace_fds(spec: Spec, pid: int) -> list[tuple[str, int]]:
    fds = []
    for ns in namespaces.ordered(spec.linux.namespaces):
        path = f"/proc/{pid}/ns/{namespaces.PROC_NAMES[ns.type]}"
        fds.append((ns.type, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
    return fds


def _process(channel: protocol.Channel, request: ExecRequest, spec: Spec,
             console_fd: int | None) -> NoReturn:
    """The exec'd process, inside the pid namespace."""
    try:
        channel.expect(protocol.PID_RECORDED, "runtime")
        slave = None
        if request.process.terminal:
            assert console_fd is not None
            master, slave = console.open_pty()
            console.send_master(console_fd, master)
            os.close(master)
        if console_fd is not None:
            os.close(console_fd)
        program = become.program(request.process)
        if slave is not None:
            console.become_controlling(slave)
        become.become(request.process, spec.linux.seccomp, preserve_fds=request.preserve_fds)
        os.execve(program.path, program.args, program.env)
    except BaseException as e:
        with suppress(OSError):
            channel.send(protocol.ERROR, message=ERROR_PREFIX + protocol.describe(e))
    os._exit(127)


def _intermediate(channel: protocol.Channel, request: ExecRequest, spec: Spec,
                  ns_fds: list[tuple[str, int]], console_fd: int | None) -> NoReturn:
    try:
        channel.expect(protocol.CGROUP_JOINED, "runtime")
        for kind, fd in ns_fds:
            sc.setns(fd, namespaces.CLONE_FLAGS[kind])
            os.close(fd)
        pid = os.fork()
        if pid == 0:
            _process(channel, request, spec, console_fd)
        channel.send(protocol.INIT_PID, pid=pid)
    except BaseException as e:
        with suppress(OSError):
            channel.send(protocol.ERROR, message=protocol.describe(e))
        os._exit(1)
    os._exit(0)


def _console(request: ExecRequest) -> tuple[int | None, int | None]:
    if not request.process.terminal:
        return None, None
    return console.terminal_channel(request.console_socket, request.own_terminal)


def execute(container: Container, request: ExecRequest) -> tuple[int, int | None]:
    """Start the process; returns (its pid, the pty master when the runtime keeps it)."""
    assert container.state is not None
    spec = container_spec(container)
    manager = container.cgroup()
    ns_fds = _namespace_fds(spec, container.state.pid)
    console_fd, console_keep = _console(request)
    become.preload(request.process, spec.linux.seccomp)
    prepare_seccomp(spec.linux.seccomp, container.root)
    ours, theirs = protocol.pair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        _intermediate(theirs, request, spec, ns_fds, console_fd)
    theirs.close()
    for _, fd in ns_fds:
        os.close(fd)
    if console_fd is not None:
        os.close(console_fd)
    try:
        manager.add(pid, below=request.sub_cgroups)
        warmup.finish()
        ours.send(protocol.CGROUP_JOINED)
        process_pid = int(ours.expect(protocol.INIT_PID, "intermediate")["pid"])
        ours.send(protocol.PID_RECORDED)
        os.waitpid(pid, 0)
        message = ours.receive()  # None: execve closed the pipe, the program runs
        if message is not None and message["type"] == protocol.ERROR:
            with suppress(ChildProcessError):
                os.waitpid(process_pid, 0)
            raise RuntimeFailure(str(message["message"]))
    except BaseException:
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if console_keep is not None:
            os.close(console_keep)
        raise
    finally:
        ours.close()
    if request.pid_file:
        write_pid_file(request.pid_file, process_pid)
    return process_pid, console.take_master(console_keep)
