"""OCI bundles and runtime drivers for the black-box runtime tests.

Every conformance test builds one bundle (a busybox root filesystem + a config.json that starts
from `runc spec`) and runs it through each runtime the same way a user or conmon would: the
runtime's binary with its own `--root`. The tests then assert what the container saw, with the
same expectations for corral-runtime, crun and runc.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import corral_bin

# The runtimes every conformance test runs against; scripts/setup installs all of them.
RUNTIMES = ("corral-runtime", "crun", "runc")

RUN_TIMEOUT = 60

# The environment images get (`ctr run --rootfs` containers get none at all).
PATH_ENV = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"


def runtime_binary(name: str) -> str:
    """The binary of a runtime; a missing one fails the test (scripts/setup installs all)."""
    if name == "corral-runtime":
        return corral_bin(name)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not on PATH: run scripts/setup")
    return found


def runc_spec() -> dict[str, Any]:
    """runc's default config.json (`runc spec` writes it into the current directory)."""
    scratch = Path(f"/tmp/corral-spec-{uuid.uuid4().hex}")
    scratch.mkdir()
    try:
        subprocess.run([runtime_binary("runc"), "spec"], cwd=scratch, check=True)
        spec: dict[str, Any] = json.loads((scratch / "config.json").read_text())
        return spec
    finally:
        shutil.rmtree(scratch)


@dataclass
class Bundle:
    """A bundle directory and its config.json, edited in memory and written before each use."""

    path: Path
    config: dict[str, Any]

    @property
    def process(self) -> dict[str, Any]:
        process: dict[str, Any] = self.config["process"]
        return process

    @property
    def linux(self) -> dict[str, Any]:
        linux: dict[str, Any] = self.config["linux"]
        return linux

    def write(self) -> None:
        (self.path / "config.json").write_text(json.dumps(self.config, indent=2))

    def add_mount(self, destination: str, type_: str, source: str, options: Sequence[str]) -> None:
        self.config["mounts"].append(
            {"destination": destination, "type": type_, "source": source, "options": list(options)}
        )


def make_bundle(
    directory: Path, base: dict[str, Any], rootfs: Path, args: Sequence[str]
) -> Bundle:
    """A bundle in `directory` running `args` in `rootfs` (non-terminal, like `runc spec`)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(base)
    config["root"] = {"path": str(rootfs), "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = list(args)
    bundle = Bundle(directory, config)
    bundle.write()
    return bundle


def private_rootfs(pristine: Path, dest: Path) -> Path:
    """A writable copy of the busybox tree (symlinks kept, the binary hard-linked: read-only)."""
    shutil.copytree(pristine, dest, symlinks=True, copy_function=os.link)
    return dest


@dataclass
class Runtime:
    """One OCI runtime binary with a private state root; remembers the ids it was given."""

    name: str
    binary: str
    root: Path
    ids: list[str] = field(default_factory=list)

    def new_id(self) -> str:
        cid = f"cf-{self.name[:5]}-{uuid.uuid4().hex[:12]}"
        self.ids.append(cid)
        return cid

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    def __call__(
        self, *args: str, timeout: float = RUN_TIMEOUT, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("capture_output", True)
        return subprocess.run(self.argv(*args), text=True, timeout=timeout, check=False, **kwargs)

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run a verb that must succeed; the failure shows the runtime's own message."""
        result = self(*args, **kwargs)
        assert result.returncode == 0, (
            f"{self.name} {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
        )
        return result

    def run(self, bundle: Bundle, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """`run` the bundle in the foreground; returns the container's output and exit code."""
        bundle.write()
        return self("run", "--bundle", str(bundle.path), self.new_id(), **kwargs)

    def create(self, bundle: Bundle, *extra: str, stdout: Any = subprocess.DEVNULL) -> str:
        """`create` the bundle; the container's stdout goes to `stdout` (a file or DEVNULL)."""
        bundle.write()
        cid = self.new_id()
        # create's stdio becomes the container's: a file, not a pipe, so that a long-running
        # container does not keep our read end waiting for EOF.
        with tempfile.TemporaryFile("w+") as err:
            result = self("create", "--bundle", str(bundle.path), *extra, cid,
                          stdin=subprocess.DEVNULL, stdout=stdout, stderr=err,
                          capture_output=False)
            err.seek(0)
            assert result.returncode == 0, f"{self.name} create exited {result.returncode}: {err.read()}"
        return cid

    def state(self, cid: str) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.ok("state", cid).stdout)
        return state

    def wait_status(self, cid: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        """Poll `state` until `status`; a container that does not exist yet is waited for too
        (a foreground `run` creates it in the background)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self("state", cid)
            state: dict[str, Any] = json.loads(result.stdout) if result.returncode == 0 else {}
            if state.get("status") == status:
                return state
            assert time.monotonic() < deadline, f"{self.name}: {cid} stayed {state or result.stderr}"
            time.sleep(0.02)

    def cleanup(self) -> None:
        """Force-delete every container this driver made (after a failed test too)."""
        for cid in self.ids:
            if (self.root / cid).exists():
                self("delete", "--force", cid)


@dataclass
class ConsoleSocket:
    """The receiving end of `--console-socket`, as conmon implements it: a listening unix socket
    that gets the pty master as SCM_RIGHTS ancillary data."""

    path: Path
    listener: socket.socket

    @classmethod
    def listen(cls, path: Path) -> ConsoleSocket:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
        listener.settimeout(RUN_TIMEOUT)
        return cls(path, listener)

    def receive_master(self) -> int:
        conn, _ = self.listener.accept()
        with conn:
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
        assert len(fds) == 1, f"expected one fd over the console socket, got {fds}"
        return fds[0]

    def close(self) -> None:
        self.listener.close()


def read_pty(fd: int, until: bytes | None = None, timeout: float = RUN_TIMEOUT) -> bytes:
    """Read a pty master until `until` shows up, or (None) until the slave side hangs up: EIO
    once every slave fd is closed."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (until is None or until not in data):
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def on_a_terminal(argv: list[str], **popen: Any) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Run `argv` with a new pty as its stdin/stdout/stderr, as from a user's terminal; yields
    the process and the pty master, and kills the process if the test left it running."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True, **popen)
    finally:
        os.close(slave)
    try:
        yield proc, master
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)


def unique(prefix: str) -> str:
    """A container name no other test (or xdist worker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def has_exited(pid: int) -> bool:
    """The process is gone or a zombie (exited, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def docker_archive(rootfs: Path, dest: Path, tag: str) -> Path:
    """A one-layer docker-archive of `rootfs`, as `docker save` writes it."""
    staging = dest.parent / "archive"
    staging.mkdir()
    layer = staging / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        tar.add(rootfs, arcname=".")
    diff_id = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "history": [{}]}
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    (staging / config_name).write_bytes(config_bytes)
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]
    (staging / "manifest.json").write_text(json.dumps(manifest))
    with tarfile.open(dest, "w") as tar:
        for name in ("manifest.json", config_name, "layer.tar"):
            tar.add(staging / name, arcname=name)
    shutil.rmtree(staging)
    return dest


@contextlib.contextmanager
def private_daemon(argv: list[str], log: Path, ready: Callable[[], bool]) -> Iterator[None]:
    """Run a daemon (containerd, dockerd) for the session: wait until `ready()`, and stop it with
    SIGTERM (SIGKILL after 20 s) at the end. Its output goes to `log`, shown if it dies early."""
    with open(log, "w") as out:
        daemon = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not ready():
            assert daemon.poll() is None, f"{argv[0]} exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"{argv[0]} did not come up: {log.read_text()}"
            time.sleep(0.05)
        yield
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def remove_parent_cgroups(name: str) -> None:
    """rmdir /sys/fs/cgroup/*/<name> (a daemon's parent cgroup): fails if a container's cgroup
    was left below it."""
    for parent in Path("/sys/fs/cgroup").glob(f"*/{name}"):
        parent.rmdir()


def hugetlb_as_v1() -> None:
    """Move hugetlb from cgroup2 to its own v1 hierarchy, once per machine.

    crun 1.8 refuses this machine's hybrid layout while any controller is on cgroup2
    (HOST-NOTES.md). Idempotent and safe between pytest-xdist workers (a file lock).
    """
    with open("/run/lock/corral-tests-hugetlb.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        controllers = Path("/sys/fs/cgroup/unified/cgroup.controllers")
        if not controllers.exists() or "hugetlb" not in controllers.read_text().split():
            return
        target = Path("/sys/fs/cgroup/hugetlb")
        target.mkdir(exist_ok=True)
        # the kernel refuses (EBUSY) while a cgroup2 group still uses the controller; a removed
        # group lingers for a moment, so retry before giving up
        deadline = time.monotonic() + 10
        while True:
            mount = subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", str(target)],
                                   capture_output=True, text=True, check=False)
            if mount.returncode == 0:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"cannot move hugetlb to cgroup v1 for crun: {mount.stderr.strip()}")
            time.sleep(0.1)


def host_namespaces() -> dict[str, str]:
    return {ns: os.readlink(f"/proc/self/ns/{ns}") for ns in os.listdir("/proc/self/ns")}


def runtime_driver(name: str, root: Path) -> Iterator[Runtime]:
    """A fixture body: the driver, then a forced clean-up of what the test left."""
    runtime = Runtime(name, runtime_binary(name), root)
    try:
        yield runtime
    finally:
        runtime.cleanup()
