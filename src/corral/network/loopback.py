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
from pathlib import Path

from corral.config import Paths

_RECORDED = "recorded"  # marker in files_dir: the container has a row in the network database


def netns_path(paths: Paths, container_id: str) -> Path:
    return paths.runroot / "netns" / container_id


def files_dir(paths: Paths, container_id: str) -> Path:
    return paths.root / "network" / "containers" / container_id


def etc_files(paths: Paths, container_id: str) -> dict[str, Path]:
    files = files_dir(paths, container_id)
    return {"/etc/hosts": files / "hosts", "/etc/resolv.conf": files / "resolv.conf",
            "/etc/hostname": files / "hostname"}


def prepare(paths: Paths, container_id: str, *, hostname: str, dns: Sequence[str],
            dns_search: Sequence[str], dns_options: Sequence[str],
            add_hosts: Sequence[str]) -> dict[str, Path]:
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
    if os.path.ismount(path) or path.exists():  # netns only when there is something to drop
        from corral.network import netns

        netns.remove(path)


def mark_recorded(paths: Paths, container_id: str) -> None:
    (files_dir(paths, container_id) / _RECORDED).touch()


def recorded(paths: Paths, container_id: str) -> bool:
    return (files_dir(paths, container_id) / _RECORDED).exists()


def release(paths: Paths, container_id: str) -> None:
    teardown(paths, container_id)
    import shutil  # only `rm` needs it: off the run path (its bz2/lzma imports)

    shutil.rmtree(files_dir(paths, container_id), ignore_errors=True)
