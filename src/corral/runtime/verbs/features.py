"""`corral-runtime features`: what this runtime supports (runtime-spec features.md)."""

from __future__ import annotations

import argparse
import json

from corral.runtime.cli import Globals


def configure(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, ctx: Globals) -> int:
    from corral.runtime.features import features

    print(json.dumps(features(), indent=4))
    return 0
