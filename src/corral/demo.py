"""The README's first command: `corral run` on the built-in busybox image (made offline from
Debian's busybox-static), showing what the container sees of itself: its own hostname, its shell
as pid 1, its own mounts and its own (empty) network namespace.

It runs exactly what a user would type, through the same CLI entry, so the demo exercises the
engine (image store, overlay rootfs, conmon, corral-runtime) end to end.
"""

from __future__ import annotations

import os
import shlex
import sys

SCRIPT = r"""
echo "hostname:   $(hostname)   (the host is $HOST_NAME)"
echo "processes:  the shell is pid $$"
ps -o pid,user,comm
echo "mounts:     its own root and /proc, /dev, /sys, not the host's"
grep -v cgroup /proc/mounts | cut -d' ' -f2,3 | tr '\n' ' '; echo
echo "network:    $(ls /sys/class/net | tr '\n' ' ')(a namespace of its own)"
echo "capabilities: $(grep CapEff /proc/self/status | cut -f2) (Docker's default set)"
"""


def argv() -> list[str]:
    return ["run", "--rm", "--network", "none", "--hostname", "corral-demo",
            "-e", f"HOST_NAME={os.uname().nodename}", "busybox", "sh", "-c", SCRIPT.strip()]


def main() -> int:
    if os.geteuid() != 0:
        print("corral demo: run as root (namespaces, mounts, cgroups)", file=sys.stderr)
        return 1
    from corral.cli import container

    args = argv()
    shown = " ".join(shlex.quote(a) for a in args[:-1]) + " '<script>'"
    print(f"$ corral {shown}", flush=True)
    return container.dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
