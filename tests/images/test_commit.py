"""ImageService.commit: an overlay upper dir becomes a layer (whiteouts -> OCI .wh. entries)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from corral.images.service import ImageService


def test_commit_turns_overlay_changes_into_a_layer(service: ImageService, tmp_path: Path) -> None:
    base = service.ensure_builtin_busybox()
    (mount,) = service.rootfs_mounts(base, tmp_path / "upper", tmp_path / "work")
    if mount.type != "overlay":
        return  # the vfs driver has no upper dir to commit from; commit copies there instead
    merged = tmp_path / "merged"
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", ",".join(mount.options),
                    str(merged)], check=True)
    try:
        (merged / "etc/passwd").unlink()  # a whiteout (0/0 char device in the upper dir)
        subprocess.run(["rm", "-rf", str(merged / "usr")], check=True)
        (merged / "usr").mkdir()  # an opaque dir replacing a lower one
        (merged / "usr/only").write_text("only me")
        (merged / "root/note").write_text("committed")
        os.chmod(merged / "root/note", 0o4711)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    new = service.commit(base, tmp_path / "upper", {"Cmd": ["cat", "/root/note"]},
                         message="my change", author="me", tags=["localhost/committed:1"])
    assert new.layers[:-1] == base.layers and len(new.layers) == 2
    assert new.config["config"]["Cmd"] == ["cat", "/root/note"]
    assert new.config["history"][-1]["comment"] == "my change"
    assert service.get("localhost/committed:1").id == new.id
    (m2,) = service.rootfs_mounts(new, tmp_path / "u2", tmp_path / "w2")
    view = tmp_path / "view"
    view.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", ",".join(m2.options), str(view)],
                   check=True)
    try:
        assert not (view / "etc/passwd").exists() and (view / "etc/group").exists()
        assert sorted(os.listdir(view / "usr")) == ["only"]
        assert (view / "root/note").read_text() == "committed"
        assert os.stat(view / "root/note").st_mode & 0o7777 == 0o4711
        assert (view / "bin/busybox").exists()
    finally:
        subprocess.run(["umount", str(view)], check=True)
