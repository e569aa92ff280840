"""Making a container: the main and intermediate columns of protocol.py.

main validates the bundle, claims the state directory, makes exec.fifo, forks the intermediate
(namespaces; fork into the pid namespace), makes the cgroup and moves init into it, and answers
requests until init is READY; then it records state.json. The cgroup comes after the fork
because its mkdir and the move wait for the kernel's grace period (cgroups/warmup.py): the
intermediate and init set up the namespaces and most of the root meanwhile, and init waits for
PID_RECORDED before anything that needs the cgroup (init.py's CgroupGate). On any failure main
undoes everything: no state directory, cgroup, mount or process is left behind.
"""

from __future__ import annotations

import os
import time

from corral.runtime import hooks
from corral.runtime import spec as spec_mod
from corral.runtime.container import Container, State, process_start_time
from corral.runtime.errors import RuntimeFailure, suppress
from corral.runtime.linux.signals import SIGKILL
from corral.runtime.process import protocol
from corral.runtime.record import record, replace
from corral.runtime.spec import Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, NoReturn

# main imports only what main uses: the container side's modules (process/init.py, linux/*,
# libc through linux/ffi.py) are imported by the intermediate after the fork, while main makes
# the cgroup, and init inherits them (it needs them all before pivot_root: become.preload)


SECCOMP_CACHE = ".seccomp-cache"  # compiled profiles, under --root (not a container id: leading dot)


@record(frozen=True)
class CreateRequest:
    root: str
    container_id: str
    bundle: str
    console_socket: str | None = None
    pid_file: str | None = None
    no_pivot: bool = False
    preserve_fds: int = 0
    own_terminal: bool = False  # `run -t` without a socket: the runtime keeps the pty master


@record
class Created:
    container: Container
    console_master: int | None  # set for own_terminal


def rfc3339_now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def write_pid_file(path: str, pid: int) -> None:
    """Atomically, as runc does (conmon polls for it)."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def with_listen_fds(spec: Spec, preserve_fds: int) -> tuple[Spec, int]:
    """systemd socket activation (LISTEN_FDS) passes through, as with runc."""
    listen = os.environ.get("LISTEN_FDS", "")
    if not listen.isdigit() or int(listen) == 0 or spec.process is None:
        return spec, preserve_fds
    env = (*spec.process.env, f"LISTEN_FDS={listen}", "LISTEN_PID=1")
    process = replace(spec.process, env=env)
    return replace(spec, process=process), preserve_fds + int(listen)


def _console_fds(spec: Spec, req: CreateRequest) -> tuple[int | None, int | None]:
    """(fd init sends the master on, fd main keeps to receive it)."""
    assert spec.process is not None
    if not spec.process.terminal:
        return None, None
    from corral.runtime.linux import console

    return console.terminal_channel(req.console_socket, req.own_terminal)


def prepare_seccomp(seccomp: Mapping[str, Any] | None, root: str) -> None:
    """Compile the profile before the fork (the BPF is cached under --root): the container's
    process installs it with one seccomp(2), without libseccomp."""
    if seccomp is not None:
        from corral.runtime.linux import seccomp as seccomp_mod

        seccomp_mod.prepare(seccomp, cache_dir=os.path.join(root, SECCOMP_CACHE))


def _notify_sockets(spec: Spec) -> tuple[int | None, int | None]:
    """(main's end, init's end) for the seccomp notify fd when a listenerPath is set."""
    if not (spec.linux.seccomp or {}).get("listenerPath"):
        return None, None
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return ours.detach(), theirs.detach()


def _pass_notify_fd(spec: Spec, sock_fd: int, state: dict[str, Any]) -> None:
    """runc's way: init's notify fd goes to the agent at linux.seccomp.listenerPath."""
    from corral.runtime.linux import console, seccomp

    assert spec.linux.seccomp is not None
    try:
        fd = console.receive_fd(sock_fd)
    except OSError:  # listenerPath without SCMP_ACT_NOTIFY rules: no fd, nothing to pass
        return
    finally:
        os.close(sock_fd)
    try:
        seccomp.send_listener(str(spec.linux.seccomp["listenerPath"]), fd, pid=int(state["pid"]),
                              state=state,
                              metadata=str(spec.linux.seccomp.get("listenerMetadata") or ""))
    finally:
        os.close(fd)


def _intermediate(channel: protocol.Channel, spec: Spec, opts: protocol.InitOptions) -> NoReturn:
    """Join and make the namespaces, then fork init into them (pid namespace). A new cgroup
    namespace is init's to make, once it is in its cgroup."""
    try:
        # Everything the container side will need is imported here, before the first setns or
        # unshare: as root of a user namespace the process may no longer read the install.
        from corral.runtime.linux import namespaces, syscalls
        from corral.runtime.process import become, init

        assert spec.process is not None
        become.preload(spec.process, spec.linux.seccomp)
        for ns in namespaces.ordered(spec.linux.namespaces):
            if ns.path is not None:
                namespaces.join(ns.type, ns.path)
        user = spec.linux.namespace("user")
        if user is not None and user.path is None:
            syscalls.unshare(syscalls.CLONE_NEWUSER)
            channel.send(protocol.MAP_IDS)
            channel.expect(protocol.IDS_MAPPED, "runtime")
        if user is not None:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        flags = namespaces.new_flags(spec.linux.namespaces, exclude=("user", "cgroup"))
        if flags:
            syscalls.unshare(flags)
        if spec.linux.time_offsets:
            namespaces.set_time_offsets(spec.linux.time_offsets)
        pid = os.fork()
        if pid == 0:
            init.run(channel, spec, opts)
        channel.send(protocol.INIT_PID, pid=pid)
    except BaseException as e:
        with suppress(OSError):
            channel.send(protocol.ERROR, message=protocol.describe(e))
        os._exit(1)
    os._exit(0)


def _stop(pid: int) -> None:
    """Kill a half-made init and wait until it is gone (it may not be our child)."""
    with suppress(ProcessLookupError):
        os.kill(pid, SIGKILL)
    with suppress(ChildProcessError):
        os.waitpid(pid, 0)
        return
    while process_start_time(pid) is not None:
        time.sleep(0.002)


def _abandon(channel: protocol.Channel) -> None:
    """main failed before it recorded init's pid: hang up (the intermediate and init read
    end-of-file and exit) and stop init if the intermediate had forked it."""
    channel.close_writer()
    while (message := channel.receive()) is not None:
        if message["type"] == protocol.INIT_PID:
            _stop(int(message["pid"]))


def _hook_state(container_id: str, spec: Spec, bundle: str, pid: int) -> dict[str, Any]:
    return {"ociVersion": spec.oci_version, "id": container_id, "status": "creating", "pid": pid,
            "bundle": bundle, "annotations": dict(spec.annotations)}


def _fifo(container: Container, spec: Spec) -> int:
    os.mkfifo(container.fifo_path, 0o622)
    os.chmod(container.fifo_path, 0o622)  # not narrowed by the umask: init may not be root
    root_map = next((m for m in spec.linux.uid_mappings if m.container_id == 0), None)
    if root_map is not None:
        gid_map = next((m for m in spec.linux.gid_mappings if m.container_id == 0), None)
        os.chown(container.fifo_path, root_map.host_id, gid_map.host_id if gid_map else -1)
    return os.open(container.fifo_path, os.O_PATH | os.O_CLOEXEC)


def create(req: CreateRequest) -> Created:
    """`create`: returns once init waits on exec.fifo."""
    spec = spec_mod.load(req.bundle)
    spec, preserve_fds = with_listen_fds(spec, req.preserve_fds)
    spec_mod.validate(spec)
    container = Container.reserve(req.root, req.container_id)
    cleanup: list[Any] = [container.remove_dir]
    try:
        return _launch(req, spec, container, preserve_fds, cleanup)
    except BaseException:
        for undo in reversed(cleanup):
            with suppress(Exception):
                undo()
        raise


def _launch(req: CreateRequest, spec: Spec, container: Container, preserve_fds: int,
            cleanup: list[Any]) -> Created:
    from corral.runtime.cgroups import open_manager, warmup

    manager = open_manager(spec.linux.cgroups_path, req.container_id)
    manager.leave_out_unwritable()  # before mount_sources, which init gets at the fork
    fifo_fd = _fifo(container, spec)
    console_fd, console_keep = _console_fds(spec, req)
    prepare_seccomp(spec.linux.seccomp, req.root)
    cgroupns = spec.linux.namespace("cgroup") is not None
    cgroup_mounts = tuple(manager.mount_sources(cgroupns=cgroupns)) \
        if any(m.type == "cgroup" for m in spec.mounts) else ()
    notify_keep, notify_fd = _notify_sockets(spec)
    opts = protocol.InitOptions(req.container_id, fifo_fd, console_fd, req.no_pivot,
                                preserve_fds, notify_fd, cgroup_mounts)
    ours, theirs = protocol.pair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        _intermediate(theirs, spec, opts)
    theirs.close()
    os.close(fifo_fd)
    for fd in (console_fd, notify_fd):
        if fd is not None:
            os.close(fd)
    init_pid = 0
    try:
        user = spec.linux.namespace("user")
        if user is not None and user.path is None:
            ours.expect(protocol.MAP_IDS, "intermediate")
            from corral.runtime.linux import namespaces

            try:
                namespaces.write_id_maps(pid, spec.linux.uid_mappings, spec.linux.gid_mappings)
            except OSError as e:
                raise RuntimeFailure(f"writing uid/gid maps: {protocol.describe(e)}") from None
            ours.send(protocol.IDS_MAPPED)
        manager.create(spec.linux.resources)
        cleanup.append(lambda: manager.destroy(kill_leftovers=True))
        init_pid = int(ours.expect(protocol.INIT_PID, "intermediate")["pid"])
        cleanup.append(lambda: _stop(init_pid))
        manager.add(init_pid)
        warmup.finish()
        ours.send(protocol.PID_RECORDED)
        state = _hook_state(req.container_id, spec, req.bundle, init_pid)
        ours.expect(protocol.RUN_HOOKS, "init")
        hooks.run("prestart", spec.hooks, state)
        hooks.run("createRuntime", spec.hooks, state)
        ours.send(protocol.HOOKS_DONE, state=state)
        ours.expect(protocol.READY, "init")
        if notify_keep is not None:
            _pass_notify_fd(spec, notify_keep, state)
    except BaseException:
        if not init_pid:
            _abandon(ours)
        raise
    finally:
        ours.close()
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)
    start_time = process_start_time(init_pid)
    if start_time is None:
        raise RuntimeFailure("container init exited during create")
    container.save(State(
        id=req.container_id, pid=init_pid, start_time=start_time, bundle=req.bundle,
        rootfs=spec.root.path, created=rfc3339_now(), config=dict(spec.raw),
        cgroup_paths=manager.paths, cgroup_path=manager.path,
        annotations=dict(spec.annotations), owner="",
    ))
    if req.pid_file:
        write_pid_file(req.pid_file, init_pid)
    if console_keep is None:
        return Created(container, None)
    from corral.runtime.linux import console

    return Created(container, console.take_master(console_keep))
