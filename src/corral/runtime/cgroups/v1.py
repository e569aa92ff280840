"""cgroup v1: the files of each controller, written from config.json's `linux.resources`.

Values follow runc's fs driver: 0 means "not set", -1 means unlimited; memory and memory+swap
limits are written in the order the kernel accepts; cpu.cfs_period_us goes before the quota.
Each function gets the directory of the container's cgroup in that controller's hierarchy.
"""

from __future__ import annotations

import os

from corral.runtime.cgroups import devices
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


def prepare_cpuset(directory: str, mountpoint: str) -> None:
    """Fill empty cpuset.cpus/mems from the parent, top down: tasks cannot join an empty cpuset."""
    parts: list[str] = []
    current = directory
    while current != mountpoint and current.startswith(mountpoint + "/"):
        parts.append(current)
        current = os.path.dirname(current)
    for level in reversed(parts):
        parent = os.path.dirname(level)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not read(level, name):
                write(level, name, read(parent, name))


def set_memory(directory: str, memory: Mapping[str, Any]) -> None:
    limit = memory.get("limit") or 0
    swap = memory.get("swap") or 0
    if limit == -1 and swap == 0:
        swap = -1
    has_swap = os.path.exists(os.path.join(directory, "memory.memsw.limit_in_bytes"))
    if not has_swap:
        swap = 0  # no swap accounting in this kernel: the limit holds for memory alone
    if limit and swap:
        current = read_int(directory, "memory.limit_in_bytes")
        if swap == -1 or current < swap:
            write(directory, "memory.memsw.limit_in_bytes", swap)
            write(directory, "memory.limit_in_bytes", limit)
        else:
            write(directory, "memory.limit_in_bytes", limit)
            write(directory, "memory.memsw.limit_in_bytes", swap)
    elif limit:
        if has_swap and limit != -1:
            total = read_int(directory, "memory.memsw.limit_in_bytes", -1)
            if total != -1 and limit > total:
                raise CgroupError(f"memory.limit_in_bytes: {limit} is above memory.memsw."
                                  f"limit_in_bytes {total}: set the memory+swap limit too")
        write(directory, "memory.limit_in_bytes", limit)
    elif swap:
        write(directory, "memory.memsw.limit_in_bytes", swap)
    if given(memory.get("reservation")):
        write(directory, "memory.soft_limit_in_bytes", memory["reservation"])
    if given(memory.get("kernelTCP")):
        write(directory, "memory.kmem.tcp.limit_in_bytes", memory["kernelTCP"])
    # memory.kernel is ignored, like runc: kernel memory limits are deprecated and gone in Linux 6.x
    swappiness = memory.get("swappiness")
    if swappiness is not None:
        if not 0 <= swappiness <= 100:
            raise CgroupError(f"memory.swappiness: invalid {swappiness} (0-100)")
        write(directory, "memory.swappiness", swappiness)
    if memory.get("disableOOMKiller"):
        write(directory, "memory.oom_control", 1)


def set_cpu(directory: str, cpu: Mapping[str, Any]) -> None:
    shares = cpu.get("shares")
    if given(shares):
        write(directory, "cpu.shares", shares)
        actual = read_int(directory, "cpu.shares")
        if actual != shares:
            raise CgroupError(f"cpu.shares: invalid {shares} (the kernel set {actual})")
    period, quota = cpu.get("period"), cpu.get("quota")
    if given(period):
        try:
            write(directory, "cpu.cfs_period_us", period)
        except CgroupError:
            if not given(quota):
                raise
            write(directory, "cpu.cfs_quota_us", quota)  # the old quota did not fit the new period
            write(directory, "cpu.cfs_period_us", period)
    if given(quota):
        write(directory, "cpu.cfs_quota_us", quota)
    if given(cpu.get("burst")):
        write(directory, "cpu.cfs_burst_us", cpu["burst"])
    if given(cpu.get("realtimePeriod")):
        write(directory, "cpu.rt_period_us", cpu["realtimePeriod"])
    if given(cpu.get("realtimeRuntime")):
        write(directory, "cpu.rt_runtime_us", cpu["realtimeRuntime"])
    if cpu.get("idle") is not None:
        write(directory, "cpu.idle", cpu["idle"])


def _devices(entries: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, str]]:
    """(major:minor, value) pairs of weightDevice / throttle entries."""
    result = []
    for entry in entries or ():
        result.append((f"{entry['major']}:{entry['minor']}", str(entry.get("rate", entry.get("weight")))))
    return result


def set_blkio(directory: str, blkio: Mapping[str, Any]) -> None:
    weight = blkio.get("weight")
    if given(weight):
        name = "blkio.weight"
        if not os.path.exists(os.path.join(directory, name)):
            name = "blkio.bfq.weight"  # only BFQ offers a weight on Linux >= 5.0
        write(directory, name, weight)
    if given(blkio.get("leafWeight")):
        write(directory, "blkio.leaf_weight", blkio["leafWeight"])
    for device, value in _devices(blkio.get("weightDevice")):
        name = "blkio.weight_device"
        if not os.path.exists(os.path.join(directory, name)):
            name = "blkio.bfq.weight_device"
        write(directory, name, f"{device} {value}")
    throttles = {
        "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
        "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
        "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
        "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
    }
    for key, name in throttles.items():
        for device, rate in _devices(blkio.get(key)):
            write(directory, name, f"{device} {rate}")


def set_hugetlb(directory: str, limits: Sequence[Mapping[str, Any]]) -> None:
    for entry in limits:
        write(directory, f"hugetlb.{entry['pageSize']}.limit_in_bytes", entry["limit"])


def set_devices(directory: str, rules: Sequence[devices.Rule]) -> None:
    """Replay the rules in order into devices.allow / devices.deny."""
    for rule in rules:
        write(directory, "devices.allow" if rule[4] else "devices.deny", devices.v1_text(rule))


def set_network(directories: Mapping[str, str], network: Mapping[str, Any]) -> None:
    if network.get("classID") is not None:
        write(directories["net_cls"], "net_cls.classid", network["classID"])
    for entry in network.get("priorities") or ():
        write(directories["net_prio"], "net_prio.ifpriomap", f"{entry['name']} {entry['priority']}")


def freeze(directory: str, frozen: bool, timeout: float = 10.0) -> None:
    """Write freezer.state and wait until the kernel reports the new state."""
    target = "FROZEN" if frozen else "THAWED"

    def reached() -> bool:
        write(directory, "freezer.state", target)  # again: a FREEZING cgroup may need a retry
        return read(directory, "freezer.state") == target

    wait_until(reached, timeout, f"freezer.state: {target} not reached in {directory}")


def is_frozen(directory: str) -> bool:
    try:
        return read(directory, "freezer.state") != "THAWED"
    except CgroupError:
        return False


def oom_kill_count(directory: str) -> int:
    return read_keyed(directory, "memory.oom_control").get("oom_kill", 0)


def memory_stats(directory: str) -> dict[str, Any]:
    def entry(prefix: str) -> dict[str, int]:
        return {
            "limit": read_int(directory, f"{prefix}.limit_in_bytes"),
            "usage": read_int(directory, f"{prefix}.usage_in_bytes"),
            "max": read_int(directory, f"{prefix}.max_usage_in_bytes"),
            "failcnt": read_int(directory, f"{prefix}.failcnt"),
        }

    raw = read_keyed(directory, "memory.stat")
    return {
        "cache": raw.get("cache", 0),
        "usage": entry("memory"),
        "swap": entry("memory.memsw"),
        "kernel": entry("memory.kmem"),
        "kernelTCP": entry("memory.kmem.tcp"),
        "raw": raw,
    }


def cpu_stats(cpu_dir: str | None, cpuacct_dir: str | None) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    if cpuacct_dir:
        usage["total"] = read_int(cpuacct_dir, "cpuacct.usage")
        with suppress(CgroupError):
            usage["percpu"] = [int(v) for v in read(cpuacct_dir, "cpuacct.usage_percpu").split()]
        ticks = read_keyed(cpuacct_dir, "cpuacct.stat")
        hertz = os.sysconf("SC_CLK_TCK")
        usage["kernel"] = ticks.get("system", 0) * 1_000_000_000 // hertz
        usage["user"] = ticks.get("user", 0) * 1_000_000_000 // hertz
    throttling: dict[str, int] = {}
    if cpu_dir:
        stat = read_keyed(cpu_dir, "cpu.stat")
        throttling = {
            "periods": stat.get("nr_periods", 0),
            "throttled_periods": stat.get("nr_throttled", 0),
            "throttled_time": stat.get("throttled_time", 0),
        }
    return {"usage": usage, "throttling": throttling}


def pids_stats(directory: str) -> dict[str, int]:
    return {"current": read_int(directory, "pids.current"), "limit": read_int(directory, "pids.max")}


def blkio_stats(directory: str) -> dict[str, Any]:
    def entries(name: str) -> list[dict[str, Any]]:
        result = []
        try:
            text = read(directory, name)
        except CgroupError:
            return []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) == 3 and ":" in fields[0]:
                major, minor = fields[0].split(":")
                result.append({"major": int(major), "minor": int(minor), "op": fields[1],
                               "value": int(fields[2])})
        return result

    return {
        "ioServiceBytesRecursive": entries("blkio.throttle.io_service_bytes_recursive"),
        "ioServicedRecursive": entries("blkio.throttle.io_serviced_recursive"),
    }


def hugetlb_stats(directory: str) -> dict[str, dict[str, int]]:
    return {size: {"usage": read_int(directory, f"hugetlb.{size}.usage_in_bytes"),
                   "max": read_int(directory, f"hugetlb.{size}.max_usage_in_bytes"),
                   "failcnt": read_int(directory, f"hugetlb.{size}.failcnt")}
            for size in hugetlb_page_sizes(directory, "usage_in_bytes")}
