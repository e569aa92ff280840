"""`corral-runtime create [--bundle DIR] [--console-socket S] [--pid-file F] [--no-pivot]
[--no-new-keyring] [--preserve-fds N] ID`"""

from __future__ import annotations

import argparse
import os

from corral.runtime.cli import Globals
from corral.runtime.process.create import CreateRequest, create


def add_create_flags(p: argparse.ArgumentParser) -> None:
    """The flags `create` and `run` share."""
    p.add_argument("--bundle", "-b", default=".")
    p.add_argument("--console-socket", default=None)
    p.add_argument("--pid-file", default=None)
    p.add_argument("--no-pivot", action="store_true")
    p.add_argument("--no-new-keyring", action="store_true")
    p.add_argument("--preserve-fds", type=int, default=0)
    p.add_argument("container_id")


def configure(p: argparse.ArgumentParser) -> None:
    add_create_flags(p)


def request(args: argparse.Namespace, ctx: Globals, *, own_terminal: bool) -> CreateRequest:
    return CreateRequest(
        root=ctx.root, container_id=args.container_id, bundle=os.path.abspath(args.bundle),
        console_socket=args.console_socket, pid_file=args.pid_file, no_pivot=args.no_pivot,
        preserve_fds=args.preserve_fds, own_terminal=own_terminal,
    )


def run(args: argparse.Namespace, ctx: Globals) -> int:
    create(request(args, ctx, own_terminal=False))
    return 0
