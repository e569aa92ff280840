"""`corral-runtime update [--resources FILE|-] [--memory ...] ID`: change resource limits."""

from __future__ import annotations

import sys

from corral.runtime import jsonio
from corral.runtime.cli import Globals
from corral.runtime.flags import Args, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# flag -> (section, key), with runc's flag names (`--cpu-share`, not docker's `--cpu-shares`);
# values are integers except the cpuset lists
_FLAGS = {
    "memory": ("memory", "limit"), "memory_reservation": ("memory", "reservation"),
    "memory_swap": ("memory", "swap"), "kernel_memory": ("memory", "kernel"),
    "kernel_memory_tcp": ("memory", "kernelTCP"),
    "cpu_share": ("cpu", "shares"), "cpu_quota": ("cpu", "quota"),
    "cpu_period": ("cpu", "period"), "cpu_rt_runtime": ("cpu", "realtimeRuntime"),
    "cpu_rt_period": ("cpu", "realtimePeriod"), "cpuset_cpus": ("cpu", "cpus"),
    "cpuset_mems": ("cpu", "mems"), "pids_limit": ("pids", "limit"),
    "blkio_weight": ("blockIO", "weight"),
}
_STRINGS = ("cpuset_cpus", "cpuset_mems")


FLAGS = (Flag("resources", "r"), *(Flag(name.replace("_", "-")) for name in _FLAGS))
ARGS = ("container_id",)


def _size(text: str) -> int:
    """"512m", "1g", "-1", "1048576" -> bytes (docker's units, as runc takes them)."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("b")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        from corral.runtime.errors import RuntimeFailure

        raise RuntimeFailure(f"invalid value {text!r}") from None


def resources(args: Args) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if args.resources is not None:
        with (sys.stdin if args.resources == "-" else open(args.resources)) as f:
            res = jsonio.loads(f.read())
    for name, (section, key) in _FLAGS.items():
        value = getattr(args, name)
        if value is not None:
            res.setdefault(section, {})[key] = value if name in _STRINGS else _size(value)
    return res


def run(args: Args, ctx: Globals) -> int:
    from corral.runtime.container import Container, Status
    from corral.runtime.errors import InvalidState

    container = Container.load(ctx.root, args.container_id)
    if container.status() in (Status.STOPPED, Status.CREATING):
        raise InvalidState("container not running")
    res = resources(args)
    container.cgroup().update(res)
    assert container.state is not None
    linux = container.state.config.setdefault("linux", {})
    current = linux.setdefault("resources", {}) or {}
    for section, values in res.items():
        if isinstance(values, dict) and isinstance(current.get(section), dict):
            current[section].update(values)
        else:
            current[section] = values
    linux["resources"] = current
    container.save(container.state)
    return 0
