"""`corral-runtime create [--bundle DIR] [--console-socket S] [--pid-file F] [--no-pivot]
[--no-new-keyring] [--preserve-fds N] ID`"""

from __future__ import annotations

import os

from corral.runtime.cli import Globals
from corral.runtime.flags import BOOL, INT, Args, Flag
from corral.runtime.process.create import CreateRequest, create

CREATE_FLAGS = (
    Flag("bundle", "b", default="."),
    Flag("console-socket"),
    Flag("pid-file"),
    Flag("no-pivot", kind=BOOL),
    Flag("no-new-keyring", kind=BOOL),
    Flag("preserve-fds", kind=INT, default=0),
)
FLAGS = CREATE_FLAGS
ARGS = ("container_id",)


def request(args: Args, ctx: Globals, *, own_terminal: bool) -> CreateRequest:
    return CreateRequest(
        root=ctx.root, container_id=args.container_id, bundle=os.path.abspath(args.bundle),
        console_socket=args.console_socket, pid_file=args.pid_file, no_pivot=args.no_pivot,
        preserve_fds=args.preserve_fds, own_terminal=own_terminal,
    )


def run(args: Args, ctx: Globals) -> int:
    create(request(args, ctx, own_terminal=False))
    return 0
