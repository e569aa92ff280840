"""The container's cgroup in every hierarchy of the host, behind one Manager.

One Manager serves v1, v2 and hybrid hosts: it keeps the container's directory in each hierarchy
(`paths`, keyed like runc's state.json: "memory", "cpu,cpuacct", "name=systemd", "" for cgroup2)
and sends each resource to the hierarchy that has its controller: a v1 hierarchy when one has it,
else the cgroup2 one. On a hybrid host the cgroup2 directory is created and joined too, as runc
does, so hugetlb (or any controller left on cgroup2) is honoured.

cgroupsPath follows runc's cgroupfs driver:
    "/a/b"     absolute: /a/b under the root of every hierarchy
    "a/b"      relative: under this process's own cgroup in each v1 (and hybrid cgroup2)
               hierarchy; under the root on a pure cgroup2 host
    absent     "<id>", relative as above (on pure cgroup2: next to this process's own cgroup)
    "x:y:z"    the systemd driver's slice:prefix:name form: refused, --systemd-cgroup is
               unsupported
".." cannot climb out of a hierarchy (the path is cleaned as if rooted, like runc's CleanPath).
"""

from __future__ import annotations

import errno
import os
import posixpath
import time

from corral.runtime.cgroups import devices, v1, v2, validate
from corral.runtime.cgroups.common import (
    CgroupError,
    procs,
    remove_tree,
    set_cpuset,
    set_pids,
    wait_until,
    write,
)
from corral.runtime.cgroups.detect import UNIFIED, Layout, detect
from corral.runtime.errors import suppress
from corral.runtime.linux.signals import SIGKILL

TYPE_CHECKING = False  # typing costs milliseconds (it imports re) on every start
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

_CPUSET_KEYS = ("cpus", "mems")


def _has_values(section: Any) -> bool:
    if isinstance(section, dict):
        return any(value is not None for value in section.values())
    return bool(section)


class Manager:
    """The cgroup of one container; see the module docstring for paths and routing."""

    def __init__(self, layout: Layout, paths: Mapping[str, str], path: str) -> None:
        self.layout = layout
        self.paths = dict(paths)
        self.path = path

    # ---------------------------------------------------------------- where things live

    def _v1_dir(self, controller: str) -> str | None:
        hierarchy = self.layout.v1_for(controller)
        return self.paths.get(hierarchy.key) if hierarchy is not None else None

    def _v2_dir(self, controller: str | None = None) -> str | None:
        unified = self.layout.unified
        if unified is None or UNIFIED not in self.paths:
            return None
        if controller is not None and controller not in unified.controllers:
            return None
        return self.paths[UNIFIED]

    def _route(self, what: str, controller: str, set_v1: Callable[[str, Any], None],
               set_v2: Callable[[str, Any], None], value: Any) -> None:
        """Apply one resource section where its controller is; error naming it when nowhere."""
        directory = self._v1_dir(controller)
        if directory is not None:
            set_v1(directory, value)
            return
        v2_controller = "io" if controller == "blkio" else controller
        directory = self._v2_dir(v2_controller)
        if directory is not None:
            if self.layout.v1 and self.layout.unified is not None:  # hybrid: see create()
                v2.enable_controllers(self.layout.unified.mountpoint, directory, v2_controller)
            set_v2(directory, value)
            return
        where = "to this rootless runtime" if _rootless() else "on this host"
        raise CgroupError(f"{what}: the {controller} cgroup controller is not available {where}")

    # ---------------------------------------------------------------- lifecycle

    def leave_out_unwritable(self) -> None:
        """runc's rootless rule, applied before anything is made (mount_sources() depends on
        it): a hierarchy where this runtime may not make the container's cgroup is left out; a
        limit that needs it then fails in create(), naming the controller. Real root keeps all."""
        if not _rootless():
            return
        for key, directory in list(self.paths.items()):
            existing = directory
            while not os.path.isdir(existing):
                existing = os.path.dirname(existing)
            if existing != directory and not os.access(existing, os.W_OK | os.X_OK):
                del self.paths[key]

    def create(self, resources: Mapping[str, Any] | None) -> None:
        """mkdir the cgroup in every hierarchy and set the limits; undo everything on failure."""
        validate.check(resources)
        created: list[str] = []
        try:
            for key, directory in list(self.paths.items()):
                try:
                    top = _makedirs(directory)
                except PermissionError:
                    if not _rootless():
                        raise
                    del self.paths[key]  # as leave_out_unwritable(), which access() misjudged
                    continue
                if top is not None:
                    created.append(top)
                if key == UNIFIED and self.layout.unified is not None and not self.layout.v1:
                    v2.enable_controllers(self.layout.unified.mountpoint, directory)
                # hybrid: like runc, only membership on cgroup2 (a controller enabled there could
                # not be moved to a v1 hierarchy while containers exist); _route enables one
                # controller when a limit needs it
            cpuset = self.layout.v1_for("cpuset")
            if cpuset is not None and cpuset.key in self.paths:
                v1.prepare_cpuset(self.paths[cpuset.key], cpuset.mountpoint)
            if resources:
                self._apply(resources, with_devices=True)
        except OSError as err:
            self._undo(created)
            raise CgroupError(f"cannot create cgroup {err.filename}: {err.strerror}") from None
        except BaseException:
            self._undo(created)
            raise

    def _undo(self, created: list[str]) -> None:
        for directory in reversed(created):
            with suppress(OSError):
                remove_tree(directory)

    def update(self, resources: Mapping[str, Any]) -> None:
        """`corral-runtime update`: set new limits (device rules are fixed at create, as in runc)."""
        validate.check(resources)
        self._apply(resources, with_devices=False)

    def _apply(self, resources: Mapping[str, Any], *, with_devices: bool) -> None:
        memory = resources.get("memory")
        if _has_values(memory):
            self._route("memory", "memory", v1.set_memory, v2.set_memory, memory)
        cpu = resources.get("cpu") or {}
        cpuset = {k: v for k, v in cpu.items() if k in _CPUSET_KEYS}
        cpu = {k: v for k, v in cpu.items() if k not in _CPUSET_KEYS}
        if _has_values(cpu):
            self._route("cpu", "cpu", v1.set_cpu, v2.set_cpu, cpu)
        if _has_values(cpuset):
            self._route("cpu.cpus/mems", "cpuset", set_cpuset, set_cpuset, cpuset)
        pids = resources.get("pids")
        if _has_values(pids):
            self._route("pids", "pids", set_pids, set_pids, pids)
        block_io = resources.get("blockIO")
        if _has_values(block_io):
            self._route("blockIO", "blkio", v1.set_blkio, v2.set_io, block_io)
        hugepages = resources.get("hugepageLimits")
        if hugepages:
            self._route("hugepageLimits", "hugetlb", v1.set_hugetlb, v2.set_hugetlb, hugepages)
        rdma = resources.get("rdma")
        if rdma:
            self._route("rdma", "rdma", _set_rdma, _set_rdma, rdma)
        network = resources.get("network") or {}
        if _has_values(network):
            self._set_network(network)
        unified = resources.get("unified")
        if unified:
            directory = self._v2_dir()
            if directory is None:
                raise CgroupError("unified: cgroup v2 is not available on this host")
            v2.set_unified(directory, unified)
        rules = resources.get("devices")
        if with_devices and rules is not None:
            self._set_devices(devices.with_defaults(rules))

    def _set_devices(self, rules: list[devices.Rule]) -> None:
        """v1: the devices controller's lists; v2: an eBPF program on the cgroup2 directory."""
        directory = self._v1_dir("devices")
        if directory is not None:
            v1.set_devices(directory, rules)
            return
        directory = self._v2_dir()
        if directory is None or self.layout.v1:
            raise CgroupError("devices: the devices cgroup controller is not mounted")
        from corral.runtime.cgroups import ebpf  # cgroup2-only hosts

        try:
            ebpf.attach(directory, rules)
        except CgroupError:
            if not _rootless():  # runc's rootless containers go without a device filter too
                raise

    def _set_network(self, network: Mapping[str, Any]) -> None:
        directories = {}
        for controller in ("net_cls", "net_prio"):
            directory = self._v1_dir(controller)
            if directory is not None:
                directories[controller] = directory
        if network.get("classID") is not None and "net_cls" not in directories:
            raise CgroupError("network.classID: the net_cls cgroup controller is not available")
        if network.get("priorities") and "net_prio" not in directories:
            raise CgroupError("network.priorities: the net_prio cgroup controller is not available")
        v1.set_network(directories, network)

    def add(self, pid: int, *, below: Mapping[str, str] | None = None) -> None:
        """Move `pid` into the container's cgroup in every hierarchy or, for `exec --cgroup`
        (runc's), into existing sub-cgroups of it: `below` maps a controller, or "" for every
        hierarchy, to a path under the container's cgroup (cgroup v2 takes only "")."""
        for directory in self._targets(below or {}).values():
            write(directory, "cgroup.procs", pid)

    def _targets(self, below: Mapping[str, str]) -> dict[str, str]:
        known = {c for key in self.paths if key != UNIFIED for c in key.split(",")}
        for controller in below:
            if controller and controller not in known:
                raise CgroupError(f"exec --cgroup: no cgroup v1 hierarchy has controller "
                                  f"{controller!r}")
        targets = dict(self.paths)
        for key, directory in self.paths.items():
            controllers = key.split(",") if key != UNIFIED else []
            sub = next((below[c] for c in controllers if c in below), below.get(""))
            if sub is None:
                continue
            inner = posixpath.normpath("/" + sub).lstrip("/")  # no way out of the container's
            targets[key] = posixpath.join(directory, inner) if inner else directory
            if not os.path.isdir(targets[key]):
                raise CgroupError(f"exec --cgroup: {targets[key]} does not exist")
        return targets

    def exists(self) -> bool:
        return any(os.path.isdir(directory) for directory in self.paths.values())

    def _procs_dir(self) -> str | None:
        for controller in ("freezer", "pids", "memory", "cpu", "devices"):
            directory = self._v1_dir(controller)
            if directory is not None and os.path.isdir(directory):
                return directory
        directory = self._v2_dir()
        if directory is not None and os.path.isdir(directory):
            return directory
        return next((d for d in self.paths.values() if os.path.isdir(d)), None)

    def pids(self) -> list[int]:
        """Every process of the container (cgroup.procs of the cgroup and its descendants)."""
        directory = self._procs_dir()
        return sorted(set(procs(directory))) if directory is not None else []

    # ---------------------------------------------------------------- freezer

    def _set_frozen(self, frozen: bool) -> None:
        directory = self._v1_dir("freezer")
        if directory is not None:
            v1.freeze(directory, frozen)
            return
        directory = self._v2_dir()
        if directory is None:
            raise CgroupError("freezer: no freezer cgroup controller and no cgroup v2 on this host")
        v2.freeze(directory, frozen)

    def freeze(self) -> None:
        """Freeze every process of the container; returns once the kernel reports FROZEN."""
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def frozen(self) -> bool:
        directory = self._v1_dir("freezer")
        if directory is not None:
            return v1.is_frozen(directory)
        directory = self._v2_dir()
        return directory is not None and v2.is_frozen(directory)

    # ---------------------------------------------------------------- accounting

    def oom_kill_count(self) -> int:
        """How many processes of the container the kernel's OOM killer has killed."""
        directory = self._v1_dir("memory")
        if directory is not None:
            return v1.oom_kill_count(directory)
        directory = self._v2_dir("memory")
        return v2.oom_kill_count(directory) if directory is not None else 0

    def stats(self) -> dict[str, Any]:
        """runc's `events --stats` data: cpu, memory, pids, blkio, hugetlb (absent parts empty)."""
        result: dict[str, Any] = {"cpu": {}, "memory": {}, "pids": {}, "blkio": {}, "hugetlb": {}}
        v2_dir = self._v2_dir()
        cpu_dir, cpuacct_dir = self._v1_dir("cpu"), self._v1_dir("cpuacct")
        if cpu_dir or cpuacct_dir:
            result["cpu"] = v1.cpu_stats(cpu_dir, cpuacct_dir)
        elif v2_dir is not None:
            result["cpu"] = v2.cpu_stats(v2_dir)
        parts: tuple[tuple[str, str, Callable[[str], Any], Callable[[str], Any]], ...] = (
            ("memory", "memory", v1.memory_stats, v2.memory_stats),
            ("pids", "pids", v1.pids_stats, v2.pids_stats),
            ("blkio", "blkio", v1.blkio_stats, v2.io_stats),
            ("hugetlb", "hugetlb", v1.hugetlb_stats, v2.hugetlb_stats),
        )
        for key, controller, from_v1, from_v2 in parts:
            directory = self._v1_dir(controller)
            if directory is not None and os.path.isdir(directory):
                result[key] = from_v1(directory)
                continue
            directory = self._v2_dir("io" if controller == "blkio" else controller)
            if directory is not None and os.path.isdir(directory):
                result[key] = from_v2(directory)
        return result

    # ---------------------------------------------------------------- teardown

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in the cgroup (frozen first so none can fork) and wait for them."""
        if not self.exists():
            return
        v2_dir = self._v2_dir()
        if v2_dir is not None and os.path.isdir(v2_dir):
            v2.kill(v2_dir)
        # v1 (and processes that joined only the v1 hierarchies of a hybrid host). An empty
        # cgroup stays empty (no member left to fork), so a stopped container skips the freezer.
        if not self.pids():
            return
        freezer = self._v1_dir("freezer")
        if freezer is not None and not os.path.isdir(freezer):
            freezer = None
        if freezer is not None:
            v1.freeze(freezer, True)
        for pid in self.pids():
            with suppress(ProcessLookupError):
                os.kill(pid, SIGKILL)
        if freezer is not None:
            v1.freeze(freezer, False)
        wait_until(lambda: not self.pids(), timeout, f"cgroup {self.path}: processes survived SIGKILL")

    def destroy(self, *, kill_leftovers: bool = False) -> None:
        """rmdir the cgroup everywhere, retrying while the kernel still counts exiting tasks.

        With kill_leftovers, processes still inside are killed first; without it, a cgroup that
        still has processes is an error naming them.
        """
        if kill_leftovers:
            self.kill_all()
        for directory in self.paths.values():
            delay = 0.01
            for attempt in range(6):
                try:
                    remove_tree(directory)
                    break
                except OSError as err:
                    if err.errno != errno.EBUSY or attempt == 5:
                        left = procs(directory)
                        detail = f" (processes {left} still inside)" if left else ""
                        raise CgroupError(
                            f"cannot remove cgroup {directory}: {err.strerror}{detail}"
                        ) from None
                    time.sleep(delay)
                    delay *= 2

    def mount_sources(self, *, cgroupns: bool = True) -> list[tuple[str, str, str]]:
        """How to show the container its cgroups at /sys/fs/cgroup, in mount order.

        Each entry is (fstype, source, target), target relative to /sys/fs/cgroup ("" is
        /sys/fs/cgroup itself):
            ("tmpfs", "tmpfs", "")            v1/hybrid: a tmpfs to hold the hierarchies
            ("cgroup", "cpu,cpuacct", "cpu,cpuacct")   mount -t cgroup -o <source> (cgroupns)
            ("cgroup2", "cgroup2", "" or "unified")    mount -t cgroup2 (cgroupns)
            ("bind", "/sys/fs/cgroup/memory/x", "memory")  without a cgroup namespace: bind the
                                              container's own directory (recursive bind)
            ("symlink", "cpu,cpuacct", "cpu")  a symlink named target pointing to source
        """
        entries: list[tuple[str, str, str]] = []
        if self.layout.v1:
            entries.append(("tmpfs", "tmpfs", ""))
        for hierarchy in self.layout.v1:
            target = os.path.basename(hierarchy.mountpoint)
            if cgroupns:
                entries.append(("cgroup", hierarchy.key, target))
            else:
                # a hierarchy a rootless runtime left out: bind the caller's own cgroup, as runc
                own = self.paths.get(hierarchy.key) or hierarchy.directory(hierarchy.own)
                entries.append(("bind", own, target))
            for controller in hierarchy.controllers:
                if "," in target and not controller.startswith("name="):
                    entries.append(("symlink", target, controller))
        unified = self.layout.unified
        if unified is not None and UNIFIED in self.paths:
            target = "" if not self.layout.v1 else os.path.basename(unified.mountpoint)
            if cgroupns:
                entries.append(("cgroup2", "cgroup2", target))
            else:
                entries.append(("bind", self.paths[UNIFIED], target))
        return entries


def _makedirs(directory: str) -> str | None:
    """mkdir -p; returns the topmost directory it created (None if all existed), for undoing."""
    missing = directory
    while not os.path.isdir(os.path.dirname(missing)):
        missing = os.path.dirname(missing)
    if os.path.isdir(directory):
        return None
    os.makedirs(directory)
    return missing


def _rootless() -> bool:
    """Not real root: another uid, or root of a user namespace (podman's rootless runtime)."""
    if os.geteuid() != 0:
        return True
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def _set_rdma(directory: str, rdma: Mapping[str, Mapping[str, int]]) -> None:
    for device, limits in rdma.items():
        fields = [f"{key}={limits[name]}" for name, key in
                  (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")) if limits.get(name) is not None]
        if fields:
            write(directory, "rdma.max", f"{device} {' '.join(fields)}")


def _is_systemd_form(cgroups_path: str) -> bool:
    return not cgroups_path.startswith("/") and cgroups_path.count(":") == 2 and "/" not in cgroups_path


def open_manager(cgroups_path: str | None, container_id: str, *,
                 layout: Layout | None = None) -> Manager:
    """The Manager for config.json's `linux.cgroupsPath` (see the module docstring).

    `layout` defaults to this host's (detect()); tests pass other hosts' layouts.
    """
    layout = layout or detect()
    if not layout.v1 and layout.unified is None:
        raise CgroupError("no cgroup hierarchy is mounted (looked in /proc/self/mountinfo)")
    if cgroups_path and _is_systemd_form(cgroups_path):
        raise CgroupError(f"cgroupsPath {cgroups_path!r} is in systemd's slice:prefix:name form; "
                          "corral-runtime supports only the cgroupfs driver (no --systemd-cgroup)")
    absolute = bool(cgroups_path) and str(cgroups_path).startswith("/")
    inner = posixpath.normpath("/" + (cgroups_path or container_id).lstrip("/"))
    if inner == "/":
        raise CgroupError(f"cgroupsPath {cgroups_path!r} names the root cgroup")
    paths: dict[str, str] = {}
    display = inner
    for hierarchy in layout.v1:
        full = inner if absolute else posixpath.join(hierarchy.own, inner.lstrip("/"))
        paths[hierarchy.key] = hierarchy.directory(full)
        if hierarchy.key == "memory" or display == inner:
            display = full
    unified = layout.unified
    if unified is not None:
        if absolute or (layout.mode == "v2" and cgroups_path):
            full = inner
        elif layout.mode == "v2":  # runc's fs2 default: a sibling of our own (busy) cgroup
            full = posixpath.join(posixpath.dirname(unified.own), inner.lstrip("/"))
        else:
            full = posixpath.join(unified.own, inner.lstrip("/"))
        paths[UNIFIED] = unified.directory(full)
        if layout.mode == "v2":
            display = full
    return Manager(layout, paths, display)


def reopen(paths: Mapping[str, str], path: str = "") -> Manager:
    """The Manager of an existing container from the `paths` saved in its state."""
    layout = detect()
    mounts = [h.mountpoint for h in layout.v1] + ([layout.unified.mountpoint] if layout.unified else [])
    for directory in paths.values():
        if not any(directory.startswith(m + "/") for m in mounts):
            raise CgroupError(f"cgroup path {directory} is not inside a mounted cgroup hierarchy")
    return Manager(layout, paths, path)

