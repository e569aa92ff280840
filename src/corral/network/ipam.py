"""Container addresses: which address of its network a container gets, and its MAC.

corral allocates every address itself and passes it to netavark as a static IP, so the database
is the one place that knows who has what. Allocation runs inside the caller's BEGIN IMMEDIATE
transaction (SQLite's write lock), and `UNIQUE(network_id, ip)` backs it up, so concurrent
`corral run`s never share an address. Like CNI's host-local, the next address is searched from
the last one handed out: a freed address is reused last, which keeps stale ARP entries harmless.

This runs on every `corral run` on a network, so addresses are integers here: the subnets read
were checked when their network was made (corral.network.subnets), and `ipaddress` is imported
only to check a user's `--ip`.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # the C module, as corral.db: the package imports datetime

from corral.errors import Conflict, InvalidArgument
from corral.network import schema
from corral.network.model import Network

_ALL_ONES = 0xFFFFFFFF


def _to_int(ip: str) -> int:
    a, b, c, d = (int(part) for part in ip.split("."))
    return a << 24 | b << 16 | c << 8 | d


def _octets(n: int) -> tuple[int, ...]:
    return tuple(n >> shift & 0xFF for shift in (24, 16, 8, 0))


def _to_str(n: int) -> str:
    return ".".join(map(str, _octets(n)))


def _span(cidr: str) -> tuple[int, int]:
    """The first and last address of a (checked) subnet "a.b.c.d/n"."""
    address, _, prefix = cidr.partition("/")
    host_bits = _ALL_ONES >> int(prefix)
    first = _to_int(address) & ~host_bits & _ALL_ONES
    return first, first | host_bits


def mac_for(ip: str) -> str:
    """A locally administered MAC derived from the address (as Docker does), so a reused
    address keeps its MAC and neighbours' ARP caches stay right."""
    return "02:c0:" + ":".join(f"{b:02x}" for b in _octets(_to_int(ip)))


def allocate(conn: sqlite3.Connection, network: Network, requested: str | None) -> str:
    """An address on `network` for a container; call inside schema.transaction()."""
    network_address, broadcast = _span(network.subnet)
    reserved = {network_address, broadcast, _to_int(network.gateway)}
    used = schema.used_ips(conn, network.id)
    if requested is not None:
        from corral.network import subnets  # ipaddress: only to check what the user gave

        ip = int(subnets.parse_ip(requested))
        if not network_address <= ip <= broadcast or ip in reserved:
            raise InvalidArgument(f"IP {requested} is not a usable address of network "
                                  f"{network.name} ({network.subnet})")
        if requested in used:
            raise Conflict(f"IP {requested} is already in use on network {network.name}")
        return requested
    first, last = _span(network.ip_range) if network.ip_range else (network_address, broadcast)
    if (first, last) == (network_address, broadcast):  # not the subnet's own first and last
        first, last = first + 1, last - 1
    cursor = schema.cursor(conn, network.id)
    start = _to_int(cursor) + 1 if cursor else first
    size = last - first + 1
    for step in range(size):
        candidate = first + (start - first + step) % size
        if candidate not in reserved and _to_str(candidate) not in used:
            schema.set_cursor(conn, network.id, _to_str(candidate))
            return _to_str(candidate)
    raise Conflict(f"no free IP address left on network {network.name} "
                   f"({network.ip_range or network.subnet})")
