"""`corral-runtime pause ID`: freeze every process of the container."""

from __future__ import annotations

from corral.runtime.cli import Globals
from corral.runtime.flags import Args, Flag

FLAGS: tuple[Flag, ...] = ()
ARGS = ("container_id",)


def run(args: Args, ctx: Globals) -> int:
    from corral.runtime.container import Container

    container = Container.load(ctx.root, args.container_id)
    container.require(container.status().can_pause(), "pause")
    container.cgroup().freeze()
    return 0
