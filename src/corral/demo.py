"""The README's first command: a busybox container from Debian's busybox-static, run through
corral-runtime, showing its own hostname, pid 1 and an empty network.

The bundle is made in a temporary directory (rootfs from corral.images.busybox, config.json as
`corral-runtime spec` writes it) and removed afterwards; `run` deletes the container itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from corral.images import busybox
from corral.runtime.verbs.spec import default_spec

SCRIPT = r"""
echo "hostname:  $(hostname)"
echo "processes (the shell is pid 1):"
ps -o pid,user,args
echo "network interfaces (only loopback, and it is down):"
ip addr
cat /proc/net/dev
"""


def runtime_binary() -> str:
    """The console script next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "corral-runtime"
    if beside.exists():
        return str(beside)
    found = shutil.which("corral-runtime")
    if found is None:
        raise SystemExit("corral demo: corral-runtime is not installed (run scripts/setup)")
    return found


def make_bundle(where: Path) -> Path:
    rootfs = busybox.make_rootfs(where / "rootfs")
    (rootfs / "demo.sh").write_text(SCRIPT.lstrip())
    config = default_spec()
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "/demo.sh"]
    config["hostname"] = "corral-demo"
    (where / "config.json").write_text(json.dumps(config, indent=2))
    return where


def main() -> int:
    if os.geteuid() != 0:
        print("corral demo: run as root (namespaces, mounts, cgroups)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="corral-demo-") as tmp:
        bundle = make_bundle(Path(tmp))
        container_id = f"corral-demo-{os.getpid()}"
        print(f"$ corral-runtime run --bundle {bundle} {container_id}", flush=True)
        result = subprocess.run([runtime_binary(), "run", "--bundle", str(bundle), container_id])
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
