"""podman runs containers with `--runtime corral-runtime` as it does with crun.

Every case runs first with crun (which checks the test itself) and then with corral-runtime, the
way a user would: `podman --runtime /path/to/corral-runtime run ...`. podman works on a private
store (its own --root/--runroot/--tmpdir) with the busybox rootfs imported as an image, networking
off (`netns = "none"`: the runtime is under test, not netavark), and the rlimits this machine
allows (HOST-NOTES.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.bundles import (
    hugetlb_as_v1,
    on_a_terminal,
    read_pty,
    runtime_binary,
    unique,
)

IMAGE = "localhost/corral-busybox:test"
PODMAN_TIMEOUT = 120

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
"""


@dataclass
class Podman:
    """podman on a private store, with one OCI runtime."""

    home: Path
    runtime: str = "crun"

    def argv(self, *args: str) -> list[str]:
        return ["podman", "--root", str(self.home / "root"), "--runroot", str(self.home / "run"),
                "--tmpdir", str(self.home / "tmp"), "--storage-driver", "overlay",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                "--runtime", runtime_binary(self.runtime), *args]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.home / "containers.conf")}

    def __call__(self, *args: str, cwd: Path | None = None,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, env=self.env,
                              cwd=cwd or self.home, input=input, timeout=PODMAN_TIMEOUT,
                              check=False)

    def ok(self, *args: str, **kwargs: Any) -> str:
        result = self(*args, **kwargs)
        assert result.returncode == 0, (
            f"podman {' '.join(args)} ({self.runtime}) exited {result.returncode}: {result.stderr}"
        )
        return result.stdout

    def inspect(self, name: str) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(self.ok("inspect", name))[0]
        return info


@pytest.fixture(scope="session")
def podman_home(busybox_rootfs: Path) -> Iterator[Path]:
    """A private podman store holding the busybox image; emptied and removed at the end."""
    hugetlb_as_v1()  # crun 1.8 refuses a controller on cgroup2 (HOST-NOTES.md)
    # podman refuses a runroot longer than 50 characters: pytest's temp paths are too long.
    home = Path(tempfile.mkdtemp(prefix="corral-podman-", dir="/tmp"))
    (home / "containers.conf").write_text(CONTAINERS_CONF)
    archive = home / "busybox.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(busybox_rootfs, arcname=".")
    podman = Podman(home)
    podman.ok("import", "--quiet", "--change", 'CMD ["sh"]', str(archive), IMAGE)
    yield home
    podman("rm", "--all", "--force", "--time", "0")
    podman("rmi", "--all", "--force")
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(params=["crun", "corral-runtime"])
def podman(request: pytest.FixtureRequest, podman_home: Path) -> Podman:
    return Podman(podman_home, request.param)


def test_run_rm_passes_output_and_exit_code(podman: Podman) -> None:
    name = unique("rm")
    result = podman("run", "--rm", "--name", name, IMAGE, "sh", "-c", "echo hello from $(hostname); exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("hello from ")
    assert name not in podman.ok("ps", "--all", "--format", "{{.Names}}").split()


def test_run_interactive_tty(podman: Podman) -> None:
    argv = podman.argv("run", "-it", "--rm", IMAGE, "sh")
    with on_a_terminal(argv, env=podman.env, cwd=podman.home) as (proc, master):
        seen = read_pty(master, b"# ")
        assert b"# " in seen, seen
        os.write(master, b"echo $((6 * 7)); tty; stty size; exit 5\r")
        seen = read_pty(master)
        assert proc.wait(timeout=PODMAN_TIMEOUT) == 5
    lines = seen.decode(errors="replace").replace("\r", "").split("\n")
    assert "42" in lines
    assert "/dev/pts/0" in lines


def test_detached_exec_and_stop(podman: Podman) -> None:
    name = unique("detached")
    podman.ok("run", "-d", "--name", name, "--hostname", "detached-box", IMAGE, "sh", "-c",
              "trap 'exit 143' TERM; while true; do sleep 0.1; done")
    try:
        assert podman.inspect(name)["State"]["Status"] == "running"
        out = podman.ok("exec", name, "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '")
        assert out.split("\n")[0] == "detached-box"
        assert "while true" in out
        assert podman("exec", name, "sh", "-c", "exit 4").returncode == 4
        started = time.monotonic()
        podman.ok("stop", "--time", "20", name)
        assert time.monotonic() - started < 10, "SIGTERM did not reach the container"
        state = podman.inspect(name)["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 143)
    finally:
        podman("rm", "--force", name)


def test_memory_limit_oom_kill(podman: Podman) -> None:
    name = unique("oom")
    podman.ok("create", "--name", name, "--memory", "32m", "--memory-swap", "32m", IMAGE,
              "tail", "/dev/zero")
    try:
        # conmon 2.1.6 writes its `oom` marker into its working directory, and podman 4.3 looks
        # for it in the container's userdata directory: start conmon from there.
        userdata = Path(podman.inspect(name)["StaticDir"])
        result = podman("start", "--attach", name, cwd=userdata)
        assert result.returncode == 137, result.stderr
        state = podman.inspect(name)["State"]
        assert state["ExitCode"] == 137
        assert state["OOMKilled"] is True
    finally:
        podman("rm", "--force", name)


def test_pids_limit(podman: Podman) -> None:
    # The inner shell forks sleeps until the limit refuses one; pid 1 + 3 sleeps remain.
    result = podman("run", "--rm", "--pids-limit", "5", IMAGE, "sh", "-c",
                    "cat /sys/fs/cgroup/pids/pids.max;"
                    " sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 30 & done';"
                    " read n < /sys/fs/cgroup/pids/pids.current; echo $n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["5", "4"]
    assert "can't fork" in result.stderr


def test_cap_drop(podman: Podman) -> None:
    result = podman("run", "--rm", "--cap-drop", "CHOWN", "--cap-drop", "NET_RAW", IMAGE, "sh",
                    "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status; touch /tmp/f; chown 1 /tmp/f;"
                    " kill -0 1 && echo kill-ok")
    caps = dict(line.split(":\t") for line in result.stdout.splitlines() if line.startswith("Cap"))
    effective = int(caps["CapEff"], 16)
    assert effective == int(caps["CapBnd"], 16)
    assert not effective & (1 << 0), "CAP_CHOWN still effective"
    assert not effective & (1 << 13), "CAP_NET_RAW still effective"
    assert effective & (1 << 5), "CAP_KILL (a default) is missing"
    assert "chown: /tmp/f: Operation not permitted" in result.stderr
    assert "kill-ok" in result.stdout


def test_read_only_root(podman: Podman) -> None:
    result = podman("run", "--rm", "--read-only", IMAGE, "sh", "-c",
                    "touch /tmp/ok && echo tmp-writable; touch /etc/nope; echo root=$?")
    assert result.stdout.split() == ["tmp-writable", "root=1"], result.stderr
    assert "Read-only file system" in result.stderr


def test_user(podman: Podman) -> None:
    result = podman("run", "--rm", "-u", "1000:1000", IMAGE, "sh", "-c",
                    "id -u; id -g; grep -E '^(Uid|Gid)' /proc/self/status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["1000", "1000"]
    assert lines[2].split()[1:] == ["1000"] * 4
    assert lines[3].split()[1:] == ["1000"] * 4


def test_exec_interactive_tty(podman: Podman) -> None:
    name = unique("exec-it")
    podman.ok("run", "-d", "--name", name, IMAGE, "sleep", "600")
    argv = podman.argv("exec", "-it", name, "sh")
    try:
        with on_a_terminal(argv, env=podman.env, cwd=podman.home) as (proc, master):
            assert b"# " in read_pty(master, b"# ")
            os.write(master, b"tty; echo $((7 * 6)); exit 3\r")
            seen = read_pty(master).decode(errors="replace").replace("\r", "").split("\n")
            assert proc.wait(timeout=PODMAN_TIMEOUT) == 3
        assert "42" in seen
        assert any(line.startswith("/dev/pts/") for line in seen)
    finally:
        podman("rm", "--force", "--time", "0", name)


def test_pause_unpause_and_kill_with_a_signal(podman: Podman) -> None:
    name = unique("pause")
    podman.ok("run", "-d", "--name", name, IMAGE, "sh", "-c",
              "trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done")
    try:
        podman.ok("pause", name)
        assert podman.inspect(name)["State"]["Status"] == "paused"
        podman.ok("unpause", name)
        assert podman.inspect(name)["State"]["Status"] == "running"
        podman.ok("kill", "--signal", "USR1", name)
        deadline = time.monotonic() + 20
        while "got-usr1" not in podman.ok("logs", name):
            assert time.monotonic() < deadline, "USR1 never reached the container"
            time.sleep(0.1)
        podman.ok("kill", name)  # SIGKILL
        podman.ok("wait", name)
        assert podman.inspect(name)["State"]["ExitCode"] == 137
    finally:
        podman("rm", "--force", "--time", "0", name)


def test_ulimit_sysctl_and_restart(podman: Podman) -> None:
    name = unique("limits")
    # an explicit --ulimit drops containers.conf's defaults: nproc must stay within this host's
    podman.ok("run", "-d", "--name", name, "--ulimit", "nofile=100:200",
              "--ulimit", "nproc=32768:32768",
              "--sysctl", "net.ipv4.ip_forward=1", IMAGE, "sleep", "600")
    try:
        out = podman.ok("exec", name, "sh", "-c",
                        "ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward")
        assert out.split() == ["100", "200", "1"]
        first = podman.inspect(name)["State"]["Pid"]
        podman.ok("restart", "--time", "0", name)
        state = podman.inspect(name)["State"]
        assert state["Status"] == "running"
        assert state["Pid"] != first
    finally:
        podman("rm", "--force", "--time", "0", name)


def test_init_and_user_namespace(podman: Podman) -> None:
    init = podman("run", "--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/comm; echo $$")
    assert init.stdout.split() == ["podman-init", "2"], init.stderr
    userns = podman("run", "--rm", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536",
                    IMAGE, "sh", "-c", "cat /proc/self/uid_map; id -u; touch /tmp/x; stat -c %u /tmp/x")
    assert userns.stdout.split() == ["0", "100000", "65536", "0", "0"], userns.stderr


def test_privileged(podman: Podman) -> None:
    result = podman("run", "--rm", "--privileged", IMAGE, "sh", "-c",
                    "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls /dev | grep -c '^tty[0-9]';"
                    " grep -c ' /proc/keys ' /proc/self/mountinfo")
    fields = result.stdout.split()
    assert fields[:4] == ["CapEff:", Path("/proc/self/status").read_text().split("CapBnd:\t")[1][:16],
                          "Seccomp:", "0"], result.stderr
    assert int(fields[4]) > 0, "the host's devices are missing"
    assert fields[5] == "0", "/proc/keys is still masked"


def test_host_pid_namespace_stop(podman: Podman) -> None:
    # without its own pid namespace podman stops the container with `kill --all`
    name = unique("pidhost")
    podman.ok("run", "-d", "--name", name, "--pid", "host", IMAGE, "sleep", "600")
    try:
        pid = podman.inspect(name)["State"]["Pid"]
        assert Path(f"/proc/{pid}/comm").read_text() == "sleep\n"  # the host's view of it
        podman.ok("stop", "--time", "1", name)
        assert podman.inspect(name)["State"]["Status"] == "exited"
    finally:
        podman("rm", "--force", name)


def test_mounts_env_and_resources(podman: Podman, tmp_path: Path) -> None:
    (tmp_path / "shared.txt").write_text("from the host\n")
    result = podman("run", "--rm", "--tmpfs", "/run:size=1m", "-v", f"{tmp_path}:/data:ro",
                    "--workdir", "/data", "-e", "FOO=bar", "--hostname", "boxed",
                    "--cpus", "0.5", "--cpu-shares", "512", "--memory-reservation", "10m", IMAGE,
                    "sh", "-c", "df -k /run | tail -1; cat shared.txt; touch x; echo $FOO $(hostname);"
                    " cd /sys/fs/cgroup; cat cpu/cpu.cfs_quota_us cpu/cpu.shares"
                    " memory/memory.soft_limit_in_bytes")
    lines = result.stdout.splitlines()
    assert lines[0].split()[1] == "1024", result.stderr  # tmpfs size in KiB
    assert lines[1:] == ["from the host", "bar boxed", "50000", "512", str(10 * 2**20)]
    assert "Read-only file system" in result.stderr


@pytest.mark.parametrize(("command", "code"), [("/no/such", 127), ("nosuchcmd", 127),
                                               ("/etc/passwd", 126), ("/etc", 126)])
def test_cannot_execute_exit_codes(podman: Podman, command: str, code: int) -> None:
    # podman maps the runtime's error text to Docker's 127 (not found) and 126 (cannot execute)
    result = podman("run", "--rm", IMAGE, command)
    assert result.returncode == code, result.stderr


def test_devices_and_security_options(podman: Podman) -> None:
    device = podman("run", "--rm", "--device", "/dev/fuse", IMAGE, "sh", "-c",
                    "stat -c '%t:%T' /dev/fuse; head -c 0 /dev/fuse && echo opened")
    assert device.stdout.split() == ["a:e5", "opened"], device.stderr  # 10:229
    # a device-cgroup rule lets a node through that the default rules refuse (ENXIO, not EPERM)
    rule = podman("run", "--rm", "--device-cgroup-rule", "c 42:* rmw", "--cap-add", "MKNOD",
                  IMAGE, "sh", "-c", "mknod /tmp/d42 c 42 0 && head -c 1 /tmp/d42")
    assert "No such device or address" in rule.stderr
    unconfined = podman("run", "--rm", "--cap-add", "SYS_ADMIN", "--security-opt",
                        "seccomp=unconfined", IMAGE, "sh", "-c",
                        "mkdir /tmp/m && mount -t tmpfs none /tmp/m && echo mounted;"
                        " grep Seccomp: /proc/self/status")
    assert unconfined.stdout.split() == ["mounted", "Seccomp:", "0"], unconfined.stderr
    nnp = podman("run", "--rm", "--security-opt", "no-new-privileges", IMAGE,
                 "grep", "NoNewPrivs", "/proc/self/status")
    assert nnp.stdout.split() == ["NoNewPrivs:", "1"], nnp.stderr
