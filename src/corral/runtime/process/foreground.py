"""The runtime as the parent of a foreground process (`run`, `exec` without -d): it is the
child subreaper, forwards signals, proxies its own terminal when it holds the pty master, and
returns the process's exit status the way a shell reports it (128+signal when killed)."""

from __future__ import annotations

import os
import select

from corral.runtime.errors import suppress
from corral.runtime.linux import syscalls as sc

TYPE_CHECKING = False  # typing costs milliseconds (it imports re) on every start
if TYPE_CHECKING:
    import signal as _signal
    from types import FrameType
else:  # the C module under `signal`: same calls, plain ints, none of its enums (~2 ms)
    import _signal

_NOT_FORWARDED = {_signal.SIGCHLD, _signal.SIGKILL, _signal.SIGSTOP, _signal.SIGWINCH,
                  _signal.SIGURG, _signal.SIGTTIN, _signal.SIGTTOU}


def become_subreaper() -> None:
    """Orphans of the processes we fork (init, after the intermediate exits) come to us."""
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)


def _forward_signals(pid: int, master: int | None) -> dict[int, object]:
    """Send every signal we get on to `pid` (SIGWINCH resizes the pty); the old handlers."""
    def forward(signum: int, _frame: FrameType | None) -> None:
        with suppress(ProcessLookupError):
            os.kill(pid, signum)

    def resize(_signum: int, _frame: FrameType | None) -> None:
        if master is not None:
            _copy_size(master)

    previous: dict[int, object] = {}
    for sig in _signal.valid_signals():
        if sig in _NOT_FORWARDED:
            continue
        with suppress(OSError, ValueError):
            previous[sig] = _signal.signal(sig, forward)
    previous[_signal.SIGWINCH] = _signal.signal(_signal.SIGWINCH, resize)
    return previous


def _restore_signals(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        with suppress(OSError, ValueError, TypeError):
            _signal.signal(sig, handler)  # type: ignore[arg-type]


def _copy_size(master: int) -> None:
    import fcntl
    import termios

    with suppress(OSError):
        size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)


def _proxy_raw(master: int) -> None:
    """_proxy with our terminal (if stdin is one) in raw mode, restored afterwards."""
    if not os.isatty(0):
        _proxy(master)
        return
    import termios
    import tty

    saved = termios.tcgetattr(0)
    tty.setraw(0)
    try:
        _proxy(master)
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
    previous = _forward_signals(pid, master)
    try:
        if master is not None:
            _copy_size(master)
            _proxy_raw(master)
            os.close(master)
        _, status = os.waitpid(pid, 0)
    finally:
        _restore_signals(previous)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
