"""cgroup v2: the unified hierarchy's files, written from config.json's `linux.resources`.

v1 values are converted the way runc converts them (cpu shares -> cpu.weight, blkio weight ->
io.weight, memory+swap -> memory.swap.max). Device rules are an eBPF program (ebpf.py).
"""

from __future__ import annotations

import os

from corral.runtime.cgroups.common import (
    CgroupError,
    given,
    hugetlb_page_sizes,
    read,
    read_int,
    read_keyed,
    wait_until,
    write,
)
from corral.runtime.errors import suppress

TYPE_CHECKING = False  # typing costs milliseconds (it imports re) on every start
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any


def enable_controllers(mountpoint: str, directory: str, only: str | None = None) -> None:
    """Enable the available controllers (or just `only`) in the subtree_control of each ancestor
    of `directory`.

    A controller the kernel refuses (e.g. a parent with processes of its own) is left out; setting a
    limit that needs it then fails naming the file.
    """
    current = mountpoint
    for part in os.path.relpath(directory, mountpoint).split(os.sep)[:-1]:
        controllers = read(current, "cgroup.controllers").split()
        enabled = set(read(current, "cgroup.subtree_control").split())
        for controller in controllers:
            if controller not in enabled and only in (None, controller):
                with suppress(CgroupError):
                    write(current, "cgroup.subtree_control", f"+{controller}")
        current = os.path.join(current, part)


def memory_swap_max(limit: int, swap: int) -> int | str | None:
    """memory.swap.max from OCI's memory+swap total (runc's ConvertMemorySwapToCgroupV2Value)."""
    if swap == 0:
        return None
    if swap == -1:
        return "max"
    if limit in (0, -1):
        raise CgroupError(f"memory.swap.max: memory+swap {swap} needs a memory limit")
    if swap < limit:
        raise CgroupError(f"memory.swap.max: memory+swap {swap} is below the memory limit {limit}")
    return swap - limit


def _limit(value: int) -> str:
    return "max" if value == -1 else str(value)


def set_memory(directory: str, memory: Mapping[str, Any]) -> None:
    limit = memory.get("limit") or 0
    swap_max = memory_swap_max(limit, memory.get("swap") or 0)
    if swap_max is not None:
        write(directory, "memory.swap.max", swap_max)
    if limit:
        write(directory, "memory.max", _limit(limit))
    if given(memory.get("reservation")):
        write(directory, "memory.low", _limit(memory["reservation"]))
    # swappiness, disableOOMKiller and kernel limits do not exist on v2; runc ignores them too


def cpu_weight(shares: int) -> int:
    """cpu.weight (1-10000) from v1 cpu.shares (2-262144), as runc converts it."""
    return 1 + ((shares - 2) * 9999) // 262142


def set_cpu(directory: str, cpu: Mapping[str, Any]) -> None:
    if given(cpu.get("shares")):
        write(directory, "cpu.weight", cpu_weight(cpu["shares"]))
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    if quota or period:
        text = "max" if quota in (0, -1) else str(quota)
        if period:
            text += f" {period}"
        write(directory, "cpu.max", text)
    if given(cpu.get("burst")):
        write(directory, "cpu.max.burst", cpu["burst"])
    if cpu.get("idle") is not None:
        write(directory, "cpu.idle", cpu["idle"])


def io_weight(blkio_weight: int) -> int:
    """io.weight (1-10000) from blkio.weight (10-1000), as runc converts it."""
    return 1 + (blkio_weight - 10) * 9999 // 990


def set_io(directory: str, blkio: Mapping[str, Any]) -> None:
    if given(blkio.get("weight")):
        if os.path.exists(os.path.join(directory, "io.bfq.weight")):
            write(directory, "io.bfq.weight", blkio["weight"])
        else:
            write(directory, "io.weight", f"default {io_weight(blkio['weight'])}")
    for entry in blkio.get("weightDevice") or ():
        write(directory, "io.weight", f"{entry['major']}:{entry['minor']} {io_weight(entry['weight'])}")
    keys = {
        "throttleReadBpsDevice": "rbps",
        "throttleWriteBpsDevice": "wbps",
        "throttleReadIOPSDevice": "riops",
        "throttleWriteIOPSDevice": "wiops",
    }
    for key, field in keys.items():
        for entry in blkio.get(key) or ():
            write(directory, "io.max", f"{entry['major']}:{entry['minor']} {field}={entry['rate']}")


def set_hugetlb(directory: str, limits: Sequence[Mapping[str, Any]]) -> None:
    for entry in limits:
        write(directory, f"hugetlb.{entry['pageSize']}.max", _limit(entry["limit"]))


def set_unified(directory: str, unified: Mapping[str, str]) -> None:
    """linux.resources.unified: raw "file": "value" pairs; names may not leave the cgroup."""
    for name, value in unified.items():
        if "/" in name or name in ("", ".", ".."):
            raise CgroupError(f"unified: invalid file name {name!r}")
        write(directory, name, value)


def freeze(directory: str, frozen: bool, timeout: float = 10.0) -> None:
    """Write cgroup.freeze and wait until cgroup.events reports it."""
    write(directory, "cgroup.freeze", 1 if frozen else 0)
    wait_until(lambda: is_frozen(directory) == frozen, timeout,
               f"cgroup.freeze: state {int(frozen)} not reached in {directory}")


def is_frozen(directory: str) -> bool:
    return read_keyed(directory, "cgroup.events").get("frozen", 0) == 1


def kill(directory: str) -> bool:
    """SIGKILL every process of the cgroup tree with cgroup.kill; False if the kernel lacks it."""
    if not os.path.exists(os.path.join(directory, "cgroup.kill")):
        return False
    write(directory, "cgroup.kill", 1)
    return True


def oom_kill_count(directory: str) -> int:
    return read_keyed(directory, "memory.events").get("oom_kill", 0)


def memory_stats(directory: str) -> dict[str, Any]:
    raw = read_keyed(directory, "memory.stat")
    events = read_keyed(directory, "memory.events")
    return {
        "cache": raw.get("file", 0),
        "usage": {
            "limit": read_int(directory, "memory.max"),
            "usage": read_int(directory, "memory.current"),
            "max": read_int(directory, "memory.peak"),
            "failcnt": events.get("max", 0),
        },
        "swap": {
            "limit": read_int(directory, "memory.swap.max"),
            "usage": read_int(directory, "memory.swap.current"),
            "max": read_int(directory, "memory.swap.peak"),
            "failcnt": read_keyed(directory, "memory.swap.events").get("fail", 0),
        },
        "raw": raw,
    }


def cpu_stats(directory: str) -> dict[str, Any]:
    stat = read_keyed(directory, "cpu.stat")
    return {
        "usage": {
            "total": stat.get("usage_usec", 0) * 1000,
            "kernel": stat.get("system_usec", 0) * 1000,
            "user": stat.get("user_usec", 0) * 1000,
        },
        "throttling": {
            "periods": stat.get("nr_periods", 0),
            "throttled_periods": stat.get("nr_throttled", 0),
            "throttled_time": stat.get("throttled_usec", 0) * 1000,
        },
    }


def pids_stats(directory: str) -> dict[str, int]:
    return {"current": read_int(directory, "pids.current"), "limit": read_int(directory, "pids.max")}


def io_stats(directory: str) -> dict[str, Any]:
    service_bytes: list[dict[str, Any]] = []
    serviced: list[dict[str, Any]] = []
    try:
        text = read(directory, "io.stat")
    except CgroupError:
        text = ""
    for line in text.splitlines():
        device, *fields = line.split()
        major, minor = (int(n) for n in device.split(":"))
        values = dict(f.split("=", 1) for f in fields if "=" in f)
        for op, key, target in (("Read", "rbytes", service_bytes), ("Write", "wbytes", service_bytes),
                                ("Read", "rios", serviced), ("Write", "wios", serviced)):
            if key in values:
                target.append({"major": major, "minor": minor, "op": op, "value": int(values[key])})
    return {"ioServiceBytesRecursive": service_bytes, "ioServicedRecursive": serviced}


def hugetlb_stats(directory: str) -> dict[str, dict[str, int]]:
    return {size: {"usage": read_int(directory, f"hugetlb.{size}.current"),
                   "max": read_int(directory, f"hugetlb.{size}.max"),
                   "failcnt": read_keyed(directory, f"hugetlb.{size}.events").get("max", 0)}
            for size in hugetlb_page_sizes(directory, "current")}
