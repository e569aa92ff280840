"""Image references the way Docker reads them (distribution/reference's grammar).

`busybox` is `docker.io/library/busybox:latest`; a first component with a `.` or `:` (or
`localhost`) is a registry host; `@sha256:...` pins a digest. `familiar()` gives back the short
form docker prints in tables (`busybox:latest`, `registry:5000/app:v1`).
"""

from __future__ import annotations

import re

from corral.errors import InvalidArgument
from corral.records import NamedTuple

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
_OFFICIAL_PREFIX = "library/"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_ID_PREFIX_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{1,64}$")


class Reference(NamedTuple):  # a NamedTuple, not a dataclass: `corral images` imports this
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository with its registry: `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def familiar_name(self) -> str:
        """The repository as docker prints it: `busybox`, `me/app`, `host:5000/app`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(_OFFICIAL_PREFIX) and "/" not in self.path[len(_OFFICIAL_PREFIX):]:
            return self.path[len(_OFFICIAL_PREFIX):]
        return self.path

    def familiar(self) -> str:
        s = self.familiar_name()
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalize a reference; a missing tag (and digest) becomes `:latest`."""
    if not text or text != text.strip():
        raise InvalidArgument(f"invalid reference format: {text!r}")
    rest, _, digest = text.partition("@")
    if digest and not DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid reference format: {text}: bad digest {digest!r}")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag: str | None = None
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidArgument(f"invalid reference format: {text}: bad tag {tag!r}")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN_RE.match(first):
            raise InvalidArgument(f"invalid reference format: {text}: bad registry {first!r}")
        domain, path = first, remainder
    else:
        domain, path = DEFAULT_DOMAIN, rest
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = _OFFICIAL_PREFIX + path
    if not _PATH_RE.match(path):
        if path.lower() != path and _PATH_RE.match(path.lower()):
            raise InvalidArgument(
                f"invalid reference format: repository name ({path}) must be lowercase"
            )
        raise InvalidArgument(f"invalid reference format: {text}")
    if tag is None and not digest and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest or None)


def looks_like_id(text: str) -> bool:
    """True for a full or short image id (`sha256:ab12...`, `ab12...`)."""
    return bool(_ID_PREFIX_RE.match(text))
