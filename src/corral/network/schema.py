"""The network area's tables in the shared database, their migrations, and every query on them.

    networks        one row per network (the default `bridge` included); `last_ip` is the
                    allocation cursor, so a freed address is reused only after the others
    net_containers  a container's network settings (mode, ports asked for, hostname, dns, ...);
                    `live` holds the netavark options last applied, NULL while unplumbed
    endpoints       a container's address on one network (UNIQUE per network: the IPAM's guard)
    host_ports      published host ports of plumbed containers: the reservation table

A container keeps its addresses from `prepare` until `release` (rm); its plumbing, ports and DNS
entries exist between `setup` and `teardown` (start to stop).
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # the C module, as corral.db: the package imports datetime
import contextlib
from collections.abc import Iterator

from corral import db
from corral.config import Paths
from corral.network.model import Network
from corral.runtime import jsonio as json  # the C codec without the json package's imports

TYPE_CHECKING = False  # not typing's: `corral run` on a network reads this module
if TYPE_CHECKING:
    from typing import Any

AREA = "network"
MIGRATIONS = [
    """
    CREATE TABLE networks (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, driver TEXT NOT NULL,
        bridge TEXT NOT NULL UNIQUE, subnet TEXT NOT NULL, gateway TEXT NOT NULL,
        ip_range TEXT, internal INTEGER NOT NULL, dns INTEGER NOT NULL,
        labels TEXT NOT NULL, options TEXT NOT NULL, created TEXT NOT NULL, last_ip TEXT);
    CREATE TABLE net_containers (
        container_id TEXT PRIMARY KEY, name TEXT NOT NULL, mode TEXT NOT NULL, netns TEXT,
        settings TEXT NOT NULL, ports TEXT NOT NULL, live TEXT);
    CREATE TABLE endpoints (
        container_id TEXT NOT NULL REFERENCES net_containers(container_id) ON DELETE CASCADE,
        network_id TEXT NOT NULL REFERENCES networks(id),
        ip TEXT NOT NULL, mac TEXT NOT NULL, aliases TEXT NOT NULL, interface TEXT NOT NULL,
        PRIMARY KEY (container_id, network_id), UNIQUE (network_id, ip));
    CREATE TABLE host_ports (
        host_ip TEXT NOT NULL, host_port INTEGER NOT NULL, protocol TEXT NOT NULL,
        container_id TEXT NOT NULL REFERENCES net_containers(container_id) ON DELETE CASCADE,
        PRIMARY KEY (host_ip, host_port, protocol))
    """,
]


def connect(paths: Paths) -> sqlite3.Connection:
    conn = db.connect(paths.database)
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    db.migrate(conn, AREA, MIGRATIONS)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction (BEGIN IMMEDIATE: the IPAM lock), or the caller's if one is open."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --- networks ---------------------------------------------------------------------------------

def _network(row: sqlite3.Row) -> Network:
    return Network(
        id=row["id"], name=row["name"], driver=row["driver"], bridge=row["bridge"],
        subnet=row["subnet"], gateway=row["gateway"], ip_range=row["ip_range"],
        internal=bool(row["internal"]), dns=bool(row["dns"]), labels=json.loads(row["labels"]),
        options=json.loads(row["options"]), created=row["created"],
    )


def insert_network(conn: sqlite3.Connection, n: Network) -> None:
    conn.execute(
        "INSERT INTO networks (id, name, driver, bridge, subnet, gateway, ip_range, internal, dns,"
        " labels, options, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (n.id, n.name, n.driver, n.bridge, n.subnet, n.gateway, n.ip_range, int(n.internal),
         int(n.dns), json.dumps(n.labels), json.dumps(n.options), n.created),
    )


def find_network(conn: sqlite3.Connection, name_or_id: str) -> Network | None:
    """By exact name, full id, or unique id prefix (Docker's lookup order)."""
    row = conn.execute("SELECT * FROM networks WHERE name = ? OR id = ?",
                       (name_or_id, name_or_id)).fetchone()
    if row is None and name_or_id and all(c in "0123456789abcdef" for c in name_or_id):
        rows = conn.execute("SELECT * FROM networks WHERE id LIKE ?",
                            (name_or_id + "%",)).fetchall()
        row = rows[0] if len(rows) == 1 else None
    return None if row is None else _network(row)


def network_named(conn: sqlite3.Connection, name: str) -> Network | None:
    row = conn.execute("SELECT * FROM networks WHERE name = ?", (name,)).fetchone()
    return None if row is None else _network(row)


def list_networks(conn: sqlite3.Connection) -> list[Network]:
    return [_network(r) for r in conn.execute("SELECT * FROM networks ORDER BY created, name")]


def delete_network(conn: sqlite3.Connection, network_id: str) -> None:
    conn.execute("DELETE FROM networks WHERE id = ?", (network_id,))


def set_cursor(conn: sqlite3.Connection, network_id: str, ip: str) -> None:
    conn.execute("UPDATE networks SET last_ip = ? WHERE id = ?", (ip, network_id))


def cursor(conn: sqlite3.Connection, network_id: str) -> str | None:
    row = conn.execute("SELECT last_ip FROM networks WHERE id = ?", (network_id,)).fetchone()
    return None if row is None else row["last_ip"]


# --- containers and endpoints -----------------------------------------------------------------

def upsert_container(conn: sqlite3.Connection, container_id: str, name: str, mode: str,
                     netns: str | None, settings: dict[str, Any], ports: list[dict[str, Any]]
                     ) -> None:
    conn.execute(
        "INSERT INTO net_containers (container_id, name, mode, netns, settings, ports)"
        " VALUES (?,?,?,?,?,?) ON CONFLICT(container_id) DO UPDATE SET name = excluded.name,"
        " mode = excluded.mode, netns = excluded.netns, settings = excluded.settings,"
        " ports = excluded.ports",
        (container_id, name, mode, netns, json.dumps(settings), json.dumps(ports)),
    )


def container(conn: sqlite3.Connection, container_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM net_containers WHERE container_id = ?", (container_id,)).fetchone()
    return row


def containers(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return list(conn.execute("SELECT * FROM net_containers"))


def set_ports(conn: sqlite3.Connection, container_id: str, ports: list[dict[str, Any]]) -> None:
    conn.execute("UPDATE net_containers SET ports = ? WHERE container_id = ?",
                 (json.dumps(ports), container_id))


def set_name(conn: sqlite3.Connection, container_id: str, name: str) -> None:
    conn.execute("UPDATE net_containers SET name = ? WHERE container_id = ?", (name, container_id))


def set_live(conn: sqlite3.Connection, container_id: str, live: dict[str, Any] | None) -> None:
    conn.execute("UPDATE net_containers SET live = ? WHERE container_id = ?",
                 (None if live is None else json.dumps(live), container_id))


def delete_container(conn: sqlite3.Connection, container_id: str) -> None:
    conn.execute("DELETE FROM net_containers WHERE container_id = ?", (container_id,))


def insert_endpoint(conn: sqlite3.Connection, container_id: str, network_id: str, ip: str,
                    mac: str, aliases: tuple[str, ...], interface: str) -> None:
    conn.execute(
        "INSERT INTO endpoints (container_id, network_id, ip, mac, aliases, interface)"
        " VALUES (?,?,?,?,?,?)",
        (container_id, network_id, ip, mac, json.dumps(list(aliases)), interface),
    )


def delete_endpoint(conn: sqlite3.Connection, container_id: str, network_id: str) -> None:
    conn.execute("DELETE FROM endpoints WHERE container_id = ? AND network_id = ?",
                 (container_id, network_id))


def endpoints_of(conn: sqlite3.Connection, container_id: str) -> list[sqlite3.Row]:
    return list(conn.execute(
        "SELECT e.*, n.name AS network_name FROM endpoints e JOIN networks n"
        " ON n.id = e.network_id WHERE e.container_id = ? ORDER BY e.interface", (container_id,)))


def endpoints_on(conn: sqlite3.Connection, network_id: str) -> list[sqlite3.Row]:
    return list(conn.execute(
        "SELECT e.*, c.name AS container_name FROM endpoints e JOIN net_containers c"
        " ON c.container_id = e.container_id WHERE e.network_id = ? ORDER BY c.name",
        (network_id,)))


def used_ips(conn: sqlite3.Connection, network_id: str) -> set[str]:
    return {r["ip"] for r in conn.execute("SELECT ip FROM endpoints WHERE network_id = ?",
                                          (network_id,))}


# --- host port reservations -------------------------------------------------------------------

def reserved_ports(conn: sqlite3.Connection, protocol: str) -> list[sqlite3.Row]:
    return list(conn.execute("SELECT * FROM host_ports WHERE protocol = ?", (protocol,)))


def reserve_port(conn: sqlite3.Connection, host_ip: str, host_port: int, protocol: str,
                 container_id: str) -> None:
    conn.execute("INSERT INTO host_ports (host_ip, host_port, protocol, container_id)"
                 " VALUES (?,?,?,?)", (host_ip, host_port, protocol, container_id))


def free_ports(conn: sqlite3.Connection, container_id: str) -> None:
    conn.execute("DELETE FROM host_ports WHERE container_id = ?", (container_id,))

