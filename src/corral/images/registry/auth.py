"""Registry authentication: answering a `WWW-Authenticate` challenge, as docker's client does.

A request goes out with whatever Authorization header is cached for its scope. A 401 carries a
challenge:
- `Basic realm="..."`: send the user's credentials with every request from then on.
- `Bearer realm="https://auth/token",service="registry",scope="repository:foo:pull"`: GET
  `realm?service=..&scope=..` (with the credentials as basic auth, if the user logged in; anonymous
  otherwise) for a token, and send `Authorization: Bearer <token>`. Tokens are cached per scope
  set; a push asks for `pull,push` on the target and `pull` on a cross-repository mount's source.
The token fetch itself goes through the client (`TokenFetcher`), so it uses the same TLS settings.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from corral.errors import CorralError

_PARAM = re.compile(r'\s*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str  # or an identity (refresh) token when username is "<token>"

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer" or "basic"
    params: dict[str, str]


class Unauthorized(CorralError):
    """The registry refused our credentials (or wants some and we have none)."""


def parse_challenges(header: str) -> list[Challenge]:
    """Split a WWW-Authenticate header into its challenges (RFC 7235, the forms registries use)."""
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(header):
        m = re.compile(r"\s*,?\s*([A-Za-z][\w-]*)\s*").match(header, pos)
        if not m or m.end() == pos:
            break
        scheme, pos = m.group(1).lower(), m.end()
        params: dict[str, str] = {}
        while True:
            p = _PARAM.match(header, pos)
            if not p or p.end() == pos:
                break
            quoted, bare = p.group(2), p.group(3)
            params[p.group(1).lower()] = (
                re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            )
            pos = p.end()
        challenges.append(Challenge(scheme, params))
    return challenges


# (url, basic-auth header or None) -> (status, body)
TokenFetcher = Callable[[str, str | None], tuple[int, bytes]]


class Authenticator:
    """The Authorization header for each scope of one registry; thread-safe."""

    def __init__(self, registry: str, credentials: Credentials | None, fetch: TokenFetcher) -> None:
        self._registry = registry
        self._credentials = credentials
        self._fetch = fetch
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], str] = {}

    def header(self, scopes: Sequence[str]) -> str | None:
        """The header to send for a request needing `scopes`, if a challenge told us how."""
        with self._lock:
            challenge = self._challenge
            if challenge is None:
                return None
            if challenge.scheme == "basic":
                return self._credentials.basic() if self._credentials else None
            key = tuple(sorted(scopes))
            token = self._tokens.get(key)
        if token is None:
            token = self._bearer_token(challenge, key)
            with self._lock:
                self._tokens[key] = token
        return f"Bearer {token}"

    def challenged(self, www_authenticate: str, scopes: Sequence[str]) -> bool:
        """Learn from a 401's challenge; True if the request is worth one more try."""
        usable = [c for c in parse_challenges(www_authenticate) if c.scheme in ("bearer", "basic")]
        if not usable:
            return False
        with self._lock:
            self._challenge = usable[0]
            self._tokens.pop(tuple(sorted(scopes)), None)
        return usable[0].scheme == "bearer" or self._credentials is not None

    def _bearer_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> str:
        realm = challenge.params.get("realm")
        if not realm:
            raise Unauthorized(f"{self._registry}: Bearer challenge without a realm")
        query = [("service", challenge.params["service"])] if "service" in challenge.params else []
        query += [("scope", s) for s in scopes]
        sep = "&" if "?" in realm else "?"
        url = realm + (sep + urllib.parse.urlencode(query) if query else "")
        basic = self._credentials.basic() if self._credentials else None
        status, body = self._fetch(url, basic)
        if status in (401, 403):
            raise Unauthorized(
                f"unable to retrieve auth token: invalid username/password: unauthorized: "
                f"authentication required for {self._registry}"
            )
        if status != 200:
            raise Unauthorized(f"{self._registry}: token server {realm} answered HTTP {status}")
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise Unauthorized(f"{self._registry}: token server {realm} sent no token")
        return token
