"""The container side of networking: the call sites the network area plugs into.

Lifecycle calls, in order: `prepare` while creating the container (validates, allocates, returns
the namespace to put in config.json and the /etc/hosts and /etc/resolv.conf contents), `setup`
before the runtime creates the container, `teardown` when it has stopped (idempotent), and
`release` when it is removed. `none` and `host` need no network area; every other mode
(bridge, user networks, container:<id>) goes to `corral.network` (NETWORK-INTERFACE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corral.config import Paths
from corral.containers.options import RunOptions
from corral.errors import InvalidArgument

# Becomes "bridge" when corral.network is wired in here.
DEFAULT_MODE = "none"
_LOCAL_MODES = ("none", "host")


@dataclass(frozen=True)
class Plan:
    mode: str
    netns: str | None  # "host", a namespace path to join, or None: a new empty namespace
    hosts: str
    resolv_conf: str


def mode_of(opts: RunOptions) -> str:
    return opts.network or DEFAULT_MODE


def prepare(paths: Paths, container_id: str, opts: RunOptions, hostname: str) -> Plan:
    mode = mode_of(opts)
    if mode not in _LOCAL_MODES:
        raise InvalidArgument(f"network mode {mode!r} is not available yet: use --network none or host")
    if (opts.publish or opts.publish_all) and mode == "none":
        raise InvalidArgument("conflicting options: port publishing and the 'none' network mode")
    extra = "".join(_add_host_line(h) for h in opts.add_hosts)
    if mode == "host":
        hosts = _read("/etc/hosts") + extra
        return Plan(mode, "host", hosts, _resolv(opts, _read("/etc/resolv.conf")))
    hosts = (
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"127.0.1.1\t{hostname}\n{extra}"
    )
    return Plan(mode, None, hosts, _resolv(opts, _read("/etc/resolv.conf")))


def setup(paths: Paths, container_id: str, mode: str) -> None:
    """Plumb the namespace before the runtime runs (nothing to do for none/host)."""


def teardown(paths: Paths, container_id: str, mode: str) -> None:
    """Unplumb after the container stopped; idempotent (nothing to do for none/host)."""


def release(paths: Paths, container_id: str, mode: str) -> None:
    """Give back addresses and ports when the container is removed; idempotent."""


def _add_host_line(spec: str) -> str:
    host, sep, ip = spec.partition(":")
    if not sep or not host or not ip:
        raise InvalidArgument(f"invalid --add-host {spec!r}: expected host:ip")
    return f"{ip}\t{host}\n"


def _resolv(opts: RunOptions, host_resolv: str) -> str:
    """The host's resolv.conf without loopback servers (they mean nothing in another netns)."""
    lines = []
    for line in host_resolv.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "nameserver" and (opts.dns or words[1].startswith("127.")):
            continue
        if words[0] == "search" and opts.dns_search:
            continue
        if words[0] == "options" and opts.dns_options:
            continue
        lines.append(line)
    lines += [f"nameserver {s}" for s in opts.dns]
    if opts.dns_search:
        lines.append("search " + " ".join(opts.dns_search))
    if opts.dns_options:
        lines.append("options " + " ".join(opts.dns_options))
    return "\n".join(lines) + "\n"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
