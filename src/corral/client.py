"""corral's Python API in docker-py's shape: `corral.Client().containers.run("busybox", "echo hi")`.

    client = corral.Client()            # or corral.from_env()
    c = client.containers.run("busybox", "sleep 60", detach=True, name="web", mem_limit="64m")
    c.exec_run("hostname")              -> ExecResult(exit_code=0, output=b"...")
    c.logs(); c.stop(); c.wait(); c.remove(); client.containers.list(all=True)
    client.images.get("busybox"); client.volumes.create("data")

The collections hold no logic of their own: they translate docker-py's keyword arguments into
`RunOptions` and call the same library (`corral.containers`) that the CLI calls.
"""

from __future__ import annotations

import io
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from corral.config import Paths, paths
from corral.containers import options as o
from corral.containers.lifecycle import Containers
from corral.containers.options import RunOptions
from corral.errors import CorralError, InvalidArgument

__all__ = ["Client", "Container", "ContainerError", "ExecResult", "from_env"]


class ExecResult(NamedTuple):
    exit_code: int
    output: bytes


class ContainerError(CorralError):
    """`containers.run` (not detached) of a program that exited non-zero, like docker-py's."""

    def __init__(self, container: Container, exit_status: int, command: Sequence[str], stderr: bytes) -> None:
        super().__init__(f"Command '{' '.join(command)}' in image '{container.image}' returned "
                         f"non-zero exit status {exit_status}: {stderr.decode(errors='replace').strip()}")
        self.container = container
        self.exit_status = exit_status
        self.stderr = stderr


class Container:
    """One container; `attrs` is its `inspect` document, refreshed by `reload()`."""

    def __init__(self, engine: Containers, cid: str) -> None:
        self._engine = engine
        self.id = cid
        self.attrs: dict[str, Any] = {}
        self.reload()

    def __repr__(self) -> str:
        return f"<Container: {self.short_id}>"

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def name(self) -> str:
        return str(self.attrs["Name"]).lstrip("/")

    @property
    def status(self) -> str:
        return str(self.attrs["State"]["Status"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.attrs["Config"]["Labels"])

    @property
    def image(self) -> str:
        return str(self.attrs["Config"]["Image"])

    def reload(self) -> None:
        from corral.containers.inspect import inspect

        self.attrs = inspect(self._engine, *self._engine.get(self.id))

    def start(self) -> None:
        self._engine.start(self.id)
        self.reload()

    def stop(self, timeout: int | None = None) -> None:
        self._engine.stop(self.id, timeout)
        self.reload()

    def restart(self, timeout: int | None = None) -> None:
        self._engine.restart(self.id, timeout)
        self.reload()

    def kill(self, signal: str | int = "KILL") -> None:
        self._engine.kill(self.id, str(signal))

    def pause(self) -> None:
        self._engine.pause(self.id)

    def unpause(self) -> None:
        self._engine.unpause(self.id)

    def rename(self, name: str) -> None:
        self._engine.rename(self.id, name)
        self.reload()

    def remove(self, *, force: bool = False, v: bool = False) -> None:
        self._engine.remove(self.id, force=force, volumes=v)

    def wait(self) -> dict[str, Any]:
        code = self._engine.wait(self.id)
        return {"StatusCode": code, "Error": None}

    def logs(self, *, stdout: bool = True, stderr: bool = True, timestamps: bool = False,
             tail: int | str = "all", since: str | None = None, until: str | None = None) -> bytes:
        from corral.containers import logs

        rec = self._engine.store.get(self.id)
        wanted = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
        return b"".join(logs.collect(self._engine, rec, streams=wanted, timestamps=timestamps,
                                     tail=str(tail), since=since, until=until))

    def exec_run(self, cmd: str | Sequence[str], *, environment: Mapping[str, str] | Sequence[str] | None = None,
                 user: str | None = None, workdir: str | None = None, privileged: bool = False,
                 detach: bool = False, tty: bool = False) -> ExecResult:
        from corral.containers import exec as execution

        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        env = _env_list(environment)
        if detach:
            code = execution.run(self._engine.paths, self.id, argv, detach=True, env=env, user=user,
                                 workdir=workdir, privileged=privileged)
            return ExecResult(code, b"")
        code, output = execution.capture(self._engine.paths, self.id, argv, env=env, user=user,
                                         workdir=workdir, privileged=privileged, tty=tty)
        return ExecResult(code, output)

    def top(self, ps_args: str = "-ef") -> dict[str, Any]:
        from corral.containers import stats

        lines = stats.top(self._engine, self.id, ps_args.split()).splitlines()
        titles = lines[0].split()
        return {"Titles": titles,
                "Processes": [line.split(None, len(titles) - 1) for line in lines[1:]]}

    def diff(self) -> list[dict[str, Any]]:
        from corral.containers import commit

        kinds = {"C": 0, "A": 1, "D": 2}
        return [{"Path": path, "Kind": kinds[kind]}
                for kind, path in commit.diff(self._engine, self._engine.store.get(self.id))]

    def commit(self, repository: str | None = None, tag: str | None = None, *, message: str = "",
               author: str = "", changes: str | Sequence[str] | None = None) -> Any:
        from corral.containers import commit

        ref = f"{repository}:{tag}" if repository and tag else repository
        change_list = [changes] if isinstance(changes, str) else list(changes or [])
        return commit.commit(self._engine, self._engine.store.get(self.id), ref,
                             changes=change_list, message=message, author=author)

    def put_archive(self, path: str, data: bytes) -> bool:
        import tarfile

        from corral.containers import cp

        rec = self._engine.store.get(self.id)
        with cp.container_root(self._engine, rec) as root, tarfile.open(fileobj=io.BytesIO(data)) as tar:
            cp.extract(tar, root, path, keep_owner=True)
        return True


class ContainerCollection:
    def __init__(self, engine: Containers) -> None:
        self.engine = engine

    def create(self, image: str, command: str | Sequence[str] | None = None, **kwargs: Any) -> Container:
        rec = self.engine.create(options_from_kwargs(image, command, kwargs))
        return Container(self.engine, rec.id)

    def run(self, image: str, command: str | Sequence[str] | None = None, *, detach: bool = False,
            stdout: bool = True, stderr: bool = False, remove: bool = False, **kwargs: Any) -> Container | bytes:
        """docker-py's run: a Container when detached, else the program's output (raising
        ContainerError when it exits non-zero)."""
        container = self.create(image, command, **kwargs)
        try:
            container.start()
        except BaseException:
            container.remove(force=True, v=True)
            raise
        if detach:
            if remove or kwargs.get("auto_remove"):
                raise InvalidArgument("remove=True with detach=True: use auto_remove=True")
            return container
        code = container.wait()["StatusCode"]
        output = container.logs(stdout=stdout, stderr=stderr)
        err = container.logs(stdout=False, stderr=True) if code != 0 else b""
        container.reload()
        if remove or kwargs.get("auto_remove"):
            container.remove(force=True, v=True)
        if code != 0:
            command_line = [container.attrs["Path"], *container.attrs["Args"]]
            raise ContainerError(container, code, command_line, err)
        return output

    def get(self, container_id: str) -> Container:
        return Container(self.engine, self.engine.store.get(container_id).id)

    def list(self, all: bool = False, filters: Mapping[str, Any] | None = None,
             limit: int = -1) -> list[Container]:
        found = []
        for rec, observed in self.engine.all():
            if not all and not observed.alive:
                continue
            if filters and not _filters_match(rec, observed, filters):
                continue
            found.append(Container(self.engine, rec.id))
        return found[:limit] if limit >= 0 else found

    def prune(self) -> dict[str, Any]:
        return {"ContainersDeleted": self.engine.prune(), "SpaceReclaimed": 0}


def _filters_match(rec: Any, observed: Any, filters: Mapping[str, Any]) -> bool:
    for key, value in filters.items():
        values = value if isinstance(value, list) else [value]
        if key == "status" and observed.status.value not in values:
            return False
        if key == "name" and not any(v in rec.name for v in values):
            return False
        if key == "label":
            labels = rec.options.get("labels") or {}
            for v in values:
                k, sep, want = str(v).partition("=")
                if k not in labels or (sep and labels[k] != want):
                    return False
    return True


class ImageCollection:
    """The local images (a thin view of corral.images.service.ImageService)."""

    def __init__(self, engine: Containers) -> None:
        self.engine = engine

    def get(self, name: str) -> Any:
        return self.engine.images.get(name)

    def list(self) -> list[Any]:
        return self.engine.images.list()

    def remove(self, image: str, force: bool = False) -> Any:
        return self.engine.images.remove(image, force=force)

    def pull(self, repository: str, tag: str | None = None) -> Any:
        return self.engine.resolve_image(f"{repository}:{tag}" if tag else repository, "always")


class VolumeCollection:
    def __init__(self, engine: Containers) -> None:
        self.engine = engine

    def create(self, name: str | None = None, labels: Mapping[str, str] | None = None, **_: Any) -> Any:
        return self.engine.volumes.create(name, dict(labels or {}), exist_ok=name is not None)

    def get(self, name: str) -> Any:
        return self.engine.volumes.get(name)

    def list(self) -> list[Any]:
        return self.engine.volumes.all()

    def remove(self, name: str, force: bool = False) -> None:
        self.engine.volumes.remove(name, users=self.engine.volume_users(name), force=force)


class Client:
    """The engine, as docker-py's DockerClient: containers, images, volumes collections."""

    def __init__(self, engine_paths: Paths | None = None) -> None:
        engine = Containers(engine_paths or paths())
        self.containers = ContainerCollection(engine)
        self.images = ImageCollection(engine)
        self.volumes = VolumeCollection(engine)

    def close(self) -> None:
        """Nothing to release: corral has no daemon connection (docker-py compatibility)."""


def from_env() -> Client:
    """The client for CORRAL_ROOT/CORRAL_RUNROOT (docker-py's docker.from_env)."""
    return Client()


def _env_list(environment: Mapping[str, str] | Sequence[str] | None) -> list[str]:
    if environment is None:
        return []
    if isinstance(environment, Mapping):
        return [f"{k}={v}" for k, v in environment.items()]
    return list(environment)


def _volumes(volumes: Mapping[str, Any] | Iterable[str] | None) -> list[o.MountSpec]:
    """docker-py's `volumes`: {"name-or-path": {"bind": "/in", "mode": "ro"}} or ["a:/b:ro"]."""
    if volumes is None:
        return []
    if isinstance(volumes, Mapping):
        specs = []
        for source, how in volumes.items():
            bind, mode = (how, "rw") if isinstance(how, str) else (how["bind"], how.get("mode", "rw"))
            specs.append(o.parse_volume(f"{source}:{bind}:{mode}"))
        return specs
    return [o.parse_volume(v) for v in volumes]


def options_from_kwargs(image: str, command: str | Sequence[str] | None, kw: Mapping[str, Any]) -> RunOptions:
    """docker-py's `containers.create/run` keyword arguments as RunOptions."""
    kw = dict(kw)
    if (kw.pop("restart_policy", None) or {}).get("Name", "no") not in ("no", ""):
        raise InvalidArgument("restart policies are not supported yet: they come in a later release")
    if kw.pop("healthcheck", None):
        raise InvalidArgument("healthchecks are not supported yet: they come in a later release")
    entrypoint = kw.pop("entrypoint", None)
    labels = kw.pop("labels", None) or {}
    extra_hosts = kw.pop("extra_hosts", None) or {}
    mem = kw.pop("mem_limit", None)
    memswap = kw.pop("memswap_limit", None)
    reservation = kw.pop("mem_reservation", None)
    shm = kw.pop("shm_size", None)
    nano_cpus = kw.pop("nano_cpus", None)
    tmpfs = kw.pop("tmpfs", None) or {}
    log_config = kw.pop("log_config", None) or {}
    mounts = [*_volumes(kw.pop("volumes", None)),
              *(o.parse_tmpfs(f"{p}:{opts}" if opts else p) for p, opts in
                (tmpfs.items() if isinstance(tmpfs, Mapping) else ((t, "") for t in tmpfs)))]
    ports = kw.pop("ports", None) or {}
    opts = RunOptions(
        image=image,
        command=tuple(shlex.split(command) if isinstance(command, str) else (command or ())),
        entrypoint=None if entrypoint is None else tuple(shlex.split(entrypoint) if isinstance(entrypoint, str) else entrypoint),
        name=kw.pop("name", None),
        env=tuple(_env_list(kw.pop("environment", None))),
        labels=dict(labels) if isinstance(labels, Mapping) else dict.fromkeys(labels, ""),
        workdir=kw.pop("working_dir", None), user=kw.pop("user", None),
        group_add=tuple(str(g) for g in kw.pop("group_add", None) or ()),
        hostname=kw.pop("hostname", None), tty=bool(kw.pop("tty", False)),
        interactive=bool(kw.pop("stdin_open", False)), remove=bool(kw.pop("auto_remove", False)),
        mounts=tuple(mounts), network=kw.pop("network", None) or kw.pop("network_mode", None),
        publish=tuple(f"{host}:{cport}" if host else str(cport) for cport, host in ports.items()),
        publish_all=bool(kw.pop("publish_all_ports", False)),
        dns=tuple(kw.pop("dns", None) or ()), dns_search=tuple(kw.pop("dns_search", None) or ()),
        dns_options=tuple(kw.pop("dns_opt", None) or ()),
        add_hosts=tuple(f"{h}:{ip}" for h, ip in (extra_hosts.items() if isinstance(extra_hosts, Mapping) else ())),
        read_only=bool(kw.pop("read_only", False)), privileged=bool(kw.pop("privileged", False)),
        cap_add=tuple(kw.pop("cap_add", None) or ()), cap_drop=tuple(kw.pop("cap_drop", None) or ()),
        security_opt=tuple(kw.pop("security_opt", None) or ()),
        memory=o.parse_memory(mem, "mem_limit") if mem is not None else None,
        memory_swap=(-1 if memswap == -1 else o.parse_size(memswap, "memswap_limit")) if memswap is not None else None,
        memory_reservation=o.parse_size(reservation, "mem_reservation") if reservation is not None else None,
        cpus=nano_cpus / 1e9 if nano_cpus else None, cpu_shares=kw.pop("cpu_shares", None),
        cpuset_cpus=kw.pop("cpuset_cpus", None), cpuset_mems=kw.pop("cpuset_mems", None),
        pids_limit=kw.pop("pids_limit", None),
        ulimits=tuple(o.Ulimit(u["name"] if isinstance(u, Mapping) else u.name,
                               u["soft"] if isinstance(u, Mapping) else u.soft,
                               u["hard"] if isinstance(u, Mapping) else u.hard) for u in kw.pop("ulimits", None) or ()),
        init=bool(kw.pop("init", False)), stop_signal=kw.pop("stop_signal", None),
        stop_timeout=kw.pop("stop_timeout", None), userns=kw.pop("userns_mode", None),
        devices=tuple(o.parse_device(d) for d in kw.pop("devices", None) or ()),
        sysctls=dict(kw.pop("sysctls", None) or {}),
        shm_size=o.parse_size(shm, "shm_size") if shm is not None else None,
        log_driver=log_config.get("Type") or log_config.get("type") or "k8s-file",
        platform=kw.pop("platform", None), runtime=kw.pop("runtime", None),
    )
    kw.pop("auto_remove", None)
    if kw:
        raise InvalidArgument(f"unsupported argument(s): {', '.join(sorted(kw))}")
    return opts
