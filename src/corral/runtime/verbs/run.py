"""`corral-runtime run [-d] [create's flags] ID`: create + start, then (without -d) wait,
pass the exit status through and delete."""

from __future__ import annotations

from corral.runtime.cli import Globals
from corral.runtime.flags import BOOL, Args, Flag
from corral.runtime.verbs.create import CREATE_FLAGS, request

FLAGS = (*CREATE_FLAGS, Flag("detach", "d", kind=BOOL), Flag("keep", kind=BOOL))
ARGS = ("container_id",)


def run(args: Args, ctx: Globals) -> int:
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
