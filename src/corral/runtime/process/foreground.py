"""The runtime as the parent of a foreground process (`run`, `exec` without -d): it is the
child subreaper, forwards signals, proxies its own terminal when it holds the pty master, and
returns the process's exit status the way a shell reports it (128+signal when killed)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Iterator
from types import FrameType

from corral.runtime.linux import syscalls as sc

_NOT_FORWARDED = {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP, signal.SIGWINCH,
                  signal.SIGURG, signal.SIGTTIN, signal.SIGTTOU}


def become_subreaper() -> None:
    """Orphans of the processes we fork (init, after the intermediate exits) come to us."""
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)


@contextlib.contextmanager
def _forwarding(pid: int, master: int | None) -> Iterator[None]:
    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def resize(_signum: int, _frame: FrameType | None) -> None:
        if master is not None:
            _copy_size(master)

    previous = {}
    for sig in signal.Signals:
        if sig in _NOT_FORWARDED:
            continue
        with contextlib.suppress(OSError, ValueError):
            previous[sig] = signal.signal(sig, forward)
    previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, resize)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(sig, handler)


def _copy_size(master: int) -> None:
    import fcntl
    import termios

    with contextlib.suppress(OSError):
        size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)


@contextlib.contextmanager
def _raw_stdin() -> Iterator[None]:
    if not os.isatty(0):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(0)
    tty.setraw(0)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _proxy(master: int) -> None:
    """Copy stdin -> pty and pty -> stdout until the container side closes."""
    sources = [0, master]
    while True:
        readable, _, _ = select.select(sources, [], [])
        if master in readable:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every slave fd is closed
                return
            if not data:
                return
            os.write(1, data)
        if 0 in readable:
            data = os.read(0, 65536)
            if data:
                os.write(master, data)
            else:
                sources.remove(0)


def wait(pid: int, master: int | None = None) -> int:
    """Wait for `pid` (our child or adopted orphan) and return its shell-style exit code."""
    with _forwarding(pid, master):
        if master is not None:
            _copy_size(master)
            with _raw_stdin():
                _proxy(master)
            os.close(master)
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
