"""`corral-runtime state ID`: the runtime-spec state JSON."""

from __future__ import annotations

from corral.runtime import jsonio
from corral.runtime.cli import Globals
from corral.runtime.flags import Args, Flag

FLAGS: tuple[Flag, ...] = ()
ARGS = ("container_id",)


def run(args: Args, ctx: Globals) -> int:
    from corral.runtime.container import Container

    print(jsonio.dumps(Container.load(ctx.root, args.container_id).oci_state(), indent=2))
    return 0
