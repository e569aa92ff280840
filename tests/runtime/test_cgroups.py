"""cgroups for real on this host: limits written and read back, OOM kills, pids limits, freezing.

This host is the v1 hybrid layout; the cgroup v2 code runs for real against the unified mount
(/sys/fs/cgroup/unified) through a Manager that sees only that hierarchy. The unified mount
offers no controllers here once hugetlb is moved to v1 (which the conformance tests need, see
hostlayout.py), so the v2 tests use what needs none: creation, cgroup.procs, cgroup.freeze,
cgroup.kill and the eBPF device filter; hugetlb limits on v2 are tested on pure v2 hosts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.runtime.cgroups import CgroupError, Manager, open_manager, reopen
from corral.runtime.cgroups.detect import UNIFIED, Hierarchy, Layout, detect
from tests.runtime.forked import errno_of, run_forked
from tests.runtime.hostlayout import hugetlb_stays  # noqa: F401  (fixture)

MiB = 1 << 20
LAYOUT = detect()


def unique_path() -> str:
    return f"/corral-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cgroup() -> Iterator[Manager]:
    """A Manager for a fresh absolute cgroup path; removed (processes killed) afterwards."""
    manager = open_manager(unique_path(), "unused")
    yield manager
    manager.destroy(kill_leftovers=True)


@pytest.fixture
def v2_cgroup(request: pytest.FixtureRequest) -> Iterator[Manager]:
    """A Manager that sees only the cgroup2 hierarchy: the v2 code on the real unified mount.

    It enables the cgroup2 controllers like on a v2 host, so it holds the hugetlb lock: a
    controller in use on cgroup2 cannot be moved to v1 (hostlayout.py).
    """
    unified = request.getfixturevalue("hugetlb_stays").unified
    if unified is None:
        pytest.skip("no cgroup2 mount on this host")
    path = unique_path()
    control = Path(unified.mountpoint, "cgroup.subtree_control")
    before = set(control.read_text().split())
    manager = Manager(Layout((), unified), {UNIFIED: unified.directory(path)}, path)
    yield manager
    manager.destroy(kill_leftovers=True)
    for controller in set(control.read_text().split()) - before:  # leave the host as it was
        with contextlib.suppress(OSError):
            control.write_text(f"-{controller}")


def v1_dir(manager: Manager, controller: str) -> Path:
    hierarchy = LAYOUT.v1_for(controller)
    assert hierarchy is not None, f"no v1 {controller} hierarchy"
    return Path(manager.paths[hierarchy.key])


def sleeper(manager: Manager) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(["/bin/busybox", "sleep", "60"])
    manager.add(process.pid)
    return process


def test_create_sets_every_limit(cgroup: Manager) -> None:
    resources = {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB, "swappiness": 10,
                   "disableOOMKiller": False},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
    }
    cgroup.create(resources)
    memory = v1_dir(cgroup, "memory")
    assert (memory / "memory.limit_in_bytes").read_text() == f"{64 * MiB}\n"
    assert (memory / "memory.soft_limit_in_bytes").read_text() == f"{32 * MiB}\n"
    assert (memory / "memory.memsw.limit_in_bytes").read_text() == f"{96 * MiB}\n"
    assert (memory / "memory.swappiness").read_text() == "10\n"
    cpu = v1_dir(cgroup, "cpu")
    assert (cpu / "cpu.shares").read_text() == "512\n"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000\n"
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000\n"
    assert (v1_dir(cgroup, "cpuset") / "cpuset.cpus").read_text() == "0\n"
    assert (v1_dir(cgroup, "pids") / "pids.max").read_text() == "42\n"
    for directory in cgroup.paths.values():
        assert os.path.isdir(directory)


def test_update_changes_limits_in_place(cgroup: Manager) -> None:
    cgroup.create({"memory": {"limit": 64 * MiB, "swap": 64 * MiB}, "pids": {"limit": 10}})
    cgroup.update({"memory": {"limit": 128 * MiB, "swap": 256 * MiB}, "pids": {"limit": -1}})
    memory = v1_dir(cgroup, "memory")
    assert (memory / "memory.limit_in_bytes").read_text() == f"{128 * MiB}\n"
    assert (memory / "memory.memsw.limit_in_bytes").read_text() == f"{256 * MiB}\n"
    assert (v1_dir(cgroup, "pids") / "pids.max").read_text() == "max\n"
    cgroup.update({"memory": {"limit": 16 * MiB, "swap": 16 * MiB}})  # shrinking: other order
    assert (memory / "memory.limit_in_bytes").read_text() == f"{16 * MiB}\n"
    with pytest.raises(CgroupError, match="set the memory\\+swap limit too"):
        cgroup.update({"memory": {"limit": 32 * MiB}})  # above memory+swap (16 MiB)
    assert (memory / "memory.limit_in_bytes").read_text() == f"{16 * MiB}\n"


def test_a_cpuset_cgroup_accepts_tasks_without_explicit_cpus(cgroup: Manager) -> None:
    cgroup.create(None)
    result = run_forked(lambda: "joined", before_start=cgroup.add)
    assert result.value == "joined"
    assert (v1_dir(cgroup, "cpuset") / "cpuset.cpus").read_text().strip() != ""


def test_blkio_throttle_and_weight(cgroup: Manager) -> None:
    disk = Path("/sys/block/vda/dev")
    if not disk.exists():
        pytest.skip("no virtio disk to throttle")
    major, minor = (int(n) for n in disk.read_text().split(":"))
    cgroup.create({"blockIO": {
        "weight": 500,
        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}],
    }})
    blkio = v1_dir(cgroup, "blkio")
    assert (blkio / "blkio.throttle.read_bps_device").read_text() == f"{major}:{minor} 1048576\n"
    assert (blkio / "blkio.throttle.write_iops_device").read_text() == f"{major}:{minor} 100\n"
    weight = blkio / "blkio.weight"
    if not weight.exists():  # Linux >= 5.0 offers a weight only through BFQ
        weight = blkio / "blkio.bfq.weight"
    assert weight.read_text().split()[-1] == "500"


@pytest.mark.usefixtures("hugetlb_stays")
def test_hugetlb_limit_goes_where_the_controller_is(cgroup: Manager) -> None:
    cgroup.create({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})
    hierarchy = cgroup.layout.v1_for("hugetlb")
    if hierarchy is not None:
        text = Path(cgroup.paths[hierarchy.key], "hugetlb.2MB.limit_in_bytes").read_text()
    else:
        text = Path(cgroup.paths[UNIFIED], "hugetlb.2MB.max").read_text()
    assert text == f"{4 * MiB}\n"


def test_device_rules_are_enforced(cgroup: Manager) -> None:
    cgroup.create({"devices": [{"allow": False, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]})
    listing = (v1_dir(cgroup, "devices") / "devices.list").read_text().split("\n")
    assert "a *:* rwm" not in listing
    assert "c 1:3 rwm" in listing  # /dev/null: runc's defaults are appended
    assert "c 1:11 r" in listing

    def probe() -> dict[str, int]:
        return {"null": errno_of(lambda: os.close(os.open("/dev/null", os.O_WRONLY))),
                "kmsg_read": errno_of(lambda: os.close(os.open("/dev/kmsg", os.O_RDONLY))),
                "kmsg_write": errno_of(lambda: os.close(os.open("/dev/kmsg", os.O_WRONLY)))}

    assert run_forked(probe, before_start=cgroup.add).value == {
        "null": 0, "kmsg_read": 0, "kmsg_write": errno.EPERM}


def test_value_the_kernel_refuses_names_file_and_value_and_leaves_nothing(cgroup: Manager) -> None:
    with pytest.raises(CgroupError, match=r"cpuset\.cpus: cannot set 0-4095 in .*: Numerical result out of range"):
        cgroup.create({"pids": {"limit": 5}, "cpu": {"cpus": "0-4095"}})
    assert not cgroup.exists()


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"memory": {"limit": "12x"}}, "linux.resources.memory.limit: must be an integer, got '12x'"),
        ({"pids": {"limit": True}}, "linux.resources.pids.limit: must be an integer, got True"),
        ({"cpu": {"cpus": 3}}, "linux.resources.cpu.cpus: must be a string, got 3"),
        ({"memory": []}, "linux.resources.memory: must be an object"),
        ({"devices": [{"allow": "yes"}]}, "linux.resources.devices[0].allow: must be true or false"),
        ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": "fast"}]}},
         "linux.resources.blockIO.throttleReadBpsDevice[0].rate: must be an integer"),
        ({"hugepageLimits": {"pageSize": "2MB"}}, "linux.resources.hugepageLimits: must be a list"),
        ({"unified": {"memory.high": 5}}, "linux.resources.unified.memory.high: must be a string"),
    ],
)
def test_wrong_types_are_refused_before_anything_is_made(
        cgroup: Manager, resources: dict[str, Any], message: str) -> None:
    with pytest.raises(CgroupError) as raised:
        cgroup.create(resources)
    assert str(raised.value).startswith(message)
    assert not cgroup.exists()


def test_cpu_shares_the_kernel_clamps_are_refused(cgroup: Manager) -> None:
    with pytest.raises(CgroupError, match=r"cpu.shares: invalid 1048576 \(the kernel set 262144\)"):
        cgroup.create({"cpu": {"shares": 1 << 20}})
    assert not cgroup.exists()


def test_swappiness_out_of_range(cgroup: Manager) -> None:
    with pytest.raises(CgroupError, match=r"memory\.swappiness: invalid 101"):
        cgroup.create({"memory": {"swappiness": 101}})


def test_oom_kill_is_counted(cgroup: Manager) -> None:
    cgroup.create({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    assert cgroup.oom_kill_count() == 0

    def hog() -> int:
        chunks = [b"\x01" * (8 * MiB) for _ in range(16)]
        return len(chunks)

    result = run_forked(hog, before_start=cgroup.add)
    assert result.killed_by == "SIGKILL"
    assert cgroup.oom_kill_count() >= 1


def test_pids_limit_stops_forks(cgroup: Manager) -> None:
    cgroup.create({"pids": {"limit": 4}})

    def fork_many() -> dict[str, int]:
        hold_r, hold_w = os.pipe()
        started, refused = 0, 0
        for _ in range(6):
            try:
                pid = os.fork()
            except BlockingIOError:
                refused += 1
                continue
            if pid == 0:
                os.close(hold_w)
                os.read(hold_r, 1)  # wait until the parent closes the pipe
                os._exit(0)
            started += 1
        os.close(hold_w)
        for _ in range(started):
            os.wait()
        return {"started": started, "refused": refused}

    assert run_forked(fork_many, before_start=cgroup.add).value == {"started": 3, "refused": 3}


def test_freeze_and_thaw_a_sleeping_process(cgroup: Manager) -> None:
    cgroup.create(None)
    process = sleeper(cgroup)
    try:
        assert cgroup.pids() == [process.pid]
        cgroup.freeze()
        assert cgroup.frozen()
        assert (v1_dir(cgroup, "freezer") / "freezer.state").read_text() == "FROZEN\n"
        cgroup.thaw()
        assert not cgroup.frozen()
        assert (v1_dir(cgroup, "freezer") / "freezer.state").read_text() == "THAWED\n"
    finally:
        process.kill()
        process.wait()


def test_pids_and_stats(cgroup: Manager) -> None:
    cgroup.create({"memory": {"limit": 64 * MiB}, "pids": {"limit": 20}})
    process = sleeper(cgroup)
    try:
        assert cgroup.pids() == [process.pid]
        if LAYOUT.unified is not None:  # hybrid: the process is in the cgroup2 directory too
            procs = Path(cgroup.paths[UNIFIED], "cgroup.procs").read_text().split()
            assert procs == [str(process.pid)]
        stats = cgroup.stats()
        assert stats["pids"] == {"current": 1, "limit": 20}
        assert stats["memory"]["usage"]["limit"] == 64 * MiB
        assert set(stats) == {"cpu", "memory", "pids", "blkio", "hugetlb"}
    finally:
        process.kill()
        process.wait()

    def allocate_and_look() -> dict[str, int]:
        ballast = b"\x01" * (16 * MiB)
        busy = sum(range(2_000_000))
        stats = cgroup.stats()
        return {"memory": stats["memory"]["usage"]["usage"], "cpu": stats["cpu"]["usage"]["total"],
                "ballast": len(ballast) + busy * 0}

    seen = run_forked(allocate_and_look, before_start=cgroup.add).value
    assert seen["memory"] >= 16 * MiB
    assert seen["cpu"] > 0


def test_destroy_removes_every_directory(cgroup: Manager) -> None:
    cgroup.create({"pids": {"limit": 5}})
    assert run_forked(lambda: "ran", before_start=cgroup.add).value == "ran"
    cgroup.destroy()
    assert not cgroup.exists()
    assert not any(os.path.exists(directory) for directory in cgroup.paths.values())


def test_destroy_refuses_a_busy_cgroup_unless_told_to_kill(cgroup: Manager) -> None:
    cgroup.create(None)
    process = sleeper(cgroup)
    with pytest.raises(CgroupError, match=rf"processes \[{process.pid}\] still inside"):
        cgroup.destroy()
    assert process.poll() is None
    cgroup.destroy(kill_leftovers=True)
    assert process.wait(timeout=5) == -9
    assert not cgroup.exists()


def test_reopen_from_saved_paths(cgroup: Manager) -> None:
    cgroup.create({"pids": {"limit": 7}})
    again = reopen(cgroup.paths, cgroup.path)
    assert again.paths == cgroup.paths
    assert again.stats()["pids"]["limit"] == 7
    with pytest.raises(CgroupError, match="not inside a mounted cgroup hierarchy"):
        reopen({"memory": "/etc"})


# ---------------------------------------------------------------- cgroupsPath semantics (runc's)

def test_relative_and_default_paths_sit_under_our_own_cgroup() -> None:
    memory = LAYOUT.v1_for("memory")
    assert memory is not None
    relative = open_manager("corral-rel/abc", "id1")
    default = open_manager(None, "id1")
    own = memory.directory(memory.own)
    assert relative.paths[memory.key] == f"{own}/corral-rel/abc"
    assert default.paths[memory.key] == f"{own}/id1"
    assert default.path == f"{memory.own.rstrip('/')}/id1"
    absolute = open_manager("/corral-abs/abc", "id1")
    assert absolute.paths[memory.key] == "/sys/fs/cgroup/memory/corral-abs/abc"


def test_dot_dot_cannot_leave_the_hierarchy() -> None:
    manager = open_manager("/../../../etc/x", "id1")
    for key, directory in manager.paths.items():
        mount = LAYOUT.unified.mountpoint if key == UNIFIED and LAYOUT.unified else \
            next(h.mountpoint for h in LAYOUT.v1 if h.key == key)
        assert directory == f"{mount}/etc/x"


def test_systemd_form_is_refused() -> None:
    with pytest.raises(CgroupError, match="systemd's slice:prefix:name form"):
        open_manager("system.slice:corral:abc", "abc")


def test_mount_sources_describe_this_host(cgroup: Manager) -> None:
    sources = cgroup.mount_sources()
    assert sources[0] == ("tmpfs", "tmpfs", "")
    assert ("cgroup", "memory", "memory") in sources
    assert ("cgroup", "name=systemd", "systemd") in sources
    assert ("cgroup2", "cgroup2", "unified") in sources
    binds = cgroup.mount_sources(cgroupns=False)
    assert ("bind", cgroup.paths["memory"], "memory") in binds


# ---------------------------------------------------------------- cgroup v2, for real

def test_v2_create_add_freeze_kill_destroy(v2_cgroup: Manager) -> None:
    v2_cgroup.create(None)
    directory = Path(v2_cgroup.paths[UNIFIED])
    process = sleeper(v2_cgroup)
    assert (directory / "cgroup.procs").read_text().split() == [str(process.pid)]
    assert v2_cgroup.pids() == [process.pid]
    v2_cgroup.freeze()
    assert v2_cgroup.frozen()
    assert "frozen 1" in (directory / "cgroup.events").read_text()
    v2_cgroup.thaw()
    assert not v2_cgroup.frozen()
    v2_cgroup.destroy(kill_leftovers=True)  # cgroup.kill
    assert process.wait(timeout=5) == -9
    assert not directory.exists()


def test_v2_missing_controller_is_named(v2_cgroup: Manager) -> None:
    assert LAYOUT.unified is not None
    if "pids" in LAYOUT.unified.controllers:
        pytest.skip("this host's cgroup2 has the pids controller")
    with pytest.raises(CgroupError, match="pids: the pids cgroup controller is not available"):
        v2_cgroup.create({"pids": {"limit": 5}})
    assert not v2_cgroup.exists()


@pytest.mark.usefixtures("hugetlb_stays")
def test_v2_hugetlb_limit() -> None:
    unified = detect().unified
    if unified is None or "hugetlb" not in unified.controllers:
        pytest.skip("hugetlb is a v1 hierarchy on this host (cgroup2 has no controllers)")
    path = unique_path()
    v2_cgroup = Manager(Layout((), unified), {UNIFIED: unified.directory(path)}, path)
    try:
        v2_cgroup.create({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})
        assert Path(v2_cgroup.paths[UNIFIED], "hugetlb.2MB.max").read_text() == f"{4 * MiB}\n"
    finally:
        v2_cgroup.destroy()


def test_v2_value_conversions() -> None:
    from corral.runtime.cgroups import v2

    assert v2.cpu_weight(2) == 1
    assert v2.cpu_weight(1024) == 39
    assert v2.cpu_weight(262144) == 10000
    assert v2.io_weight(10) == 1
    assert v2.io_weight(1000) == 10000
    assert v2.memory_swap_max(64 * MiB, 96 * MiB) == 32 * MiB
    assert v2.memory_swap_max(64 * MiB, -1) == "max"
    with pytest.raises(CgroupError, match="below the memory limit"):
        v2.memory_swap_max(64 * MiB, 32 * MiB)


# ---------------------------------------------------------------- path rules on other layouts

def pure_v2(own: str) -> Layout:
    return Layout((), Hierarchy(UNIFIED, "/sys/fs/cgroup", ("cpu", "memory", "pids"), own))


@pytest.mark.parametrize(
    ("cgroups_path", "directory"),
    [
        ("/machine/c1", "/sys/fs/cgroup/machine/c1"),
        ("machine/c1", "/sys/fs/cgroup/machine/c1"),  # runc's fs2: relative to the root
        (None, "/sys/fs/cgroup/user.slice/c1"),        # default: next to our own cgroup
    ],
)
def test_paths_on_a_pure_v2_host(cgroups_path: str | None, directory: str) -> None:
    manager = open_manager(cgroups_path, "c1", layout=pure_v2("/user.slice/session-3.scope"))
    assert manager.paths == {UNIFIED: directory}
    assert manager.path == directory.removeprefix("/sys/fs/cgroup")


def test_paths_on_a_v1_host_with_combined_controllers() -> None:
    layout = Layout((Hierarchy("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct", ("cpu", "cpuacct"), "/a"),
                     Hierarchy("memory", "/sys/fs/cgroup/memory", ("memory",), "/b")), None)
    manager = open_manager("x/y", "c1", layout=layout)
    assert manager.paths == {"cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/a/x/y",
                             "memory": "/sys/fs/cgroup/memory/b/x/y"}
    assert manager.path == "/b/x/y"
    assert layout.mode == "v1"
    assert manager.mount_sources() == [
        ("tmpfs", "tmpfs", ""),
        ("cgroup", "cpu,cpuacct", "cpu,cpuacct"),
        ("symlink", "cpu,cpuacct", "cpu"),
        ("symlink", "cpu,cpuacct", "cpuacct"),
        ("cgroup", "memory", "memory"),
    ]


def test_the_root_cgroup_is_refused() -> None:
    with pytest.raises(CgroupError, match="names the root cgroup"):
        open_manager("/", "c1", layout=pure_v2("/"))


def test_own_cgroup_is_relative_to_what_the_mount_shows() -> None:
    from corral.runtime.cgroups.detect import _relative

    assert _relative("/process_api/x", "/") == "/process_api/x"
    assert _relative("/docker/abc/sub", "/docker/abc") == "/sub"  # a bind-mounted sub-cgroup
    assert _relative("/docker/abc", "/docker/abc") == "/"
    assert _relative("/elsewhere", "/docker/abc") == "/"


def test_layout_matches_the_mounts() -> None:
    """Cross-check detect() against what the mount points themselves show."""
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        assert LAYOUT.mode == "v2"
    elif Path("/sys/fs/cgroup/unified/cgroup.controllers").exists():
        assert LAYOUT.mode == "hybrid"  # this development host
        assert LAYOUT.unified is not None
        assert LAYOUT.unified.mountpoint == "/sys/fs/cgroup/unified"
    else:
        assert LAYOUT.mode == "v1"
    for hierarchy in LAYOUT.v1:
        assert Path(hierarchy.mountpoint, "cgroup.procs").exists()


def test_failed_create_removes_the_parents_it_made() -> None:
    top = unique_path()
    manager = open_manager(f"{top}/pod/ctr", "unused")
    with pytest.raises(CgroupError, match=r"cpuset\.cpus"):
        manager.create({"pids": {"limit": 5}, "cpu": {"cpus": "0-4095"}})
    for hierarchy in LAYOUT.v1:
        assert not os.path.exists(hierarchy.directory(top))


def test_rootless_runtime_skips_hierarchies_it_cannot_write() -> None:
    """runc's rootless rule: no cgroup is fine, a limit without a writable cgroup is an error."""
    path = unique_path()

    def as_user() -> dict[str, Any]:
        os.setresgid(1000, 1000, 1000)
        os.setresuid(1000, 1000, 1000)
        manager = open_manager(path, "unused")
        manager.create(None)
        try:
            open_manager(path, "unused").create({"pids": {"limit": 5}})
            limited = "created"
        except CgroupError as err:
            limited = str(err)
        return {"paths": manager.paths, "limited": limited}

    result = run_forked(as_user).value
    assert result == {"paths": {}, "limited": "pids: the pids cgroup controller is not available "
                                              "to this rootless runtime"}
    assert not any(os.path.exists(h.directory(path)) for h in LAYOUT.v1)


def device_probe() -> dict[str, int]:
    """What a process may do with a few devices (errno per attempt, 0 = allowed)."""
    def opened(path: str, flags: int) -> int:
        return errno_of(lambda: os.close(os.open(path, flags)))

    node = f"/tmp/corral-blk-{os.getpid()}"
    made = errno_of(lambda: os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(7, 0)))
    if made == 0:
        os.unlink(node)
    return {"null": opened("/dev/null", os.O_WRONLY), "kmsg_read": opened("/dev/kmsg", os.O_RDONLY),
            "kmsg_write": opened("/dev/kmsg", os.O_WRONLY), "mknod_block": made}


DEVICE_RULES = [{"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]
# /dev/null is in the defaults; a block device may be made (default "b *:* m") but not opened
EXPECTED_DEVICES = {"null": 0, "kmsg_read": 0, "kmsg_write": errno.EPERM, "mknod_block": 0}


def test_v2_device_rules_are_an_ebpf_program(v2_cgroup: Manager) -> None:
    v2_cgroup.create({"devices": DEVICE_RULES})
    assert run_forked(device_probe, before_start=v2_cgroup.add).value == EXPECTED_DEVICES


def test_v2_deny_all_stops_mknod_too(v2_cgroup: Manager) -> None:
    from corral.runtime.cgroups import devices, ebpf

    v2_cgroup.create(None)
    ebpf.attach(v2_cgroup.paths[UNIFIED], [devices.normalise({"allow": False})])
    assert run_forked(device_probe, before_start=v2_cgroup.add).value == {
        "null": errno.EPERM, "kmsg_read": errno.EPERM, "kmsg_write": errno.EPERM,
        "mknod_block": errno.EPERM}


def test_v1_and_v2_device_rules_agree(cgroup: Manager) -> None:
    cgroup.create({"devices": DEVICE_RULES})
    assert run_forked(device_probe, before_start=cgroup.add).value == EXPECTED_DEVICES


def test_v2_stats_from_cpu_stat(v2_cgroup: Manager) -> None:
    """cpu.stat exists in every cgroup2 directory, with or without the cpu controller."""
    v2_cgroup.create(None)

    def spin() -> int:
        return sum(range(3_000_000))

    run_forked(spin, before_start=v2_cgroup.add)
    stats = v2_cgroup.stats()
    assert stats["cpu"]["usage"]["total"] > 0
    assert stats["cpu"]["usage"]["total"] >= stats["cpu"]["usage"]["user"]
