"""Run a function in a forked child of the test process and get back its exit or its signal.

seccomp filters, capability sets and cgroup membership cannot be undone, so every test that
changes them does it in a child. The child reports a JSON value through a pipe.
"""

from __future__ import annotations

import json
import os
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class ChildResult:
    exit_code: int | None     # None when killed by a signal
    signal: int | None
    value: Any                # what the function returned (JSON), None if it did not return

    @property
    def killed_by(self) -> str | None:
        return signal.Signals(self.signal).name if self.signal else None


def run_forked(fn: Callable[[], Any], *, before_start: Callable[[int], None] | None = None) -> ChildResult:
    """Fork; the child runs `fn()` and sends its return value back; the parent waits.

    `before_start(pid)` runs in the parent before the child starts `fn` (to put it in a cgroup).
    """
    value_r, value_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.close(value_r)
            os.close(go_w)
            os.read(go_r, 1)
            result = fn()
            os.write(value_w, json.dumps({"value": result}).encode())
        except BaseException:
            os.write(value_w, json.dumps({"error": traceback.format_exc()}).encode())
            code = 99
        os._exit(code)
    os.close(value_w)
    os.close(go_r)
    try:
        if before_start is not None:
            before_start(pid)
        os.write(go_w, b"g")
    finally:
        os.close(go_w)
        chunks = []
        while chunk := os.read(value_r, 65536):
            chunks.append(chunk)
        os.close(value_r)
        _, status = os.waitpid(pid, 0)
    report = json.loads(b"".join(chunks) or b"{}")
    if "error" in report:
        raise AssertionError(f"the forked child failed:\n{report['error']}")
    if os.WIFSIGNALED(status):
        return ChildResult(None, os.WTERMSIG(status), report.get("value"))
    return ChildResult(os.WEXITSTATUS(status), None, report.get("value"))


def errno_of(call: Callable[[], Any]) -> int:
    """0 when `call()` succeeds, else the errno of its OSError."""
    try:
        call()
    except OSError as err:
        return err.errno or -1
    return 0
