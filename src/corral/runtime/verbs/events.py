"""`corral-runtime events [--stats] [--interval 5s] ID`: runc's container events.

With --stats one stats event is printed; without, a stats event every interval and an "oom"
event whenever the cgroup's OOM-kill count grows, until the container stops (containerd's runc
shim reads these for `ctr task metrics` and OOM notices).
"""

from __future__ import annotations

import sys
import time

from corral.runtime import jsonio
from corral.runtime.cli import Globals
from corral.runtime.container import Container, Status
from corral.runtime.errors import InvalidState, RuntimeFailure
from corral.runtime.flags import BOOL, Args, Flag

FLAGS = (Flag("stats", kind=BOOL), Flag("interval", default="5s"))
ARGS = ("container_id",)


def _seconds(text: str) -> float:
    """Go durations as runc takes them: "5s", "500ms", "1m"."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * scale
    raise RuntimeFailure(f"invalid interval {text!r}")


def _emit(kind: str, container_id: str, data: object) -> None:
    sys.stdout.write(jsonio.dumps({"type": kind, "id": container_id, "data": data}) + "\n")
    sys.stdout.flush()


def run(args: Args, ctx: Globals) -> int:
    import gc

    gc.enable()  # the launcher turns it off for short-lived verbs; this one loops
    interval = _seconds(args.interval)
    container = Container.load(ctx.root, args.container_id)
    if container.status() in (Status.STOPPED, Status.CREATING):
        raise InvalidState("container not running")
    manager = container.cgroup()
    if args.stats:
        _emit("stats", container.id, manager.stats())
        return 0
    ooms = manager.oom_kill_count()
    next_stats = 0.0
    while container.alive():
        count = manager.oom_kill_count()
        if count > ooms:
            _emit("oom", container.id, {})
            ooms = count
        if time.monotonic() >= next_stats:
            _emit("stats", container.id, manager.stats())
            next_stats = time.monotonic() + interval
        time.sleep(min(interval, 0.2))
    return 0
