"""The `corral` console script: container commands go straight to their parser, the rest to click.

`corral run`, `ps` and `exec` are the hot paths (the benchmarks hold them to docker's and
podman's times), so they skip importing click (~20 ms); everything else, and `corral --help`,
goes through `corral.cli.main`, where the same commands are listed via their click wrappers.
"""

from __future__ import annotations

import os
import sys

_DIRECT = frozenset({"container", "run", "create", "start", "stop", "restart", "kill", "rm", "ps",
                     "inspect", "logs", "exec", "attach", "wait", "pause", "unpause", "rename", "cp",
                     "diff", "export", "commit", "top", "stats", "update", "volume"})


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in _DIRECT:
        if argv[0] == "volume":
            from corral.cli import volume

            _exit(volume.dispatch(argv[1:]))
        from corral.cli import container

        _exit(container.dispatch(argv))
    if argv[:1] == ["images"] or argv[:2] in (["image", "ls"], ["image", "list"]):
        from corral.cli import image_list  # listing is held to docker's ~30 ms: no click

        _exit(image_list.main(argv[1 if argv[0] == "images" else 2:]))
    import gc

    gc.freeze()  # off since the launcher (cli/launcher.py): click's commands (pull, ...) run long
    gc.enable()
    from corral.cli.main import main as click_main

    click_main()


def _exit(code: int) -> None:
    """Leave without the interpreter's teardown (freeing every module and object: a few ms per
    command): what was written is flushed, the exit code is the command's. A stdout that can
    no longer be written gets the interpreter's own code for that, 120."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 120
    os._exit(code)
