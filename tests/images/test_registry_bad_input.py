"""`corral pull` when things go wrong: one clear line, exit 125, no half image, the next pull works."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from corral.images.service import ImageService
from tests.conftest import corral_bin
from tests.images.conftest import corral
from tests.images.registry_fixtures import Proxy, Registry, make_oci_layout, push_raw, skopeo


def _push_unique(registry: Registry, rootfs: Path, tmp_path: Path, repo: str) -> str:
    """An image no other test shares a blob with; returns its reference."""
    layout = make_oci_layout(tmp_path / "layout", rootfs, salt=os.urandom(8).hex())
    ref = f"{registry.host}/{repo}:latest"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{ref}")
    return ref


def _layer_path(registry: Registry, service_ref: str) -> Path:
    """The registry's storage file of the image's (only) layer."""
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{service_ref}")
    digest = json.loads(raw)["layers"][0]["digest"].split(":")[1]
    return registry.root / "docker/registry/v2/blobs/sha256" / digest[:2] / digest / "data"


def test_a_manifest_that_is_not_what_the_registry_says(
        registry: Registry, service: ImageService, busybox_rootfs: Path, tmp_path: Path) -> None:
    ref = _push_unique(registry, busybox_rootfs, tmp_path, "bad/manifest")
    digest = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}"))["Digest"].split(":")[1]
    path = registry.root / "docker/registry/v2/blobs/sha256" / digest[:2] / digest / "data"
    good = path.read_bytes()
    path.write_bytes(b'{"schemaVersion": 2, "layers": "not a list"}')  # the registry itself chokes
    assert "manifest bad/manifest:latest: unknown" in _fails("pull", ref)
    path.write_bytes(good.replace(b'"schemaVersion": 2', b'"schemaVersion":2'))  # valid, but other bytes
    assert "registry says sha256:" in _fails("pull", ref)
    assert "digest mismatch" in _fails("pull", ref.rsplit(":", 1)[0] + "@sha256:" + digest)
    assert _listed() == []
    path.write_bytes(good)
    corral("pull", "-q", ref)


def _fails(*args: str) -> str:
    result = corral(*args, check=False)
    assert result.returncode == 125, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _listed() -> list[str]:
    return corral("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()


@pytest.mark.parametrize("damage", ["corrupt", "truncate"])
def test_a_bad_blob_is_refused_and_nothing_is_listed(
        registry: Registry, service: ImageService, busybox_rootfs: Path, tmp_path: Path, damage: str) -> None:
    ref = _push_unique(registry, busybox_rootfs, tmp_path, f"bad/{damage}")
    path = _layer_path(registry, ref)
    good = path.read_bytes()
    path.write_bytes(b"\0" * len(good) if damage == "corrupt" else good[: len(good) // 2])
    line = _fails("pull", "-q", ref)
    assert re.search("digest mismatch|corrupt" if damage == "corrupt" else "truncated", line)
    assert _listed() == []
    path.write_bytes(good)
    corral("pull", "-q", ref)
    assert _listed() == [ref]


def test_unknown_media_type_and_malformed_config(registry: Registry, service: ImageService) -> None:
    layer = os.urandom(64)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    helm = push_raw(registry, "bad/mediatype", config, layer, "application/vnd.cncf.helm.chart.content.v1.tar+gzip")
    assert "unsupported layer media type 'application/vnd.cncf.helm.chart.content.v1.tar+gzip'" in _fails("pull", helm)
    no_rootfs = push_raw(registry, "bad/config", b'{"name": "chart"}', layer, "application/vnd.oci.image.layer.v1.tar")
    assert "malformed image config" in _fails("pull", no_rootfs)
    assert _listed() == []


def test_unknown_image_is_dockers_message(registry: Registry, service: ImageService) -> None:
    line = _fails("pull", f"{registry.host}/no/such:thing")
    assert line == f"Error: manifest for {registry.host}/no/such:thing not found: manifest unknown: manifest unknown"


def test_dropped_connections(registry: Registry, service: ImageService, busybox_rootfs: Path, tmp_path: Path) -> None:
    ref = _push_unique(registry, busybox_rootfs, tmp_path, "bad/drop")
    path = ref.split("/", 1)[1]
    flaky = Proxy(registry.host, after=300_000, cuts=1)
    dead = Proxy(registry.host, after=20_000, cuts=10_000)  # resuming gains too little
    try:
        line = _fails("pull", "-q", f"{dead.host}/{path}")
        assert "connection dropped" in line
        assert _listed() == []
        corral("pull", "-q", f"{flaky.host}/{path}")  # one drop: resumed with a Range request
        assert flaky.cuts == 0
        assert _listed() == [f"{flaky.host}/{path}"]
    finally:
        flaky.close()
        dead.close()


def test_sigkill_in_the_middle_of_a_pull(registry: Registry, service: ImageService, busybox_rootfs: Path,
                                         tmp_path: Path) -> None:
    ref = _push_unique(registry, busybox_rootfs, tmp_path, "bad/kill")
    slow = Proxy(registry.host, delay=0.05)
    try:
        proc = subprocess.Popen([corral_bin("corral"), "pull", "-q", f"{slow.host}/{ref.split('/', 1)[1]}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while slow.forwarded < 300_000 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the pull ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        slow.close()
    assert _listed() == []
    corral("pull", "-q", ref)
    assert _listed() == [ref]


def test_tls_required_of_a_plain_http_registry(registry: Registry, service: ImageService) -> None:
    line = _fails("pull", "--tls-verify", f"{registry.host}/any/thing:1")
    assert "server gave HTTP response to HTTPS client" in line


def test_two_pulls_of_the_same_image_at_once(registry: Registry, service: ImageService,
                                             busybox_rootfs: Path, tmp_path: Path) -> None:
    ref = _push_unique(registry, busybox_rootfs, tmp_path, "bad/twice")
    procs = [subprocess.Popen([corral_bin("corral"), "pull", "-q", ref], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.decode() == f"{ref}\n"
    assert _listed() == [ref]


def test_push_of_a_big_layer_and_of_a_damaged_local_blob(registry: Registry, service: ImageService,
                                                          tmp_path: Path) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = os.urandom(9 << 20)  # above the read-ahead threshold
        info = tarfile.TarInfo("big.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    name = f"{registry.host}/bad/bigpush:latest"
    image = service.import_tar(buf, names=[name])
    corral("push", "-q", name)
    skopeo("copy", "--src-tls-verify=false", f"docker://{name}", f"oci:{tmp_path / 'copy'}:x")  # verifies
    (layer,) = service.manifest(image).layers
    blob = service.content.path(layer.digest)
    rotten = bytearray(blob.read_bytes())
    rotten[len(rotten) // 2] ^= 0xFF  # the store's copy rots
    blob.write_bytes(bytes(rotten))
    # By another name of the registry, so nothing is mounted from bad/bigpush: bytes must go.
    other = registry.host.replace("127.0.0.1", "localhost") + "/bad/bigpush-copy:latest"
    line = _fails("push", name, other)
    assert "digest mismatch" in line or "another digest" in line
    assert subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{other}"],
                          capture_output=True).returncode
