"""The network area's value types, shared by its modules and by the container lifecycle.

They are corral.records NamedTuples (immutable, `_replace`, `_asdict`), not dataclasses: a
`corral run` on the default network reads them, and `dataclasses` costs it ~5 ms of imports.
"""

from __future__ import annotations

from corral.records import NamedTuple

DEFAULT_NETWORK = "bridge"
# Docker's pre-defined networks: `bridge` is a real network record, `host` and `none` are modes.
PREDEFINED = ("bridge", "host", "none")


class Network(NamedTuple):
    id: str
    name: str
    driver: str
    bridge: str  # the host interface, e.g. corral0 or corral-1a2b3c4d
    subnet: str  # "10.84.0.0/24"
    gateway: str
    ip_range: str | None
    internal: bool
    dns: bool  # aardvark-dns name resolution (user networks; off on the default bridge)
    labels: dict[str, str]
    options: dict[str, str]
    created: str


class PortMapping(NamedTuple):
    """One `-p`: host_port 0 means "pick a free port"; `count` ports from both starts."""

    container_port: int
    host_port: int = 0
    host_ip: str = ""
    protocol: str = "tcp"
    count: int = 1  # type: ignore[assignment]  # shadows tuple.count, which nothing calls

    def __str__(self) -> str:
        def span(start: int) -> str:
            return str(start) if self.count == 1 else f"{start}-{start + self.count - 1}"

        host = f"{self.host_ip}:" if self.host_ip else ""
        return f"{host}{span(self.host_port)}:{span(self.container_port)}/{self.protocol}"


class Attach(NamedTuple):
    """A request to put a container on a network (`--network`, `--ip`, `--network-alias`)."""

    network: str
    ip: str | None = None
    aliases: tuple[str, ...] = ()
    mac: str | None = None


class NetworkRequest(NamedTuple):
    """Everything `run`/`create` says about a container's network, parsed but not validated."""

    mode: str = DEFAULT_NETWORK  # bridge | host | none | container:<id> | <network name>
    networks: tuple[Attach, ...] = ()  # for bridge/user modes; empty means [Attach(mode)]
    ports: tuple[PortMapping, ...] = ()
    hostname: str = ""
    domainname: str = ""
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    add_hosts: tuple[str, ...] = ()  # "name:ip" (ip may be "host-gateway")


class Endpoint(NamedTuple):
    """A container's place on one network, as allocated."""

    network: Network
    ip: str
    mac: str
    aliases: tuple[str, ...]
    interface: str


class NetworkPlan(NamedTuple):
    """What the container lifecycle needs to write config.json.

    `netns_path` None with `host_network` True: share the host's namespace (no entry in
    linux.namespaces); otherwise join the namespace at that path. `etc_files` maps a path in the
    container to the host file to bind-mount there (hosts, resolv.conf, hostname).
    """

    container_id: str
    mode: str
    netns_path: str | None
    host_network: bool
    hostname: str
    etc_files: dict[str, str]
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[PortMapping, ...] = ()
