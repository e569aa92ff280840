"""Paths the image controls are resolved inside the root: symlinks in the rootfs that point at
host paths must not make the runtime create, mount or change anything on the host."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import corral_bin
from tests.runtime.corral_bundle import Bundle, Runtime, new_id


def _rootfs(b: Bundle) -> Path:
    return (b.path / b.config["root"]["path"]).resolve()


def _mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


def test_dev_symlink_to_host_dir(runtime: Runtime, private_bundle: Bundle, tmp_path: Path) -> None:
    host = tmp_path / "host-dev"
    host.mkdir()
    rootfs = _rootfs(private_bundle)
    os.rmdir(rootfs / "dev")
    os.symlink(str(host), rootfs / "dev")  # absolute: /tmp/.../host-dev
    private_bundle.config["mounts"] = [m for m in private_bundle.config["mounts"]
                                       if not m["destination"].startswith("/dev")]
    private_bundle.shell("ls /dev/null && echo ok").write()
    out = runtime("run", "-b", str(private_bundle.path), new_id())
    assert list(host.iterdir()) == []  # nothing made on the host
    assert out.returncode == 0, out.stderr  # the nodes went to <rootfs>/tmp/.../host-dev
    assert (rootfs / str(host).lstrip("/") / "null").exists()


def test_mount_destination_symlink_to_host_dir(runtime: Runtime, private_bundle: Bundle,
                                               tmp_path: Path) -> None:
    host = tmp_path / "host-target"
    host.mkdir()
    (host / "precious").write_text("keep")
    source = tmp_path / "source"
    source.mkdir()
    (source / "from-source").write_text("x")
    rootfs = _rootfs(private_bundle)
    os.symlink(str(host), rootfs / "evil")
    os.symlink("../../../../../../../../" + str(host).lstrip("/"), rootfs / "evil-relative")
    for dest in ("/evil", "/evil-relative/sub"):
        private_bundle.config["mounts"].append(
            {"destination": dest, "type": "bind", "source": str(source), "options": ["rbind"]})
    private_bundle.shell("ls /evil /evil-relative/sub").write()
    out = runtime("run", "-b", str(private_bundle.path), new_id())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split().count("from-source") == 2
    assert sorted(p.name for p in host.iterdir()) == ["precious"]
    assert not _mounted(host)
    assert (host / "precious").read_text() == "keep"


def test_masked_path_symlink_stays_inside(runtime: Runtime, private_bundle: Bundle,
                                          tmp_path: Path) -> None:
    host_file = tmp_path / "host-secret"
    host_file.write_text("secret")
    rootfs = _rootfs(private_bundle)
    os.symlink(str(host_file), rootfs / "masked-link")
    private_bundle.config["linux"]["maskedPaths"].append("/masked-link")
    private_bundle.config["linux"]["readonlyPaths"].append("/masked-link")
    private_bundle.shell("true").write()
    out = runtime("run", "-b", str(private_bundle.path), new_id())
    assert out.returncode == 0, out.stderr
    assert host_file.read_text() == "secret"
    assert not _mounted(host_file)


def test_cwd_symlink_is_resolved_inside(runtime: Runtime, private_bundle: Bundle,
                                        tmp_path: Path) -> None:
    host = tmp_path / "host-cwd"
    host.mkdir()
    rootfs = _rootfs(private_bundle)
    os.symlink(str(host), rootfs / "work")
    private_bundle.config["process"]["cwd"] = "/work/sub"
    private_bundle.shell("pwd").write()
    out = runtime("run", "-b", str(private_bundle.path), new_id())
    assert out.returncode == 0, out.stderr
    assert list(host.iterdir()) == []
    assert (rootfs / str(host).lstrip("/") / "sub").is_dir()


def test_no_fd_leaks_into_the_container(runtime: Runtime, bundle: Bundle) -> None:
    bundle.shell("ls /proc/self/fd").write()
    leak = os.open("/etc/hostname", os.O_RDONLY)  # inheritable fd in the runtime's caller
    os.set_inheritable(leak, True)
    try:
        out = runtime("run", "-b", str(bundle.path), new_id(), pass_fds=(leak,))
    finally:
        os.close(leak)
    assert out.returncode == 0, out.stderr
    assert sorted(int(fd) for fd in out.stdout.split()) == [0, 1, 2, 3]  # 3: ls's own dir fd


def test_preserve_fds_passes_them_on(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("passed through")
    bundle.shell("cat <&3").write()
    # the shell opens fd 3 for the runtime (the test process's own fd 3 may be xdist's)
    out = subprocess.run(
        ["sh", "-c", 'exec "$@" 3<"$DATA"', "sh", corral_bin("corral-runtime"), "--root",
         str(runtime.root), "run", "--preserve-fds", "1", "-b", str(bundle.path), new_id()],
        capture_output=True, text=True, timeout=30, env={**os.environ, "DATA": str(data)})
    assert out.returncode == 0, out.stderr
    assert out.stdout == "passed through"


def test_listen_fds_pass_through(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    data = tmp_path / "socket-stand-in"
    data.write_text("activated")
    bundle.shell("echo $LISTEN_FDS $LISTEN_PID; cat <&3").write()
    out = subprocess.run(
        ["sh", "-c", 'exec "$@" 3<"$DATA"', "sh", corral_bin("corral-runtime"), "--root",
         str(runtime.root), "run", "-b", str(bundle.path), new_id()],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "DATA": str(data), "LISTEN_FDS": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["1 1", "activated"]
