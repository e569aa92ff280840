"""The container's init (the right-hand column of protocol.py): runs in the new namespaces,
builds the root, becomes the container's process, waits on exec.fifo, and execs the program."""

from __future__ import annotations

import os

from corral.runtime import hooks
from corral.runtime.linux import console, devices, inroot, mounts, rootfs
from corral.runtime.linux import syscalls as sc
from corral.runtime.process import become, protocol
from corral.runtime.process.protocol import InitOptions
from corral.runtime.spec import Mount, Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

ERROR_PREFIX = "unable to start container process: "


class CgroupGate:
    """init's wait for main to make its cgroup and move it in (PID_RECORDED), passed once,
    before the first thing that needs the cgroup: a cgroup mount, a new cgroup namespace (its
    root is the cgroup init is in when it unshares), at the latest before the hooks."""

    def __init__(self, channel: protocol.Channel, spec: Spec) -> None:
        self.channel = channel
        cgroupns = spec.linux.namespace("cgroup")
        self.new_cgroupns = cgroupns is not None and cgroupns.path is None
        self.passed = False

    def wait(self) -> None:
        if self.passed:
            return
        self.channel.expect(protocol.PID_RECORDED, "runtime")
        if self.new_cgroupns:
            sc.unshare(sc.CLONE_NEWCGROUP)
        self.passed = True


def _cgroup_mounter(sources: tuple[tuple[str, str, str], ...], gate: CgroupGate) -> Any:
    """Mount `type: cgroup` as the cgroups Manager described it for this host's layout."""

    def mount_cgroup(m: Mount, opts: mounts.Options, rootfd: int) -> None:
        gate.wait()
        flags = opts.flags
        base = m.destination.rstrip("/")
        for fstype, source, target in sources:
            dest = f"{base}/{target}" if target else base
            if fstype == "symlink":
                dirfd, name = inroot.parent_dir(rootfd, dest)
                try:
                    os.symlink(source, name, dir_fd=dirfd)
                finally:
                    os.close(dirfd)
                continue
            if fstype == "bind":
                bind_opts = mounts.Options(flags | sc.MS_BIND | sc.MS_REC, (), "")
                mounts.bind(source, rootfd, dest, bind_opts, in_userns=False)
                continue
            fd = inroot.ensure_dir(rootfd, dest)
            try:
                target_path = inroot.proc_path(fd)
                if fstype == "tmpfs":
                    sc.mount("tmpfs", target_path, "tmpfs", flags & ~sc.MS_RDONLY, "mode=755")
                else:
                    data = source if fstype == "cgroup" else None
                    sc.mount("cgroup", target_path, fstype, flags, data)
            finally:
                os.close(fd)
        if flags & sc.MS_RDONLY:  # the tmpfs holding the hierarchies, once filled
            fd = inroot.open_path(rootfd, base)
            try:
                mounts.remount_bind(inroot.proc_path(fd), flags, in_userns=False)
            finally:
                os.close(fd)

    return mount_cgroup


def _build_root(spec: Spec, opts: InitOptions, gate: CgroupGate) -> None:
    """Everything done while the host's filesystem is still visible (before pivot_root)."""
    assert spec.process is not None
    in_userns = spec.linux.namespace("user") is not None
    rootfd = rootfs.prepare(spec.root.path, spec.linux.rootfs_propagation)
    try:
        mounts.mount_all(spec.mounts, rootfd, in_userns=in_userns,
                         cgroup_mount=_cgroup_mounter(opts.cgroup_mounts, gate))
        dev_bound = any(m.destination.rstrip("/") == "/dev" and mounts.is_bind(m)
                        for m in spec.mounts)
        devices.create(rootfd, spec.linux.devices, in_userns=in_userns,
                       default_devices=not dev_bound)
        os.close(inroot.ensure_dir(rootfd, spec.process.cwd))
    finally:
        os.close(rootfd)


def _finish_root(spec: Spec, opts: InitOptions) -> int | None:
    """After pivot_root: console, sysctls, names, read-only and masked paths, read-only root.
    Returns the pty slave when the process has a terminal."""
    in_userns = spec.linux.namespace("user") is not None
    slave = None
    assert spec.process is not None
    if spec.process.terminal:
        if opts.console_fd is None:
            raise OSError("process.terminal needs a console socket")
        master, slave = console.open_pty()
        if spec.process.console_size is not None:
            console.set_size(master, *spec.process.console_size)
        console.send_master(opts.console_fd, master)
        os.close(master)
        console.mount_console(slave)
    if opts.console_fd is not None:
        os.close(opts.console_fd)
    for key, value in spec.linux.sysctl.items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)
    if spec.hostname:
        sc.sethostname(spec.hostname)
    if spec.domainname:
        sc.setdomainname(spec.domainname)
    rootfs.make_readonly(spec.linux.readonly_paths, in_userns=in_userns)
    rootfs.mask(spec.linux.masked_paths)
    if spec.root.readonly:
        rootfs.readonly_root(in_userns=in_userns)
    return slave


def _setup(channel: protocol.Channel, spec: Spec,
           opts: InitOptions) -> tuple[become.Program, dict[str, Any]]:
    assert spec.process is not None
    if spec.process.oom_score_adj is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(spec.process.oom_score_adj))
    gate = CgroupGate(channel, spec)
    _build_root(spec, opts, gate)
    gate.wait()
    channel.send(protocol.RUN_HOOKS)
    state = channel.expect(protocol.HOOKS_DONE, "runtime")["state"]
    hooks.run("createContainer", spec.hooks, state)
    if opts.no_pivot:
        rootfs.chroot(spec.root.path)
    else:
        rootfs.pivot(spec.root.path)
    slave = _finish_root(spec, opts)
    program = become.program(spec.process)
    if slave is not None:
        console.become_controlling(slave)
    notify_fd = become.become(spec.process, spec.linux.seccomp, preserve_fds=opts.preserve_fds)
    if opts.notify_socket is not None:
        if notify_fd is not None:  # to main, which hands it to the agent at listenerPath
            console.send_fd(opts.notify_socket, notify_fd, b"seccompFd")
            os.close(notify_fd)
        os.close(opts.notify_socket)
    return program, state


def _wait_for_start(fifo_fd: int) -> None:
    """Blocks until `start` opens the fifo for reading (the rendezvous), then says "0"."""
    fd = os.open(inroot.proc_path(fifo_fd), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
        os.close(fifo_fd)


def run(channel: protocol.Channel, spec: Spec, opts: InitOptions) -> NoReturn:
    """The init's whole life; never returns (execs the program or exits)."""
    try:
        program, state = _setup(channel, spec, opts)
    except BaseException as e:
        channel.send(protocol.ERROR, message=ERROR_PREFIX + protocol.describe(e))
        os._exit(1)
    try:
        channel.send(protocol.READY)
        channel.close()
        _wait_for_start(opts.fifo_fd)
        hooks.run("startContainer", spec.hooks, {**state, "status": "running"})
        os.execve(program.path, program.args, program.env)
    except BaseException as e:
        os.write(2, f"{ERROR_PREFIX}{protocol.describe(e)}\n".encode())
    os._exit(127)
