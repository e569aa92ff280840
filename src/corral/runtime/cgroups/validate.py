"""Type checks of config.json's `linux.resources`, before any cgroup is touched.

Only the shape: the kernel judges the values (and its refusal names the file and the value).
Unknown keys are ignored, as runc ignores fields it does not know.
"""

from __future__ import annotations

from corral.runtime.cgroups.common import CgroupError

TYPE_CHECKING = False  # typing costs milliseconds (it imports re) on every start
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

_INT, _STR, _BOOL = "an integer", "a string", "true or false"

_DEVICE_NUMBERS = {"major": _INT, "minor": _INT}
_THROTTLE = {**_DEVICE_NUMBERS, "rate": _INT}
_SECTIONS: dict[str, dict[str, Any]] = {
    "memory": {"limit": _INT, "reservation": _INT, "swap": _INT, "kernel": _INT,
               "kernelTCP": _INT, "swappiness": _INT, "disableOOMKiller": _BOOL,
               "useHierarchy": _BOOL, "checkBeforeUpdate": _BOOL},
    "cpu": {"shares": _INT, "quota": _INT, "burst": _INT, "period": _INT,
            "realtimeRuntime": _INT, "realtimePeriod": _INT, "cpus": _STR, "mems": _STR,
            "idle": _INT},
    "pids": {"limit": _INT},
    "blockIO": {"weight": _INT, "leafWeight": _INT,
                "weightDevice": [{**_DEVICE_NUMBERS, "weight": _INT, "leafWeight": _INT}],
                "throttleReadBpsDevice": [_THROTTLE], "throttleWriteBpsDevice": [_THROTTLE],
                "throttleReadIOPSDevice": [_THROTTLE], "throttleWriteIOPSDevice": [_THROTTLE]},
    "network": {"classID": _INT, "priorities": [{"name": _STR, "priority": _INT}]},
}
_LISTS: dict[str, dict[str, str]] = {
    "hugepageLimits": {"pageSize": _STR, "limit": _INT},
    "devices": {"allow": _BOOL, "type": _STR, "major": _INT, "minor": _INT, "access": _STR},
}


def _check_value(value: Any, kind: Any, where: str) -> None:
    if value is None:
        return
    if isinstance(kind, list):
        if not isinstance(value, list):
            raise CgroupError(f"{where}: must be a list, got {value!r}")
        for index, item in enumerate(value):
            _check_object(item, kind[0], f"{where}[{index}]")
        return
    if kind == _INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == _STR:
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, bool)
    if not ok:
        raise CgroupError(f"{where}: must be {kind}, got {value!r}")


def _check_object(obj: Any, fields: Mapping[str, Any], where: str) -> None:
    if not isinstance(obj, dict):
        raise CgroupError(f"{where}: must be an object, got {obj!r}")
    for key, kind in fields.items():
        _check_value(obj.get(key), kind, f"{where}.{key}")


def check(resources: Mapping[str, Any] | None) -> None:
    """Refuse a `linux.resources` whose fields have the wrong JSON types, naming the field."""
    if resources is None:
        return
    _check_object(resources, {}, "linux.resources")
    for section, fields in _SECTIONS.items():
        if resources.get(section) is not None:
            _check_object(resources[section], fields, f"linux.resources.{section}")
    for section, fields in _LISTS.items():
        _check_value(resources.get(section), [fields], f"linux.resources.{section}")
    for section in ("rdma", "unified"):
        value = resources.get(section)
        if value is not None and not isinstance(value, dict):
            raise CgroupError(f"linux.resources.{section}: must be an object, got {value!r}")
    for device, limits in (resources.get("rdma") or {}).items():
        _check_object(limits, {"hcaHandles": _INT, "hcaObjects": _INT},
                      f"linux.resources.rdma.{device}")
    for name, value in (resources.get("unified") or {}).items():
        _check_value(value, _STR, f"linux.resources.unified.{name}")
