"""What a user asks of a container, as typed values, and the parsers for docker's flag syntax.

The CLI and the Python API both turn their input into one frozen `RunOptions`; everything after
that (`specgen`, `lifecycle`) reads only this. Parsers raise `InvalidArgument` with docker's
wording, so a bad flag value is one clear line before anything touches the system.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from corral.errors import InvalidArgument
from corral.records import NamedTuple

TYPE_CHECKING = False  # not typing's: `exec` must not import typing (~2 ms)
if TYPE_CHECKING:
    from typing import Any

_SIZE = r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$"  # re is imported only for a size flag
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses limits below 6 MB: the runtime itself needs some.


class MountSpec(NamedTuple):
    """One -v/--mount/--tmpfs request."""

    type: str  # "bind" | "volume" | "tmpfs"
    target: str
    source: str = ""  # host path (bind), volume name (volume, "" = anonymous), unused (tmpfs)
    readonly: bool = False
    propagation: str = ""  # "" or one of rprivate, private, rshared, shared, rslave, slave
    options: tuple[str, ...] = ()  # tmpfs size=/mode=, accepted labels (z, Z, U), nocopy


class DeviceSpec(NamedTuple):
    host_path: str
    container_path: str
    permissions: str = "rwm"


class Ulimit(NamedTuple):
    name: str
    soft: int
    hard: int


class RunOptions(NamedTuple):
    image: str
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None  # None: the image's; () clears it
    name: str | None = None
    env: tuple[str, ...] = ()  # KEY=VALUE, already resolved
    labels: Mapping[str, str] = {}
    workdir: str | None = None
    user: str | None = None
    group_add: tuple[str, ...] = ()
    hostname: str | None = None
    tty: bool = False
    interactive: bool = False
    detach: bool = False
    remove: bool = False
    mounts: tuple[MountSpec, ...] = ()
    network: str | None = None  # None: the default mode
    extra_networks: tuple[str, ...] = ()  # more --network flags: joined as well
    publish: tuple[str, ...] = ()
    publish_all: bool = False
    expose: tuple[str, ...] = ()  # --expose: more ports for -P
    ip: str | None = None  # --ip on the (first) network
    network_aliases: tuple[str, ...] = ()  # --network-alias
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    add_hosts: tuple[str, ...] = ()
    read_only: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    memory: int | None = None
    memory_swap: int | None = None  # -1: unlimited swap
    memory_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    ulimits: tuple[Ulimit, ...] = ()
    init: bool = False
    stop_signal: str | None = None
    stop_timeout: int | None = None
    userns: str | None = None
    devices: tuple[DeviceSpec, ...] = ()
    sysctls: Mapping[str, str] = {}
    shm_size: int | None = None
    log_driver: str = "k8s-file"
    cidfile: str | None = None
    pull: str = "missing"
    platform: str | None = None
    runtime: str | None = None
    restart: str = "no"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (nested specs as dicts, not the lists json makes of tuples)."""
        data = self._asdict()
        for key in ("mounts", "devices", "ulimits"):
            data[key] = [item._asdict() for item in data[key]]
        data["labels"] = dict(self.labels)
        data["sysctls"] = dict(self.sysctls)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunOptions:
        values = dict(data)
        values["mounts"] = tuple(MountSpec(**{**m, "options": tuple(m["options"])})
                                 for m in values.get("mounts", ()))
        values["devices"] = tuple(DeviceSpec(**d) for d in values.get("devices", ()))
        values["ulimits"] = tuple(Ulimit(**u) for u in values.get("ulimits", ()))
        if values.get("entrypoint") is not None:
            values["entrypoint"] = tuple(values["entrypoint"])
        for key in ("command", "env", "group_add", "publish", "dns", "dns_search", "dns_options",
                    "add_hosts", "cap_add", "cap_drop", "security_opt", "expose",
                    "network_aliases", "extra_networks"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)


def parse_size(value: str | int, what: str) -> int:
    """Docker's RAMInBytes: `512m`, `1g`, `1.5G`, `1024` (bytes)."""
    if isinstance(value, int):
        return value
    import re

    m = re.match(_SIZE, value.strip(), re.IGNORECASE)
    if not m:
        raise InvalidArgument(f"invalid value {value!r} for {what}: invalid size")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_memory(value: str | int, what: str = "--memory") -> int:
    size = parse_size(value, what)
    if size < MIN_MEMORY:
        raise InvalidArgument(f"invalid value {value!r} for {what}: minimum memory limit is 6MB")
    return size


def parse_env(items: Iterable[str], env_files: Iterable[str] = (),
              environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """-e and --env-file: `KEY=VALUE`; a bare `KEY` takes the caller's value (dropped if unset)."""
    result: list[str] = []
    lines: list[str] = []
    for path in env_files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            raise InvalidArgument(f"open {path}: {e.strerror}") from e
        lines += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for item in [*lines, *items]:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item!r}")
        if sep:
            result.append(f"{key}={value}")
        elif key in environ:
            result.append(f"{key}={environ[key]}")
    return tuple(result)


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


_PROPAGATIONS = {"rprivate", "private", "rshared", "shared", "rslave", "slave"}
_ACCEPTED_LABELS = {"z", "Z", "U", "O", "nocopy", "rbind", "bind", "exec", "noexec", "suid",
                    "nosuid", "dev", "nodev"}


def parse_volume(spec: str) -> MountSpec:
    """-v SRC:DST[:OPTS] (bind if SRC is a path, else a named volume) or -v DST (anonymous)."""
    parts = spec.split(":")
    if len(parts) == 1:
        source, target, opts = "", parts[0], ""
    elif len(parts) == 2:
        source, target, opts = parts[0], parts[1], ""
    elif len(parts) == 3:
        source, target, opts = parts
    else:
        raise InvalidArgument(f"invalid volume specification: {spec!r}")
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid volume specification: {spec!r}: the container path must be absolute")
    readonly, propagation, extra = False, "", []
    for opt in filter(None, opts.split(",")):
        if opt in ("ro", "rw"):
            readonly = opt == "ro"
        elif opt in _PROPAGATIONS:
            propagation = opt
        elif opt in _ACCEPTED_LABELS:
            extra.append(opt)
        else:
            raise InvalidArgument(f"invalid volume specification: {spec!r}: unknown option {opt!r}")
    kind = "bind" if source.startswith(("/", ".")) else "volume"
    if kind == "bind":
        source = os.path.abspath(source)
    return MountSpec(kind, target, source, readonly, propagation, tuple(extra))


def parse_mount(spec: str) -> MountSpec:
    """--mount type=bind|volume|tmpfs,source=..,target=..,readonly,bind-propagation=..."""
    fields: dict[str, str] = {}
    flags: set[str] = set()
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
        else:
            flags.add(key.strip().lower())
    kind = fields.pop("type", "volume")
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidArgument(f"invalid mount type {kind!r} in --mount {spec!r}")
    target = fields.pop("target", "") or fields.pop("destination", "") or fields.pop("dst", "")
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid --mount {spec!r}: target must be an absolute path")
    source = fields.pop("source", "") or fields.pop("src", "")
    readonly = bool(flags & {"readonly", "ro"}) or fields.pop("readonly", "false") in ("true", "1")
    fields.pop("ro", None)
    propagation = fields.pop("bind-propagation", "")
    if propagation and propagation not in _PROPAGATIONS:
        raise InvalidArgument(f"invalid bind-propagation {propagation!r}")
    options: list[str] = []
    if "tmpfs-size" in fields:
        options.append(f"size={parse_size(fields.pop('tmpfs-size'), '--mount tmpfs-size')}")
    if "tmpfs-mode" in fields:
        options.append(f"mode={fields.pop('tmpfs-mode')}")
    fields.pop("volume-nocopy", None)
    fields.pop("consistency", None)
    fields.pop("bind-nonrecursive", None)
    if fields:
        raise InvalidArgument(f"unexpected key {next(iter(fields))!r} in --mount {spec!r}")
    if kind == "bind":
        if not source:
            raise InvalidArgument(f"invalid --mount {spec!r}: a bind mount needs a source")
        source = os.path.abspath(source)
    return MountSpec(kind, target, source, readonly, propagation, tuple(options))


def parse_tmpfs(spec: str) -> MountSpec:
    """--tmpfs /path[:size=64m,mode=1777,noexec...]"""
    target, _, opts = spec.partition(":")
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid --tmpfs {spec!r}: the path must be absolute")
    return MountSpec("tmpfs", target, options=tuple(filter(None, opts.split(","))))


def parse_ulimit(spec: str) -> Ulimit:
    """--ulimit nofile=1024[:2048]"""
    name, sep, values = spec.partition("=")
    soft_s, _, hard_s = values.partition(":")
    try:
        soft = -1 if soft_s == "unlimited" else int(soft_s)
        hard = soft if not hard_s else (-1 if hard_s == "unlimited" else int(hard_s))
    except ValueError:
        raise InvalidArgument(f"invalid ulimit {spec!r}") from None
    if not sep or not name:
        raise InvalidArgument(f"invalid ulimit {spec!r}: expected name=soft[:hard]")
    if hard != -1 and soft > hard:
        raise InvalidArgument(f"invalid ulimit {spec!r}: soft limit above hard limit")
    return Ulimit(name, soft, hard)


def parse_device(spec: str) -> DeviceSpec:
    """--device /dev/host[:/dev/container[:rwm]]"""
    parts = spec.split(":")
    host = parts[0]
    container = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    if not host.startswith("/") or set(perms) - set("rwm"):
        raise InvalidArgument(f"invalid device specification: {spec!r}")
    return DeviceSpec(host, container, perms)


def parse_sysctls(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"invalid sysctl {item!r}: expected name=value")
        out[key] = value
    return out
