"""The container lifecycle through the CLI: run, create/start/state/kill/delete, list, ps,
pause/resume, exit codes and signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from corral.runtime.cgroups import open_manager
from tests.conftest import corral_bin
from tests.runtime.corral_bundle import Bundle, Runtime, new_id


def test_run_shows_own_hostname_pid1_and_only_loopback(runtime: Runtime, bundle: Bundle) -> None:
    bundle.shell("hostname; ps -o pid,args; cat /proc/net/dev").write()
    out = runtime("run", "--bundle", str(bundle.path), new_id(), check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "corral"
    assert lines[2].split()[:2] == ["1", "sh"]  # the shell is pid 1
    interfaces = [line.split(":")[0].strip() for line in lines if ":" in line]
    assert interfaces == ["lo"]


def test_run_passes_exit_code_through(runtime: Runtime, bundle: Bundle) -> None:
    bundle.shell("exit 42").write()
    assert runtime("run", "-b", str(bundle.path), new_id()).returncode == 42


def _wait_for_status(runtime: Runtime, cid: str, status: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        out = runtime("state", cid)
        if out.returncode == 0 and json.loads(out.stdout)["status"] == status:
            return
        assert time.monotonic() < deadline, f"{cid} never became {status}"
        time.sleep(0.02)


def test_run_reports_death_by_signal_as_128_plus_signal(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "60").write()
    cid = new_id()
    run = subprocess.Popen([corral_bin("corral-runtime"), "--root", str(runtime.root), "run",
                            "-b", str(bundle.path), cid])
    _wait_for_status(runtime, cid, "running")
    runtime("kill", cid, "KILL", check=True)
    assert run.wait(timeout=10) == 128 + signal.SIGKILL


def test_run_forwards_signals_to_the_container(runtime: Runtime, bundle: Bundle) -> None:
    bundle.shell("trap 'exit 9' TERM; sleep 60 & wait").write()
    cid = new_id()
    run = subprocess.Popen([corral_bin("corral-runtime"), "--root", str(runtime.root), "run",
                            "-b", str(bundle.path), cid])
    _wait_for_status(runtime, cid, "running")
    time.sleep(0.1)  # let the shell install its trap
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=10) == 9


def test_run_deletes_the_container_afterwards(runtime: Runtime, bundle: Bundle) -> None:
    bundle.shell("true").write()
    cid = new_id()
    runtime("run", "-b", str(bundle.path), cid, check=True)
    assert "does not exist" in runtime("state", cid).stderr
    assert not (runtime.root / cid).exists()


def test_create_start_kill_delete(runtime: Runtime, bundle: Bundle, tmp_path) -> None:
    bundle.args("sleep", "60").write()
    cid = new_id()
    pid_file = tmp_path / "pid"
    runtime("create", "-b", str(bundle.path), "--pid-file", str(pid_file), cid, check=True)
    state = runtime.state(cid)
    assert state["status"] == "created"
    assert state["pid"] == int(pid_file.read_text())
    assert state["bundle"] == str(bundle.path)
    # init waits before the user program: it is still the runtime, not sleep
    assert b"sleep" not in Path(f"/proc/{state['pid']}/cmdline").read_bytes()

    runtime("start", cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    assert Path(f"/proc/{state['pid']}/cmdline").read_bytes().startswith(b"sleep")

    runtime("kill", cid, "KILL", check=True)
    _wait_for_status(runtime, cid, "stopped")
    assert runtime.state(cid)["pid"] == 0
    runtime("delete", cid, check=True)
    assert not (runtime.root / cid).exists()


def test_list_and_ps(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "60").write()
    cid = new_id()
    runtime("run", "-d", "-b", str(bundle.path), cid, check=True)
    pid = runtime.state(cid)["pid"]
    table = runtime("list", check=True).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[:3] == [cid, str(pid), "running"]
    assert [s["id"] for s in json.loads(runtime("list", "--format", "json").stdout)] == [cid]
    assert runtime("list", "-q").stdout == cid + "\n"
    assert json.loads(runtime("ps", "--format", "json", cid, check=True).stdout) == [pid]
    assert str(pid) in runtime("ps", cid, check=True).stdout


def test_kill_all_and_signal_numbers(runtime: Runtime, bundle: Bundle) -> None:
    bundle.shell("trap 'exit 3' TERM; sleep 60 & wait").write()
    cid = new_id()
    runtime("run", "-d", "-b", str(bundle.path), cid, check=True)
    time.sleep(0.1)  # let the shell install its trap
    runtime("kill", "--all", cid, "15", check=True)
    _wait_for_status(runtime, cid, "stopped")


def test_pause_and_resume(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "60").write()
    cid = new_id()
    runtime("run", "-d", "-b", str(bundle.path), cid, check=True)
    runtime("pause", cid, check=True)
    assert runtime.state(cid)["status"] == "paused"
    assert "paused" in runtime("pause", cid).stderr
    runtime("resume", cid, check=True)
    assert runtime.state(cid)["status"] == "running"


def test_delete_force_kills_a_running_container(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "60").write()
    cid = new_id()
    runtime("run", "-d", "-b", str(bundle.path), cid, check=True)
    pid = runtime.state(cid)["pid"]
    runtime("delete", "--force", cid, check=True)
    assert not os.path.exists(f"/proc/{pid}/cmdline") or \
        b"sleep" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert not (runtime.root / cid).exists()


def test_delete_of_a_created_container_kills_its_init(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("true").write()
    cid = new_id()
    runtime("create", "-b", str(bundle.path), cid, check=True)
    runtime("delete", cid, check=True)
    assert not (runtime.root / cid).exists()


def test_delete_of_a_stopped_container_kills_what_its_init_left(
        runtime: Runtime, bundle: Bundle) -> None:
    # Without a pid namespace a background process outlives the init: delete's one-rmdir path
    # finds the cgroup busy and falls back to killing what is inside.
    bundle.config["linux"]["namespaces"] = [
        ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "pid"]
    bundle.shell("sleep 60 & exit 0").write()
    cid = new_id()
    runtime("create", "-b", str(bundle.path), cid, check=True)
    procs = Path(open_manager(None, cid).paths["pids"], "cgroup.procs")
    runtime("start", cid, check=True)
    _wait_for_status(runtime, cid, "stopped")
    deadline = time.monotonic() + 10
    while not procs.read_text().split():
        assert time.monotonic() < deadline, "the background sleep never showed in the cgroup"
        time.sleep(0.02)
    left = [int(pid) for pid in procs.read_text().split()]
    runtime("delete", cid, check=True)
    assert not procs.parent.exists()
    assert not any(Path(f"/proc/{pid}/cmdline").exists() and
                   Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep") for pid in left)


def test_delete_removes_only_cgroups(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A state file naming a plain (empty) directory as a cgroup does not get it removed."""
    bundle.args("true").write()
    cid = new_id()
    runtime("run", "--keep", "-b", str(bundle.path), cid, check=True)
    state_file = runtime.root / cid / "state.json"
    state = json.loads(state_file.read_text())
    real = state["cgroup_paths"]["pids"]
    plain = tmp_path / "not-a-cgroup"
    plain.mkdir()
    state["cgroup_paths"]["pids"] = str(plain)
    state_file.write_text(json.dumps(state))
    assert "not inside a mounted cgroup hierarchy" in runtime("delete", cid).stderr
    assert plain.is_dir()
    state["cgroup_paths"]["pids"] = real
    state_file.write_text(json.dumps(state))
    runtime("delete", cid, check=True)
    assert not Path(real).exists()


def test_update_changes_pids_limit(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "60").write()
    cid = new_id()
    runtime("run", "-d", "-b", str(bundle.path), cid, check=True)
    runtime("update", "--pids-limit", "7", cid, check=True)
    pids_dir = open_manager(None, cid).paths["pids"]
    assert Path(pids_dir, "pids.max").read_text().strip() == "7"


def test_run_as_a_non_root_user_with_groups(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 100],
                                        "umask": 0o077}
    bundle.shell("id -u; id -g; id -G; umask").write()
    out = runtime("run", "-b", str(bundle.path), new_id())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1000", "1000", "1000", "5", "100", "0077"]


def test_user_namespace_maps_root(runtime: Runtime, bundle: Bundle, busybox_rootfs: Path) -> None:
    # The mapped root (host uid 200000) must reach the rootfs: pytest's tmp dirs are 0700.
    reachable = Path(tempfile.mkdtemp(prefix="corral-userns-", dir="/tmp"))
    reachable.chmod(0o755)
    shutil.copytree(busybox_rootfs, reachable / "rootfs", symlinks=True)
    bundle.config["root"]["path"] = str(reachable / "rootfs")
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    bundle.shell("id -u; cat /proc/self/uid_map; ls -l /dev/null | cut -c1").write()
    cid = new_id()
    run = subprocess.Popen([corral_bin("corral-runtime"), "--root", str(runtime.root), "run",
                            "-b", str(bundle.path), cid], stdout=subprocess.PIPE, text=True)
    try:
        stdout, _ = run.communicate(timeout=30)
    finally:
        shutil.rmtree(reachable)
    assert run.returncode == 0
    lines = stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", "200000", "65536"]
    assert lines[2] == "c"  # /dev/null bound from the host (no mknod in a user namespace)


def test_events_stats(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["resources"] = {"pids": {"limit": 33}}
    bundle.args("sleep", "60").write()
    cid = new_id()
    runtime("run", "-d", "-b", str(bundle.path), cid, check=True)
    event = json.loads(runtime("events", "--stats", cid, check=True).stdout)
    assert (event["type"], event["id"]) == ("stats", cid)
    assert event["data"]["pids"]["current"] == 1
    assert event["data"]["pids"]["limit"] == 33
    assert event["data"]["memory"]["usage"]["usage"] > 0


def test_rootless_run_as_an_unprivileged_user(busybox_rootfs: Path) -> None:
    """A non-root caller: `spec --rootless` maps it to root in a user namespace."""
    where = Path(tempfile.mkdtemp(prefix="corral-rootless-", dir="/tmp"))
    try:
        where.chmod(0o755)
        shutil.copytree(busybox_rootfs, where / "rootfs", symlinks=True)
        subprocess.run(["chown", "-R", "4321:4321", str(where)], check=True)
        as_user = ["setpriv", "--reuid", "4321", "--regid", "4321", "--clear-groups"]
        runtime_bin = corral_bin("corral-runtime")
        subprocess.run([*as_user, runtime_bin, "spec", "--rootless"], cwd=where, check=True)
        config = json.loads((where / "config.json").read_text())
        assert config["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 4321, "size": 1}]
        config["process"]["terminal"] = False
        config["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/uid_map"]
        (where / "config.json").write_text(json.dumps(config))
        out = subprocess.run([*as_user, runtime_bin, "--root", str(where / "state"), "run",
                              new_id()], cwd=where, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == "0"
        assert lines[1].split() == ["0", "4321", "1"]
    finally:
        shutil.rmtree(where)
