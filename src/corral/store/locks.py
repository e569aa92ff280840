"""The store's locks (flock files under `<storage>/locks/`).

- `writers()`: held shared by every command that adds to the store (load, pull, import, commit)
  for its whole run, and exclusively by garbage collection: gc never deletes a blob or snapshot
  that a concurrent command has written but not yet recorded in an image.
- `snapshot(chain_id)`: held while one layer is unpacked, so two loads of the same image unpack
  it once (the second finds it done).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from corral.fsutil import locked


class StoreLocks:
    def __init__(self, storage: Path) -> None:
        self.dir = storage / "locks"

    def writers(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.dir / "gc.lock", shared=True)

    def gc(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.dir / "gc.lock")

    @contextlib.contextmanager
    def try_gc(self) -> Iterator[bool]:
        """The gc lock if free right now (True), else nothing (False): rmi does not wait."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / "gc.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def snapshot(self, chain_id: str) -> contextlib.AbstractContextManager[None]:
        return locked(self.dir / f"snapshot-{chain_id[7:]}.lock")
