"""Relay the caller's terminal to a container through conmon's attach socket.

conmon's attach socket (`<bundle>/attach`) is SOCK_SEQPACKET: each packet from conmon starts
with one byte naming the stream (2 stdout, 3 stderr); what the client sends goes to the
container's stdin, and shutting down the write side closes it. With a tty, the caller's terminal
goes raw, window sizes go to conmon's ctl fifo ("1 <rows> <cols>"), and the detach keys
(ctrl-p ctrl-q by default) leave the container running.
"""

from __future__ import annotations

import _socket  # the C socket type: the `socket` module's enums cost every foreground run ~1 ms
import contextlib
import os
import select
import sys
from collections.abc import Iterator

TYPE_CHECKING = False  # not typing's: on every foreground `corral run`
if TYPE_CHECKING:
    import signal
    from types import FrameType
else:  # the C module under `signal`: same calls, plain ints, none of its enums (~2 ms)
    import _signal as signal

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q
_STDOUT, _STDERR = 2, 3
_BUF = 8192 + 1


def connect(bundle: str) -> _socket.socket:
    """Connect to the attach socket by a /proc/self/fd path (sun_path is only 108 bytes)."""
    dirfd = os.open(bundle, os.O_PATH | os.O_DIRECTORY)
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        sock.connect(f"/proc/self/fd/{dirfd}/attach")
        return sock
    finally:
        os.close(dirfd)


def parse_detach_keys(spec: str | None) -> bytes:
    """docker's --detach-keys syntax: "ctrl-p,ctrl-q", letters, ctrl-@ ... ctrl-_."""
    if spec is None:
        return DEFAULT_DETACH_KEYS
    keys = bytearray()
    for key in filter(None, spec.split(",")):
        if key.startswith("ctrl-") and len(key) == 6:
            keys.append((ord(key[5].upper()) - 64) & 0x7F)
        elif len(key) == 1:
            keys.append(ord(key))
        else:
            raise ValueError(f"invalid detach keys: {spec!r}")
    return bytes(keys)


def resize(bundle: str, fd: int) -> None:
    try:
        size = os.get_terminal_size(fd)
        ctl = os.open(os.path.join(bundle, "ctl"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.write(ctl, f"1 {size.lines} {size.columns}\n".encode())
    except OSError:
        pass
    finally:
        os.close(ctl)


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    import termios
    import tty

    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


_PROXIED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


@contextlib.contextmanager
def signals_proxied_to(pid: int | None) -> Iterator[None]:
    """docker's --sig-proxy: signals this command receives go to the container's init."""
    if pid is None:
        yield
        return

    def forward(sig: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    saved = {sig: signal.signal(sig, forward) for sig in _PROXIED}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def relay(sock: _socket.socket, *, bundle: str, stdin: bool, tty: bool,
          detach_keys: bytes = DEFAULT_DETACH_KEYS, proxy_signals_to: int | None = None) -> bool:
    """Copy streams until the container closes them; True if the user detached instead."""
    with signals_proxied_to(None if tty else proxy_signals_to):
        return _relay(sock, bundle=bundle, stdin=stdin, tty=tty, detach_keys=detach_keys)


def _relay(sock: _socket.socket, *, bundle: str, stdin: bool, tty: bool, detach_keys: bytes) -> bool:
    in_fd, out_fd, err_fd = sys.stdin.fileno(), sys.stdout.fileno(), sys.stderr.fileno()
    poller = select.poll()  # not selectors: its imports cost each foreground run ~0.5 ms
    sock_fd = sock.fileno()
    poller.register(sock_fd, select.POLLIN)
    if stdin:
        poller.register(in_fd, select.POLLIN)
    old_winch = None
    if tty and os.isatty(out_fd):
        resize(bundle, out_fd)

        def on_winch(_sig: int, _frame: FrameType | None) -> None:
            resize(bundle, out_fd)

        old_winch = signal.signal(signal.SIGWINCH, on_winch)
    matched = 0
    try:
        with raw_terminal(in_fd) if (tty and stdin) else contextlib.nullcontext():
            while True:
                for fd, _ in poller.poll():
                    if fd == sock_fd:
                        data = sock.recv(_BUF)
                        if not data:
                            return False
                        os.write(err_fd if data[0] == _STDERR else out_fd, data[1:])
                        continue
                    chunk = os.read(in_fd, 4096)
                    if not chunk:
                        poller.unregister(in_fd)
                        with contextlib.suppress(OSError):
                            sock.shutdown(_socket.SHUT_WR)
                        continue
                    if tty and detach_keys:
                        for byte in chunk:
                            matched = matched + 1 if byte == detach_keys[matched] else (
                                1 if byte == detach_keys[0] else 0)
                            if matched == len(detach_keys):
                                return True
                    sock.sendall(chunk)
    finally:
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)
