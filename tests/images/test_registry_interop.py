"""corral's pull and push against the real tools: docker-registry, skopeo and podman."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.images.service import Image, ImageService
from tests.images.conftest import corral
from tests.images.registry_fixtures import (
    PASSWORD,
    USER,
    Podman,
    Registry,
    make_oci_layout,
    push_raw,
    skopeo,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    p = Podman(tmp_path_factory.mktemp("podman"))
    yield p
    p.reset()


def image_file(service: ImageService, image: Image, path: str, scratch: Path) -> bytes:
    """A file of the image's rootfs as the store unpacked it (top layer first)."""
    (mount,) = service.rootfs_mounts(image, scratch / "upper", scratch / "work")
    if mount.type == "overlay":
        option = next(o for o in mount.options if o.startswith("lowerdir="))
        layers = [Path(d) for d in option.removeprefix("lowerdir=").split(":")]
    else:
        layers = [Path(mount.source)]
    for layer in layers:
        if (layer / path).exists():
            return (layer / path).read_bytes()
    raise AssertionError(f"{path} is not in {image.id}")


def test_corral_push_is_read_by_skopeo_and_run_by_podman(
        registry: Registry, service: ImageService, podman: Podman, tmp_path: Path) -> None:
    image = service.ensure_builtin_busybox()
    target = f"{registry.host}/interop/corral-pushed:v1"
    corral("tag", "busybox", target)
    out = corral("push", target).stdout
    assert out.startswith(f"The push refers to repository [{registry.host}/interop/corral-pushed]")
    assert out.splitlines()[-1].startswith("v1: digest: sha256:")
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{target}"))
    assert (info["Architecture"], info["Os"], len(info["Layers"])) == ("amd64", "linux", len(image.layers))
    skopeo("copy", "--src-tls-verify=false", f"docker://{target}", f"oci:{tmp_path / 'oci'}:v1")
    assert json.loads((tmp_path / "oci/index.json").read_text())["manifests"]
    podman("pull", "-q", "--tls-verify=false", target)
    assert podman("run", "--rm", "--network", "none", target, "sh", "-c", "echo ran $((6*7))") == "ran 42\n"
    # A second name in the same registry: its blobs are mounted, nothing is uploaded again.
    corral("tag", "busybox", f"{registry.host}/interop/second:v1")
    again = corral("push", f"{registry.host}/interop/second:v1").stdout
    assert "v1: digest: " in again


def test_skopeo_pushes_a_multi_platform_index_corral_picks_the_platform(
        registry: Registry, service: ImageService, busybox_rootfs: Path, tmp_path: Path) -> None:
    layout = make_oci_layout(tmp_path / "layout", busybox_rootfs, ("amd64", "arm64"))
    target = f"{registry.host}/interop/multi:latest"
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{target}")
    corral("pull", target)
    native = service.get(target)
    assert native.config["architecture"] == "amd64"
    assert image_file(service, native, "etc/corral-marker", tmp_path / "a") == b"marker-amd64"
    corral("pull", "--platform", "linux/arm64", target)
    arm = service.get(target)
    assert arm.config["architecture"] == "arm64" and arm.id != native.id
    assert image_file(service, arm, "etc/corral-marker", tmp_path / "b") == b"marker-arm64"
    failed = corral("pull", "--platform", "linux/s390x", target, check=False)
    assert failed.returncode == 125
    assert "no image found in manifest list for platform linux/s390x" in failed.stderr


def test_podman_pushes_zstd_corral_pulls_it(
        registry: Registry, service: ImageService, podman: Podman, busybox_rootfs: Path, tmp_path: Path) -> None:
    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox_rootfs, arcname=".")
    podman("import", "-q", str(tar), "localhost/interop-zstd:latest")
    target = f"{registry.host}/interop/podman-zstd:latest"
    podman("push", "-q", "--tls-verify=false", "--compression-format", "zstd",
           "localhost/interop-zstd:latest", f"docker://{target}")
    corral("pull", "-q", target)
    image = service.get(target)
    assert service.manifest(image).layers[0].media_type.endswith("+zstd")
    assert image_file(service, image, "bin/busybox", tmp_path / "s") == (busybox_rootfs / "bin/busybox").read_bytes()
    ran = corral("run", "--rm", "--network", "none", target, "sh", "-c", "head -1 /etc/passwd").stdout
    assert ran == "root:x:0:0:root:/root:/bin/sh\n"


def test_an_uncompressed_layer(registry: Registry, service: ImageService, busybox_rootfs: Path,
                               tmp_path: Path) -> None:
    import hashlib
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(busybox_rootfs, arcname=".")
    layer = buf.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]}, "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    ref = push_raw(registry, "interop/plain", config, layer, "application/vnd.oci.image.layer.v1.tar")
    corral("pull", "-q", ref)
    image = service.get(ref)
    assert image_file(service, image, "etc/passwd", tmp_path) == (busybox_rootfs / "etc/passwd").read_bytes()


def test_corral_manifest_list_is_read_by_skopeo_and_podman(
        registry: Registry, service: ImageService, busybox_rootfs: Path, podman: Podman, tmp_path: Path) -> None:
    for arch in ("amd64", "arm64"):
        layout = make_oci_layout(tmp_path / arch, busybox_rootfs, (arch,))
        skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest",
               f"docker://{registry.host}/interop/plat-{arch}:latest")
    lst = f"{registry.host}/interop/corral-list:v1"
    corral("manifest", "create", lst, f"{registry.host}/interop/plat-amd64:latest")
    corral("manifest", "add", lst, f"docker://{registry.host}/interop/plat-arm64:latest")
    local = json.loads(corral("manifest", "inspect", lst).stdout)
    assert sorted(m["platform"]["architecture"] for m in local["manifests"]) == ["amd64", "arm64"]
    digest = corral("manifest", "push", lst).stdout.strip()
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{lst}"))
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert {m["digest"] for m in raw["manifests"]} == {m["digest"] for m in local["manifests"]}
    assert digest.startswith("sha256:")
    podman("pull", "-q", "--tls-verify=false", "--arch", "arm64", lst)
    arch = podman("image", "inspect", "--format", "{{.Architecture}}", lst).strip()
    assert arch == "arm64"
    remote = json.loads(corral("manifest", "inspect", f"{registry.host}/interop/plat-arm64:latest").stdout)
    assert remote["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    # And the other way: podman's manifest list, pulled by corral for each platform.
    podman("manifest", "create", "localhost/interop-podlist")
    for arch in ("amd64", "arm64"):
        podman("manifest", "add", "--tls-verify=false", "localhost/interop-podlist",
               f"docker://{registry.host}/interop/plat-{arch}:latest")
    podlist = f"{registry.host}/interop/podman-list:v1"
    podman("manifest", "push", "--all", "--tls-verify=false", "localhost/interop-podlist", f"docker://{podlist}")
    for arch in ("amd64", "arm64"):
        corral("pull", "-q", "--platform", f"linux/{arch}", podlist)
        image = service.get(podlist)
        assert image.config["architecture"] == arch
        assert image_file(service, image, "etc/corral-marker", tmp_path / f"pod-{arch}") == f"marker-{arch}".encode()


def test_login_push_pull_over_tls_with_basic_auth(
        tls_registry: Registry, service: ImageService, tmp_path: Path) -> None:
    authfile = tmp_path / "auth.json"
    target = f"{tls_registry.host}/secure/busybox:v1"
    tls = ["--tls-verify=true", "--cert-dir", str(tls_registry.cert_dir), "--authfile", str(authfile)]
    service.ensure_builtin_busybox()
    corral("tag", "busybox", target)
    denied = corral("push", *tls, target, check=False)
    assert denied.returncode == 125 and "authentication required" in denied.stderr
    bad = corral("login", *tls, "-u", USER, "-p", "nope", tls_registry.host, check=False)
    assert bad.returncode == 125 and not authfile.exists()
    assert corral("login", *tls, "-u", USER, "--password-stdin", tls_registry.host,
                  input=PASSWORD.encode()).stdout == "Login Succeeded\n"
    assert oct(authfile.stat().st_mode & 0o777) == "0o600"
    corral("push", *tls, target)
    corral("rmi", target)
    corral("pull", *tls, target)
    skopeo("inspect", "--cert-dir", str(tls_registry.cert_dir), "--authfile", str(authfile), f"docker://{target}")
    out = corral("logout", "--authfile", str(authfile), tls_registry.host).stdout
    assert out == f"Removing login credentials for {tls_registry.host}\n"
    assert tls_registry.host not in json.loads(authfile.read_text())["auths"]
    untrusted = corral("pull", "--tls-verify=true", target, check=False)
    assert untrusted.returncode == 125 and "certificate verify failed" in untrusted.stderr


def test_token_auth_with_docker_config(token_registry: Registry, service: ImageService, tmp_path: Path) -> None:
    """Credentials from ~/.docker/config.json ($DOCKER_CONFIG) get a Bearer token to push."""
    import base64

    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (docker_dir / "config.json").write_text(json.dumps({"auths": {f"https://{token_registry.host}": {"auth": auth}}}))
    service.ensure_builtin_busybox()
    target = f"{token_registry.host}/tok/busybox:v1"
    corral("tag", "busybox", target)
    denied = corral("push", target, check=False)
    assert denied.returncode == 125 and "authentication required" in denied.stderr
    corral("push", target, env={"DOCKER_CONFIG": str(docker_dir)})
    corral("rmi", target)
    corral("pull", "-q", target)  # anonymous pull: the token server grants pull to anyone
    assert any("repository:tok/busybox:pull,push" in q.get("scope", []) for q in token_registry.token_requests)


def _on_a_terminal(*args: str) -> str:
    """Run corral with stdout on a pseudo-terminal; returns what it drew."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    from tests.conftest import corral_bin

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
    proc = subprocess.Popen([corral_bin("corral"), *args], stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    out = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not data:
            break
        out += data
    os.close(leader)
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    return out.decode(errors="replace")


def test_progress_bars_on_a_terminal_only(registry: Registry, service: ImageService,
                                          busybox_rootfs: Path, tmp_path: Path) -> None:
    layout = make_oci_layout(tmp_path / "layout", busybox_rootfs, salt="progress")
    target = f"{registry.host}/interop/progress:latest"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{target}")
    drawn = _on_a_terminal("pull", target)
    assert "Downloading [" in drawn and ": Pull complete" in drawn and "\x1b[" in drawn
    assert f"Status: Downloaded newer image for {target}" in drawn
    pushed = _on_a_terminal("push", target, f"{registry.host}/interop/progress-copy:latest")
    assert ": Mounted from interop/progress" in pushed  # same registry: linked, not uploaded
    corral("rmi", target)
    piped = corral("pull", target).stdout
    assert "Downloading" not in piped and "\x1b[" not in piped
    assert piped.splitlines()[-1] == target
    assert corral("pull", "-q", target).stdout == f"{target}\n"
