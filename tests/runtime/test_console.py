"""process.terminal: the pty master arrives over --console-socket with SCM_RIGHTS (as conmon
receives it from runc), and `run` without a socket uses the runtime's own stdio."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.conftest import corral_bin
from tests.runtime.corral_bundle import Bundle, Runtime, new_id


def _read_all(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO once the container side is closed
            return out
        if not chunk:
            return out
        out += chunk


def test_console_socket_receives_the_pty_master(runtime: Runtime, bundle: Bundle,
                                                tmp_path: Path) -> None:
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["consoleSize"] = {"height": 33, "width": 101}
    bundle.shell("tty; stty size; ls -l /dev/console | cut -c1").write()
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    cid = new_id()
    create = subprocess.Popen([corral_bin("corral-runtime"), "--root", str(runtime.root),
                               "create", "--console-socket", path, "-b", str(bundle.path), cid])
    server.settimeout(20)
    conn, _ = server.accept()
    name, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    conn.close()
    server.close()
    assert create.wait(timeout=20) == 0
    assert name == b"/dev/ptmx"
    assert len(fds) == 1
    master = fds[0]
    runtime("start", cid, check=True)
    output = _read_all(master).decode()
    os.close(master)
    assert output.splitlines() == ["/dev/pts/0", "33 101", "c"]


def test_run_with_terminal_uses_the_runtimes_stdio(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["terminal"] = True
    bundle.shell("read line; echo got $line; test -t 0 && echo tty; exit 5").write()
    out = runtime("run", "-b", str(bundle.path), new_id(), input="hello\n")
    assert out.returncode == 5
    assert "got hello" in out.stdout
    assert "tty" in out.stdout.split()
