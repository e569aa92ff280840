"""Fixtures shared by every test area. Tests run as root against the real kernel and tools."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
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


@pytest.fixture(autouse=True, scope="session")
def _private_default_network() -> Iterator[None]:
    """Every `corral` a test starts gets a default-network subnet and bridge no other test
    session or worker uses (tests/network/leases.py), so parallel stores never share one; what
    stores leave of it is purged at the end."""
    from tests.network.leases import network_env, purge

    env = network_env()[0]
    os.environ.update(env)
    yield
    purge(env)
