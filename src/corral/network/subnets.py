"""Network address space: choosing and validating the subnets of networks.

Default subnets stay clear of podman (10.88.0.0/16, its pools from 10.89.0.0), docker
(172.17.0.0/16 and up, 192.168.0.0/16) and of every route the host already has. The pools can be
moved with CORRAL_BRIDGE_SUBNET (the default network), CORRAL_SUBNET_POOL (user networks, carved
in /24s) and CORRAL_BRIDGE_INTERFACE (the default network's bridge, `corral0`).

Only `network create`, the first use of the default network and a user's `--ip` come here:
`ipaddress` is imported by nothing a plain `corral run` loads (corral.network.ipam hands out
container addresses with integers).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Iterator

from corral.errors import Conflict, InvalidArgument
from corral.network.model import Network

IPv4Net = ipaddress.IPv4Network
DEFAULT_BRIDGE_POOL = "10.80.0.0/14"  # the default network takes the first free /16 of it
DEFAULT_USER_POOL = "10.84.0.0/14"  # user networks take the first free /24 of it
DEFAULT_BRIDGE_INTERFACE = "corral0"
# Never picked automatically: podman's and docker's defaults, whatever the host routes say.
_FOREIGN = tuple(IPv4Net(n) for n in ("10.88.0.0/13", "172.16.0.0/12", "192.168.0.0/16"))


def parse_subnet(text: str) -> IPv4Net:
    try:
        net = IPv4Net(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid subnet {text!r}: want a CIDR like 10.84.7.0/24") from None
    if str(net.network_address) != text.split("/")[0]:
        raise InvalidArgument(f"invalid subnet {text!r}: host bits set (did you mean {net}?)")
    if net.prefixlen > 30:
        raise InvalidArgument(f"subnet {text} is too small: at most /30")
    return net


def parse_ip(text: str, what: str = "IP address") -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}") from None


def host_routes() -> list[IPv4Net]:
    """Every IPv4 destination in the host's main routing table, bar the default route."""
    nets = []
    try:
        with open("/proc/net/route") as f:
            next(f)
            for line in f:
                fields = line.split()
                dest, mask = (int(fields[i], 16).to_bytes(4, "little") for i in (1, 7))
                if mask != b"\0\0\0\0":
                    nets.append(IPv4Net((ipaddress.IPv4Address(dest),
                                         bin(int.from_bytes(mask, "big")).count("1")),
                                        strict=False))
    except OSError:
        pass
    return nets


def check_free(subnet: IPv4Net, networks: Iterable[Network], *, routes: bool = True) -> None:
    """Conflict if `subnet` overlaps another corral network or (when `routes`) a host route."""
    for n in networks:
        if subnet.overlaps(IPv4Net(n.subnet)):
            raise Conflict(f"subnet {subnet} overlaps network {n.name} ({n.subnet})")
    if routes:
        for r in host_routes():
            if subnet.overlaps(r):
                raise Conflict(f"subnet {subnet} overlaps the host route to {r}")


def _candidates(pool: IPv4Net, prefix: int) -> Iterator[IPv4Net]:
    yield from (pool.subnets(new_prefix=prefix) if pool.prefixlen < prefix else [pool])


def choose_subnet(networks: Iterable[Network], *, default_network: bool) -> IPv4Net:
    """The first subnet of the pool that overlaps no network, no host route, no foreign default."""
    if default_network:
        fixed = os.environ.get("CORRAL_BRIDGE_SUBNET")
        pool, prefix = (parse_subnet(fixed), 0) if fixed else (IPv4Net(DEFAULT_BRIDGE_POOL), 16)
    else:
        pool, prefix = parse_subnet(os.environ.get("CORRAL_SUBNET_POOL", DEFAULT_USER_POOL)), 24
    taken = [IPv4Net(n.subnet) for n in networks] + host_routes()
    for candidate in _candidates(pool, max(prefix, pool.prefixlen)):
        if any(candidate.overlaps(t) for t in taken):
            continue
        if os.environ.get("CORRAL_SUBNET_POOL") is None and any(
                candidate.overlaps(f) for f in _FOREIGN):
            continue
        return candidate
    raise Conflict(f"no free subnet left in {pool}: remove unused networks or pass --subnet")


def default_bridge_interface() -> str:
    """CORRAL_BRIDGE_INTERFACE, else the first of corral0, corral1, ... the host does not have
    (another corral store on this host may own corral0: two stores must not share a bridge)."""
    fixed = os.environ.get("CORRAL_BRIDGE_INTERFACE")
    if fixed:
        return fixed
    stem = DEFAULT_BRIDGE_INTERFACE.rstrip("0123456789")
    return next(f"{stem}{i}" for i in range(1000)
                if not os.path.exists(f"/sys/class/net/{stem}{i}"))


def check_layout(subnet: IPv4Net, gateway: str | None, ip_range: str | None
                 ) -> tuple[str, str | None]:
    """Validate --gateway and --ip-range against --subnet; returns (gateway, ip_range)."""
    if gateway is None:
        gw = subnet.network_address + 1
    else:
        gw = parse_ip(gateway, "gateway")
        if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
            raise InvalidArgument(f"gateway {gateway} is not a host address of subnet {subnet}")
    if ip_range is not None:
        rng = parse_subnet(ip_range)
        if not rng.subnet_of(subnet):
            raise InvalidArgument(f"ip range {ip_range} is not inside subnet {subnet}")
    return str(gw), ip_range
