"""`corral-runtime state ID`: the runtime-spec state JSON."""

from __future__ import annotations

import argparse
import json

from corral.runtime.cli import Globals


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("container_id")


def run(args: argparse.Namespace, ctx: Globals) -> int:
    from corral.runtime.container import Container

    print(json.dumps(Container.load(ctx.root, args.container_id).oci_state(), indent=2))
    return 0
