"""The plumbing backend: netavark (podman's), driven with the options corral computed.

Why netavark (and not the CNI plugins): one call plumbs every network of a container (bridge,
veth, static addresses, routes, NAT, isolation between networks, port forwarding with the host's
loopback and hairpin handled) and it runs aardvark-dns for name resolution by name and alias,
which Debian's CNI plugins cannot do (no dnsname). It takes static IPs, so corral keeps the IPAM.

netavark 1.4 (Debian's) stops at the first error of a teardown, e.g. when the container's
interface is already gone, leaving firewall rules and DNS entries behind. `teardown` then replays
the teardown on a stand-in namespace holding interfaces of the same names: netavark finds what it
expects and removes the rest. Calls are serialised by a host-wide lock, because netavark's
check-then-create of shared iptables chains races with itself.

    options = {container_id, container_name, port_mappings, dns_servers,
               networks: {name: {static_ips, static_mac, aliases, interface_name}},
               network_info: {name: {id, name, driver, network_interface, subnets, internal,
                                     dns_enabled, ipv6_enabled, options, ipam_options}}}

`corral run` on a network starts netavark from here, so this module imports neither subprocess
nor json nor pathlib: netavark runs through posix_spawn with its stdin, stdout and stderr in
memfds (nothing to deadlock on, nothing to read concurrently), JSON goes through
corral.runtime.jsonio, paths are str. The cold paths (replays, leftovers) import subprocess.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence

from corral.errors import CorralError
from corral.network import netns
from corral.network.model import Network, PortMapping
from corral.runtime import jsonio

TYPE_CHECKING = False  # not typing's: `corral run` on a network reads this module
if TYPE_CHECKING:
    import signal as _signal
    from typing import Any

    from corral.fsutil import StrPath
else:  # the C module under `signal`: the same constants, without its enums (and enum)
    import _signal

NETAVARK = os.environ.get("CORRAL_NETAVARK", "/usr/lib/podman/netavark")
AARDVARK = os.environ.get("CORRAL_AARDVARK", "/usr/lib/podman/aardvark-dns")
_LOCK = "/run/lock/corral-netavark.lock"
_SYS_NET = "/sys/class/net"


class BackendError(CorralError):
    """netavark failed; the message is netavark's own."""


def network_info(n: Network) -> dict[str, Any]:
    """netavark's view of a network. Its name is corral's network id: netavark names the
    network's iptables chains after a hash of the name, and podman (or another corral root)
    may well have a network called `bridge` or `podman` too."""
    return {
        "name": n.id, "id": n.id, "driver": n.driver, "network_interface": n.bridge,
        "subnets": [{"subnet": n.subnet, "gateway": n.gateway}],
        "ipv6_enabled": False, "internal": n.internal, "dns_enabled": n.dns,
        # Docker's rule: containers on different networks cannot reach each other.
        "options": {"isolate": "true", **n.options},
        "ipam_options": {"driver": "host-local"},
    }


def port_mappings(ports: Sequence[PortMapping]) -> list[dict[str, Any]]:
    return [{"host_ip": p.host_ip, "host_port": p.host_port, "container_port": p.container_port,
             "protocol": p.protocol, "range": p.count} for p in ports]


# netavark 1.4 deletes FORWARD's jump to its isolation chain whenever an isolated network is
# torn down completely, though other isolated networks still rely on it. corral keeps a jump of
# its own (a different rule: it carries a comment, so netavark never deletes it) in first place.
_KEEP_ISOLATION = (
    "if iptables -w -n -L NETAVARK_ISOLATION_1 >/dev/null 2>&1 && ! iptables -w -C FORWARD "
    "-m comment --comment corral-isolation -j NETAVARK_ISOLATION_1 2>/dev/null; then "
    "iptables -w -I FORWARD 1 -m comment --comment corral-isolation -j NETAVARK_ISOLATION_1; fi")


class _Call:
    """One netavark invocation, started now and collected by `result()`.

    netavark runs under `flock --close` on the host-wide lock: the lock lives exactly as long as
    the netavark process, whoever waits for it (a teardown may come while a background setup
    still runs), and the aardvark-dns daemon netavark starts does not inherit it.

    netavark is given the namespace as this process's open fd of it (/proc/<pid>/fd/<n>), not
    by its path: a netavark left waiting for the lock by a killed command then finds nothing to
    open, instead of plumbing the namespace a later start pinned at the same path (whose own
    netavark would then fail: "eth0 already exists")."""

    def __init__(self, config_dir: StrPath, verb: str, netns_path: StrPath,
                 options: dict[str, Any]) -> None:
        config_dir = os.fspath(config_dir)
        os.makedirs(config_dir, exist_ok=True)
        self.verb = verb
        if not os.path.exists(NETAVARK):
            raise BackendError(f"{NETAVARK} is missing: install Debian's netavark")
        self._fds: list[int] = []  # the child's stdin, stdout and stderr, then the namespace
        try:
            self._fds += [_memfd(jsonio.dumps(options).encode()), _memfd(), _memfd()]
            self._fds.append(os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC))
            lock = _LOCK if os.geteuid() == 0 else os.path.join(config_dir, "netavark.lock")
            cmd = [NETAVARK, "--config", config_dir, "--rootless", "false", "--aardvark-binary",
                   AARDVARK, verb, f"/proc/{os.getpid()}/fd/{self._fds[3]}"]
            if verb == "setup" and not all(
                    os.path.exists(os.path.join(_SYS_NET, info["network_interface"]))
                    for info in options["network_info"].values()):
                # a bridge (and its isolation rules) is about to appear: make sure of the jump
                cmd = ["sh", "-c", f'"$@"; rc=$?; {_KEEP_ISOLATION}; exit $rc', "netavark", *cmd]
            cmd = ["flock", "--close", lock, *cmd]
            # as subprocess's restore_signals: Python ignores SIGPIPE, its children must not
            self._pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(self._fds[:3])],
                setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ))
        except BaseException:
            self._close()
            raise

    def _close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def result(self) -> dict[str, Any]:
        try:
            _, wait_status = os.waitpid(self._pid, 0)
            stdout, stderr = (_read_all(fd) for fd in self._fds[1:3])
        finally:
            self._close()
        out = stdout.decode(errors="replace").strip()
        if os.waitstatus_to_exitcode(wait_status) != 0:
            try:
                message = jsonio.loads(out)["error"]
            except (ValueError, KeyError, TypeError):
                message = out or stderr.decode(errors="replace").strip()
            raise BackendError(f"netavark {self.verb}: {message}")
        status: dict[str, Any] = jsonio.loads(out) if out else {}
        return status


def _memfd(data: bytes = b"") -> int:
    """An anonymous file holding `data`, read from its start (a child's stdin or stdout)."""
    fd = os.memfd_create("corral-netavark", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _run(config_dir: StrPath, verb: str, netns_path: StrPath, options: dict[str, Any]
         ) -> dict[str, Any]:
    return _Call(config_dir, verb, netns_path, options).result()


class PendingSetup:
    """A `setup` running in the background, so the runtime can create the container meanwhile."""

    def __init__(self, config_dir: StrPath, netns_path: StrPath, options: dict[str, Any]
                 ) -> None:
        self._args = (config_dir, netns_path, options)
        self._dns_reload = _DnsReload(config_dir, options, own_may_go=False)
        self._call = _Call(config_dir, "setup", netns_path, options)

    def wait(self) -> dict[str, Any]:
        """netavark's status; on failure whatever it did is undone, then BackendError."""
        config_dir, netns_path, options = self._args
        try:
            status = self._call.result()
        except BackendError:
            with contextlib.suppress(BackendError):
                teardown(config_dir, netns_path, options)
            raise
        for info in options["network_info"].values():
            _hairpin(info["network_interface"])
        self._dns_reload.wait()
        return status


def setup(config_dir: StrPath, netns_path: StrPath, options: dict[str, Any]) -> dict[str, Any]:
    """Plumb the namespace; on failure undo what netavark did before it stopped."""
    return PendingSetup(config_dir, netns_path, options).wait()


def _listener(gateway: str) -> str:
    """aardvark-dns's listening address on `gateway`, spelt as /proc/net/udp does."""
    return f"{int.from_bytes(bytes(map(int, gateway.split('.'))), 'little'):08X}:0035"


def _dns_listeners(options: dict[str, Any]) -> set[str]:
    return {_listener(info["subnets"][0]["gateway"]) for info in options["network_info"].values()
            if info["dns_enabled"]}


class _DnsReload:
    """Waits until aardvark-dns has reloaded after netavark (or rename) signalled it.

    netavark returns once it has sent aardvark SIGHUP; aardvark 1.4 then closes and binds again
    the listener of every network it serves, and a query in between is refused. A container
    started (or a command returning) before that would see "connection refused" for a name that
    is there (seen in CI). So the sockets bound to each listener address are noted before the
    call, and `wait()` returns once each is another one than before and bound again — except
    the call's own listeners after a teardown, which may be gone for good. Up to 2 s for a first
    start of aardvark, 0.25 s for a rebind (an aardvark that reloads without rebinding then
    costs little)."""

    def __init__(self, config_dir: StrPath, options: dict[str, Any], *, own_may_go: bool
                 ) -> None:
        self._own = _dns_listeners(options)
        self._own_may_go = own_may_go
        listeners = set(self._own)
        with contextlib.suppress(OSError):
            for entries in os.scandir(_aardvark_dir(config_dir)):  # first line: gateway[,...]
                if entries.name != "aardvark.pid":
                    with contextlib.suppress(OSError), open(entries) as f:
                        first = f.readline().split()
                    listeners.update(_listener(g) for g in (first[0].split(",") if first else ())
                                     if "." in g)
        self._before = _dns_sockets(listeners) if self._own else {}

    def wait(self) -> None:
        before = self._before
        waiting = {a for a, inode in before.items()
                   if inode is not None or (a in self._own and not self._own_may_go)}
        deadline = time.monotonic() + (2.0 if any(before[a] is None for a in waiting) else 0.25)
        while waiting:
            now = _dns_sockets(waiting)
            waiting = {a for a in waiting if now[a] == before[a] or (
                now[a] is None and not (self._own_may_go and a in self._own))}
            if not waiting or time.monotonic() > deadline:
                return
            time.sleep(0.002)


def _dns_sockets(listeners: set[str]) -> dict[str, str | None]:
    """The inode of the UDP socket bound to each listener address, or None."""
    if not listeners:
        return {}
    with open("/proc/net/udp") as f:
        bound = {fields[1]: fields[9] for fields in map(str.split, f.readlines()[1:])}
    return {address: bound.get(address) for address in listeners}


def _hairpin(bridge: str) -> None:
    """Let a container reach its own published port through a host address.

    With br_netfilter the DNATed packet is bridged straight back to the port it came from,
    which a bridge only does in hairpin mode (Docker sets it too; netavark 1.4 does not).
    """
    brif = os.path.join(_SYS_NET, bridge, "brif")
    for port in _listdir(brif):
        with contextlib.suppress(OSError), open(os.path.join(brif, port, "hairpin_mode"),
                                                "r+") as mode:
            if mode.read().strip() != "1":
                mode.seek(0)
                mode.write("1")


def teardown(config_dir: StrPath, netns_path: StrPath | None, options: dict[str, Any]
             ) -> None:
    """Undo `setup`; idempotent, and complete even when the namespace or interfaces are gone."""
    dns_reload = _DnsReload(config_dir, options, own_may_go=True)
    if netns_path is not None and netns.exists(netns_path):
        try:
            _run(config_dir, "teardown", netns_path, options)
            dns_reload.wait()
            return
        except BackendError:
            pass
    replay_teardown(config_dir, options)
    dns_reload.wait()


def replay_teardown(config_dir: StrPath, options: dict[str, Any]) -> None:
    """Run netavark's teardown on a stand-in namespace with the interfaces it expects.

    netavark 1.4 reports errors for steps a partial teardown already did (the DNS entries, the
    bridge), so success is judged by what is left: the container's DNAT rules and DNS entries.
    """
    import subprocess

    without_dns = {**options, "network_info": {
        k: {**v, "dns_enabled": False} for k, v in options["network_info"].items()}}
    error: BackendError | None = None
    for attempt in (options, without_dns):
        stand_in = os.path.join(os.path.dirname(os.fspath(config_dir)), "netns",
                                f".stand-in-{os.urandom(6).hex()}")
        netns.create(stand_in)
        try:
            for i, per_net in enumerate(attempt["networks"].values()):
                subprocess.run(["nsenter", f"--net={stand_in}", "ip", "link", "add",
                                per_net["interface_name"], "type", "veth", "peer", "name",
                                f"standin{i}"], check=True, capture_output=True)
            _run(config_dir, "teardown", stand_in, attempt)
            return
        except BackendError as e:
            error = e
        finally:
            netns.remove(stand_in)
        left = leftovers(config_dir, options)
        if not left:
            return
        error = BackendError(f"{error}; left behind: {', '.join(left)}")
    assert error is not None
    raise error


def rename_dns_entries(config_dir: StrPath, options: dict[str, Any]) -> None:
    """Make aardvark-dns answer for `options["container_name"]`, a running container's new name
    (Docker's rename does; netavark has no verb for it). An entry reads
    `<id> <ipv4> <ipv6> <name>,<alias>... [<dns servers>]`: its first name is replaced in place,
    under the file's lock, then aardvark reloads on SIGHUP."""
    import fcntl

    container_id, name = options["container_id"], options["container_name"]
    changed = False
    for network_id, info in options["network_info"].items():
        if not info["dns_enabled"]:
            continue
        entries = os.path.join(_aardvark_dir(config_dir), network_id)
        try:
            f = open(entries, "r+")  # noqa: SIM115 (locked below)
        except FileNotFoundError:
            continue
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)
            text = f.read()
            lines = text.split("\n")
            for i, line in enumerate(lines):
                fields = line.split(" ")
                if fields[0] == container_id and len(fields) >= 4:
                    fields[3] = ",".join([name, *fields[3].split(",")[1:]])
                    lines[i] = " ".join(fields)
            if "\n".join(lines) != text:
                f.seek(0)
                f.write("\n".join(lines))
                f.truncate()
                changed = True
    if changed:
        dns_reload = _DnsReload(config_dir, options, own_may_go=False)
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(_aardvark_dir(config_dir), "aardvark.pid")) as pid_file:
                os.kill(int(pid_file.read()), 1)
            dns_reload.wait()


def leftovers(config_dir: StrPath, options: dict[str, Any]) -> list[str]:
    """What of a container's plumbing the host still has: DNAT rules and DNS entries."""
    import subprocess

    container_id = options["container_id"]
    left = []
    rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True,
                           check=False).stdout
    if f"id: {container_id}" in rules:
        left.append("port forwarding rules")
    for network_id in options["network_info"]:
        with contextlib.suppress(OSError), open(
                os.path.join(_aardvark_dir(config_dir), network_id)) as entries:
            if container_id in entries.read():
                left.append(f"DNS entries on network {network_id[:12]}")
    return left


def remove_bridge(config_dir: StrPath, network: Network, *, wait_s: float = 2.0) -> None:
    """Delete a network's bridge and firewall rules (left in place while it has no containers)."""
    brif = os.path.join(_SYS_NET, network.bridge, "brif")
    if not os.path.exists(brif):
        return
    deadline = time.monotonic() + wait_s
    while _listdir(brif) and time.monotonic() < deadline:
        time.sleep(0.02)  # veths of just-deleted namespaces go away asynchronously
    info = {**network_info(network), "dns_enabled": False}  # no container: no DNS entries
    replay_teardown(config_dir, {
        "container_id": os.urandom(32).hex(), "container_name": "corral-network-rm",
        "networks": {network.id: {"interface_name": "eth0"}},
        "network_info": {network.id: info},
    })
    if os.path.exists(brif):
        raise BackendError(f"bridge {network.bridge} of network {network.name} is still in use")


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _aardvark_dir(config_dir: StrPath) -> str:
    """Where netavark keeps aardvark-dns's entries (one file per network) and its pid file."""
    return os.path.join(config_dir, "aardvark-dns")
