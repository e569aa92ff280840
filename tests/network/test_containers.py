"""End to end with real containers: `corral run` with published ports, user networks, names
and aliases, connect/disconnect, the network modes, cleanup and bad input."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.network.conftest import (
    HOST_ADDRESS,
    free_port,
    http_get,
    iptables_rules,
)

GET = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} 80"


def _wait_http(host: str, port: int, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_get(host, port, timeout=2)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _httpd(net_env, www: Path, *flags: str) -> str:  # type: ignore[no-untyped-def]
    return net_env.corral("run", "-d", *flags, "-v", f"{www}:/www:ro", "busybox", "httpd",
                          "-f", "-p", "80", "-h", "/www").stdout.strip()


def _ip(net_env, ref: str, network: str) -> str:  # type: ignore[no-untyped-def]
    doc = json.loads(net_env.corral("inspect", ref).stdout)[0]
    return str(doc["NetworkSettings"]["Networks"][network]["IPAddress"])


def test_published_port_from_host_and_outside_and_after_restart(net_env, www, outside) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    _httpd(net_env, www, "--name", "web", "-p", f"{port}:80", "-p", "80")
    assert _wait_http("127.0.0.1", port) == "hello from corral\n"
    assert http_get(HOST_ADDRESS, port) == "hello from corral\n"
    reply = outside.run("busybox", "nc", "-w", "5", HOST_ADDRESS, str(port),
                        input="GET / HTTP/1.0\r\n\r\n")
    assert "hello from corral" in reply.stdout, reply.stderr
    listing = net_env.corral("port", "web").stdout.splitlines()
    assert f"80/tcp -> 0.0.0.0:{port}" in listing and len(listing) == 2
    random_port = int(next(line for line in listing if str(port) not in line).rsplit(":", 1)[1])
    assert _wait_http("127.0.0.1", random_port) == "hello from corral\n"
    doc = json.loads(net_env.corral("inspect", "web").stdout)[0]
    assert {"HostIp": "0.0.0.0", "HostPort": str(port)} in doc["NetworkSettings"]["Ports"][
        "80/tcp"]
    net_env.corral("restart", "-t", "0", "web")
    assert net_env.corral("port", "web").stdout.splitlines() == listing  # same ports
    assert _wait_http("127.0.0.1", port) == "hello from corral\n"
    assert _wait_http("127.0.0.1", random_port) == "hello from corral\n"


ECHO = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "s.bind(('0.0.0.0',5353))\nprint('ready',flush=True)\n"
        "while True:\n d,a=s.recvfrom(100)\n s.sendto(b'echo:'+d,a)\n")


def test_udp_through_a_published_port(net_env) -> None:  # type: ignore[no-untyped-def]
    port = free_port(socket.SOCK_DGRAM)
    net_env.corral("run", "-d", "--name", "udp", "-p", f"127.0.0.1:{port}:5353/udp", "busybox",
                   "sleep", "300")
    sandbox = json.loads(net_env.corral("inspect", "udp").stdout)[0]["NetworkSettings"][
        "SandboxKey"]
    # busybox has no UDP server: a host program in the container's network namespace serves
    server = subprocess.Popen(["nsenter", f"--net={sandbox}", "python3", "-c", ECHO],
                              stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"ping", ("127.0.0.1", port))
            assert s.recvfrom(100)[0] == b"echo:ping"
    finally:
        server.kill()
        server.wait()
    assert net_env.corral("port", "udp", "5353/udp").stdout == f"127.0.0.1:{port}\n"


def test_names_aliases_isolation_and_connect(net_env, www) -> None:  # type: ignore[no-untyped-def]
    net_env.corral("network", "create", "front")
    net_env.corral("network", "create", "back")
    _httpd(net_env, www, "--name", "web", "--network", "front", "--network-alias", "www")
    web_ip = _ip(net_env, "web", "front")
    for name in ("web", "www"):
        found = net_env.corral("run", "--rm", "--network", "front", "busybox", "nslookup", name)
        assert web_ip in found.stdout, found.stdout
    got = net_env.corral("run", "--rm", "--network", "front", "busybox", "sh", "-c",
                         GET.format(host="www"))
    assert "hello from corral" in got.stdout
    net_env.corral("run", "-d", "--name", "stranger", "--network", "back", "busybox", "sleep",
                   "300")
    blocked = net_env.corral("exec", "stranger", "sh", "-c",
                             GET.format(host=web_ip).replace("-w 3", "-w 2"), check=False)
    assert "hello" not in blocked.stdout
    net_env.corral("network", "connect", "front", "stranger")
    joined = net_env.corral("exec", "stranger", "sh", "-c", GET.format(host="web"))
    assert "hello from corral" in joined.stdout
    assert set(json.loads(net_env.corral("inspect", "stranger").stdout)[0]["NetworkSettings"][
        "Networks"]) == {"front", "back"}
    net_env.corral("network", "disconnect", "front", "stranger")
    again = net_env.corral("exec", "stranger", "sh", "-c",
                           GET.format(host=web_ip).replace("-w 3", "-w 2"), check=False)
    assert "hello" not in again.stdout
    net_env.corral("rename", "web", "web2")  # DNS follows the new name at once (Docker's)
    lookup = "nslookup web2; nslookup web >/dev/null 2>&1 && echo OLD-NAME-ANSWERS; nslookup www"
    found = net_env.corral("run", "--rm", "--network", "front", "busybox", "sh", "-c", lookup)
    assert found.stdout.count(web_ip) == 2 and "OLD-NAME-ANSWERS" not in found.stdout, found.stdout
    net_env.corral("restart", "-t", "0", "web2")
    found = net_env.corral("run", "--rm", "--network", "front", "busybox", "nslookup", "web2")
    assert _ip(net_env, "web2", "front") in found.stdout


def test_several_networks_from_the_start(net_env) -> None:  # type: ignore[no-untyped-def]
    net_env.corral("network", "create", "one")
    net_env.corral("network", "create", "two")
    net_env.corral("create", "--name", "both", "--network", "one", "busybox", "sleep", "300")
    net_env.corral("network", "connect", "--alias", "b2", "two", "both")
    net_env.corral("start", "both")
    addrs = net_env.corral("exec", "both", "ip", "-o", "-4", "addr").stdout
    assert _ip(net_env, "both", "one") in addrs and _ip(net_env, "both", "two") in addrs
    found = net_env.corral("run", "--rm", "--network", "two", "busybox", "nslookup", "b2")
    assert _ip(net_env, "both", "two") in found.stdout
    twice = net_env.corral("run", "--rm", "--network", "one", "--network", "two", "busybox",
                           "ip", "-o", "-4", "addr").stdout
    assert "eth0" in twice and "eth1" in twice


def test_thirty_containers_on_one_network(net_env, www) -> None:  # type: ignore[no-untyped-def]
    net_env.corral("network", "create", "many")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: _httpd(net_env, www, "--name", f"m{i}", "--network", "many"),
                      range(30)))
    members = json.loads(net_env.corral("network", "inspect", "many").stdout)[0]["Containers"]
    ips = [m["IPv4Address"].split("/")[0] for m in members.values()]
    assert len(ips) == 30 and len(set(ips)) == 30
    for ip in ips:
        assert _wait_http(ip, 80) == "hello from corral\n"


def test_network_modes_and_etc_files(net_env, www) -> None:  # type: ignore[no-untyped-def]
    none = net_env.corral("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert "lo:" in none.stdout and "eth0" not in none.stdout
    host = net_env.corral("run", "--rm", "--network", "host", "busybox", "ip", "-o", "addr")
    assert HOST_ADDRESS in host.stdout
    _httpd(net_env, www, "--name", "box")
    box_ip = _ip(net_env, "box", "bridge")
    shared = net_env.corral("run", "--rm", "--network", "container:box", "busybox", "sh", "-c",
                            "ip -o addr; " + GET.format(host="127.0.0.1"))
    assert box_ip in shared.stdout and "hello from corral" in shared.stdout
    files = net_env.corral("run", "--rm", "--hostname", "h1.example", "--dns", "10.9.9.9",
                           "--dns-search", "corp.example", "--add-host", "db:10.1.2.3",
                           "--add-host", "gw:host-gateway", "busybox", "sh", "-c",
                           "hostname; cat /etc/resolv.conf /etc/hosts").stdout
    gateway = json.loads(net_env.corral("network", "inspect", "bridge").stdout)[0]["IPAM"][
        "Config"][0]["Gateway"]
    assert files.startswith("h1.example\n")
    assert "nameserver 10.9.9.9" in files and "search corp.example" in files
    assert "10.1.2.3\tdb" in files and f"{gateway}\tgw" in files and "h1.example h1" in files
    # the default network has no DNS: names of other containers do not resolve
    assert box_ip not in net_env.corral("run", "--rm", "busybox", "nslookup", "box",
                                        check=False).stdout


def test_rm_releases_address_port_rules_and_namespace(net_env, www) -> None:  # type: ignore[no-untyped-def]
    net_env.corral("network", "create", "tidy")
    port = free_port()
    cid = _httpd(net_env, www, "--name", "gone", "--network", "tidy", "-p", f"{port}:80")
    assert _wait_http("127.0.0.1", port) == "hello from corral\n"
    assert f"--dport {port}" in iptables_rules()
    net_env.corral("rm", "-f", "gone")
    assert f"--dport {port}" not in iptables_rules()
    assert not (Path(net_env.paths.runroot) / "netns" / cid).exists()
    assert json.loads(net_env.corral("network", "inspect", "tidy").stdout)[0]["Containers"] == {}
    net_env.corral("network", "rm", "tidy")
    # --rm: the exit command releases everything without a CLI
    rm_port = free_port()
    net_env.corral("run", "--rm", "-p", f"{rm_port}:80", "busybox", "true")
    assert f"--dport {rm_port}" not in iptables_rules()


PEER_SERVER = """
import socket
s = socket.socket()
s.bind(("0.0.0.0", 8000))
s.listen()
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.recv(1000)
    c.sendall(f"HTTP/1.0 200 OK\\r\\n\\r\\n{peer[0]}\\n".encode())
    c.close()
"""


def test_outbound_nat_and_internal_networks(net_env, outside) -> None:  # type: ignore[no-untyped-def]
    server = subprocess.Popen(["nsenter", f"--net={outside.path}", "python3", "-c", PEER_SERVER],
                              stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        fetch = GET.replace(" 80", " 8000").format(host=outside.address)
        seen = net_env.corral("run", "--rm", "busybox", "sh", "-c", fetch).stdout
        assert seen.strip().splitlines()[-1] == outside.host_side  # masqueraded by the host
        net_env.corral("network", "create", "--internal", "sealed")
        sealed = net_env.corral("run", "--rm", "--network", "sealed", "busybox", "sh", "-c",
                                fetch.replace("-w 3", "-w 2"), check=False)
        assert outside.host_side not in sealed.stdout
    finally:
        server.kill()
        server.wait()


def test_prune_cleans_up_after_a_dead_monitor_and_container(net_env) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal

    port = free_port()
    cid = net_env.corral("run", "-d", "-p", f"{port}:80", "busybox", "sleep", "300").stdout.strip()
    conmon = int((Path(net_env.paths.runroot) / "containers" / cid / "conmon.pid").read_text())
    pid = int(net_env.corral("inspect", "-f", "{{.State.Pid}}", cid).stdout)
    os.kill(conmon, signal.SIGKILL)  # nothing is left to run the exit command
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    assert f"--dport {port}" in iptables_rules()
    net_env.corral("network", "prune", "-f")
    assert f"--dport {port}" not in iptables_rules()
    assert not (Path(net_env.paths.runroot) / "netns" / cid).exists()
    net_env.corral("start", cid)  # and it plumbs again on the next start
    assert f"--dport {port}" in iptables_rules()


def test_a_port_published_by_another_container_is_refused(net_env) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    net_env.corral("run", "-d", "--name", "first", "-p", f"{port}:80", "busybox", "sleep", "300")
    proc = net_env.corral("run", "-d", "--name", "second", "-p", f"{port}:8080", "busybox",
                          "sleep", "300", check=False)
    assert proc.returncode == 125
    assert proc.stderr == f"Error: Bind for 0.0.0.0:{port}/tcp failed: port is already in use\n"
    assert iptables_rules().count(f"--dport {port} -j DNAT") == 1  # first's only
    net_env.corral("rm", "-f", "first")
    net_env.corral("run", "-d", "--name", "second", "-p", f"{port}:8080", "busybox", "sleep",
                   "300")  # the port is free again
    assert net_env.corral("port", "second").stdout == f"8080/tcp -> 0.0.0.0:{port}\n"


@pytest.mark.parametrize("case", ["port in use", "unknown network", "invalid ip",
                                  "ip on default network", "network in use"])
def test_bad_input_is_one_line_exit_125_and_nothing_half_done(net_env, case: str) -> None:  # type: ignore[no-untyped-def]
    net_env.corral("network", "create", "bad")
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args, message = {
            "port in use": (["run", "-d", "-p", f"{port}:80", "busybox", "sleep", "30"],
                            f"0.0.0.0:{port}/tcp failed: port is already in use"),
            "unknown network": (["run", "--network", "nosuch", "busybox", "true"],
                                "network nosuch not found"),
            "invalid ip": (["run", "--network", "bad", "--ip", "10.300.1.1", "busybox", "true"],
                           "invalid IP address '10.300.1.1'"),
            "ip on default network": (["run", "--ip", "10.1.1.1", "busybox", "true"],
                                      "supported on user defined networks only"),
            "network in use": (["network", "rm", "bad"], "network bad is in use"),
        }[case]
        if case == "network in use":
            net_env.corral("run", "-d", "--network", "bad", "busybox", "sleep", "30")
        proc = net_env.corral(*args, check=False)
    assert proc.returncode == 125, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert f"--dport {port}" not in iptables_rules()
    running = net_env.corral("ps", "-q").stdout.split()
    assert len(running) == (1 if case == "network in use" else 0)
    netns_dir = Path(net_env.paths.runroot) / "netns"
    leftovers = [p.name for p in netns_dir.iterdir() if not p.name.startswith(".")] if (
        netns_dir.exists()) else []
    assert len(leftovers) == len(running)
