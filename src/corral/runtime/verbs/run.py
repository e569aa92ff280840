"""`corral-runtime run [-d] [create's flags] ID`: create + start, then (without -d) wait,
pass the exit status through and delete."""

from __future__ import annotations

import argparse

from corral.runtime.cli import Globals
from corral.runtime.verbs.create import add_create_flags, request


def configure(p: argparse.ArgumentParser) -> None:
    add_create_flags(p)
    p.add_argument("--detach", "-d", action="store_true")
    p.add_argument("--keep", action="store_true", help="do not delete the container after exit")


def run(args: argparse.Namespace, ctx: Globals) -> int:
    from corral.runtime import lifecycle
    from corral.runtime.process import foreground
    from corral.runtime.process.create import create

    if not args.detach:
        foreground.become_subreaper()
    created = create(request(args, ctx, own_terminal=not args.detach))
    container = created.container
    try:
        lifecycle.start(container, ctx.log)
    except BaseException:
        lifecycle.delete(container, force=True, log=ctx.log)
        raise
    if args.detach:
        return 0
    assert container.state is not None
    code = foreground.wait(container.state.pid, created.console_master)
    if not args.keep:
        lifecycle.delete(container, force=True, log=ctx.log)
    return code
