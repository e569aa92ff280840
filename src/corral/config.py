"""Where corral keeps things, and which runtime it uses.

Root uses system paths (like podman's /var/lib/containers): `CORRAL_ROOT` and `CORRAL_RUNROOT`
override them, which the tests use to give each test its own store. A non-root user gets
`~/.local/share/corral` and `$XDG_RUNTIME_DIR/corral`.

The paths are strings, joined with os.path: `ps`, `run` and `exec` never import pathlib, whose
imports (fnmatch, re, enum, urllib.parse, ipaddress) cost ~5 ms of every command's start.
Modules off the hot paths wrap them in `Path` where that reads better.
"""

from __future__ import annotations

import os

from corral.records import NamedTuple


class Paths(NamedTuple):  # a NamedTuple, not a dataclass: `dataclasses` costs ~8 ms at startup
    root: str  # persistent: store, state database, volumes
    runroot: str  # volatile (tmpfs, gone after a reboot): runtime state, mounts, sockets

    @property
    def database(self) -> str:
        return os.path.join(self.root, "corral.db")


def paths() -> Paths:
    env_root = os.environ.get("CORRAL_ROOT")
    env_run = os.environ.get("CORRAL_RUNROOT")
    if os.geteuid() == 0:
        return Paths(root=env_root or "/var/lib/corral", runroot=env_run or "/run/corral")
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    xdg_run = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/corral-run-{os.geteuid()}"
    return Paths(root=env_root or os.path.join(data, "corral"),
                 runroot=env_run or os.path.join(xdg_run, "corral"))
