"""Registry credentials: corral's auth.json (written by login/logout) and docker's config.json.

Both files share containers' format: `{"auths": {"<registry>[/<repo>]": {"auth": base64("user:
password")}}}` (docker's `identitytoken` is honoured too). corral's file is `--authfile`, else
`$REGISTRY_AUTH_FILE`, else `<runroot>/auth.json` — like podman's `/run/containers/0/auth.json`,
a login lasts until reboot. Reading without `--authfile` falls back to `$DOCKER_CONFIG/config.json`
(`~/.docker/config.json`), whose Docker Hub key is `https://index.docker.io/v1/`. Credential
helpers (`credsStore`) are not run.

A lookup tries the most specific key first: `localhost:5000/team/app`, `localhost:5000/team`,
`localhost:5000`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from corral import config
from corral.errors import InvalidArgument
from corral.fsutil import atomic_write, locked
from corral.images.registry.auth import Credentials
from corral.images.registry.hosts import DOCKER_HUB

_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io")


def auth_file(explicit: Path | None = None) -> Path:
    """The file `login` writes: `--authfile`, `$REGISTRY_AUTH_FILE` or corral's default."""
    if explicit is not None:
        return explicit
    env = os.environ.get("REGISTRY_AUTH_FILE")
    return Path(env) if env else Path(config.paths().runroot) / "auth.json"


def docker_config_file() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def lookup(registry: str, repository: str = "", *, authfile: Path | None = None) -> Credentials | None:
    """The credentials stored for `registry` (and `repository`), or None."""
    files = [auth_file(authfile)] if authfile else [auth_file(), docker_config_file()]
    for path in files:
        auths = _read(path).get("auths", {})
        normalized = {_normalize_key(k): v for k, v in auths.items()}
        for key in _candidate_keys(registry, repository):
            if key in normalized:
                return _decode(normalized[key], path, key)
    return None


def store(registry: str, creds: Credentials, *, authfile: Path | None = None) -> Path:
    """Save `creds` for `registry` (login); returns the file written."""
    path = auth_file(authfile)
    with locked(path.with_name(path.name + ".lock")):
        data = _read(path)
        auth = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        data.setdefault("auths", {})[registry] = {"auth": auth}
        atomic_write(path, (json.dumps(data, indent=1) + "\n").encode(), mode=0o600)
    return path


def remove(registry: str, *, authfile: Path | None = None) -> bool:
    """Forget `registry`'s credentials (logout); False if none were stored in corral's file."""
    path = auth_file(authfile)
    with locked(path.with_name(path.name + ".lock")):
        data = _read(path)
        auths = data.get("auths", {})
        keys = [k for k in auths if _normalize_key(k) == registry]
        for k in keys:
            del auths[k]
        if keys:
            atomic_write(path, (json.dumps(data, indent=1) + "\n").encode(), mode=0o600)
    return bool(keys)


def _candidate_keys(registry: str, repository: str) -> list[str]:
    parts = repository.split("/") if repository else []
    keys = [f"{registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)]
    keys.append(registry)
    if registry == DOCKER_HUB:
        keys.extend(_DOCKER_HUB_KEYS)
    return keys


def _normalize_key(key: str) -> str:
    """`https://localhost:5000/v2/` -> `localhost:5000` (docker's keys are URLs)."""
    if key in _DOCKER_HUB_KEYS:
        return key
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            return key[len(prefix):].split("/", 1)[0]
    return key.rstrip("/")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"reading credentials from {path}: {e}") from e
    if not isinstance(data, dict):
        raise InvalidArgument(f"reading credentials from {path}: not a JSON object")
    return data


def _decode(entry: Any, path: Path, key: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return Credentials("<token>", str(entry["identitytoken"]))
    raw = entry.get("auth")
    if not raw:
        return None
    try:
        user, sep, password = base64.b64decode(raw).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise InvalidArgument(f"credentials for {key} in {path}: {e}") from e
    if not sep:
        raise InvalidArgument(f"credentials for {key} in {path}: not user:password")
    return Credentials(user, password)
