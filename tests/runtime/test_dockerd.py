"""dockerd runs containers with corral-runtime registered through `--add-runtime`.

A private dockerd (its own data root, exec root, socket and parent cgroup; no bridge, no
iptables) loads the busybox image from a docker-archive; each case runs with crun first, which
checks the test, then with corral-runtime: `docker run --runtime corral-runtime ...`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.bundles import (
    docker_archive,
    hugetlb_as_v1,
    on_a_terminal,
    private_daemon,
    read_pty,
    remove_parent_cgroups,
    runtime_binary,
    unique,
)

IMAGE = "localhost/corral-busybox:docker"
DOCKER_TIMEOUT = 120
RUNTIMES = ("crun", "corral-runtime")


@dataclass
class Docker:
    """The docker CLI against the private daemon, running containers with one runtime."""

    home: Path
    runtime: str = "crun"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.home}/docker.sock",
                "DOCKER_CONFIG": str(self.home / "client")}

    def argv(self, *args: str) -> list[str]:
        return ["docker", *args]

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, env=self.env,
                              timeout=DOCKER_TIMEOUT, check=False)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, f"docker {' '.join(args)} exited {result.returncode}: {result.stderr}"
        return result.stdout

    def run_flags(self) -> list[str]:
        return ["--runtime", self.runtime, "--network", "none"]

    def inspect(self, name: str) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(self.ok("inspect", name))[0]
        return info


def cgroup_parent(home: Path) -> str:
    return f"corral-dockerd-{home.name[-8:].replace('_', '-')}"


@pytest.fixture(scope="session")
def dockerd_home(busybox_rootfs: Path) -> Iterator[Path]:
    """A running private dockerd with the busybox image loaded; stopped at the end."""
    hugetlb_as_v1()  # crun 1.8 refuses a controller on cgroup2 (HOST-NOTES.md)
    home = Path(tempfile.mkdtemp(prefix="corral-dockerd-", dir="/tmp"))  # short socket paths
    (home / "daemon.json").write_text("{}")  # not /etc/docker/daemon.json
    (home / "client").mkdir()
    daemon = ["dockerd", "--config-file", str(home / "daemon.json"),
              "--data-root", str(home / "data"), "--exec-root", str(home / "exec"),
              "--pidfile", str(home / "dockerd.pid"), "--host", f"unix://{home}/docker.sock",
              "--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
              "--userland-proxy=false", "--storage-driver", "overlay2",
              "--cgroup-parent", f"/{cgroup_parent(home)}",
              *(f"--add-runtime={name}={runtime_binary(name)}" for name in RUNTIMES)]
    docker = Docker(home)
    try:
        with private_daemon(daemon, home / "dockerd.log", lambda: docker("version").returncode == 0):
            docker.ok("load", "--input", str(docker_archive(busybox_rootfs, home / "bb.tar", IMAGE)))
            yield home
            names = docker("ps", "--all", "--quiet").stdout.split()
            if names:
                docker("rm", "--force", *names)
        subprocess.run(["umount", "--recursive", "--quiet", str(home)], check=False)
        remove_parent_cgroups(cgroup_parent(home))
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(params=RUNTIMES)
def docker(request: pytest.FixtureRequest, dockerd_home: Path) -> Docker:
    return Docker(dockerd_home, request.param)


def test_run_rm_output_and_exit_code(docker: Docker) -> None:
    result = docker("run", "--rm", *docker.run_flags(), IMAGE, "sh", "-c",
                    "echo pid=$$ user=$(id -u); exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout.split() == ["pid=1", "user=0"]


def test_run_interactive_tty(docker: Docker) -> None:
    argv = docker.argv("run", "-it", "--rm", *docker.run_flags(), IMAGE, "sh")
    with on_a_terminal(argv, env=docker.env) as (proc, master):
        assert b"# " in read_pty(master, b"# ")
        os.write(master, b"tty; echo $((6 * 7)); exit 5\r")
        seen = read_pty(master).decode(errors="replace").replace("\r", "").split("\n")
        assert proc.wait(timeout=DOCKER_TIMEOUT) == 5
    assert "42" in seen
    assert "/dev/pts/0" in seen


def test_detached_exec_and_stop(docker: Docker) -> None:
    name = unique("detached")
    docker.ok("run", "-d", "--name", name, *docker.run_flags(), IMAGE, "sh", "-c",
              "trap 'exit 143' TERM; while true; do sleep 0.1; done")
    try:
        result = docker("exec", name, "sh", "-c", "cat /proc/1/comm; exit 4")
        assert (result.returncode, result.stdout) == (4, "sh\n"), result.stderr
        started = time.monotonic()
        docker.ok("stop", "--time", "20", name)
        assert time.monotonic() - started < 10, "SIGTERM did not reach the container"
        assert docker.inspect(name)["State"]["ExitCode"] == 143
    finally:
        docker("rm", "--force", name)


def test_memory_limit_oom_kill(docker: Docker) -> None:
    name = unique("oom")
    try:
        # containerd's shim registers for the cgroup's OOM events only after `start`: give
        # it a moment before allocating, or a fast OOM goes unseen (with any runtime).
        result = docker("run", "--name", name, *docker.run_flags(), "--memory", "32m",
                        "--memory-swap", "32m", IMAGE, "sh", "-c", "sleep 0.5; exec tail /dev/zero")
        assert result.returncode == 137, result.stderr
        state = docker.inspect(name)["State"]
        assert (state["ExitCode"], state["OOMKilled"]) == (137, True)
    finally:
        docker("rm", "--force", name)


def test_user_caps_and_read_only(docker: Docker) -> None:
    result = docker("run", "--rm", *docker.run_flags(), "--user", "1000:1000", "--cap-drop", "ALL",
                    "--read-only", IMAGE, "sh", "-c",
                    "id -u; id -g; grep CapEff /proc/self/status; touch /x; echo root=$?")
    assert result.stdout.split() == ["1000", "1000", "CapEff:", "0" * 16, "root=1"], result.stderr
    assert "Read-only file system" in result.stderr
