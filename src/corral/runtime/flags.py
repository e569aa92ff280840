"""Command-line flags the way runc's urfave/cli reads them, without argparse.

argparse (with gettext, locale and re) costs more start-up time than a whole `runc start`, and
its rules differ from urfave's anyway: urfave takes `-flag`, `--flag`, `--flag=value` and
`--flag value` alike, stops at the first positional argument (so `exec ID sh -c ...` keeps the
command's own flags), and accepts `--bool=false`.
"""

from __future__ import annotations

from corral.runtime.errors import RuntimeFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

# kinds
BOOL, STR, INT, LIST, INT_LIST = "bool", "str", "int", "list", "int-list"


class Flag:
    """One flag: its names (first is the long one; its dest uses '_' for '-'), kind, default."""

    __slots__ = ("default", "dest", "kind", "names")

    def __init__(self, *names: str, kind: str = STR, default: Any = None) -> None:
        self.names = names
        self.kind = kind
        self.dest = names[0].replace("-", "_")
        if default is None and kind == BOOL:
            default = False
        self.default = default


class Args:
    """Parsed flags and positionals as attributes (`args.bundle`, `args.container_id`)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def _convert(flag: Flag, value: str) -> Any:
    if flag.kind in (INT, INT_LIST):
        try:
            return int(value)
        except ValueError:
            raise RuntimeFailure(f"invalid value {value!r} for flag -{flag.names[0]}") from None
    return value


def parse(verb: str, flags: Sequence[Flag], positionals: Sequence[str],
          argv: Sequence[str]) -> Args:
    """`positionals` names the required arguments in order; a last name starting with `*` takes
    the rest (possibly empty), one ending in `?` is optional."""
    by_name = {name: flag for flag in flags for name in flag.names}
    values: dict[str, Any] = {}
    for flag in flags:
        values[flag.dest] = [] if flag.kind in (LIST, INT_LIST) else flag.default
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.lstrip("-").partition("=")
        found = by_name.get(name)
        if found is None:
            raise RuntimeFailure(f"flag provided but not defined: -{name}")
        flag = found
        if flag.kind == BOOL:
            values[flag.dest] = value.lower() not in ("false", "0") if eq else True
        else:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise RuntimeFailure(f"flag needs an argument: -{name}")
                value = argv[i]
            if flag.kind in (LIST, INT_LIST):
                values[flag.dest].append(_convert(flag, value))
            else:
                values[flag.dest] = _convert(flag, value)
        i += 1
    rest = list(argv[i:])
    for name in positionals:
        if name.startswith("*"):
            values[name[1:]] = rest
            rest = []
        elif name.endswith("?"):
            values[name[:-1]] = rest.pop(0) if rest else None
        elif rest:
            values[name] = rest.pop(0)
        else:
            required = sum(1 for n in positionals if not n.startswith("*") and not n.endswith("?"))
            raise RuntimeFailure(f'"corral-runtime {verb}" requires exactly {required} '
                                 f"argument(s)")
    if rest:
        raise RuntimeFailure(f'"corral-runtime {verb}" got unexpected arguments: {" ".join(rest)}')
    return Args(values)
