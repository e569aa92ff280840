"""The README's first command (scripts/demo runs `python -m corral.demo`: `corral run` on busybox)."""

from __future__ import annotations

import subprocess
import sys

from tests.containers.conftest import Corral


def test_demo_shows_hostname_pid1_mounts_and_only_loopback(corral: Corral) -> None:
    out = subprocess.run([sys.executable, "-m", "corral.demo"], capture_output=True, text=True,
                         timeout=60, env=corral.env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("$ corral run --rm")
    assert any(line.startswith("hostname:") and "corral-demo" in line for line in lines)
    assert any(line.split()[:3] == ["1", "root", "sh"] for line in lines)
    mounts = next(line for line in lines if line.startswith("/ overlay"))
    assert "/proc proc" in mounts and "/dev/shm tmpfs" in mounts
    assert any(line.split()[:2] == ["network:", "lo"] for line in lines)
    assert corral.ids() == []
