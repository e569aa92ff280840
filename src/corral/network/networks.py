"""The `network` commands' library: create, find, list, inspect, remove and prune networks.

A network is a record (name, subnet, gateway, bridge name, flags); its bridge and firewall rules
appear when the first container is plumbed onto it and stay until the network is removed (as
Docker keeps docker0), except that netavark itself removes them when the last container with
published ports or DNS leaves; either way `remove` makes sure they are gone.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # the C module, as corral.db: the package imports datetime
import os

from corral.config import Paths
from corral.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from corral.network import netavark, schema
from corral.network.model import DEFAULT_NETWORK, PREDEFINED, Network

TYPE_CHECKING = False  # not typing's: `corral run` on a network reads this module
if TYPE_CHECKING:
    from typing import Any

_VALID_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
# `--opt` keys corral understands (Docker's spelling and netavark's).
_MTU_KEYS = ("mtu", "com.docker.network.driver.mtu")


def backend_dir(paths: Paths) -> str:
    """netavark's --config directory (aardvark-dns keeps its files there)."""
    return os.path.join(paths.runroot, "networks")


def _now() -> str:
    import datetime  # only when a network is made (`corral run` makes the default one once)

    return datetime.datetime.now(datetime.UTC).isoformat()


def _new_id() -> str:
    return os.urandom(32).hex()  # secrets.token_hex(32), without importing secrets (hmac...)


def _options(opts: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, value in opts.items():
        if key in _MTU_KEYS:
            if not value.isdigit() or not 68 <= int(value) <= 65535:
                raise InvalidArgument(f"invalid mtu {value!r}: want 68-65535")
            out["mtu"] = value
        else:
            raise InvalidArgument(f"unsupported network option {key!r} (supported: mtu)")
    return out


def ensure_default(conn: sqlite3.Connection) -> Network:
    """The default `bridge` network, made on first use with the first free default subnet."""
    found = schema.network_named(conn, DEFAULT_NETWORK)
    if found is not None:
        return found
    with schema.transaction(conn):
        found = schema.network_named(conn, DEFAULT_NETWORK)
        if found is not None:
            return found
        from corral.network import subnets  # ipaddress: only while making a network

        subnet = subnets.choose_subnet(schema.list_networks(conn), default_network=True)
        network = Network(
            id=_new_id(), name=DEFAULT_NETWORK, driver="bridge",
            bridge=subnets.default_bridge_interface(), subnet=str(subnet),
            gateway=str(subnet.network_address + 1), ip_range=None, internal=False, dns=False,
            labels={}, options={}, created=_now())
        schema.insert_network(conn, network)
    return network


def create(conn: sqlite3.Connection, name: str, *, driver: str = "bridge",
           subnet: str | None = None, gateway: str | None = None, ip_range: str | None = None,
           internal: bool = False, labels: dict[str, str] | None = None,
           options: dict[str, str] | None = None) -> Network:
    """A new user network with DNS; the subnet is the pool's next free one unless given."""
    import re  # `network create` only: off `corral run`'s path, as ipaddress (subnets)

    from corral.network import subnets

    if not re.match(_VALID_NAME, name):
        raise InvalidArgument(f"invalid network name {name!r}: want [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    if name in PREDEFINED:
        raise Conflict(f"{name} is a pre-defined network and cannot be created")
    if driver != "bridge":
        raise InvalidArgument(f"unsupported network driver {driver!r} (supported: bridge)")
    if subnet is None and (gateway or ip_range):
        raise InvalidArgument("--gateway and --ip-range need --subnet")
    opts = _options(options or {})
    ensure_default(conn)
    with schema.transaction(conn):
        if schema.network_named(conn, name) is not None:
            raise AlreadyExists(f"network with name {name} already exists")
        existing = schema.list_networks(conn)
        if subnet is None:
            net = subnets.choose_subnet(existing, default_network=False)
        else:
            net = subnets.parse_subnet(subnet)
            subnets.check_free(net, existing)
        gw, rng = subnets.check_layout(net, gateway, ip_range)
        network_id = _new_id()
        network = Network(
            id=network_id, name=name, driver=driver, bridge=f"corral-{network_id[:8]}",
            subnet=str(net), gateway=gw, ip_range=rng, internal=internal, dns=True,
            labels=dict(labels or {}), options=opts, created=_now())
        schema.insert_network(conn, network)
    return network


def get(conn: sqlite3.Connection, name_or_id: str) -> Network:
    if name_or_id == DEFAULT_NETWORK:
        return ensure_default(conn)
    found = schema.find_network(conn, name_or_id)
    if found is None:
        raise NotFound(f"network {name_or_id} not found")
    return found


def list_all(conn: sqlite3.Connection) -> list[Network]:
    ensure_default(conn)
    return schema.list_networks(conn)


def users(conn: sqlite3.Connection, network: Network) -> list[sqlite3.Row]:
    """The endpoints (container_id, container_name, ip, mac, ...) on `network`."""
    return schema.endpoints_on(conn, network.id)


def remove(conn: sqlite3.Connection, paths: Paths, name_or_id: str) -> Network:
    """Delete an unused network, its bridge and its firewall rules."""
    if name_or_id in PREDEFINED:
        raise Conflict(f"{name_or_id} is a pre-defined network and cannot be removed")
    network = get(conn, name_or_id)
    _check_unused(conn, network)
    # The bridge goes first: if that fails the record stays, and `rm` can be retried.
    netavark.remove_bridge(backend_dir(paths), network)
    with schema.transaction(conn):
        _check_unused(conn, network)
        schema.delete_network(conn, network.id)
    return network


def _check_unused(conn: sqlite3.Connection, network: Network) -> None:
    in_use = users(conn, network)
    if in_use:
        names = ", ".join(r["container_name"] for r in in_use)
        raise Conflict(f"network {network.name} is in use by container(s): {names}")


def prune(conn: sqlite3.Connection, paths: Paths) -> list[Network]:
    """Remove every user network without containers."""
    removed = []
    for network in list_all(conn):
        if network.name == DEFAULT_NETWORK or users(conn, network):
            continue
        try:
            removed.append(remove(conn, paths, network.id))
        except Conflict:
            continue  # a container joined meanwhile
    return removed


def inspect(conn: sqlite3.Connection, network: Network) -> dict[str, Any]:
    """Docker's `network inspect` document."""
    ipam_config: dict[str, str] = {"Subnet": network.subnet, "Gateway": network.gateway}
    if network.ip_range:
        ipam_config["IPRange"] = network.ip_range
    prefix = network.subnet.split("/")[1]
    return {
        "Name": network.name, "Id": network.id, "Created": network.created, "Scope": "local",
        "Driver": network.driver, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [ipam_config]},
        "Internal": network.internal, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": {
            r["container_id"]: {"Name": r["container_name"], "EndpointID": "",
                                "MacAddress": r["mac"], "IPv4Address": f"{r['ip']}/{prefix}",
                                "IPv6Address": ""}
            for r in users(conn, network)},
        "Options": {"com.docker.network.bridge.name": network.bridge,
                    "com.corral.network.dns": str(network.dns).lower(), **network.options},
        "Labels": network.labels,
    }


def pseudo(name: str) -> dict[str, Any]:
    """`network inspect host|none`: the modes Docker lists as networks."""
    driver = "host" if name == "host" else "null"
    return {"Name": name, "Id": name, "Created": "", "Scope": "local", "Driver": driver,
            "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": {}, "Config": []},
            "Internal": False, "Attachable": False, "Ingress": False, "Containers": {},
            "Options": {}, "Labels": {}}
