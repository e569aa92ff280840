"""`corral-runtime delete [--force] ID`."""

from __future__ import annotations

from corral.runtime.cli import Globals
from corral.runtime.flags import BOOL, Args, Flag

FLAGS = (Flag("force", "f", kind=BOOL),)
ARGS = ("container_id",)


def run(args: Args, ctx: Globals) -> int:
    from corral.runtime import lifecycle
    from corral.runtime.container import Container
    from corral.runtime.errors import NotFound

    try:
        container = Container.load(ctx.root, args.container_id)
    except NotFound:
        if args.force:  # runc: --force on a missing container succeeds
            return 0
        raise
    lifecycle.delete(container, force=args.force, log=ctx.log)
    return 0
