"""The store's locks (flock files under `<storage>/locks/`).

- `writers()`: held shared by every command that adds to the store (load, pull, import, commit)
  for its whole run, and exclusively by garbage collection: gc never deletes a blob or snapshot
  that a concurrent command has written but not yet recorded in an image.
- `snapshot(chain_id)`: held while one layer is unpacked, so two loads of the same image unpack
  it once (the second finds it done).

Paths are strings joined with os.path: `corral run` builds these locks (through the snapshot
driver) and never imports pathlib.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from corral.fsutil import locked


class StoreLocks:
    def __init__(self, storage: str | os.PathLike[str]) -> None:
        self.dir = os.path.join(storage, "locks")
        self._gc_file = os.path.join(self.dir, "gc.lock")

    def writers(self) -> contextlib.AbstractContextManager[None]:
        return locked(self._gc_file, shared=True)

    def gc(self) -> contextlib.AbstractContextManager[None]:
        return locked(self._gc_file)

    @contextlib.contextmanager
    def try_gc(self) -> Iterator[bool]:
        """The gc lock if free right now (True), else nothing (False): rmi does not wait."""
        os.makedirs(self.dir, exist_ok=True)
        fd = os.open(self._gc_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
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
        return locked(self.snapshot_file(chain_id))

    def snapshot_file(self, chain_id: str) -> str:
        return os.path.join(self.dir, f"snapshot-{chain_id[7:]}.lock")
