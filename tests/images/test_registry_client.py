"""The registry client against a real docker-registry: protocol, auth, TLS, bad content."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import NotFound
from corral.images.registry.auth import Credentials, Unauthorized, parse_challenges
from corral.images.registry.client import DigestMismatch, RegistryClient, RegistryError
from corral.images.registry.hosts import host_config
from tests.images.registry_fixtures import PASSWORD, USER, Proxy, Registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _client(reg: Registry, **kw: object) -> RegistryClient:
    creds = kw.pop("credentials", None)
    return RegistryClient(host_config(reg.host, **kw), credentials=creds)  # type: ignore[arg-type]


def _blob(data: bytes) -> tuple[str, int]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)


def _push(client: RegistryClient, repo: str, data: bytes, **kw: object) -> str:
    digest, size = _blob(data)
    client.upload_blob(repo, digest, size, lambda: io.BytesIO(data), **kw)  # type: ignore[arg-type]
    return digest


def _read(client: RegistryClient, repo: str, digest: str, size: int | None) -> bytes:
    stream = client.open_blob(repo, digest, size)
    out = bytearray()
    buf = bytearray(64 * 1024)
    while n := stream.readinto(buf):
        out += buf[:n]
    return bytes(out)


def _storage_blob(reg: Registry, digest: str) -> Path:
    hexd = digest.split(":")[1]
    return reg.root / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"


def _manifest(config: str, config_size: int, layer: str, layer_size: int) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
    }).encode()


def test_monolithic_and_chunked_uploads_round_trip(registry: Registry) -> None:
    client = _client(registry)
    mono = os.urandom(300_000)
    chunked = os.urandom(700_001)
    d1 = _push(client, "client/up", mono)
    d2 = _push(client, "client/up", chunked, chunk_size=256 * 1024)
    assert client.blob_exists("client/up", d1) and client.blob_exists("client/up", d2)
    assert not client.blob_exists("client/up", "sha256:" + "0" * 64)
    assert _read(client, "client/up", d1, len(mono)) == mono
    assert _read(client, "client/up", d2, None) == chunked


def test_manifest_put_get_by_tag_and_digest(registry: Registry) -> None:
    client = _client(registry)
    cfg = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = os.urandom(1000)
    manifest = _manifest(_push(client, "client/m", cfg), len(cfg), _push(client, "client/m", layer), len(layer))
    digest = client.put_manifest("client/m", "v1", manifest, OCI_MANIFEST)
    by_tag = client.get_manifest("client/m", "v1")
    assert (by_tag.data, by_tag.media_type, by_tag.digest) == (manifest, OCI_MANIFEST, digest)
    assert client.get_manifest("client/m", digest).data == manifest
    assert client.head_manifest("client/m", "v1") == digest
    assert client.head_manifest("client/m", "nope") is None


def test_unknown_manifest_is_dockers_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound) as e:
        _client(registry).get_manifest("client/none", "latest")
    assert str(e.value) == (
        f"manifest for {registry.host}/client/none:latest not found: manifest unknown: manifest unknown"
    )


def test_cross_repository_mount(registry: Registry) -> None:
    client = _client(registry)
    digest = _push(client, "client/src", os.urandom(5000))
    assert client.mount_blob("client/dst", digest, "client/src")
    assert client.blob_exists("client/dst", digest)
    missing = "sha256:" + hashlib.sha256(b"never uploaded").hexdigest()
    assert not client.mount_blob("client/dst", missing, "client/src")


def test_corrupt_and_truncated_blobs_are_refused(registry: Registry) -> None:
    client = _client(registry)
    data = os.urandom(200_000)
    digest = _push(client, "client/bad", data)
    path = _storage_blob(registry, digest)
    path.write_bytes(b"X" + data[1:])  # same size, other content: what a bad disk does
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        _read(client, "client/bad", digest, len(data))
    path.write_bytes(data[:1000])
    with pytest.raises(DigestMismatch, match="truncated"):
        _read(client, "client/bad", digest, len(data))


def test_manifest_whose_digest_does_not_match_is_refused(registry: Registry) -> None:
    client = _client(registry)
    cfg = b"{}"
    manifest = _manifest(_push(client, "client/mm", cfg), 2, _push(client, "client/mm", b"l"), 1)
    digest = client.put_manifest("client/mm", "v1", manifest, OCI_MANIFEST)
    _storage_blob(registry, digest).write_bytes(manifest.replace(b'"size": 1', b'"size": 9'))
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        client.get_manifest("client/mm", digest)
    with pytest.raises(DigestMismatch, match="registry says"):
        client.get_manifest("client/mm", "v1")


@pytest.fixture()
def big_blob(registry: Registry) -> Iterator[tuple[str, bytes]]:
    data = os.urandom(2_000_000)
    yield _push(_client(registry), "client/drop", data), data


def test_a_dropped_connection_resumes_with_range(registry: Registry, big_blob: tuple[str, bytes]) -> None:
    digest, data = big_blob
    proxy = Proxy(registry.host, after=500_000, cuts=2)
    try:
        client = RegistryClient(host_config(proxy.host))
        assert _read(client, "client/drop", digest, len(data)) == data
        assert proxy.cuts == 0
    finally:
        proxy.close()


def test_a_registry_that_keeps_dropping_is_a_clear_error(registry: Registry, big_blob: tuple[str, bytes]) -> None:
    digest, data = big_blob
    proxy = Proxy(registry.host, after=300_000, cuts=1000)
    try:
        client = RegistryClient(host_config(proxy.host), retries=2)
        with pytest.raises(RegistryError, match="connection dropped 3 times"):
            _read(client, "client/drop", digest, len(data))
    finally:
        proxy.close()


def test_an_upload_that_drops_starts_again(registry: Registry) -> None:
    proxy = Proxy(registry.host, after=400_000, cuts=2, cut_requests=True)
    try:
        client = RegistryClient(host_config(proxy.host))
        data = os.urandom(1_500_000)
        for repo, chunk_size in (("client/drop-put", None), ("client/drop-patch", 512 * 1024)):
            digest = _push(client, repo, data, chunk_size=chunk_size)
            assert _read(_client(registry), repo, digest, len(data)) == data
        assert proxy.cuts == 0
    finally:
        proxy.close()


def test_a_busy_registry_is_retried(registry: Registry, big_blob: tuple[str, bytes]) -> None:
    digest, data = big_blob
    proxy = Proxy(registry.host, busy=2)
    try:
        assert _read(RegistryClient(host_config(proxy.host)), "client/drop", digest, len(data)) == data
        assert proxy.busy == 0
        proxy.busy = 100
        with pytest.raises(RegistryError, match="503 Service Unavailable, still after 1 retries"):
            RegistryClient(host_config(proxy.host), retries=1).head_manifest("client/drop", "x")
    finally:
        proxy.close()


def test_tls_needs_the_ca_unless_verification_is_off(tls_registry: Registry) -> None:
    creds = Credentials(USER, PASSWORD)
    with pytest.raises(RegistryError, match="certificate verify failed"):
        _client(tls_registry, tls_verify=True, credentials=creds).ping()
    _client(tls_registry, tls_verify=True, cert_dir=tls_registry.cert_dir, credentials=creds).ping()
    _client(tls_registry, tls_verify=False, credentials=creds).ping()


def test_basic_auth(tls_registry: Registry) -> None:
    opts = {"tls_verify": True, "cert_dir": tls_registry.cert_dir}
    with pytest.raises(Unauthorized, match="authentication required"):
        _client(tls_registry, **opts).head_manifest("auth/x", "latest")
    with pytest.raises(Unauthorized):
        _client(tls_registry, credentials=Credentials(USER, "wrong"), **opts).ping()
    client = _client(tls_registry, credentials=Credentials(USER, PASSWORD), **opts)
    digest = _push(client, "auth/x", b"basic auth works")
    assert _read(client, "auth/x", digest, 16) == b"basic auth works"


def test_bearer_token_auth(token_registry: Registry) -> None:
    creds = Credentials(USER, PASSWORD)
    client = _client(token_registry, credentials=creds)
    digest = _push(client, "tok/src", b"token auth works")
    assert {"scope": ["repository:tok/src:pull,push"], "service": ["corral-test-registry"]} in (
        token_registry.token_requests
    )
    assert client.mount_blob("tok/dst", digest, "tok/src")
    assert {"repository:tok/dst:pull,push", "repository:tok/src:pull"} in [
        set(q.get("scope", [])) for q in token_registry.token_requests
    ]
    anonymous = _client(token_registry)
    assert _read(anonymous, "tok/src", digest, 16) == b"token auth works"
    with pytest.raises(Unauthorized, match="authentication required"):
        _push(anonymous, "tok/anon", b"no push without login")
    with pytest.raises(Unauthorized, match="invalid username/password"):
        _client(token_registry, credentials=Credentials(USER, "wrong")).head_manifest("tok/src", "x")


def test_parse_challenges() -> None:
    (c,) = parse_challenges('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.example/token", "service": "reg", "scope": "repository:a/b:pull,push"}
    basic, bearer = parse_challenges('Basic realm="x", Bearer realm="y",error="insufficient_scope"')
    assert (basic.scheme, basic.params, bearer.params["error"]) == ("basic", {"realm": "x"}, "insufficient_scope")


@pytest.mark.parametrize("certs_d", ["/etc/containers/certs.d", "/etc/docker/certs.d"])
def test_a_ca_in_certs_d_is_trusted(tls_registry: Registry, certs_d: str) -> None:
    """docker's and podman's default places for a registry's CA (removed again afterwards)."""
    import shutil

    assert tls_registry.cert_dir is not None
    host_dir = Path(certs_d) / tls_registry.host  # unique: the registry's own port
    created = not Path(certs_d).exists()
    host_dir.mkdir(parents=True)
    try:
        shutil.copy(tls_registry.cert_dir / "ca.crt", host_dir / "ca.crt")
        _client(tls_registry, tls_verify=True, credentials=Credentials(USER, PASSWORD)).ping()
    finally:
        shutil.rmtree(host_dir)
        if created:  # another worker's registry may be using it: only if empty
            with contextlib.suppress(OSError):
                Path(certs_d).rmdir()
