"""`corral run`, `ps`, `exec`, ... and `corral container <verb>`: docker's container commands.

Each command is a `flags.Command`: its flags as data, and a function that turns them into one
call on the containers library and prints the result. They are parsed by `corral.cli.flags`
(docker's syntax, and no click import on the hot path: `corral.cli.fast` dispatches here
directly); `__getattr__` wraps any of them as a click command for `corral.cli.main`'s table.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Sequence

from corral.cli.flags import Command, Flag, each, execute
from corral.errors import CorralError, InvalidArgument, NotFound, exit_code

TYPE_CHECKING = False  # not typing's: `ps` and `exec` must not import typing (~2 ms)

if TYPE_CHECKING:
    from typing import Any

    from corral.containers.lifecycle import Containers
    from corral.containers.options import RunOptions
    from corral.containers.state import Observed
    from corral.containers.store import Record, Store


def _store() -> Store:
    """The records alone, for the read-mostly hot paths (ps, exec, logs, inspect)."""
    from corral.config import paths
    from corral.containers.store import Store

    return Store(paths())


def _engine() -> Containers:
    from corral.config import paths
    from corral.containers.lifecycle import Containers

    return Containers(paths())


def _long_running() -> None:
    """The launcher starts with the cyclic garbage collector off (start-up makes ~100k objects
    that all live until exit: collecting them is wasted work on every command); a command that
    relays or follows for as long as a container runs turns it back on, with what exists so far
    frozen (else the first collection walks all of it: ~5 ms)."""
    import gc

    gc.freeze()
    gc.enable()


# -- run / create ----------------------------------------------------------------------------------

_CREATE_FLAGS = (
    Flag("name", kind="str", help="Assign a name to the container"),
    Flag("interactive", "i", help="Keep STDIN open even if not attached"),
    Flag("tty", "t", help="Allocate a pseudo-TTY"),
    Flag("env", "e", "list", "Set environment variables (KEY=VALUE, or KEY to pass the caller's)"),
    Flag("env-file", kind="list", help="Read in a file of environment variables"),
    Flag("label", "l", "list", "Set meta data on a container"),
    Flag("volume", "v", "list", "Bind mount a volume (SRC:DST[:ro])"),
    Flag("mount", kind="list", help="Attach a filesystem mount (type=bind|volume|tmpfs,...)"),
    Flag("tmpfs", kind="list", help="Mount a tmpfs directory"),
    Flag("publish", "p", "list", "Publish a container's port(s) to the host"),
    Flag("publish-all", "P", help="Publish all exposed ports to random ports"),
    Flag("network", kind="list", help="Connect a container to a network (none, host, ...)"),
    Flag("net", kind="list", help="Alias of --network"),
    Flag("network-alias", kind="list", help="Add a network-scoped alias for the container"),
    Flag("ip", kind="str", help="IPv4 address on the network (user networks)"),
    Flag("expose", kind="list", help="Expose a port or a range of ports (for -P)"),
    Flag("hostname", "h", "str", "Container host name"),
    Flag("dns", kind="list", help="Set custom DNS servers"),
    Flag("dns-search", kind="list", help="Set custom DNS search domains"),
    Flag("dns-option", kind="list", help="Set DNS options"),
    Flag("add-host", kind="list", help="Add a custom host-to-IP mapping (host:ip)"),
    Flag("workdir", "w", "str", "Working directory inside the container"),
    Flag("user", "u", "str", "Username or UID (format: <name|uid>[:<group|gid>])"),
    Flag("group-add", kind="list", help="Add additional groups to join"),
    Flag("entrypoint", kind="str", help="Overwrite the default ENTRYPOINT of the image"),
    Flag("read-only", help="Mount the container's root filesystem as read only"),
    Flag("cap-add", kind="list", help="Add Linux capabilities"),
    Flag("cap-drop", kind="list", help="Drop Linux capabilities"),
    Flag("privileged", help="Give extended privileges to this container"),
    Flag("security-opt", kind="list", help="Security options (seccomp=, no-new-privileges, ...)"),
    Flag("memory", "m", "str", "Memory limit"),
    Flag("memory-swap", kind="str", help="Memory + swap limit; -1 for unlimited swap"),
    Flag("memory-reservation", kind="str", help="Memory soft limit"),
    Flag("cpus", kind="str", help="Number of CPUs"),
    Flag("cpu-shares", "c", "int", "CPU shares (relative weight)"),
    Flag("cpuset-cpus", kind="str", help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", kind="str", help="MEMs in which to allow execution"),
    Flag("pids-limit", kind="int", help="Tune container pids limit (-1 for unlimited)"),
    Flag("ulimit", kind="list", help="Ulimit options (name=soft[:hard])"),
    Flag("init", help="Run an init inside the container that forwards signals and reaps processes"),
    Flag("restart", kind="str", default="no", help="Restart policy (only 'no' for now)"),
    Flag("health-cmd", kind="str", help="Command to run to check health (not supported yet)"),
    Flag("health-interval", kind="str", help="(not supported yet)"),
    Flag("health-timeout", kind="str", help="(not supported yet)"),
    Flag("health-retries", kind="str", help="(not supported yet)"),
    Flag("health-start-period", kind="str", help="(not supported yet)"),
    Flag("health-on-failure", kind="str", help="(not supported yet)"),
    Flag("no-healthcheck", help="Disable any container-specified HEALTHCHECK"),
    Flag("stop-signal", kind="str", help="Signal to stop the container"),
    Flag("stop-timeout", kind="int", help="Timeout (in seconds) to stop a container"),
    Flag("userns", kind="str", help="User namespace to use (host)"),
    Flag("device", kind="list", help="Add a host device to the container"),
    Flag("sysctl", kind="list", help="Sysctl options"),
    Flag("shm-size", kind="str", help="Size of /dev/shm"),
    Flag("log-driver", kind="str", default="k8s-file", help="Logging driver (k8s-file, json-file)"),
    Flag("log-opt", kind="list", help="Log driver options"),
    Flag("cidfile", kind="str", help="Write the container ID to the file"),
    Flag("pull", kind="str", default="missing", help="Pull image before running (missing, always, never)"),
    Flag("platform", kind="str", help="Set platform if server is multi-platform capable"),
    Flag("runtime", kind="str", help="Runtime to use for this container (crun, runc, corral-runtime, path)"),
    Flag("quiet", "q", help="Suppress the pull output"),
)
_RUN_FLAGS = (
    *_CREATE_FLAGS,
    Flag("detach", "d", help="Run container in background and print container ID"),
    Flag("rm", help="Automatically remove the container when it exits"),
    Flag("attach", "a", "list", help="Attach to STDIN, STDOUT or STDERR"),
    Flag("detach-keys", kind="str", help="Override the key sequence for detaching a container"),
    Flag("sig-proxy", kind="str", default="true", help="Proxy received signals to the process"),
)


def run_options(v: dict[str, Any], args: list[str]) -> RunOptions:
    """The flags of `run`/`create` as one RunOptions (validated values, docker's wording)."""
    from corral.containers import options as o

    for health in ("health_cmd", "health_interval", "health_timeout", "health_retries",
                   "health_start_period", "health_on_failure"):
        if v.get(health):
            raise InvalidArgument(f"--{health.replace('_', '-')} is not supported yet: healthchecks come in a later release")
    memory_swap = v.get("memory_swap")
    cpus = None
    if v.get("cpus"):
        try:
            cpus = float(v["cpus"])
        except ValueError:
            raise InvalidArgument(f"invalid argument {v['cpus']!r} for --cpus") from None
    labels = o.parse_labels(v["label"])
    mounts = tuple([*map(o.parse_volume, v["volume"]), *map(o.parse_mount, v["mount"]),
                    *map(o.parse_tmpfs, v["tmpfs"])])
    return o.RunOptions(
        image=args[0], command=tuple(args[1:]),
        entrypoint=None if v["entrypoint"] is None else tuple(filter(None, [v["entrypoint"]])),
        name=v["name"], env=o.parse_env(v["env"], v["env_file"]), labels=labels,
        workdir=v["workdir"], user=v["user"], group_add=tuple(v["group_add"]),
        hostname=v["hostname"], tty=bool(v["tty"]), interactive=bool(v["interactive"]),
        detach=bool(v.get("detach")), remove=bool(v.get("rm")), mounts=mounts,
        network=([*v["network"], *v["net"]] or [None])[0],
        extra_networks=tuple([*v["network"], *v["net"]][1:]), publish=tuple(v["publish"]), publish_all=bool(v["publish_all"]),
        expose=tuple(v["expose"]), ip=v["ip"], network_aliases=tuple(v["network_alias"]),
        dns=tuple(v["dns"]), dns_search=tuple(v["dns_search"]), dns_options=tuple(v["dns_option"]),
        add_hosts=tuple(v["add_host"]), read_only=bool(v["read_only"]), privileged=bool(v["privileged"]),
        cap_add=tuple(v["cap_add"]), cap_drop=tuple(v["cap_drop"]), security_opt=tuple(v["security_opt"]),
        memory=o.parse_memory(v["memory"]) if v["memory"] else None,
        memory_swap=(-1 if memory_swap == "-1" else o.parse_size(memory_swap, "--memory-swap")) if memory_swap else None,
        memory_reservation=o.parse_size(v["memory_reservation"], "--memory-reservation") if v["memory_reservation"] else None,
        cpus=cpus, cpu_shares=v["cpu_shares"], cpuset_cpus=v["cpuset_cpus"], cpuset_mems=v["cpuset_mems"],
        pids_limit=v["pids_limit"], ulimits=tuple(map(o.parse_ulimit, v["ulimit"])), init=bool(v["init"]),
        stop_signal=v["stop_signal"], stop_timeout=v["stop_timeout"], userns=v["userns"],
        devices=tuple(map(o.parse_device, v["device"])), sysctls=o.parse_sysctls(v["sysctl"]),
        shm_size=o.parse_size(v["shm_size"], "--shm-size") if v["shm_size"] else None,
        log_driver=v["log_driver"], cidfile=v["cidfile"], pull=v["pull"], platform=v["platform"],
        runtime=v["runtime"], restart=v["restart"] or "no",
    )


def _create(v: dict[str, Any], args: list[str]) -> int:
    rec = _engine().create(run_options(v, args))
    print(rec.id)
    return 0


def _run(v: dict[str, Any], args: list[str]) -> int:
    opts = run_options(v, args)
    if opts.detach and opts.remove and opts.restart != "no":
        raise InvalidArgument("conflicting options: --restart and --rm")
    engine = _engine()
    rec = engine.create(opts, starting=True)
    if opts.detach:
        try:
            engine.start(rec.id)
        except BaseException:
            engine.remove(rec.id, force=True, volumes=True)
            raise
        print(rec.id)
        return 0
    return _run_attached(engine, rec, opts, v.get("detach_keys"), v["sig_proxy"] not in ("false", "0"))


def _run_attached(engine: Containers, rec: Record, opts: RunOptions, detach_keys: str | None,
                  sig_proxy: bool = True) -> int:
    """Foreground run: attach before the program starts, relay, wait, honour --rm."""
    try:
        rec, sock = engine.start(rec.id, attach=True)
    except BaseException:
        engine.remove(rec.id, force=True, volumes=True)
        raise
    assert sock is not None
    # imported by now (start loads them while conmon creates the container)
    from corral.containers import attach, monitor

    _long_running()
    with contextlib.closing(sock):  # a C socket (attach.connect): no context manager of its own
        detached = attach.relay(sock, bundle=engine.store.bundle(rec.id), stdin=opts.interactive,
                                tty=opts.tty, detach_keys=attach.parse_detach_keys(detach_keys),
                                proxy_signals_to=rec.pid if sig_proxy else None)
    if detached:
        return 0
    status = monitor.wait_exit(engine.store.bundle(rec.id), rec.pid)
    code = status[0] if status is not None else engine.observe(rec).exit_code
    if opts.remove:
        engine.cleanup(rec.id)
        if engine.store.find(rec.id) is not None:
            engine.remove(rec.id, force=True, volumes=True)
    return code


# -- start / stop / kill / rm / wait -----------------------------------------------------------


def _start(v: dict[str, Any], args: list[str]) -> int:
    engine = _engine()
    if not v["attach"]:
        return each(args, lambda ref: engine.start(ref))
    from corral.containers import attach, monitor
    from corral.containers.options import RunOptions

    rec, sock = engine.start(args[0], attach=True)
    opts = RunOptions.from_json(rec.options)
    if sock is None:
        raise CorralError(f"container {args[0]} is already running: use `corral attach`")
    _long_running()
    with contextlib.closing(sock):  # a C socket (attach.connect): no context manager of its own
        if attach.relay(sock, bundle=engine.store.bundle(rec.id), stdin=bool(v["interactive"]) and opts.interactive,
                        tty=opts.tty, detach_keys=attach.parse_detach_keys(v["detach_keys"])):
            return 0
    status = monitor.wait_exit(engine.store.bundle(rec.id), rec.pid)
    return status[0] if status else engine.observe(rec).exit_code


def _stop(v: dict[str, Any], args: list[str]) -> int:
    engine = _engine()
    return each(args, lambda ref: engine.stop(ref, v["time"]))


def _restart(v: dict[str, Any], args: list[str]) -> int:
    engine = _engine()
    return each(args, lambda ref: engine.restart(ref, v["time"]))


def _kill(v: dict[str, Any], args: list[str]) -> int:
    engine = _engine()
    return each(args, lambda ref: engine.kill(ref, v["signal"] or "KILL"))


def _rm(v: dict[str, Any], args: list[str]) -> int:
    engine = _engine()
    return each(args, lambda ref: engine.remove(ref, force=bool(v["force"]), volumes=bool(v["volumes"])))


def _wait(v: dict[str, Any], args: list[str]) -> int:
    engine = _engine()
    return each(args, lambda ref: print(engine.wait(ref)), echo=False)


def _pause(v: dict[str, Any], args: list[str]) -> int:
    engine = _engine()
    return each(args, engine.pause)


def _unpause(v: dict[str, Any], args: list[str]) -> int:
    engine = _engine()
    return each(args, engine.unpause)


def _rename(v: dict[str, Any], args: list[str]) -> int:
    _engine().rename(args[0], args[1])
    return 0


def _cleanup(v: dict[str, Any], args: list[str]) -> int:
    engine = _engine()
    for cid in args:
        engine.cleanup(engine.store.get(cid).id)
    return 0


def _prune(v: dict[str, Any], args: list[str]) -> int:
    if not v["force"] and sys.stdin.isatty():
        answer = input("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    removed = _engine().prune()
    if removed:
        print("Deleted Containers:\n" + "\n".join(removed))
    print("\nTotal reclaimed space: 0B" if removed else "Total reclaimed space: 0B")
    return 0


# -- ps / inspect ----------------------------------------------------------------------------------


def status_text(rec: Record, observed: Observed, now: float) -> str:
    from corral.cli.format import human_duration
    from corral.containers.state import Status

    if observed.status is Status.CREATED:
        return "Created"
    if observed.status is Status.EXITED:
        return f"Exited ({observed.exit_code}) {human_duration(now - (observed.finished_at or now))} ago"
    up = f"Up {human_duration(now - rec.started_at)}"
    return f"{up} (Paused)" if observed.status is Status.PAUSED else up


def _command_of(rec: Record) -> str:
    return " ".join(rec.args)


def _ps_row(rec: Record, observed: Observed, now: float, trunc: bool) -> dict[str, Any]:
    from corral.cli.format import human_duration

    command = _command_of(rec)
    if trunc and len(command) > 20:
        command = command[:19] + "…"
    return {
        "ID": rec.id[:12] if trunc else rec.id,
        "Image": rec.image_name,
        "Command": f'"{command}"',
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(rec.created)),
        "RunningFor": f"{human_duration(now - rec.created)} ago",
        "Status": status_text(rec, observed, now),
        "State": observed.status.value,
        "Ports": _ports(rec, observed),
        "Names": rec.name,
        "Labels": ",".join(f"{k}={v}" for k, v in (rec.options.get("labels") or {}).items()),
        "Mounts": ",".join(m["source"] or m["target"] for m in rec.options.get("mounts", ())),
        "Networks": rec.network,
    }


def _ports(rec: Record, observed: Observed) -> str:
    """docker's PORTS column; the network area is asked only for containers that publish."""
    if not observed.alive or not (rec.options.get("publish") or rec.options.get("publish_all")):
        return ""
    from corral.config import paths
    from corral.containers import networking

    ports = networking.settings(paths(), rec.id).get("Ports") or {}
    return ", ".join(f"{b['HostIp']}:{b['HostPort']}->{port}" for port, binds in ports.items()
                     for b in binds or ())


def _matches(rec: Record, observed: Observed, filters: list[str]) -> bool:
    for f in filters:
        key, _, value = f.partition("=")
        if key == "status" and observed.status.value != value:
            return False
        if key == "name" and value not in rec.name:
            return False
        if key == "id" and not rec.id.startswith(value):
            return False
        if key == "ancestor" and value not in (rec.image_name, rec.image_id, rec.image_id[7:19]):
            return False
        if key == "label":
            lk, sep, lv = value.partition("=")
            labels = rec.options.get("labels") or {}
            if lk not in labels or (sep and labels[lk] != lv):
                return False
        if key == "exited" and (observed.status.value != "exited" or str(observed.exit_code) != value):
            return False
        if key not in ("status", "name", "id", "ancestor", "label", "exited"):
            raise InvalidArgument(f"invalid filter {key!r}")
    return True


def _ps(v: dict[str, Any], args: list[str]) -> int:
    from corral.cli import format as fmt
    from corral.containers import state

    store = _store()
    records = store.all()
    if any(r.state == "creating" for r in records):  # rare: a create was killed half-way
        _engine().reap_interrupted()
        records = store.all()
    now = time.time()
    listing = [(r, o) for r, o in ((r, state.observe(store, r)) for r in records) if (v["all"] or o.alive) and _matches(r, o, v["filter"])]
    if v["latest"]:
        listing = listing[:1]
    if v["last"] is not None and v["last"] >= 0:
        listing = listing[: v["last"]]
    trunc = not v["no_trunc"]
    if v["quiet"]:
        for rec, _ in listing:
            print(rec.id[:12] if trunc else rec.id)
        return 0
    rows = [_ps_row(r, o, now, trunc) for r, o in listing]
    header = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
    table = [(r["ID"], r["Image"], r["Command"], r["RunningFor"], r["Status"], r["Ports"], r["Names"]) for r in rows]
    text = fmt.output(v["format"], rows, table, header)
    if text:
        print(text)
    return 0


def _inspect(v: dict[str, Any], args: list[str]) -> int:
    import json

    from corral.cli import format as fmt
    from corral.containers.inspect import inspect

    engine = _engine()
    docs = []
    code = 0
    for ref in args:
        try:
            docs.append(inspect(engine, *engine.get(ref)))
        except NotFound:
            try:
                docs.append(_inspect_other(engine, ref))
            except CorralError:
                print(f"Error: No such object: {ref}", file=sys.stderr)
                code = 125
        except CorralError as e:
            print(f"Error: {e}", file=sys.stderr)
            code = exit_code(e)
    if v["format"]:
        for doc in docs:
            print(fmt.render(v["format"], doc))
    else:
        print(json.dumps(docs, indent=4))
    return code


def _inspect_other(engine: Containers, ref: str) -> dict[str, Any]:
    """docker's top-level inspect: a container, else an image, else a volume."""
    try:
        from corral.cli.image import inspect_document

        return inspect_document(engine.images, engine.images.get(ref))
    except NotFound:
        return engine.volumes.get(ref).inspect()


# -- logs / exec / attach --------------------------------------------------------------------------


def _logs(v: dict[str, Any], args: list[str]) -> int:
    from corral.containers import logs

    engine = _engine()
    rec, _ = engine.get(args[0])
    if v["follow"]:
        _long_running()
    logs.show(engine, rec, follow=bool(v["follow"]), since=v["since"], until=v["until"],
              tail=v["tail"], timestamps=bool(v["timestamps"]))
    return 0


def _exec(v: dict[str, Any], args: list[str]) -> int:
    from corral.config import paths
    from corral.containers import exec as execution
    from corral.containers import options as o

    return execution.run(
        paths(), args[0], args[1:], tty=bool(v["tty"]), interactive=bool(v["interactive"]),
        detach=bool(v["detach"]), env=o.parse_env(v["env"], v["env_file"]), user=v["user"],
        workdir=v["workdir"], privileged=bool(v["privileged"]))


def _attach(v: dict[str, Any], args: list[str]) -> int:
    from corral.containers import attach, monitor
    from corral.containers.options import RunOptions
    from corral.containers.state import Status

    engine = _engine()
    rec, observed = engine.get(args[0])
    if observed.status is not Status.RUNNING:
        raise CorralError(f"you cannot attach to a stopped container, start it first ({rec.name})")
    opts = RunOptions.from_json(rec.options)
    bundle = engine.store.bundle(rec.id)
    _long_running()
    with contextlib.closing(attach.connect(bundle)) as sock:
        if attach.relay(sock, bundle=bundle, stdin=opts.interactive and not v["no_stdin"], tty=opts.tty,
                        detach_keys=attach.parse_detach_keys(v["detach_keys"])):
            return 0
    status = monitor.wait_exit(bundle, rec.pid)
    return status[0] if status else engine.observe(rec).exit_code


# -- files: cp / diff / export / commit ------------------------------------------------------------


def _cp(v: dict[str, Any], args: list[str]) -> int:
    from corral.containers import cp

    cp.copy(_engine(), args[0], args[1], archive=bool(v["archive"]), follow_link=bool(v["follow_link"]))
    return 0


def _diff(v: dict[str, Any], args: list[str]) -> int:
    from corral.containers import commit

    engine = _engine()
    for kind, path in commit.diff(engine, engine.store.get(args[0])):
        print(f"{kind} {path}")
    return 0


def _export(v: dict[str, Any], args: list[str]) -> int:
    from corral.containers import commit

    engine = _engine()
    rec = engine.store.get(args[0])
    if not v["output"] and sys.stdout.isatty():
        raise CorralError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    commit.export(engine, rec, v["output"])
    return 0


def _commit(v: dict[str, Any], args: list[str]) -> int:
    from corral.containers import commit

    engine = _engine()
    image = commit.commit(engine, engine.store.get(args[0]), args[1] if len(args) > 1 else None,
                          changes=v["change"], message=v["message"] or "", author=v["author"] or "",
                          pause=v["pause"] not in ("false", "0"))
    print(image.id)
    return 0


# -- top / stats / update --------------------------------------------------------------------------


def _top(v: dict[str, Any], args: list[str]) -> int:
    from corral.containers import stats

    print(stats.top(_engine(), args[0], args[1:]))
    return 0


def _stats(v: dict[str, Any], args: list[str]) -> int:
    from corral.containers import stats

    if not v["no_stream"]:
        _long_running()
    return stats.show(_engine(), args, stream=not v["no_stream"], all_containers=bool(v["all"]),
                      template=v["format"], trunc=not v["no_trunc"])


def _update(v: dict[str, Any], args: list[str]) -> int:
    from corral.containers import options as o
    from corral.containers import stats

    if v["restart"] and v["restart"] != "no":
        raise InvalidArgument(f"--restart={v['restart']} is not supported yet: restart policies come in a later release")
    cpus = float(v["cpus"]) if v["cpus"] else None
    engine = _engine()
    changes = {
        "memory": o.parse_memory(v["memory"]) if v["memory"] else None,
        "memory_swap": (-1 if v["memory_swap"] == "-1" else o.parse_size(v["memory_swap"], "--memory-swap")) if v["memory_swap"] else None,
        "memory_reservation": o.parse_size(v["memory_reservation"], "--memory-reservation") if v["memory_reservation"] else None,
        "cpus": cpus, "cpu_shares": v["cpu_shares"], "cpuset_cpus": v["cpuset_cpus"],
        "cpuset_mems": v["cpuset_mems"], "pids_limit": v["pids_limit"],
    }
    return each(args, lambda ref: stats.update(engine, ref, {k: x for k, x in changes.items() if x is not None}))


# -- the command table -----------------------------------------------------------------------------

_TIME = Flag("time", "t", "int", "Seconds to wait before killing the container")
_FORMAT = Flag("format", "f", "str", "Format output using a Go template or json")
_DETACH_KEYS = Flag("detach-keys", kind="str", help="Override the key sequence for detaching")

COMMAND_LIST: tuple[Command, ...] = (
    Command("run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image",
            _run, _RUN_FLAGS, 1, None, interspersed=False),
    Command("create", "create [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container",
            _create, _CREATE_FLAGS, 1, None, interspersed=False),
    Command("start", "start [OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers",
            _start, (Flag("attach", "a", help="Attach STDOUT/STDERR and forward signals"),
                     Flag("interactive", "i", help="Attach container's STDIN"), _DETACH_KEYS), 1),
    Command("stop", "stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
            _stop, (_TIME,), 1),
    Command("restart", "restart [OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers",
            _restart, (_TIME,), 1),
    Command("kill", "kill [OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers",
            _kill, (Flag("signal", "s", "str", "Signal to send to the container"),), 1),
    Command("rm", "rm [OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
            _rm, (Flag("force", "f", help="Force the removal of a running container"),
                  Flag("volumes", "v", help="Remove anonymous volumes associated with the container")), 1,
            aliases=("remove",)),
    Command("ps", "ps [OPTIONS]", "List containers", _ps, (
        Flag("all", "a", help="Show all containers (default shows just running)"),
        Flag("quiet", "q", help="Only display container IDs"),
        Flag("filter", "f", "list", "Filter output based on conditions provided"),
        Flag("format", kind="str", help="Format output using a Go template or json"),
        Flag("last", "n", "int", "Show n last created containers"),
        Flag("latest", "l", help="Show the latest created container"),
        Flag("no-trunc", help="Don't truncate output"),
        Flag("size", "s", help="Display total file sizes (not computed)"),
    ), 0, 0, aliases=("ls", "list")),
    Command("inspect", "inspect [OPTIONS] CONTAINER [CONTAINER...]", "Display detailed information on containers",
            _inspect, (_FORMAT, Flag("size", "s", help="Display total file sizes")), 1),
    Command("logs", "logs [OPTIONS] CONTAINER", "Fetch the logs of a container", _logs, (
        Flag("follow", "f", help="Follow log output"),
        Flag("since", kind="str", help="Show logs since timestamp or relative (e.g. 42m)"),
        Flag("until", kind="str", help="Show logs before a timestamp or relative"),
        Flag("tail", "n", "str", "Number of lines to show from the end of the logs", default="all"),
        Flag("timestamps", "t", help="Show timestamps"),
        Flag("details", help="Show extra details"),
    ), 1, 1),
    Command("exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container", _exec, (
        Flag("detach", "d", help="Detached mode: run command in the background"),
        Flag("interactive", "i", help="Keep STDIN open even if not attached"),
        Flag("tty", "t", help="Allocate a pseudo-TTY"),
        Flag("env", "e", "list", "Set environment variables"),
        Flag("env-file", kind="list", help="Read in a file of environment variables"),
        Flag("user", "u", "str", "Username or UID (format: <name|uid>[:<group|gid>])"),
        Flag("workdir", "w", "str", "Working directory inside the container"),
        Flag("privileged", help="Give extended privileges to the command"),
        _DETACH_KEYS,
    ), 2, None, interspersed=False),
    Command("attach", "attach [OPTIONS] CONTAINER", "Attach local standard input, output, and error streams",
            _attach, (_DETACH_KEYS, Flag("no-stdin", help="Do not attach STDIN"),
                      Flag("sig-proxy", kind="str", help="Proxy all received signals")), 1, 1),
    Command("wait", "wait CONTAINER [CONTAINER...]", "Block until containers stop, then print their exit codes",
            _wait, (), 1),
    Command("pause", "pause CONTAINER [CONTAINER...]", "Pause all processes within containers", _pause, (), 1),
    Command("unpause", "unpause CONTAINER [CONTAINER...]", "Unpause all processes within containers",
            _unpause, (), 1),
    Command("rename", "rename CONTAINER NEW_NAME", "Rename a container", _rename, (), 2, 2),
    Command("cp", "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n        corral cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
            "Copy files/folders between a container and the local filesystem", _cp,
            (Flag("archive", "a", help="Archive mode (copy all uid/gid information)"),
             Flag("follow-link", "L", help="Always follow symbol link in SRC_PATH")), 2, 2),
    Command("diff", "diff CONTAINER", "Inspect changes to files or directories on a container's filesystem",
            _diff, (), 1, 1),
    Command("export", "export [OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive", _export,
            (Flag("output", "o", "str", "Write to a file, instead of STDOUT"),), 1, 1),
    Command("commit", "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]", "Create a new image from a container's changes",
            _commit, (Flag("change", "c", "list", "Apply Dockerfile instruction to the created image"),
                      Flag("message", "m", "str", "Commit message"),
                      Flag("author", "a", "str", "Author"),
                      Flag("pause", "p", "str", "Pause container during commit", default="true")), 1, 2),
    Command("top", "top CONTAINER [ps OPTIONS]", "Display the running processes of a container", _top, (),
            1, None, interspersed=False),
    Command("stats", "stats [OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics",
            _stats, (Flag("all", "a", help="Show all containers (default shows just running)"),
                     Flag("no-stream", help="Disable streaming stats and only pull the first result"),
                     Flag("no-trunc", help="Do not truncate output"), _FORMAT)),
    Command("update", "update [OPTIONS] CONTAINER [CONTAINER...]", "Update configuration of one or more containers",
            _update, (Flag("memory", "m", "str", "Memory limit"), Flag("memory-swap", kind="str", help="Swap limit"),
                      Flag("memory-reservation", kind="str", help="Memory soft limit"),
                      Flag("cpus", kind="str", help="Number of CPUs"), Flag("cpu-shares", "c", "int", "CPU shares"),
                      Flag("cpuset-cpus", kind="str", help="CPUs in which to allow execution"),
                      Flag("cpuset-mems", kind="str", help="MEMs in which to allow execution"),
                      Flag("pids-limit", kind="int", help="Tune container pids limit"),
                      Flag("restart", kind="str", help="Restart policy (only 'no' for now)")), 1),
    Command("prune", "container prune [OPTIONS]", "Remove all stopped containers", _prune,
            (Flag("force", "f", help="Do not prompt for confirmation"),
             Flag("filter", kind="list", help="Provide filter values")), 0, 0),
    Command("cleanup", "container cleanup CONTAINER [CONTAINER...]",
            "Record a container's exit and release what it held (conmon runs this)", _cleanup, (), 1),
)

COMMANDS: dict[str, Command] = {}
for _cmd in COMMAND_LIST:
    COMMANDS[_cmd.name] = _cmd
    for _alias in _cmd.aliases:
        COMMANDS[_alias] = _cmd
# Top-level names (docker's aliases); prune, cleanup, ls and list only under `container`.
TOP_LEVEL = tuple(c.name for c in COMMAND_LIST if c.name not in ("prune", "cleanup"))


def dispatch(argv: Sequence[str]) -> int:
    """Run `argv` (command name first); the exit code, errors printed as one line."""
    name, rest = argv[0], list(argv[1:])
    if name == "container":
        if not rest or rest[0] in ("-h", "--help"):
            print(_container_help())
            return 0
        name, rest = rest[0], rest[1:]
    cmd = COMMANDS.get(name)
    if cmd is None:
        print(f"Error: unknown command \"{name}\" for \"corral container\"", file=sys.stderr)
        return 125
    return execute(cmd, rest, cmd.name)


def _container_help() -> str:
    lines = ["Usage:  corral container COMMAND", "", "Manage containers", "", "Commands:"]
    lines += [f"  {c.name:<10}{c.help}" for c in COMMAND_LIST]
    return "\n".join(lines)


def main(name: str) -> None:
    sys.exit(dispatch([name, *sys.argv[2:]]))


def __getattr__(attr: str) -> Any:
    """`<name>_command`: the command as a click command, for corral.cli.main's lazy table."""
    if not attr.endswith("_command"):
        raise AttributeError(attr)
    name = attr.removesuffix("_command")
    import click

    help_text = "Manage containers" if name == "container" else COMMANDS[name].help

    def callback(args: tuple[str, ...]) -> None:
        sys.exit(dispatch([name, *args]))

    return click.Command(
        name, callback=callback, help=help_text, add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                          "allow_interspersed_args": False},
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
    )

