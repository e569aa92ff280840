"""Bundles and a corral-runtime driver for the runtime's own tests (fixtures in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.runtime.cgroups import open_manager
from tests.conftest import corral_bin


def new_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Runtime:
    """`corral-runtime --root <private dir>`."""

    root: Path

    def __call__(self, *args: str, check: bool = False, input: str | None = None,
                 timeout: float = 30, **kw: Any) -> subprocess.CompletedProcess[str]:
        """Run a verb; stdout/stderr go through files, not pipes: a detached container inherits
        them and would hold a pipe open forever."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(
                [corral_bin("corral-runtime"), "--root", str(self.root), *args],
                stdout=out, stderr=err, text=True, input=input, timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(proc.args, proc.returncode,
                                                 out.read().decode(), err.read().decode())
        if check and result.returncode != 0:
            raise AssertionError(f"corral-runtime {' '.join(args)}: rc {result.returncode}: "
                                 f"{result.stderr}")
        return result

    def state(self, container_id: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self("state", container_id, check=True).stdout)
        return result


@dataclass
class Bundle:
    path: Path
    config: dict[str, Any]

    def write(self) -> Path:
        (self.path / "config.json").write_text(json.dumps(self.config))
        return self.path

    def args(self, *args: str) -> Bundle:
        self.config["process"]["args"] = list(args)
        return self

    def shell(self, script: str) -> Bundle:
        return self.args("sh", "-c", script)


def leftovers(runtime: Runtime, container_id: str) -> list[str]:
    """Whatever a failed create left behind: state dir, cgroup dirs, mounts, processes."""
    found = []
    if (runtime.root / container_id).exists():
        found.append(f"state dir {runtime.root / container_id}")
    manager = open_manager(None, container_id)
    found += [f"cgroup {p}" for p in manager.paths.values() if os.path.exists(p)]
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if container_id in line]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                environ = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if container_id.encode() in environ:
                found.append(f"process {pid}")
    return found
