"""The container side of networking: the call sites the network area plugs into.

Lifecycle calls, in order: `prepare` while creating the container (validates the network flags,
allocates addresses, returns the namespace to put in config.json and the /etc files to bind),
`setup` before conmon runs the runtime's create (netavark then plumbs in the background; `wait()`
before the runtime starts the program), `teardown` when it has stopped (idempotent), and
`release` when it is removed. All of it is `corral.network.attach` (NETWORK-INTERFACE.md),
except `--network none`, which `corral.network.loopback` handles without the network database
(and without importing the rest of the network area: ~30 ms of a `run --rm`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping

from corral.config import Paths
from corral.containers.options import RunOptions
from corral.network import loopback
from corral.records import NamedTuple

TYPE_CHECKING = False  # not typing's: `corral run` does not import typing
if TYPE_CHECKING:
    import sqlite3
    from typing import Any, Protocol

    from corral.network.model import NetworkRequest

    class Pending(Protocol):
        """A network set-up that may still run in the background."""

        def wait(self) -> object: ...

DEFAULT_MODE = "bridge"
_CONTAINER = "container:"
_LOOPBACK = "none"
PORTS_DISCARDED = "WARNING: Published ports are discarded when using host network mode"


class Plan(NamedTuple):
    mode: str
    netns: str | None  # "host", a namespace path to join, or None: a new empty namespace
    hostname: str
    etc_files: dict[str, str]  # container path -> host file to bind (rewritten in place)


# container id -> a lock its early namespace thread releases when done (see `setup_early`)
_early: dict[str, Any] = {}


class _Ready:
    """A setup with nothing left running in the background."""

    def wait(self) -> None:
        return None


def mode_of(opts: RunOptions) -> str:
    return opts.network or DEFAULT_MODE


def _conn(paths: Paths) -> sqlite3.Connection:
    from corral.network import schema

    return schema.connect(paths)


def request(paths: Paths, opts: RunOptions, image_config: Mapping[str, Any]) -> NetworkRequest:
    """The network part of `run`'s flags, names resolved (container:<name> -> its id)."""
    from corral.network import ports
    from corral.network.model import Attach, NetworkRequest

    mode = mode_of(opts)
    if mode.startswith(_CONTAINER):
        from corral.containers.store import Store

        target = Store(paths).get(mode[len(_CONTAINER):])
        if target.network == _LOOPBACK and not loopback.recorded(paths, target.id):
            _record_loopback(paths, target.id, target.name, RunOptions.from_json(target.options))
        mode = _CONTAINER + target.id
    published = tuple(ports.parse_publish(p) for p in opts.publish)
    if opts.publish_all:
        exposed = [*(image_config.get("ExposedPorts") or {}), *opts.expose]
        published += tuple(ports.publish_exposed(exposed))
    user_mode = mode not in ("host", "none") and not mode.startswith(_CONTAINER)
    extra = tuple(Attach(n) for n in opts.extra_networks)
    return NetworkRequest(
        mode=mode,
        networks=(Attach(mode, opts.ip, opts.network_aliases), *extra) if user_mode else extra,
        ports=published, hostname=opts.hostname or "", dns=opts.dns,
        dns_search=opts.dns_search, dns_options=opts.dns_options, add_hosts=opts.add_hosts)


def _record_loopback(paths: Paths, container_id: str, name: str, opts: RunOptions) -> None:
    """Give a `--network none` container the database row that joining its namespace needs."""
    from corral.network import attach

    attach.prepare(_conn(paths), paths, container_id, name, request(paths, opts, {}))
    loopback.mark_recorded(paths, container_id)


def _is_loopback(mode: str, opts: RunOptions | None = None) -> bool:
    return mode == _LOOPBACK and not (opts and opts.extra_networks)


def prepare(paths: Paths, container_id: str, name: str, opts: RunOptions,
            image_config: Mapping[str, Any]) -> Plan:
    mode = mode_of(opts)
    if opts.publish and mode in ("host", _LOOPBACK):
        print(PORTS_DISCARDED, file=sys.stderr)  # Docker's words, for both modes
    if _is_loopback(mode, opts):
        hostname = opts.hostname or container_id[:12]
        files = loopback.prepare(paths, container_id, hostname=hostname, dns=opts.dns,
                                 dns_search=opts.dns_search, dns_options=opts.dns_options,
                                 add_hosts=opts.add_hosts)
        return Plan(mode, loopback.netns_path(paths, container_id), hostname, files)
    from corral.network import attach

    plan = attach.prepare(_conn(paths), paths, container_id, name,
                          request(paths, opts, image_config))
    netns = "host" if plan.host_network else plan.netns_path
    return Plan(plan.mode, netns, plan.hostname, plan.etc_files)


def setup_early(paths: Paths, container_id: str, mode: str) -> None:
    """For `run`, which creates and starts at once: begin pinning a `--network none` namespace
    now, in a thread, while the rest of the container is prepared. unshare(2) and the loopback
    ioctl are ~1.7 ms of kernel time that would otherwise sit right before conmon starts.
    `setup` and `teardown` wait for the thread first; `setup` makes the namespace itself if the
    thread could not (and reports why)."""
    if not _is_loopback(mode):
        return
    import _thread

    done = _thread.allocate_lock()
    done.acquire()

    def pin() -> None:
        try:
            with contextlib.suppress(Exception):  # setup() makes it again, and says why not
                loopback.setup(paths, container_id)
        finally:
            done.release()

    _early[container_id] = done
    _thread.start_new_thread(pin, ())


def _join_early(container_id: str) -> None:
    done = _early.pop(container_id, None)
    if done is not None:
        done.acquire()


def setup(paths: Paths, container_id: str, mode: str) -> Pending:
    """Start plumbing; call `.wait()` on the result before the runtime starts the program."""
    from corral.containers.store import Store

    _join_early(container_id)
    if _is_loopback(mode):
        loopback.setup(paths, container_id)
        return _Ready()
    from corral.network import attach, schema

    conn = _conn(paths)
    rec = Store(paths).get(container_id)
    if schema.container(conn, container_id) is None:  # a `create` killed before prepare
        opts = RunOptions.from_json(rec.options)
        attach.prepare(conn, paths, container_id, rec.name, request(paths, opts, {}))
    return attach.begin_setup(conn, paths, container_id, rec.name)


def teardown(paths: Paths, container_id: str, mode: str) -> None:
    _join_early(container_id)
    if _is_loopback(mode) and not loopback.recorded(paths, container_id):
        loopback.teardown(paths, container_id)
        return
    from corral.network import attach

    attach.teardown(_conn(paths), paths, container_id)


def release(paths: Paths, container_id: str, mode: str) -> None:
    if _is_loopback(mode) and not loopback.recorded(paths, container_id):
        loopback.release(paths, container_id)
        return
    from corral.network import attach

    attach.release(_conn(paths), paths, container_id)


def rename(paths: Paths, container_id: str, mode: str, name: str) -> None:
    """DNS answers for the new name (a none/loopback container has no DNS entry to change)."""
    if _is_loopback(mode) and not loopback.recorded(paths, container_id):
        return
    from corral.network import attach

    attach.rename(_conn(paths), paths, container_id, name)


def settings(paths: Paths, container_id: str, mode: str = "") -> dict[str, Any]:
    """inspect's NetworkSettings."""
    from corral.network import attach

    doc = attach.network_settings(_conn(paths), container_id)
    if _is_loopback(mode) and not loopback.recorded(paths, container_id):
        path = loopback.netns_path(paths, container_id)  # no row: the namespace, while pinned
        doc["SandboxKey"] = path if os.path.ismount(path) else ""
    return doc


def repair(paths: Paths) -> None:
    """`network prune`'s sweep: release the network of containers that no longer exist and tear
    down the plumbing of those not running (a command killed mid-setup, a dead monitor), each
    under the container's lock so a concurrent `start` is never undone."""
    from corral.containers.lifecycle import Containers
    from corral.errors import NotFound
    from corral.network import attach, netns, schema

    conn = _conn(paths)
    engine = Containers(paths)
    for row in schema.containers(conn):
        cid = row["container_id"]
        plumbed = row["live"] is not None or (
            row["netns"] is not None and netns.exists(row["netns"]))
        try:
            with engine.locked(cid) as rec:
                if plumbed and not engine.observe(rec).alive:
                    attach.teardown(conn, paths, cid)
        except NotFound:
            attach.release(conn, paths, cid)
