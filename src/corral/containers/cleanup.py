"""`python -m corral.containers.cleanup --root R --runroot RR <id>`: conmon's exit command.

The light entry of `corral container cleanup`: conmon runs it when the container's program
exits, even if no corral command is alive, to record the exit, release the rootfs and the network,
and honour --rm. It imports only the lifecycle.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from corral.config import Paths
    from corral.containers.lifecycle import Containers

    root = Path(argv[argv.index("--root") + 1])
    runroot = Path(argv[argv.index("--runroot") + 1])
    Containers(Paths(root=root, runroot=runroot)).cleanup(argv[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
