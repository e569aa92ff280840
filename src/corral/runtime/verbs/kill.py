"""`corral-runtime kill [--all] ID [SIGNAL]` (SIGTERM by default; names or numbers)."""

from __future__ import annotations

import argparse

from corral.runtime.cli import Globals


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", "-a", action="store_true")
    p.add_argument("container_id")
    p.add_argument("signal", nargs="?", default="SIGTERM")


def run(args: argparse.Namespace, ctx: Globals) -> int:
    from corral.runtime import lifecycle
    from corral.runtime.container import Container

    signum = lifecycle.parse_signal(args.signal)
    container = Container.load(ctx.root, args.container_id)
    lifecycle.kill(container, signum, all_processes=args.all)
    return 0
