"""Fixtures shared by every test area. Tests run as root against the real kernel and tools."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from corral.images import busybox

VENV_BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"


def corral_bin(name: str) -> str:
    """The path of one of corral's console scripts (the venv's, else whatever is on PATH)."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/setup")
    return found


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine busybox root filesystem; copy it before changing it."""
    return busybox.make_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(autouse=True, scope="session")
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.exit("corral's tests run as root (namespaces, mounts, cgroups)", returncode=2)
