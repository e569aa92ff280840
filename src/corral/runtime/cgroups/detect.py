"""Which cgroup layout the host has: v1, v2 (unified) or hybrid, read from /proc/self.

    v1      every controller is a cgroup v1 hierarchy (`cgroup` mounts under /sys/fs/cgroup)
    v2      /sys/fs/cgroup is one cgroup2 mount
    hybrid  v1 hierarchies, plus a cgroup2 mount (usually /sys/fs/cgroup/unified) that holds the
            controllers no v1 hierarchy took (often none, sometimes hugetlb)

A Hierarchy records where it is mounted, which part of it the mount shows, and this process's
own cgroup in it: relative cgroupsPaths are resolved against that, as runc does.
"""

from __future__ import annotations

import os

UNIFIED = ""  # key of the cgroup2 hierarchy, as in runc's paths map


class Hierarchy:
    """One mounted cgroup hierarchy. (Plain classes, not dataclasses: this is on every
    `create`'s import path and a dataclass costs a millisecond to define.)"""

    __slots__ = ("controllers", "key", "mountpoint", "own")

    def __init__(self, key: str, mountpoint: str, controllers: tuple[str, ...], own: str) -> None:
        self.key = key                   # "memory", "cpu,cpuacct", "name=systemd"; UNIFIED for v2
        self.mountpoint = mountpoint     # /sys/fs/cgroup/memory
        self.controllers = controllers   # v1: the mount's subsystems; v2: the root's controllers
        self.own = own                   # this process's cgroup, relative to the mount ("/" top)

    def __repr__(self) -> str:
        return f"Hierarchy({self.key!r}, {self.mountpoint!r}, {self.controllers!r}, {self.own!r})"

    def directory(self, inner: str) -> str:
        """The directory of cgroup `inner` ("/a/b", relative to the hierarchy's root)."""
        return os.path.join(self.mountpoint, inner.lstrip("/")).rstrip("/")


class Layout:
    """Every cgroup hierarchy of the host: the v1 ones and the cgroup2 one (if mounted)."""

    __slots__ = ("unified", "v1")

    def __init__(self, v1: tuple[Hierarchy, ...], unified: Hierarchy | None) -> None:
        self.v1 = v1
        self.unified = unified

    @property
    def mode(self) -> str:
        """"v1", "v2" or "hybrid"."""
        if not self.v1:
            return "v2"
        return "hybrid" if self.unified is not None else "v1"

    def v1_for(self, controller: str) -> Hierarchy | None:
        """The v1 hierarchy that has `controller`, if any."""
        for hierarchy in self.v1:
            if controller in hierarchy.controllers:
                return hierarchy
        return None


def _own_cgroups() -> dict[str, str]:
    """/proc/self/cgroup as {controllers-field: path}; the cgroup2 line under UNIFIED."""
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            hier_id, controllers, path = line.rstrip("\n").split(":", 2)
            own[UNIFIED if hier_id == "0" else controllers] = path
    return own


def _relative(path: str, mount_root: str) -> str:
    """A /proc/self/cgroup path made relative to a mount that shows `mount_root` of the hierarchy."""
    if mount_root == "/":
        return path
    if path == mount_root or path.startswith(mount_root + "/"):
        return path[len(mount_root):] or "/"
    return "/"  # our cgroup is outside what this mount shows (e.g. a bind mount of a sub-cgroup)


def detect() -> Layout:
    """Read /proc/self/mountinfo and /proc/self/cgroup into a Layout."""
    own = _own_cgroups()
    v1: list[Hierarchy] = []
    unified: Hierarchy | None = None
    seen: set[str] = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, extra = left.split(), right.split()
            if len(fields) < 5 or len(extra) < 3:
                continue
            fstype, mount_root, mountpoint = extra[0], fields[3], _unescape(fields[4])
            if fstype == "cgroup2" and unified is None and UNIFIED in own:
                unified = Hierarchy(UNIFIED, mountpoint, _v2_controllers(mountpoint),
                                    _relative(own[UNIFIED], mount_root))
            elif fstype == "cgroup":
                options = set(extra[2].split(","))
                for key, path in own.items():
                    if key and key not in seen and set(key.split(",")) <= options:
                        seen.add(key)
                        v1.append(Hierarchy(key, mountpoint, tuple(key.split(",")),
                                            _relative(path, mount_root)))
    return Layout(tuple(v1), unified)


def _v2_controllers(mountpoint: str) -> tuple[str, ...]:
    try:
        with open(os.path.join(mountpoint, "cgroup.controllers")) as f:
            return tuple(f.read().split())
    except OSError:
        return ()


def _unescape(path: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    if "\\" not in path:
        return path
    return path.encode().decode("unicode_escape")
