"""`corral volume create|ls|inspect|rm|prune`: docker's volume commands over corral's volumes."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from corral.cli.flags import Command, Flag, each, execute
from corral.errors import CorralError


def _engine() -> Any:
    from corral.config import paths
    from corral.containers.lifecycle import Containers

    return Containers(paths())


def _create(v: dict[str, Any], args: list[str]) -> int:
    from corral.containers.options import parse_labels

    if v["driver"] not in (None, "local"):
        raise CorralError(f"volume driver {v['driver']!r} is not supported: only 'local'")
    vol = _engine().volumes.create(args[0] if args else None, parse_labels(v["label"]), exist_ok=bool(args))
    print(vol.name)
    return 0


def _ls(v: dict[str, Any], args: list[str]) -> int:
    from corral.cli import format as fmt

    engine = _engine()
    vols = engine.volumes.all()
    for f in v["filter"]:
        key, _, value = f.partition("=")
        if key == "name":
            vols = [x for x in vols if value in x.name]
        elif key == "dangling":
            used = {m["source"] for r in engine.store.all() for m in r.options.get("mounts", ())
                    if m["type"] == "volume"}
            vols = [x for x in vols if (x.name not in used) == (value in ("true", "1"))]
        elif key == "label":
            lk, sep, lv = value.partition("=")
            vols = [x for x in vols if lk in x.labels and (not sep or x.labels[lk] == lv)]
    if v["quiet"]:
        print("\n".join(x.name for x in vols) if vols else "", end="\n" if vols else "")
        return 0
    docs = [x.inspect() for x in vols]
    text = fmt.output(v["format"], docs, [("local", x.name) for x in vols], ("DRIVER", "VOLUME NAME"))
    if text:
        print(text)
    return 0


def _inspect(v: dict[str, Any], args: list[str]) -> int:
    from corral.cli import format as fmt

    engine = _engine()
    docs = [engine.volumes.get(name).inspect() for name in args]
    if v["format"]:
        print("\n".join(fmt.render(v["format"], d) for d in docs))
    else:
        print(json.dumps(docs, indent=4))
    return 0


def _rm(v: dict[str, Any], args: list[str]) -> int:
    engine = _engine()
    return each(args, lambda name: engine.volumes.remove(
        name, users=engine.volume_users(name), force=bool(v["force"])))


def _prune(v: dict[str, Any], args: list[str]) -> int:
    engine = _engine()
    removed = []
    for vol in engine.volumes.all():
        if (vol.anonymous or v["all"]) and not engine.volume_users(vol.name):
            engine.volumes.remove(vol.name, users=[])
            removed.append(vol.name)
    if removed:
        print("Deleted Volumes:\n" + "\n".join(removed) + "\n")
    print("Total reclaimed space: 0B")
    return 0


_FORMAT = Flag("format", "f", "str", "Format output using a Go template or json")
COMMAND_LIST = (
    Command("create", "volume create [OPTIONS] [VOLUME]", "Create a volume", _create,
            (Flag("driver", "d", "str", "Specify volume driver name"),
             Flag("label", "l", "list", "Set metadata for a volume"),
             Flag("opt", "o", "list", "Set driver specific options")), 0, 1),
    Command("ls", "volume ls [OPTIONS]", "List volumes", _ls,
            (Flag("quiet", "q", help="Only display volume names"),
             Flag("filter", "f", "list", "Provide filter values (name=, label=, dangling=)"),
             Flag("format", kind="str", help="Format output using a Go template or json")), 0, 0,
            aliases=("list",)),
    Command("inspect", "volume inspect [OPTIONS] VOLUME [VOLUME...]", "Display detailed information on volumes",
            _inspect, (_FORMAT,), 1),
    Command("rm", "volume rm [OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes", _rm,
            (Flag("force", "f", help="Force the removal of one or more volumes"),), 1, aliases=("remove",)),
    Command("prune", "volume prune [OPTIONS]", "Remove unused local volumes", _prune,
            (Flag("force", "f", help="Do not prompt for confirmation"),
             Flag("all", "a", help="Remove all unused volumes, not just anonymous ones"),
             Flag("filter", kind="list", help="Provide filter values")), 0, 0),
)
COMMANDS = {alias: c for c in COMMAND_LIST for alias in (c.name, *c.aliases)}


def dispatch(argv: Sequence[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("Usage:  corral volume COMMAND\n\nManage volumes\n\nCommands:\n"
              + "\n".join(f"  {c.name:<10}{c.help}" for c in COMMAND_LIST))
        return 0
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        print(f"Error: unknown command \"{argv[0]}\" for \"corral volume\"", file=sys.stderr)
        return 125
    return execute(cmd, argv[1:], cmd.usage.split(" [")[0])


def __getattr__(attr: str) -> Any:
    if attr != "volume_command":
        raise AttributeError(attr)
    import click

    def callback(args: tuple[str, ...]) -> None:
        sys.exit(dispatch(list(args)))

    return click.Command("volume", callback=callback, help="Manage volumes", add_help_option=False,
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
                         params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)])
