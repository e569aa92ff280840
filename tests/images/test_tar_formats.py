"""The extractor reads what GNU tar writes: gnu, ustar and posix (PAX) formats, long names,
hardlinks, xattrs, big ids - checked against the tree tar archived."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from corral.store.extract import extract

LONG = "d" * 60 + "/" + "e" * 70 + "/" + "f" * 120  # > 100 chars: prefix or long-name headers


def make_tree(root: Path) -> None:
    (root / LONG).parent.mkdir(parents=True)
    (root / LONG).write_bytes(b"long name")
    (root / "bin").mkdir()
    (root / "bin/tool").write_bytes(b"\x7fELF" + bytes(5000))
    os.chmod(root / "bin/tool", 0o4755)
    os.link(root / "bin/tool", root / "bin/tool-hardlink")
    os.symlink("../" + "x" * 150, root / "bin/longlink")
    os.symlink("tool", root / "bin/link")
    (root / "owned").write_bytes(b"o")
    os.chown(root / "owned", 3_000_000, 3_000_001)  # needs base-256 in ustar-like headers
    os.setxattr(root / "owned", "user.kind", b"\x00binary\xff")
    (root / "empty").mkdir(mode=0o700)
    os.utime(root / "owned", (1_234_567_890, 1_234_567_890))
    os.utime(root / "empty", (1_111_111_111, 1_111_111_111))


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            content: object = os.readlink(p) if stat.S_ISLNK(st.st_mode) else (
                p.read_bytes() if stat.S_ISREG(st.st_mode) else None)
            xattrs = {} if stat.S_ISLNK(st.st_mode) else {
                k: os.getxattr(p, k) for k in os.listxattr(p) if k.startswith("user.")}
            mtime = None if stat.S_ISDIR(st.st_mode) and n != "empty" else int(st.st_mtime)
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                        mtime, content, xattrs, st.st_nlink if stat.S_ISREG(st.st_mode) else 0)
    return out


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_gnu_tar_archives_round_trip(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    archive = tmp_path / "a.tar"
    flags = ["--xattrs", "--xattrs-include=user.*"] if fmt == "posix" else []
    subprocess.run(["tar", f"--format={fmt}", *flags, "-cf", str(archive), "-C", str(src), "."],
                   check=True)
    dest = tmp_path / "dest"
    dest.mkdir()
    with open(archive, "rb") as f:
        extract(f, dest)
    expected = snapshot(src)
    if fmt == "gnu":  # the gnu format has no xattrs
        expected = {k: (*v[:6], {}, v[7]) for k, v in expected.items()}
    assert snapshot(dest) == expected
