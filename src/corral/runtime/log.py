"""Error and debug reporting in runc's formats.

runc logs through logrus: without --log the line goes to stderr in the chosen format; with --log
the formatted line goes to the file (conmon, podman and containerd read it) and stderr gets the
bare message.
"""

from __future__ import annotations

import os
import sys
import time


class Logger:
    def __init__(self, path: str | None, fmt: str, debug: bool) -> None:
        self.path = path
        self.fmt = fmt
        self.debug_enabled = debug

    def _line(self, level: str, msg: str) -> str:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.fmt == "json":
            from corral.runtime import jsonio

            return jsonio.dumps({"level": level, "msg": msg, "time": now}) + "\n"
        quoted = msg.replace("\\", "\\\\").replace('"', '\\"')
        return f'time="{now}" level={level} msg="{quoted}"\n'

    def _write(self, level: str, msg: str) -> None:
        line = self._line(level, msg).encode()
        if self.path is None:
            os.write(2, line)
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def error(self, msg: str) -> None:
        self._write("error", msg)
        if self.path is not None:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    def warning(self, msg: str) -> None:
        self._write("warning", msg)

    def debug(self, msg: str) -> None:
        if self.debug_enabled:
            self._write("debug", msg)
