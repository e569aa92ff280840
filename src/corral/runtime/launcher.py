"""Installs the `corral-runtime` launcher in place of pip's console-script wrapper.

pip's wrapper starts the interpreter with `site` (every .pth file and the editable-install
finder) and imports `re` before main(); podman, conmon and containerd start the runtime for every
step, so that is paid on each. The launcher runs the same interpreter isolated and without site
(`-I -S`: the runtime needs only the standard library) and finds corral's package directly.
The cyclic garbage collector is off: a verb lives for milliseconds and makes no cycles worth
collecting, and the collections its imports would trigger cost ~1.3 ms of CPU on create and
run (`events`, which loops until the container stops, turns it back on). It leaves with
os._exit once stdout and stderr are flushed: the interpreter's finalization
(module teardown, a last garbage collection) costs 1-3 ms of every verb and frees nothing the
kernel would not free. Nothing in the runtime relies on atexit handlers or unflushed buffers
other than the two standard streams.

    python -m corral.runtime.launcher .venv/bin/corral-runtime     (scripts/setup runs this)
"""

from __future__ import annotations

import os
import sys

TEMPLATE = """#!{python} -IS
# corral-runtime launcher, written by `python -m corral.runtime.launcher` (scripts/setup).
# The `corral` package is registered without running its __init__ (the engine's API): the
# runtime never imports the engine.
import gc
gc.disable()
import sys
corral = type(sys)("corral")
corral.__path__ = [{package!r}]
sys.modules["corral"] = corral
if {{"create", "run", "exec"}}.intersection(sys.argv[1:]):  # first thing: see cgroups/warmup.py
    from corral.runtime.cgroups import warmup
    warmup.start()
from corral.runtime.cli import main
code = main()
try:
    sys.stdout.flush()
    sys.stderr.flush()
except OSError:
    code = code or 1
import os
os._exit(code)
"""


def install(target: str) -> None:
    import corral

    package = os.path.dirname(os.path.abspath(corral.__file__))
    text = TEMPLATE.format(python=sys.executable, package=package)
    tmp = f"{target}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m corral.runtime.launcher PATH")
    install(sys.argv[1])
