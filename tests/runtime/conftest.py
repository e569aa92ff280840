"""Fixtures of the runtime's own tests.

Containers start from `corral-runtime spec` with a read-only root shared by the session (the
busybox fixture, never written); tests that need to change the root use `private_bundle`. Each
test gets its own `--root` and unique container ids, so the tests are safe under pytest-xdist.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import corral_bin
from tests.runtime.corral_bundle import Bundle, Runtime


def _bundle(path: Path, rootfs: Path, default_config: dict[str, Any]) -> Bundle:
    config = json.loads(json.dumps(default_config))
    config["root"]["path"] = str(rootfs)
    config["process"]["terminal"] = False
    path.mkdir(exist_ok=True)
    return Bundle(path, config)


@pytest.fixture(scope="session")
def default_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What `corral-runtime spec` writes."""
    where = tmp_path_factory.mktemp("spec")
    subprocess.run([corral_bin("corral-runtime"), "spec"], cwd=where, check=True)
    config: dict[str, Any] = json.loads((where / "config.json").read_text())
    return config


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path / "state")
    yield rt
    for container_id in os.listdir(rt.root) if rt.root.exists() else []:
        if not container_id.startswith("."):
            rt("delete", "--force", container_id)


@pytest.fixture
def bundle(tmp_path: Path, busybox_rootfs: Path, default_config: dict[str, Any]) -> Bundle:
    """A bundle over the shared, read-only busybox root."""
    return _bundle(tmp_path / "bundle", busybox_rootfs, default_config)


@pytest.fixture
def private_bundle(tmp_path: Path, busybox_rootfs: Path, default_config: dict[str, Any]) -> Bundle:
    """A bundle with its own copy of the root, free to change."""
    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    b = _bundle(tmp_path / "bundle", rootfs, default_config)
    b.config["root"] = {"path": "../rootfs", "readonly": False}
    return b
