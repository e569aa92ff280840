"""`corral-runtime start ID`: release a created container's init."""

from __future__ import annotations

import argparse

from corral.runtime.cli import Globals


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container_id")


def run(args: argparse.Namespace, ctx: Globals) -> int:
    from corral.runtime import lifecycle
    from corral.runtime.container import Container

    lifecycle.start(Container.load(ctx.root, args.container_id), ctx.log)
    return 0
