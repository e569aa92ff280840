"""Small filesystem helpers the engine shares: atomic writes and advisory locks.

They take str or PathLike paths and use os.path, not pathlib (see corral.config: the hot paths
never import pathlib)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

TYPE_CHECKING = False  # not typing's
if TYPE_CHECKING:
    from typing import TypeAlias

    StrPath: TypeAlias = str | os.PathLike[str]


def atomic_write(path: StrPath, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never part;
    `durable` also syncs it to disk before the rename (a crash then keeps the new file)."""
    parent, name = os.path.split(os.fspath(path))
    os.makedirs(parent, exist_ok=True)
    # mkstemp's O_EXCL create, without tempfile's imports (random, weakref, shutil) on `corral run`
    tmp = os.path.join(parent, f".{name}.{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(path: StrPath, *, shared: bool = False) -> Iterator[None]:
    """Hold an flock on `path` (created if missing) for the duration of the block."""
    os.makedirs(os.path.dirname(os.fspath(path)), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def remove_tree(path: StrPath) -> None:
    """shutil.rmtree(path, ignore_errors=True) for the engine's hot paths, where the tree is
    almost always missing or a directory of plain files (a container's bundle): shutil itself
    (with the bz2 and lzma it imports) is loaded only for a tree with subdirectories."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    try:
        for name in names:
            os.unlink(os.path.join(path, name))
        os.rmdir(path)
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
