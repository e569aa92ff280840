"""OCI device cgroup rules (`linux.resources.devices`), normalised for v1 files and v2 eBPF.

A rule is (type, major, minor, access, allow): type "a"/"b"/"c", None for a wildcard number,
access a subset of "rwm". The config's rules come first and runc's default allow-list after
them, as runc and crun add it: every container may mknod and use the basic character devices.
"""

from __future__ import annotations

from corral.runtime.cgroups.common import CgroupError

TYPE_CHECKING = False  # typing costs milliseconds (it imports re) on every start
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

Rule = tuple[str, int | None, int | None, str, bool]

DEFAULT_RULES: tuple[Rule, ...] = (
    ("c", None, None, "m", True),
    ("b", None, None, "m", True),
    ("c", 1, 3, "rwm", True),      # /dev/null
    ("c", 1, 8, "rwm", True),      # /dev/random
    ("c", 1, 7, "rwm", True),      # /dev/full
    ("c", 5, 0, "rwm", True),      # /dev/tty
    ("c", 1, 5, "rwm", True),      # /dev/zero
    ("c", 1, 9, "rwm", True),      # /dev/urandom
    ("c", 5, 1, "rwm", True),      # /dev/console
    ("c", 136, None, "rwm", True),  # /dev/pts/*
    ("c", 5, 2, "rwm", True),      # /dev/ptmx
    ("c", 10, 200, "rwm", True),   # /dev/net/tun
)


def normalise(rule: Mapping[str, Any]) -> Rule:
    kind = rule.get("type") or "a"
    if kind not in ("a", "b", "c"):
        raise CgroupError(f"devices: invalid type {kind!r} in rule {dict(rule)}")
    access = rule.get("access") or "rwm"
    if set(access) - set("rwm"):
        raise CgroupError(f"devices: invalid access {access!r} in rule {dict(rule)}")
    major = None if rule.get("major", -1) in (None, -1) else int(rule["major"])
    minor = None if rule.get("minor", -1) in (None, -1) else int(rule["minor"])
    return kind, major, minor, access, bool(rule.get("allow"))


def with_defaults(rules: Sequence[Mapping[str, Any]]) -> list[Rule]:
    """The config's rules, in order, then the defaults."""
    return [normalise(rule) for rule in rules] + list(DEFAULT_RULES)


def v1_text(rule: Rule) -> str:
    """"c 1:3 rwm", the form devices.allow and devices.deny take."""
    kind, major, minor, access, _allow = rule
    if kind == "a":
        return f"a *:* {access}"
    return f"{kind} {'*' if major is None else major}:{'*' if minor is None else minor} {access}"
