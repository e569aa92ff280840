"""One conformance suite for both snapshot drivers (overlay and the copy-based vfs).

An image of three layers with every kind of whiteout is copied into a store using each driver;
the container rootfs its mounts describe is mounted for real and must look the same.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.config import Paths
from corral.images.copy import copy
from corral.images.service import Image, ImageService, Mount
from corral.images.transports.local import LocalDestination
from corral.images.transports.oci_layout import OCILayoutSource
from tests.images.layouts import write_layout
from tests.images.tarbuild import Entry, tar_bytes

BASE = tar_bytes(
    Entry("etc", "dir", mode=0o755), Entry("etc/passwd", data=b"old"), Entry("etc/group", data=b"g"),
    Entry("opaque", "dir", mode=0o755), Entry("opaque/old1", data=b"1"),
    Entry("opaque/sub", "dir", mode=0o755), Entry("opaque/sub/old2", data=b"2"),
    Entry("keep", "dir", mode=0o755), Entry("keep/a", data=b"a"),
    Entry("x", "dir", mode=0o755), Entry("x/child", data=b"c"),
    Entry("suid", data=b"s", mode=0o4755, uid=1000, gid=1000))
MIDDLE = tar_bytes(
    Entry("etc/.wh.passwd"), Entry("opaque", "dir", mode=0o755), Entry("opaque/.wh..wh..opq"),
    Entry("opaque/new", data=b"n"), Entry("keep/b", data=b"b"))
TOP = tar_bytes(
    Entry("etc/passwd", data=b"new"), Entry("keep/.wh.a"), Entry(".wh.x"), Entry("x", data=b"file"))


@pytest.fixture(params=["overlay", "vfs"])
def driver_service(request: pytest.FixtureRequest, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[ImageService]:
    monkeypatch.setenv("CORRAL_STORAGE_DRIVER", request.param)
    svc = ImageService(Paths(str(tmp_path / "root"), str(tmp_path / "run")))
    assert svc.driver.name == request.param
    yield svc
    svc.close()


def load_layout(svc: ImageService, layout: Path, name: str) -> Image:
    with OCILayoutSource(layout) as src, LocalDestination(svc) as dst:
        result = copy(src, dst, names=[name])
    return svc.get(result.image_id)


def mounted(mounts: list[Mount], target: Path) -> None:
    (m,) = mounts
    target.mkdir()
    if m.type == "bind":
        subprocess.run(["mount", "--bind", m.source, str(target)], check=True)
    else:
        subprocess.run(["mount", "-t", m.type, m.source, "-o", ",".join(m.options), str(target)],
                       check=True)


def tree(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            out[rel] = "dir" if p.is_dir() else p.read_text()
    return out


@pytest.mark.parametrize("compression", ["gzip", "zstd", ""])
def test_layers_stack_with_whiteouts(driver_service: ImageService, tmp_path: Path,
                                     compression: str) -> None:
    write_layout(tmp_path / "layout", [BASE, MIDDLE, TOP], compression=compression)
    image = load_layout(driver_service, tmp_path / "layout", "test/stack:1")
    rootfs = tmp_path / "rootfs"
    mounted(driver_service.rootfs_mounts(image, tmp_path / "c/upper", tmp_path / "c/work"), rootfs)
    try:
        assert tree(rootfs) == {
            "etc": "dir", "etc/passwd": "new", "etc/group": "g",
            "opaque": "dir", "opaque/new": "n",
            "keep": "dir", "keep/b": "b", "x": "file", "suid": "s"}
        st = os.stat(rootfs / "suid")
        assert (st.st_mode & 0o7777, st.st_uid) == (0o4755, 1000)
        (rootfs / "etc/passwd").write_text("changed in the container")
        os.unlink(rootfs / "etc/group")
    finally:
        subprocess.run(["umount", str(rootfs)], check=True)
    # the container's changes did not reach the image: a second rootfs is pristine
    again = tmp_path / "rootfs2"
    mounted(driver_service.rootfs_mounts(image, tmp_path / "d/upper", tmp_path / "d/work"), again)
    try:
        assert (again / "etc/passwd").read_text() == "new"
        assert (again / "etc/group").exists()
    finally:
        subprocess.run(["umount", str(again)], check=True)


def test_layers_are_shared_and_collected(driver_service: ImageService, tmp_path: Path) -> None:
    write_layout(tmp_path / "one", [BASE, MIDDLE])
    write_layout(tmp_path / "two", [BASE, TOP])
    one = load_layout(driver_service, tmp_path / "one", "test/one:1")
    two = load_layout(driver_service, tmp_path / "two", "test/two:1")
    assert one.chain_ids[0] == two.chain_ids[0]
    snapshots = set(driver_service.driver.chain_ids())
    assert snapshots == {one.chain_ids[0], one.chain_ids[1], two.chain_ids[1]}
    driver_service.remove("test/one:1")
    assert set(driver_service.driver.chain_ids()) == set(two.chain_ids)
    driver_service.remove("test/two:1")
    assert list(driver_service.driver.chain_ids()) == []
    assert list(driver_service.content.digests()) == []


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_corrupt_compressed_layer_is_one_error(service: ImageService, tmp_path: Path,
                                               compression: str) -> None:
    """A layer whose compressed bytes were damaged (and its digest fixed up to match)."""
    import hashlib
    import json

    from corral.errors import InvalidArgument

    big = tar_bytes(*[Entry(f"f{i}", data=bytes([i % 251]) * 4000) for i in range(300)])
    write_layout(tmp_path / "layout", [big], compression=compression)
    manifest_path = next(p for p in (tmp_path / "layout/blobs/sha256").iterdir()
                         if b'"layers"' in p.read_bytes())
    manifest = json.loads(manifest_path.read_bytes())
    layer = manifest["layers"][0]
    blob = tmp_path / "layout/blobs/sha256" / layer["digest"][7:]
    data = bytearray(blob.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0x5A
    digest = hashlib.sha256(data).hexdigest()
    (tmp_path / "layout/blobs/sha256" / digest).write_bytes(bytes(data))
    layer["digest"] = "sha256:" + digest
    raw = json.dumps(manifest).encode()
    mdigest = hashlib.sha256(raw).hexdigest()
    (tmp_path / "layout/blobs/sha256" / mdigest).write_bytes(raw)
    index = json.loads((tmp_path / "layout/index.json").read_text())
    index["manifests"][0].update(digest="sha256:" + mdigest, size=len(raw))
    (tmp_path / "layout/index.json").write_text(json.dumps(index))
    with pytest.raises(InvalidArgument, match=rf"^layer sha256:{digest}: (corrupt {compression} data|"
                                              "malformed tar archive|.*digest mismatch)"):
        load_layout(service, tmp_path / "layout", "test/corrupt:1")
    assert service.list() == []
    assert list(service.driver.chain_ids()) == []


def test_many_layers_mount_or_say_why_not(service: ImageService, tmp_path: Path) -> None:
    """30 layers stack in one overlay mount; 120 do not fit a page of options: a clear error."""
    from corral.errors import InvalidArgument

    if service.driver.name != "overlay":
        pytest.skip("overlay only")
    layers = [tar_bytes(Entry(f"layer{i:03d}", data=str(i).encode())) for i in range(120)]
    write_layout(tmp_path / "thirty", layers[:30], compression="")
    image = load_layout(service, tmp_path / "thirty", "test/thirty:1")
    rootfs = tmp_path / "rootfs"
    mounted(service.rootfs_mounts(image, tmp_path / "u", tmp_path / "w"), rootfs)
    try:
        assert sorted(os.listdir(rootfs)) == [f"layer{i:03d}" for i in range(30)]
    finally:
        subprocess.run(["umount", str(rootfs)], check=True)
    write_layout(tmp_path / "many", layers, compression="")
    many = load_layout(service, tmp_path / "many", "test/many:1")
    with pytest.raises(InvalidArgument, match="an image of 120 layers does not fit one overlay"):
        service.rootfs_mounts(many, tmp_path / "u2", tmp_path / "w2")
