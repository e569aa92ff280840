"""Where registry settings come from: insecure registries, credentials files (real files, no registry)."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import InvalidArgument
from corral.images.registry import credentials, hosts
from corral.images.registry.auth import Credentials


@pytest.fixture()
def registries_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "registry.internal:5000"\ninsecure = true\n'
                    '[[registry]]\nlocation = "secure.internal"\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    hosts._insecure_registries.cache_clear()
    yield conf
    hosts._insecure_registries.cache_clear()


def test_insecure_registries(registries_conf: Path) -> None:
    assert hosts.host_config("registry.internal:5000").insecure
    assert not hosts.host_config("secure.internal").insecure
    assert hosts.host_config("localhost:5000").insecure  # docker: loopback is insecure
    assert hosts.host_config("127.0.0.1:5000").insecure
    assert hosts.host_config("[::1]:5000").insecure
    assert not hosts.host_config("127.0.0.1:5000", tls_verify=True).insecure
    assert hosts.host_config("secure.internal", tls_verify=False).insecure
    strict = hosts.host_config("secure.internal").ssl_context
    assert strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    assert hosts.host_config("docker.io").api_host == "registry-1.docker.io"


def test_a_broken_registries_conf_is_named(registries_conf: Path) -> None:
    registries_conf.write_text("[[registry]\n")
    hosts._insecure_registries.cache_clear()
    with pytest.raises(InvalidArgument, match=str(registries_conf)):
        hosts.host_config("anything.example")


def test_login_logout_round_trip_and_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    authfile = tmp_path / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(authfile))
    docker = tmp_path / "docker"
    docker.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    hub = base64.b64encode(b"hubuser:hubpass").decode()
    team = base64.b64encode(b"team:teampass").decode()
    (docker / "config.json").write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": hub},
        "https://reg.example:5000/v2/": {"auth": base64.b64encode(b"d:dp").decode()},
        "reg.example:5000/team": {"auth": team}}}))
    assert credentials.lookup("docker.io", "library/busybox") == Credentials("hubuser", "hubpass")
    assert credentials.lookup("reg.example:5000", "team/app") == Credentials("team", "teampass")
    assert credentials.lookup("reg.example:5000", "other/app") == Credentials("d", "dp")
    assert credentials.lookup("nowhere.example") is None

    assert credentials.store("reg.example:5000", Credentials("me", "pw:with:colons")) == authfile
    assert oct(authfile.stat().st_mode & 0o777) == "0o600"
    assert credentials.lookup("reg.example:5000", "other/app") == Credentials("me", "pw:with:colons")
    assert credentials.remove("reg.example:5000")
    assert not credentials.remove("reg.example:5000")
    assert credentials.lookup("reg.example:5000", "other/app") == Credentials("d", "dp")
    # --authfile reads only that file
    assert credentials.lookup("docker.io", authfile=authfile) is None


def test_a_broken_auth_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "auth.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidArgument, match="reading credentials from"):
        credentials.lookup("reg.example", authfile=bad)
    bad.write_text(json.dumps({"auths": {"reg.example": {"auth": base64.b64encode(b"nocolon").decode()}}}))
    with pytest.raises(InvalidArgument, match="not user:password"):
        credentials.lookup("reg.example", authfile=bad)
