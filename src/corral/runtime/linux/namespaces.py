"""Namespaces: their clone flags and /proc names, joining by path, and uid/gid maps written from
the parent side (directly as root, else through newuidmap/newgidmap)."""

from __future__ import annotations

import os

from corral.runtime.linux import syscalls as sc
from corral.runtime.spec import IdMap, Namespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

CLONE_FLAGS = {
    "user": sc.CLONE_NEWUSER, "mount": sc.CLONE_NEWNS, "pid": sc.CLONE_NEWPID,
    "network": sc.CLONE_NEWNET, "ipc": sc.CLONE_NEWIPC, "uts": sc.CLONE_NEWUTS,
    "cgroup": sc.CLONE_NEWCGROUP, "time": sc.CLONE_NEWTIME,
}
PROC_NAMES = {
    "user": "user", "mount": "mnt", "pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts",
    "cgroup": "cgroup", "time": "time",
}


def ordered(namespaces: tuple[Namespace, ...]) -> list[Namespace]:
    """The user namespace first: it grants the capabilities needed to join or make the rest."""
    return sorted(namespaces, key=lambda ns: ns.type != "user")


def join(kind: str, path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(fd, CLONE_FLAGS[kind])
    except OSError as e:
        raise OSError(e.errno, f"joining {kind} namespace {path}: {e.strerror}") from None
    finally:
        os.close(fd)


def new_flags(namespaces: tuple[Namespace, ...], *, exclude: tuple[str, ...] = ()) -> int:
    flags = 0
    for ns in namespaces:
        if ns.path is None and ns.type not in exclude:
            flags |= CLONE_FLAGS[ns.type]
    return flags


def set_time_offsets(offsets: Mapping[str, tuple[int, int]]) -> None:
    """The clock offsets of the time namespace this process's children will be in: written
    after unshare(CLONE_NEWTIME) and before the first child enters it (time_namespaces(7))."""
    lines = "".join(f"{clock} {secs} {nanosecs}\n" for clock, (secs, nanosecs) in offsets.items())
    fd = os.open("/proc/self/timens_offsets", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)


def _map_lines(maps: tuple[IdMap, ...]) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)


def write_id_maps(pid: int, uid_maps: tuple[IdMap, ...], gid_maps: tuple[IdMap, ...]) -> None:
    """Map ids for the user namespace of `pid`. Root writes the files, and so may anyone who maps
    only their own uid and gid (setgroups denied first, as the kernel requires); other maps need
    the setuid helpers, which check /etc/subuid and /etc/subgid."""
    own = (len(uid_maps) == len(gid_maps) == 1 and uid_maps[0].size == gid_maps[0].size == 1
           and uid_maps[0].host_id == os.geteuid() and gid_maps[0].host_id == os.getegid())
    if os.geteuid() == 0 or own:
        if os.geteuid() != 0:
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
        for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(_map_lines(maps))
        return
    import shutil
    import subprocess

    for tool, maps in (("newuidmap", uid_maps), ("newgidmap", gid_maps)):
        binary = shutil.which(tool)
        if binary is None:
            raise OSError(f"{tool} not found: install the uidmap package for rootless containers")
        args = [binary, str(pid)]
        for m in maps:
            args += [str(m.container_id), str(m.host_id), str(m.size)]
        out = subprocess.run(args, capture_output=True, text=True)
        if out.returncode != 0:
            raise OSError(f"{tool}: {out.stderr.strip() or f'exit status {out.returncode}'}")
