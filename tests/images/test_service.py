"""ImageService as `corral run` uses it: the built-in image, name resolution, rootfs mounts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from corral.config import Paths
from corral.errors import NotFound
from corral.images.service import ImageService


def test_builtin_busybox_is_reproducible(service: ImageService, tmp_path: Path) -> None:
    image = service.ensure_builtin_busybox()
    assert image.names == ("docker.io/library/busybox:latest",)
    assert image.config["config"]["Cmd"] == ["sh"]
    assert len(image.layers) == 1
    other = ImageService(Paths(str(tmp_path / "other"), str(tmp_path / "other-run")))
    assert other.ensure_builtin_busybox().id == image.id  # same bytes in another store
    assert service.ensure_builtin_busybox().id == image.id  # idempotent


def test_get_resolves_like_docker(service: ImageService) -> None:
    image = service.ensure_builtin_busybox()
    for spelling in ("busybox", "busybox:latest", "docker.io/library/busybox",
                     "library/busybox:latest", image.id, image.id[7:], image.id[7:19],
                     f"busybox@{image.digest}"):
        assert service.get(spelling).id == image.id, spelling
    with pytest.raises(NotFound, match=r"^No such image: busybox:1\.0$"):
        service.get("busybox:1.0")
    with pytest.raises(NotFound, match="No such image: ffffffffffff"):
        service.get("ffffffffffff")


def test_list_and_tag(service: ImageService) -> None:
    image = service.ensure_builtin_busybox()
    assert service.tag("busybox", "localhost:5000/me/bb:v1") == "localhost:5000/me/bb:v1"
    listed = service.list()
    assert [i.id for i in listed] == [image.id]
    assert set(listed[0].names) == {"docker.io/library/busybox:latest", "localhost:5000/me/bb:v1"}


def test_rootfs_mounts_run_busybox(service: ImageService, tmp_path: Path) -> None:
    """The mounts describe a rootfs in which the image's busybox runs."""
    image = service.ensure_builtin_busybox()
    mounts = service.rootfs_mounts(image, str(tmp_path / "upper"), str(tmp_path / "work"))
    merged = tmp_path / "merged"
    merged.mkdir()
    (m,) = mounts
    if m.type == "bind":
        subprocess.run(["mount", "--bind", m.source, str(merged)], check=True)
    else:
        subprocess.run(["mount", "-t", m.type, m.source, "-o", ",".join(m.options), str(merged)],
                       check=True)
    try:
        out = subprocess.run(["chroot", str(merged), "/bin/sh", "-c", "echo hi > /tmp/x; cat /tmp/x"],
                             check=True, capture_output=True, text=True).stdout
        assert out == "hi\n"
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    # the image's own files are untouched: the write went to the container's layer
    fresh = service.rootfs_mounts(image, tmp_path / "upper2", tmp_path / "work2")
    assert fresh
    assert not any(p.name == "x" for p in (tmp_path / "upper2").rglob("x"))


def test_what_corral_run_asks_imports_nothing_heavy(service: ImageService, tmp_path: Path) -> None:
    """`corral run busybox` and `corral images` start in ~30 ms: resolving the image and
    describing its rootfs import none of the modules that cost ms (pathlib, re, ...)."""
    import sys

    import corral

    image = service.ensure_builtin_busybox()
    src = os.path.dirname(os.path.dirname(corral.__file__))
    code = f"""
import sys
sys.path.insert(0, {src!r})
from corral.config import paths
from corral.images.service import ImageService
svc = ImageService(paths())
assert svc.ensure_builtin_busybox().id == svc.get("busybox").id == {image.id!r}
assert svc.rootfs_mounts(svc.get("busybox"), {str(tmp_path / "u")!r}, {str(tmp_path / "w")!r})
assert [i.names for i in svc.list()] == [("docker.io/library/busybox:latest",)]
heavy = ("pathlib", "re", "shutil", "enum", "typing", "dataclasses", "tempfile", "datetime")
print(" ".join(m for m in heavy if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_builtin_busybox_is_the_same_when_made_rootless(service: ImageService) -> None:
    """A non-root user (files owned by them, no chown) still gets the very same image."""
    import sys
    import tempfile

    code = ("from corral.config import paths; from corral.images.service import ImageService;"
            "print(ImageService(paths()).ensure_builtin_busybox().id)")
    with tempfile.TemporaryDirectory(dir="/tmp") as base:  # pytest's tmp is root-only
        home = Path(base) / "nobody"
        home.mkdir()
        os.chown(home, 65534, 65534)
        os.chmod(base, 0o755)
        result = subprocess.run(
            ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
             sys.executable, "-c", code], capture_output=True, text=True,
            env={"HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"),
                 "PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(sys.path)})
        assert result.returncode == 0, result.stderr
        assert (home / ".local/share/corral/storage/driver").read_text() == "vfs\n"
    assert result.stdout.strip() == service.ensure_builtin_busybox().id
