"""OCI hooks: each runs with the container's state JSON on stdin, its own args and env, and an
optional timeout in seconds. Where they run is the caller's choice:

    prestart, createRuntime   main, runtime namespaces, after the namespaces exist (create)
    createContainer           init, container namespaces, before pivot_root
    startContainer            init, after `start` released it, right before execve
    poststart                 `start`/`run`, runtime namespaces, after the process started
    poststop                  `delete`, after the container's processes are gone
"""

from __future__ import annotations

import os
import select

from corral.runtime import jsonio
from corral.runtime.errors import RuntimeFailure
from corral.runtime.linux.signals import SIGKILL
from corral.runtime.spec import Hook

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


def _run_one(hook: Hook, state: bytes) -> None:
    stdin_r, stdin_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(stdin_r, 0)
            env = dict(e.split("=", 1) for e in hook.env if "=" in e)
            os.execve(hook.path, list(hook.args) or [hook.path], env)
        finally:
            os._exit(127)
    os.close(stdin_r)
    try:
        os.write(stdin_w, state)
    except BrokenPipeError:
        pass
    finally:
        os.close(stdin_w)
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], hook.timeout)
    finally:
        os.close(pidfd)
    if not ready:
        os.kill(pid, SIGKILL)
        os.waitpid(pid, 0)
        raise RuntimeFailure(f"hook {hook.path} timed out after {hook.timeout}s")
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeFailure(f"hook {hook.path} failed: exit status {code}")


def run(kind: str, hooks: Mapping[str, tuple[Hook, ...]], state: Mapping[str, Any]) -> None:
    """Run every hook of `kind` in order; the first failure raises RuntimeFailure."""
    payload = jsonio.dumps(state).encode()
    for i, hook in enumerate(hooks.get(kind, ())):
        try:
            _run_one(hook, payload)
        except RuntimeFailure as e:
            raise RuntimeFailure(f"error running {kind} hook #{i}: {e}") from None
        except OSError as e:
            raise RuntimeFailure(f"error running {kind} hook #{i}: {hook.path}: {e.strerror}") \
                from None


def run_logged(kind: str, hooks: Mapping[str, tuple[Hook, ...]], state: Mapping[str, Any],
               warn: Any) -> None:
    """poststart/poststop: failures are warnings, the lifecycle goes on (runtime-spec)."""
    try:
        run(kind, hooks, state)
    except RuntimeFailure as e:
        warn(str(e))
