"""Machine-wide unique subnets and interface names for tests that make real networks.

Several test sessions (and xdist workers) run on this machine at once, each with its own
CORRAL_ROOT, so each needs its own default-network subnet and bridge name. A lease is an flock on
a file named after the subnet under /run/lock/corral-test-subnets: it is held while the process
lives and released by the kernel when it dies, so a crashed session leaks nothing.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import random
import secrets
from pathlib import Path

from corral.network import subnets

TEST_RANGE = ipaddress.IPv4Network("10.72.0.0/13")  # 10.72-10.79: apart from corral's pools
_LEASE_DIR = Path("/run/lock/corral-test-subnets")
_held: dict[str, int] = {}


def lease_subnet(prefix: int = 24) -> ipaddress.IPv4Network:
    """A subnet of TEST_RANGE that no other test holds and no host route overlaps."""
    _LEASE_DIR.mkdir(parents=True, exist_ok=True)
    candidates = list(TEST_RANGE.subnets(new_prefix=prefix))
    for _ in range(200):
        subnet = random.choice(candidates)
        if any(subnet.overlaps(ipaddress.IPv4Network(h)) for h in _held):
            continue
        # Lock the /22 that contains it too, so /24 and /22 leases never overlap each other.
        keys = [str(subnet.supernet(new_prefix=min(prefix, 22))), str(subnet)]
        fds = []
        for key in dict.fromkeys(keys):
            fd = os.open(_LEASE_DIR / key.replace("/", "_"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                break
            fds.append(fd)
        else:
            if not any(subnet.overlaps(r) for r in subnets.host_routes()):
                for key, fd in zip(dict.fromkeys(keys), fds, strict=True):
                    _held[key] = fd
                return subnet
        for fd in fds:
            os.close(fd)
    raise RuntimeError("no free test subnet in 10.72.0.0/13")


def release_subnet(subnet: ipaddress.IPv4Network) -> None:
    for key in (str(subnet.supernet(new_prefix=min(subnet.prefixlen, 22))), str(subnet)):
        fd = _held.pop(key, None)
        if fd is not None:
            os.close(fd)


def interface_name(prefix: str = "crt") -> str:
    """A host interface name (<= 15 chars) no other test uses."""
    return f"{prefix}{secrets.token_hex(4)}"


def network_env() -> tuple[dict[str, str], list[ipaddress.IPv4Network]]:
    """Environment for a corral whose default and user networks collide with no other test's."""
    bridge, pool = lease_subnet(24), lease_subnet(22)
    env = {"CORRAL_BRIDGE_SUBNET": str(bridge), "CORRAL_SUBNET_POOL": str(pool),
           "CORRAL_BRIDGE_INTERFACE": interface_name()}
    return env, [bridge, pool]


def purge(env: dict[str, str]) -> None:
    """Remove the default bridge of `network_env()` and every firewall rule naming its subnet
    or bridge: what stores a test left behind without tearing their networks down."""
    import shlex
    import subprocess

    bridge, subnet = env["CORRAL_BRIDGE_INTERFACE"], env["CORRAL_BRIDGE_SUBNET"]
    subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
    for table in ("nat", "filter"):
        dump = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True,
                              check=False).stdout
        chains = set()
        for line in dump.splitlines():
            if line.startswith("-A ") and (f" {subnet} " in f"{line} " or f" {bridge} " in
                                           f"{line} "):
                args = shlex.split(line)
                if "-j" in args and args[args.index("-j") + 1].startswith("NETAVARK-"):
                    chains.add(args[args.index("-j") + 1])
                subprocess.run(["iptables", "-w", "-t", table, "-D", *args[1:]],
                               capture_output=True, check=False)
        for chain in chains:
            subprocess.run(["iptables", "-w", "-t", table, "-F", chain], capture_output=True,
                           check=False)
            subprocess.run(["iptables", "-w", "-t", table, "-X", chain], capture_output=True,
                           check=False)
