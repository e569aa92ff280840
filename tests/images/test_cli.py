"""The image commands as a user types them: output, exit codes and error lines like docker's."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from corral.images.service import ImageService
from tests.images.conftest import corral
from tests.images.tarbuild import Entry, tar_bytes


@pytest.fixture
def busybox_id(service: ImageService) -> str:
    return corral("image", "builtin").stdout.strip()


def rootfs_tar(tmp_path: Path, name: str = "rootfs.tar", marker: bytes = b"hi") -> Path:
    path = tmp_path / name
    path.write_bytes(tar_bytes(Entry("hello", data=marker), Entry("data", "dir", mode=0o755)))
    return path


def test_images_table_and_quiet(busybox_id: str) -> None:
    lines = corral("images").stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert lines[1].split()[:3] == ["busybox", "latest", busybox_id[7:19]]
    assert corral("images", "-q").stdout == busybox_id[7:19] + "\n"
    assert corral("image", "ls", "--no-trunc", "-q").stdout == busybox_id + "\n"
    digests = corral("images", "--digests").stdout.splitlines()
    assert digests[0].split()[2] == "DIGEST" and digests[1].split()[2].startswith("sha256:")


def test_images_format(busybox_id: str) -> None:
    out = corral("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
    assert out == f"busybox:latest {busybox_id[7:19]}\n"
    (doc,) = [json.loads(line) for line in corral("images", "--format", "json").stdout.splitlines()]
    assert doc["Repository"] == "busybox" and doc["ID"] == busybox_id[7:19]
    table = corral("images", "--format", "table {{.Repository}}\t{{.Tag}}").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG"] and table[1].split() == ["busybox", "latest"]


def test_images_filters(busybox_id: str, tmp_path: Path) -> None:
    corral("import", "-c", "LABEL team=a", str(rootfs_tar(tmp_path)), "localhost/app:1")
    dangling = corral("import", str(rootfs_tar(tmp_path, "r2.tar", b"other"))).stdout.strip()
    q = ["images", "-q", "--no-trunc"]
    assert corral(*q, "--filter", "dangling=true").stdout.split() == [dangling]
    assert dangling not in corral(*q, "-f", "dangling=false").stdout
    app = corral("image", "inspect", "-f", "{{.Id}}", "localhost/app:1").stdout.strip()
    assert corral(*q, "-f", "label=team").stdout.split() == [app]
    assert corral(*q, "-f", "label=team=b").stdout.split() == []
    assert corral(*q, "-f", "reference=busy*").stdout.split() == [busybox_id]
    both = corral(*q, "-f", "reference=busybox", "-f", "reference=localhost/app:*").stdout.split()
    assert sorted(both) == sorted([busybox_id, app])
    assert corral(*q, "-f", "before=localhost/app:1").stdout.split() == [busybox_id]
    assert busybox_id not in corral(*q, "-f", "since=busybox").stdout
    assert corral(*q, "busybox").stdout.split() == [busybox_id]
    bad = corral("images", "-f", "color=blue", check=False)
    assert bad.returncode == 125 and bad.stderr == "Error: invalid filter 'color'\n"


def test_inspect_shape_and_errors(busybox_id: str) -> None:
    (doc,) = json.loads(corral("image", "inspect", "busybox").stdout)
    assert doc["Id"] == busybox_id and doc["RepoTags"] == ["busybox:latest"]
    assert doc["Config"]["Cmd"] == ["sh"] and doc["Os"] == "linux"
    assert doc["RootFS"]["Type"] == "layers" and len(doc["RootFS"]["Layers"]) == 1
    assert corral("image", "inspect", "--format", "{{.Config.Cmd}}", "busybox").stdout == "[sh]\n"
    missing = corral("image", "inspect", "nope", check=False)
    assert (missing.returncode, missing.stderr) == (125, "Error: No such image: nope\n")
    assert json.loads(missing.stdout) == []


def test_history(busybox_id: str) -> None:
    lines = corral("history", "busybox").stdout.splitlines()
    assert lines[0].split()[:2] == ["IMAGE", "CREATED"]
    assert lines[1].startswith(busybox_id[7:19]) and "CMD" in lines[1]
    assert lines[2].startswith("<missing>")
    assert corral("history", "-q", "--no-trunc", "busybox").stdout.splitlines()[0] == busybox_id


def test_tag_and_rmi_like_docker(busybox_id: str) -> None:
    corral("tag", "busybox", "localhost:5000/me/bb:v1")
    assert corral("images", "-q").stdout.split() == [busybox_id[7:19]] * 2
    by_id = corral("rmi", busybox_id[7:19], check=False)
    assert by_id.returncode == 125
    assert by_id.stderr == (f"Error: conflict: unable to delete {busybox_id[7:19]} (must be forced)"
                            " - image is referenced in multiple repositories\n")
    assert corral("rmi", "localhost:5000/me/bb:v1").stdout == "Untagged: localhost:5000/me/bb:v1\n"
    out = corral("rmi", "busybox").stdout.splitlines()
    assert out[:2] == ["Untagged: busybox:latest", f"Deleted: {busybox_id}"]
    assert corral("images", "-q").stdout == ""
    gone = corral("rmi", "busybox", check=False)
    assert (gone.returncode, gone.stderr) == (125, "Error: No such image: busybox\n")
    bad = corral("tag", "nope", "x:1", check=False)
    assert (bad.returncode, bad.stderr) == (125, "Error: No such image: nope\n")


def test_rmi_force_by_id(busybox_id: str) -> None:
    corral("tag", "busybox", "other:1")
    out = corral("rmi", "-f", busybox_id).stdout.splitlines()
    assert sorted(out[:2]) == ["Untagged: busybox:latest", "Untagged: other:1"]
    assert out[2] == f"Deleted: {busybox_id}"


def test_image_prune(busybox_id: str, tmp_path: Path, service: ImageService) -> None:
    dangling = corral("import", str(rootfs_tar(tmp_path))).stdout.strip()
    out = corral("image", "prune", "-f").stdout
    assert out.startswith(f"Deleted Images:\ndeleted: {dangling}\n")
    assert "Total reclaimed space: " in out
    assert corral("images", "-q").stdout.split() == [busybox_id[7:19]]
    assert corral("image", "prune", "-f").stdout == "Total reclaimed space: 0B\n"
    declined = corral("image", "prune", "-a", input=b"n\n").stdout
    assert declined.startswith("WARNING! This will remove all images without at least one")
    assert corral("images", "-q").stdout.strip() == busybox_id[7:19]
    corral("image", "prune", "-a", "-f")
    assert corral("images", "-q").stdout == ""
    assert list(service.content.digests()) == [] and list(service.driver.chain_ids()) == []


def test_import_with_changes(service: ImageService, tmp_path: Path) -> None:
    image_id = corral(
        "import", "-m", "first", "-c", 'CMD ["/bin/app", "--serve"]', "-c", "ENTRYPOINT /init",
        "-c", "ENV A=1 B=two", "-c", "WORKDIR /data", "-c", "USER 1000:1000", "-c", "EXPOSE 80 53/udp",
        "-c", 'LABEL a=b "c d"=e', "-c", "VOLUME /data", str(rootfs_tar(tmp_path)), "me/app:1").stdout.strip()
    (doc,) = json.loads(corral("image", "inspect", "me/app:1").stdout)
    assert doc["Id"] == image_id
    c = doc["Config"]
    assert c["Cmd"] == ["/bin/app", "--serve"] and c["Entrypoint"] == ["/bin/sh", "-c", "/init"]
    assert c["Env"] == ["A=1", "B=two"] and c["WorkingDir"] == "/data" and c["User"] == "1000:1000"
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}} and c["Volumes"] == {"/data": {}}
    assert c["Labels"] == {"a": "b", "c d": "e"}
    assert doc["Comment"] == "first"
    image = service.get("me/app:1")
    assert (Path(service.driver.path(image.chain_ids[-1])) / "hello").read_bytes() == b"hi"
    bad = corral("import", "-c", "RUN echo", str(rootfs_tar(tmp_path)), check=False)
    assert (bad.returncode, bad.stderr) == (125, "Error: RUN is not a valid change command\n")
    missing = corral("import", str(tmp_path / "nope.tar"), check=False)
    assert missing.returncode == 125 and "nope.tar" in missing.stderr


def test_save_to_stdout_and_load_from_stdin(busybox_id: str, tmp_path: Path) -> None:
    archive = tmp_path / "bb.tar"
    archive.write_bytes(corral_bytes("save", "busybox"))
    with tarfile.open(archive) as tf:
        assert "manifest.json" in tf.getnames()
    corral("rmi", "busybox")
    assert corral("load", input=archive.read_bytes()).stdout == "Loaded image: busybox:latest\n"
    assert corral("images", "-q", "--no-trunc").stdout.strip() == busybox_id


def corral_bytes(*args: str) -> bytes:
    import os
    import subprocess

    from tests.conftest import corral_bin

    return subprocess.run([corral_bin("corral"), *args], check=True, capture_output=True,
                          env=dict(os.environ)).stdout


def test_bad_archives_are_one_line_errors(busybox_id: str, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive" * 100)
    r = corral("load", "-i", str(junk), check=False)
    assert r.returncode == 125 and r.stderr.count("\n") == 1 and "junk.tar" in r.stderr
    # a docker-archive whose layer was changed after saving: its diff id no longer matches
    good = tmp_path / "good.tar"
    corral("save", "-o", str(good), "busybox")
    corral("rmi", "busybox")
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(good) as src, tarfile.open(tampered, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
            if data is not None and m.name.endswith(".tar"):
                mid = len(data) // 2  # inside /bin/busybox's bytes
                data = data[:mid] + bytes([data[mid] ^ 1]) + data[mid + 1:]
            dst.addfile(m, None if data is None else __import__("io").BytesIO(data))
    r = corral("load", "-i", str(tampered), check=False)
    assert r.returncode == 125 and r.stderr.count("\n") == 1
    assert "digest mismatch" in r.stderr and "sha256:" in r.stderr
    assert corral("images", "-q").stdout == ""
    # a layer whose tar headers are broken: one line naming the layer
    broken = tmp_path / "broken.tar"
    with tarfile.open(good) as src, tarfile.open(broken, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
            if data is not None and m.name.endswith(".tar"):
                data = data[:100] + b"garbage" + data[107:]
            dst.addfile(m, None if data is None else __import__("io").BytesIO(data))
    r = corral("load", "-i", str(broken), check=False)
    assert r.returncode == 125 and r.stderr.count("\n") == 1
    assert "malformed tar archive" in r.stderr and "layer sha256:" in r.stderr
    assert corral("images", "-q").stdout == ""
    assert corral("load", "-i", str(good)).stdout == "Loaded image: busybox:latest\n"


def test_image_prune_filters(busybox_id: str, tmp_path: Path) -> None:
    keep = corral("import", "-c", "LABEL keep=yes", str(rootfs_tar(tmp_path))).stdout.strip()
    drop = corral("import", "-c", "LABEL keep=no", str(rootfs_tar(tmp_path, "b.tar", b"b"))).stdout.strip()
    out = corral("image", "prune", "-f", "--filter", "label!=keep=yes").stdout
    assert f"deleted: {drop}" in out and keep not in out
    assert corral("image", "prune", "-f", "--filter", "until=1h").stdout == "Total reclaimed space: 0B\n"
    out = corral("image", "prune", "-af", "--filter", "until=2000-01-01T00:00:00Z").stdout
    assert out == "Total reclaimed space: 0B\n"
    out = corral("image", "prune", "-af", "--filter", "label=keep").stdout
    assert f"deleted: {keep}" in out and busybox_id not in out
    bad = corral("image", "prune", "-f", "--filter", "until=soon", check=False)
    assert bad.returncode == 125 and "until=soon" in bad.stderr


def test_truncated_compressed_archive_from_stdin(busybox_id: str, tmp_path: Path,
                                                 service: ImageService) -> None:
    import gzip

    data = gzip.compress(corral_bytes("save", "busybox"))
    corral("rmi", "busybox")
    r = corral("load", input=data[: len(data) // 2], check=False)
    assert r.returncode == 125
    assert r.stderr.startswith("Error: stdin: corrupt gzip data") and r.stderr.count("\n") == 1
    assert corral("images", "-q").stdout == ""
    assert not os.listdir(os.path.join(service.storage, "ingest"))  # the spooled copy is gone too
    assert corral("load", input=data).stdout == "Loaded image: busybox:latest\n"


def test_oci_archive_with_several_images_round_trips(busybox_id: str, tmp_path: Path) -> None:
    app = corral("import", str(rootfs_tar(tmp_path)), "localhost/app:2").stdout.strip()
    archive = tmp_path / "both.tar"
    corral("save", "--format", "oci-archive", "-o", str(archive), "busybox", "localhost/app:2")
    corral("rmi", "busybox", "localhost/app:2")
    out = corral("load", "-i", str(archive)).stdout.splitlines()
    assert sorted(out) == ["Loaded image: busybox:latest", "Loaded image: localhost/app:2"]
    assert sorted(corral("images", "-q", "--no-trunc").stdout.split()) == sorted([busybox_id, app])


def test_an_image_in_use_is_kept(busybox_id: str) -> None:
    """rmi refuses an image a container uses; -f untags it and keeps it until the container goes."""
    cid = corral("create", "busybox", "true").stdout.strip()
    r = corral("rmi", "busybox", check=False)
    assert r.returncode == 125
    assert r.stderr == (f'Error: conflict: unable to remove repository reference "busybox" '
                        f"(must force) - container {cid[:12]} is using its referenced image "
                        f"{busybox_id[7:19]}\n")
    assert corral("rmi", "-f", "busybox").stdout == "Untagged: busybox:latest\n"
    assert corral("images", "-q", "--no-trunc").stdout.split() == [busybox_id]
    assert corral("image", "prune", "-af").stdout == "Total reclaimed space: 0B\n"
    corral("rm", cid)
    assert f"deleted: {busybox_id}" in corral("image", "prune", "-f").stdout


def test_loading_an_image_twice_adds_names_and_no_garbage(busybox_id: str, tmp_path: Path) -> None:
    corral("save", "--format", "oci-archive", "-o", str(tmp_path / "o.tar"), "busybox")
    corral("tag", "busybox", "localhost/other:1")
    corral("rmi", "busybox")
    assert corral("load", "-i", str(tmp_path / "o.tar")).stdout == "Loaded image: busybox:latest\n"
    assert corral("images", "-q").stdout.split() == [busybox_id[7:19]] * 2
    assert corral("image", "prune", "-f").stdout == "Total reclaimed space: 0B\n"


def test_import_for_another_platform(service: ImageService, tmp_path: Path) -> None:
    corral("import", "--platform", "linux/arm64/v8", str(rootfs_tar(tmp_path)), "me/arm:1")
    (doc,) = json.loads(corral("image", "inspect", "me/arm:1").stdout)
    assert (doc["Os"], doc["Architecture"]) == ("linux", "arm64")
    bad = corral("import", "--platform", "a/b/c/d", str(rootfs_tar(tmp_path)), check=False)
    assert bad.returncode == 125 and "invalid platform" in bad.stderr


def test_kernel_errors_are_one_line(busybox_id: str, tmp_path: Path) -> None:
    import subprocess

    locked = tmp_path / "locked"
    locked.mkdir()
    subprocess.run(["chattr", "+i", str(locked)], check=True)
    try:
        r = corral("save", "-o", str(locked / "out.tar"), "busybox", check=False)
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    assert r.returncode == 125
    assert r.stderr.startswith("Error: Operation not permitted: ") and r.stderr.count("\n") == 1
