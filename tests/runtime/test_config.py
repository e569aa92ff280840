"""What config.json asks for is what the container sees: root, masks, read-only paths, devices,
names, sysctls, rlimits, oom score, mounts with flags and propagation, --no-pivot."""

from __future__ import annotations

from pathlib import Path

from tests.runtime.corral_bundle import Bundle, Runtime, new_id


def _run(runtime: Runtime, bundle: Bundle, script: str, *flags: str) -> list[str]:
    bundle.shell(script).write()
    out = runtime("run", *flags, "-b", str(bundle.path), new_id())
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_read_only_root_masked_and_read_only_paths(runtime: Runtime, bundle: Bundle) -> None:
    lines = _run(runtime, bundle,
                 "touch /x 2>/dev/null && echo root-rw || echo root-ro; "
                 "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
                 "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-rw || echo sys-ro; "
                 "touch /dev/shm/ok && echo shm-rw")
    assert lines == ["root-ro", "0", "0", "sys-ro", "shm-rw"]


def test_default_devices_and_links(runtime: Runtime, bundle: Bundle) -> None:
    lines = _run(runtime, bundle,
                 "for d in null zero full random urandom tty; do ls -l /dev/$d | cut -c1-10; done; "
                 "readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin; "
                 "head -c 4 /dev/zero | wc -c")
    assert lines[:6] == ["crw-rw-rw-"] * 6
    assert lines[6:] == ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0", "4"]


def test_config_devices(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["devices"] = [
        {"type": "c", "path": "/dev/mynull", "major": 1, "minor": 3, "fileMode": 0o620,
         "uid": 7, "gid": 8}]
    lines = _run(runtime, bundle, "stat -c '%F %a %u %g %t %T' /dev/mynull")
    assert lines == ["character special file 620 7 8 1 3"]


def test_names_sysctl_rlimits_oom(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["hostname"] = "h1"
    bundle.config["domainname"] = "example.test"
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"}
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
                                           {"type": "RLIMIT_NPROC", "soft": 99, "hard": 99}]
    bundle.config["process"]["oomScoreAdj"] = 500
    lines = _run(runtime, bundle,
                 "hostname; cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward; "
                 "cat /proc/sys/kernel/shmmax; ulimit -n; ulimit -Hn; ulimit -u; "
                 "cat /proc/self/oom_score_adj")
    assert lines == ["h1", "example.test", "1", "65536", "321", "654", "99", "500"]


def test_mounts_flags_and_tmpfs_options(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    source = tmp_path / "data"
    source.mkdir()
    (source / "file").write_text("data")
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(source),
         "options": ["rbind", "ro", "nosuid", "nodev", "rprivate"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["noexec", "size=1m", "mode=700"]},
        {"destination": "/etc/file-mount", "type": "bind", "source": str(source / "file"),
         "options": ["bind"]},
    ]
    lines = _run(runtime, bundle,
                 "cat /data/file; echo; touch /data/x 2>/dev/null || echo data-ro; "
                 "grep ' /data ' /proc/self/mountinfo | cut -d' ' -f6; "
                 "grep ' /scratch ' /proc/self/mounts | cut -d' ' -f4; stat -c %a /scratch; "
                 "cat /etc/file-mount")
    assert lines[0] == "data"
    assert lines[1] == "data-ro"
    assert set(lines[2].split(",")) >= {"ro", "nosuid", "nodev"}
    assert "noexec" in lines[3].split(",")
    assert "size=1024k" in lines[3].split(",")
    assert lines[4] == "700"
    assert lines[5] == "data"


def test_no_pivot(runtime: Runtime, bundle: Bundle) -> None:
    lines = _run(runtime, bundle, "ls / | grep -c bin; cat /proc/self/mountinfo | wc -l",
                 "--no-pivot")
    assert lines[0] == "2"  # bin and sbin of the busybox root


def test_time_namespace_offsets(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400},
                                             "monotonic": {"secs": 3600, "nanosecs": 5}}
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    lines = _run(runtime, bundle, "cat /proc/uptime; cat /proc/self/timens_offsets")
    assert float(lines[0].split()[0]) - host_uptime >= 86400  # boottime is what uptime shows
    assert [line.split() for line in lines[1:]] == [["monotonic", "3600", "5"],
                                                   ["boottime", "86400", "0"]]


def test_cgroup_namespace_and_mount(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.config["linux"]["resources"] = {"pids": {"limit": 42}}
    lines = _run(runtime, bundle, "cat /proc/self/cgroup | grep pids; cat /sys/fs/cgroup/pids/pids.max")
    assert lines == [lines[0].split(":")[0] + ":pids:/", "42"]


def test_seccomp_notify_fd_reaches_the_listener(runtime: Runtime, bundle: Bundle,
                                                tmp_path: Path) -> None:
    import json
    import os
    import socket
    import threading

    path = str(tmp_path / "agent.sock")
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(path)
    agent.listen(1)
    agent.settimeout(20)
    received: dict[str, object] = {}

    def serve() -> None:
        conn, _ = agent.accept()
        message, fds, _, _ = socket.recv_fds(conn, 65536, 1)
        received["message"] = json.loads(message)
        received["fds"] = len(fds)
        for fd in fds:
            os.close(fd)  # no answers: the notified syscalls fail with ENOSYS
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path, "listenerMetadata": "meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    lines = _run(runtime, bundle, "mkdir /dev/shm/x 2>/dev/null; echo rc=$?")
    thread.join(timeout=20)
    agent.close()
    assert lines == ["rc=1"]
    assert received["fds"] == 1
    message = received["message"]
    assert isinstance(message, dict)
    assert message["fds"] == ["seccompFd"]
    assert message["metadata"] == "meta"
    assert message["state"]["id"]
