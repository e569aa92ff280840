"""`corral network ...` as a user types it: output, filters, and one-line errors with exit 125."""

from __future__ import annotations

import json

import pytest

from tests.network import leases


def test_create_ls_inspect_rm(net_env) -> None:  # type: ignore[no-untyped-def]
    subnet = leases.lease_subnet(24)
    try:
        gw = str(subnet.network_address + 254)
        rng = str(list(subnet.subnets(new_prefix=25))[1])
        net_id = net_env.corral("network", "create", "--subnet", str(subnet), "--gateway", gw,
                                "--ip-range", rng, "--internal", "--label", "team=blue",
                                "-o", "mtu=1400", "front").stdout.strip()
        assert len(net_id) == 64
        auto = net_env.corral("network", "create", "back").stdout.strip()
        listing = net_env.corral("network", "ls").stdout.splitlines()
        assert listing[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
        assert [line.split()[1] for line in listing[1:]] == ["bridge", "front", "back", "host",
                                                             "none"]
        assert net_env.corral("network", "ls", "-q", "-f", "label=team=blue").stdout == (
            net_id[:12] + "\n")
        assert net_env.corral("network", "ls", "--format", "{{.Name}} {{.Driver}}",
                              "-f", "name=ba").stdout == "back bridge\n"
        [doc] = json.loads(net_env.corral("network", "inspect", "front").stdout)
        assert doc["Id"] == net_id and doc["Internal"] is True
        assert doc["IPAM"]["Config"] == [{"Subnet": str(subnet), "Gateway": gw, "IPRange": rng}]
        assert doc["Labels"] == {"team": "blue"} and doc["Options"]["mtu"] == "1400"
        assert net_env.corral("network", "inspect", "-f", "{{.Id}}", auto[:10]).stdout == (
            auto + "\n")
        assert net_env.corral("network", "rm", "front", "back").stdout == "front\nback\n"
        assert "front" not in net_env.corral("network", "ls").stdout
    finally:
        leases.release_subnet(subnet)


def test_prune_keeps_the_default_and_used_networks(net_env) -> None:  # type: ignore[no-untyped-def]
    net_env.corral("network", "create", "used")
    net_env.corral("network", "create", "idle")
    net_env.corral("run", "-d", "--network", "used", "busybox", "sleep", "300")
    out = net_env.corral("network", "prune", "-f").stdout
    assert out == "Deleted Networks:\nidle\n"
    names = [line.split()[1] for line in net_env.corral("network", "ls").stdout.splitlines()[1:]]
    assert names == ["bridge", "used", "host", "none"]


@pytest.mark.parametrize(("args", "message"), [
    (["network", "create", "--subnet", "10.72.999.0/24", "bad"], "invalid subnet"),
    (["network", "create", "--subnet", "10.72.0.1/24", "bad"], "host bits set"),
    (["network", "create", "--gateway", "10.1.1.1", "bad"], "need --subnet"),
    (["network", "create", "--driver", "overlay", "bad"], "unsupported network driver"),
    (["network", "create", "bridge"], "pre-defined network"),
    (["network", "create", "bad name"], "invalid network name"),
    (["network", "inspect", "nosuchnet"], "network nosuchnet not found"),
    (["network", "rm", "nosuchnet"], "network nosuchnet not found"),
    (["network", "rm", "host"], "pre-defined network and cannot be removed"),
    (["network", "connect", "nosuchnet", "nosuchcontainer"], "No such container"),
    (["port", "nosuchcontainer"], "No such container"),
])
def test_bad_input_is_one_line_and_exit_125(net_env, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    proc = net_env.corral(*args, check=False)
    assert proc.returncode == 125
    assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert "bad" not in net_env.corral("network", "ls", "--format", "{{.Name}}").stdout


def test_overlapping_subnet_and_network_in_use(net_env) -> None:  # type: ignore[no-untyped-def]
    from tests.network.conftest import container_ns

    net_env.corral("network", "create", "one")
    subnet = json.loads(net_env.corral("network", "inspect", "one").stdout)[0]["IPAM"][
        "Config"][0]["Subnet"]
    proc = net_env.corral("network", "create", "--subnet", subnet, "two", check=False)
    assert proc.returncode == 125 and f"overlaps network one ({subnet})" in proc.stderr
    proc = net_env.corral("network", "create", "--subnet", "192.0.2.0/24", "two", check=False)
    assert proc.returncode == 125 and "overlaps the host route" in proc.stderr
    container_ns(net_env, "holder", mode="one")
    proc = net_env.corral("network", "rm", "one", check=False)
    assert proc.returncode == 125
    assert proc.stderr == "Error: network one is in use by container(s): holder\n"
    assert "one" in net_env.corral("network", "ls").stdout
