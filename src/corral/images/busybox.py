"""A busybox root filesystem made offline from Debian's busybox-static.

corral's built-in default image and the runtime's test bundles both start from this tree, so
nothing needs a registry on the internet. The tree holds the static binary, one symlink per applet
(as `busybox --install -s` would make), and the few files a container expects in /etc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BUSYBOX_BINARY = Path("/bin/busybox")

_PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
_GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
tty:x:5:
www-data:x:33:
users:x:100:
nogroup:x:65534:
"""
_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "var/www", "home",
         "proc", "sys", "dev")


def applets(binary: Path = BUSYBOX_BINARY) -> list[str]:
    """The install paths of every applet, relative to /, e.g. `usr/bin/nc`."""
    out = subprocess.run([str(binary), "--list-full"], check=True, capture_output=True, text=True)
    return [line for line in out.stdout.split() if line]


def make_rootfs(dest: Path, binary: Path = BUSYBOX_BINARY) -> Path:
    """Fill `dest` (created if missing) with a busybox root filesystem and return it."""
    if not binary.exists():
        raise FileNotFoundError(f"{binary} is missing: install Debian's busybox-static")
    for d in _DIRS:
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chmod(dest / "root", 0o700)
    shutil.copy2(binary, dest / "bin/busybox")
    for applet in applets(binary):
        link = dest / applet
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (dest / "etc/passwd").write_text(_PASSWD)
    (dest / "etc/group").write_text(_GROUP)
    return dest
