"""The OCI runtime, driven through its runc-compatible command line.

corral never links a runtime: corral-runtime, crun, runc or any runc-compatible binary is run as
a process, with `--root <runroot>/runtime/<name>` so every runtime keeps its state apart and a
reboot (runroot is volatile) forgets it. The runtime is chosen by `--runtime`, then
`CORRAL_RUNTIME`, then `runtime = "..."` in the `[engine]` table of corral's config file
(`CORRAL_CONFIG`, default /etc/corral/corral.toml), then `DEFAULT`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from corral.errors import CannotExecute, CommandNotFound, CorralError, InvalidArgument

if TYPE_CHECKING:
    import subprocess

DEFAULT = "corral-runtime"
CONFIG_FILE = Path("/etc/corral/corral.toml")

_NOT_FOUND = r"(?i)not found|no such file or directory"
_CANNOT_EXEC = r"(?i)permission denied|operation not permitted|is a directory|exec format error"


class Runtime(NamedTuple):
    name: str
    path: str
    state_root: Path

    def argv(self, *args: str) -> list[str]:
        return [self.path, "--root", str(self.state_root), *args]

    def run(self, *args: str, check: bool = True, timeout: float | None = 60) -> subprocess.CompletedProcess[str]:
        import subprocess  # not at import time: `ps` and `exec` load this module too

        proc = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise CorralError(f"{self.name} {args[0]}: {error_message(proc.stderr)}")
        return proc

    def start(self, cid: str) -> None:
        self.run("start", cid)

    def kill(self, cid: str, signal: str, *, all_processes: bool = False) -> bool:
        """Send `signal`; False when the container is already gone."""
        proc = self.run("kill", *(["--all"] if all_processes else []), cid, signal, check=False)
        return proc.returncode == 0

    def delete(self, cid: str) -> None:
        """Forget the container (force: kill what is left); a container it never knew is fine."""
        self.run("delete", "--force", cid, check=False)

    def pause(self, cid: str) -> None:
        self.run("pause", cid)

    def resume(self, cid: str) -> None:
        self.run("resume", cid)

    def update(self, cid: str, resources_file: Path) -> None:
        self.run("update", "--resources", str(resources_file), cid)


def configured_name(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("CORRAL_RUNTIME")
    if env:
        return env
    config = Path(os.environ.get("CORRAL_CONFIG") or CONFIG_FILE)
    if config.is_file():
        import tomllib

        try:
            engine = tomllib.loads(config.read_text()).get("engine", {})
        except (OSError, ValueError) as e:
            raise InvalidArgument(f"reading {config}: {e}") from e
        if isinstance(engine.get("runtime"), str):
            return str(engine["runtime"])
    return DEFAULT


def find(name: str, runroot: Path) -> Runtime:
    """The runtime called `name` (a name on PATH, corral-runtime, or a path to a binary)."""
    if "/" in name:
        path: str | None = name if os.access(name, os.X_OK) else None
    else:
        venv_bin = Path(sys.executable).parent / name
        import shutil

        path = str(venv_bin) if venv_bin.exists() else shutil.which(name)
    if path is None:
        raise InvalidArgument(f"OCI runtime {name!r} not found")
    label = Path(name).name
    return Runtime(label, path, runroot / "runtime" / label)


def error_message(stderr: str) -> str:
    """The runtime's complaint as one line (JSON log lines or plain text, the last one wins)."""
    import json

    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                return str(json.loads(line).get("msg", line))
            except ValueError:
                pass
        return line.removeprefix("Error: ")
    return "unknown error"


def start_error(message: str, args: Sequence[str]) -> CorralError:
    """Docker's mapping of a failed create/exec: 127 not found, 126 cannot execute, else 125."""
    program = args[0] if args else ""
    message = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    if re.search(_CANNOT_EXEC, message) and "exec" in message:
        return CannotExecute(f"{program}: permission denied: cannot execute ({message})")
    if re.search(_NOT_FOUND, message) and ("exec" in message or "executable" in message or program in message):
        return CommandNotFound(f"{program}: executable file not found in $PATH ({message})")
    return CorralError(message)
