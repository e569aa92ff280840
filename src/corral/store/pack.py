"""Directory -> layer tar: the inverse of extract.py, used by import, commit and the built-in image.

Entries are sorted and (with `mtime`) timestamped identically, owners are numeric with empty
names, so the same tree always gives the same bytes, hence the same diff id. With
`overlay_whiteouts=True` the tree is an overlayfs upper dir: a 0/0 character device becomes a
`.wh.<name>` file and a directory marked `trusted.overlay.opaque=y` gets a `.wh..wh..opq` entry.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import IO

from corral.store.extract import OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX

_SKIP_XATTR_PREFIXES = ("trusted.overlay.", "security.selinux")


def _xattrs(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in sorted(names):
        if name.startswith(_SKIP_XATTR_PREFIXES):
            continue
        value = os.getxattr(path, name, follow_symlinks=False)
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def pack_dir(root: str | os.PathLike[str], out: IO[bytes], *, mtime: int | None = None,
             overlay_whiteouts: bool = False, root_owned: bool = False) -> None:
    """Write the tree under `root` as a tar stream to `out` (see the module docstring).

    `root_owned`: record every entry as 0:0 (an image made by a non-root user is the same)."""
    seen_inodes: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:

        def add(rel: str, path: str) -> None:
            st = os.lstat(path)
            ti = tarfile.TarInfo(rel)
            ti.mode = stat.S_IMODE(st.st_mode)
            ti.uid, ti.gid = (0, 0) if root_owned else (st.st_uid, st.st_gid)
            ti.uname = ti.gname = ""
            ti.mtime = mtime if mtime is not None else int(st.st_mtime)
            name = rel.rsplit("/", 1)[-1]
            if overlay_whiteouts and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                ti.name = rel[: len(rel) - len(name)] + WHITEOUT_PREFIX + name
                ti.mode, ti.uid, ti.gid = 0o644, 0, 0
                tf.addfile(ti)
                return
            ti.pax_headers = _xattrs(path)
            if stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen_inodes:
                    ti.type, ti.linkname = tarfile.LNKTYPE, seen_inodes[key]
                    tf.addfile(ti)
                    return
                seen_inodes[key] = rel
                ti.size = st.st_size
                with open(path, "rb") as f:
                    tf.addfile(ti, f)
                return
            if stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
                if overlay_whiteouts and _is_opaque(path):
                    marker = tarfile.TarInfo(f"{rel}/{OPAQUE_MARKER}")
                    marker.mtime = ti.mtime
                    marker.uname = marker.gname = ""
                    tf.addfile(marker)
                return
            if stat.S_ISLNK(st.st_mode):
                ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
            elif stat.S_ISFIFO(st.st_mode):
                ti.type = tarfile.FIFOTYPE
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            else:
                return  # sockets are not archived (tar skips them too)
            tf.addfile(ti)

        def walk(rel: str, path: str) -> None:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
            for e in entries:
                child_rel = f"{rel}/{e.name}" if rel else e.name
                add(child_rel, e.path)
                if e.is_dir(follow_symlinks=False):
                    walk(child_rel, e.path)

        walk("", os.fspath(root))
