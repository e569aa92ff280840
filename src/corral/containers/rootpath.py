"""Resolve a path the image controls inside a container's root, never outside it.

`resolve(root, path)` walks `path` one component at a time, following symlinks as the container
would see them: an absolute link target restarts at `root`, and `..` never climbs above it. This is
what WORKDIR, volume mount points, /etc/passwd lookups and `cp` use, so an image holding
`etc -> /host/etc` or `x -> ../../..` cannot make corral read or write the host.
"""

from __future__ import annotations

import os

from corral.errors import InvalidArgument

_MAX_LINKS = 255


def resolve(root: str, path: str) -> str:
    """The host path of `path` inside `root`; the last component may not exist yet."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError:  # not a symlink, or does not exist
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise InvalidArgument(f"too many levels of symbolic links in {path!r}")
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return os.path.join(root, *resolved)


def mkdir_in_root(root: str, path: str, mode: int = 0o755) -> str:
    """Create `path` (and parents) inside `root`, resolving every component inside it."""
    current = "/"
    for part in [p for p in path.split("/") if p not in ("", ".")]:
        current = os.path.join(current, part)
        host = resolve(root, current)
        if not os.path.exists(host):
            os.mkdir(host, mode)
        elif not os.path.isdir(host):
            raise InvalidArgument(f"{current} in the container is not a directory")
    return resolve(root, path)
