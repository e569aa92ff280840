"""A small docker-style flag parser for the container commands (no click on the hot path).

docker's syntax, which click does not quite have: combined short flags (`-it`, `-dit`), values
attached or separate (`-eK=V`, `-e K=V`, `--env=K=V`), repeatable flags, and for `run`/`exec`
flags only before the first positional argument, so `corral run busybox ls -l` passes `-l` on.
A command's flags are data (`Flag`), so `--help` is generated from the same table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from corral.records import NamedTuple

TYPE_CHECKING = False  # not typing's: `ps` and `exec` must not import typing (~2 ms)
if TYPE_CHECKING:
    from typing import Any


class UsageError(Exception):
    """Bad command line: one line, exit 125."""


class Flag(NamedTuple):
    long: str
    short: str = ""
    kind: str = "bool"  # bool | str | list | int
    help: str = ""
    default: Any = None
    metavar: str = ""

    @property
    def key(self) -> str:
        return self.long.replace("-", "_")


class Command(NamedTuple):
    name: str
    usage: str
    help: str
    run: Callable[[dict[str, Any], list[str]], int]
    flags: tuple[Flag, ...] = ()
    min_args: int = 0
    max_args: int | None = None
    interspersed: bool = True  # False: flags stop at the first positional argument
    aliases: tuple[str, ...] = ()

    def help_text(self) -> str:
        lines = [f"Usage:  corral {self.usage}", "", self.help]
        if self.flags:
            lines += ["", "Options:"]
            for f in self.flags:
                short = f"-{f.short}, " if f.short else "    "
                value = "" if f.kind == "bool" else f" {f.metavar or ('string' if f.kind == 'str' else f.kind)}"
                lines.append(f"  {short}--{f.long}{value}".ljust(34) + f"  {f.help}")
        return "\n".join(lines)


def parse(cmd: Command, argv: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    by_long = {f.long: f for f in cmd.flags}
    by_short = {f.short: f for f in cmd.flags if f.short}
    values: dict[str, Any] = {f.key: ([] if f.kind == "list" else f.default) for f in cmd.flags}
    args: list[str] = []
    i = 0

    def take(flag: Flag, attached: str | None) -> None:
        nonlocal i
        if flag.kind == "bool":
            values[flag.key] = True if attached is None else attached.lower() in ("true", "1", "")
            return
        if attached is None:
            i += 1
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: --{flag.long}")
            attached = argv[i]
        if flag.kind == "list":
            values[flag.key].append(attached)
        elif flag.kind == "int":
            try:
                values[flag.key] = int(attached)
            except ValueError:
                raise UsageError(f"invalid argument {attached!r} for --{flag.long}: not an integer") from None
        else:
            values[flag.key] = attached

    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args += argv[i + 1:]
            break
        if arg == "--help" or (arg == "-h" and "h" not in by_short):
            raise HelpRequested(cmd.help_text())
        if arg.startswith("--") and len(arg) > 2:
            name, sep, value = arg[2:].partition("=")
            flag = by_long.get(name)
            if flag is None:
                raise UsageError(f"unknown flag: --{name}")
            take(flag, value if sep else None)
        elif arg.startswith("-") and len(arg) > 1:
            j = 1
            while j < len(arg):
                flag = by_short.get(arg[j])
                if flag is None:
                    raise UsageError(f"unknown shorthand flag: {arg[j]!r} in {arg}")
                rest = arg[j + 1:]
                if flag.kind != "bool":
                    take(flag, rest.removeprefix("=") if rest else None)
                    break
                take(flag, None)
                j += 1
        else:
            args.append(arg)
            if not cmd.interspersed:
                args += argv[i + 1:]
                break
        i += 1
    if len(args) < cmd.min_args or (cmd.max_args is not None and len(args) > cmd.max_args):
        want = (f"exactly {cmd.min_args}" if cmd.min_args == cmd.max_args
                else f"at least {cmd.min_args}" if cmd.max_args is None else f"at most {cmd.max_args}")
        raise UsageError(f'"corral {cmd.name}" requires {want} argument(s); usage: corral {cmd.usage}')
    return values, args


class HelpRequested(Exception):
    """`--help`: print the text and exit 0."""


def execute(cmd: Command, argv: Sequence[str], prog: str) -> int:
    """Parse and run one command: its exit code; errors are one line on stderr (docker's codes)."""
    import contextlib
    import sys

    from corral.errors import CorralError, exit_code

    try:
        values, args = parse(cmd, argv)
        return cmd.run(values, args)
    except HelpRequested as h:
        with contextlib.suppress(BrokenPipeError):
            print(h.args[0], flush=True)
        return 0
    except UsageError as e:
        print(f"Error: {e} (see 'corral {prog} --help')", file=sys.stderr)
        return 125
    except CorralError as e:
        print(f"Error: {e}", file=sys.stderr)
        return exit_code(e)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 125


def each(refs: Sequence[str], action: Callable[[str], object], *, echo: bool = True) -> int:
    """docker's multi-object verbs (`rm`, `stop`, `volume rm`, ...): print each name that
    worked, one error line per failure, and exit with the last failure's code."""
    import sys

    from corral.errors import CorralError, exit_code

    code = 0
    for ref in refs:
        try:
            action(ref)
            if echo:
                print(ref)
        except CorralError as e:
            print(f"Error: {e}", file=sys.stderr)
            code = exit_code(e)
    return code
