"""Installs the `corral` launcher in place of pip's console-script wrapper.

pip's wrapper starts the interpreter with `site` (every .pth file, the editable-install finder,
Debian's sitecustomize) and imports `re` before main(): ~2-3 ms on every `corral run`, which is
held to half of podman's time. The launcher runs the same interpreter isolated and without
site (`-I -S`) and puts corral's package directory and the site-packages directories (click,
isal and zstandard for the commands that use them) on sys.path itself. It also starts with the
cyclic garbage collector off (~3 ms: start-up's objects all live until exit). pip's wrapper stays
correct: a plain `pip install` just keeps the slower start.

    python -m corral.cli.launcher .venv/bin/corral     (scripts/setup runs this)
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

TEMPLATE = """#!{python} -IS
# corral launcher, written by `python -m corral.cli.launcher` (scripts/setup): no site, no re,
# no cyclic GC while starting (corral.cli.fast turns it on for commands that run long).
import gc, sys
gc.disable()
sys.path += {paths!r}
from corral.cli.fast import main
sys.exit(main())
"""


def search_path() -> list[str]:
    """corral's package parent first, then the interpreter's existing site-packages dirs."""
    import corral

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(corral.__file__)))
    paths = [package_parent]
    for directory in site.getsitepackages():
        if os.path.isdir(directory) and directory not in paths:
            paths.append(directory)
    return paths


def install(target: Path) -> None:
    from corral.fsutil import atomic_write

    text = TEMPLATE.format(python=sys.executable, paths=search_path())
    atomic_write(target, text.encode(), mode=0o755)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m corral.cli.launcher PATH")
    install(Path(sys.argv[1]))
