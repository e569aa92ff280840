"""`python -m corral.containers.cleanup --root R --runroot RR <id>`: conmon's exit command.

The light entry of `corral container cleanup`: conmon runs it when the container's program
exits, even if no corral command is alive, to record the exit, release the rootfs and the network,
and honour --rm. It looks at the bundle first (a foreground `run` usually has done the work), then
at the record, and imports the lifecycle only if work is left.
"""

from __future__ import annotations

import fcntl
import os
import sys


def torn_down(runroot: str, cid: str) -> bool:
    """True when the container's bundle is gone once nobody holds its lock: whoever tore it down
    recorded the exit first (store.py's layout: <runroot>/containers/<id>, <runroot>/locks/<id>).
    Needs no SQLite (nor pathlib), whose imports are most of an exit command's cost."""
    bundle = os.path.join(runroot, "containers", cid)
    if not os.path.exists(bundle):
        return True
    try:
        fd = os.open(os.path.join(runroot, "locks", cid), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return not os.path.exists(bundle)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a foreground `run` or a `stop` may be cleaning up
        return not os.path.exists(bundle)
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    runroot = argv[argv.index("--runroot") + 1]
    if torn_down(runroot, argv[-1]):
        return 0
    from corral.config import Paths
    from corral.containers.store import Store

    paths = Paths(root=argv[argv.index("--root") + 1], runroot=runroot)
    rec = Store(paths).find(argv[-1])
    if rec is None or rec.state not in ("running", "paused"):
        return 0  # a foreground `run` or a `stop` already did it: skip the heavier imports
    from corral.containers.lifecycle import Containers

    Containers(paths).cleanup(rec.id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
