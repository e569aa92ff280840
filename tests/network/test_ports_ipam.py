"""Parsing of -p and allocation rules, on a private database (no plumbing)."""

from __future__ import annotations

import os
import socket

import pytest

from corral.errors import Conflict, InvalidArgument
from corral.network import attach, networks, ports, schema, subnets
from corral.network.model import Attach, NetworkRequest, PortMapping


@pytest.mark.parametrize(("spec", "expected"), [
    ("80", PortMapping(80)),
    ("8080:80", PortMapping(80, 8080)),
    ("8080:80/udp", PortMapping(80, 8080, protocol="udp")),
    ("127.0.0.1:8080:80", PortMapping(80, 8080, "127.0.0.1")),
    ("127.0.0.1::80", PortMapping(80, 0, "127.0.0.1")),
    ("0.0.0.0:9000-9002:7000-7002/tcp", PortMapping(7000, 9000, count=3)),
])
def test_publish_specs(spec: str, expected: PortMapping) -> None:
    assert ports.parse_publish(spec) == expected


@pytest.mark.parametrize("spec", ["", "http", "80/icmp", "70000:80", "1.2.3:80:80",
                                  "9000-9001:80", "0:80", "[::1]:80:80"])
def test_bad_publish_specs_name_the_problem(spec: str) -> None:
    with pytest.raises(InvalidArgument, match=r"port spec|protocol|host IP|IPv6"):
        ports.parse_publish(spec)


def test_publish_exposed_ports() -> None:
    assert ports.publish_exposed(["80/tcp", "53/udp", "7000-7001"]) == [
        PortMapping(80), PortMapping(53, protocol="udp"), PortMapping(7000), PortMapping(7001)]


def test_addresses_are_distinct_round_robin_and_respect_ip_range(net_env) -> None:  # type: ignore[no-untyped-def]
    conn = net_env.conn()
    n = networks.create(conn, "rr", subnet="10.72.250.0/24", ip_range="10.72.250.8/30")
    got = []
    for i in range(4):
        plan = attach.prepare(conn, net_env.paths, f"{i:064x}", f"c{i}", NetworkRequest("rr"))
        got.append(plan.endpoints[0].ip)
    assert got == ["10.72.250.8", "10.72.250.9", "10.72.250.10", "10.72.250.11"]
    with pytest.raises(Conflict, match="no free IP address left on network rr"):
        attach.prepare(conn, net_env.paths, "f" * 64, "full", NetworkRequest("rr"))
    attach.release(conn, net_env.paths, f"{1:064x}")
    plan = attach.prepare(conn, net_env.paths, "e" * 64, "again", NetworkRequest("rr"))
    assert plan.endpoints[0].ip == "10.72.250.9"  # the only free one
    assert plan.endpoints[0].mac == "02:c0:0a:48:fa:09"
    # --ip outside the subnet, taken, or the gateway: one clear error each
    for ip, message in (("10.1.1.1", "not a usable address"), ("10.72.250.8", "already in use"),
                        (n.gateway, "not a usable address"), ("10.72.250.999", "invalid IP")):
        with pytest.raises((Conflict, InvalidArgument), match=message):
            attach.prepare(conn, net_env.paths, "d" * 64, "x", NetworkRequest(
                "rr", networks=(Attach("rr", ip=ip),)))
    assert schema.container(conn, "d" * 64) is None  # nothing half-recorded


def test_subnets_avoid_host_routes_and_other_networks(net_env) -> None:  # type: ignore[no-untyped-def]
    conn = net_env.conn()
    default = networks.ensure_default(conn)
    assert default.subnet == net_env.env["CORRAL_BRIDGE_SUBNET"]
    a = networks.create(conn, "a")
    b = networks.create(conn, "b")
    assert a.subnet != b.subnet and all(
        subnets.IPv4Net(x.subnet).subnet_of(subnets.IPv4Net(net_env.env["CORRAL_SUBNET_POOL"]))
        for x in (a, b))
    for r in subnets.host_routes():
        assert not subnets.IPv4Net(a.subnet).overlaps(r)


def test_default_pools_avoid_podman_docker_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CORRAL_BRIDGE_SUBNET", "CORRAL_SUBNET_POOL"):
        monkeypatch.delenv(var, raising=False)
    chosen = [subnets.choose_subnet([], default_network=d) for d in (True, False)]
    foreign = [subnets.IPv4Net(n) for n in ("10.88.0.0/16", "10.89.0.0/16", "172.17.0.0/16",
                                         "192.0.2.0/24")]
    for subnet in chosen:
        assert not any(subnet.overlaps(f) for f in foreign + subnets.host_routes())


def test_port_in_use_on_the_host_is_refused(net_env) -> None:  # type: ignore[no-untyped-def]
    conn = net_env.conn()
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        attach.prepare(conn, net_env.paths, "a" * 64, "web",
                       NetworkRequest(ports=(PortMapping(80, port),)))
        with pytest.raises(Conflict, match=f"0.0.0.0:{port}/tcp failed: port is already in use"):
            attach.setup(conn, net_env.paths, "a" * 64)
    assert not attach.is_plumbed(conn, "a" * 64)
    assert not os.path.exists(attach.plan(conn, net_env.paths, "a" * 64).netns_path)  # type: ignore[arg-type]


def test_a_second_store_gets_its_own_default_bridge(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from tests.network import leases

    taken = leases.interface_name("crb")[:9] + "x0"  # the number is the part after the x
    monkeypatch.delenv("CORRAL_BRIDGE_INTERFACE", raising=False)
    monkeypatch.setattr(subnets, "DEFAULT_BRIDGE_INTERFACE", taken)
    assert subnets.default_bridge_interface() == taken
    subprocess.run(["ip", "link", "add", taken, "type", "veth", "peer", "name", taken[:-1] + "p"],
                   check=True)
    try:
        assert subnets.default_bridge_interface() == taken[:-1] + "1"
    finally:
        subprocess.run(["ip", "link", "del", taken], check=True)
