"""`corral cp`: files between a container and the host, both ways, and as tar streams (`-`).

Every path on the container side is resolved inside the container's root (`rootpath`), and
entries are created without following the last component, so neither the image's symlinks nor a
crafted tar stream can make corral read or write outside the container. A running container is
reached through /proc/<pid>/root (its volumes included); a stopped one through its rootfs,
mounted for the copy. Docker's rules: `SRC/.` copies a directory's contents; a destination that
is an existing directory receives the source by name; otherwise the source takes its name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from corral.containers import rootpath
from corral.containers.state import Status
from corral.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from corral.containers.lifecycle import Containers
    from corral.containers.store import Record


def split(arg: str) -> tuple[str | None, str]:
    """`name:path` names a container; a path with a slash before the colon does not."""
    head, sep, tail = arg.partition(":")
    if sep and head and "/" not in head and not arg.startswith("."):
        return head, tail or "/"
    return None, arg


def copy(engine: Containers, src: str, dst: str, *, archive: bool = False,
         follow_link: bool = False) -> None:
    src_ctr, src_path = split(src)
    dst_ctr, dst_path = split(dst)
    if src_ctr and dst_ctr:
        raise InvalidArgument("copying between containers is not supported")
    if not src_ctr and not dst_ctr:
        raise InvalidArgument("must specify at least one container source")
    if src_ctr:
        rec = engine.store.get(src_ctr)
        with container_root(engine, rec) as root:
            from_container(root, src_path, dst_path, follow_link=follow_link, name=rec.name)
    else:
        assert dst_ctr is not None
        rec = engine.store.get(dst_ctr)
        with container_root(engine, rec) as root:
            to_container(root, src_path, dst_path, keep_owner=archive)


def _resolve(root: Path, path: str) -> Path:
    return Path(rootpath.resolve(str(root), path))


def _mkdir_in_root(root: Path, path: str) -> Path:
    return Path(rootpath.mkdir_in_root(str(root), path))


@contextlib.contextmanager
def container_root(engine: Containers, rec: Record) -> Iterator[Path]:
    observed = engine.observe(rec)
    if observed.status in (Status.RUNNING, Status.PAUSED):
        yield Path(f"/proc/{rec.pid}/root")
        return
    with engine.mounted_rootfs(rec) as root:
        yield Path(root)


def _source_in_root(root: Path, path: str, follow: bool) -> Path:
    if follow or path.endswith("/") or path.endswith("/."):
        return _resolve(root, path)
    parent = _resolve(root, os.path.dirname(path.rstrip("/")) or "/")
    return parent / os.path.basename(path.rstrip("/"))


def from_container(root: Path, path: str, dst: str, *, follow_link: bool, name: str) -> None:
    source = _source_in_root(root, path, follow_link)
    if not os.path.lexists(source):
        raise NotFound(f"Could not find the file {path} in container {name}")
    contents_only = path.endswith("/.")
    base = os.path.basename(os.path.normpath(path)) or "."
    if dst == "-":
        with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
            _add(tar, source, base, contents_only)
        return
    target = Path(dst)
    if target.is_dir() and not contents_only:
        target = target / base
    elif not target.parent.is_dir():
        raise NotFound(f"destination directory {target.parent} does not exist")
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    else:
        if target.is_dir() and contents_only:
            target = target / base
        shutil.copy2(source, target, follow_symlinks=False)


def _add(tar: tarfile.TarFile, source: Path, arcname: str, contents_only: bool) -> None:
    if contents_only and source.is_dir():
        for child in sorted(os.listdir(source)):
            tar.add(source / child, arcname=child)
    else:
        tar.add(source, arcname=arcname)


def to_container(root: Path, src: str, path: str, *, keep_owner: bool) -> None:
    dest = _resolve(root, path)
    if src == "-":
        if not dest.is_dir():
            raise InvalidArgument(f"destination {path} must be a directory when copying from stdin")
        with tarfile.open(fileobj=sys.stdin.buffer, mode="r|*") as tar:
            extract(tar, root, path, keep_owner=keep_owner)
        return
    source = Path(src)
    if not os.path.lexists(source):
        raise NotFound(f"no such file or directory: {src}")
    contents_only = src.endswith("/.")
    if dest.is_dir():
        into, name = path, os.path.basename(os.path.normpath(src))
    else:
        into, name = os.path.dirname(path.rstrip("/")) or "/", os.path.basename(path.rstrip("/"))
        if not _resolve(root, into).is_dir():
            raise NotFound(f"destination directory {into} does not exist in the container")
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w") as tar:
            _add(tar, source, name, contents_only and source.is_dir())
        spool.seek(0)
        with tarfile.open(fileobj=spool, mode="r") as tar:
            extract(tar, root, into, keep_owner=keep_owner)


def extract(tar: tarfile.TarFile, root: Path, into: str, *, keep_owner: bool) -> None:
    """Unpack `tar` under `into` inside `root`: each entry's parent is resolved inside the root
    and the entry itself is created without following a symlink in its place."""
    for member in tar:
        name = os.path.normpath("/" + member.name).lstrip("/")
        if not name or name == ".":
            continue
        in_ctr = os.path.join(into, name)
        parent = _mkdir_in_root(root, os.path.dirname(in_ctr))
        target = parent / os.path.basename(in_ctr)
        if member.isdir():
            if not target.is_dir() or target.is_symlink():
                _remove(target)
                target.mkdir()
        else:
            _remove(target)
            if member.issym():
                os.symlink(member.linkname, target)
            elif member.islnk():
                os.link(_resolve(root, os.path.join(into, member.linkname)), target)
            elif member.isreg():
                _write(tar.extractfile(member), target)
            else:
                continue  # devices and fifos are not copied by `cp`
        uid, gid = (member.uid, member.gid) if keep_owner else (0, 0)
        os.chown(target, uid, gid, follow_symlinks=False)
        if not member.issym():
            os.chmod(target, member.mode & 0o7777)
            os.utime(target, (member.mtime, member.mtime))


def _remove(target: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(target)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(target)
        else:
            os.unlink(target)


def _write(src: IO[bytes] | None, target: Path) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        if src is not None:
            shutil.copyfileobj(src, out)
