"""Image references the way Docker reads them (distribution/reference's grammar).

`busybox` is `docker.io/library/busybox:latest`; a first component with a `.` or `:` (or
`localhost`) is a registry host; `@sha256:...` pins a digest. `familiar()` gives back the short
form docker prints in tables (`busybox:latest`, `registry:5000/app:v1`).
"""

from __future__ import annotations

from corral.errors import InvalidArgument
from corral.records import NamedTuple

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
_OFFICIAL_PREFIX = "library/"

# distribution/reference's grammar, checked character by character rather than with `re`:
# `corral run busybox` parses a reference, and `re` (with enum) costs ~3 ms of its start.
#   path       component ("/" component)*
#   component  [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
#   domain     (label ("." label)* | "[" [0-9a-fA-F:]+ "]") (":" [0-9]+)?
#   label      [a-zA-Z0-9] ([a-zA-Z0-9-]* [a-zA-Z0-9])?
#   tag        [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
#   digest     "sha256:" [0-9a-f]{64}
_DIGITS = frozenset("0123456789")
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz") | _DIGITS
_ALNUM = _LOWER_ALNUM | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LABEL_CHARS = _ALNUM | {"-"}
_WORD = _ALNUM | {"_"}
_TAG_CHARS = _WORD | {".", "-"}
_HEX = frozenset("0123456789abcdef")
_IPV6_CHARS = _HEX | frozenset("ABCDEF:")
_COMPONENT_SEPARATORS = (".", "_", "__")


def _component(text: str) -> bool:
    if not text or text[0] not in _LOWER_ALNUM or text[-1] not in _LOWER_ALNUM:
        return False
    separator = ""
    for c in text:
        if c in _LOWER_ALNUM:
            if separator and separator not in _COMPONENT_SEPARATORS and separator.strip("-"):
                return False
            separator = ""
        else:
            separator += c
    return True


def _path(text: str) -> bool:
    return all(_component(c) for c in text.split("/"))


def _label(text: str) -> bool:
    return (bool(text) and text[0] != "-" and text[-1] != "-"
            and all(c in _LABEL_CHARS for c in text))


def _domain(text: str) -> bool:
    if text.startswith("["):  # an IPv6 address
        end = text.find("]") + 1
        host, port = text[:end], text[end:]
        if not host[1:-1] or not all(c in _IPV6_CHARS for c in host[1:-1]):
            return False
    else:
        host, colon, port = text.partition(":")
        port = colon + port
        if not all(_label(label) for label in host.split(".")):
            return False
    return not port or (port[0] == ":" and _number(port[1:]))


def _number(text: str) -> bool:
    return bool(text) and all(c in _DIGITS for c in text)


def _tag(text: str) -> bool:
    return (0 < len(text) <= 128 and text[0] in _WORD
            and all(c in _TAG_CHARS for c in text))


def is_digest(text: str) -> bool:
    """A sha256 digest as the store names blobs: `sha256:` and 64 lowercase hex digits."""
    return len(text) == 71 and text.startswith("sha256:") and all(c in _HEX for c in text[7:])


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
    if digest and not is_digest(digest):
        raise InvalidArgument(f"invalid reference format: {text}: bad digest {digest!r}")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag: str | None = None
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _tag(tag):
            raise InvalidArgument(f"invalid reference format: {text}: bad tag {tag!r}")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _domain(first):
            raise InvalidArgument(f"invalid reference format: {text}: bad registry {first!r}")
        domain, path = first, remainder
    else:
        domain, path = DEFAULT_DOMAIN, rest
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = _OFFICIAL_PREFIX + path
    if not _path(path):
        if path.lower() != path and _path(path.lower()):
            raise InvalidArgument(
                f"invalid reference format: repository name ({path}) must be lowercase"
            )
        raise InvalidArgument(f"invalid reference format: {text}")
    if tag is None and not digest and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest or None)


def looks_like_id(text: str) -> bool:
    """True for a full or short image id (`sha256:ab12...`, `ab12...`)."""
    hex_part = text[7:] if text.startswith("sha256:") else text
    return 0 < len(hex_part) <= 64 and all(c in _HEX for c in hex_part)
