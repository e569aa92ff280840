"""Where corral keeps things, and which runtime it uses.

Root uses system paths (like podman's /var/lib/containers): `CORRAL_ROOT` and `CORRAL_RUNROOT`
override them, which the tests use to give each test its own store. A non-root user gets
`~/.local/share/corral` and `$XDG_RUNTIME_DIR/corral`.
"""

from __future__ import annotations

import os
from pathlib import Path

from corral.records import NamedTuple


class Paths(NamedTuple):  # a NamedTuple, not a dataclass: `dataclasses` costs ~8 ms at startup
    root: Path  # persistent: store, state database, volumes
    runroot: Path  # volatile (tmpfs, gone after a reboot): runtime state, mounts, sockets

    @property
    def database(self) -> Path:
        return self.root / "corral.db"


def paths() -> Paths:
    env_root = os.environ.get("CORRAL_ROOT")
    env_run = os.environ.get("CORRAL_RUNROOT")
    if os.geteuid() == 0:
        root = Path(env_root or "/var/lib/corral")
        runroot = Path(env_run or "/run/corral")
    else:
        data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share")
        xdg_run = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/corral-run-{os.geteuid()}"
        root = Path(env_root or data / "corral")
        runroot = Path(env_run or Path(xdg_run) / "corral")
    return Paths(root=root, runroot=runroot)
