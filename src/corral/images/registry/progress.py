"""Per-layer progress lines for pull and push, drawn like docker's on a terminal.

    3f4d90098f5b: Downloading [=================>                                 ]  70.2MB/200MB
    1c5e8d9e2a11: Pull complete

On a terminal each layer keeps one line, redrawn in place (ANSI cursor-up) at most ~10 times a
second; elsewhere (a pipe, a log, `-q`) nothing is drawn, so scripts see only the command's
result lines. Threads of a parallel transfer report through the same object (it locks).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol, TextIO

_BAR_WIDTH = 50
_REDRAW_S = 0.1
_WIDE_TERMINAL = 110  # columns: narrower terminals get the numbers without the bar


class Progress(Protocol):
    def start(self, key: str, action: str, total: int | None) -> Callable[[int], None]:
        """Show `key: action [bar]`; returns the callback to report bytes moved."""
        ...

    def done(self, key: str, text: str) -> None:
        """Show `key: text` (`Pulling fs layer`, `Already exists`, `Pull complete`, ...)."""
        ...

    def close(self) -> None: ...


class NullProgress:
    """Draws nothing: not a terminal, or `-q`."""

    def start(self, key: str, action: str, total: int | None) -> Callable[[int], None]:
        return _ignore

    def done(self, key: str, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _ignore(n: int) -> None:
    pass


def for_terminal(stream: TextIO | None = None, *, quiet: bool = False) -> Progress:
    """Bars on `stream` (stdout) if it is a terminal and not `quiet`; else nothing."""
    stream = stream or sys.stdout
    if quiet or not stream.isatty() or os.environ.get("TERM") == "dumb":
        return NullProgress()
    return TerminalProgress(stream)


def human_size(n: float) -> str:
    """Docker's HumanSize: decimal units, 4 significant digits (`1.234MB`, `200MB`)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.4g}{unit}"
        n /= 1000
    raise AssertionError("unreachable")


def bar(done: int, total: int | None, *, with_bar: bool = True) -> str:
    """`[=====>   ]  70.2MB/200MB`; only the numbers when the terminal is narrow (docker: <110)."""
    if not total:
        return human_size(done)
    numbers = f"{human_size(done):>8}/{human_size(total)}"
    if not with_bar:
        return numbers
    filled = min(_BAR_WIDTH, _BAR_WIDTH * done // total)
    arrow = ">" if filled < _BAR_WIDTH else ""
    return f"[{'=' * filled}{arrow}{' ' * (_BAR_WIDTH - filled - len(arrow))}] {numbers}"


class TerminalProgress:
    """One line per layer, redrawn in place."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        # key -> (text, bytes moved, total); insertion order = screen order; moved None: a status
        self._lines: dict[str, tuple[str, int | None, int | None]] = {}
        self._drawn = 0  # how many of our lines are on screen
        self._last_draw = 0.0

    def start(self, key: str, action: str, total: int | None) -> Callable[[int], None]:
        moved = [0]

        def advance(n: int) -> None:
            moved[0] += n
            self._set(key, (action, moved[0], total), force=False)

        self._set(key, (action, 0, total), force=True)
        return advance

    def done(self, key: str, text: str) -> None:
        self._set(key, (text, None, None), force=True)

    def close(self) -> None:
        with self._lock:
            self._draw()

    def _set(self, key: str, line: tuple[str, int | None, int | None], *, force: bool) -> None:
        with self._lock:
            self._lines[key] = line
            now = time.monotonic()
            if force or now - self._last_draw >= _REDRAW_S:
                self._draw()
                self._last_draw = now

    def _draw(self) -> None:
        # A wrapped line would break the cursor-up count: cut each to the terminal's width.
        try:
            width = os.get_terminal_size(self._stream.fileno()).columns or 80
        except OSError:
            width = 80
        out = [f"\x1b[{self._drawn}A"] if self._drawn else []
        for key, (text, moved, total) in self._lines.items():
            if moved is not None:
                text = f"{text} {bar(moved, total, with_bar=width >= _WIDE_TERMINAL)}"
            out.append(f"\r\x1b[2K{f'{key}: {text}'[:max(20, width - 1)]}\n")
        self._stream.write("".join(out))
        self._stream.flush()
        self._drawn = len(self._lines)
