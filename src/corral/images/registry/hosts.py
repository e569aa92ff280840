"""How to reach a registry: its API host, its TLS settings, and whether it is insecure.

TLS, like docker and podman:
- CAs and client certificates come from `--cert-dir` if given, else from
  `/etc/containers/certs.d/<host:port>/` and `/etc/docker/certs.d/<host:port>/` (and
  `~/.config/containers/certs.d` for a non-root user): `*.crt` are CAs added to the system's,
  `*.cert` + `*.key` pairs are client certificates.
- `--tls-verify=false`, a registry marked `insecure = true` in registries.conf
  (`$CONTAINERS_REGISTRIES_CONF`, else `/etc/containers/registries.conf` and its `.d`), and —
  as docker does for 127.0.0.0/8 — a loopback registry are *insecure*: HTTPS is tried without
  verifying the certificate and, if the registry does not speak TLS, plain HTTP is used.
  Podman differs only in the loopback default (it needs `--tls-verify=false` there); docker's
  behaviour is corral's reference. `--tls-verify=true` makes even a loopback registry strict.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tomllib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from corral.errors import InvalidArgument

DOCKER_HUB = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"
_CERTS_D = (Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))
_REGISTRIES_CONF = Path("/etc/containers/registries.conf")


@dataclass(frozen=True)
class HostConfig:
    """Everything needed to open a connection to one registry host."""

    name: str  # as references and auth files spell it: "docker.io", "localhost:5000"
    api_host: str  # host[:port] the HTTP requests go to
    insecure: bool  # certificate not verified; plain HTTP allowed when TLS fails
    cert_dir: Path | None = None

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """Made on first use (loading the system CAs costs ~20 ms; a plain-HTTP pull skips it)."""
        return _ssl_context(self.name, self.insecure, self.cert_dir)


def api_host(registry: str) -> str:
    """The host serving a registry's API (docker.io's is registry-1.docker.io)."""
    return _DOCKER_HUB_API if registry in (DOCKER_HUB, "index.docker.io") else registry


def host_config(
    registry: str, *, tls_verify: bool | None = None, cert_dir: Path | None = None
) -> HostConfig:
    """The connection settings for `registry`, from the flags and the host's configuration."""
    insecure = not tls_verify if tls_verify is not None else _insecure_by_config(registry)
    return HostConfig(
        name=registry,
        api_host=api_host(registry),
        insecure=insecure,
        cert_dir=cert_dir,
    )


def is_loopback(registry: str) -> bool:
    if registry.startswith("["):  # [::1]:5000
        host = registry[1:].partition("]")[0]
    else:
        host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _insecure_by_config(registry: str) -> bool:
    return is_loopback(registry) or registry in _insecure_registries()


@lru_cache(maxsize=1)
def _insecure_registries() -> frozenset[str]:
    """Registries marked insecure in registries.conf (v2 `[[registry]]` and v1 tables)."""
    env = os.environ.get("CONTAINERS_REGISTRIES_CONF")
    files = [Path(env)] if env else [_REGISTRIES_CONF, *sorted(Path(f"{_REGISTRIES_CONF}.d").glob("*.conf"))]
    found: set[str] = set()
    for path in files:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InvalidArgument(f"registries configuration {path}: {e}") from e
        for entry in data.get("registry", []):
            if entry.get("insecure") and entry.get("location"):
                found.add(str(entry["location"]))
        found.update(data.get("registries", {}).get("insecure", {}).get("registries", []))
    return frozenset(found)


def _cert_dirs(registry: str, cert_dir: Path | None) -> list[Path]:
    if cert_dir is not None:
        return [cert_dir]
    roots = list(_CERTS_D)
    if os.geteuid() != 0:
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        roots.insert(0, config / "containers/certs.d")
    return [root / registry for root in roots]


def _ssl_context(registry: str, insecure: bool, cert_dir: Path | None) -> ssl.SSLContext:
    if insecure:  # nothing is verified: skip loading the system's CAs
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context()
    for directory in _cert_dirs(registry, cert_dir):
        if not directory.is_dir():
            continue
        try:
            for ca in sorted(directory.glob("*.crt")):
                ctx.load_verify_locations(cafile=str(ca))
            for cert in sorted(directory.glob("*.cert")):
                key = cert.with_suffix(".key")
                if not key.exists():
                    raise InvalidArgument(f"client certificate {cert} has no key {key.name}")
                ctx.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as e:
            raise InvalidArgument(f"certificates in {directory}: {e}") from e
    return ctx
