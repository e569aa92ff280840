"""corral-runtime as a drop-in for runc and crun: the same bundle through each, the same checks.

Each test edits a `runc spec` config, runs it through every runtime in RUNTIMES, and asserts what
the container itself observed (or what a caller of the runtime sees: exit codes, `state`, the
console socket). The expectations are one set for all runtimes: where runc and crun agree, that is
the behaviour corral-runtime must have.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.bundles import (
    RUNTIMES,
    Bundle,
    ConsoleSocket,
    Runtime,
    has_exited,
    host_namespaces,
    hugetlb_as_v1,
    make_bundle,
    on_a_terminal,
    private_rootfs,
    read_pty,
    runc_spec,
    runtime_driver,
)

# Capability numbers (linux/capability.h) for the names these tests use.
CAPS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_KILL": 5, "CAP_SETGID": 6,
        "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18,
        "CAP_AUDIT_WRITE": 29}


def cap_mask(*names: str) -> str:
    """The 16-hex-digit form /proc/self/status uses for a capability set."""
    return f"{sum(1 << CAPS[n] for n in names):016x}"


@pytest.fixture(scope="session")
def base_config() -> dict[str, Any]:
    hugetlb_as_v1()
    return runc_spec()


@pytest.fixture(scope="session")
def shared_rootfs(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One read-only busybox root for the tests that write nothing into it."""
    return private_rootfs(busybox_rootfs, tmp_path_factory.mktemp("shared") / "rootfs")


@pytest.fixture(scope="session")
def state_roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, state_roots: Path) -> Iterator[Runtime]:
    yield from runtime_driver(request.param, state_roots / request.param)


@pytest.fixture
def bundle(tmp_path: Path, base_config: dict[str, Any], shared_rootfs: Path) -> Bundle:
    """A bundle running `true`; tests set the args and edit the config before running it."""
    return make_bundle(tmp_path / "bundle", base_config, shared_rootfs, ["true"])


def sh(bundle: Bundle, script: str) -> Bundle:
    bundle.process["args"] = ["sh", "-c", script]
    return bundle


def output(runtime: Runtime, bundle: Bundle) -> str:
    """The container's stdout; the run must exit 0."""
    result = runtime.run(bundle)
    assert result.returncode == 0, (
        f"{runtime.name} run exited {result.returncode}: {result.stderr.strip()}"
    )
    return result.stdout


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


# --- identity: namespaces, hostname, users -----------------------------------------------------


def test_namespaces_are_new_and_pid_is_1(runtime: Runtime, bundle: Bundle) -> None:
    kinds = ("pid", "net", "ipc", "uts", "mnt", "cgroup", "user")
    sh(bundle, "echo $$; for ns in " + " ".join(kinds) + "; do echo $ns=$(readlink /proc/self/ns/$ns); done")
    bundle.linux["namespaces"].append({"type": "cgroup"})
    lines = output(runtime, bundle).split()
    assert lines[0] == "1"
    seen = dict(line.split("=", 1) for line in lines[1:])
    host = host_namespaces()
    for kind in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
        assert seen[kind] != host[kind], f"{kind} namespace is the host's"
        assert seen[kind].startswith(f"{kind}:[")
    assert seen["user"] == host["user"], "no user namespace was asked for"


@pytest.fixture
def open_rootfs(busybox_rootfs: Path) -> Iterator[Path]:
    """A rootfs copy on a path every uid can traverse (pytest's own temp dirs are 0700), for
    containers whose root is not the host's root."""
    parent = Path(tempfile.mkdtemp(prefix="corral-conformance-", dir="/tmp"))
    try:
        parent.chmod(0o755)
        yield private_rootfs(busybox_rootfs, parent / "rootfs")
    finally:
        shutil.rmtree(parent)


def test_user_namespace_with_id_mappings(runtime: Runtime, bundle: Bundle, open_rootfs: Path) -> None:
    bundle.config["root"]["path"] = str(open_rootfs)
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    sh(bundle, "cat /proc/self/uid_map /proc/self/gid_map; id; stat -c %u:%g /bin/busybox;"
               " readlink /proc/self/ns/user; sleep 0.5 & echo sleeper=$!; wait")
    out = output(runtime, bundle).splitlines()
    assert out[0].split() == ["0", "100000", "65536"]
    assert out[1].split() == ["0", "200000", "65536"]
    assert out[2] == "uid=0(root) gid=0(root)"
    assert out[3] == "65534:65534"  # the host's root is not mapped: it shows as the overflow id
    assert out[4] != host_namespaces()["user"]


def test_joins_a_namespace_by_path(runtime: Runtime, bundle: Bundle) -> None:
    holder = subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", "hostname joined-uts; echo ready; exec sleep 60"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        path = f"/proc/{holder.pid}/ns/uts"
        sh(bundle, "hostname; readlink /proc/self/ns/uts")
        bundle.config.pop("hostname", None)
        for ns in bundle.linux["namespaces"]:
            if ns["type"] == "uts":
                ns["path"] = path
        name, link = output(runtime, bundle).split()
        assert name == "joined-uts"
        assert link == os.readlink(path)
    finally:
        holder.kill()
        holder.wait()


def test_hostname(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["hostname"] = "conformance-host"
    sh(bundle, "hostname; cat /proc/sys/kernel/hostname")
    assert output(runtime, bundle).split() == ["conformance-host"] * 2


@pytest.mark.parametrize("runtime", [r for r in RUNTIMES if r != "runc"], indirect=True)
def test_domainname(runtime: Runtime, bundle: Bundle) -> None:
    # runtime-spec 1.1's `domainname`; runc 1.1 predates it and ignores the field.
    bundle.config["domainname"] = "example.test"
    bundle.process["args"] = ["cat", "/proc/sys/kernel/domainname"]
    assert output(runtime, bundle) == "example.test\n"


def test_user_groups_and_umask(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027}
    sh(bundle, "id; umask; grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    lines = output(runtime, bundle).splitlines()
    assert lines[0] == "uid=1000 gid=1001 groups=10,20"
    assert lines[1] == "0027"
    fields = status_fields("\n".join(lines[2:]))
    assert fields["Uid"].split() == ["1000"] * 4
    assert fields["Gid"].split() == ["1001"] * 4
    assert fields["Groups"].split() == ["10", "20"]


def test_env_and_cwd(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["env"] = ["PATH=/bin:/usr/bin", "GREETING=hello world", "EMPTY="]
    bundle.process["cwd"] = "/etc"
    sh(bundle, 'pwd; echo "$GREETING"; env | sort')
    lines = output(runtime, bundle).splitlines()
    assert lines[:2] == ["/etc", "hello world"]
    env = set(lines[2:])
    assert {"GREETING=hello world", "EMPTY=", "PATH=/bin:/usr/bin"} <= env


# --- privileges: capabilities, no_new_privs, rlimits, seccomp ----------------------------------


def test_capability_sets_of_root(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["capabilities"] = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_AUDIT_WRITE"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_KILL"],
    }
    sh(bundle, "grep -E '^Cap' /proc/self/status")
    caps = status_fields(output(runtime, bundle))
    bounding = cap_mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_AUDIT_WRITE")
    # execve as root would raise permitted to the whole bounding set (capabilities(7)), but
    # noNewPrivileges (on in `runc spec`) clamps it to what the process held before execve.
    assert bundle.process["noNewPrivileges"] is True
    assert caps == {
        "CapInh": cap_mask("CAP_KILL", "CAP_NET_BIND_SERVICE"),
        "CapPrm": cap_mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
        "CapEff": cap_mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
        "CapBnd": bounding,
        "CapAmb": cap_mask("CAP_KILL"),
    }


def test_capability_sets_of_a_user_come_from_ambient(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    }
    sh(bundle, "grep -E '^Cap' /proc/self/status; nc -l -p 80 -w 1 & sleep 0.2; netstat -ltn")
    out = output(runtime, bundle)
    caps = status_fields("\n".join(line for line in out.splitlines() if line.startswith("Cap")))
    assert caps == {
        "CapInh": cap_mask("CAP_KILL", "CAP_NET_BIND_SERVICE"),
        "CapPrm": cap_mask("CAP_NET_BIND_SERVICE"),
        "CapEff": cap_mask("CAP_NET_BIND_SERVICE"),
        "CapBnd": cap_mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"),
        "CapAmb": cap_mask("CAP_NET_BIND_SERVICE"),
    }
    assert re.search(r":80\s.*LISTEN", out), "uid 1000 could not bind port 80 with the ambient cap"


@pytest.mark.parametrize("no_new_privs", [True, False])
def test_no_new_privileges(runtime: Runtime, bundle: Bundle, no_new_privs: bool) -> None:
    bundle.process["noNewPrivileges"] = no_new_privs
    sh(bundle, "grep NoNewPrivs /proc/self/status")
    assert status_fields(output(runtime, bundle))["NoNewPrivs"] == str(int(no_new_privs))


def test_rlimits_and_oom_score_adj(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]
    bundle.process["oomScoreAdj"] = 123
    sh(bundle, "ulimit -n; ulimit -Hn; ulimit -u; ulimit -Hu; ulimit -c; cat /proc/self/oom_score_adj")
    assert output(runtime, bundle).split() == ["1000", "2000", "300", "400", "0", "123"]


def seccomp(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": list(rules)}


def test_seccomp_errno_is_the_configured_one(runtime: Runtime, bundle: Bundle) -> None:
    bundle.linux["seccomp"] = seccomp(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
    )
    sh(bundle, "mkdir /tmp/a; echo mkdir=$?; rmdir /tmp; echo rmdir=$?; echo still-running")
    result = runtime.run(bundle)
    assert result.returncode == 0, result.stderr
    assert "mkdir: can't create directory '/tmp/a': Disk quota exceeded" in result.stderr
    assert "rmdir: '/tmp': Operation not permitted" in result.stderr  # default errno: EPERM
    assert result.stdout.split() == ["mkdir=1", "rmdir=1", "still-running"]


def test_seccomp_argument_comparison(runtime: Runtime, bundle: Bundle) -> None:
    # chmod(path, 0700) is refused, any other mode allowed.
    bundle.linux["seccomp"] = seccomp(
        {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 1, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
    )
    bundle.add_mount("/tmp", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=1777"])
    sh(bundle, "mkdir /tmp/d; chmod 700 /tmp/d; echo a=$?; chmod 755 /tmp/d; echo b=$?")
    result = runtime.run(bundle)
    assert result.stdout.split() == ["a=1", "b=0"], result.stderr
    assert "Operation not permitted" in result.stderr


def test_seccomp_kill_process(runtime: Runtime, bundle: Bundle) -> None:
    bundle.linux["seccomp"] = seccomp({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"})
    bundle.process["args"] = ["mkdir", "/tmp/x"]
    assert runtime.run(bundle).returncode == 128 + signal.SIGSYS


def test_seccomp_default_errno_with_an_allow_list(runtime: Runtime, bundle: Bundle) -> None:
    # Deny by default (ENOSYS, like Docker's profile for unknown syscalls): only what `uname`
    # and a static binary's start-up need is allowed.
    allowed = ["execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
               "prlimit64", "readlink", "uname", "write", "writev", "exit", "exit_group",
               "getuid", "geteuid", "getrandom", "mprotect", "mmap", "munmap", "fstat", "newfstatat",
               "rt_sigaction", "rt_sigprocmask", "ioctl", "close", "read", "openat", "futex",
               "capget", "capset", "prctl", "setgroups", "setresuid", "setresgid", "fchdir", "chdir",
               "getcwd", "seccomp", "getpid", "getppid", "sched_getaffinity", "poll", "statx",
               "fcntl", "dup2", "dup3", "lseek", "statfs", "fstatfs", "close_range", "clone",
               "clone3", "fork", "vfork", "wait4", "getpgrp", "setpgid", "rt_sigreturn", "pipe2",
               "execveat", "getdents64", "pread64", "access", "faccessat", "faccessat2"]
    bundle.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                               "architectures": ["SCMP_ARCH_X86_64"],
                               "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]}
    bundle.process["args"] = ["sh", "-c", "uname -s; mkdir /tmp/x"]
    result = runtime.run(bundle)
    assert result.stdout.split() == ["Linux"], result.stderr
    assert "Function not implemented" in result.stderr


# --- filesystem: mounts, masked and read-only paths, devices ------------------------------------

# What every runtime mounts for `runc spec`'s config: mount point -> (fstype, VFS flags).
SPEC_MOUNTS = {
    "/": ("ro",),
    "/proc": ("proc", "rw"),
    "/dev": ("tmpfs", "rw", "nosuid"),
    "/dev/pts": ("devpts", "rw", "nosuid", "noexec"),
    "/dev/shm": ("tmpfs", "rw", "nosuid", "nodev", "noexec"),
    "/dev/mqueue": ("mqueue", "rw", "nosuid", "nodev", "noexec"),
    "/sys": ("sysfs", "ro", "nosuid", "nodev", "noexec"),
    "/sys/fs/cgroup": ("nosuid", "nodev", "noexec"),
}
VFS_FLAGS = {"ro", "rw", "nosuid", "nodev", "noexec"}


def mount_table(mountinfo: str) -> dict[str, tuple[str, ...]]:
    """mount point -> (fstype, sorted VFS flags), from /proc/self/mountinfo; the last mount on a
    path wins, as it is the one the container sees."""
    table: dict[str, tuple[str, ...]] = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        separator = fields.index("-")
        point, options, fstype = fields[4], fields[5].split(","), fields[separator + 1]
        table[point] = (fstype, *sorted(VFS_FLAGS.intersection(options)))
    return table


def existing(paths: list[str]) -> list[str]:
    """The masked/read-only paths this kernel has (runtimes skip the missing ones)."""
    return [p for p in paths if os.path.exists(p)]


def test_mounts_and_their_flags(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("from the host\n")
    bundle.add_mount("/data", "bind", str(shared), ["rbind", "ro", "nosuid", "nodev"])
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["noexec", "size=1m", "mode=700"])
    bundle.process["args"] = ["cat", "/proc/self/mountinfo", "/data/hello.txt"]
    out = output(runtime, bundle)
    mountinfo, _, content = out.rpartition("\n" + "from the host")
    assert content == "\n"
    table = mount_table(mountinfo)
    masked = existing(bundle.linux["maskedPaths"])
    readonly = existing(bundle.linux["readonlyPaths"])
    cgroups = {p for p in table if p.startswith("/sys/fs/cgroup/")}
    assert set(table) == set(SPEC_MOUNTS) | {"/data", "/scratch"} | set(masked) | set(readonly) | cgroups
    for point, expected in SPEC_MOUNTS.items():
        if point == "/sys/fs/cgroup":
            # The tmpfs holding the cgroup mounts: runc and crun leave it writable although the
            # config says "ro"; making it read-only is stricter and equally fine.
            assert set(table[point][1:]) - {"ro", "rw"} == set(expected) - {"rw"}, point
        elif point == "/":
            assert table[point][1:] == tuple(sorted(expected)), point
        else:
            assert table[point] == (expected[0], *sorted(expected[1:])), point
    assert table["/data"][1:] == ("nodev", "nosuid", "ro")
    assert table["/scratch"] == ("tmpfs", "noexec", "rw")
    for point in readonly:
        assert "ro" in table[point], f"{point} is writable"
    host_controllers = {p.name for p in Path("/sys/fs/cgroup").iterdir() if p.name != "unified"}
    assert {p.rsplit("/", 1)[1] for p in cgroups} >= host_controllers - {"unified"}
    for point in cgroups:
        # corral-runtime also mounts the controller-less cgroup2 of the hybrid layout
        fstype = "cgroup2" if point == "/sys/fs/cgroup/unified" else "cgroup"
        assert table[point] == (fstype, "nodev", "noexec", "nosuid", "ro"), point


def test_root_mount_is_the_bundle_rootfs(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["args"] = ["cat", "/proc/self/mountinfo"]
    root_line = next(line for line in output(runtime, bundle).splitlines()
                     if line.split()[4] == "/")
    assert root_line.split()[3] == bundle.config["root"]["path"]


def test_masked_paths_are_empty(runtime: Runtime, bundle: Bundle) -> None:
    masked = existing(bundle.linux["maskedPaths"])
    files = [p for p in masked if os.path.isfile(p)]
    dirs = [p for p in masked if os.path.isdir(p)]
    assert "/sys/firmware" in dirs and "/proc/timer_list" in files
    assert Path("/proc/timer_list").read_text() and os.listdir("/sys/firmware")
    sh(bundle, "".join(f"echo {p}=$(wc -c < {p});" for p in files)
               + "".join(f"echo {p}=$(ls -A {p} | wc -l);" for p in dirs)
               + "touch /sys/firmware/x; echo write=$?")
    lines = output(runtime, bundle).split()
    assert lines == [f"{p}=0" for p in files + dirs] + ["write=1"]


def test_readonly_paths_refuse_writes(runtime: Runtime, bundle: Bundle) -> None:
    sh(bundle, "echo 1 > /proc/sys/kernel/ns_last_pid; echo sys=$?; "
               "echo h > /proc/sysrq-trigger; echo sysrq=$?; touch /newfile; echo root=$?")
    result = runtime.run(bundle)
    assert result.stdout.split() == ["sys=1", "sysrq=1", "root=1"], result.stderr
    assert "Read-only file system" in result.stderr


def test_writable_rootfs_and_the_container_sees_its_own_writes(
    runtime: Runtime, bundle: Bundle, busybox_rootfs: Path, tmp_path: Path
) -> None:
    rootfs = private_rootfs(busybox_rootfs, tmp_path / "rootfs")
    bundle.config["root"] = {"path": str(rootfs), "readonly": False}
    sh(bundle, "echo written > /root/file; cat /root/file")
    assert output(runtime, bundle) == "written\n"
    assert (rootfs / "root/file").read_text() == "written\n"


def test_default_devices(runtime: Runtime, bundle: Bundle) -> None:
    sh(bundle, "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done;"
               " for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done;"
               " head -c 4 /dev/zero | wc -c; echo gone > /dev/null && echo null-ok")
    assert output(runtime, bundle).splitlines() == [
        "/dev/null character special file 1:3 666",
        "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666",
        "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666",
        "/dev/tty character special file 5:0 666",
        "pts/ptmx", "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2",
        "4", "null-ok",
    ]


def test_extra_device_and_devices_cgroup(runtime: Runtime, bundle: Bundle) -> None:
    bundle.linux["devices"] = [{"path": "/dev/kmsg-alias", "type": "c", "major": 1, "minor": 3,
                                "fileMode": 0o640, "uid": 0, "gid": 0}]
    bundle.linux["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    ]
    sh(bundle, "stat -c '%F %t:%T %a' /dev/kmsg-alias; echo x > /dev/kmsg-alias && echo ok")
    assert output(runtime, bundle).splitlines() == ["character special file 1:3 640", "ok"]


def test_sysctl(runtime: Runtime, bundle: Bundle) -> None:
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"}
    sh(bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax")
    assert output(runtime, bundle).split() == ["1", "4096"]


# --- cgroups -----------------------------------------------------------------------------------


def test_cgroup_limits_are_visible_inside_and_removed_after(runtime: Runtime, bundle: Bundle) -> None:
    cgroup = f"/{runtime.name}-limits-{os.urandom(6).hex()}"
    bundle.linux["cgroupsPath"] = cgroup
    bundle.linux["resources"].update({
        "memory": {"limit": 64 * 2**20, "reservation": 32 * 2**20},
        "pids": {"limit": 57},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
    })
    sh(bundle, "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.soft_limit_in_bytes"
               " pids/pids.max cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us;"
               " cat /proc/self/cgroup")
    lines = output(runtime, bundle).splitlines()
    assert lines[:6] == [str(64 * 2**20), str(32 * 2**20), "57", "512", "50000", "100000"]
    memory = next(line for line in lines[6:] if ":memory:" in line)
    assert memory.endswith(f":memory:{cgroup}")  # no cgroup namespace: the host path
    for controller in ("memory", "pids", "cpu"):
        assert not Path(f"/sys/fs/cgroup/{controller}{cgroup}").exists(), "cgroup left behind"


def test_oom_kill_exits_137(runtime: Runtime, bundle: Bundle) -> None:
    bundle.linux["cgroupsPath"] = f"/{runtime.name}-oom-{os.urandom(6).hex()}"
    bundle.linux["resources"]["memory"] = {"limit": 16 * 2**20, "swap": 16 * 2**20}
    bundle.process["args"] = ["tail", "/dev/zero"]
    assert runtime.run(bundle).returncode == 137


def test_pids_limit_refuses_forks(runtime: Runtime, bundle: Bundle) -> None:
    bundle.linux["resources"]["pids"] = {"limit": 5}
    bundle.linux["cgroupsPath"] = f"/{runtime.name}-pids-{os.urandom(6).hex()}"
    # The inner shell starts sleeps until a fork fails and it exits: pid 1 + 3 sleeps remain.
    # `read` is a builtin, so counting needs no fork.
    sh(bundle, "sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 30 & done';"
               " read n < /sys/fs/cgroup/pids/pids.current; echo $n;"
               " read max failed < /sys/fs/cgroup/pids/pids.events; echo $max $failed")
    result = runtime.run(bundle)
    assert "can't fork" in result.stderr
    current, event, failed = result.stdout.split()
    assert (current, event) == ("4", "max")
    assert int(failed) >= 1


# --- exit codes, signals, lifecycle and state ---------------------------------------------------


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_code_is_passed_through(runtime: Runtime, bundle: Bundle, code: int) -> None:
    sh(bundle, f"exit {code}")
    assert runtime.run(bundle).returncode == code


def test_missing_program_fails(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["args"] = ["/no/such/program"]
    result = runtime.run(bundle)
    assert result.returncode != 0
    assert "no/such/program" in result.stderr


def test_run_killed_by_signal_exits_128_plus_n(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["args"] = ["sleep", "60"]
    bundle.write()
    cid = runtime.new_id()
    foreground = subprocess.Popen(runtime.argv("run", "--bundle", str(bundle.path), cid),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        runtime.wait_status(cid, "running")
        runtime.ok("kill", cid, "KILL")
        assert foreground.wait(timeout=10) == 128 + signal.SIGKILL
    finally:
        foreground.kill()
        foreground.wait()


def test_lifecycle_and_state(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["args"] = ["sleep", "60"]
    bundle.config["annotations"] = {"org.corral.test": "lifecycle"}
    cid = runtime.create(bundle)

    created = runtime.state(cid)
    assert created["status"] == "created"
    assert created["id"] == cid
    assert created["bundle"] == str(bundle.path)
    assert created["ociVersion"].startswith("1.")
    assert created["annotations"] == {"org.corral.test": "lifecycle"}
    # containerd's go-runc decodes these two as well
    assert created["rootfs"] == bundle.config["root"]["path"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", created["created"])
    listed = json.loads(runtime.ok("list", "--format", "json").stdout)
    assert {(c["id"], c["status"]) for c in listed} >= {(cid, "created")}
    pid = created["pid"]
    assert pid > 0
    # Before `start` the user program has not run yet: init still runs the runtime, not sleep.
    assert Path(f"/proc/{pid}/comm").read_text().strip() != "sleep"

    runtime.ok("start", cid)
    running = runtime.wait_status(cid, "running")
    assert running["pid"] == pid
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}/comm").read_text().strip() != "sleep" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"
    assert cid in runtime.ok("list", "-q").stdout.split()

    runtime.ok("kill", cid, "KILL")
    runtime.wait_status(cid, "stopped")
    runtime.ok("delete", cid)
    assert runtime("state", cid).returncode != 0
    assert cid not in runtime.ok("list", "-q").stdout.split()


def test_kill_delivers_the_named_signal(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    # pid 1 only gets signals it handles: the trap records which one arrived.
    mark = tmp_path / "mark"
    mark.mkdir()
    bundle.add_mount("/mark", "bind", str(mark), ["rbind", "rw"])
    sh(bundle, "trap 'echo usr1 > /mark/got' USR1; trap 'echo term >> /mark/got; exit 7' TERM;"
               " echo ready > /mark/ready; while true; do sleep 0.05; done")
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    wait_for_file(mark / "ready")
    runtime.ok("kill", cid, "USR1")
    wait_for_file(mark / "got")
    assert runtime.state(cid)["status"] == "running"
    runtime.ok("kill", cid, "SIGTERM")
    runtime.wait_status(cid, "stopped")
    assert (mark / "got").read_text().split() == ["usr1", "term"]
    runtime.ok("delete", cid)


def wait_for_file(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_exec_in_a_running_container(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["hostname"] = "exec-target"
    bundle.process["args"] = ["sleep", "60"]
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    result = runtime("exec", "--env", "WHO=exec", "--cwd", "/etc", "--user", "1000:1000", cid,
                     "/bin/sh", "-c", 'hostname; echo $WHO; pwd; id -u; exit 5')
    assert result.returncode == 5, result.stderr
    assert result.stdout.split() == ["exec-target", "exec", "/etc", "1000"]
    ps = runtime.ok("ps", "--format", "json", cid)
    assert runtime.state(cid)["pid"] in [int(p) for p in json.loads(ps.stdout)]
    runtime.ok("delete", "--force", cid)
    assert runtime("state", cid).returncode != 0


def test_pause_and_resume(runtime: Runtime, bundle: Bundle) -> None:
    cgroup = f"/{runtime.name}-pause-{os.urandom(6).hex()}"
    bundle.linux["cgroupsPath"] = cgroup
    freezer = Path(f"/sys/fs/cgroup/freezer{cgroup}/freezer.state")
    bundle.process["args"] = ["sleep", "60"]
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    runtime.ok("pause", cid)
    runtime.wait_status(cid, "paused")  # crun 1.8 may still say "running" while freezing
    assert freezer.read_text().strip() == "FROZEN"
    runtime.ok("resume", cid)
    runtime.wait_status(cid, "running")
    assert freezer.read_text().strip() == "THAWED"
    runtime.ok("delete", "--force", cid)


# --- errors callers depend on ----------------------------------------------------------------


def test_errors_on_wrong_lifecycle_moves(runtime: Runtime, bundle: Bundle) -> None:
    assert runtime("state", "cf-no-such-container").returncode != 0
    bundle.process["args"] = ["sleep", "60"]
    cid = runtime.create(bundle)
    duplicate = runtime("create", "--bundle", str(bundle.path), cid)
    assert duplicate.returncode != 0
    runtime.ok("start", cid)
    assert runtime("start", cid).returncode != 0
    assert runtime("delete", cid).returncode != 0, "deleted a running container without --force"
    assert runtime.state(cid)["status"] == "running"
    runtime.ok("delete", "--force", cid)


# --- the terminal -------------------------------------------------------------------------------


def test_terminal_over_the_console_socket(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    bundle.process["terminal"] = True
    bundle.process["consoleSize"] = {"height": 33, "width": 101}
    sh(bundle, "tty; stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys")
    console = ConsoleSocket.listen(tmp_path / "console.sock")
    try:
        cid = runtime.create(bundle, "--console-socket", str(console.path))
        master = console.receive_master()
    finally:
        console.close()
    try:
        runtime.ok("start", cid)
        text = read_pty(master).decode()
    finally:
        os.close(master)
    lines = text.replace("\r\n", "\n").split()
    assert lines[0] in ("/dev/console", "/dev/pts/0")
    assert lines[1:] == ["33", "101", "all-ttys"]
    runtime.wait_status(cid, "stopped")
    runtime.ok("delete", cid)


def test_exec_with_a_terminal(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    # `podman exec -it` as conmon runs it: detached, a tty, its own console socket, a pid file.
    bundle.process["args"] = ["sleep", "60"]
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    console = ConsoleSocket.listen(tmp_path / "exec.sock")
    pid_file = tmp_path / "exec.pid"
    try:
        exec_ = subprocess.Popen(
            runtime.argv("exec", "--detach", "--tty", "--console-socket", str(console.path),
                         "--pid-file", str(pid_file), cid,
                         "/bin/sh", "-c", "read line; tty; [ -t 0 ] && echo stdin-$line"),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        master = console.receive_master()
    finally:
        console.close()
    try:
        assert exec_.wait(timeout=30) == 0
        assert int(pid_file.read_text()) > 0
        os.write(master, b"tty\n")
        text = read_pty(master).decode()
    finally:
        os.close(master)
    assert text.replace("\r", "").split() == ["tty", "/dev/pts/0", "stdin-tty"]
    runtime.ok("delete", "--force", cid)


def test_pid_file(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    bundle.process["args"] = ["sleep", "60"]
    pid_file = tmp_path / "container.pid"
    cid = runtime.create(bundle, "--pid-file", str(pid_file))
    assert int(pid_file.read_text()) == runtime.state(cid)["pid"]
    runtime.ok("delete", "--force", cid)


def test_error_goes_to_the_json_log(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    # conmon and podman read the runtime's --log to show the user why a container failed.
    log = tmp_path / "runtime.log"
    bundle.process["args"] = ["/no/such/program"]
    bundle.write()
    cid = runtime.new_id()
    result = runtime("--log", str(log), "--log-format", "json", "run", "--bundle",
                     str(bundle.path), cid)
    assert result.returncode != 0
    errors = [json.loads(line) for line in log.read_text().splitlines()
              if '"error"' in line]
    assert errors, log.read_text()
    assert any("/no/such/program" in entry["msg"] for entry in errors)
    assert all({"level", "msg", "time"} <= set(entry) for entry in errors)


def test_hooks_run_with_the_state_on_stdin(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    record = tmp_path / "hooks"
    record.mkdir()
    bundle.config["hooks"] = {
        kind: [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {record}/{kind}.json"]}]
        for kind in ("prestart", "createRuntime", "poststart", "poststop")
    }
    bundle.process["args"] = ["true"]
    assert runtime.run(bundle).returncode == 0
    states = {p.stem: json.loads(p.read_text()) for p in record.iterdir()}
    assert set(states) == {"prestart", "createRuntime", "poststart", "poststop"}
    cid = runtime.ids[-1]
    for kind, state in states.items():
        assert state["id"] == cid, kind
        assert state["bundle"] == str(bundle.path), kind
    assert states["createRuntime"]["pid"] > 0
    assert states["prestart"]["pid"] == states["createRuntime"]["pid"]


def test_kill_all_reaches_every_process(runtime: Runtime, bundle: Bundle) -> None:
    # Without a pid namespace the processes outlive pid 1 unless `kill --all` reaches them.
    bundle.linux["namespaces"] = [ns for ns in bundle.linux["namespaces"] if ns["type"] != "pid"]
    bundle.linux["cgroupsPath"] = f"/{runtime.name}-killall-{os.urandom(6).hex()}"
    sh(bundle, "sleep 60 & sleep 60 & exec sleep 60")
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    pids_file = Path(f"/sys/fs/cgroup/pids{bundle.linux['cgroupsPath']}/cgroup.procs")
    deadline = time.monotonic() + 10
    while len(pids_file.read_text().split()) < 3:
        assert time.monotonic() < deadline, "the sleeps never started"
        time.sleep(0.02)
    members = [int(p) for p in pids_file.read_text().split()]
    runtime.ok("kill", "--all", cid, "KILL")
    runtime.wait_status(cid, "stopped")
    deadline = time.monotonic() + 10
    while not all(has_exited(p) for p in members):
        assert time.monotonic() < deadline, "kill --all left processes running"
        time.sleep(0.02)
    runtime.ok("delete", "--force", cid)


def test_update_changes_the_limits_of_a_running_container(runtime: Runtime, bundle: Bundle) -> None:
    cgroup = f"/{runtime.name}-update-{os.urandom(6).hex()}"
    bundle.linux["cgroupsPath"] = cgroup
    bundle.linux["resources"]["memory"] = {"limit": 64 * 2**20}
    bundle.linux["resources"]["pids"] = {"limit": 50}
    bundle.process["args"] = ["sleep", "60"]
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    runtime.ok("update", "--memory", str(96 * 2**20), "--memory-reservation", str(48 * 2**20),
               "--pids-limit", "77", "--cpu-share", "300", "--cpu-quota", "30000",
               "--cpu-period", "100000", "--cpuset-cpus", "0", cid)

    def limits() -> list[str]:
        files = ("memory/memory.limit_in_bytes", "memory/memory.soft_limit_in_bytes",
                 "pids/pids.max", "cpu/cpu.shares", "cpu/cpu.cfs_quota_us", "cpuset/cpuset.cpus")
        return [Path(f"/sys/fs/cgroup/{f.replace('/', cgroup + '/', 1)}").read_text().strip()
                for f in files]

    assert limits() == [str(96 * 2**20), str(48 * 2**20), "77", "300", "30000", "0"]
    # containerd's shim sends the whole resources object on stdin
    runtime.ok("update", "--resources", "-", cid,
               input=json.dumps({"memory": {"limit": 80 * 2**20}, "pids": {"limit": 88},
                                 "cpu": {"shares": 256}}))
    assert limits()[:4] == [str(80 * 2**20), str(48 * 2**20), "88", "256"]
    runtime.ok("delete", "--force", cid)


def _no_process(c: dict[str, Any]) -> None:
    del c["process"]


def _namespace_path(c: dict[str, Any]) -> None:
    net = next(ns for ns in c["linux"]["namespaces"] if ns["type"] == "network")
    net["path"] = "/nonexistent/ns/net"


# config edits that runc, crun and corral-runtime all refuse
BREAKAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "no process": _no_process,
    "unknown namespace": lambda c: c["linux"]["namespaces"].append({"type": "no-such-namespace"}),
    "namespace path missing": _namespace_path,
    "empty args": lambda c: c["process"].update(args=[]),
    "missing rootfs": lambda c: c["root"].update(path="/nonexistent/rootfs"),
    "unknown rlimit": lambda c: c["process"]["rlimits"].append(
        {"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}),
    "unknown seccomp action": lambda c: c["linux"].update(
        seccomp={"defaultAction": "SCMP_ACT_BOGUS"}),
    "bind source missing": lambda c: c["mounts"].append(
        {"destination": "/data", "type": "bind", "source": "/nonexistent/x", "options": ["rbind"]}),
    "unknown filesystem": lambda c: c["mounts"].append(
        {"destination": "/data", "type": "nosuchfs", "source": "x"}),
}


@pytest.mark.parametrize("breakage", ["not json", *BREAKAGES])
def test_invalid_config_leaves_nothing_behind(runtime: Runtime, bundle: Bundle, breakage: str) -> None:
    cgroup = f"/{runtime.name}-invalid-{os.urandom(6).hex()}"
    bundle.linux["cgroupsPath"] = cgroup
    if breakage == "not json":
        (bundle.path / "config.json").write_text("{ this is not json")
    else:
        BREAKAGES[breakage](bundle.config)
        bundle.write()
    cid = runtime.new_id()
    result = runtime("create", "--bundle", str(bundle.path), cid, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert result.stderr.strip()
    assert runtime("state", cid).returncode != 0
    assert not (runtime.root / cid).exists()
    assert not any(Path("/sys/fs/cgroup").glob(f"*{cgroup}")), "a cgroup was left behind"


def test_devices_cgroup_denies_nodes_the_config_does_not_allow(
    runtime: Runtime, bundle: Bundle
) -> None:
    # With CAP_MKNOD a process can make any node, but `runc spec`'s deny-all rule plus the
    # default devices decide which ones it may open.
    for kind in ("bounding", "effective", "permitted"):
        bundle.process["capabilities"][kind].append("CAP_MKNOD")
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["nosuid", "mode=755"])
    # Major 42 has no driver: the cgroup check comes before the open reaches one, so EPERM
    # (not ENXIO) proves the devices cgroup refused it.
    sh(bundle, "mknod /scratch/dev42 c 42 0 && echo made; head -c 1 /scratch/dev42;"
               " echo dev42=$?; mknod /scratch/null c 1 3 && echo x > /scratch/null; echo null=$?")
    result = runtime.run(bundle)
    assert result.stdout.split() == ["made", "dev42=1", "null=0"], result.stderr
    assert "/scratch/dev42: Operation not permitted" in result.stderr


def test_cpuset_and_home(runtime: Runtime, bundle: Bundle) -> None:
    bundle.linux["resources"]["cpu"] = {"cpus": "0", "mems": "0"}
    bundle.linux["cgroupsPath"] = f"/{runtime.name}-cpuset-{os.urandom(6).hex()}"
    bundle.process["env"] = ["PATH=/bin:/usr/bin"]  # no HOME: the runtime takes it from passwd
    sh(bundle, "grep Cpus_allowed_list /proc/self/status; cat /sys/fs/cgroup/cpuset/cpuset.cpus;"
               " echo HOME=$HOME")
    assert output(runtime, bundle).split() == ["Cpus_allowed_list:", "0", "0", "HOME=/root"]


def test_exec_process_json(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    # conmon starts `podman exec` as `exec --process FILE`: the whole process from JSON.
    bundle.process["args"] = ["sleep", "60"]
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    process = {
        "terminal": False, "user": {"uid": 33, "gid": 33, "additionalGids": [100]},
        "args": ["/bin/sh", "-c", "id; pwd; echo $MODE; grep -E '^Cap(Eff|Bnd)' /proc/self/status;"
                 " exit 9"],
        "env": ["PATH=/bin", "MODE=json"], "cwd": "/var/www",
        "capabilities": {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": True,
    }
    (tmp_path / "process.json").write_text(json.dumps(process))
    result = runtime("exec", "--process", str(tmp_path / "process.json"), cid)
    assert result.returncode == 9, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "uid=33(www-data) gid=33(www-data) groups=100(users)"
    assert lines[1:3] == ["/var/www", "json"]
    # a non-root user keeps no effective caps without ambient ones
    assert status_fields("\n".join(lines[3:])) == {"CapEff": "0" * 16, "CapBnd": cap_mask("CAP_KILL")}
    runtime.ok("delete", "--force", cid)


def test_no_pivot(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["args"] = ["sh", "-c", "cat /etc/passwd | head -1; ls /proc/1/root/ | wc -l"]
    bundle.write()
    result = runtime("run", "--no-pivot", "--bundle", str(bundle.path), runtime.new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "root:x:0:0:root:/root:/bin/sh"


def test_run_detached(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["args"] = ["sleep", "60"]
    bundle.write()
    cid = runtime.new_id()
    result = runtime("run", "--detach", "--bundle", str(bundle.path), cid,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     capture_output=False)
    assert result.returncode == 0
    assert runtime.state(cid)["status"] == "running"
    runtime.ok("delete", "--force", cid)


def test_cgroup_namespace_shows_the_container_cgroup_as_root(runtime: Runtime, bundle: Bundle) -> None:
    bundle.linux["namespaces"].append({"type": "cgroup"})
    bundle.linux["cgroupsPath"] = f"/{runtime.name}-cgns-{os.urandom(6).hex()}"
    bundle.linux["resources"]["pids"] = {"limit": 33}
    sh(bundle, "cat /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max")
    lines = output(runtime, bundle).split()
    assert lines[-1] == "33"
    assert all(line.endswith(":/") for line in lines[:-1]), lines


def test_custom_masked_and_readonly_paths(runtime: Runtime, bundle: Bundle) -> None:
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["nosuid"])
    bundle.linux["maskedPaths"] = ["/etc", "/bin/busybox-not-there", "/root"]
    bundle.linux["readonlyPaths"] = ["/scratch"]
    sh(bundle, "ls -A /etc | wc -l; ls -A /root | wc -l; touch /scratch/x; echo scratch=$?")
    result = runtime.run(bundle)
    assert result.stdout.split() == ["0", "0", "scratch=1"], result.stderr
    assert "Read-only file system" in result.stderr


def test_overlay_and_file_bind_mounts(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    lower, upper, work = (tmp_path / d for d in ("lower", "upper", "work"))
    for d in (lower, upper, work):
        d.mkdir()
    (lower / "from-lower").write_text("lower\n")
    hostname_file = tmp_path / "hostname"
    hostname_file.write_text("file-bind\n")
    bundle.add_mount("/merged", "overlay", "overlay",
                     [f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}"])
    # podman bind-mounts single files (/etc/hostname, /etc/hosts, /run/.containerenv)
    bundle.add_mount("/etc/hostname", "bind", str(hostname_file), ["bind", "ro"])
    sh(bundle, "cat /merged/from-lower /etc/hostname; echo new > /merged/written;"
               " echo x > /etc/hostname; echo file=$?")
    result = runtime.run(bundle)
    assert result.stdout.split() == ["lower", "file-bind", "file=1"], result.stderr
    assert (upper / "written").read_text() == "new\n"  # the write went to the upper layer


def test_hugepage_limits(runtime: Runtime, bundle: Bundle) -> None:
    sizes = sorted(p.name.split(".")[1] for p in Path("/sys/fs/cgroup/hugetlb").glob("hugetlb.*.limit_in_bytes"))
    assert "2MB" in sizes, sizes
    bundle.linux["cgroupsPath"] = f"/{runtime.name}-hugetlb-{os.urandom(6).hex()}"
    bundle.linux["resources"]["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 * 2**21}]
    bundle.process["args"] = ["cat", "/sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes"]
    assert output(runtime, bundle).strip() == str(4 * 2**21)


def test_seccomp_log_and_trace_actions_allow_without_a_tracer(runtime: Runtime, bundle: Bundle) -> None:
    # LOG lets the call through (and logs it); TRACE without a tracer fails it with ENOSYS.
    bundle.linux["seccomp"] = seccomp(
        {"names": ["uname"], "action": "SCMP_ACT_LOG"},
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE"},
    )
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["nosuid"])
    sh(bundle, "uname -s; mkdir /scratch/d; echo mkdir=$?")
    result = runtime.run(bundle)
    assert result.stdout.split() == ["Linux", "mkdir=1"], result.stderr
    assert "Function not implemented" in result.stderr


def test_stdin_passes_through(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["args"] = ["cat"]
    result = runtime.run(bundle, input="through the runtime\n")
    assert (result.returncode, result.stdout) == (0, "through the runtime\n"), result.stderr


def test_preserve_fds(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    (tmp_path / "passed").write_text("fd 3 arrived\n")
    sh(bundle, "cat <&3; ls /proc/self/fd | wc -l")
    bundle.write()
    argv = runtime.argv("run", "--preserve-fds", "1", "--bundle", str(bundle.path), runtime.new_id())
    # the shell puts the file on fd 3 of the runtime (ours may be taken, e.g. by xdist)
    result = subprocess.run(["sh", "-c", 'exec "$@" 3<"$0"', str(tmp_path / "passed"), *argv],
                            capture_output=True, text=True, timeout=60, check=False)
    # 0-2, 3, and the fd `ls` opens for /proc/self/fd: nothing else leaked in
    assert result.stdout.split() == ["fd", "3", "arrived", "5"], result.stderr


def test_foreground_run_forwards_signals(runtime: Runtime, bundle: Bundle) -> None:
    sh(bundle, "trap 'exit 7' TERM; while true; do sleep 0.05; done")
    bundle.write()
    cid = runtime.new_id()
    foreground = subprocess.Popen(runtime.argv("run", "--bundle", str(bundle.path), cid),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        runtime.wait_status(cid, "running")
        foreground.send_signal(signal.SIGTERM)  # to the runtime, not the container
        assert foreground.wait(timeout=10) == 7
    finally:
        foreground.kill()
        foreground.wait()


def test_status_comes_from_the_kernel(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["args"] = ["sleep", "60"]
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    os.kill(runtime.state(cid)["pid"], signal.SIGKILL)  # behind the runtime's back
    runtime.wait_status(cid, "stopped")
    runtime.ok("delete", cid)


def test_bundle_defaults_to_the_working_directory(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["args"] = ["echo", "from cwd"]
    bundle.write()
    result = runtime("run", runtime.new_id(), cwd=bundle.path)
    assert (result.returncode, result.stdout) == (0, "from cwd\n"), result.stderr


def test_verbs_on_created_and_stopped_containers(runtime: Runtime, bundle: Bundle) -> None:
    # What runc and crun agree on; podman, conmon and containerd rely on these answers.
    bundle.process["args"] = ["sleep", "60"]
    created = runtime.create(bundle)
    runtime.ok("delete", created)  # a created container needs no --force
    assert runtime("state", created).returncode != 0

    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    runtime.ok("kill", cid, "KILL")
    assert runtime.wait_status(cid, "stopped")["pid"] == 0
    assert runtime("kill", cid, "TERM").returncode != 0, "signalled a stopped container"
    runtime.ok("kill", "--all", cid, "TERM")  # nothing left to signal is not an error
    assert runtime("start", cid).returncode != 0
    assert runtime("pause", cid).returncode != 0
    assert runtime("exec", cid, "true").returncode != 0
    runtime.ok("delete", cid)
    assert runtime("delete", cid).returncode != 0
    runtime.ok("delete", "--force", cid)  # --force on a missing container succeeds


def converse(argv: list[str], line: bytes) -> tuple[int, list[str]]:
    """Run `argv` on a new terminal, type `line` once it has printed its first line, and
    return its exit code and everything the terminal showed."""
    with on_a_terminal(argv) as (proc, master):
        shown = read_pty(master, b"\n")
        os.write(master, line)
        shown += read_pty(master)
        code = proc.wait(timeout=30)
    return code, shown.decode(errors="replace").replace("\r", "").split()


def test_foreground_run_on_the_users_terminal(runtime: Runtime, bundle: Bundle) -> None:
    # terminal: true without --console-socket: the runtime relays its own terminal
    bundle.process["terminal"] = True
    sh(bundle, "tty; read x; echo got-$x; exit 4")
    bundle.write()
    argv = runtime.argv("run", "--bundle", str(bundle.path), runtime.new_id())
    assert converse(argv, b"hello\n") == (4, ["/dev/pts/0", "hello", "got-hello"])


def test_exec_tty_on_the_users_terminal(runtime: Runtime, bundle: Bundle) -> None:
    bundle.process["args"] = ["sleep", "60"]
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    argv = runtime.argv("exec", "-t", cid, "sh", "-c", "tty; read x; echo got-$x; exit 4")
    assert converse(argv, b"hello\n") == (4, ["/dev/pts/0", "hello", "got-hello"])
    runtime.ok("delete", "--force", cid)


def test_container_hooks_run_in_the_containers_namespaces(
    runtime: Runtime, bundle: Bundle, tmp_path: Path
) -> None:
    # createContainer: in the container's mount namespace, before pivot_root (host paths still
    # reachable); startContainer: inside the container, just before the user program.
    out = tmp_path / "out"
    out.mkdir()
    bundle.add_mount("/out", "bind", str(out), ["rbind", "rw"])
    bundle.config["hooks"] = {
        "createContainer": [{"path": "/bin/sh", "args": [
            "sh", "-c", f"readlink /proc/self/ns/mnt > {out}/create; cat > {out}/create.json"]}],
        "startContainer": [{"path": "/bin/sh", "args": [
            "sh", "-c", "readlink /proc/self/ns/mnt > /out/start; ls /out > /out/start-saw"]}],
    }
    bundle.process["args"] = ["true"]
    assert runtime.run(bundle).returncode == 0
    create_ns = (out / "create").read_text()
    assert create_ns != os.readlink("/proc/self/ns/mnt") + "\n"
    assert (out / "start").read_text() == create_ns
    assert "create" in (out / "start-saw").read_text().split()
    assert json.loads((out / "create.json").read_text())["id"] == runtime.ids[-1]


def test_no_file_descriptor_leaks_into_the_container(runtime: Runtime, bundle: Bundle) -> None:
    # only stdio (and the directory `ls` itself opens) in the process and in an exec
    bundle.process["args"] = ["sh", "-c", "ls /proc/self/fd; sleep 60"]
    with tempfile.TemporaryFile("w+") as out:
        cid = runtime.create(bundle, stdout=out)
        runtime.ok("start", cid)
        exec_fds = runtime.ok("exec", cid, "ls", "/proc/self/fd").stdout.split()
        deadline = time.monotonic() + 10
        while True:
            out.seek(0)
            init_fds = out.read().split()
            if len(init_fds) >= 4 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    assert init_fds == ["0", "1", "2", "3"]
    assert exec_fds == ["0", "1", "2", "3"]
    runtime.ok("delete", "--force", cid)


@pytest.fixture
def shared_mount(tmp_path: Path) -> Iterator[Path]:
    """A host directory that is its own shared mount (a peer group to propagate from)."""
    source = tmp_path / "shared-source"
    source.mkdir()
    subprocess.run(["mount", "--bind", str(source), str(source)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(source)], check=True)
        yield source
    finally:
        subprocess.run(["umount", "--lazy", str(source)], check=True)


# crun 1.8 leaves bind mounts private unless rootfsPropagation is set; runc applies the option
@pytest.mark.parametrize("runtime", [r for r in RUNTIMES if r != "crun"], indirect=True)
@pytest.mark.parametrize(("option", "field"), [("rshared", "shared:"), ("rslave", "master:"),
                                               ("rprivate", "-")])
def test_bind_mount_propagation(runtime: Runtime, bundle: Bundle, shared_mount: Path,
                                option: str, field: str) -> None:
    bundle.add_mount("/data", "bind", str(shared_mount), ["rbind", option])
    bundle.process["args"] = ["cat", "/proc/self/mountinfo"]
    data = next(line.split() for line in output(runtime, bundle).splitlines()
                if line.split()[4] == "/data")
    assert data[6].startswith(field), data


@pytest.mark.parametrize("sysctl", ["vm.stat_interval", "net.ipv4.ip_forward", "kernel.shmmni"])
def test_sysctls_that_would_change_the_host_are_refused(runtime: Runtime, bundle: Bundle,
                                                        sysctl: str) -> None:
    # not namespaced at all, or namespaced by a namespace the container shares with the host
    bundle.linux["namespaces"] = [ns for ns in bundle.linux["namespaces"]
                                  if ns["type"] not in ("network", "ipc")]
    host_file = Path("/proc/sys", sysctl.replace(".", "/"))
    before = host_file.read_text()
    bundle.linux["sysctl"] = {sysctl: str(int(before.split()[0]) + 1)}
    try:
        result = runtime.run(bundle)
        assert result.returncode != 0
        assert sysctl in result.stderr
        assert host_file.read_text() == before
    finally:
        host_file.write_text(before)  # undo a runtime that got it wrong


@pytest.fixture
def rootless_home(busybox_rootfs: Path) -> Iterator[Path]:
    """A directory of uid 1000's own (bundle, rootfs copy, state root) on a path it can reach."""
    home = Path(tempfile.mkdtemp(prefix="corral-rootless-", dir="/tmp"))
    try:
        home.chmod(0o755)
        shutil.copytree(busybox_rootfs, home / "rootfs", symlinks=True)
        for path in [home, *home.rglob("*")]:
            os.lchown(path, ROOTLESS_UID, ROOTLESS_UID)
        yield home
    finally:
        shutil.rmtree(home)


ROOTLESS_UID = 1000


def as_rootless_user(*argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", f"--reuid={ROOTLESS_UID}", f"--regid={ROOTLESS_UID}", "--clear-groups",
         "env", f"XDG_RUNTIME_DIR={home}/xdg", f"HOME={home}", *argv],
        cwd=home, capture_output=True, text=True, timeout=60, check=False)


def test_rootless(runtime: Runtime, rootless_home: Path) -> None:
    # `spec --rootless` as the user maps container root to that user; no cgroups, no privileges
    assert as_rootless_user("runc", "spec", "--rootless", home=rootless_home).returncode == 0
    config = json.loads((rootless_home / "config.json").read_text())
    config["process"].update(terminal=False, args=["sh", "-c", "id; cat /proc/self/uid_map"])
    (rootless_home / "config.json").write_text(json.dumps(config))
    result = as_rootless_user(runtime.binary, "--root", f"{rootless_home}/state", "run",
                              runtime.new_id(), home=rootless_home)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "uid=0(root) gid=0(root)"
    assert lines[1].split() == ["0", str(ROOTLESS_UID), "1"]


def test_hostname_sysctl_conflicting_with_the_hostname_field_is_refused(
    runtime: Runtime, bundle: Bundle
) -> None:
    bundle.config["hostname"] = "from-the-field"
    bundle.linux["sysctl"] = {"kernel.hostname": "from-the-sysctl"}
    result = runtime.run(bundle)
    assert result.returncode != 0
    assert "kernel.hostname" in result.stderr


@pytest.mark.parametrize("propagation", ["shared", "rshared", "slave", "private"])
def test_rootfs_propagation(runtime: Runtime, bundle: Bundle, propagation: str) -> None:
    bundle.linux["rootfsPropagation"] = propagation
    bundle.process["args"] = ["cat", "/etc/passwd"]
    assert output(runtime, bundle).startswith("root:x:0:0:")


@pytest.fixture
def tree_with_a_submount(tmp_path: Path) -> Iterator[Path]:
    """A host directory with a tmpfs mounted below it (what `r*` options must reach)."""
    source = tmp_path / "tree"
    (source / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(source / "sub")], check=True)
    try:
        yield source
    finally:
        subprocess.run(["umount", "--lazy", str(source / "sub")], check=True)


@pytest.mark.parametrize(("options", "flags"), [
    (["rro"], {"ro"}),
    (["rnosuid", "rnodev", "rnoexec"], {"nosuid", "nodev", "noexec"}),
])
def test_recursive_mount_attributes(runtime: Runtime, bundle: Bundle, tree_with_a_submount: Path,
                                    options: list[str], flags: set[str]) -> None:
    bundle.add_mount("/data", "bind", str(tree_with_a_submount), ["rbind", *options])
    bundle.process["args"] = ["cat", "/proc/self/mountinfo"]
    table = mount_table(output(runtime, bundle))
    for point in ("/data", "/data/sub"):
        assert flags <= set(table[point]), (point, table[point])


@pytest.mark.parametrize("uid", [0, 1000])
def test_no_capabilities_object_means_no_capabilities(runtime: Runtime, bundle: Bundle,
                                                      uid: int) -> None:
    # the bounding set goes too: otherwise a setuid binary could regain every capability
    del bundle.process["capabilities"]
    bundle.process["user"] = {"uid": uid, "gid": uid}
    sh(bundle, "grep -E '^Cap' /proc/self/status")
    assert set(status_fields(output(runtime, bundle)).values()) == {"0" * 16}


# crun 1.8 has no `events`; runc's --stats output is what containerd's runc shim v1 decodes
@pytest.mark.parametrize("runtime", [r for r in RUNTIMES if r != "crun"], indirect=True)
def test_events_stats(runtime: Runtime, bundle: Bundle) -> None:
    bundle.linux["resources"]["memory"] = {"limit": 64 * 2**20}
    bundle.linux["cgroupsPath"] = f"/{runtime.name}-events-{os.urandom(6).hex()}"
    bundle.process["args"] = ["sleep", "60"]
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    event = json.loads(runtime.ok("events", "--stats", cid).stdout)
    assert (event["type"], event["id"]) == ("stats", cid)
    data = event["data"]
    assert data["memory"]["usage"]["limit"] == 64 * 2**20
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"]["current"] >= 1
    assert data["cpu"]["usage"]["total"] > 0
    runtime.ok("delete", "--force", cid)


def test_poststart_after_start_and_poststop_at_delete(runtime: Runtime, bundle: Bundle,
                                                      tmp_path: Path) -> None:
    bundle.config["hooks"] = {
        kind: [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {tmp_path}/{kind}.json"]}]
        for kind in ("poststart", "poststop")
    }
    bundle.process["args"] = ["sleep", "60"]
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    poststart = json.loads((tmp_path / "poststart.json").read_text())
    assert poststart["pid"] == runtime.state(cid)["pid"]
    assert poststart["status"] in ("running", "created")  # runc 1.1 still says "created"
    runtime.ok("kill", cid, "KILL")
    runtime.wait_status(cid, "stopped")
    assert not (tmp_path / "poststop.json").exists(), "poststop ran before delete"
    runtime.ok("delete", cid)
    poststop = json.loads((tmp_path / "poststop.json").read_text())
    assert (poststop["id"], poststop["status"]) == (cid, "stopped")


def test_paused_container_refuses_exec_and_force_delete_removes_it(runtime: Runtime,
                                                                   bundle: Bundle) -> None:
    cgroup = f"/{runtime.name}-paused-{os.urandom(6).hex()}"
    bundle.linux["cgroupsPath"] = cgroup
    bundle.process["args"] = ["sleep", "60"]
    cid = runtime.create(bundle)
    runtime.ok("start", cid)
    pid = runtime.state(cid)["pid"]
    runtime.ok("pause", cid)
    assert runtime("exec", cid, "true").returncode != 0
    runtime.ok("delete", "--force", cid)  # `podman rm -f` of a paused container
    assert runtime("state", cid).returncode != 0
    deadline = time.monotonic() + 10
    while not has_exited(pid):
        assert time.monotonic() < deadline, "the frozen process survived delete --force"
        time.sleep(0.02)
    assert not Path(f"/sys/fs/cgroup/freezer{cgroup}").exists()


def test_pod_members_join_the_infra_containers_namespaces(
    runtime: Runtime, bundle: Bundle, base_config: dict[str, Any], shared_rootfs: Path,
    tmp_path: Path
) -> None:
    # podman's pods: an infra container holds pid/net/ipc/uts, members join them by path
    bundle.config["hostname"] = "the-pod"
    bundle.process["args"] = ["sleep", "60"]
    infra = runtime.create(bundle)
    runtime.ok("start", infra)
    pid = runtime.state(infra)["pid"]
    member = make_bundle(tmp_path / "member", base_config, shared_rootfs,
                         ["sh", "-c", "cat /proc/1/comm; hostname; readlink /proc/self/ns/net"])
    files = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts"}
    for ns in member.linux["namespaces"]:
        if ns["type"] in files:
            ns["path"] = f"/proc/{pid}/ns/{files[ns['type']]}"
    member.config.pop("hostname", None)
    assert output(runtime, member).split() == ["sleep", "the-pod", os.readlink(f"/proc/{pid}/ns/net")]
    runtime.ok("delete", "--force", infra)
