"""The README's first command (scripts/demo runs `python -m corral.demo`)."""

from __future__ import annotations

import subprocess
import sys


def test_demo_shows_hostname_pid1_and_only_loopback() -> None:
    out = subprocess.run([sys.executable, "-m", "corral.demo"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "hostname:  corral-demo" in out.stdout
    assert any(line.split()[:3] == ["1", "root", "sh"] for line in out.stdout.splitlines())
    interfaces = [line.split(":")[0].strip() for line in out.stdout.splitlines()
                  if line.strip().startswith(("lo:", "eth", "veth"))]
    assert interfaces == ["lo"]
