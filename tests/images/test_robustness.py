"""Killed and concurrent commands: nothing half-written is ever listed, and the next try works."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from corral.images.service import ImageService
from tests.conftest import corral_bin
from tests.images.conftest import corral
from tests.images.tarbuild import Entry, tar_bytes

pytestmark = pytest.mark.slow


def write_docker_archive(path: Path, layers: Sequence[Path], tag: str) -> str:
    """A docker-archive of plain layer files; returns the image id."""
    diffs = []
    for layer in layers:
        with open(layer, "rb") as f:
            diffs.append("sha256:" + hashlib.file_digest(f, "sha256").hexdigest())
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                         "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": [tag],
                 "Layers": [f"{d[7:]}.tar" for d in diffs]}]
    with tarfile.open(path, "w") as tf:
        tf.addfile(_info(f"{config_hex}.json", len(config)), io.BytesIO(config))
        for layer, d in zip(layers, diffs, strict=True):
            tf.add(layer, arcname=f"{d[7:]}.tar")
        raw = json.dumps(manifest).encode()
        tf.addfile(_info("manifest.json", len(raw)), io.BytesIO(raw))
    return "sha256:" + config_hex


def _info(name: str, size: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    return ti


@pytest.fixture(scope="module")
def big_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~100 MB and 2,000 files: big enough that a load can be killed in the middle."""
    path = tmp_path_factory.mktemp("big") / "layer.tar"
    with tarfile.open(path, "w") as tf:
        blob = os.urandom(1 << 20)
        for i in range(96):
            tf.addfile(_info(f"big/part{i:03d}", len(blob)), io.BytesIO(blob))
        for i in range(2000):
            data = f"file {i}\n".encode()
            tf.addfile(_info(f"small/{i // 100}/f{i}", len(data)), io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def big_archive(big_layer: Path) -> tuple[Path, str]:
    path = big_layer.parent / "big.tar"
    return path, write_docker_archive(path, [big_layer], "localhost/big:1")


def leftovers(service: ImageService) -> list[str]:
    storage = Path(service.storage)
    found = [str(p) for p in (storage / service.driver.name).glob(".tmp-*")]
    ingest = storage / "ingest"
    if ingest.exists():
        found += [str(p) for p in ingest.iterdir()]
    return found


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3])
def test_sigkill_during_load_leaves_no_half_image(service: ImageService,
                                                  big_archive: tuple[Path, str],
                                                  delay: float) -> None:
    """Killed while the layer is being unpacked (a .tmp- snapshot exists), plus `delay`."""
    archive, image_id = big_archive
    proc = subprocess.Popen([corral_bin("corral"), "load", "-i", str(archive)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    snapshots = os.path.join(service.storage, service.driver.name)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        if os.path.exists(snapshots) and any(n.startswith(".tmp-") for n in os.listdir(snapshots)):
            break
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    listed = corral("images", "-q", "--no-trunc").stdout.split()
    if any(n.startswith(".tmp-") for n in os.listdir(snapshots)):
        assert listed == []  # killed while unpacking: nothing is listed
    assert listed in ([], [image_id])  # never a half image: nothing, or all of it
    assert corral("load", "-i", str(archive)).stdout == "Loaded image: localhost/big:1\n"
    image = service.get("localhost/big:1")
    assert image.id == image_id
    assert (Path(service.driver.path(image.chain_ids[0])) / "small/19/f1999").read_text() == "file 1999\n"
    corral("image", "prune", "-f")
    assert leftovers(service) == []
    assert service.get("localhost/big:1").id == image_id


def test_two_loads_of_the_same_image(service: ImageService, big_archive: tuple[Path, str]) -> None:
    archive, image_id = big_archive
    procs = [subprocess.Popen([corral_bin("corral"), "load", "-i", str(archive)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert out == b"Loaded image: localhost/big:1\n"
    assert corral("images", "-q", "--no-trunc").stdout.split() == [image_id]
    assert len(list(service.driver.chain_ids())) == 1
    assert leftovers(service) == []


def test_load_beside_rmi(service: ImageService, big_layer: Path, tmp_path: Path) -> None:
    """rmi of an image whose layer a concurrent load is about to reuse keeps that load whole."""
    small = tmp_path / "small.tar"
    small.write_bytes(tar_bytes(Entry("extra", data=b"x")))
    base = tmp_path / "base.tar"
    write_docker_archive(base, [big_layer], "localhost/base:1")
    both = tmp_path / "both.tar"
    both_id = write_docker_archive(both, [big_layer, small], "localhost/both:1")
    for _ in range(2):
        corral("load", "-i", str(base))
        loading = subprocess.Popen([corral_bin("corral"), "load", "-i", str(both)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.1)
        corral("rmi", "localhost/base:1")
        _, err = loading.communicate(timeout=300)
        assert loading.returncode == 0, err
        image = service.get("localhost/both:1")
        assert image.id == both_id
        for chain in image.chain_ids:
            assert service.driver.exists(chain)
        assert (Path(service.driver.path(image.chain_ids[0])) / "big/part095").stat().st_size == 1 << 20
        corral("rmi", "localhost/both:1")
    corral("image", "prune", "-af")
    assert list(service.driver.chain_ids()) == [] and leftovers(service) == []


def test_corrupted_blob_is_detected_on_read(service: ImageService, tmp_path: Path) -> None:
    image = service.ensure_builtin_busybox()
    layer_blob = service.layer_records(image)[0]["blob_digest"]
    path = service.content.path(layer_blob)
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF
    path.write_bytes(bytes(data))
    r = corral("save", "-o", str(tmp_path / "out.tar"), "busybox", check=False)
    assert r.returncode == 125 and r.stderr.count("\n") == 1
    assert f"blob {layer_blob}" in r.stderr and "digest mismatch" in r.stderr
    assert not (tmp_path / "out.tar").exists()
