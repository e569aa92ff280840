"""Published ports: Docker's `-p` syntax, `-P`, and reserving host ports while a container runs.

Forwarding itself is netavark's (iptables DNAT, also from the host's loopback). As nothing holds
the host port open, corral reserves it in `host_ports` and checks that no host program has bound
it, both at `setup`, in one write transaction.

Every `corral run` on a network parses its `-p` flags here, so what only a published port
needs (ipaddress, socket, random) is imported where it is used.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # the C module, as corral.db: the package imports datetime
import errno
from collections.abc import Iterable

from corral.errors import Conflict, InvalidArgument
from corral.network import schema
from corral.network.model import PortMapping

PROTOCOLS = ("tcp", "udp", "sctp")


def _port_span(text: str, what: str, spec: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        lo, hi = int(first), int(last or first)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r} in port spec {spec!r}") from None
    if not (1 <= lo <= hi <= 65535):
        raise InvalidArgument(f"invalid {what} {text!r} in port spec {spec!r}: 1-65535")
    return lo, hi - lo + 1


def parse_publish(spec: str) -> PortMapping:
    """`[ip:][hostPort[-end]:]containerPort[-end][/proto]`, as `docker run -p` takes it."""
    body, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in PROTOCOLS:
        raise InvalidArgument(f"invalid protocol {proto!r} in port spec {spec!r}")
    parts = body.rsplit(":", 2)
    host_ip, host, ctr = ("", "", parts[0]) if len(parts) == 1 else (
        ("", *parts) if len(parts) == 2 else tuple(parts))
    if host_ip:
        import ipaddress

        try:
            if ipaddress.ip_address(host_ip.strip("[]")).version != 4:
                raise InvalidArgument(f"IPv6 host addresses are not supported yet: {spec!r}")
        except ValueError:
            raise InvalidArgument(f"invalid host IP {host_ip!r} in port spec {spec!r}") from None
    ctr_port, count = _port_span(ctr, "container port", spec)
    host_port = 0
    if host:
        host_port, host_count = _port_span(host, "host port", spec)
        if host_count != count:
            raise InvalidArgument(f"port spec {spec!r}: host and container ranges differ in size")
    return PortMapping(container_port=ctr_port, host_port=host_port,
                       host_ip="" if host_ip in ("0.0.0.0", "") else host_ip,
                       protocol=proto, count=count)


def publish_exposed(exposed: Iterable[str]) -> list[PortMapping]:
    """`-P`: every exposed port ("80/tcp", "53/udp", "8000-8001") to a random host port."""
    mappings: list[PortMapping] = []
    for key in exposed:
        port, _, proto = key.partition("/")
        lo, count = _port_span(port, "exposed port", key)
        mappings.extend(PortMapping(container_port=p, protocol=proto or "tcp")
                        for p in range(lo, lo + count))
    return mappings


def _host_can_bind(host_ip: str, port: int, protocol: str) -> bool:
    import socket

    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                raise InvalidArgument(f"host IP {host_ip} is not an address of this host") from None
            return False
    return True


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = f.read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def _clashes(reserved: list[sqlite3.Row], host_ip: str, port: int) -> bool:
    return any(r["host_port"] == port and (not r["host_ip"] or not host_ip or r["host_ip"] == host_ip)
               for r in reserved)


def reserve(conn: sqlite3.Connection, container_id: str, mappings: Iterable[PortMapping]
            ) -> list[PortMapping]:
    """Concrete host ports for `mappings`, reserved for `container_id` (inside a transaction).

    A mapping with host port 0 gets a free ephemeral port. Conflict names the first port that
    another container or a host program holds.
    """
    resolved = []
    for m in mappings:
        reserved = schema.reserved_ports(conn, m.protocol)
        if m.host_port:
            for port in range(m.host_port, m.host_port + m.count):
                if _clashes(reserved, m.host_ip, port) or not _host_can_bind(
                        m.host_ip, port, m.protocol):
                    raise Conflict(f"Bind for {m.host_ip or '0.0.0.0'}:{port}/{m.protocol} "
                                   "failed: port is already in use")
            chosen = m
        else:
            chosen = _pick_free(reserved, m)
        for port in range(chosen.host_port, chosen.host_port + chosen.count):
            schema.reserve_port(conn, chosen.host_ip, port, chosen.protocol, container_id)
        resolved.append(chosen)
    return resolved


def _pick_free(reserved: list[sqlite3.Row], m: PortMapping) -> PortMapping:
    import random

    lo, hi = _ephemeral_range()
    start = random.randint(lo, hi)
    for step in range(hi - lo + 1):
        first = lo + (start - lo + step) % (hi - lo + 1)
        ports = range(first, first + m.count)
        if ports[-1] <= hi and all(not _clashes(reserved, m.host_ip, p)
                                   and _host_can_bind(m.host_ip, p, m.protocol) for p in ports):
            return PortMapping(m.container_port, first, m.host_ip, m.protocol, m.count)
    raise Conflict(f"no free host port for {m.container_port}/{m.protocol}")
