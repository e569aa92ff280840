"""The foundation: console scripts start, errors map to Docker's exit codes, the busybox tree runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import corral_bin


def test_corral_version() -> None:
    out = subprocess.run([corral_bin("corral"), "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "corral" in out.stdout


def test_unknown_command_exits_125() -> None:
    out = subprocess.run([corral_bin("corral"), "frobnicate"], capture_output=True, text=True)
    assert out.returncode == 125
    assert "frobnicate" in out.stderr


def test_runtime_version_names_spec() -> None:
    out = subprocess.run([corral_bin("corral-runtime"), "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "spec: 1." in out.stdout


def test_busybox_rootfs_runs_in_chroot(busybox_rootfs: Path) -> None:
    out = subprocess.run(
        ["chroot", str(busybox_rootfs), "/bin/sh", "-c", "echo hello from $(cat /etc/passwd | head -1 | cut -d: -f1)"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello from root"
    assert (busybox_rootfs / "usr/bin/nc").is_symlink()
