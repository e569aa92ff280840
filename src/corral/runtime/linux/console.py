"""The container's terminal: a pty made inside the container's devpts, its master sent over the
console socket with SCM_RIGHTS exactly as runc does (conmon and podman receive it), its slave
bound over /dev/console and made the init's controlling terminal and stdio."""

from __future__ import annotations

import os
import struct

from corral.runtime.errors import RuntimeFailure
from corral.runtime.linux import inroot
from corral.runtime.linux import syscalls as sc

TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def terminal_channel(console_socket: str | None, own_terminal: bool) -> tuple[int, int | None]:
    """Where the pty master goes: (fd the container side sends it on, fd the runtime keeps to
    receive it). With --console-socket the master goes straight to that socket (conmon,
    containerd); a foreground `run -t`/`exec -t` receives it itself over a socketpair."""
    import socket

    if console_socket is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(console_socket)
        except OSError as e:
            sock.close()
            raise RuntimeFailure(f"connecting to console socket {console_socket}: "
                                 f"{e.strerror}") from None
        return sock.detach(), None
    if not own_terminal:
        raise RuntimeFailure("cannot allocate tty if corral-runtime will detach without setting "
                             "console socket")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return theirs.detach(), ours.detach()


def take_master(keep: int | None) -> int | None:
    """The pty master the container side sent on `terminal_channel`'s kept end (then closed)."""
    if keep is None:
        return None
    try:
        return receive_fd(keep)
    finally:
        os.close(keep)


def open_pty() -> tuple[int, int]:
    """(master, slave) from the /dev/ptmx the process sees (the container's, after pivot)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    sc.ioctl_int(master, TIOCSPTLCK, 0)
    slave = sc.ioctl_plain(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    return master, slave


def set_size(fd: int, height: int, width: int) -> None:
    import fcntl

    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def send_fd(socket_fd: int, fd: int, name: bytes) -> None:
    """runc's utils.SendFile: the name as the message body, the fd as SCM_RIGHTS."""
    import socket

    sock = socket.socket(fileno=os.dup(socket_fd))
    try:
        socket.send_fds(sock, [name], [fd])
    finally:
        sock.close()


def send_master(socket_fd: int, master: int) -> None:
    send_fd(socket_fd, master, b"/dev/ptmx")


def receive_fd(sock_fd: int) -> int:
    """The receiving side (the pty master for run -t without --console-socket; the seccomp
    notify fd from init)."""
    import socket

    sock = socket.socket(fileno=os.dup(sock_fd))
    try:
        _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    finally:
        sock.close()
    if not fds:
        raise OSError("no file descriptor received")
    os.set_inheritable(fds[0], False)
    return fds[0]


def mount_console(slave: int) -> None:
    """Bind the pty slave over /dev/console (after pivot_root; paths resolved in the root)."""
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = inroot.ensure_file(rootfd, "/dev/console", 0o600)
        try:
            sc.mount(inroot.proc_path(slave), inroot.proc_path(fd), None, sc.MS_BIND)
        finally:
            os.close(fd)
    finally:
        os.close(rootfd)


def become_controlling(slave: int) -> None:
    """A new session with the pty as its terminal and stdio."""
    os.setsid()
    sc.ioctl_plain(slave, TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)
