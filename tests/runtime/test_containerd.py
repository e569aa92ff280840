"""containerd's runc shim drives corral-runtime as its runc binary (`ctr run --runc-binary`).

The test starts a private containerd (its own root, state and socket; CRI and the snapshotters it
does not need switched off) and stops it at the end. Each case runs with crun first, which checks
the test, then with corral-runtime.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.runtime.bundles import (
    PATH_ENV,
    docker_archive,
    hugetlb_as_v1,
    on_a_terminal,
    private_daemon,
    private_rootfs,
    read_pty,
    remove_parent_cgroups,
    runtime_binary,
    unique,
)

IMAGE = "localhost/corral-busybox:ctr"
CTR_TIMEOUT = 120

CONFIG = """\
version = 2
root = "{home}/root"
state = "{home}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{home}/containerd.sock"
[ttrpc]
  address = "{home}/containerd.sock.ttrpc"
[debug]
  address = "{home}/debug.sock"
[metrics]
  address = ""
"""


@dataclass
class Ctr:
    """`ctr` against the private containerd, in its own namespace, with one runc binary."""

    home: Path
    runtime: str = "crun"

    @property
    def namespace(self) -> str:
        """containerd's namespace, also the parent cgroup of the containers: one per daemon."""
        return "corral-tests-" + hashlib.sha256(self.home.name.encode()).hexdigest()[:10]

    def argv(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.home / "containerd.sock"), "--namespace",
                self.namespace, *args]

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True,
                              timeout=CTR_TIMEOUT, check=False)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, f"ctr {' '.join(args)} exited {result.returncode}: {result.stderr}"
        return result.stdout

    def run_flags(self) -> list[str]:
        return ["--runc-binary", runtime_binary(self.runtime)]


@pytest.fixture(scope="session")
def containerd_home(busybox_rootfs: Path) -> Iterator[Path]:
    """A running private containerd with the busybox image imported; stopped at the end."""
    hugetlb_as_v1()  # crun 1.8 refuses a controller on cgroup2 (HOST-NOTES.md)
    # unix socket paths must stay short (108 bytes): pytest's temp paths are too long
    home = Path(tempfile.mkdtemp(prefix="corral-ctrd-", dir="/tmp"))
    (home / "config.toml").write_text(CONFIG.format(home=home))
    ctr = Ctr(home)
    daemon = ["containerd", "--config", str(home / "config.toml")]
    try:
        with private_daemon(daemon, home / "containerd.log", lambda: ctr("version").returncode == 0):
            archive = docker_archive(busybox_rootfs, home / "busybox.tar", IMAGE)
            ctr.ok("image", "import", str(archive))
            yield home
            for task in ctr("task", "list", "--quiet").stdout.split():
                ctr("task", "kill", "--signal", "SIGKILL", task)
                ctr("task", "delete", "--force", task)
            for container in ctr("container", "list", "--quiet").stdout.split():
                ctr("container", "delete", container)
        subprocess.run(["umount", "--recursive", "--quiet", str(home / "state")], check=False)
        remove_parent_cgroups(ctr.namespace)
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(params=["crun", "corral-runtime"])
def ctr(request: pytest.FixtureRequest, containerd_home: Path) -> Ctr:
    return Ctr(containerd_home, request.param)


def test_run_rootfs_output_and_exit_status(ctr: Ctr, busybox_rootfs: Path, tmp_path: Path) -> None:
    rootfs = private_rootfs(busybox_rootfs, tmp_path / "rootfs")  # ctr's root is writable
    result = ctr("run", "--rm", *ctr.run_flags(), "--env", PATH_ENV, "--rootfs", str(rootfs),
                 unique("rootfs"), "sh", "-c", "echo pid=$$ user=$(id -u); exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout.split() == ["pid=1", "user=0"]


def test_run_image(ctr: Ctr) -> None:
    result = ctr("run", "--rm", *ctr.run_flags(), IMAGE, unique("image"),
                 "sh", "-c", "head -1 /etc/passwd; grep -c ^Cap /proc/self/status")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["root:x:0:0:root:/root:/bin/sh", "5"]


def test_run_with_a_terminal(ctr: Ctr) -> None:
    argv = ctr.argv("run", "--rm", "--tty", *ctr.run_flags(), IMAGE, unique("tty"),
                    "sh", "-c", "tty; exit 7")
    with on_a_terminal(argv) as (proc, master):
        seen = read_pty(master)
        assert proc.wait(timeout=CTR_TIMEOUT) == 7
    assert "/dev/pts/0" in seen.decode(errors="replace").split()


def test_detached_task_exec_and_kill(ctr: Ctr) -> None:
    name = unique("detached")
    ctr.ok("run", "--detach", *ctr.run_flags(), IMAGE, name, "sleep", "600")
    try:
        # ctr can lose the output of an exec that exits at once (its FIFO copy races the exit
        # event, with any runtime): linger a moment before exiting.
        exec_ = ctr("task", "exec", "--exec-id", "probe", name, "sh", "-c",
                    "cat /proc/1/comm; sleep 0.2; exit 4")
        assert exec_.returncode == 4, exec_.stderr
        assert exec_.stdout.split() == ["sleep"]
        assert task_status(ctr, name) == "RUNNING"
        ctr.ok("task", "pause", name)
        assert task_status(ctr, name) == "PAUSED"
        ctr.ok("task", "resume", name)
        assert task_status(ctr, name) == "RUNNING"
        pids = [line.split()[0] for line in ctr.ok("task", "ps", name).splitlines()[1:]]
        assert task_pid(ctr, name) in pids  # the shim asks the runtime: `ps --format json`
        ctr.ok("task", "kill", "--signal", "SIGKILL", name)
        deadline = time.monotonic() + 20
        while task_status(ctr, name) != "STOPPED":
            assert time.monotonic() < deadline, "the task never stopped"
            time.sleep(0.05)
        ctr.ok("task", "delete", name)
    finally:
        ctr("task", "delete", "--force", name)
        ctr("container", "delete", name)
    assert name not in ctr.ok("container", "list", "--quiet").split()


def task_status(ctr: Ctr, name: str) -> str:
    for line in ctr.ok("task", "list").splitlines()[1:]:
        fields = line.split()
        if fields[0] == name:
            return fields[2]
    return "GONE"


def task_pid(ctr: Ctr, name: str) -> str:
    return next(line.split()[1] for line in ctr.ok("task", "list").splitlines()[1:]
                if line.split()[0] == name)
