"""A container's /etc/hosts, /etc/resolv.conf and /etc/hostname, written as Docker writes them.

On a network with DNS (every user network) the container asks aardvark-dns, which netavark runs
on the network's gateway and which knows each container by name, alias and short id; `--dns`
servers become aardvark's upstreams there. Without one (the default `bridge`), resolv.conf lists
`--dns` or the host's servers minus loopback ones (unreachable from the container), and names of
other containers are not resolvable: /etc/hosts holds the container's own name only, as in Docker.

The files are bind-mounted into the container, so updates rewrite them in place (same inode).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from corral.errors import InvalidArgument

TYPE_CHECKING = False  # not typing's, nor ipaddress or pathlib: `run --network none` reads this
if TYPE_CHECKING:  # the model's types cost a `--network none` run ~1 ms
    import ipaddress

    from corral.fsutil import StrPath
    from corral.network.model import Endpoint


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    import ipaddress  # only to check what the user gave: --dns, --add-host

    return ipaddress.ip_address(text)


def _is_loopback(server: str) -> bool:
    """127.0.0.0/8 or ::1: a host's stub resolver, which a container cannot reach."""
    return server.startswith("127.") or server.split("%")[0] in ("::1", "0:0:0:0:0:0:0:1")


_LOCALHOST = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""
_FALLBACK_SERVERS = ("8.8.8.8", "8.8.4.4")  # Docker's, when the host has only local resolvers
HOST_GATEWAY = "host-gateway"


def parse_add_host(spec: str) -> tuple[str, str]:
    """`--add-host name:ip` (or `name=ip`); the ip may be `host-gateway`."""
    sep = "=" if "=" in spec else ":"
    name, _, ip = spec.partition(sep)
    if not name or not ip:
        raise InvalidArgument(f"invalid --add-host {spec!r}: want name:ip")
    if ip != HOST_GATEWAY:
        try:
            _ip_address(ip.strip("[]"))
        except ValueError:
            raise InvalidArgument(f"invalid IP {ip!r} in --add-host {spec!r}") from None
    return name, ip.strip("[]")


def check_servers(servers: Sequence[str]) -> None:
    for s in servers:
        try:
            _ip_address(s)
        except ValueError:
            raise InvalidArgument(f"invalid --dns server {s!r}: want an IP address") from None


def _read(path: str, default: str) -> str:
    """A host file's text, or `default` when it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def hosts(*, hostname: str, endpoints: Sequence[Endpoint], add_hosts: Sequence[str],
          host_network: bool) -> str:
    base = _read("/etc/hosts", _LOCALHOST) if host_network else _LOCALHOST
    gateway = endpoints[0].network.gateway if endpoints else "127.0.0.1"
    lines = [base.rstrip("\n")]
    for spec in add_hosts:
        name, ip = parse_add_host(spec)
        lines.append(f"{gateway if ip == HOST_GATEWAY else ip}\t{name}")
    short = hostname.split(".")[0]
    names = hostname if short == hostname else f"{hostname} {short}"
    if endpoints:
        lines.append(f"{endpoints[0].ip}\t{names}")
    elif not host_network:
        lines.append(f"127.0.0.1\t{names}")
    return "\n".join(lines) + "\n"


def _host_resolv() -> tuple[list[str], list[str], list[str]]:
    servers, search, options = [], [], []
    for line in _read("/etc/resolv.conf", "").splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver":
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return servers, search, options


def upstream_servers(dns: Sequence[str]) -> list[str]:
    """The servers a container (or aardvark on its behalf) should ask for outside names."""
    if dns:
        return list(dns)
    servers = [s for s in _host_resolv()[0] if not _is_loopback(s)]
    return servers or list(_FALLBACK_SERVERS)


def resolv_conf(*, endpoints: Sequence[Endpoint], dns: Sequence[str], search: Sequence[str],
                options: Sequence[str], host_network: bool) -> str:
    host_servers, host_search, host_options = _host_resolv()
    aardvark = [e.network.gateway for e in endpoints if e.network.dns]
    if aardvark:
        servers = list(dict.fromkeys(aardvark))
    elif host_network and not dns:
        servers = host_servers
    else:
        servers = upstream_servers(dns)
    lines = [f"search {' '.join(search or host_search)}"] if (search or host_search) else []
    lines += [f"nameserver {s}" for s in servers]
    if options or host_options:
        lines.append(f"options {' '.join(options or host_options)}")
    return "\n".join(lines) + "\n"


def host_hostname() -> str:
    return os.uname().nodename  # gethostname(), without importing socket


def write_in_place(path: StrPath, text: str) -> None:
    """Rewrite `path` keeping its inode, so a bind mount of it sees the new content."""
    os.makedirs(os.path.dirname(os.fspath(path)), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        data = text.encode()
        os.ftruncate(fd, 0)
        os.write(fd, data)
    finally:
        os.close(fd)
