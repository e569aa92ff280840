"""The shared database: per-area migrations apply once, in order, and survive concurrent openers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from corral import db

MIGRATIONS = [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
    "ALTER TABLE t ADD COLUMN w TEXT; CREATE INDEX t_w ON t (w)",
]


def _open_and_migrate(path: str) -> None:
    conn = db.connect(Path(path))
    db.migrate(conn, "test", MIGRATIONS)
    conn.execute("INSERT INTO t (v, w) VALUES ('a', 'b')")


def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "x.db")
    db.migrate(conn, "test", MIGRATIONS[:1])
    conn.execute("INSERT INTO t (v) VALUES ('kept')")
    db.migrate(conn, "test", MIGRATIONS)
    db.migrate(conn, "test", MIGRATIONS)
    rows = conn.execute("SELECT v, w FROM t").fetchall()
    assert [tuple(r) for r in rows] == [("kept", None)]
    version = conn.execute("SELECT version FROM schema_versions WHERE area='test'").fetchone()[0]
    assert version == 2


def test_concurrent_openers_all_succeed(tmp_path: Path) -> None:
    path = str(tmp_path / "x.db")
    with multiprocessing.get_context("fork").Pool(8) as pool:
        pool.map(_open_and_migrate, [path] * 16)
    conn = db.connect(Path(path))
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 16
