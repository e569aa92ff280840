"""The store check: damage is found, and --repair removes what needed it."""

from __future__ import annotations

import shutil
from pathlib import Path

from corral.images.service import ImageService
from tests.images.conftest import corral


def test_a_healthy_store_has_no_problems(service: ImageService) -> None:
    service.ensure_builtin_busybox()
    assert service.check() == []


def test_corrupt_blob_and_missing_layer_are_found_and_repaired(service: ImageService,
                                                               tmp_path: Path) -> None:
    busybox = service.ensure_builtin_busybox()
    archive = tmp_path / "bb.tar"
    corral("save", "-o", str(archive), "busybox")
    (tmp_path / "r.tar").write_bytes(b"")  # an empty rootfs: a second, separate image
    other_id = corral("import", str(tmp_path / "r.tar"), "me/other:1").stdout.strip()
    blob = service.layer_records(busybox)[0]["blob_digest"]
    path = service.content.path(blob)
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    problems = service.check()
    assert any(p.startswith(f"blob {blob}: digest mismatch") for p in problems)
    assert any(p.startswith(f"image {busybox.id} (docker.io/library/busybox:latest): layer blob")
               for p in problems)
    assert service.get("busybox").id == busybox.id  # checking changes nothing
    assert service.check(repair=True) == problems
    assert [i.id for i in service.list()] == [other_id]
    assert service.check() == []
    assert corral("load", "-i", str(archive)).stdout == "Loaded image: busybox:latest\n"
    # a snapshot whose files vanished
    shutil.rmtree(service.driver.path(service.get("me/other:1").chain_ids[0]))
    problems = service.check(repair=True)
    assert len(problems) == 2 and "unpacked files are missing" in problems[0]
    assert [i.names for i in service.list()] == [("docker.io/library/busybox:latest",)]
    assert service.check() == []
