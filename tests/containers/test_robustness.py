"""State that stays true: bad input leaves nothing, concurrency, killed CLIs, dead monitors, reboots."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.containers.conftest import Corral, leftovers


def _nothing_left(corral: Corral) -> None:
    assert corral.ids() == []
    containers = corral.store / "containers"
    assert not containers.exists() or os.listdir(containers) == []
    assert leftovers(corral.root) == []


@pytest.mark.parametrize(("args", "code", "words"), [
    (("no-such-image",), 125, "no-such-image"),
    (("--bogus-flag", "busybox"), 125, "unknown flag: --bogus-flag"),
    (("--mount", "type=bind,source=/no/such/dir,target=/x", "busybox", "true"), 125, "/no/such/dir"),
    (("-v", "/no/such/dir:/x", "busybox", "true"), 125, "/no/such/dir"),
    (("--memory", "12x", "busybox", "true"), 125, "12x"),
    (("--memory", "1k", "busybox", "true"), 125, "6MB"),
    (("busybox", "no-such-executable"), 127, "no-such-executable"),
    (("busybox", "/etc"), 126, "/etc"),
    (("--restart", "always", "busybox", "true"), 125, "not supported yet"),
    (("--health-cmd", "true", "busybox", "true"), 125, "not supported yet"),
    (("--cap-add", "NOT_A_CAP", "busybox", "true"), 125, "NOT_A_CAP"),
    (("--network", "no-such-net", "busybox", "true"), 125, "no-such-net"),
    (("--sysctl", "vm.swappiness=1", "busybox", "true"), 125, "vm.swappiness"),
])
def test_bad_input_is_one_line_and_leaves_nothing(corral: Corral, args: tuple[str, ...], code: int,
                                                   words: str) -> None:
    for verb in (("run", "-d"), ("run", "--rm")):
        proc = corral(*verb, *args, check=False)
        assert proc.returncode == code, proc.stderr
        assert words in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stdout == ""
        _nothing_left(corral)


def test_name_in_use(corral: Corral, name: str) -> None:
    corral("create", "--name", name, "busybox", "true")
    proc = corral("run", "--name", name, "busybox", "true", check=False)
    assert proc.returncode == 125 and "already in use" in proc.stderr and proc.stderr.count("\n") == 1
    assert len(corral.ids()) == 1
    corral("rm", name)
    _nothing_left(corral)


def test_twenty_concurrent_runs(corral: Corral) -> None:
    def run(_: int) -> subprocess.CompletedProcess[str]:
        return corral("run", "-d", "busybox", "sleep", "30", check=False)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(run, range(20)))
    assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results if r.returncode]
    ids = {r.stdout.strip() for r in results}
    assert len(ids) == 20
    names = corral.out("ps", "--format", "{{.Names}}").split()
    assert len(names) == 20 and len(set(names)) == 20
    corral("rm", "-f", *ids)
    _nothing_left(corral)


def test_sigkill_of_the_cli_during_run_leaves_a_consistent_state(corral: Corral) -> None:
    for delay in (0.05, 0.1, 0.15, 0.2, 0.3):
        proc = corral.popen("run", "-d", "busybox", "sleep", "30", stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    listing = corral("ps", "-a", "--format", "{{.ID}} {{.State}}").stdout.split("\n")
    for line in filter(None, listing):
        assert line.split()[1] in ("created", "running", "exited"), line
    ids = corral.ids()
    if ids:
        corral("start", *ids)  # whatever state each was left in, it can be started
        assert corral.out("ps", "-q").count("\n") + 1 == len(ids)
        corral("rm", "-f", *ids)
    _nothing_left(corral)


SLOW_START = """#!/bin/sh
# crun, except that the first `start` blocks (its pid in $0.pid): a CLI to kill right there
for arg in "$@"; do
    if [ "$arg" = start ] && [ ! -e "$0.blocked" ]; then
        echo $$ > "$0.pid" && touch "$0.blocked" && exec sleep 60
    fi
done
exec crun "$@"
"""


def test_a_cli_killed_before_the_program_starts_leaves_it_created(corral: Corral, name: str,
                                                                   tmp_path: Path) -> None:
    """Killed once conmon has the container created but before the runtime's `start`, a `run -d`
    leaves a container that says created (its program never ran), which `start` then runs."""
    runtime = tmp_path / "slow-start"
    runtime.write_text(SLOW_START)
    runtime.chmod(0o755)
    proc = corral.popen("run", "-d", "--runtime", str(runtime), "--name", name, "busybox", "sh", "-c",
                        "echo ran; sleep 60", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (tmp_path / "slow-start.blocked").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    os.kill(int((tmp_path / "slow-start.pid").read_text()), signal.SIGKILL)
    assert corral.inspect(name, "{{.State.Status}}") == "created"
    assert corral("logs", name).stdout == ""
    corral("start", name)
    while corral("logs", name).stdout != "ran\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert corral.inspect(name, "{{.State.Status}}") == "running"
    corral("rm", "-f", name)
    _nothing_left(corral)


def test_rm_cleanup_still_happens_when_the_foreground_cli_is_killed(corral: Corral, name: str) -> None:
    """A foreground `run --rm` cleans up itself while conmon's exit command waits for it; once
    that CLI is SIGKILLed, the exit command must do the cleanup when the program exits."""
    proc = corral.popen("run", "--rm", "--name", name, "busybox", "sh", "-c", "echo up; sleep 1",
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while corral("logs", name, check=False).stdout != "up\n":  # the program runs
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    while corral.ids():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    _nothing_left(corral)


def test_dead_monitor_is_reported_honestly(corral: Corral, name: str) -> None:
    corral("run", "-d", "--name", name, "busybox", "sleep", "60")
    conmon = int(Path(corral.root / "run" / "containers" / corral.inspect(name, "{{.Id}}") / "conmon.pid").read_text())
    os.kill(conmon, signal.SIGKILL)
    time.sleep(0.2)
    assert corral.inspect(name, "{{.State.Status}}") == "running"
    assert "monitor" in corral.inspect(name, "{{.State.Error}}")
    corral("stop", "-t", "0", name)
    state = corral.inspect(name, "{{.State.Status}} {{.State.ExitCode}}")
    assert state.startswith("exited")
    corral("rm", name)
    _nothing_left(corral)


def test_after_a_reboot_containers_are_exited_and_start_again(corral: Corral, name: str) -> None:
    cid = corral.out("run", "-d", "--name", name, "-v", f"{name}-data:/data", "busybox",
                     "sh", "-c", "echo boot >> /data/boots; sleep 60")
    conmon = int((corral.root / "run" / "containers" / cid / "conmon.pid").read_text())
    pid = int(corral.inspect(name, "{{.State.Pid}}"))
    # A reboot: every process gone, runroot (a tmpfs) empty, every mount gone.
    os.kill(conmon, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    with open("/proc/self/mountinfo") as f:  # the rootfs, network namespaces, ...
        gone = [line.split()[4] for line in f if line.split()[4].startswith(str(corral.root))]
    for mountpoint in reversed(gone):
        subprocess.run(["umount", "-l", mountpoint], check=False)
    subprocess.run(["umount", "-R", "-l", str(corral.root / "run" / "netns")], check=False)
    for ctrl in ("memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio",
                 "hugetlb", "systemd"):
        d = Path(f"/sys/fs/cgroup/{ctrl}/corral/{cid}")
        if d.exists():
            d.rmdir()
    shutil.rmtree(corral.root / "run")
    assert corral.inspect(name, "{{.State.Status}}") == "exited"
    corral("start", name)
    corral.wait_status(name, "running")
    assert corral.out("exec", name, "cat", "/data/boots") == "boot\nboot"
    corral("rm", "-f", "-v", name)
    corral("volume", "rm", f"{name}-data")
    _nothing_left(corral)


def test_detached_container_survives_its_cli(corral: Corral, name: str) -> None:
    proc = corral.popen("run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 1; echo late",
                        stdout=subprocess.PIPE)
    proc.wait()
    os.killpg(os.getpgid(os.getpid()), 0)  # nothing of ours to kill; the CLI already exited
    assert corral.out("wait", name) == "0"
    assert corral.out("logs", name) == "late"
    corral("rm", name)


def test_rm_flag_cleans_up_without_a_cli(corral: Corral) -> None:
    cid = corral.out("run", "-d", "--rm", "busybox", "sleep", "0.5")
    deadline = time.monotonic() + 30
    while cid in corral.ids():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    _nothing_left(corral)
