"""Files in and out of containers: cp both ways and as tar streams, commit, diff, export, volumes."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.containers.conftest import Corral


@pytest.fixture(scope="module")
def box(corral: Corral) -> str:
    """A running container whose image has a symlink pointing out of the root."""
    name = "files-box"
    corral("run", "-d", "--name", name, "busybox", "sh", "-c",
           "mkdir -p /data/sub && echo inside > /data/sub/f && ln -s /etc /data/etc-link && "
           "ln -s ../../../../../../../../tmp /data/escape && sleep 600")
    corral.wait_status(name, "running")
    return name


def test_cp_host_to_container_and_back(corral: Corral, box: str, tmp_path: Path) -> None:
    src = tmp_path / "hello.txt"
    src.write_text("from the host\n")
    corral("cp", str(src), f"{box}:/tmp/")
    assert corral.out("exec", box, "cat", "/tmp/hello.txt") == "from the host"
    assert corral.out("exec", box, "stat", "-c", "%u", "/tmp/hello.txt") == "0"
    corral("cp", str(src), f"{box}:/tmp/renamed.txt")
    assert corral.out("exec", box, "cat", "/tmp/renamed.txt") == "from the host"

    out = tmp_path / "out"
    out.mkdir()
    corral("cp", f"{box}:/data/sub", str(out))
    assert (out / "sub" / "f").read_text() == "inside\n"
    corral("cp", f"{box}:/data/sub/.", str(out / "contents"))
    assert (out / "contents" / "f").read_text() == "inside\n"


def test_cp_tar_streams(corral: Corral, box: str) -> None:
    stream = subprocess.run([corral.binary, "cp", f"{box}:/data/sub", "-"], env=corral.env,
                            capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        assert sorted(tar.getnames()) == ["sub", "sub/f"]

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"streamed\n"
        info = tarfile.TarInfo("streamed.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    subprocess.run([corral.binary, "cp", "-", f"{box}:/tmp"], env=corral.env, input=buf.getvalue(), check=True)
    assert corral.out("exec", box, "cat", "/tmp/streamed.txt") == "streamed"


def test_cp_never_escapes_the_root(corral: Corral, box: str, tmp_path: Path) -> None:
    marker = Path("/tmp") / f"corral-escape-{box}"
    marker.unlink(missing_ok=True)
    src = tmp_path / f"corral-escape-{box}"
    src.write_text("x")
    # /data/escape -> ../../../tmp resolves to the container's /tmp, never the host's
    corral("cp", str(src), f"{box}:/data/escape/")
    assert not marker.exists()
    assert corral.out("exec", box, "cat", f"/tmp/corral-escape-{box}") == "x"
    # an absolute link is followed inside the container, not on the host
    corral("cp", f"{box}:/data/etc-link/hostname", str(tmp_path / "hn"))
    assert (tmp_path / "hn").read_text() == corral.out("exec", box, "cat", "/etc/hostname") + "\n"

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        link = tarfile.TarInfo("up")
        link.type, link.linkname = tarfile.SYMTYPE, "/"
        tar.addfile(link)
        f = tarfile.TarInfo(f"up/tmp/corral-evil-{box}")
        f.size = 1
        tar.addfile(f, io.BytesIO(b"!"))
    subprocess.run([corral.binary, "cp", "-", f"{box}:/tmp"], env=corral.env, input=evil.getvalue(), check=True)
    assert not Path(f"/tmp/corral-evil-{box}").exists()
    assert corral.out("exec", box, "cat", f"/tmp/corral-evil-{box}") == "!"


def test_cp_missing_source(corral: Corral, box: str, tmp_path: Path) -> None:
    proc = corral("cp", f"{box}:/no/such", str(tmp_path), check=False)
    assert proc.returncode == 125 and "/no/such" in proc.stderr


def test_commit_then_run_sees_the_change(corral: Corral, name: str) -> None:
    corral("run", "--name", name, "busybox", "sh", "-c", "echo committed > /greeting; rm /etc/group")
    changes = corral.out("diff", name).splitlines()
    assert "A /greeting" in changes and "D /etc/group" in changes and "C /etc" in changes
    image = corral.out("commit", "-m", "a change", "-c", "CMD [\"cat\", \"/greeting\"]", "-c", "ENV MOOD=happy",
                       name, f"committed-{name}:v1")
    assert image.startswith("sha256:")
    assert corral.out("run", "--rm", f"committed-{name}:v1") == "committed"
    assert corral.out("run", "--rm", f"committed-{name}:v1", "sh", "-c",
                      "echo $MOOD; test -e /etc/group || echo gone") == "happy\ngone"
    corral("rm", name)


def test_export(corral: Corral, name: str, tmp_path: Path) -> None:
    corral("create", "--name", name, "busybox", "true")
    out = tmp_path / "rootfs.tar"
    corral("export", "-o", str(out), name)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert "./bin/busybox" in names and "./etc/passwd" in names
    corral("rm", name)


def test_named_volume_survives_its_container(corral: Corral, name: str) -> None:
    vol = f"{name}-vol"
    corral("volume", "create", vol)
    corral("run", "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c", "echo kept > /data/file")
    assert corral.out("run", "--rm", "-v", f"{vol}:/data:ro", "busybox", "cat", "/data/file") == "kept"
    ro = corral("run", "--rm", "-v", f"{vol}:/data:ro", "busybox", "touch", "/data/x", check=False)
    assert ro.returncode == 1
    assert vol in corral.out("volume", "ls", "-q").split()
    assert corral.out("volume", "inspect", "-f", "{{.Name}} {{.Driver}}", vol) == f"{vol} local"
    corral("create", "--name", name, "-v", f"{vol}:/data", "busybox", "true")
    in_use = corral("volume", "rm", vol, check=False)
    assert in_use.returncode == 125 and name in in_use.stderr
    corral("rm", name)
    corral("volume", "rm", vol)


def test_volume_is_filled_from_the_image_once(corral: Corral, name: str) -> None:
    vol = f"{name}-etc"
    assert corral.out("run", "--rm", "-v", f"{vol}:/etc", "busybox", "cat", "/etc/passwd").startswith("root:")
    corral("run", "--rm", "-v", f"{vol}:/etc", "busybox", "rm", "/etc/passwd")
    gone = corral("run", "--rm", "-v", f"{vol}:/etc", "busybox", "cat", "/etc/passwd", check=False)
    assert gone.returncode == 1
    corral("volume", "rm", vol)


def test_anonymous_volume_and_bind_mounts(corral: Corral, name: str, tmp_path: Path) -> None:
    (tmp_path / "in").write_text("bound\n")
    out = corral.out("run", "--rm", "-v", f"{tmp_path}:/host", "--mount",
                     f"type=bind,source={tmp_path},target=/host-ro,readonly", "--tmpfs", "/scratch",
                     "-v", "/anon", "busybox", "sh", "-c",
                     "cat /host/in; echo w > /host/out; touch /host-ro/x 2>/dev/null || echo ro; "
                     "grep ' /scratch ' /proc/mounts | cut -d' ' -f3")
    assert out.splitlines() == ["bound", "ro", "tmpfs"]
    assert (tmp_path / "out").read_text() == "w\n"
    corral("volume", "prune", "-f")
    assert corral.out("volume", "ls", "-q") == ""
