"""`corral-runtime pause ID`: freeze every process of the container."""

from __future__ import annotations

import argparse

from corral.runtime.cli import Globals


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container_id")


def run(args: argparse.Namespace, ctx: Globals) -> int:
    from corral.runtime.container import Container

    container = Container.load(ctx.root, args.container_id)
    container.require(container.status().can_pause(), "pause")
    container.cgroup().freeze()
    return 0
