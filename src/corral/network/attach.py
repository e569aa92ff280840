"""What the container lifecycle calls: a container's network from create to rm.

    prepare(id)   create/run: validate the request, allocate addresses (kept until release),
                  record it; returns the NetworkPlan for config.json (netns path, /etc files)
    setup(id)     start, before the runtime creates the container: reserve host ports, make the
                  netns, let netavark plumb it, write /etc/hosts and resolv.conf
    teardown(id)  stop / the monitor saw the container exit / cleanup: undo setup; idempotent
    release(id)   rm: teardown, then forget addresses and files
    connect/disconnect  `network connect|disconnect`, live when the container is plumbed

The netavark options of a plumbed container are stored (`live`) *before* netavark runs, so a
command killed in the middle leaves a record that the next teardown (from `stop`, `rm`, the next
`start`, or `network prune`) replays. A container without published ports on networks without
DNS has no host state but its veth, so its teardown just drops the namespace; the kernel deletes
the veth with it (netavark's teardown costs ~25-200 ms, most of it in the kernel's RCU waits).
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # the C module, as corral.db: the package imports datetime
import contextlib
from collections.abc import Sequence

from corral import fsutil
from corral.config import Paths
from corral.errors import Conflict, InvalidArgument, NotFound
from corral.network import dns, ipam, netavark, netns, networks, ports, schema
from corral.network.loopback import etc_files, files_dir, netns_path
from corral.network.model import (
    DEFAULT_NETWORK,
    Attach,
    Endpoint,
    Network,
    NetworkPlan,
    NetworkRequest,
    PortMapping,
)
from corral.runtime import jsonio

TYPE_CHECKING = False  # not typing's: `corral run` on a network reads this module
if TYPE_CHECKING:
    from typing import Any

_CONTAINER_MODE = "container:"


def _is_user_network(mode: str) -> bool:
    return mode not in ("host", "none") and not mode.startswith(_CONTAINER_MODE)


# --- prepare ----------------------------------------------------------------------------------

def _check_request(request: NetworkRequest) -> None:
    dns.check_servers(request.dns)
    for spec in request.add_hosts:
        dns.parse_add_host(spec)
    if request.mode.startswith(_CONTAINER_MODE):
        if request.ports:
            raise InvalidArgument("conflicting options: port publishing and the container "
                                  "type network mode")
        if request.hostname:
            raise InvalidArgument("conflicting options: hostname and the container type "
                                  "network mode")
    if not _is_user_network(request.mode) and request.networks:
        raise InvalidArgument(f"network mode {request.mode} cannot be combined with networks")


def prepare(conn: sqlite3.Connection, paths: Paths, container_id: str, name: str,
            request: NetworkRequest) -> NetworkPlan:
    """Validate and record the container's network; allocate its addresses. Nothing is plumbed.

    Joins the caller's transaction if one is open, so the container record and its addresses
    commit together.
    """
    _check_request(request)
    schema.migrate(conn)
    attaches = list(request.networks) or (
        [Attach(request.mode)] if _is_user_network(request.mode) else [])
    with schema.transaction(conn):
        resolved = [(a, networks.get(conn, a.network)) for a in attaches]
        seen = set()
        for a, n in resolved:
            if n.id in seen:
                raise InvalidArgument(f"network {n.name} given twice")
            seen.add(n.id)
            if n.name == DEFAULT_NETWORK and (a.ip or a.aliases):
                raise InvalidArgument("user specified IP addresses and network aliases are "
                                      "supported on user defined networks only")
        joined = request.mode[len(_CONTAINER_MODE):] if request.mode.startswith(
            _CONTAINER_MODE) else None
        if joined is not None and schema.container(conn, joined) is None:
            raise NotFound(f"container {joined} has no network to join")
        settings = {
            "hostname": request.hostname, "domainname": request.domainname,
            "dns": list(request.dns), "dns_search": list(request.dns_search),
            "dns_options": list(request.dns_options), "add_hosts": list(request.add_hosts),
            "joined": joined,
        }
        netns = None if request.mode == "host" or joined else netns_path(paths, container_id)
        discard_ports = not attaches  # Docker drops -p with --network host|none
        schema.upsert_container(conn, container_id, name, request.mode, netns, settings,
                                [] if discard_ports else [p._asdict() for p in request.ports])
        for index, (a, n) in enumerate(resolved):
            _add_endpoint(conn, container_id, n, a, f"eth{index}")
    return plan(conn, paths, container_id)


def _add_endpoint(conn: sqlite3.Connection, container_id: str, network: Network, a: Attach,
                  interface: str) -> Endpoint:
    ip = ipam.allocate(conn, network, a.ip)
    mac = a.mac or ipam.mac_for(ip)
    aliases = tuple(dict.fromkeys((*a.aliases, container_id[:12]))) if network.dns else ()
    try:
        schema.insert_endpoint(conn, container_id, network.id, ip, mac, aliases, interface)
    except sqlite3.IntegrityError:
        raise Conflict(f"container {container_id[:12]} is already on network {network.name}"
                       ) from None
    return Endpoint(network, ip, mac, aliases, interface)


# --- reading back -----------------------------------------------------------------------------

def _row(conn: sqlite3.Connection, container_id: str) -> sqlite3.Row:
    schema.migrate(conn)
    row = schema.container(conn, container_id)
    if row is None:
        raise NotFound(f"container {container_id} has no network settings")
    return row


def endpoints(conn: sqlite3.Connection, container_id: str) -> list[Endpoint]:
    out = []
    for r in schema.endpoints_of(conn, container_id):
        network = schema.find_network(conn, r["network_id"])
        assert network is not None  # endpoints reference networks (foreign key)
        out.append(Endpoint(network, r["ip"], r["mac"], tuple(_json(r["aliases"])),
                            r["interface"]))
    return out


def _json(text: str) -> Any:
    return jsonio.loads(text)


def published(conn: sqlite3.Connection, container_id: str) -> list[PortMapping]:
    """The container's port mappings, host ports as assigned when it was last plumbed."""
    row = schema.container(conn, container_id)
    if row is None:
        return []
    return [PortMapping(p["container_port"], p.get("assigned") or p["host_port"], p["host_ip"],
                        p["protocol"], p["count"]) for p in _json(row["ports"])]


def plan(conn: sqlite3.Connection, paths: Paths, container_id: str) -> NetworkPlan:
    row = _row(conn, container_id)
    settings = _json(row["settings"])
    joined = settings.get("joined")
    if joined:
        other = plan(conn, paths, joined)
        return other._replace(container_id=container_id, mode=row["mode"], ports=())
    host = row["mode"] == "host"
    hostname = (dns.host_hostname() if host else settings["hostname"] or container_id[:12])
    return NetworkPlan(
        container_id=container_id, mode=row["mode"],
        netns_path=row["netns"], host_network=host,
        hostname=hostname,
        etc_files=etc_files(paths, container_id),
        endpoints=tuple(endpoints(conn, container_id)),
        ports=tuple(published(conn, container_id)),
    )


def _write_files(conn: sqlite3.Connection, p: NetworkPlan) -> None:
    if p.mode.startswith(_CONTAINER_MODE):
        return  # the joined container's files are used
    settings = _json(_row(conn, p.container_id)["settings"])
    eps = list(p.endpoints)
    files = p.etc_files
    dns.write_in_place(files["/etc/hosts"], dns.hosts(
        hostname=p.hostname, endpoints=eps, add_hosts=settings["add_hosts"],
        host_network=p.host_network))
    dns.write_in_place(files["/etc/resolv.conf"], dns.resolv_conf(
        endpoints=eps, dns=settings["dns"], search=settings["dns_search"],
        options=settings["dns_options"], host_network=p.host_network))
    dns.write_in_place(files["/etc/hostname"], p.hostname + "\n")


# --- setup / teardown -------------------------------------------------------------------------

def _options(conn: sqlite3.Connection, container_id: str, name: str, eps: Sequence[Endpoint],
             mappings: Sequence[PortMapping], dns_servers: Sequence[str]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "container_id": container_id, "container_name": name,
        "networks": {e.network.id: {"static_ips": [e.ip], "static_mac": e.mac,
                                    "aliases": list(e.aliases), "interface_name": e.interface}
                     for e in eps},
        "network_info": {e.network.id: netavark.network_info(e.network) for e in eps},
        "port_mappings": netavark.port_mappings(mappings),
    }
    if any(e.network.dns for e in eps):
        options["dns_servers"] = dns.upstream_servers(dns_servers)
    return options


def _needs_backend_teardown(options: dict[str, Any]) -> bool:
    return bool(options.get("port_mappings")) or any(
        info["dns_enabled"] for info in options["network_info"].values())


class PendingPlan:
    """A setup whose netavark call may still run: `wait()` before the runtime starts the
    container's program (after `runtime create` is fine: the netns exists already)."""

    def __init__(self, conn: sqlite3.Connection, plan: NetworkPlan,
                 pending: netavark.PendingSetup | None = None) -> None:
        self._conn, self.plan, self._pending = conn, plan, pending

    def wait(self) -> NetworkPlan:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            try:
                pending.wait()
            except BaseException:
                _undo_setup(self._conn, self.plan)
                raise
        return self.plan


def _undo_setup(conn: sqlite3.Connection, p: NetworkPlan) -> None:
    if p.netns_path is not None:
        with contextlib.suppress(Exception):
            netns.remove(p.netns_path)
    with schema.transaction(conn):
        schema.free_ports(conn, p.container_id)
        schema.set_live(conn, p.container_id, None)


def setup(conn: sqlite3.Connection, paths: Paths, container_id: str) -> NetworkPlan:
    """Plumb the container's network; on failure nothing is left configured."""
    return begin_setup(conn, paths, container_id).wait()


def begin_setup(conn: sqlite3.Connection, paths: Paths, container_id: str,
                name: str | None = None) -> PendingPlan:
    """`setup`, with netavark left running in the background until `wait()`. `name`: the
    container's current name (after a rename), which DNS then answers for."""
    row = _row(conn, container_id)
    if name is not None and name != row["name"]:
        with schema.transaction(conn):
            schema.set_name(conn, container_id, name)
        row = _row(conn, container_id)
    if row["live"] is not None:
        teardown(conn, paths, container_id)  # a stale plumbing (killed command, reboot)
        row = _row(conn, container_id)
    settings = _json(row["settings"])
    if settings.get("joined"):
        other = _row(conn, settings["joined"])
        if other["netns"] is None or not netns.exists(other["netns"]):
            raise Conflict(f"cannot join the network of container {settings['joined'][:12]}: "
                           "it is not running")
        return PendingPlan(conn, plan(conn, paths, container_id))
    p = plan(conn, paths, container_id)
    path = p.netns_path
    if path is None:  # host
        _write_files(conn, p)
        return PendingPlan(conn, p)
    if not p.endpoints:  # none: loopback only
        netns.create(path)
        _write_files(conn, p)
        return PendingPlan(conn, p)
    requested = _json(row["ports"])
    with schema.transaction(conn):
        wanted = [PortMapping(r["container_port"], r["host_port"] or r.get("assigned", 0),
                              r["host_ip"], r["protocol"], r["count"]) for r in requested]
        try:
            resolved = ports.reserve(conn, container_id, wanted)
        except Conflict:
            if not any(r.get("assigned") and not r["host_port"] for r in requested):
                raise
            resolved = ports.reserve(conn, container_id, [  # the old random port is taken
                w._replace(host_port=r["host_port"])
                for w, r in zip(wanted, requested, strict=True)])
        schema.set_ports(conn, container_id, [
            {**r, "assigned": m.host_port} for r, m in zip(requested, resolved, strict=True)])
        options = _options(conn, container_id, row["name"], p.endpoints, resolved,
                           settings["dns"])
        schema.set_live(conn, container_id, options)
    p = p._replace(ports=tuple(resolved))
    try:
        _write_files(conn, p)  # the runtime binds them at create, before wait()
        netns.create(path)
        pending = netavark.PendingSetup(networks.backend_dir(paths), path, options)
    except BaseException:
        _undo_setup(conn, p)
        raise
    return PendingPlan(conn, p, pending)


def teardown(conn: sqlite3.Connection, paths: Paths, container_id: str) -> None:
    """Undo setup: veths, firewall rules, DNS entries, port reservations, the netns."""
    row = schema.container(conn, container_id)
    if row is None:
        return
    if row["live"] is not None:
        options = _json(row["live"])
        path = row["netns"]
        if _needs_backend_teardown(options) or path is None or not netns.exists(path):
            netavark.teardown(networks.backend_dir(paths), path, options)
    if row["netns"] is not None:
        netns.remove(row["netns"])
    with schema.transaction(conn):
        schema.free_ports(conn, container_id)
        schema.set_live(conn, container_id, None)


def release(conn: sqlite3.Connection, paths: Paths, container_id: str) -> None:
    """rm: teardown, then give back the addresses and delete the container's network files."""
    teardown(conn, paths, container_id)
    with schema.transaction(conn):
        schema.delete_container(conn, container_id)
    fsutil.remove_tree(files_dir(paths, container_id))


def is_plumbed(conn: sqlite3.Connection, container_id: str) -> bool:
    row = schema.container(conn, container_id)
    return row is not None and row["live"] is not None


def rename(conn: sqlite3.Connection, paths: Paths, container_id: str, name: str) -> None:
    """The container's new name, for DNS from now on: recorded, and live when it runs."""
    schema.migrate(conn)
    row = schema.container(conn, container_id)
    if row is None or row["name"] == name:
        return
    live = None if row["live"] is None else {**_json(row["live"]), "container_name": name}
    with schema.transaction(conn):
        schema.set_name(conn, container_id, name)
        if live is not None:
            schema.set_live(conn, container_id, live)
    if live is not None:
        netavark.rename_dns_entries(networks.backend_dir(paths), live)


# --- connect / disconnect ---------------------------------------------------------------------

def connect(conn: sqlite3.Connection, paths: Paths, container_id: str, a: Attach) -> Endpoint:
    """Put the container on one more network; plumbed at once when the container runs."""
    row = _row(conn, container_id)
    if not _is_user_network(row["mode"]):
        raise Conflict(f"container {container_id[:12]} uses network mode {row['mode']}: "
                       "it cannot be connected to networks")
    network = networks.get(conn, a.network)
    if network.name == DEFAULT_NETWORK and (a.ip or a.aliases):
        raise InvalidArgument("user specified IP addresses and network aliases are supported "
                              "on user defined networks only")
    with schema.transaction(conn):
        used = {e.interface for e in endpoints(conn, container_id)}
        interface = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        endpoint = _add_endpoint(conn, container_id, network, a, interface)
    if row["live"] is None:
        return endpoint
    live = _json(row["live"])
    settings = _json(row["settings"])
    options = _options(conn, container_id, row["name"], [endpoint], [], settings["dns"])
    try:
        netavark.setup(networks.backend_dir(paths), row["netns"], options)
    except BaseException:
        with schema.transaction(conn):
            schema.delete_endpoint(conn, container_id, network.id)
        raise
    live["networks"].update(options["networks"])
    live["network_info"].update(options["network_info"])
    if "dns_servers" in options:
        live["dns_servers"] = options["dns_servers"]
    with schema.transaction(conn):
        schema.set_live(conn, container_id, live)
    _write_files(conn, plan(conn, paths, container_id))
    return endpoint


def disconnect(conn: sqlite3.Connection, paths: Paths, container_id: str, name: str) -> None:
    row = _row(conn, container_id)
    network = networks.get(conn, name)
    mine = [e for e in endpoints(conn, container_id) if e.network.id == network.id]
    if not mine:
        raise NotFound(f"container {container_id[:12]} is not connected to network "
                       f"{network.name}")
    if row["live"] is not None:
        live = _json(row["live"])
        options = {**live, "port_mappings": [],
                   "networks": {network.id: live["networks"][network.id]},
                   "network_info": {network.id: live["network_info"][network.id]}}
        netavark.teardown(networks.backend_dir(paths), row["netns"], options)
        del live["networks"][network.id]
        del live["network_info"][network.id]
        with schema.transaction(conn):
            schema.set_live(conn, container_id, live)
    with schema.transaction(conn):
        schema.delete_endpoint(conn, container_id, network.id)
    if row["live"] is not None:
        _write_files(conn, plan(conn, paths, container_id))


def network_settings(conn: sqlite3.Connection, container_id: str) -> dict[str, Any]:
    """`inspect`'s NetworkSettings as Docker shows it (Networks, Ports, the primary address)."""
    schema.migrate(conn)
    eps = endpoints(conn, container_id)
    ports_doc: dict[str, list[dict[str, str]]] = {}
    for m in published(conn, container_id):
        for i in range(m.count):
            ports_doc.setdefault(f"{m.container_port + i}/{m.protocol}", []).append(
                {"HostIp": m.host_ip or "0.0.0.0", "HostPort": str(m.host_port + i)})
    nets = {
        e.network.name: {
            "IPAMConfig": None, "Links": None, "Aliases": list(e.aliases) or None,
            "NetworkID": e.network.id, "EndpointID": "", "Gateway": e.network.gateway,
            "IPAddress": e.ip, "IPPrefixLen": int(e.network.subnet.split("/")[1]),
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": e.mac,
        } for e in eps}
    primary = next((e for e in eps if e.network.name == DEFAULT_NETWORK), None)
    return {
        "Networks": nets, "Ports": ports_doc,
        "IPAddress": primary.ip if primary else "",
        "IPPrefixLen": int(primary.network.subnet.split("/")[1]) if primary else 0,
        "Gateway": primary.network.gateway if primary else "",
        "MacAddress": primary.mac if primary else "",
        "SandboxKey": (schema.container(conn, container_id) or {"netns": ""})["netns"] or "",
    }
