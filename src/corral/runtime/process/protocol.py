"""The messages between the runtime (main) and the processes it forks.

create/run (`process/create.py` main side, `process/init.py` init side):

    main                          intermediate                       init
     |--fork------------------------->|
     |                                | setns(joined namespaces, user first)
     |                                | unshare(CLONE_NEWUSER)      [new user namespace]
     |<--- MAP_IDS -------------------|
     | write uid_map/gid_map          |
     |---- IDS_MAPPED --------------->| setresuid(0)
     |                                | unshare(the other new namespaces but cgroup)
     | mkdir the cgroup, limits       |--fork (pid namespace) -------->|
     |<--- INIT_PID {pid} ------------|                                 | rootfs, mounts, up to
     | cgroup.add(init)               exit                              | the first cgroup mount
     |---- PID_RECORDED ----------------------------------------------->| unshare(CLONE_NEWCGROUP)
     |                                                                  | the rest of the mounts,
     |                                                                  | /dev
     |<--- RUN_HOOKS ---------------------------------------------------|
     | prestart, createRuntime hooks                                    |
     |---- HOOKS_DONE ------------------------------------------------->| createContainer hooks,
     |                                                                  | pivot_root, console,
     |                                                                  | masks, user, caps...
     |<--- READY -------------------------------------------------------|
     | state.json, pid file; exit        init waits on exec.fifo until `start`, then execve
     any stage, any time:  ERROR {message}  ->  main raises RuntimeFailure(message)

The cgroup is made and joined while the intermediate and init work (its mkdir and the move wait
for the kernel, see cgroups/warmup.py); init needs nothing of it until PID_RECORDED, and runs
nothing of the user's (hooks, the program) before it. If main fails before PID_RECORDED it hangs
up: the others read end-of-file and exit, and main stops init.

exec (`process/exec_.py`): main moves the intermediate into the container's cgroup and sends
CGROUP_JOINED before it setns()es; then as above up to PID_RECORDED, with INIT_PID carrying the
new process's pid; then no hooks and no READY: a successful execve closes the process's end of
the pipes (close-on-exec) and main reads end-of-file, a failure arrives as ERROR.

Messages are one JSON object per line on two close-on-exec pipes; every request has its ack.
"""

from __future__ import annotations

import os

from corral.runtime import jsonio
from corral.runtime.errors import RuntimeFailure, suppress
from corral.runtime.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CGROUP_JOINED = "cgroup-joined"  # exec only
MAP_IDS = "map-ids"
IDS_MAPPED = "ids-mapped"
INIT_PID = "init-pid"
PID_RECORDED = "pid-recorded"  # init is in its cgroup (its RUN_HOOKS comes after this)
RUN_HOOKS = "run-hooks"
HOOKS_DONE = "hooks-done"
READY = "ready"
ERROR = "error"


class Channel:
    """One end of the conversation: reads from `rfd`, writes to `wfd`."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self._buf = b""

    def send(self, kind: str, **fields: Any) -> None:
        os.write(self.wfd, jsonio.dumps({"type": kind, **fields}).encode() + b"\n")

    def receive(self) -> dict[str, Any] | None:
        """The next message, or None when every writer has gone."""
        while b"\n" not in self._buf:
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        message: dict[str, Any] = jsonio.loads(line)
        return message

    def expect(self, kind: str, who: str) -> dict[str, Any]:
        """The next message, which must be `kind`; ERROR becomes a RuntimeFailure."""
        message = self.receive()
        if message is None:
            raise RuntimeFailure(f"{who} exited before sending {kind}")
        if message["type"] == ERROR:
            raise RuntimeFailure(str(message["message"]))
        if message["type"] != kind:
            raise RuntimeFailure(f"protocol error: expected {kind} from {who}, got {message['type']}")
        return message

    def close_writer(self) -> None:
        """Hang up our side: the other end reads end-of-file; we can still receive."""
        if self.wfd >= 0:
            with suppress(OSError):
                os.close(self.wfd)
            self.wfd = -1

    def close(self) -> None:
        self.close_writer()
        with suppress(OSError):
            os.close(self.rfd)


@record(frozen=True)
class InitOptions:
    """What init inherits from main at the fork, besides the spec and its channel."""

    container_id: str
    fifo_fd: int  # O_PATH fd of exec.fifo, opened by main before the fork
    console_fd: int | None  # connected console socket (process.terminal)
    no_pivot: bool
    preserve_fds: int
    notify_socket: int | None  # socketpair end for the seccomp notify fd (listenerPath)
    cgroup_mounts: tuple[tuple[str, str, str], ...]  # the cgroups Manager's mount_sources()


def pair() -> tuple[Channel, Channel]:
    """(parent's end, child's end)."""
    down_r, down_w = os.pipe()
    up_r, up_w = os.pipe()
    return Channel(up_r, down_w), Channel(down_r, up_w)


def describe(e: BaseException) -> str:
    """An exception as the one line the user sees."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return str(e) or type(e).__name__
