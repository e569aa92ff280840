"""The engine's one SQLite database (`<root>/corral.db`) and its migrations.

Each area owns its tables and writes them down in its own schema module (images in
`corral.store`, containers in `corral.containers`, networks in `corral.network`), as an ordered
list of SQL migrations. `migrate()` applies the ones not yet applied and records each area's
version in `schema_versions`, so areas evolve independently but share transactions: a container
and its network address can be written in one `with conn:` block.

Connections use WAL and a busy timeout, so concurrent `corral` commands wait for each other
instead of failing with "database is locked".
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # the C module: the sqlite3 package only adds datetime adapters (importing datetime: ~1 ms)
import os
import time
from collections.abc import Sequence

_BUSY_TIMEOUT_S = 30.0
_WAL_PAGES = 128


def connect(path: str) -> sqlite3.Connection:
    """Open (creating if needed) the database at `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    conn.row_factory = sqlite3.Row
    # Switching a new database to WAL, and opening one whose WAL needs recovery, can answer
    # "database is locked" at once, without SQLite's busy handler: retry those for a while.
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    delay = 0.002
    while True:
        try:
            _configure(conn)
            return conn
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _configure(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # Every command is a short process that never closes its connection (it leaves by
    # os._exit), so each one is the database's first opener and rebuilds the WAL index by
    # reading the whole WAL: ~0.5 ms per MB. SQLite's default lets it grow to 1000 pages (4 MB,
    # ~2 ms on every `ps`); checkpointing at 128 pages keeps that read under 0.3 ms.
    conn.execute(f"PRAGMA wal_autocheckpoint={_WAL_PAGES}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions (area TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )


def migrate(conn: sqlite3.Connection, area: str, migrations: Sequence[str]) -> None:
    """Bring `area`'s tables up to `len(migrations)`; migration i moves version i to i+1."""
    row = conn.execute("SELECT version FROM schema_versions WHERE area = ?", (area,)).fetchone()
    if row is not None and row["version"] >= len(migrations):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT version FROM schema_versions WHERE area = ?", (area,)).fetchone()
        current = 0 if row is None else int(row["version"])
        for sql in migrations[current:]:
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_versions (area, version) VALUES (?, ?) "
            "ON CONFLICT(area) DO UPDATE SET version = excluded.version",
            (area, len(migrations)),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
