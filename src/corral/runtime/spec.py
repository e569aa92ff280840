"""config.json -> frozen dataclasses, then validate(): small named checks run before anything
touches the system (runc's specconv + configs/validate in one place).

Parsing checks shapes and names the field ("process.args: must be a non-empty list of
strings"); the checks in CHECKS look at meaning (namespaces, mappings, sysctls, rlimits...).
seccomp, capabilities and resources stay plain dicts: linux/seccomp.py, linux/caps.py and
cgroups/ own them and validate them through their own `check()`.
"""

from __future__ import annotations

import os

from corral.runtime import jsonio
from corral.runtime.errors import InvalidConfig
from corral.runtime.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, TypeVar

    T = TypeVar("T")

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
TIME_CLOCKS = ("monotonic", "boottime")  # the clocks a time namespace offsets
RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
                "runbindable")
DEVICE_TYPES = ("c", "b", "u", "p")



@record(frozen=True)
class Root:
    path: str  # absolute (joined to the bundle)
    readonly: bool


@record(frozen=True)
class User:
    uid: int
    gid: int
    umask: int | None = None
    additional_gids: tuple[int, ...] = ()


@record(frozen=True)
class Rlimit:
    type: str
    soft: int
    hard: int


@record(frozen=True)
class Process:
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: User
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    capabilities: Mapping[str, Sequence[str]] | None = None
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    oom_score_adj: int | None = None


@record(frozen=True)
class Mount:
    destination: str
    type: str
    source: str
    options: tuple[str, ...] = ()


@record(frozen=True)
class IdMap:
    container_id: int
    host_id: int
    size: int


@record(frozen=True)
class Namespace:
    type: str
    path: str | None = None


@record(frozen=True)
class Device:
    type: str
    path: str
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int


@record(frozen=True)
class Hook:
    path: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    timeout: int | None


@record(frozen=True)
class Linux:
    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IdMap, ...] = ()
    gid_mappings: tuple[IdMap, ...] = ()
    devices: tuple[Device, ...] = ()
    cgroups_path: str | None = None
    resources: Mapping[str, Any] | None = None
    rootfs_propagation: str | None = None
    seccomp: Mapping[str, Any] | None = None
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    sysctl: Mapping[str, str] = field(default_factory=dict)
    time_offsets: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # (secs, nanosecs)

    def namespace(self, kind: str) -> Namespace | None:
        return next((ns for ns in self.namespaces if ns.type == kind), None)


@record(frozen=True)
class Spec:
    oci_version: str
    root: Root
    process: Process | None
    hostname: str | None
    domainname: str | None
    mounts: tuple[Mount, ...]
    hooks: Mapping[str, tuple[Hook, ...]]
    linux: Linux
    annotations: Mapping[str, str]
    raw: Mapping[str, Any]  # the document as read, kept in state.json for later verbs


# --- shape parsing -------------------------------------------------------------------------------


def _bad(where: str, what: str) -> InvalidConfig:
    return InvalidConfig(f"config.json: {where}: {what}")


def _get(obj: Mapping[str, Any], key: str, kind: type[T], where: str, default: T) -> T:
    value = obj.get(key)
    if value is None:
        return default
    # bool is an int in Python; JSON keeps them apart, so do we.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(f"{where}{key}", f"must be {_KIND_NAMES.get(kind, kind.__name__)}")
    return value


_KIND_NAMES: dict[type, str] = {
    str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "a list",
}


def _strings(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _get(obj, key, list, where, [])
    if not all(isinstance(x, str) for x in items):
        raise _bad(f"{where}{key}", "must be a list of strings")
    return tuple(items)


def _ints(obj: Mapping[str, Any], key: str, where: str) -> tuple[int, ...]:
    items = _get(obj, key, list, where, [])
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in items):
        raise _bad(f"{where}{key}", "must be a list of integers")
    return tuple(items)


def _objects(obj: Mapping[str, Any], key: str, where: str) -> list[tuple[str, dict[str, Any]]]:
    items = _get(obj, key, list, where, [])
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad(f"{where}{key}[{i}]", "must be an object")
        out.append((f"{where}{key}[{i}].", item))
    return out


def _required(obj: Mapping[str, Any], key: str, kind: type[T], where: str) -> T:
    if obj.get(key) is None:
        raise _bad(f"{where}{key}", "is required")
    value: T = _get(obj, key, kind, where, obj[key])
    return value


def parse_user(obj: Mapping[str, Any], where: str) -> User:
    umask = _get(obj, "umask", int, where, -1)
    return User(
        uid=_get(obj, "uid", int, where, 0),
        gid=_get(obj, "gid", int, where, 0),
        umask=None if umask < 0 else umask,
        additional_gids=_ints(obj, "additionalGids", where),
    )


def parse_process(obj: Mapping[str, Any], where: str = "process.") -> Process:
    """A process object (config.json's `process`, or exec's process.json)."""
    args = _strings(obj, "args", where)
    if not args:
        raise _bad(f"{where}args", "must be a non-empty list of strings")
    size = _get(obj, "consoleSize", dict, where, {})
    caps = _get(obj, "capabilities", dict, where, {}) if "capabilities" in obj else None
    if caps is not None:
        for kind, names in caps.items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise _bad(f"{where}capabilities.{kind}", "must be a list of strings")
    rlimits = tuple(
        Rlimit(_required(r, "type", str, w), _get(r, "soft", int, w, 0), _get(r, "hard", int, w, 0))
        for w, r in _objects(obj, "rlimits", where)
    )
    oom = _get(obj, "oomScoreAdj", int, where, 0) if obj.get("oomScoreAdj") is not None else None
    return Process(
        args=args,
        env=_strings(obj, "env", where),
        cwd=_get(obj, "cwd", str, where, "/") or "/",
        user=parse_user(_get(obj, "user", dict, where, {}), f"{where}user."),
        terminal=_get(obj, "terminal", bool, where, False),
        console_size=(_get(size, "height", int, f"{where}consoleSize.", 0),
                      _get(size, "width", int, f"{where}consoleSize.", 0)) if size else None,
        capabilities=caps,
        rlimits=rlimits,
        no_new_privileges=_get(obj, "noNewPrivileges", bool, where, False),
        oom_score_adj=oom,
    )


def _idmaps(obj: Mapping[str, Any], key: str) -> tuple[IdMap, ...]:
    maps = []
    for w, m in _objects(obj, key, "linux."):
        maps.append(IdMap(_required(m, "containerID", int, w), _required(m, "hostID", int, w),
                          _required(m, "size", int, w)))
    return tuple(maps)


def _time_offsets(obj: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    offsets = {}
    for clock, value in _get(obj, "timeOffsets", dict, "linux.", {}).items():
        where = f"linux.timeOffsets.{clock}"
        if clock not in TIME_CLOCKS:
            raise _bad(where, f"unknown clock (one of {', '.join(TIME_CLOCKS)})")
        if not isinstance(value, dict):
            raise _bad(where, "must be an object")
        offsets[clock] = (_get(value, "secs", int, where + ".", 0),
                          _get(value, "nanosecs", int, where + ".", 0))
    return offsets


def _linux(obj: Mapping[str, Any]) -> Linux:
    w = "linux."
    sysctl = _get(obj, "sysctl", dict, w, {})
    for key, value in sysctl.items():
        if not isinstance(value, str):
            raise _bad(f"linux.sysctl.{key}", "must be a string")
    resources = _get(obj, "resources", dict, w, {}) if obj.get("resources") is not None else None
    seccomp = _get(obj, "seccomp", dict, w, {}) if obj.get("seccomp") is not None else None
    return Linux(
        namespaces=tuple(Namespace(_required(n, "type", str, nw), _get(n, "path", str, nw, "") or None)
                         for nw, n in _objects(obj, "namespaces", w)),
        uid_mappings=_idmaps(obj, "uidMappings"),
        gid_mappings=_idmaps(obj, "gidMappings"),
        devices=tuple(
            Device(type=_required(d, "type", str, dw), path=_required(d, "path", str, dw),
                   major=_get(d, "major", int, dw, 0), minor=_get(d, "minor", int, dw, 0),
                   file_mode=_get(d, "fileMode", int, dw, 0o666), uid=_get(d, "uid", int, dw, 0),
                   gid=_get(d, "gid", int, dw, 0))
            for dw, d in _objects(obj, "devices", w)),
        cgroups_path=_get(obj, "cgroupsPath", str, w, "") or None,
        resources=resources,
        rootfs_propagation=_get(obj, "rootfsPropagation", str, w, "") or None,
        seccomp=seccomp,
        masked_paths=_strings(obj, "maskedPaths", w),
        readonly_paths=_strings(obj, "readonlyPaths", w),
        sysctl=sysctl,
        time_offsets=_time_offsets(obj),
    )


def _hooks(obj: Mapping[str, Any]) -> dict[str, tuple[Hook, ...]]:
    hooks = {}
    for kind in HOOK_KINDS:
        hooks[kind] = tuple(
            Hook(path=_required(h, "path", str, hw), args=_strings(h, "args", hw),
                 env=_strings(h, "env", hw), timeout=_get(h, "timeout", int, hw, 0) or None)
            for hw, h in _objects(obj, kind, "hooks."))
    return hooks


def parse(raw: Mapping[str, Any], bundle: str) -> Spec:
    """Shape checks and conversion; `bundle` anchors a relative root.path."""
    if not isinstance(raw, dict):
        raise InvalidConfig("config.json: must be a JSON object")
    root = _get(raw, "root", dict, "", {})
    root_path = _get(root, "path", str, "root.", "")
    if not root_path:
        raise _bad("root.path", "is required")
    process = _get(raw, "process", dict, "", {})
    annotations = _get(raw, "annotations", dict, "", {})
    return Spec(
        oci_version=_get(raw, "ociVersion", str, "", ""),
        root=Root(os.path.join(bundle, root_path), _get(root, "readonly", bool, "root.", False)),
        process=parse_process(process) if "process" in raw else None,
        hostname=_get(raw, "hostname", str, "", "") or None,
        domainname=_get(raw, "domainname", str, "", "") or None,
        mounts=tuple(
            Mount(destination=_required(m, "destination", str, mw), type=_get(m, "type", str, mw, ""),
                  source=_get(m, "source", str, mw, ""), options=_strings(m, "options", mw))
            for mw, m in _objects(raw, "mounts", "")),
        hooks=_hooks(_get(raw, "hooks", dict, "", {})),
        linux=_linux(_get(raw, "linux", dict, "", {})),
        annotations=annotations,
        raw=raw,
    )


def load(bundle: str) -> Spec:
    """Read and parse `<bundle>/config.json`."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = jsonio.loads(f.read())
    except FileNotFoundError:
        raise InvalidConfig(f"JSON specification file {path} not found") from None
    except ValueError as e:
        raise InvalidConfig(f"config.json: invalid JSON: {e}") from None
    return parse(raw, bundle)


# --- named checks --------------------------------------------------------------------------------

if TYPE_CHECKING:  # collections.abc is not imported at run time
    Check = Callable[[Spec], None]


def check_root(spec: Spec) -> None:
    if not os.path.isdir(spec.root.path):
        raise _bad("root.path", f"{spec.root.path} is not a directory")


def check_process(spec: Spec) -> None:
    if spec.process is None:
        raise _bad("process", "is required to create a container")
    if not spec.process.cwd.startswith("/"):
        raise _bad("process.cwd", f"must be an absolute path, not {spec.process.cwd!r}")
    oom = spec.process.oom_score_adj
    if oom is not None and not -1000 <= oom <= 1000:
        raise _bad("process.oomScoreAdj", f"{oom} is outside -1000..1000")


def check_namespaces(spec: Spec) -> None:
    seen = set()
    for ns in spec.linux.namespaces:
        if ns.type not in NAMESPACE_TYPES:
            raise _bad("linux.namespaces", f"unknown namespace type {ns.type!r}")
        if ns.type in seen:
            raise _bad("linux.namespaces", f"namespace {ns.type!r} is listed twice")
        seen.add(ns.type)
        if ns.path is not None and not os.path.exists(ns.path):
            raise _bad("linux.namespaces", f"{ns.type} namespace path {ns.path} does not exist")
    if "mount" not in seen:
        raise _bad("linux.namespaces", "a mount namespace is required")
    if spec.hostname and "uts" not in seen:
        raise _bad("hostname", "unable to set hostname without a private UTS namespace")
    if spec.domainname and "uts" not in seen:
        raise _bad("domainname", "unable to set domainname without a private UTS namespace")


def check_time_offsets(spec: Spec) -> None:
    if not spec.linux.time_offsets:
        return
    time = spec.linux.namespace("time")
    if time is None or time.path is not None:
        raise _bad("linux.timeOffsets", "needs a new time namespace")
    for clock, (_, nanosecs) in spec.linux.time_offsets.items():
        if not 0 <= nanosecs < 1_000_000_000:
            raise _bad(f"linux.timeOffsets.{clock}.nanosecs", "must be 0 to 999999999")


def check_id_mappings(spec: Spec) -> None:
    user = spec.linux.namespace("user")
    maps = spec.linux.uid_mappings + spec.linux.gid_mappings
    if user is None and maps:
        raise _bad("linux.uidMappings", "user namespace mappings need a user namespace")
    if user is not None and user.path is None and not (spec.linux.uid_mappings
                                                        and spec.linux.gid_mappings):
        raise _bad("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings")
    for m in maps:
        if m.size <= 0 or m.container_id < 0 or m.host_id < 0:
            raise _bad("linux.uidMappings",
                       f"invalid mapping {m.container_id} {m.host_id} {m.size}: size must be > 0 "
                       "and ids >= 0")


def check_mounts(spec: Spec) -> None:
    for i, m in enumerate(spec.mounts):
        where = f"mounts[{i}]"
        if not m.destination:
            raise _bad(f"{where}.destination", "is required")
        if ".." in m.destination.split("/"):
            raise _bad(f"{where}.destination", f"{m.destination!r} must not contain '..'")
        bind = m.type == "bind" or "bind" in m.options or "rbind" in m.options
        if bind and not m.source:
            raise _bad(f"{where}.source", "a bind mount needs a source")
        if not bind and not m.type:
            raise _bad(f"{where}.type", "is required for a non-bind mount")
        if bind and not os.path.exists(m.source):
            raise _bad(f"{where}.source", f"{m.source} does not exist")


def check_rootfs_propagation(spec: Spec) -> None:
    prop = spec.linux.rootfs_propagation
    if prop is not None and prop not in PROPAGATIONS:
        raise _bad("linux.rootfsPropagation", f"unknown propagation {prop!r}")


def _caller_can_raise_limits() -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 24))  # CAP_SYS_RESOURCE
    return False


def check_rlimits(spec: Spec) -> None:
    import resource

    assert spec.process is not None
    for r in spec.process.rlimits:
        if r.type not in RLIMITS:
            raise _bad("process.rlimits", f"unknown rlimit type {r.type!r}")
        if r.soft > r.hard:
            raise _bad("process.rlimits", f"{r.type}: soft limit {r.soft} is above hard {r.hard}")
        _, caller_hard = resource.getrlimit(RLIMITS[r.type])
        if caller_hard != resource.RLIM_INFINITY and r.hard > caller_hard \
                and not _caller_can_raise_limits():
            raise _bad("process.rlimits",
                       f"{r.type}: hard limit {r.hard} is above the caller's hard limit "
                       f"{caller_hard} and the runtime lacks CAP_SYS_RESOURCE")


_SYSCTL_NAMESPACE = {"kernel.hostname": "uts", "kernel.domainname": "uts", "net.": "network",
                     "kernel.msg": "ipc", "kernel.sem": "ipc", "kernel.shm": "ipc", "fs.mqueue.": "ipc"}


def check_sysctl(spec: Spec) -> None:
    for key in spec.linux.sysctl:
        needed = next((ns for prefix, ns in _SYSCTL_NAMESPACE.items() if key.startswith(prefix)),
                      None)
        if needed is None:
            raise _bad(f"linux.sysctl.{key}", "is not namespaced and cannot be set in a container")
        if spec.linux.namespace(needed) is None:
            raise _bad(f"linux.sysctl.{key}", f"needs a private {needed} namespace")
        field_ = {"kernel.hostname": spec.hostname, "kernel.domainname": spec.domainname}
        if field_.get(key):
            raise _bad(f"linux.sysctl.{key}", f"conflicts with the {key.split('.')[1]} field")


def check_devices(spec: Spec) -> None:
    for d in spec.linux.devices:
        if d.type not in DEVICE_TYPES:
            raise _bad("linux.devices", f"{d.path}: unknown device type {d.type!r}")
        if not d.path.startswith("/dev/"):
            raise _bad("linux.devices", f"{d.path}: device paths must be under /dev")


def check_hooks(spec: Spec) -> None:
    for kind, hooks in spec.hooks.items():
        for h in hooks:
            if not os.path.isabs(h.path):
                raise _bad(f"hooks.{kind}", f"hook path {h.path!r} must be absolute")


def check_resources(spec: Spec) -> None:
    """Delegated to the cgroups package (create makes the cgroup only after it forks)."""
    if spec.linux.resources is not None:
        from corral.runtime.cgroups import validate

        validate.check(spec.linux.resources)


def check_security(spec: Spec) -> None:
    """Delegated to the modules that own seccomp and capabilities."""
    if spec.linux.seccomp is not None:
        from corral.runtime.linux import seccomp

        seccomp.check(spec.linux.seccomp)
    if spec.process is not None and spec.process.capabilities is not None:
        from corral.runtime.linux import caps

        caps.check(spec.process.capabilities)


CHECKS: tuple[Check, ...] = (
    check_root, check_process, check_namespaces, check_time_offsets, check_id_mappings,
    check_mounts,
    check_rootfs_propagation, check_rlimits, check_sysctl, check_devices, check_hooks,
    check_resources, check_security,
)


def validate(spec: Spec) -> None:
    """Run every named check; the first failure raises InvalidConfig naming the field."""
    for check in CHECKS:
        check(spec)
