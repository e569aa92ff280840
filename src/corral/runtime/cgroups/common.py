"""What every cgroup module shares: the error type and file access that names file and value."""

from __future__ import annotations

import errno
import os
import time

from corral.runtime.errors import RuntimeFailure, suppress

TYPE_CHECKING = False  # typing costs milliseconds (it imports re) on every start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any


class CgroupError(RuntimeFailure):
    """A cgroup operation failed; the message names the file and the value."""


def write(directory: str, name: str, value: object) -> None:
    """Write one value to a cgroup file; "memory.max: invalid 12x (...)" on failure."""
    text = str(value)
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CgroupError(f"{name}: cannot set {text}: {path} does not exist "
                          "(controller not available?)") from None
    except OSError as err:
        raise CgroupError(f"{name}: cannot set {text}: {err.strerror}") from None
    try:
        os.write(fd, text.encode())
    except OSError as err:
        reason = "invalid value" if err.errno == errno.EINVAL else err.strerror
        raise CgroupError(f"{name}: cannot set {text} in {directory}: {reason}") from None
    finally:
        os.close(fd)


def read(directory: str, name: str) -> str:
    """The stripped content of a cgroup file."""
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read().strip()
    except OSError as err:
        raise CgroupError(f"{name}: cannot read in {directory}: {err.strerror}") from None


def read_int(directory: str, name: str, default: int = 0) -> int:
    """An integer file ("max" counts as -1); `default` when the file does not exist."""
    try:
        text = read(directory, name)
    except CgroupError:
        return default
    if text == "max":
        return -1
    try:
        return int(text)
    except ValueError:
        return default


def read_keyed(directory: str, name: str) -> dict[str, int]:
    """A flat keyed file ("key value" lines: memory.stat, memory.events, cpu.stat); {} if absent."""
    try:
        text = read(directory, name)
    except CgroupError:
        return {}
    result: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            result[key] = int(value)
    return result


def procs(directory: str) -> list[int]:
    """Every pid in the cgroup at `directory` and in its descendants."""
    pids: list[int] = []
    for current, _dirs, files in os.walk(directory):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(current, "cgroup.procs")) as f:
                    pids.extend(int(line) for line in f if line.strip())
            except OSError:
                continue  # removed while walking
    return pids


def remove_tree(directory: str) -> None:
    """rmdir a cgroup and its descendants (deepest first); a missing directory is fine."""
    try:  # the usual case, a cgroup without children: one syscall, no walk
        os.rmdir(directory)
        return
    except FileNotFoundError:
        return
    except OSError as err:
        if err.errno not in (errno.EBUSY, errno.ENOTEMPTY):
            raise
    for current, _dirs, _files in sorted(os.walk(directory), key=lambda t: -len(t[0])):
        with suppress(FileNotFoundError):
            os.rmdir(current)


def remove_if_empty(directories: Iterable[str]) -> bool:
    """rmdir each cgroup directory that is there; False as soon as one is busy (processes or
    child cgroups left) or refuses, for the caller to fall back to the Manager's teardown.

    This is `delete`'s path for a stopped container, whose cgroup is empty unless its init left
    processes behind: one rmdir per hierarchy, as runc, without reading the host's layout. Only
    directories holding a cgroup.procs are removed (a plain directory never does and a cgroup
    always does): any other path from a state file is left to the Manager, which refuses it."""
    for directory in directories:
        if not os.path.exists(os.path.join(directory, "cgroup.procs")):
            if os.path.lexists(directory):
                return False
            continue
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return True


def given(value: Any) -> bool:
    """runc's reading of a resource value: None and 0 mean "not set"."""
    return value is not None and value != 0


def wait_until(condition: Callable[[], bool], timeout: float, failure: str) -> None:
    """Poll `condition` with a growing delay (1 ms to 100 ms); CgroupError(failure) on timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not condition():
        if time.monotonic() > deadline:
            raise CgroupError(f"{failure} after {timeout}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


# cpuset and pids use the same files on v1 and v2.

def set_cpuset(directory: str, cpu: Mapping[str, Any]) -> None:
    if cpu.get("cpus"):
        write(directory, "cpuset.cpus", cpu["cpus"])
    if cpu.get("mems"):
        write(directory, "cpuset.mems", cpu["mems"])


def set_pids(directory: str, pids: Mapping[str, Any]) -> None:
    limit = pids.get("limit") or 0
    if limit:
        write(directory, "pids.max", "max" if limit < 0 else limit)


def hugetlb_page_sizes(directory: str, usage_file: str) -> list[str]:
    """The page sizes ("2MB", "1GB") that have a hugetlb.<size>.<usage_file> in `directory`."""
    return sorted(name.split(".")[1] for name in os.listdir(directory)
                  if name.startswith("hugetlb.") and name.endswith(f".{usage_file}")
                  and name.count(".") == 2)
