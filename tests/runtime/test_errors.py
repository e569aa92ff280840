"""Bad input and illegal moves: one clear line, exit 1, and nothing left behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.runtime.corral_bundle import Bundle, Runtime, leftovers, new_id


def _edit(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(config: dict[str, Any]) -> None:
        node = config
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return apply


_DELETE = object()

BAD_CONFIGS = {
    "missing root.path": (_edit(["root", "path"], _DELETE), "root.path"),
    "root.path not a directory": (_edit(["root", "path"], "/nonexistent-rootfs"), "root.path"),
    "bad namespace type": (_edit(["linux", "namespaces"], [{"type": "mount"}, {"type": "nets"}]),
                           "linux.namespaces"),
    "bind mount without source": (
        lambda c: c["mounts"].append({"destination": "/mnt", "type": "bind", "options": ["rbind"]}),
        "mounts[7].source"),
    "mount without destination": (lambda c: c["mounts"].append({"type": "tmpfs"}),
                                  "mounts[7].destination"),
    "unknown rlimit": (_edit(["process", "rlimits"], [{"type": "RLIMIT_BOGUS", "soft": 1,
                                                        "hard": 1}]), "process.rlimits"),
    "rlimit above the caller's hard limit": (
        _edit(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "soft": 1 << 30,
                                        "hard": 1 << 30}]), "RLIMIT_NOFILE"),
    "uid map of size 0": (
        lambda c: c["linux"].update(namespaces=[*c["linux"]["namespaces"], {"type": "user"}],
                                    uidMappings=[{"containerID": 0, "hostID": 1000, "size": 0}],
                                    gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
        "linux.uidMappings"),
    "empty args": (_edit(["process", "args"], []), "process.args"),
    "args not strings": (_edit(["process", "args"], ["sh", 1]), "process.args"),
    "hostname without uts namespace": (
        _edit(["linux", "namespaces"], [{"type": "mount"}, {"type": "pid"}]), "hostname"),
    "wrong type for terminal": (_edit(["process", "terminal"], "yes"), "process.terminal"),
    "unknown sysctl": (_edit(["linux", "sysctl"], {"vm.swappiness": "1"}), "vm.swappiness"),
    "time offsets without a time namespace": (
        _edit(["linux", "timeOffsets"], {"boottime": {"secs": 60}}), "linux.timeOffsets"),
    "time offset of an unknown clock": (
        lambda c: c["linux"].update(namespaces=[*c["linux"]["namespaces"], {"type": "time"}],
                                    timeOffsets={"realtime": {"secs": 60}}),
        "linux.timeOffsets.realtime"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_invalid_config_is_one_line_naming_the_field(runtime: Runtime, bundle: Bundle,
                                                    case: str) -> None:
    edit, field = BAD_CONFIGS[case]
    edit(bundle.config)
    bundle.write()
    cid = new_id()
    out = runtime("run", "-b", str(bundle.path), cid)
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert field in out.stderr
    assert leftovers(runtime, cid) == []


def test_invalid_json(runtime: Runtime, bundle: Bundle) -> None:
    (bundle.path / "config.json").write_text('{"ociVersion": "1.0.2",')
    cid = new_id()
    out = runtime("create", "-b", str(bundle.path), cid)
    assert out.returncode == 1
    assert "config.json: invalid JSON" in out.stderr
    assert leftovers(runtime, cid) == []


def test_missing_executable_fails_create_and_leaves_nothing(runtime: Runtime,
                                                            bundle: Bundle) -> None:
    bundle.args("no-such-program").write()
    cid = new_id()
    out = runtime("create", "-b", str(bundle.path), cid)
    assert out.returncode == 1
    assert "no-such-program" in out.stderr
    assert "executable file not found in $PATH" in out.stderr
    assert leftovers(runtime, cid) == []


def test_failure_inside_init_leaves_nothing(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["mounts"].append({"destination": "/mnt", "type": "nosuchfs", "source": "x"})
    bundle.write()
    cid = new_id()
    out = runtime("run", "-b", str(bundle.path), cid)
    assert out.returncode == 1
    assert "/mnt" in out.stderr
    assert leftovers(runtime, cid) == []


def test_a_limit_the_kernel_refuses_leaves_nothing(runtime: Runtime, bundle: Bundle) -> None:
    # create makes the cgroup after it forked the intermediate and init: they must go too
    bundle.config["linux"].setdefault("resources", {})["cpu"] = {"cpus": "0-4095"}
    bundle.args("sleep", "60").write()
    cid = new_id()
    out = runtime("create", "-b", str(bundle.path), cid)
    assert out.returncode == 1
    assert "cpuset.cpus" in out.stderr
    assert leftovers(runtime, cid) == []


@pytest.mark.parametrize("verb", ["state", "start", "kill", "delete", "pause", "resume", "ps",
                                  "exec"])
def test_unknown_id(runtime: Runtime, verb: str) -> None:
    args = [verb, "no-such-container"] + (["true"] if verb == "exec" else [])
    out = runtime(*args)
    assert out.returncode == 1
    assert "container does not exist" in out.stderr


def test_delete_force_of_unknown_id_succeeds(runtime: Runtime) -> None:
    assert runtime("delete", "--force", "no-such-container").returncode == 0


def test_duplicate_id(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "60").write()
    cid = new_id()
    runtime("create", "-b", str(bundle.path), cid, check=True)
    out = runtime("create", "-b", str(bundle.path), cid)
    assert out.returncode == 1
    assert f"container with id exists: {cid}" in out.stderr
    assert runtime.state(cid)["status"] == "created"  # the first one is untouched


def test_start_of_a_running_container(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "60").write()
    cid = new_id()
    runtime("run", "-d", "-b", str(bundle.path), cid, check=True)
    out = runtime("start", cid)
    assert out.returncode == 1
    assert "cannot start an already running container" in out.stderr


def test_delete_of_a_running_container_needs_force(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "60").write()
    cid = new_id()
    runtime("run", "-d", "-b", str(bundle.path), cid, check=True)
    out = runtime("delete", cid)
    assert out.returncode == 1
    assert f"cannot delete container {cid} that is not stopped: running" in out.stderr
    assert runtime.state(cid)["status"] == "running"


def test_errors_go_to_the_log_file_in_runc_json_format(runtime: Runtime, tmp_path) -> None:
    log = tmp_path / "log.json"
    out = runtime("--log", str(log), "--log-format", "json", "state", "nope")
    assert out.returncode == 1
    assert out.stderr.strip() == "container does not exist"
    entry = json.loads(log.read_text())
    assert entry["level"] == "error"
    assert entry["msg"] == "container does not exist"
    assert entry["time"].endswith("Z")


def test_systemd_cgroup_is_a_clear_error(runtime: Runtime) -> None:
    out = runtime("--systemd-cgroup", "list")
    assert out.returncode == 1
    assert "--systemd-cgroup is not supported" in out.stderr


def test_terminal_without_console_socket_when_detaching(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["terminal"] = True
    bundle.write()
    cid = new_id()
    out = runtime("create", "-b", str(bundle.path), cid)
    assert out.returncode == 1
    assert "console socket" in out.stderr
    assert leftovers(runtime, cid) == []
