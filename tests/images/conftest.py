"""Fixtures of the images tests: a private store per test (CORRAL_ROOT/CORRAL_RUNROOT in tmp)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.config import Paths
from corral.images.service import ImageService
from corral.network import netns
from tests.conftest import corral_bin
from tests.images.registry_fixtures import registry, tls_registry, token_registry

__all__ = ["registry", "tls_registry", "token_registry"]  # the registry tests' real registries


@pytest.fixture
def store_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Paths]:
    root, run = tmp_path / "root", tmp_path / "run"
    monkeypatch.setenv("CORRAL_ROOT", str(root))
    monkeypatch.setenv("CORRAL_RUNROOT", str(run))
    yield Paths(root=str(root), runroot=str(run))
    # a container run in this store left the engine's namespace directory mounted (as
    # /run/netns stays for podman): the store goes, so does that mount
    netns.unmount_dir(run / "netns")


@pytest.fixture
def service(store_paths: Paths) -> Iterator[ImageService]:
    s = ImageService(store_paths)
    yield s
    s.close()


def corral(*args: str, input: bytes | None = None, check: bool = True,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `corral` CLI (the store comes from the test's CORRAL_ROOT)."""
    result = subprocess.run([corral_bin("corral"), *args], input=input, capture_output=True,
                            env={**os.environ, **(env or {})}, timeout=120)
    out = subprocess.CompletedProcess(result.args, result.returncode,
                                      result.stdout.decode(errors="replace"),
                                      result.stderr.decode(errors="replace"))
    if check and out.returncode != 0:
        raise AssertionError(f"corral {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return out
