"""The container lifecycle: create, start, stop, kill, pause, remove, wait, cleanup.

    create ──> CREATED ──start──> RUNNING ──(exit / stop / kill)──> EXITED ──start──> RUNNING
                  │                 │  ▲                                 │
                  │               pause unpause                          │
                  │                 ▼  │                                 │
                  └─────rm──────  PAUSED                  rm <───────────┘   (rm -f: any state)

The stored `state` is what corral last did; the live `Status` is derived (`observe`): conmon's
exit file, the init pid and its start time, the boot id. So a container whose machine rebooted
or whose monitor died is reported as it really is, and every verb checks a `can_*` guard on the
derived status first. Each verb holds the container's flock; SQLite serializes the records.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping

from corral import fsutil
from corral.config import Paths
from corral.containers import monitor, mounts, names, networking, ociruntime, specgen, state
from corral.containers.options import MountSpec, RunOptions
from corral.containers.state import Observed, Status, guard
from corral.containers.store import Record, Store, now
from corral.errors import AlreadyExists, Conflict, CorralError, InvalidArgument, NotFound
from corral.runtime import jsonio as json  # json's C encoder and scanner, without `re`

TYPE_CHECKING = False  # not typing's: `corral run` does not import typing
if TYPE_CHECKING:
    import _socket
    from typing import Any

    from corral.containers.volumes import Volumes
    from corral.images.service import Image, ImageService

BUSYBOX = "docker.io/library/busybox:latest"
_SIGNALS = {"KILL": 9, "TERM": 15, "INT": 2, "HUP": 1, "QUIT": 3, "USR1": 10, "USR2": 12, "STOP": 19}


class Containers:
    """The engine's containers: every verb the CLI and the Python API offer."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.store = Store(paths)
        self._images: ImageService | None = None
        self._volumes: Volumes | None = None
        self._claims: dict[str, int] = {}  # container id -> flock'd bundle fd (see _exit_command)

    @property
    def images(self) -> ImageService:
        if self._images is None:
            from corral.images.service import ImageService

            self._images = ImageService(self.paths, self.store.conn)
        return self._images

    @property
    def volumes(self) -> Volumes:
        if self._volumes is None:
            from corral.containers.volumes import Volumes

            self._volumes = Volumes(self.paths, self.store.conn)
        return self._volumes

    # -- observing -----------------------------------------------------------------------------
    def observe(self, rec: Record) -> Observed:
        return state.observe(self.store, rec)

    def get(self, ref: str) -> tuple[Record, Observed]:
        rec = self.store.get(ref)
        return rec, self.observe(rec)

    def all(self) -> list[tuple[Record, Observed]]:
        self.reap_interrupted()
        return [(r, self.observe(r)) for r in self.store.all()]

    @contextlib.contextmanager
    def locked(self, ref: str) -> Iterator[Record]:
        rec = self.store.get(ref)
        with self.store.locked(rec.id):
            fresh = self.store.find(rec.id)
            if fresh is None:
                raise NotFound(f"No such container: {ref}")
            yield fresh

    # -- create --------------------------------------------------------------------------------
    def create(self, opts: RunOptions, *, starting: bool = False) -> Record:
        """A new container, ready to start; `starting`: the caller starts it right away
        (`run`), so what start needs is begun early."""
        validate(opts)
        if opts.cidfile and os.path.exists(opts.cidfile):
            raise AlreadyExists(f"container ID file found, make sure the other container isn't running or delete {opts.cidfile}")
        image = self.resolve_image(opts.image, opts.pull, opts.platform)
        runtime_name = ociruntime.configured_name(opts.runtime)
        ociruntime.find(runtime_name, self.paths.runroot)  # refused now, before anything is made
        cid = os.urandom(32).hex()  # what secrets.token_hex does, without its imports
        # The lock is held from before the record exists until it is complete: a `creating`
        # record whose lock is free was left by a killed command (see reap_interrupted).
        with self.store.locked(cid):
            # the name as given (a path stays a path), so every later verb finds the same binary
            rec = self._insert(cid, opts, image, runtime_name)
            if starting:
                networking.setup_early(self.paths, cid, rec.network)
            try:
                rec = self._prepare(rec, opts, image)
                if opts.cidfile:
                    fsutil.atomic_write(opts.cidfile, rec.id.encode())
            except BaseException:
                self._destroy(rec, anonymous_volumes=True)
                raise
        return rec

    def reap_interrupted(self) -> None:
        """Remove what a `create` killed half-way left (a `creating` record nobody holds)."""
        for rec in self.store.all():
            if rec.state == "creating":
                with self.store.lock_if_free(rec.id) as free:
                    if free:
                        self._destroy(rec, anonymous_volumes=True)

    def resolve_image(self, ref: str, pull: str = "missing", platform: str | None = None) -> Image:
        """The image to run, pulled per docker's --pull policy (the built-in busybox needs no
        registry), and checked against --platform."""
        if pull not in ("missing", "always", "never"):
            raise InvalidArgument(f"invalid --pull value {pull!r}: use missing, always or never")
        from corral.images import reference

        wanted = _platform(platform) if platform else None
        image = None
        if pull != "always":
            try:
                image = self.images.get(ref)
            except NotFound:
                if pull == "never":
                    raise
        if image is None:
            full = str(reference.parse(ref))
            image = self.images.ensure_builtin_busybox() if full == BUSYBOX else self._pull(full, wanted)
        if wanted is not None:
            have = _platform("/".join(filter(None, (image.config.get("os", "linux"),
                                                         image.config.get("architecture", ""),
                                                         image.config.get("variant", "")))))
            if (have.os, have.architecture) != (wanted.os, wanted.architecture):
                raise InvalidArgument(f"image {ref} is for {have}, not the requested platform {wanted}")
        return image

    def _pull(self, ref: str, platform: Any) -> Image:
        try:
            from corral.images.registry import transfer
        except ImportError:
            raise NotFound(f"Unable to find image '{ref}' locally, and pulling is not available") from None
        try:
            return transfer.pull(self.images, ref, platform=platform).image
        except CorralError as e:
            raise NotFound(f"Unable to find image '{ref}' locally; pulling it failed: {e}") from e

    def _insert(self, cid: str, opts: RunOptions, image: Image, runtime: str) -> Record:
        if opts.name is not None and not names.valid(opts.name):
            raise InvalidArgument(f"invalid container name {opts.name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        cfg = image.config.get("config") or {}
        for attempt in range(10):
            rec = Record(
                id=cid,
                name=(opts.name or names.generate(attempt)).removeprefix("/"),
                image_id=image.id,
                image_name=opts.image,
                created=now(),
                options=opts.to_json(),
                runtime=runtime,
                state="creating",
                network=networking.mode_of(opts),
                stop_signal=opts.stop_signal or cfg.get("StopSignal") or "SIGTERM",
                stop_timeout=opts.stop_timeout if opts.stop_timeout is not None else 10,
            )
            try:
                self.store.insert(rec)
                return rec
            except AlreadyExists:
                if opts.name is not None:
                    raise
        raise AlreadyExists("could not generate a unique container name")

    def _prepare(self, rec: Record, opts: RunOptions, image: Image) -> Record:
        """Rootfs, volumes, /etc files and config.json: everything the runtime will need."""
        d = self.store.dir(rec.id)
        rootfs = self.store.rootfs(rec.id)
        os.makedirs(d, exist_ok=True)
        self._mount_rootfs(rec, image)
        cfg = image.config.get("config") or {}
        plan = networking.prepare(self.paths, rec.id, rec.name, opts, cfg)
        etc = plan.etc_files
        resolved, oci_mounts = self._user_mounts(opts, cfg, rootfs)
        opts = opts._replace(mounts=resolved)
        spec = specgen.build(opts, specgen.BundleInputs(
            container_id=rec.id, rootfs=rootfs, image_config=cfg, mounts=oci_mounts,
            etc_files=etc, netns=plan.netns))
        # A --rm container's files go with it: no fsync (one costs ms on a busy disk).
        fsutil.atomic_write(os.path.join(d, "config.json"), json.dumps(spec).encode(),
                            durable=not opts.remove)
        return self.store.update(rec, state="created", options=opts.to_json(),
                                 args=tuple(spec["process"]["args"]))

    def _mount_rootfs(self, rec: Record, image: Image | None = None) -> None:
        """Mount the container's rootfs: the image's layers under the container's upper dir.
        A --rm container's upper dir is thrown away at exit, so its overlay is `volatile`: no
        sync of the whole upper filesystem at unmount (ms, many on a busy disk)."""
        d = self.store.dir(rec.id)
        work = os.path.join(d, "work")
        described = self.images.rootfs_mounts(image or self.images.get(rec.image_id),
                                              os.path.join(d, "upper"), work)
        if rec.options.get("remove"):
            # a volatile mount leaves this marker, which refuses every later mount of the dirs
            fsutil.remove_tree(os.path.join(work, "work", "incompat"))
            described = [m._replace(options=(*m.options, "volatile")) if m.type == "overlay" else m
                         for m in described]
        mounts.mount_all(described, self.store.rootfs(rec.id))

    def _user_mounts(self, opts: RunOptions, image_cfg: Mapping[str, Any],
                     rootfs: str) -> tuple[tuple[MountSpec, ...], list[dict[str, Any]]]:
        """Resolve -v/--mount/--tmpfs and the image's VOLUMEs into OCI mounts."""
        from corral.containers import rootpath

        wanted = list(opts.mounts)
        targets = {os.path.normpath(m.target) for m in wanted}
        for target in image_cfg.get("Volumes") or {}:
            if os.path.normpath(target) not in targets:
                wanted.append(MountSpec("volume", target))
        resolved: list[MountSpec] = []
        oci: list[dict[str, Any]] = []
        for m in wanted:
            flags = ["ro"] if m.readonly else []
            if m.type == "bind":
                if not os.path.exists(m.source):
                    raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not exist: {m.source}")
                oci.append({"destination": m.target, "type": "bind", "source": m.source,
                            "options": ["rbind", m.propagation or "rprivate", *flags]})
            elif m.type == "volume":
                vol = self.volumes.create(m.source or None, anonymous=not m.source, exist_ok=True)
                m = m._replace(source=vol.name)
                rootpath.mkdir_in_root(rootfs, m.target)
                if "nocopy" not in m.options:
                    self.volumes.fill_from(vol, rootfs, m.target)
                oci.append({"destination": m.target, "type": "bind", "source": str(vol.mountpoint),
                            "options": ["rbind", m.propagation or "rprivate", *flags]})
            else:
                extra = [o for o in m.options if o not in ("z", "Z", "U")]
                oci.append({"destination": m.target, "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "nodev", "noexec", *flags, *extra]})
            resolved.append(m)
        return tuple(resolved), oci

    # -- start ---------------------------------------------------------------------------------
    def start(self, ref: str, *, attach: bool = False) -> tuple[Record, _socket.socket | None]:
        """Start a created or exited container; with `attach`, the attach socket is connected
        before the program runs, so no output is lost."""
        with self.locked(ref) as rec:
            observed = self.observe(rec)
            if observed.status is Status.RUNNING and not attach:
                return rec, None
            if rec.state == "creating":  # we hold its lock: the command creating it died
                raise Conflict(f"container {rec.id[:12]} was never completely created "
                               "(its create was interrupted): remove it")
            guard(rec, observed, observed.status.can_start(), "start")
            if rec.state != "created":
                rec = self._finish(rec, observed)
            elif os.path.exists(self.store.bundle(rec.id)):  # a start that was killed half-way
                self._teardown(rec, ociruntime.find(rec.runtime, self.paths.runroot))
            return self._start(rec, attach)

    def _start(self, rec: Record, attach: bool) -> tuple[Record, _socket.socket | None]:
        opts = RunOptions.from_json(rec.options)
        runtime = ociruntime.find(rec.runtime, self.paths.runroot)
        bundle = self.store.bundle(rec.id)
        rootfs = self.store.rootfs(rec.id)
        fsutil.remove_tree(bundle)
        os.makedirs(bundle)
        if attach:
            self._claims[rec.id] = _claim(bundle)
        os.symlink(os.path.join(self.store.dir(rec.id), "config.json"), os.path.join(bundle, "config.json"))
        if not mounts.is_mounted(rootfs):
            self._mount_rootfs(rec)
        network = networking.setup(self.paths, rec.id, rec.network)

        def meanwhile() -> None:  # while conmon and the runtime create it: what comes next
            runtime.preload()
            if attach:
                from corral.containers import attach as attaching  # noqa: F401

        try:
            pid, conmon_pid = monitor.launch(monitor.Launch(
                container_id=rec.id, name=rec.name, bundle=bundle, runtime=runtime,
                log_path=self.store.log_path(rec.id), exit_command=self._exit_command(rec.id, bundle),
                tty=opts.tty, stdin=opts.interactive, keep_stdin=opts.detach or opts.tty,
                log=opts.log_driver != "none"), while_waiting=meanwhile)
        except monitor.CreateFailed as e:
            # conmon would now run the exit command, which waits for the lock we hold.
            with contextlib.suppress(ProcessLookupError):
                os.kill(monitor.conmon_pid(bundle), 9)
            self._teardown(rec, runtime)
            with open(os.path.join(self.store.dir(rec.id), "config.json"), "rb") as f:
                args = json.loads(f.read())["process"]["args"]
            raise ociruntime.start_error(str(e), args) from None
        sock = None
        try:
            if attach:
                from corral.containers import attach as attaching

                sock = attaching.connect(bundle)
            network.wait()
            runtime.start(rec.id)
        except BaseException:
            if sock is not None:
                sock.close()
            runtime.kill(rec.id, "KILL", all_processes=True)
            monitor.wait_exit(bundle, pid, timeout=5)
            self._teardown(rec._replace(conmon_pid=conmon_pid), runtime)
            self.store.update(rec, state="created", pid=0)
            raise
        # Recorded once the program runs: a command killed before that leaves a container that
        # says what it is (created, or exited when it was a restart), and that `start` tears
        # down and starts again; never one that says running while its init waits for a start
        # that will not come. (An exit command meanwhile waits for the container's lock.)
        rec = self.store.update(rec, state="running", pid=pid, pid_start=monitor.start_time(pid),
                                conmon_pid=conmon_pid, boot_id=monitor.boot_id(), started_at=now(),
                                finished_at=0.0, exit_code=0, oom_killed=False, error="")
        return rec, sock

    def _exit_command(self, cid: str, bundle: str) -> list[str]:
        """What conmon runs when the program exits: `corral container cleanup <id>`, as the
        light module entry, with this engine's paths so it finds the same store.

        An attached CLI (`run`, `start -a`) holds a flock on the bundle directory until it has
        cleaned up (or dies): the exit command waits for that lock in sh + flock(1), then runs
        the Python cleanup only if the bundle is still there. So on the foreground path no
        second interpreter competes with the CLI, and a killed CLI still gets its cleanup."""
        import corral

        # -I -S: no site (and its .pth files) on every container exit; the package is found by path.
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(corral.__file__)))
        cleanup = [sys.executable, "-I", "-S", "-c",
                   f"import sys; sys.path.insert(0, {package_parent!r}); "
                   "from corral.containers.cleanup import main; sys.exit(main(sys.argv[1:]))",
                   "--root", self.paths.root, "--runroot", self.paths.runroot, cid]
        # $0 is the bundle; a bundle already gone (torn down) ends it without a sound.
        wait = '{ flock 9 && [ -d "$0" ] && exec "$@" 9<&-; } 2>/dev/null 9<"$0"; exit 0'
        return ["/bin/sh", "-c", wait, bundle, *cleanup]

    # -- stop / kill / pause -------------------------------------------------------------------
    def stop(self, ref: str, timeout: int | None = None) -> Record:
        """The stop signal, then SIGKILL after `timeout` seconds; returns once it is cleaned up."""
        with self.locked(ref) as rec:
            observed = self.observe(rec)
            if observed.alive:
                runtime = ociruntime.find(rec.runtime, self.paths.runroot)
                wait = rec.stop_timeout if timeout is None else timeout
                runtime.kill(rec.id, _signal_name(rec.stop_signal))
                if observed.status is Status.PAUSED:
                    runtime.resume(rec.id)
                if not self._wait_dead(rec, wait):
                    runtime.kill(rec.id, "KILL", all_processes=True)
                    self._wait_dead(rec, 10)
                observed = self.observe(rec)
            if rec.state in ("running", "paused") and not observed.alive:
                rec = self._finish(rec, observed, remove=bool(rec.options.get("remove")))
            return rec

    def _wait_dead(self, rec: Record, timeout: float) -> bool:
        monitor.wait_exit(self.store.bundle(rec.id), rec.pid, timeout=timeout)
        return not (monitor.alive(rec.pid) and monitor.start_time(rec.pid) == rec.pid_start)

    def kill(self, ref: str, signal: str = "KILL") -> Record:
        rec, observed = self.get(ref)
        guard(rec, observed, observed.status.can_signal(), "kill")
        runtime = ociruntime.find(rec.runtime, self.paths.runroot)
        if not runtime.kill(rec.id, _signal_name(signal)):
            raise CorralError(f"cannot kill container {rec.id[:12]}: the runtime does not know it")
        return rec

    def pause(self, ref: str) -> None:
        with self.locked(ref) as rec:
            observed = self.observe(rec)
            guard(rec, observed, observed.status.can_pause(), "pause")
            ociruntime.find(rec.runtime, self.paths.runroot).pause(rec.id)
            self.store.update(rec, state="paused")

    def unpause(self, ref: str) -> None:
        with self.locked(ref) as rec:
            observed = self.observe(rec)
            guard(rec, observed, observed.status.can_unpause(), "unpause")
            ociruntime.find(rec.runtime, self.paths.runroot).resume(rec.id)
            self.store.update(rec, state="running")

    def restart(self, ref: str, timeout: int | None = None) -> Record:
        self.stop(ref, timeout)
        return self.start(ref)[0]

    def rename(self, ref: str, new_name: str) -> None:
        if not names.valid(new_name):
            raise InvalidArgument(f"invalid container name {new_name!r}")
        with self.locked(ref) as rec:
            rec = self.store.rename(rec, new_name.removeprefix("/"))
            networking.rename(self.paths, rec.id, rec.network, rec.name)

    # -- wait / cleanup / remove ---------------------------------------------------------------
    def wait(self, ref: str) -> int:
        """Block until the container exits; its exit code. A container that was created but
        never started is waited for until it is started and exits (Docker's), or removed."""
        rec, observed = self.get(ref)
        while observed.status is Status.CREATED:
            time.sleep(0.05)  # a start is rare and the store has no change notification
            fresh = self.store.find(rec.id)
            if fresh is None:
                raise NotFound(f"container {rec.id[:12]} was removed before it ran")
            rec, observed = fresh, self.observe(fresh)
        if observed.alive:
            status = monitor.wait_exit(self.store.bundle(rec.id), rec.pid)
            if status is not None:
                return status[0]
            fresh = self.store.find(rec.id)
            observed = self.observe(fresh) if fresh else observed
        return observed.exit_code

    def cleanup(self, cid: str) -> None:
        """After the program exited: release the runtime, the rootfs mount and the network,
        record the exit, and honour --rm. Idempotent; conmon's exit command calls it."""
        rec = self.store.find(cid)
        if rec is None:
            return
        with self.store.locked(cid):
            rec = self.store.find(cid)
            if rec is None or rec.state not in ("running", "paused"):
                return
            observed = self.observe(rec)
            if observed.alive:
                return
            self._finish(rec, observed, remove=bool(rec.options.get("remove")))

    def _finish(self, rec: Record, observed: Observed, *, remove: bool = False) -> Record:
        """Record the exit (first: readers must never see a half-torn-down running container),
        then take down what the running container held; with `remove` (--rm) the container
        is forgotten meanwhile, while the runtime deletes its state and cgroups."""
        rec = self.store.update(rec, state="exited", exit_code=observed.exit_code,
                                oom_killed=observed.oom_killed, error=observed.error,
                                finished_at=observed.finished_at or now())
        runtime = ociruntime.find(rec.runtime, self.paths.runroot)
        if remove:  # the rootfs is unmounted with the discarded directory, in the background
            self._teardown(rec, runtime, meanwhile=lambda: self._forget(rec, anonymous_volumes=True),
                           unmount=False)
        else:
            self._teardown(rec, runtime)
        return rec

    def _teardown(self, rec: Record, runtime: ociruntime.Runtime,
                  meanwhile: Callable[[], None] | None = None, *, unmount: bool = True) -> None:
        """Take down what a started container held; `meanwhile` runs while the runtime
        deletes the container (its cgroups: ms of kernel time) in a child process. `unmount`
        False: the caller discards the container's directory, which unmounts its rootfs."""
        bundle = self.store.bundle(rec.id)
        deleting = runtime.delete(rec.id) if os.path.exists(bundle) else None
        try:
            if unmount:
                mounts.unmount(self.store.rootfs(rec.id))
            networking.teardown(self.paths, rec.id, rec.network)
            if meanwhile is not None:
                meanwhile()
        finally:
            if deleting is not None:
                deleting.result(check=False)
        if deleting is not None:
            conmon = rec.conmon_pid or monitor.conmon_pid(bundle)
            if monitor.alive(conmon) and monitor.exit_status(bundle) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(conmon, 9)
            fsutil.remove_tree(bundle)
        claim = self._claims.pop(rec.id, None)
        if claim is not None:  # the exit command waiting on it finds the bundle gone
            os.close(claim)

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> Record:
        with self.locked(ref) as rec:
            observed = self.observe(rec)
            if not observed.status.can_remove(force):
                raise Conflict(
                    f"cannot remove container {rec.id[:12]}: it is {observed.status.value}; "
                    "stop it first or use --force")
            if observed.alive:
                runtime = ociruntime.find(rec.runtime, self.paths.runroot)
                runtime.kill(rec.id, "KILL", all_processes=True)
                if observed.status is Status.PAUSED:
                    runtime.resume(rec.id)
                self._wait_dead(rec, 10)
            self._destroy(rec, anonymous_volumes=volumes)
            return rec

    def _destroy(self, rec: Record, *, anonymous_volumes: bool) -> None:
        """Remove every trace of the container; safe on a half-made one."""
        with contextlib.suppress(CorralError):
            self._teardown(rec, ociruntime.find(rec.runtime, self.paths.runroot))
        self._forget(rec, anonymous_volumes=anonymous_volumes)

    def _forget(self, rec: Record, *, anonymous_volumes: bool) -> None:
        """The container's record, files, network and (anonymous) volumes: gone."""
        networking.release(self.paths, rec.id, rec.network)
        _discard(self.store.dir(rec.id), os.path.join(self.paths.root, "trash"))
        self.store.delete(rec.id)
        if anonymous_volumes:
            for m in rec.options.get("mounts", ()):
                if m["type"] == "volume" and m["source"]:
                    with contextlib.suppress(NotFound):
                        vol = self.volumes.get(m["source"])
                        if vol.anonymous:
                            self.volumes.remove(vol.name, users=[])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.store.lock_path(rec.id))

    def prune(self) -> list[str]:
        removed = []
        for rec, observed in self.all():
            if observed.status in (Status.EXITED, Status.CREATED):
                with contextlib.suppress(NotFound, Conflict):
                    self.remove(rec.id)
                    removed.append(rec.id)
        return removed

    def volume_users(self, name: str) -> list[str]:
        return [r.name for r in self.store.all()
                if any(m["type"] == "volume" and m["source"] == name for m in r.options.get("mounts", ()))]

    @contextlib.contextmanager
    def mounted_rootfs(self, rec: Record) -> Iterator[str]:
        """The container's root filesystem, mounted for the duration if it is not already."""
        rootfs = self.store.rootfs(rec.id)
        if mounts.is_mounted(rootfs):
            yield rootfs
            return
        with self.store.locked(rec.id):
            self._mount_rootfs(rec)
            try:
                yield rootfs
            finally:
                mounts.unmount(rootfs)


def validate(opts: RunOptions) -> None:
    """Refuse what corral does not do yet, loudly, before touching anything."""
    if opts.restart not in ("no", ""):
        raise InvalidArgument(
            f"--restart={opts.restart} is not supported yet: restart policies come in a later release")
    if opts.log_driver not in ("k8s-file", "json-file", "none"):
        raise InvalidArgument(f"unsupported log driver {opts.log_driver!r}: use k8s-file, json-file or none")
    if opts.remove and opts.restart not in ("no", ""):
        raise InvalidArgument("conflicting options: --restart and --rm")
    specgen.validate_security_opts(opts)


def _platform(text: str) -> Any:
    """`--platform`'s parser, imported only when used: manifest's dataclasses and the `platform`
    module cost every plain `run` ~7 ms."""
    from corral.images.manifest import Platform

    return Platform.parse(text)


def _signal_name(sig: str) -> str:
    """Docker accepts SIGTERM, TERM, 15; runtimes accept the name without SIG or the number."""
    name = sig.upper().removeprefix("SIG")
    if name.isdigit() or name in _SIGNALS:
        return name
    import signal

    if hasattr(signal, f"SIG{name}"):
        return name
    raise InvalidArgument(f"invalid signal: {sig}")


def _claim(bundle: str) -> int:
    """Hold the bundle directory's flock: this process will clean up after the program."""
    import fcntl

    fd = os.open(bundle, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _discard(directory: str, trash: str) -> None:
    """Remove a container's directory without making the caller wait: rename it into the trash
    (atomic, so the store never shows half of it; a rootfs mounted in it moves along), then
    unmount that rootfs (umount waits for an RCU grace period: ~2 ms) and delete the directory
    in a detached grandchild (unlinking an overlay upper dir file by file costs tens of ms)."""
    os.makedirs(trash, exist_ok=True)
    target = os.path.join(trash, f"{os.path.basename(directory)}-{os.urandom(4).hex()}")
    try:
        os.rename(directory, target)
    except FileNotFoundError:
        return
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setsid()
            if os.fork() == 0:  # rm(1), not shutil: no imports beside the CLI's exit
                with contextlib.suppress(OSError):
                    mounts.unmount(os.path.join(target, "rootfs"))
                os.execv("/bin/rm", ["rm", "-rf", "--one-file-system", target])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
