"""`python -m corral.containers.cleanup --root R --runroot RR <id>`: conmon's exit command.

The light entry of `corral container cleanup`: conmon runs it when the container's program
exits, even if no corral command is alive, to record the exit, release the rootfs and the network,
and honour --rm. It looks at the record first and imports the lifecycle only if work is left.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from corral.config import Paths
    from corral.containers.store import Store

    paths = Paths(root=Path(argv[argv.index("--root") + 1]),
                  runroot=Path(argv[argv.index("--runroot") + 1]))
    rec = Store(paths).find(argv[-1])
    if rec is None or rec.state not in ("running", "paused"):
        return 0  # a foreground `run` or a `stop` already did it: skip the heavier imports
    from corral.containers.lifecycle import Containers

    Containers(paths).cleanup(rec.id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
