"""`--network none`: a namespace of the container's own with only loopback, and no database.

The common fast case (`run --rm --network none`) needs no addresses, ports or netavark, so it
skips the network database and the modules behind it: `prepare` writes the /etc files at create
(nothing in them changes between starts), `setup` pins a fresh namespace with `lo` up (the
runtimes leave it down), `teardown` unpins it. Only when another container joins this one's
namespace (`--network container:<id>`) does the container get a database row, like any other
network mode; `recorded` says so, and then the full `attach.release` must run at rm.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from corral import fsutil
from corral.config import Paths

_RECORDED = "recorded"  # marker in files_dir: the container has a row in the network database


def netns_path(paths: Paths, container_id: str) -> str:
    return os.path.join(paths.runroot, "netns", container_id)


def files_dir(paths: Paths, container_id: str) -> str:
    return os.path.join(paths.root, "network", "containers", container_id)


def etc_files(paths: Paths, container_id: str) -> dict[str, str]:
    files = files_dir(paths, container_id)
    return {"/etc/hosts": os.path.join(files, "hosts"),
            "/etc/resolv.conf": os.path.join(files, "resolv.conf"),
            "/etc/hostname": os.path.join(files, "hostname")}


def prepare(paths: Paths, container_id: str, *, hostname: str, dns: Sequence[str],
            dns_search: Sequence[str], dns_options: Sequence[str],
            add_hosts: Sequence[str]) -> dict[str, str]:
    """Validate the DNS flags and write the container's /etc files; returns them."""
    from corral.network import dns as etc

    etc.check_servers(dns)
    files = etc_files(paths, container_id)
    etc.write_in_place(files["/etc/hosts"], etc.hosts(
        hostname=hostname, endpoints=(), add_hosts=add_hosts, host_network=False))
    etc.write_in_place(files["/etc/resolv.conf"], etc.resolv_conf(
        endpoints=(), dns=dns, search=dns_search, options=dns_options, host_network=False))
    etc.write_in_place(files["/etc/hostname"], hostname + "\n")
    return files


def setup(paths: Paths, container_id: str) -> None:
    from corral.network import netns

    netns.create(netns_path(paths, container_id))


def teardown(paths: Paths, container_id: str) -> None:
    path = netns_path(paths, container_id)
    if os.path.lexists(path):  # netns only when there is something to drop
        from corral.network import netns

        netns.remove(path)


def mark_recorded(paths: Paths, container_id: str) -> None:
    marker = os.path.join(files_dir(paths, container_id), _RECORDED)
    os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def recorded(paths: Paths, container_id: str) -> bool:
    return os.path.exists(os.path.join(files_dir(paths, container_id), _RECORDED))


def release(paths: Paths, container_id: str) -> None:
    teardown(paths, container_id)
    fsutil.remove_tree(files_dir(paths, container_id))
