"""corral's plumbing on bare network namespaces standing in for containers (busybox programs run
in them with nsenter): published ports, names, isolation, connect, cleanup."""

from __future__ import annotations

import concurrent.futures
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from corral.network import attach, netavark, netns, networks
from corral.network.model import Attach, PortMapping
from tests.network.conftest import (
    HOST_ADDRESS,
    container_ns,
    free_port,
    http_get,
    httpd,
    in_netns,
    iptables_rules,
)


def test_published_port_from_host_loopback_address_and_outside(net_env, www, outside) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    plan = container_ns(net_env, "web", ports=(PortMapping(80, port),))
    ip = plan.endpoints[0].ip
    assert plan.endpoints[0].network.name == "bridge"
    with httpd(plan.netns_path, www):
        assert http_get(ip, 80) == "hello from corral\n"
        assert http_get("127.0.0.1", port) == "hello from corral\n"
        assert http_get(HOST_ADDRESS, port) == "hello from corral\n"
        reply = outside.run("busybox", "nc", "-w", "5", HOST_ADDRESS, str(port),
                            input="GET / HTTP/1.0\r\n\r\n")
        assert "hello from corral" in reply.stdout, reply.stderr
        # hairpin: the container reaches its own published port through the host's address
        hairpin = in_netns(plan.netns_path, "busybox", "nc", "-w", "5", HOST_ADDRESS,
                           str(port), input="GET / HTTP/1.0\r\n\r\n")
        assert "hello from corral" in hairpin.stdout


def test_host_ip_binding_limits_the_port_to_that_address(net_env, www, outside) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    plan = container_ns(net_env, "local", ports=(PortMapping(80, port, "127.0.0.1"),))
    with httpd(plan.netns_path, www):
        assert http_get("127.0.0.1", port) == "hello from corral\n"
        reply = outside.run("busybox", "nc", "-w", "2", HOST_ADDRESS, str(port),
                            input="GET / HTTP/1.0\r\n\r\n")
        assert "hello" not in reply.stdout


def test_udp_through_a_published_port_and_port_ranges(net_env) -> None:  # type: ignore[no-untyped-def]
    base = free_port(socket.SOCK_DGRAM)
    plan = container_ns(net_env, "udp", ports=(PortMapping(5000, base, protocol="udp",
                                                            count=2),))
    echo = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0',int(sys.argv[1])))\nprint('ready',flush=True)\n"
            "while True:\n d,a=s.recvfrom(100)\n s.sendto(b'echo:'+d,a)\n")
    servers = [subprocess.Popen(["nsenter", f"--net={plan.netns_path}", "python3", "-c", echo,
                                 str(p)], stdout=subprocess.PIPE) for p in (5000, 5001)]
    try:
        for server in servers:
            assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        for offset in (0, 1):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(5)
                s.sendto(b"ping", ("127.0.0.1", base + offset))
                assert s.recvfrom(100)[0] == b"echo:ping"
    finally:
        for server in servers:
            server.kill()
            server.wait()
    assert [str(p) for p in attach.published(net_env.conn(), plan.container_id)] == [
        f"{base}-{base + 1}:5000-5001/udp"]


def test_names_aliases_isolation_and_connect(net_env, www) -> None:  # type: ignore[no-untyped-def]
    conn = net_env.conn()
    networks.create(conn, "front")
    networks.create(conn, "back")
    web = container_ns(net_env, "web", mode="front",
                       networks=(Attach("front", aliases=("www",)),))
    client = container_ns(net_env, "client", mode="front")
    stranger = container_ns(net_env, "stranger", mode="back")
    web_ip = web.endpoints[0].ip
    with httpd(web.netns_path, www):
        for name in ("web", "www", web.container_id[:12]):
            found = in_netns(client.netns_path, "busybox", "nslookup", name,
                             etc=client.etc_files)
            assert web_ip in found.stdout, (name, found.stdout, found.stderr)
        got = in_netns(client.netns_path, "busybox", "nc", "-w", "3", "www", "80",
                       etc=client.etc_files, input="GET / HTTP/1.0\r\n\r\n")
        assert "hello from corral" in got.stdout, got.stderr
        # another network: no name, and no route through the host either
        assert web_ip not in in_netns(stranger.netns_path, "busybox", "nslookup", "web",
                                      etc=stranger.etc_files).stdout
        blocked = in_netns(stranger.netns_path, "busybox", "nc", "-w", "2", web_ip, "80",
                           input="GET / HTTP/1.0\r\n\r\n")
        assert "hello" not in blocked.stdout
        attach.connect(conn, net_env.paths, stranger.container_id, Attach("front"))
        joined = in_netns(stranger.netns_path, "busybox", "nc", "-w", "3", "web", "80",
                          etc=stranger.etc_files, input="GET / HTTP/1.0\r\n\r\n")
        assert "hello from corral" in joined.stdout, joined.stderr
        attach.disconnect(conn, net_env.paths, stranger.container_id, "front")
        again = in_netns(stranger.netns_path, "busybox", "nc", "-w", "2", web_ip, "80",
                         input="GET / HTTP/1.0\r\n\r\n")
        assert "hello" not in again.stdout


def test_default_network_has_hosts_entries_but_no_dns(net_env) -> None:  # type: ignore[no-untyped-def]
    a = container_ns(net_env, "alpha", hostname="alpha.example", add_hosts=("db:10.1.2.3",
                                                                           "gw:host-gateway"))
    hosts = Path(a.etc_files["/etc/hosts"]).read_text()
    assert f"{a.endpoints[0].ip}\talpha.example alpha" in hosts
    assert "10.1.2.3\tdb" in hosts and f"{a.endpoints[0].network.gateway}\tgw" in hosts
    resolv = Path(a.etc_files["/etc/resolv.conf"]).read_text()
    assert a.endpoints[0].network.gateway not in resolv  # no aardvark on the default bridge
    b = container_ns(net_env, "beta", dns=("10.9.9.9",))
    assert "nameserver 10.9.9.9" in Path(b.etc_files["/etc/resolv.conf"]).read_text()
    assert a.endpoints[0].ip not in in_netns(b.netns_path, "busybox", "nslookup", "alpha",
                                             etc=b.etc_files).stdout


def test_thirty_containers_get_distinct_addresses_and_all_answer(net_env, www) -> None:  # type: ignore[no-untyped-def]
    networks.create(net_env.conn(), "many")
    lock = threading.Lock()

    def start(i: int):  # type: ignore[no-untyped-def]
        with lock:  # one sqlite connection per thread, made here
            pass
        return container_ns(net_env, f"c{i}", mode="many")

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        plans = list(pool.map(start, range(30)))
    ips = [p.endpoints[0].ip for p in plans]
    assert len(set(ips)) == 30
    servers = [subprocess.Popen(["nsenter", f"--net={p.netns_path}", "busybox", "httpd", "-f",
                                 "-p", "80", "-h", str(www)]) for p in plans]
    try:
        import time

        deadline = time.monotonic() + 10
        for ip in ips:
            while True:
                try:
                    assert http_get(ip, 80, timeout=2) == "hello from corral\n"
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
    finally:
        for s in servers:
            s.kill()
            s.wait()


def test_teardown_releases_veth_rules_dns_and_address(net_env) -> None:  # type: ignore[no-untyped-def]
    conn = net_env.conn()
    n = networks.create(conn, "tidy")
    port = free_port()
    plan = container_ns(net_env, "tidy1", mode="tidy", ports=(PortMapping(80, port),))
    ip = plan.endpoints[0].ip
    dns_file = Path(networks.backend_dir(net_env.paths), "aardvark-dns", n.id)
    assert ip in dns_file.read_text() and f"--dport {port}" in iptables_rules()
    # break it the way a crash would: the container's interface vanishes under netavark
    subprocess.run(["nsenter", f"--net={plan.netns_path}", "ip", "link", "del", "eth0"],
                   check=True)
    attach.release(conn, net_env.paths, plan.container_id)
    attach.release(conn, net_env.paths, plan.container_id)  # idempotent
    assert f"--dport {port}" not in iptables_rules()
    assert not dns_file.exists() or ip not in dns_file.read_text()
    assert not os.path.exists(plan.netns_path)
    assert not networks.users(conn, n)
    networks.remove(conn, net_env.paths, "tidy")
    assert not Path(f"/sys/class/net/{n.bridge}").exists()
    assert n.subnet not in iptables_rules()


KILL_SCRIPT = """
import os, sys
from corral.config import paths
from corral.network import attach, schema
from corral.network.model import NetworkRequest, PortMapping
conn = schema.connect(paths())
attach.prepare(conn, paths(), "k" * 64, "victim",
               NetworkRequest(mode="killnet", ports=(PortMapping(80, int(sys.argv[1])),)))
attach.setup(conn, paths(), "k" * 64)
"""


def test_sigkill_mid_setup_leaves_nothing_the_next_start_cannot_clean(net_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    conn = net_env.conn()
    networks.create(conn, "killnet")
    port = free_port()
    # a netavark that plumbs, then hangs: the command is killed after the kernel state exists
    stuck = tmp_path / "netavark-then-hang"
    stuck.write_text(f"#!/bin/sh\n{netavark.NETAVARK} \"$@\" >/dev/null\nexec sleep 600\n")
    stuck.chmod(0o755)
    proc = subprocess.Popen([subprocess.sys.executable, "-c", KILL_SCRIPT, str(port)],  # type: ignore[attr-defined]
                            env={**net_env.env, "CORRAL_NETAVARK": str(stuck)},
                            start_new_session=True)
    try:
        import time

        deadline = time.monotonic() + 20
        while f"--dport {port}" not in iptables_rules():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    finally:
        import signal

        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert attach.is_plumbed(conn, "k" * 64)
    plan = attach.setup(conn, net_env.paths, "k" * 64)  # the next start repairs and re-plumbs
    assert plan.endpoints and f"--dport {port}" in iptables_rules()
    attach.release(conn, net_env.paths, "k" * 64)
    assert f"--dport {port}" not in iptables_rules()
    removed = networks.prune(conn, net_env.paths)
    assert [n.name for n in removed] == ["killnet"]
    assert "killnet" not in iptables_rules()


@pytest.mark.parametrize("mode", ["host", "none"])
def test_host_and_none_modes(net_env, mode: str) -> None:  # type: ignore[no-untyped-def]
    plan = container_ns(net_env, f"m{mode}", mode=mode)
    assert plan.endpoints == ()
    if mode == "host":
        assert plan.netns_path is None and plan.host_network
    else:
        links = in_netns(plan.netns_path, "ip", "-o", "link").stdout
        assert "lo:" in links and "eth0" not in links and "UP" in links


RUN_PATH_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from corral.config import paths
from corral.containers import networking
from corral.network import attach, loopback, schema
from corral.network.model import NetworkRequest
p = paths()
files = loopback.prepare(p, "n" * 64, hostname="quiet", dns=(), dns_search=(), dns_options=(),
                         add_hosts=())
loopback.setup(p, "n" * 64)
loopback.release(p, "n" * 64)
conn = schema.connect(p)
attach.prepare(conn, p, "b" * 64, "plain", NetworkRequest())
plan = attach.begin_setup(conn, p, "b" * 64).wait()
assert plan.endpoints and all(isinstance(f, str) for f in [plan.netns_path, *files.values()])
attach.release(conn, p, "b" * 64)
heavy = ("pathlib", "re", "shutil", "enum", "ipaddress", "typing", "dataclasses", "tempfile",
         "json", "subprocess", "socket", "secrets", "datetime", "random")
print(" ".join(m for m in heavy if m in sys.modules))
"""


def test_what_corral_run_calls_imports_nothing_heavy(net_env) -> None:  # type: ignore[no-untyped-def]
    """`corral run` (--network none, or the default network once it exists) plumbs with str
    paths and without the modules that cost ms at startup: none of them is imported."""
    import sys

    import corral

    networks.ensure_default(net_env.conn())  # made once per store (that may import ipaddress)
    src = os.path.dirname(os.path.dirname(corral.__file__))
    result = subprocess.run([sys.executable, "-IS", "-c", RUN_PATH_SCRIPT, src],
                            env=net_env.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


ORPHAN_SCRIPT = """
import os
from corral.config import paths
from corral.network import attach, schema
from corral.network.model import NetworkRequest
conn = schema.connect(paths())
attach.prepare(conn, paths(), "o" * 64, "orphan", NetworkRequest())
attach.begin_setup(conn, paths(), "o" * 64)  # netavark waits for the lock the test holds
print("spawned", flush=True)
os.kill(os.getpid(), 9)
"""


def test_a_netavark_outliving_its_command_never_plumbs_the_next_start(net_env) -> None:  # type: ignore[no-untyped-def]
    """A command killed while its netavark waits for the host-wide lock leaves that netavark
    behind; the next start pins a new namespace at the same path before it runs. It must not
    put an eth0 there (the start's own netavark then fails: "eth0 already exists")."""
    import fcntl
    import sys
    import time

    conn = net_env.conn()
    networks.ensure_default(conn)
    marker = networks.backend_dir(net_env.paths)  # in the command line of its netavark calls
    lock = netavark._LOCK if os.geteuid() == 0 else os.path.join(marker, "netavark.lock")
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        killed = subprocess.run([sys.executable, "-c", ORPHAN_SCRIPT], env=net_env.env,
                                capture_output=True, text=True, timeout=60)
        assert killed.stdout == "spawned\n", killed.stderr
        attach.teardown(conn, net_env.paths, "o" * 64)  # what the next start does first...
        path = attach.plan(conn, net_env.paths, "o" * 64).netns_path
        netns.create(path)  # ...and then it pins the new namespace
    deadline = time.monotonic() + 20
    while _running_with(marker):  # the orphan had its turn
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "eth0" not in in_netns(path, "ip", "-o", "link").stdout
    plan = attach.setup(conn, net_env.paths, "o" * 64)  # and the start plumbs it
    assert "eth0" in in_netns(plan.netns_path, "ip", "-o", "link").stdout
    attach.release(conn, net_env.paths, "o" * 64)


def _running_with(marker: str) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    return True
        except OSError:
            continue
    return False
