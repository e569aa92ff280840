"""Image config + RunOptions -> the OCI bundle's config.json, with Docker's defaults.

Docker's rules, in the order it applies them:
- args: `--entrypoint` (or the image's ENTRYPOINT) followed by the command (or the image's CMD; an
  explicit `--entrypoint` drops the image's CMD);
- env: PATH (unless the image sets one), HOSTNAME, TERM with a tty, the image's ENV, then `-e`;
- user: `-u` or the image's USER, resolved against the container's /etc/passwd and /etc/group
  (inside its root); cwd: `-w` or WORKDIR or `/`;
- security: Docker's capability set, seccomp profile, masked and read-only paths, device cgroup
  allow list; `--privileged` lifts them all;
- mounts: proc, /dev (tmpfs), devpts, /dev/shm (`--shm-size`), mqueue, sysfs, cgroup, then
  /etc/hosts, /etc/hostname, /etc/resolv.conf, then the user's mounts sorted by depth.

`build()` is pure apart from reading the container's /etc/passwd and the host's device nodes, so
it can run before anything is started and fail with one clear error.
"""

from __future__ import annotations

import os
import resource
import stat
from collections.abc import Mapping, Sequence

from corral.containers import defaults, rootpath
from corral.containers.defaults import seccomp
from corral.containers.options import RunOptions
from corral.errors import InvalidArgument, NotFound
from corral.records import NamedTuple

TYPE_CHECKING = False  # not typing's: `corral run` does not import typing
if TYPE_CHECKING:
    from typing import Any

_CLONE_NS_SYSCTL_PREFIXES = ("kernel.msg", "kernel.sem", "kernel.shm", "fs.mqueue.")
_CAP_SYS_RESOURCE = 24


class BundleInputs(NamedTuple):
    """Everything `build` needs besides the options: where things are on the host."""

    container_id: str
    rootfs: str
    image_config: Mapping[str, Any]  # the OCI image config's "config" object
    mounts: Sequence[Mapping[str, Any]]  # the user's mounts, already in OCI form
    etc_files: Mapping[str, str | os.PathLike[str]]  # "/etc/hosts" -> host file to bind-mount
    netns: str | None  # "host", a namespace path, or None for a new empty namespace
    cgroup_parent: str = "/corral"


def build(opts: RunOptions, inputs: BundleInputs) -> dict[str, Any]:
    image = inputs.image_config
    hostname = _hostname(opts, inputs)
    args = process_args(opts, image)
    caps = capabilities(opts)
    uid, gid, gids = resolve_user(inputs.rootfs, opts.user or image.get("User") or "", opts.group_add)
    if opts.init:
        args = [defaults.INIT_PATH_IN_CONTAINER, "--", *args]
    process: dict[str, Any] = {
        "terminal": opts.tty,
        "user": {"uid": uid, "gid": gid, "additionalGids": gids},
        "args": args,
        "env": environment(opts, image, hostname),
        "cwd": opts.workdir or image.get("WorkingDir") or "/",
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        "rlimits": rlimits(opts),
        "noNewPrivileges": _no_new_privileges(opts),
    }
    linux: dict[str, Any] = {
        "namespaces": namespaces(opts, inputs),
        "resources": resources(opts),
        "cgroupsPath": f"{inputs.cgroup_parent}/{inputs.container_id}",
        "sysctl": sysctls(opts),
        "devices": devices(opts),
    }
    if not opts.privileged and "systempaths=unconfined" not in opts.security_opt:
        linux["maskedPaths"] = list(defaults.MASKED_PATHS)
        linux["readonlyPaths"] = list(defaults.READONLY_PATHS)
    profile = seccomp_profile(opts, caps)
    if profile is not None:
        linux["seccomp"] = profile
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": str(inputs.rootfs), "readonly": opts.read_only},
        "hostname": hostname,
        "mounts": mounts(opts, inputs),
        "annotations": {"io.corral.container": inputs.container_id},
        "linux": linux,
    }


def process_args(opts: RunOptions, image: Mapping[str, Any]) -> list[str]:
    entrypoint = list(opts.entrypoint) if opts.entrypoint is not None else list(image.get("Entrypoint") or [])
    if opts.command:
        cmd = list(opts.command)
    elif opts.entrypoint is not None:
        cmd = []
    else:
        cmd = list(image.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise InvalidArgument("no command specified: the image has no CMD or ENTRYPOINT")
    return args


def environment(opts: RunOptions, image: Mapping[str, Any], hostname: str) -> list[str]:
    env: dict[str, str] = {"PATH": defaults.DEFAULT_PATH, "HOSTNAME": hostname}
    if opts.tty:
        env["TERM"] = "xterm"
    for item in [*(image.get("Env") or []), *opts.env]:
        key, _, value = item.partition("=")
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]


def capabilities(opts: RunOptions) -> list[str]:
    if opts.privileged:
        return _held_capabilities()
    caps = list(defaults.CAPABILITIES)
    for name in opts.cap_drop:
        cap = _cap_name(name)
        caps = [] if cap == "CAP_ALL" else [c for c in caps if c != cap]
    for name in opts.cap_add:
        cap = _cap_name(name)
        added = defaults.ALL_CAPABILITIES if cap == "CAP_ALL" else (cap,)
        caps += [c for c in added if c not in caps]
    return caps


def _cap_name(name: str) -> str:
    cap = name.upper()
    cap = cap if cap.startswith("CAP_") else f"CAP_{cap}"
    if cap != "CAP_ALL" and cap not in defaults.ALL_CAPABILITIES:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return cap


def seccomp_profile(opts: RunOptions, caps: Sequence[str]) -> dict[str, Any] | None:
    if opts.privileged:
        return None
    for opt in opts.security_opt:
        key, _, value = opt.replace(":", "=", 1).partition("=")
        if key != "seccomp":
            continue
        if value == "unconfined":
            return None
        import json

        try:
            with open(value) as f:
                return dict(json.loads(f.read()))
        except (OSError, ValueError) as e:
            raise InvalidArgument(f"opening seccomp profile {value!r} failed: {e}") from e
    return seccomp.profile(caps)


def _no_new_privileges(opts: RunOptions) -> bool:
    for opt in opts.security_opt:
        key, _, value = opt.replace(":", "=", 1).partition("=")
        if key == "no-new-privileges":
            return value in ("", "true", "1")
    return False


def validate_security_opts(opts: RunOptions) -> None:
    """apparmor and label are accepted (this host has neither AppArmor nor SELinux enforcing)."""
    for opt in opts.security_opt:
        key = opt.replace(":", "=", 1).partition("=")[0]
        if key not in ("seccomp", "no-new-privileges", "apparmor", "label", "systempaths"):
            raise InvalidArgument(f"invalid --security-opt: {opt!r}")


def rlimits(opts: RunOptions) -> list[dict[str, Any]]:
    """Docker-like generous defaults, never above what this process may grant (HOST-NOTES)."""
    may_raise = _has_capability(_CAP_SYS_RESOURCE)
    limits: dict[str, tuple[int, int]] = {}
    for name, wanted in (("NOFILE", 1048576), ("NPROC", 1048576)):
        hard = resource.getrlimit(getattr(resource, f"RLIMIT_{name}"))[1]
        value = wanted if may_raise or hard == resource.RLIM_INFINITY else min(wanted, hard)
        limits[name] = (value, value)
    for ulimit in opts.ulimits:
        name = ulimit.name.upper()
        if not hasattr(resource, f"RLIMIT_{name}"):
            raise InvalidArgument(f"invalid ulimit type: {ulimit.name}")
        hard_now = resource.getrlimit(getattr(resource, f"RLIMIT_{name}"))[1]
        wanted_hard = resource.RLIM_INFINITY if ulimit.hard == -1 else ulimit.hard
        if not may_raise and hard_now != resource.RLIM_INFINITY and (
            wanted_hard == resource.RLIM_INFINITY or wanted_hard > hard_now
        ):
            raise InvalidArgument(
                f"ulimit {ulimit.name}={ulimit.hard} is above this process's hard limit {hard_now}"
            )
        soft = resource.RLIM_INFINITY if ulimit.soft == -1 else ulimit.soft
        limits[name] = (soft, wanted_hard)
    return [{"type": f"RLIMIT_{n}", "soft": s, "hard": h} for n, (s, h) in limits.items()]


def _held_capabilities() -> list[str]:
    """Every capability this process can pass on (its bounding set): --privileged gets these, as
    a runtime cannot grant what its caller lacks (here: no CAP_SYS_RESOURCE, HOST-NOTES)."""
    with open("/proc/self/status") as f:
        bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return [cap for number, cap in enumerate(defaults.ALL_CAPABILITIES) if bounding >> number & 1]


def _has_capability(number: int) -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> number & 1)
    return False


def namespaces(opts: RunOptions, inputs: BundleInputs) -> list[dict[str, str]]:
    spaces = [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}, {"type": "uts"}]
    if inputs.netns != "host":
        spaces.append({"type": "network", "path": inputs.netns} if inputs.netns else {"type": "network"})
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # cgroup v2: private like Docker's
        spaces.append({"type": "cgroup"})
    if opts.userns not in (None, "", "host"):
        raise InvalidArgument(f"--userns={opts.userns} is not supported yet (only 'host')")
    return spaces


def _hostname(opts: RunOptions, inputs: BundleInputs) -> str:
    if opts.hostname:
        return opts.hostname
    if inputs.netns == "host":
        return os.uname().nodename
    return inputs.container_id[:12]


def resources(opts: RunOptions) -> dict[str, Any]:
    res: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if opts.privileged:
        res["devices"] = [{"allow": True, "access": "rwm"}]
    else:
        for kind, major, minor, access in defaults.DEVICE_CGROUP_RULES:
            res["devices"].append(_device_rule(kind, major, minor, access))
        for dev in opts.devices:
            kind, major, minor = _device_numbers(dev.host_path)
            res["devices"].append(_device_rule(kind, major, minor, dev.permissions))
    memory: dict[str, Any] = {}
    if opts.memory is not None:
        memory["limit"] = opts.memory
        if _swap_accounting():
            if opts.memory_swap is None:
                memory["swap"] = 2 * opts.memory
            elif opts.memory_swap != 0:
                memory["swap"] = opts.memory_swap
    elif opts.memory_swap not in (None, -1):
        raise InvalidArgument("you should always set --memory with --memory-swap")
    if opts.memory_swap not in (None, -1) and opts.memory is not None and opts.memory_swap < opts.memory:
        raise InvalidArgument("--memory-swap should be at least --memory")
    if opts.memory_reservation is not None:
        memory["reservation"] = opts.memory_reservation
    if memory:
        res["memory"] = memory
    cpu: dict[str, Any] = {}
    if opts.cpus is not None:
        if opts.cpus <= 0 or opts.cpus > (os.cpu_count() or 1):
            raise InvalidArgument(f"range of CPUs is from 0.01 to {os.cpu_count()}.00, as there are only {os.cpu_count()} CPUs available")
        cpu["quota"] = int(opts.cpus * 100000)
        cpu["period"] = 100000
    if opts.cpu_shares is not None:
        cpu["shares"] = opts.cpu_shares
    if opts.cpuset_cpus:
        cpu["cpus"] = opts.cpuset_cpus
    if opts.cpuset_mems:
        cpu["mems"] = opts.cpuset_mems
    if cpu:
        res["cpu"] = cpu
    if opts.pids_limit is not None and opts.pids_limit > 0:
        res["pids"] = {"limit": opts.pids_limit}
    return res


def _swap_accounting() -> bool:
    return (os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
            or os.path.exists("/sys/fs/cgroup/memory.swap.max"))


def _device_rule(kind: str, major: int, minor: int, access: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
    if major >= 0:
        rule["major"] = major
    if minor >= 0:
        rule["minor"] = minor
    return rule


def _device_numbers(path: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise NotFound(f"error gathering device information while adding device {path!r}: {e.strerror}") from e
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise InvalidArgument(f"{path} is not a device node")
    return kind, os.major(st.st_rdev), os.minor(st.st_rdev)


def devices(opts: RunOptions) -> list[dict[str, Any]]:
    """Device nodes to create: --device, or every host device with --privileged."""
    wanted = [(d.host_path, d.container_path) for d in opts.devices]
    if opts.privileged:
        wanted += [(p, p) for p in _host_devices()]
    out = []
    seen = set()
    for host, target in wanted:
        if target in seen:
            continue
        seen.add(target)
        kind, major, minor = _device_numbers(host)
        st = os.stat(host)
        out.append({"path": target, "type": kind, "major": major, "minor": minor,
                    "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return out


def _host_devices() -> list[str]:
    found = []
    for entry in os.scandir("/dev"):
        if entry.is_dir(follow_symlinks=False) or entry.is_symlink():
            continue
        mode = entry.stat(follow_symlinks=False).st_mode
        if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and entry.name not in ("ptmx", "console", "tty"):
            found.append(entry.path)
    return sorted(found)


def sysctls(opts: RunOptions) -> dict[str, str]:
    """Docker accepts only namespaced sysctls; net.* needs the container's own network."""
    for key in opts.sysctls:
        if key.startswith(_CLONE_NS_SYSCTL_PREFIXES):
            continue
        if key.startswith("net."):
            if opts.network == "host":
                raise InvalidArgument(f"sysctl {key!r} is not allowed with --network host")
            continue
        raise InvalidArgument(f"sysctl {key!r} is not allowed: it is not namespaced")
    return dict(opts.sysctls)


def mounts(opts: RunOptions, inputs: BundleInputs) -> list[dict[str, Any]]:
    shm_size = opts.shm_size or defaults.DEFAULT_SHM_SIZE
    sys_ro = [] if opts.privileged else ["ro"]
    result: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", *sys_ro]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", *sys_ro]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"]},
    ]
    user_targets = {os.path.normpath(m["destination"]) for m in inputs.mounts}
    for target, host in inputs.etc_files.items():
        if target not in user_targets:
            result.append({"destination": target, "type": "bind", "source": os.fspath(host),
                           "options": ["rbind", "rprivate", *(["ro"] if opts.read_only else [])]})
    if opts.init:
        result.append({"destination": defaults.INIT_PATH_IN_CONTAINER, "type": "bind",
                       "source": defaults.INIT_BINARY, "options": ["bind", "ro", "nosuid", "nodev"]})
    defaults_targets = {m["destination"] for m in result}
    user = [dict(m) for m in inputs.mounts if m["destination"] not in defaults_targets]
    result = [m for m in result if m["destination"] not in user_targets]
    result += sorted(user, key=lambda m: os.path.normpath(m["destination"]).count("/"))  # parents first
    return result


def resolve_user(rootfs: str, spec: str, group_add: Sequence[str] = ()) -> tuple[int, int, list[int]]:
    """`user[:group]` (names or ids) -> (uid, gid, supplementary gids), read inside the root."""
    user, _, group = spec.partition(":")
    passwd = _read_db(rootfs, "/etc/passwd")
    groups = _read_db(rootfs, "/etc/group")
    uid, gid = 0, 0
    name = "root"
    if user:
        entry = next((e for e in passwd if e[0] == user or (user.isdigit() and e[2] == user)), None)
        if entry is not None:
            name, uid, gid = entry[0], int(entry[2]), int(entry[3])
        elif user.isdigit():
            uid, gid, name = int(user), 0, ""
        else:
            raise InvalidArgument(f"unable to find user {user}: no matching entries in passwd file")
    if group:
        gid = _group_id(groups, group)
    supplementary = sorted({int(e[2]) for e in groups if name and name in e[3].split(",") and int(e[2]) != gid})
    supplementary += [_group_id(groups, g) for g in group_add]
    return uid, gid, supplementary


def _group_id(groups: list[list[str]], group: str) -> int:
    entry = next((e for e in groups if e[0] == group or e[2] == group), None)
    if entry is not None:
        return int(entry[2])
    if group.isdigit():
        return int(group)
    raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")


def _read_db(rootfs: str, path: str) -> list[list[str]]:
    try:
        with open(rootpath.resolve(rootfs, path), errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and not line.startswith("#"):
            rows.append(fields)
    return rows
