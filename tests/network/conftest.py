"""Fixtures for the network tests: a private corral state with its own subnets, bare network
namespaces standing in for containers, and an "outside" namespace standing in for a client on
another machine. Every packet stays on this machine."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.config import Paths, paths
from corral.network import attach, netavark, netns, networks, schema
from tests.network import leases

HOST_ADDRESS = "192.0.2.2"  # this machine's own address (HOST-NOTES)


@dataclass
class NetEnv:
    env: dict[str, str]  # for `corral` subprocesses
    paths: Paths

    def conn(self):  # type: ignore[no-untyped-def]
        return schema.connect(self.paths)

    def corral(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        from tests.conftest import corral_bin

        proc = subprocess.run([corral_bin("corral"), *args], env=self.env, capture_output=True,
                              text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"corral {' '.join(args)} failed: {proc.stderr}")
        return proc


def cleanup_state(p: Paths) -> None:
    """Tear down every container and network a test left, bridge and firewall rules included."""
    conn = schema.connect(p)
    for row in schema.containers(conn):
        with contextlib.suppress(Exception):
            attach.release(conn, p, row["container_id"])
    for n in schema.list_networks(conn):
        with contextlib.suppress(Exception):
            netavark.remove_bridge(networks.backend_dir(p), n)
    netns.unmount_dir(os.path.join(p.runroot, "netns"))
    pid_file = Path(networks.backend_dir(p), "aardvark-dns", "aardvark.pid")
    with contextlib.suppress(OSError, ValueError):  # netavark stops it with the last container
        os.kill(int(pid_file.read_text()), signal.SIGTERM)


@pytest.fixture
def net_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NetEnv]:
    extra, leased = leases.network_env()
    extra |= {"CORRAL_ROOT": str(tmp_path / "root"), "CORRAL_RUNROOT": str(tmp_path / "run")}
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    p = paths()
    env = NetEnv(env={**os.environ, **extra}, paths=p)
    try:
        yield env
    finally:
        if os.path.exists(os.path.join(p.root, "containers")):  # real containers: stop and remove them first
            ids = env.corral("ps", "-aq", "--no-trunc", check=False).stdout.split()
            if ids:
                env.corral("rm", "-f", *ids, check=False)
        cleanup_state(p)
        for subnet in leased:
            leases.release_subnet(subnet)


@pytest.fixture
def www(tmp_path: Path) -> Path:
    d = tmp_path / "www"
    d.mkdir()
    (d / "index.html").write_text("hello from corral\n")
    return d


def in_netns(path: str | Path, *cmd: str, etc: dict[str, str] | None = None, **kw):  # type: ignore[no-untyped-def]
    """Run `cmd` in the namespace at `path`, seeing `etc` files (hosts, resolv.conf) bound."""
    binds = "".join(f"mount --bind {src} {dst} && " for dst, src in (etc or {}).items()
                    if dst != "/etc/hostname")
    script = f'{binds}exec "$@"'
    return subprocess.run(["nsenter", f"--net={path}", "unshare", "-m", "--propagation",
                           "private", "sh", "-c", script, "sh", *cmd],
                          capture_output=True, text=True, timeout=30, **kw)


@contextlib.contextmanager
def httpd(path: str | Path, root: Path, port: int = 80) -> Iterator[None]:
    """busybox httpd serving `root` inside the namespace at `path`."""
    proc = subprocess.Popen(["nsenter", f"--net={path}", "busybox", "httpd", "-f", "-p",
                             str(port), "-h", str(root)])
    try:
        for _ in range(100):
            if in_netns(path, "busybox", "nc", "-w", "1", "127.0.0.1", str(port),
                        input="").returncode == 0:
                break
            time.sleep(0.02)
        yield
    finally:
        proc.kill()
        proc.wait()


def http_get(host: str, port: int, timeout: float = 5.0) -> str:
    """The body of GET / over a raw socket (busybox wget crashes here, see HOST-NOTES)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode(errors="replace").split("\r\n\r\n", 1)[-1]


@dataclass
class Outside:
    """A namespace that reaches this host only through a veth, like a client on the LAN."""

    path: Path
    address: str  # the client's own address
    host_side: str  # the host's address on the link to it

    def run(self, *cmd: str, **kw):  # type: ignore[no-untyped-def]
        return in_netns(self.path, *cmd, **kw)


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Outside]:
    subnet = leases.lease_subnet(24)
    host_ip, client_ip = (str(subnet.network_address + i) for i in (1, 2))
    path = tmp_path / "outside" / "ns"
    host_if = leases.interface_name("cro")
    netns.create(path)
    try:
        subprocess.run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0",
                        "netns", str(path)], check=True)
        subprocess.run(["ip", "addr", "add", f"{host_ip}/24", "dev", host_if], check=True)
        subprocess.run(["ip", "link", "set", host_if, "up"], check=True)
        for cmd in (["ip", "addr", "add", f"{client_ip}/24", "dev", "eth0"],
                    ["ip", "link", "set", "eth0", "up"],
                    ["ip", "route", "add", "default", "via", host_ip]):
            subprocess.run(["nsenter", f"--net={path}", *cmd], check=True)
        yield Outside(path, client_ip, host_ip)
    finally:
        subprocess.run(["ip", "link", "del", host_if], check=False, capture_output=True)
        netns.remove(path)
        netns.unmount_dir(path.parent)
        leases.release_subnet(subnet)


def container_ns(env: NetEnv, name: str, **request):  # type: ignore[no-untyped-def]
    """A bare network namespace plumbed by corral as if it were container `name`."""
    from corral.network.model import NetworkRequest

    conn = env.conn()
    cid = (name.encode().hex() + "0" * 64)[:64]
    attach.prepare(conn, env.paths, cid, name, NetworkRequest(**request))
    return attach.setup(conn, env.paths, cid)


def ip_in(subnet: str, ip: str) -> bool:
    return ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(subnet)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port no host program has bound right now (tests publish on it)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def iptables_rules() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
