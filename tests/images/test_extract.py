"""The one tar extractor: nothing lands outside its target, metadata is kept, whiteouts work."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from corral.errors import InvalidArgument
from corral.store.extract import UnsafeEntry, extract
from tests.images.tarbuild import Entry, tar_bytes


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "dest"
    d.mkdir()
    return d


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the target that must stay untouched."""
    o = tmp_path / "outside"
    o.mkdir()
    (o / "secret").write_text("original")
    return o


def unpack(dest: Path, *entries: Entry, whiteouts: str = "overlay") -> None:
    extract(io.BytesIO(tar_bytes(*entries)), dest, whiteouts=whiteouts)  # type: ignore[arg-type]


def assert_untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "original"


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "./../evil", "a/b/../../../evil"])
def test_dotdot_names_are_refused(dest: Path, name: str) -> None:
    with pytest.raises(UnsafeEntry, match="outside the root"):
        unpack(dest, Entry(name, data=b"x"))
    assert not (dest.parent / "evil").exists()


def test_absolute_names_are_contained(dest: Path, outside: Path) -> None:
    unpack(dest, Entry(f"{outside}/secret", data=b"pwned"), Entry("/abs", data=b"ok"))
    assert_untouched(outside)
    assert (dest / str(outside).lstrip("/") / "secret").read_bytes() == b"pwned"
    assert (dest / "abs").read_bytes() == b"ok"


def test_writes_through_absolute_symlink_stay_inside(dest: Path, outside: Path) -> None:
    unpack(dest, Entry("escape", "symlink", target=str(outside)),
           Entry("escape/secret", data=b"pwned"), Entry("escape/new", data=b"pwned"))
    assert_untouched(outside)
    inside = dest / str(outside).lstrip("/")
    assert (inside / "secret").read_bytes() == b"pwned"
    assert os.readlink(dest / "escape") == str(outside)  # the link itself is kept as data


def test_writes_through_relative_symlink_stay_inside(dest: Path, outside: Path) -> None:
    unpack(dest, Entry("a", "dir", mode=0o755),
           Entry("a/up", "symlink", target="../../../../../../.."),
           Entry("a/up/x", data=b"contained"),
           Entry("hop1", "symlink", target="hop2"), Entry("hop2", "symlink", target="../outside"),
           Entry("hop1/secret", data=b"pwned"))
    assert_untouched(outside)
    assert (dest / "x").read_bytes() == b"contained"
    assert (dest / "outside" / "secret").read_bytes() == b"pwned"


def test_symlink_loop_is_refused(dest: Path) -> None:
    with pytest.raises(UnsafeEntry, match="symbolic links"):
        unpack(dest, Entry("l1", "symlink", target="l2"), Entry("l2", "symlink", target="l1"),
               Entry("l1/x", data=b""))


def test_final_symlink_is_replaced_not_followed(dest: Path, outside: Path) -> None:
    unpack(dest, Entry("f", "symlink", target=str(outside / "secret")), Entry("f", data=b"new"))
    assert_untouched(outside)
    assert not (dest / "f").is_symlink()
    assert (dest / "f").read_bytes() == b"new"


def test_hardlinks_to_outside_are_refused(dest: Path, outside: Path) -> None:
    nlink = os.stat(outside / "secret").st_nlink
    with pytest.raises(UnsafeEntry):
        unpack(dest, Entry("h", "hardlink", target="../outside/secret"))
    with pytest.raises(InvalidArgument, match="not in the layer"):
        unpack(dest, Entry("h", "hardlink", target=str(outside / "secret")))
    with pytest.raises(InvalidArgument, match="not in the layer"):
        unpack(dest, Entry("s", "symlink", target=str(outside)),
               Entry("h", "hardlink", target="s/secret"))
    assert os.stat(outside / "secret").st_nlink == nlink
    assert_untouched(outside)


def test_hardlink_to_a_symlink_links_the_symlink(dest: Path, outside: Path) -> None:
    unpack(dest, Entry("s", "symlink", target=str(outside / "secret")),
           Entry("h", "hardlink", target="s"))
    assert os.path.islink(dest / "h")
    assert os.stat(outside / "secret").st_nlink == 1


def test_hardlinks_inside_share_the_inode(dest: Path) -> None:
    unpack(dest, Entry("a", data=b"same"), Entry("b", "hardlink", target="a"))
    assert os.stat(dest / "a").st_ino == os.stat(dest / "b").st_ino


def test_metadata_is_kept(dest: Path) -> None:
    unpack(dest,
           Entry("dir", "dir", mode=0o2750, uid=1000, gid=1001, mtime=1_500_000_000),
           Entry("dir/suid", data=b"#!", mode=0o4755, uid=1000, gid=1000, mtime=1_400_000_000,
                 xattrs={"user.note": "hello", "security.capability": "\x01\x00\x00\x02"
                         "\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}),
           Entry("dir/sticky", "dir", mode=0o1777),
           Entry("link", "symlink", target="dir/suid", uid=5, gid=6, mtime=1_300_000_000),
           Entry("fifo", "fifo", mode=0o600),
           Entry("null", "char", mode=0o666, dev=(1, 3)))
    st = os.stat(dest / "dir/suid")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (st.st_uid, st.st_gid) == (1000, 1000)
    assert st.st_mtime == 1_400_000_000
    assert os.getxattr(dest / "dir/suid", "user.note") == b"hello"
    assert os.getxattr(dest / "dir/suid", "security.capability")[:4] == b"\x01\x00\x00\x02"
    d = os.stat(dest / "dir")
    assert stat.S_IMODE(d.st_mode) == 0o2750 and (d.st_uid, d.st_gid) == (1000, 1001)
    assert d.st_mtime == 1_500_000_000  # set after its children were written
    assert stat.S_IMODE(os.stat(dest / "dir/sticky").st_mode) == 0o1777
    ls = os.lstat(dest / "link")
    assert (ls.st_uid, ls.st_gid, ls.st_mtime) == (5, 6, 1_300_000_000)
    assert stat.S_ISFIFO(os.stat(dest / "fifo").st_mode)
    assert os.stat(dest / "null").st_rdev == os.makedev(1, 3)


def test_devices_are_skipped_without_real_root(dest: Path) -> None:
    """In a user namespace (rootless) device nodes are not made; the rest is."""
    layer = dest.parent / "layer.tar"
    layer.write_bytes(tar_bytes(Entry("null", "char", dev=(1, 3)), Entry("disk", "block", dev=(8, 0)),
                                Entry("file", data=b"ok")))
    code = (f"from corral.store.extract import extract; from pathlib import Path;"
            f"extract(open({str(layer)!r}, 'rb'), Path({str(dest)!r}))")
    subprocess.run(["unshare", "--user", "--map-root-user", sys.executable, "-c", code], check=True)
    assert sorted(os.listdir(dest)) == ["file"]


def test_overlay_whiteouts(dest: Path) -> None:
    unpack(dest, Entry("etc", "dir", mode=0o755), Entry("etc/.wh.passwd"),
           Entry("opaque", "dir", mode=0o755), Entry("opaque/.wh..wh..opq"),
           Entry("opaque/kept", data=b"new"),
           Entry("same", data=b"mine"), Entry(".wh.same"))
    wh = os.lstat(dest / "etc/passwd")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(dest / "opaque", "trusted.overlay.opaque") == b"y"
    assert (dest / "opaque/kept").read_bytes() == b"new"
    assert (dest / "same").read_bytes() == b"mine"  # a whiteout never hides its own layer
    assert not any(n.startswith(".wh.") for _, _, files in os.walk(dest) for n in files)


def test_delete_whiteouts_apply_to_the_tree_below(dest: Path) -> None:
    unpack(dest, Entry("etc", "dir", mode=0o755), Entry("etc/passwd", data=b"root"),
           Entry("etc/group", data=b"g"), Entry("opaque", "dir", mode=0o755),
           Entry("opaque/old1", data=b"1"), Entry("opaque/sub", "dir", mode=0o755),
           Entry("opaque/sub/old2", data=b"2"), whiteouts="delete")
    unpack(dest, Entry("etc/.wh.passwd"), Entry("opaque", "dir", mode=0o755),
           Entry("opaque/new", data=b"n"), Entry("opaque/.wh..wh..opq"), whiteouts="delete")
    assert sorted(os.listdir(dest / "etc")) == ["group"]
    assert sorted(os.listdir(dest / "opaque")) == ["new"]


def test_malformed_tar_is_one_clear_error(dest: Path) -> None:
    with pytest.raises(InvalidArgument, match="malformed tar archive"):
        extract(io.BytesIO(b"x" * 1000), dest)
    truncated = tar_bytes(Entry("big", data=b"y" * 5000))[:2048]
    with pytest.raises(InvalidArgument):
        extract(io.BytesIO(truncated), dest)


def test_modes_survive_the_umask_and_leave_it_alone(dest: Path) -> None:
    old = os.umask(0o077)
    try:
        unpack(dest, Entry("open", data=b"", mode=0o666), Entry("exec", data=b"", mode=0o777),
               Entry("fifo", "fifo", mode=0o666), Entry("d", "dir", mode=0o777))
        assert os.umask(0o077) == 0o077  # extraction never changes the process's umask
    finally:
        os.umask(old)
    for name, mode in (("open", 0o666), ("exec", 0o777), ("fifo", 0o666), ("d", 0o777)):
        assert stat.S_IMODE(os.lstat(dest / name).st_mode) == mode, name


def _remove_deep_tree(top: Path) -> None:
    """Bottom-up removal without recursion (os.walk recurses on 3.11): pytest's own cleanup of a
    later session would hit the recursion limit on a 1500-level tree left by a failed run."""
    stack = [str(top)]
    while stack:
        path = stack[-1]
        if not os.path.isdir(path) or os.path.islink(path):
            if os.path.lexists(path):
                os.unlink(path)
            stack.pop()
            continue
        children = os.listdir(path)
        if children:
            stack += [os.path.join(path, c) for c in children]
        else:
            os.rmdir(path)
            stack.pop()


def test_deep_paths_and_odd_hardlinks(dest: Path, request: pytest.FixtureRequest) -> None:
    deep = "/".join(["d"] * 1500) + "/leaf"  # deeper than Python's recursion limit
    request.addfinalizer(lambda: _remove_deep_tree(dest / "d"))
    unpack(dest, Entry(deep, data=b"deep"))
    assert (dest / deep).read_bytes() == b"deep"
    unpack(dest, Entry("d", data=b"a file replaces the deep tree"))
    assert (dest / "d").read_bytes() == b"a file replaces the deep tree"
    with pytest.raises(InvalidArgument, match="is a directory"):
        unpack(dest, Entry("adir", "dir", mode=0o755), Entry("h", "hardlink", target="adir"))


def test_os_errors_are_one_line(dest: Path) -> None:
    """An error from the kernel (here: an immutable target) names the entry, no traceback."""
    from corral.errors import CorralError

    subprocess.run(["chattr", "+i", str(dest)], check=True)
    try:
        with pytest.raises(CorralError, match=r"^unpacking at 'f': Operation not permitted$"):
            unpack(dest, Entry("f", data=b"x"))
    finally:
        subprocess.run(["chattr", "-i", str(dest)], check=True)
