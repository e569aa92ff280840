"""`-c/--change` instructions of `import` and `commit`: Dockerfile lines applied to a config.

Allowed as docker allows them: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER,
VOLUME, WORKDIR. CMD/ENTRYPOINT take the exec form (JSON array) or the shell form
(`/bin/sh -c "..."`); ENV/LABEL take `k=v ...` or the legacy `k v`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from typing import Any

from corral.errors import InvalidArgument

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
           "VOLUME", "WORKDIR")


def _command(rest: str) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", rest]


def _pairs(keyword: str, rest: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(rest)
    except ValueError as e:
        raise InvalidArgument(f"{keyword} {rest}: {e}") from None
    if words and "=" not in words[0]:
        key, _, value = rest.partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        key, sep, value = w.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{keyword} needs key=value, got {w!r}")
        out.append((key, value))
    return out


def apply(config: dict[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """Apply each change line to the runtime config section (Env, Cmd, ...); returns it."""
    for line in changes:
        keyword, _, rest = line.strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword not in ALLOWED:
            raise InvalidArgument(f"{keyword} is not a valid change command")
        if keyword in ("CMD", "ENTRYPOINT"):
            config["Cmd" if keyword == "CMD" else "Entrypoint"] = _command(rest)
        elif keyword == "ENV":
            env = [e for e in config.get("Env") or []]
            for key, value in _pairs(keyword, rest):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            config["Env"] = env
        elif keyword == "LABEL":
            config.setdefault("Labels", {}).update(dict(_pairs(keyword, rest)))
        elif keyword == "EXPOSE":
            for port in rest.split():
                config.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
        elif keyword == "VOLUME":
            paths = _command(rest) if rest.startswith("[") else rest.split()
            if paths[:2] == ["/bin/sh", "-c"]:
                paths = rest.split()
            for p in paths:
                config.setdefault("Volumes", {})[p] = {}
        elif keyword == "WORKDIR":
            config["WorkingDir"] = rest
        elif keyword == "USER":
            config["User"] = rest
        elif keyword == "STOPSIGNAL":
            config["StopSignal"] = rest
        elif keyword == "ONBUILD":
            config.setdefault("OnBuild", []).append(rest)
    return config
