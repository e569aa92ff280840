"""Limits enforced by the kernel: the OOM killer under --memory, a fork bomb under --pids-limit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.containers.conftest import RUNTIMES, Corral


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_memory_hog_is_oom_killed(corral: Corral, name: str, runtime: str, tmp_path: Path) -> None:
    # The shell holds 128 MB in a variable against a 32 MB limit.
    proc = subprocess.run(
        [corral.binary, "run", "--runtime", runtime, "--name", name, "--memory", "32m", "--memory-swap", "32m",
         "busybox", "sh", "-c", "x=$(head -c 134217728 /dev/zero | tr '\\0' a); echo ${#x}"],
        env=corral.env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 137, proc.stderr
    assert list(tmp_path.iterdir()) == []  # no marker file of the monitor's in the caller's directory
    assert corral.inspect(name, "{{.State.OOMKilled}} {{.State.ExitCode}} {{.HostConfig.Memory}}") == \
        f"true 137 {32 * 1024 * 1024}"
    corral("rm", name)


def test_fork_bomb_is_contained(corral: Corral, name: str) -> None:
    script = "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived"
    proc = corral("run", "--name", name, "--pids-limit", "64", "busybox", "sh", "-c", script,
                  check=False, timeout=60)
    assert "survived" in proc.stdout
    corral("rm", "-f", name)
    # the host still forks
    assert corral("run", "--rm", "busybox", "true").returncode == 0


def test_cpu_and_pids_limits_reach_the_cgroup(corral: Corral, name: str) -> None:
    cid = corral.out("run", "-d", "--name", name, "--cpus", "0.5", "--pids-limit", "20",
                     "--cpu-shares", "512", "busybox", "sleep", "60")
    assert Path(f"/sys/fs/cgroup/cpu/corral/{cid}/cpu.cfs_quota_us").read_text().strip() == "50000"
    assert Path(f"/sys/fs/cgroup/cpu/corral/{cid}/cpu.shares").read_text().strip() == "512"
    assert Path(f"/sys/fs/cgroup/pids/corral/{cid}/pids.max").read_text().strip() == "20"
    corral("update", "--pids-limit", "30", name)
    assert Path(f"/sys/fs/cgroup/pids/corral/{cid}/pids.max").read_text().strip() == "30"
    stats = corral.out("stats", "--no-stream", name)
    assert name in stats and "MEM USAGE" in stats
    top = corral.out("top", name)
    assert "sleep 60" in top
    corral("rm", "-f", name)
