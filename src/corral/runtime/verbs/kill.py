"""`corral-runtime kill [--all] ID [SIGNAL]` (SIGTERM by default; names or numbers)."""

from __future__ import annotations

from corral.runtime.cli import Globals
from corral.runtime.flags import BOOL, Args, Flag

FLAGS = (Flag("all", "a", kind=BOOL),)
ARGS = ("container_id", "signal?")


def run(args: Args, ctx: Globals) -> int:
    from corral.runtime import lifecycle
    from corral.runtime.container import Container

    signum = lifecycle.parse_signal(args.signal or "SIGTERM")
    container = Container.load(ctx.root, args.container_id)
    lifecycle.kill(container, signum, all_processes=args.all)
    return 0
