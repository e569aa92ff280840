"""The README's first command: a busybox container from Debian's busybox-static, run through
corral-runtime, showing its own hostname, pid 1 and an empty network."""

from __future__ import annotations

import sys


def main() -> int:
    print("corral demo: the runtime is not built yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
