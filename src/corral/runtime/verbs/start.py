"""`corral-runtime start ID`: release a created container's init."""

from __future__ import annotations

from corral.runtime.cli import Globals
from corral.runtime.flags import Args, Flag

FLAGS: tuple[Flag, ...] = ()
ARGS = ("container_id",)


def run(args: Args, ctx: Globals) -> int:
    from corral.runtime import lifecycle
    from corral.runtime.container import Container

    lifecycle.start(Container.load(ctx.root, args.container_id), ctx.log)
    return 0
