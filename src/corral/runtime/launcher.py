"""Installs the `corral-runtime` launcher in place of pip's console-script wrapper.

pip's wrapper starts the interpreter with `site` (every .pth file and the editable-install
finder) and imports `re` before main(); podman, conmon and containerd start the runtime for every
step, so that is paid on each. The launcher runs the same interpreter isolated and without site
(`-I -S`: the runtime needs only the standard library) with corral's own directory on sys.path.

    python -m corral.runtime.launcher .venv/bin/corral-runtime     (scripts/setup runs this)
"""

from __future__ import annotations

import os
import sys

TEMPLATE = """#!{python} -IS
# corral-runtime launcher, written by `python -m corral.runtime.launcher` (scripts/setup).
import sys
sys.path.insert(0, {path!r})
from corral.runtime.cli import main
sys.exit(main())
"""


def install(target: str) -> None:
    import corral

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(corral.__file__)))
    text = TEMPLATE.format(python=sys.executable, path=package_parent)
    tmp = f"{target}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m corral.runtime.launcher PATH")
    install(sys.argv[1])
