"""`corral logs`: conmon's k8s-file log, printed the way docker prints its json-file logs.

Each k8s-file line is `<RFC3339Nano time> <stdout|stderr> <F|P> <text>`: F ends a line, P is a
partial line continued by the next record. `--since`/`--until` take RFC 3339 times, unix
timestamps or durations ("42m", "1h30m", "10s"); `-f` keeps reading until the container exits.
"""

from __future__ import annotations

import datetime
import os
import re
import sys
import time
from collections import deque
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from corral.containers.store import Record
from corral.errors import InvalidArgument

if TYPE_CHECKING:
    from corral.containers.lifecycle import Containers

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_time(value: str, now: float) -> float:
    """docker's --since/--until value as a unix time."""
    parts = _DURATION.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        return now - sum(float(n) * _UNIT_S[u] for n, u in parts)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return _parse_rfc3339(value)
    except ValueError:
        raise InvalidArgument(f"invalid time value {value!r}: use RFC 3339, a unix time or a duration like 10m") from None


def _parse_rfc3339(value: str) -> float:
    m = re.match(r"^(\d{4}-\d\d-\d\d(?:T\d\d:\d\d(?::\d\d)?)?)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", value)
    if not m:
        raise ValueError(value)
    base = datetime.datetime.fromisoformat(m.group(1) + (m.group(3) or "Z").replace("Z", "+00:00"))
    return base.timestamp() + (float(m.group(2)) if m.group(2) else 0.0)


def records(f: IO[bytes]) -> Iterator[tuple[str, str, bool, bytes]]:
    """(timestamp, stream, is_full_line, text) from a k8s-file log."""
    for line in f:
        if not line.endswith(b"\n"):
            f.seek(-len(line), os.SEEK_CUR)  # an unfinished record: read it again later
            return
        parts = line[:-1].split(b" ", 3)
        if len(parts) < 3:
            continue
        yield parts[0].decode(), parts[1].decode(), parts[2] == b"F", parts[3] if len(parts) > 3 else b""


def collect(engine: Containers, rec: Record, *, streams: set[str] | None = None,
            timestamps: bool = False, tail: str = "all", since: str | None = None,
            until: str | None = None) -> list[bytes]:
    """The log as it is now, as lines (for the Python API)."""
    now = time.time()
    path = engine.store.log_path(rec.id)
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        entries = [e for e in _lines(f, parse_time(since, now) if since else None,
                                     parse_time(until, now) if until else None)
                   if streams is None or e[1] in streams]
    return [(e[0].encode() + b" " if timestamps else b"") + e[2] for e in _tail(entries, tail)]


def _tail(entries: list[tuple[str, str, bytes]], tail: str) -> list[tuple[str, str, bytes]]:
    if tail == "all":
        return entries
    try:
        count = int(tail)
    except ValueError:
        raise InvalidArgument(f"invalid --tail value {tail!r}") from None
    return list(deque(entries, maxlen=count)) if count >= 0 else entries


def show(engine: Containers, rec: Record, *, follow: bool = False, since: str | None = None,
         until: str | None = None, tail: str = "all", timestamps: bool = False) -> None:
    if rec.options.get("log_driver") == "none":
        raise InvalidArgument('configured logging driver "none" does not support reading')
    now = time.time()
    since_t = parse_time(since, now) if since else None
    until_t = parse_time(until, now) if until else None
    path = engine.store.log_path(rec.id)
    if not os.path.exists(path):
        return
    with open(path, "rb") as f:
        for entry in _tail(list(_lines(f, since_t, until_t)), tail):
            _emit(entry, timestamps)
        if not follow or (until_t is not None and until_t <= now):
            return
        while True:
            observed = engine.observe(engine.store.find(rec.id) or rec)
            got = False
            for entry in _lines(f, since_t, until_t):
                _emit(entry, timestamps)
                got = True
            if not got and not observed.alive:
                for entry in _lines(f, since_t, until_t):
                    _emit(entry, timestamps)
                return
            if not got:
                time.sleep(0.1)


def _lines(f: IO[bytes], since: float | None, until: float | None) -> Iterator[tuple[str, str, bytes]]:
    pending = b""
    for stamp, stream, full, text in records(f):
        if since is not None or until is not None:
            t = _parse_rfc3339(stamp)
            if (since is not None and t < since) or (until is not None and t > until):
                continue
        pending += text
        if full:
            yield stamp, stream, pending + b"\n"
            pending = b""


def _emit(entry: tuple[str, str, bytes], timestamps: bool) -> None:
    stamp, stream, text = entry
    out = sys.stderr.buffer if stream == "stderr" else sys.stdout.buffer
    if timestamps:
        out.write(stamp.encode() + b" ")
    out.write(text)
    out.flush()
