"""A container's live status, derived rather than trusted, and the guards every verb checks.

The stored `state` is what corral last did; `observe` asks conmon's exit file, the init pid and
its start time, and the boot id, so a container whose machine rebooted or whose monitor died is
reported as it really is.
"""

from __future__ import annotations

import os

from corral.containers import monitor
from corral.containers.store import Record, Store, now
from corral.errors import Conflict
from corral.records import NamedTuple

TYPE_CHECKING = False  # not typing's: `ps` does not import typing
if TYPE_CHECKING:
    from typing import ClassVar


class Status:
    """A container's live status: one of the four constants below, compared with `is`.
    A plain class, not an enum: `ps` does not import enum (~1 ms with what it pulls in)."""

    CREATED: ClassVar[Status]
    RUNNING: ClassVar[Status]
    PAUSED: ClassVar[Status]
    EXITED: ClassVar[Status]
    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Status.{self.value.upper()}"

    @classmethod
    def of(cls, value: str) -> Status:
        """The constant for a stored state (`running` -> Status.RUNNING)."""
        return _BY_VALUE[value]

    def can_start(self) -> bool:
        return self in (Status.CREATED, Status.EXITED)

    def can_signal(self) -> bool:
        return self in (Status.RUNNING, Status.PAUSED)

    def can_pause(self) -> bool:
        return self is Status.RUNNING

    def can_unpause(self) -> bool:
        return self is Status.PAUSED

    def can_exec(self) -> bool:
        return self is Status.RUNNING

    def can_remove(self, force: bool) -> bool:
        return force or self in (Status.CREATED, Status.EXITED)


Status.CREATED, Status.RUNNING = Status("created"), Status("running")
Status.PAUSED, Status.EXITED = Status("paused"), Status("exited")
_BY_VALUE = {s.value: s for s in (Status.CREATED, Status.RUNNING, Status.PAUSED, Status.EXITED)}


class Observed(NamedTuple):
    status: Status
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    finished_at: float = 0.0

    @property
    def alive(self) -> bool:
        return self.status in (Status.RUNNING, Status.PAUSED)


def guard(record: Record, observed: Observed, allowed: bool, verb: str) -> None:
    if not allowed:
        raise Conflict(f"cannot {verb} container {record.id[:12]}: it is {observed.status.value}")


def observe(store: Store, rec: Record) -> Observed:
    """The live status, derived from the kernel and conmon's files, never just trusted."""
    if rec.state in ("created", "creating"):
        return Observed(Status.CREATED)
    if rec.state == "exited":
        return Observed(Status.EXITED, rec.exit_code, rec.oom_killed, rec.error, rec.finished_at)
    if rec.boot_id != monitor.boot_id():
        return Observed(Status.EXITED, -1, False, "the machine restarted while the container ran")
    bundle = store.bundle(rec.id)
    status = monitor.exit_status(bundle)
    if status is not None:
        return Observed(Status.EXITED, status[0], status[1], "", _mtime(os.path.join(bundle, "exit")))
    if monitor.alive(rec.pid) and monitor.start_time(rec.pid) == rec.pid_start:
        error = "" if monitor.alive(rec.conmon_pid) else (
            "the container's monitor (conmon) died: output and exit code are no longer recorded")
        return Observed(Status.of(rec.state), error=error)
    if monitor.alive(rec.conmon_pid):  # the program just ended; conmon is writing its exit
        status = monitor.wait_exit(bundle, rec.pid, timeout=2)
        if status is not None:
            return Observed(Status.EXITED, status[0], status[1], "", _mtime(os.path.join(bundle, "exit")))
    return Observed(Status.EXITED, -1, False,
                    "the container's monitor (conmon) died before recording the exit code")


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return now()
