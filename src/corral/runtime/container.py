"""A container as the runtime knows it: its state file under --root, and a Status derived from
the kernel every time it is asked (crun's status.c).

Layout of `<root>/<id>/`:
    state.json   written atomically once init waits on the fifo (see `State`)
    exec.fifo    exists from create until start: init blocks opening it for writing

Status:  process gone or start time differs -> stopped; exec.fifo present -> created;
         cgroup frozen -> paused; else running. No state.json yet -> creating.
"""

from __future__ import annotations

import os

from corral.runtime import jsonio
from corral.runtime.errors import AlreadyExists, InvalidState, NotFound, RuntimeFailure
from corral.runtime.record import asdict, field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar

STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"


class Status:
    """A container's status (the five instances below), with the guards every verb checks
    first. A plain class rather than an Enum: `enum` is a measurable share of a verb's start."""

    __slots__ = ("value",)
    CREATING: ClassVar[Status]
    CREATED: ClassVar[Status]
    RUNNING: ClassVar[Status]
    STOPPED: ClassVar[Status]
    PAUSED: ClassVar[Status]

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Status.{self.value.upper()}"

    def can_start(self) -> bool:
        return self is Status.CREATED

    def can_kill(self) -> bool:
        return self in (Status.CREATED, Status.RUNNING, Status.PAUSED)

    def can_delete(self) -> bool:
        return self in (Status.STOPPED, Status.CREATED, Status.CREATING)

    def can_exec(self) -> bool:
        return self in (Status.CREATED, Status.RUNNING)

    def can_pause(self) -> bool:
        return self is Status.RUNNING

    def can_resume(self) -> bool:
        return self is Status.PAUSED


Status.CREATING = Status("creating")
Status.CREATED = Status("created")
Status.RUNNING = Status("running")
Status.STOPPED = Status("stopped")
Status.PAUSED = Status("paused")


@record
class State:
    """What create records; everything else is derived."""

    id: str
    pid: int
    start_time: int  # /proc/<pid>/stat field 22, to tell a recycled pid apart
    bundle: str
    rootfs: str
    created: str  # RFC 3339, UTC
    config: dict[str, Any]
    owner: str = ""
    cgroup_path: str = ""
    cgroup_paths: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def process_start_time(pid: int) -> int | None:
    """Start time of a live (non-zombie) process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def check_id(container_id: str) -> None:
    # A leading dot is refused: --root keeps its own entries (.seccomp-cache) under such names.
    valid = all(c.isalnum() or c in "_+-." for c in container_id)
    if not container_id or container_id.startswith(".") or not valid:
        raise RuntimeFailure(f"invalid id format: {container_id}")


class Container:
    def __init__(self, root: str, container_id: str, state: State | None) -> None:
        self.root = root
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self.state = state

    # --- lookup and creation -------------------------------------------------------------------

    @classmethod
    def load(cls, root: str, container_id: str) -> Container:
        """The container `container_id`, or NotFound (runc's "container does not exist")."""
        check_id(container_id)
        path = os.path.join(root, container_id, STATE_FILE)
        try:
            with open(path, "rb") as f:
                data = jsonio.loads(f.read())
        except FileNotFoundError:
            if os.path.isdir(os.path.join(root, container_id)):
                return cls(root, container_id, None)
            raise NotFound("container does not exist") from None
        except ValueError as e:
            raise RuntimeFailure(f"{path}: corrupt state: {e}") from None
        return cls(root, container_id, State(**data))

    @classmethod
    def reserve(cls, root: str, container_id: str) -> Container:
        """Claim `<root>/<id>` for a new container (mkdir is the lock against a duplicate id)."""
        check_id(container_id)
        os.makedirs(root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(os.path.join(root, container_id), 0o711)
        except FileExistsError:
            raise AlreadyExists(f"container with id exists: {container_id}") from None
        return cls(root, container_id, None)

    @staticmethod
    def ids(root: str) -> list[str]:
        try:
            return sorted(e for e in os.listdir(root)
                          if not e.startswith(".") and os.path.isdir(os.path.join(root, e)))
        except FileNotFoundError:
            return []

    # --- state ---------------------------------------------------------------------------------

    @property
    def fifo_path(self) -> str:
        return os.path.join(self.dir, EXEC_FIFO)

    def save(self, state: State) -> None:
        """Write state.json atomically (temp file + rename)."""
        self.state = state
        tmp = os.path.join(self.dir, f".{STATE_FILE}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(jsonio.dumps(asdict(state)))
        os.replace(tmp, os.path.join(self.dir, STATE_FILE))

    def remove_dir(self) -> None:
        """The state directory holds only plain files (state.json, exec.fifo, temp files)."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        try:
            for name in names:
                os.unlink(os.path.join(self.dir, name))
            os.rmdir(self.dir)
        except FileNotFoundError:  # a concurrent delete got there first
            pass

    # --- status --------------------------------------------------------------------------------

    def alive(self) -> bool:
        s = self.state
        return s is not None and s.pid > 0 and process_start_time(s.pid) == s.start_time

    def status(self) -> Status:
        if self.state is None:
            return Status.CREATING
        if not self.alive():
            return Status.STOPPED
        if os.path.exists(self.fifo_path):
            return Status.CREATED
        if self.cgroup_frozen():
            return Status.PAUSED
        return Status.RUNNING

    def cgroup(self) -> Any:
        """The container's cgroups Manager (imported only by the verbs that need it)."""
        from corral.runtime.cgroups import reopen

        assert self.state is not None
        return reopen(self.state.cgroup_paths, self.state.cgroup_path)

    def cgroup_frozen(self) -> bool:
        try:
            return bool(self.cgroup().frozen())
        except (OSError, RuntimeFailure):
            return False

    def require(self, allowed: bool, action: str) -> None:
        """The can_* guard every verb checks first."""
        if not allowed:
            raise InvalidState(f"cannot {action} a container that is {self.status().value}")

    def oci_state(self, status: Status | None = None) -> dict[str, Any]:
        """The runtime-spec state object (`state` and the hooks' stdin)."""
        status = self.status() if status is None else status
        s = self.state
        return {
            "ociVersion": str((s.config if s else {}).get("ociVersion", "1.0.2")),
            "id": self.id,
            "pid": s.pid if s and status is not Status.STOPPED else 0,
            "status": status.value,
            "bundle": s.bundle if s else "",
            "rootfs": s.rootfs if s else "",
            "created": s.created if s else "",
            "owner": s.owner if s else "",
            "annotations": s.annotations if s else {},
        }
