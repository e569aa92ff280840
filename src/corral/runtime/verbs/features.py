"""`corral-runtime features`: what this runtime supports (runtime-spec features.md)."""

from __future__ import annotations

import json

from corral.runtime.cli import Globals
from corral.runtime.flags import Args, Flag

FLAGS: tuple[Flag, ...] = ()
ARGS = ()


def run(args: Args, ctx: Globals) -> int:
    from corral.runtime.features import features

    print(json.dumps(features(), indent=4))
    return 0
