"""The containers table and where each container's files live.

Schema (area "containers" in corral.db; append migrations, never edit one):

    containers(id TEXT PK, name TEXT UNIQUE, image_id, image_name, created REAL,
               options TEXT  -- RunOptions as JSON: the immutable config
               runtime TEXT, state TEXT  -- last state corral itself set: creating|created|
                                         -- running|paused|exited (the live state is derived,
                                         -- see state.observe; `creating` with a free lock
                                         -- means its create was killed)
               pid, pid_start  -- the container's init and its start time (/proc/<pid>/stat)
               conmon_pid, boot_id  -- whether pid still means anything after a reboot
               started_at, finished_at REAL, exit_code, oom_killed, error TEXT,
               network TEXT  -- the network mode
               stop_signal TEXT, stop_timeout INTEGER,
               args TEXT JSON  -- the process's argv as config.json has it)

Files:
    <root>/containers/<id>/      persistent: config.json, upper/, work/, rootfs/ (mount point),
                                 hosts, hostname, resolv.conf, ctr.log (k8s-file)
    <runroot>/containers/<id>/   volatile (gone after a reboot): the bundle conmon and the
                                 runtime see (config.json symlink), pidfile, conmon.pid, attach
                                 socket, ctl fifo, `exit` and `oom` files written by conmon
    <runroot>/locks/<id>         the container's flock
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # the C module, as corral.db uses it (no datetime import)
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from corral import db
from corral.config import Paths
from corral.errors import AlreadyExists, NotFound
from corral.records import NamedTuple
from corral.runtime import jsonio as json  # json's C scanner and encoder, without `re` (ps)

TYPE_CHECKING = False  # not typing's: `ps` must not import typing (~2 ms)
if TYPE_CHECKING:
    from typing import Any

MIGRATIONS = [
    """
    CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        image_id TEXT NOT NULL,
        image_name TEXT NOT NULL,
        created REAL NOT NULL,
        options TEXT NOT NULL,
        runtime TEXT NOT NULL,
        state TEXT NOT NULL,
        pid INTEGER NOT NULL DEFAULT 0,
        pid_start INTEGER NOT NULL DEFAULT 0,
        conmon_pid INTEGER NOT NULL DEFAULT 0,
        boot_id TEXT NOT NULL DEFAULT '',
        started_at REAL NOT NULL DEFAULT 0,
        finished_at REAL NOT NULL DEFAULT 0,
        exit_code INTEGER NOT NULL DEFAULT 0,
        oom_killed INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        network TEXT NOT NULL DEFAULT 'none',
        stop_signal TEXT NOT NULL DEFAULT 'SIGTERM',
        stop_timeout INTEGER NOT NULL DEFAULT 10,
        args TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX containers_created ON containers (created)
    """,
]


class Record(NamedTuple):
    id: str
    name: str
    image_id: str
    image_name: str
    created: float
    options: dict[str, Any]
    runtime: str
    state: str
    pid: int = 0
    pid_start: int = 0
    conmon_pid: int = 0
    boot_id: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    network: str = "none"
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    args: tuple[str, ...] = ()  # the process's argv, for `ps` and `inspect`

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Record:
        values = dict(row)
        values["options"] = json.loads(values["options"])
        values["args"] = tuple(json.loads(values["args"]))
        values["oom_killed"] = bool(values["oom_killed"])
        return cls(**values)


_COLUMNS = list(Record._fields)
_JSON = ("options", "args")


class Store:
    """Container records in SQLite, and the paths of each container's files."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = db.connect(self.paths.database)
            db.migrate(self._conn, "containers", MIGRATIONS)
        return self._conn

    # -- paths ---------------------------------------------------------------------------------
    # (strings, not pathlib: see corral.config)
    def dir(self, cid: str) -> str:
        return os.path.join(self.paths.root, "containers", cid)

    def bundle(self, cid: str) -> str:
        return os.path.join(self.paths.runroot, "containers", cid)

    def rootfs(self, cid: str) -> str:
        return os.path.join(self.dir(cid), "rootfs")

    def log_path(self, cid: str) -> str:
        return os.path.join(self.dir(cid), "ctr.log")

    def lock_path(self, cid: str) -> str:
        return os.path.join(self.paths.runroot, "locks", cid)

    @contextmanager
    def locked(self, cid: str) -> Iterator[None]:
        from corral import fsutil

        with fsutil.locked(self.lock_path(cid)):
            yield

    @contextmanager
    def lock_if_free(self, cid: str) -> Iterator[bool]:
        """Hold the container's lock if nobody does; yields whether it was free."""
        import fcntl

        path = self.lock_path(cid)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
            else:
                yield True
        finally:
            os.close(fd)

    # -- records -------------------------------------------------------------------------------
    def insert(self, record: Record) -> None:
        values = [json.dumps(getattr(record, c)) if c in _JSON else getattr(record, c) for c in _COLUMNS]
        try:
            self.conn.execute(
                f"INSERT INTO containers ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                values,
            )
        except sqlite3.IntegrityError as e:
            if "name" in str(e):
                raise AlreadyExists(f'the container name "/{record.name}" is already in use') from e
            raise AlreadyExists(f"container {record.id} already exists") from e

    def update(self, record: Record, **changes: Any) -> Record:
        new = record._replace(**changes)
        sets = ", ".join(f"{k} = ?" for k in changes)
        values = [json.dumps(v) if k in _JSON else v for k, v in changes.items()]
        cur = self.conn.execute(f"UPDATE containers SET {sets} WHERE id = ?", [*values, record.id])
        if cur.rowcount == 0:
            raise NotFound(f"No such container: {record.id}")
        return new

    def rename(self, record: Record, name: str) -> Record:
        try:
            return self.update(record, name=name)
        except sqlite3.IntegrityError as e:
            raise AlreadyExists(f'the container name "/{name}" is already in use') from e

    def delete(self, cid: str) -> None:
        self.conn.execute("DELETE FROM containers WHERE id = ?", (cid,))

    def get(self, ref: str) -> Record:
        """Docker's lookup: full id, exact name, then a unique id prefix."""
        ref = ref.removeprefix("/")
        row = self.conn.execute(
            "SELECT * FROM containers WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1",
            (ref, ref, ref),
        ).fetchone()
        if row is None and ref and all(c in "0123456789abcdef" for c in ref):
            rows = self.conn.execute(
                "SELECT * FROM containers WHERE id LIKE ? LIMIT 2", (ref + "%",)
            ).fetchall()
            if len(rows) > 1:
                raise NotFound(f"multiple containers match {ref!r}: be more specific")
            row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"No such container: {ref}")
        return Record.from_row(row)

    def find(self, cid: str) -> Record | None:
        row = self.conn.execute("SELECT * FROM containers WHERE id = ?", (cid,)).fetchone()
        return None if row is None else Record.from_row(row)

    def all(self) -> list[Record]:
        rows = self.conn.execute("SELECT * FROM containers ORDER BY created DESC").fetchall()
        return [Record.from_row(r) for r in rows]

    def names_using_image(self, image_id: str) -> list[str]:
        rows = self.conn.execute("SELECT name FROM containers WHERE image_id = ?", (image_id,))
        return [r["name"] for r in rows]


def now() -> float:
    return time.time()
