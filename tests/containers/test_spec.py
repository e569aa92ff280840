"""What a container sees: Docker's isolation and security defaults, and the flags that change them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.containers.conftest import RUNTIMES, Corral

DOCKER_CAPS = 0x00000000A80425FB  # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
# NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP


def sh(corral: Corral, *args: str, check: bool = True) -> str:
    return corral("run", "--rm", *args[:-1], "busybox", "sh", "-c", args[-1], check=check).stdout.strip()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_isolation(corral: Corral, runtime: str) -> None:
    out = sh(corral, "--runtime", runtime, "--hostname", "inside",
             "hostname; echo $$; ps | wc -l; cat /etc/hostname; grep -c . /proc/mounts; echo $HOSTNAME; echo $PATH")
    hostname, pid, processes, etc_hostname, _mounts, env_host, path = out.splitlines()
    assert hostname == etc_hostname == env_host == "inside" != os.uname().nodename
    assert pid == "1" and int(processes) <= 4  # header, sh, ps, wc
    assert path == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_security_defaults(corral: Corral) -> None:
    caps = sh(corral, "grep CapEff /proc/self/status | cut -f2")
    assert int(caps, 16) == DOCKER_CAPS
    assert sh(corral, "cat /proc/kcore | wc -c") == "0"
    assert sh(corral, "cat /proc/keys | wc -c") == "0"
    assert "Read-only" in sh(corral, "(echo 1 > /proc/sys/kernel/panic) 2>&1; true")
    assert sh(corral, "grep Seccomp: /proc/self/status | cut -f2") == "2"
    # new user namespaces (unshare), mount and the keyring are refused by seccomp / capabilities
    assert "Operation not permitted" in sh(corral, "unshare -U true 2>&1; true")
    assert "denied" in sh(corral, "mount -t tmpfs none /tmp 2>&1; true")
    assert sh(corral, "for d in null zero full random urandom tty; do test -c /dev/$d || echo $d; done") == ""


def test_privileged_and_capabilities(corral: Corral) -> None:
    assert int(sh(corral, "--cap-drop", "ALL", "grep CapEff /proc/self/status | cut -f2"), 16) == 0
    with_admin = int(sh(corral, "--cap-add", "SYS_ADMIN", "grep CapEff /proc/self/status | cut -f2"), 16)
    assert with_admin & (1 << 21)
    assert sh(corral, "--privileged", "grep Seccomp: /proc/self/status | cut -f2") == "0"
    assert sh(corral, "--privileged", "mount -t tmpfs none /tmp && echo mounted") == "mounted"
    assert sh(corral, "--security-opt", "seccomp=unconfined", "grep Seccomp: /proc/self/status | cut -f2") == "0"
    assert sh(corral, "--security-opt", "no-new-privileges", "grep NoNewPrivs /proc/self/status | cut -f2") == "1"


def test_user_workdir_entrypoint_tty(corral: Corral) -> None:
    assert sh(corral, "-u", "nobody", "id -u; id -g") == "65534\n65534"
    assert sh(corral, "-u", "1234:5678", "--group-add", "100", "id -u; id -g; id -G") == "1234\n5678\n5678 100"
    assert sh(corral, "-w", "/new/dir", "pwd") == "/new/dir"
    assert corral.out("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b") == "a b"
    assert corral.out("run", "--rm", "-t", "busybox", "sh", "-c", "echo $TERM") == "xterm"


def test_env_from_caller_and_file(corral: Corral, tmp_path: os.PathLike[str]) -> None:
    env_file = os.path.join(tmp_path, "env")
    with open(env_file, "w") as f:
        f.write("# comment\nFROM_FILE=yes\n")
    corral.env["CORRAL_TEST_FROM_CALLER"] = "passed-through"
    out = sh(corral, "--env-file", env_file, "-e", "A=1", "-e", "CORRAL_TEST_FROM_CALLER", "-e", "NOT_SET_X",
             "echo $A $FROM_FILE $CORRAL_TEST_FROM_CALLER ${NOT_SET_X-unset}")
    del corral.env["CORRAL_TEST_FROM_CALLER"]
    assert out == "1 yes passed-through unset"


def test_read_only_tmpfs_shm_ulimit_sysctl_init(corral: Corral) -> None:
    assert "Read-only" in sh(corral, "--read-only", "(touch /x) 2>&1; true")
    assert sh(corral, "--read-only", "--tmpfs", "/tmp", "touch /tmp/x && echo ok") == "ok"
    assert sh(corral, "--shm-size", "16m", "df -k /dev/shm | tail -1 | awk '{print $2}'") == "16384"
    assert sh(corral, "--ulimit", "nofile=512:1024", "ulimit -n") == "512"
    assert sh(corral, "--sysctl", "net.ipv4.ip_forward=1", "cat /proc/sys/net/ipv4/ip_forward") == "1"
    assert sh(corral, "--init", "cat /proc/1/cmdline | tr '\\0' ' '").startswith("/run/corral-init -- sh")


def test_network_modes(corral: Corral) -> None:
    assert sh(corral, "--network", "none", "ls /sys/class/net | tr '\\n' ' '") == "lo"
    assert sh(corral, "--network", "host", "readlink /proc/self/ns/net") == os.readlink("/proc/self/ns/net")
    assert sh(corral, "--network", "none", "readlink /proc/self/ns/net") != os.readlink("/proc/self/ns/net")


@pytest.mark.parametrize("mode", ["host", "none"])
def test_published_ports_without_a_network_are_discarded_with_a_warning(corral: Corral, mode: str) -> None:
    run = corral("run", "--rm", "--network", mode, "-p", "18080:80", "busybox", "echo", "ran")
    assert run.stdout == "ran\n"
    assert run.stderr == "WARNING: Published ports are discarded when using host network mode\n"
    assert corral("run", "--rm", "--network", mode, "busybox", "true").stderr == ""


def test_a_none_container_can_be_joined_and_leaves_nothing(corral: Corral, name: str) -> None:
    corral("run", "-d", "--name", name, "--network", "none", "--hostname", "solo", "busybox", "sleep", "60")
    sandbox = corral.inspect(name, "{{.NetworkSettings.SandboxKey}}")
    assert sandbox.startswith(str(corral.root / "run" / "netns")) and os.path.ismount(sandbox)
    joined = sh(corral, "--network", f"container:{name}", "cat /etc/hostname; ls /sys/class/net | tr '\\n' ' '")
    assert joined == "solo\nlo"
    corral("rm", "-f", name)
    assert not any((corral.store / "network" / "containers").iterdir())
    assert not any(p.name != ".shared" for p in (corral.root / "run" / "netns").glob("*"))


def test_labels_cidfile_and_ps_filters(corral: Corral, name: str, tmp_path: os.PathLike[str]) -> None:
    cidfile = os.path.join(tmp_path, "cid")
    cid = corral.out("create", "--name", name, "--label", "tier=web", "--cidfile", cidfile, "busybox", "true")
    assert Path(cidfile).read_text() == cid
    assert corral.out("ps", "-a", "-q", "--filter", "label=tier=web") == cid[:12]
    assert corral.out("ps", "-a", "-q", "--filter", "label=tier=db") == ""
    assert corral.out("ps", "-a", "--filter", "status=created", "--format", "{{.Names}} {{.State}}") == f"{name} created"
    assert corral.inspect(name, "{{index .Config.Labels \"tier\"}}") == "web"
    again = corral("create", "--cidfile", cidfile, "busybox", "true", check=False)
    assert again.returncode == 125 and cidfile in again.stderr
    corral("rm", name)


def test_device_and_stop_signal(corral: Corral, name: str) -> None:
    assert sh(corral, "--device", "/dev/fuse", "test -c /dev/fuse && echo present") == "present"
    assert sh(corral, "test -e /dev/fuse || echo absent") == "absent"
    corral("run", "-d", "--name", name, "--stop-signal", "USR1", "busybox", "sh", "-c",
           "trap 'exit 9' USR1; while true; do sleep 0.1; done")
    corral.wait_status(name, "running")
    corral("stop", name)
    assert corral.inspect(name, "{{.State.ExitCode}} {{.Config.StopSignal}}") == "9 USR1"
    corral("rm", name)


def test_container_prune(corral: Corral, name: str) -> None:
    corral("create", "--name", f"{name}-created", "busybox", "true")
    corral("run", "--name", f"{name}-exited", "busybox", "true")
    corral("run", "-d", "--name", f"{name}-running", "busybox", "sleep", "60")
    out = corral.out("container", "prune", "-f")
    assert "Deleted Containers" in out
    assert corral.out("ps", "-a", "--format", "{{.Names}}") == f"{name}-running"
    corral("rm", "-f", f"{name}-running")


def test_published_port_shows_in_ps(corral: Corral, name: str) -> None:
    corral("run", "-d", "--name", name, "-p", "80", "busybox", "httpd", "-f", "-p", "80")
    ports = corral.out("ps", "--filter", f"name={name}", "--format", "{{.Ports}}")
    host_ip_port, _, target = ports.partition("->")
    assert target == "80/tcp" and int(host_ip_port.rsplit(":", 1)[1]) > 0
    corral("rm", "-f", name)
    assert corral.out("ps", "-a", "--filter", f"name={name}", "--format", "{{.Ports}}") == ""


def test_top_level_inspect_finds_images_and_volumes(corral: Corral, name: str) -> None:
    corral("run", "--rm", "busybox", "true")  # the built-in image is made on first use
    assert corral.out("inspect", "-f", "{{.Id}}", "busybox").startswith("sha256:")
    corral("volume", "create", f"{name}-v")
    assert corral.out("inspect", "-f", "{{.Name}}", f"{name}-v") == f"{name}-v"
    corral("volume", "rm", f"{name}-v")
    missing = corral("inspect", f"{name}-nothing", check=False)
    assert missing.returncode == 125 and "No such object" in missing.stderr
