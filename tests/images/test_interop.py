"""save/load and OCI layouts against the real podman, docker and skopeo, in both directions.

podman runs with a private store under the test's temp dir (vfs driver), and docker is a private
dockerd (its own data root, exec root and socket, no networking) started for the test, so tests
are independent of each other and of the machine's engines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corral.images.copy import copy
from corral.images.service import ImageService
from corral.images.transports.local import LocalDestination, LocalSource
from corral.images.transports.oci_layout import OCILayoutDestination, OCILayoutSource
from tests.images.conftest import corral
from tests.images.layouts import write_layout
from tests.images.tarbuild import Entry, tar_bytes
from tests.runtime.bundles import private_daemon

Podman = Callable[..., str]

pytestmark = pytest.mark.slow


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    base = tmp_path / "podman"
    run_dir = tempfile.mkdtemp(prefix="pr-", dir="/tmp")  # podman wants a runroot < 50 chars
    flags = ["--root", str(base / "root"), "--runroot", run_dir, "--tmpdir",
             str(base / "tmp"), "--storage-driver", "vfs", "--events-backend", "file"]

    def run(*args: str) -> str:
        r = subprocess.run(["podman", *flags, *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"podman {' '.join(args)}: {r.stderr}"
        return r.stdout

    yield run
    shutil.rmtree(run_dir, ignore_errors=True)


def podman_files(podman: Podman, image: str, tmp_path: Path) -> set[str]:
    """The file names of an image's rootfs as podman sees it (create + export)."""
    cid = podman("create", image, "true").strip()
    out = tmp_path / f"export-{cid[:12]}.tar"
    podman("export", "-o", str(out), cid)
    podman("rm", cid)
    with tarfile.open(out) as tf:
        return {m.name.rstrip("/") for m in tf.getmembers()}


def layered_image(service: ImageService, tmp_path: Path) -> str:
    """A gzip-compressed two-layer image with whiteouts, loaded from an OCI layout."""
    base = tar_bytes(Entry("etc", "dir", mode=0o755), Entry("etc/gone", data=b"x"),
                     Entry("etc/kept", data=b"k"), Entry("bin", "dir", mode=0o755),
                     Entry("bin/tool", data=b"#!/bin/sh\n", mode=0o755))
    top = tar_bytes(Entry("etc/.wh.gone"), Entry("etc/added", data=b"a"))
    write_layout(tmp_path / "src-layout", [base, top], compression="gzip")
    with OCILayoutSource(tmp_path / "src-layout") as src, LocalDestination(service) as dst:
        result = copy(src, dst, names=["localhost/test/layered:1"])
    return result.image_id


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_corral_save_then_podman_load(service: ImageService, podman: Podman, tmp_path: Path,
                                      fmt: str) -> None:
    busybox = service.ensure_builtin_busybox()
    layered = layered_image(service, tmp_path)
    # podman 4.3 loads several images from a docker-archive only; one oci-archive per image
    groups = [["busybox", "localhost/test/layered:1"]] if fmt == "docker-archive" else \
        [["busybox"], ["localhost/test/layered:1"]]
    for i, names in enumerate(groups):
        archive = tmp_path / f"out{i}.tar"
        corral("save", "--format", fmt, "-o", str(archive), *names)
        podman("load", "-i", str(archive))
    ids = json.loads(podman("images", "--format", "json"))
    by_id = {"sha256:" + i["Id"]: i for i in ids}
    assert set(by_id) >= {busybox.id, layered}
    inspected = json.loads(podman("image", "inspect", "docker.io/library/busybox:latest"))
    assert inspected[0]["RootFS"]["Layers"] == list(busybox.layers)
    assert "bin/busybox" in podman_files(podman, "docker.io/library/busybox:latest", tmp_path)
    files = podman_files(podman, "localhost/test/layered:1", tmp_path)
    assert {"etc/kept", "etc/added", "bin/tool"} <= files and "etc/gone" not in files


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_save_then_corral_load(service: ImageService, podman: Podman, tmp_path: Path,
                                      fmt: str) -> None:
    busybox = service.ensure_builtin_busybox()
    corral("save", "-o", str(tmp_path / "bb.tar"), "busybox")
    podman("load", "-i", str(tmp_path / "bb.tar"))
    podman("tag", "docker.io/library/busybox:latest", "localhost/podman/made:v2")
    podman("save", "--format", fmt, "-o", str(tmp_path / "p.tar"), "localhost/podman/made:v2")
    corral("rmi", "busybox")
    assert corral("images", "-q").stdout == ""
    out = corral("load", "-i", str(tmp_path / "p.tar")).stdout
    assert out == "Loaded image: localhost/podman/made:v2\n"
    image = service.get("localhost/podman/made:v2")
    assert image.layers == busybox.layers
    assert image.config["config"]["Cmd"] == ["sh"]
    if fmt == "docker-archive":
        assert image.id == busybox.id  # (for oci-archive podman rewrites the config JSON)
    rootfs = Path(service.driver.path(image.chain_ids[-1]))
    assert (rootfs / "bin/busybox").stat().st_size > 100_000


def test_skopeo_reads_and_writes_oci_layouts(service: ImageService, tmp_path: Path) -> None:
    layered = service.get(layered_image(service, tmp_path))
    ours = tmp_path / "ours"
    with OCILayoutDestination(ours, "v1") as dst:
        copy(LocalSource(service, layered), dst)
        dst.commit()
    info = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{ours}:v1"], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["Layers"] == [d["digest"] for d in
                              json.loads(service.content.read(layered.digest))["layers"]]
    theirs = tmp_path / "theirs"
    subprocess.run(["skopeo", "copy", f"oci:{ours}:v1", f"oci:{theirs}:copied"], check=True,
                   capture_output=True)
    service.remove("localhost/test/layered:1")
    with OCILayoutSource(theirs, "copied") as src, LocalDestination(service) as dst:
        result = copy(src, dst, names=["localhost/from/skopeo:1"])
    assert result.image_id == layered.id
    rootfs = tmp_path / "check"
    rootfs.mkdir()
    top = service.get("localhost/from/skopeo:1")
    assert (Path(service.driver.path(top.chain_ids[-1])) / "etc/added").read_bytes() == b"a"


@pytest.fixture
def docker() -> Iterator[Podman]:
    """A private dockerd (vfs, no bridge, no iptables) and a `docker -H` for it."""
    base = Path(tempfile.mkdtemp(prefix="dk-", dir="/tmp"))  # socket paths must be short
    sock = f"unix://{base}/docker.sock"
    name = base.name
    argv = ["dockerd", "--data-root", str(base / "root"), "--exec-root", str(base / "exec"),
            "-H", sock, "--pidfile", str(base / "pid"), "--iptables=false", "--ip6tables=false",
            "--bridge=none", "--storage-driver=vfs", "--containerd-namespace", name,
            "--containerd-plugins-namespace", f"{name}-p"]

    def run(*args: str) -> str:
        r = subprocess.run(["docker", "-H", sock, *args], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
        return r.stdout

    def ready() -> bool:
        return subprocess.run(["docker", "-H", sock, "version"], capture_output=True).returncode == 0

    try:
        with private_daemon(argv, base / "dockerd.log", ready):
            yield run
    finally:
        subprocess.run(["umount", "-R", str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_docker_load_and_save(service: ImageService, docker: Podman, tmp_path: Path) -> None:
    busybox = service.ensure_builtin_busybox()
    layered = layered_image(service, tmp_path)
    corral("save", "-o", str(tmp_path / "c.tar"), "busybox", "localhost/test/layered:1")
    out = docker("load", "-i", str(tmp_path / "c.tar"))
    assert "Loaded image: busybox:latest" in out and "Loaded image: localhost/test/layered:1" in out
    (doc,) = json.loads(docker("image", "inspect", "localhost/test/layered:1"))
    assert doc["Id"] == layered
    docker("tag", "busybox", "localhost/from/docker:3")
    docker("save", "-o", str(tmp_path / "d.tar"), "localhost/from/docker:3")
    corral("rmi", "busybox")
    assert corral("load", "-i", str(tmp_path / "d.tar")).stdout == \
        "Loaded image: localhost/from/docker:3\n"
    image = service.get("localhost/from/docker:3")
    assert image.id == busybox.id
    assert os.path.getsize(os.path.join(service.driver.path(image.chain_ids[-1]), "bin/busybox")) > 100_000
