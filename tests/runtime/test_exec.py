"""exec joins every namespace and the cgroup of the container, with its own process settings."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import corral_bin
from tests.runtime.corral_bundle import Bundle, Runtime, new_id


@pytest.fixture
def running(runtime: Runtime, bundle: Bundle) -> Iterator[str]:
    bundle.config["hostname"] = "exec-host"
    bundle.config["process"]["env"].append("FROM_CONFIG=1")
    bundle.args("sleep", "60").write()
    cid = new_id()
    runtime("run", "-d", "-b", str(bundle.path), cid, check=True)
    yield cid


def test_exec_sees_the_containers_namespaces(runtime: Runtime, running: str) -> None:
    out = runtime("exec", running, "sh", "-c",
                  "hostname; ps -o pid,args | awk '$1 == 1 {print $2}'; cat /proc/net/dev | wc -l; "
                  "readlink /proc/1/ns/pid; readlink /proc/self/ns/pid")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "exec-host"
    assert lines[1] == "sleep"  # the container's init is pid 1: same pid namespace
    assert lines[2] == "3"  # two header lines and lo
    assert lines[3] == lines[4]


def test_exec_joins_the_cgroup(runtime: Runtime, running: str) -> None:
    out = runtime("exec", running, "sh", "-c", "echo $$; sleep 0.2")
    assert out.returncode == 0, out.stderr
    pids = json.loads(runtime("ps", "--format", "json", running).stdout)
    assert len(pids) == 1  # the exec'd shell has gone; it had been counted while it ran
    init_cgroup = Path(f"/proc/{runtime.state(running)['pid']}/cgroup").read_text()
    assert running in init_cgroup


def test_exec_into_a_sub_cgroup(runtime: Runtime, running: str) -> None:
    """runc's `exec --cgroup [controller:]path`: an existing sub-cgroup of the container's."""
    from corral.runtime.cgroups import open_manager

    pids_dir = Path(open_manager(None, running).paths["pids"])
    (pids_dir / "sub").mkdir()
    out = runtime("exec", "--cgroup", "pids:sub", running, "cat", "/proc/self/cgroup")
    assert out.returncode == 0, out.stderr
    lines = {line.split(":")[1]: line.split(":")[2] for line in out.stdout.splitlines()}
    assert lines["pids"].endswith(f"{running}/sub")
    assert lines["memory"].endswith(running)  # the other hierarchies: the container's cgroup
    missing = runtime("exec", "--cgroup", "pids:nope", running, "true")
    assert missing.returncode == 1
    assert "nope does not exist" in missing.stderr
    unknown = runtime("exec", "--cgroup", "nosuch:sub", running, "true")
    assert "no cgroup v1 hierarchy has controller 'nosuch'" in unknown.stderr


def test_exec_exit_code_env_cwd_user(runtime: Runtime, running: str) -> None:
    out = runtime("exec", "--env", "EXTRA=2", "--cwd", "/tmp", "--user", "1000:1001", running,
                  "sh", "-c", "echo $FROM_CONFIG $EXTRA; pwd; id -u; id -g; exit 4")
    assert out.returncode == 4
    assert out.stdout.split() == ["1", "2", "/tmp", "1000", "1001"]


def test_exec_with_process_json(runtime: Runtime, running: str, tmp_path: Path) -> None:
    process = {"args": ["sh", "-c", "echo $A; id -u"], "env": ["A=from-json"], "cwd": "/",
               "user": {"uid": 33, "gid": 33}}
    (tmp_path / "process.json").write_text(json.dumps(process))
    out = runtime("exec", "-p", str(tmp_path / "process.json"), running)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["from-json", "33"]


def test_exec_detached_with_pid_file(runtime: Runtime, running: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "exec.pid"
    out = runtime("exec", "-d", "--pid-file", str(pid_file), running, "sleep", "30")
    assert out.returncode == 0, out.stderr
    pid = int(pid_file.read_text())
    assert pid in json.loads(runtime("ps", "--format", "json", running).stdout)


def test_exec_missing_program(runtime: Runtime, running: str) -> None:
    out = runtime("exec", running, "no-such-program")
    assert out.returncode == 1
    assert "executable file not found in $PATH" in out.stderr


def test_exec_tty_without_socket_uses_own_stdio(runtime: Runtime, running: str) -> None:
    proc = subprocess.run([corral_bin("corral-runtime"), "--root", str(runtime.root), "exec",
                           "-t", running, "sh", "-c", "test -t 1 && echo is-a-tty"],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert "is-a-tty" in proc.stdout


def test_exec_in_a_stopped_container(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("true").write()
    cid = new_id()
    runtime("run", "-d", "-b", str(bundle.path), cid, check=True)
    import time

    deadline = time.monotonic() + 10
    while runtime.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    out = runtime("exec", cid, "true")
    assert out.returncode == 1
    assert "stopped" in out.stderr
