"""`corral-runtime delete [--force] ID`."""

from __future__ import annotations

import argparse

from corral.runtime.cli import Globals


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", "-f", action="store_true")
    p.add_argument("container_id")


def run(args: argparse.Namespace, ctx: Globals) -> int:
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
