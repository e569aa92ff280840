"""Named and anonymous volumes (SPEC §6), kept as directories under `<root>/volumes/<name>/_data`.

Schema (area "volumes" in corral.db):
    volumes(name TEXT PK, created REAL, labels TEXT JSON, anonymous INTEGER,
            filled INTEGER  -- whether the image's content was copied in (Docker does it once,
                            -- when a container first mounts the empty volume))
Which containers use a volume is derived from the containers' options, not stored twice.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, NamedTuple

from corral import db
from corral.config import Paths
from corral.containers import names, rootpath
from corral.errors import AlreadyExists, Conflict, InvalidArgument, NotFound

MIGRATIONS = [
    """
    CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        created REAL NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        anonymous INTEGER NOT NULL DEFAULT 0,
        filled INTEGER NOT NULL DEFAULT 0
    )
    """,
]


class Volume(NamedTuple):
    name: str
    created: float
    labels: dict[str, str]
    anonymous: bool
    mountpoint: Path

    def inspect(self) -> dict[str, Any]:
        return {
            "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
            "Driver": "local",
            "Labels": self.labels,
            "Mountpoint": str(self.mountpoint),
            "Name": self.name,
            "Options": {},
            "Scope": "local",
        }


class Volumes:
    def __init__(self, paths: Paths, conn: sqlite3.Connection | None = None) -> None:
        self.paths = paths
        self._conn = conn

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = db.connect(self.paths.database)
        db.migrate(self._conn, "volumes", MIGRATIONS)
        return self._conn

    def _data(self, name: str) -> Path:
        return Path(self.paths.root) / "volumes" / name / "_data"

    def _volume(self, row: sqlite3.Row) -> Volume:
        return Volume(row["name"], row["created"], json.loads(row["labels"]),
                      bool(row["anonymous"]), self._data(row["name"]))

    def create(self, name: str | None = None, labels: dict[str, str] | None = None,
               *, anonymous: bool = False, exist_ok: bool = False) -> Volume:
        name = name or os.urandom(32).hex()
        if not names.valid(name):
            raise InvalidArgument(f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        self._data(name).mkdir(parents=True, exist_ok=True)
        try:
            self.conn.execute(
                "INSERT INTO volumes (name, created, labels, anonymous) VALUES (?, ?, ?, ?)",
                (name, time.time(), json.dumps(labels or {}), int(anonymous)),
            )
        except sqlite3.IntegrityError as e:
            if not exist_ok:
                raise AlreadyExists(f"volume {name} already exists") from e
        return self.get(name)

    def get(self, name: str) -> Volume:
        row = self.conn.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no such volume: {name}")
        return self._volume(row)

    def all(self) -> list[Volume]:
        return [self._volume(r) for r in self.conn.execute("SELECT * FROM volumes ORDER BY name")]

    def remove(self, name: str, *, users: list[str], force: bool = False) -> None:
        self.get(name)
        if users and not force:
            raise Conflict(f"volume {name} is in use by container(s) {', '.join(users)}")
        self.conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
        shutil.rmtree(self._data(name).parent, ignore_errors=True)

    def fill_from(self, volume: Volume, rootfs: str, target: str) -> None:
        """Docker's rule: an empty volume, mounted for the first time, gets the image's files."""
        row = self.conn.execute("SELECT filled FROM volumes WHERE name = ?", (volume.name,)).fetchone()
        if row is None or row["filled"]:
            return
        self.conn.execute("UPDATE volumes SET filled = 1 WHERE name = ?", (volume.name,))
        source = Path(rootpath.resolve(rootfs, target))
        if not source.is_dir() or any(volume.mountpoint.iterdir()):
            return
        # cp -a keeps owners, modes, links and xattrs; source was resolved inside the root.
        subprocess.run(["cp", "-a", "--no-dereference", f"{source}/.", str(volume.mountpoint)],
                       check=True, capture_output=True)
        shutil.copystat(source, volume.mountpoint)
        st = source.stat()
        os.chown(volume.mountpoint, st.st_uid, st.st_gid)
