"""`corral-runtime list [--format table|json] [-q]`."""

from __future__ import annotations

from corral.runtime import jsonio
from corral.runtime.cli import Globals
from corral.runtime.flags import BOOL, Args, Flag

FLAGS = (Flag("format", "f", default="table"), Flag("quiet", "q", kind=BOOL))
ARGS = ()


def _table(rows: list[list[str]]) -> str:
    """Go's tabwriter as runc sets it up: minwidth 12, padding 3."""
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "".join(
        "".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + row[-1] + "\n"
        for row in rows)


def run(args: Args, ctx: Globals) -> int:
    if args.format not in ("table", "json"):
        from corral.runtime.errors import RuntimeFailure

        raise RuntimeFailure(f"invalid format option {args.format!r}")
    from corral.runtime.container import Container
    from corral.runtime.errors import RuntimeFailure

    states = []
    for container_id in Container.ids(ctx.root):
        try:
            container = Container.load(ctx.root, container_id)
        except RuntimeFailure:
            continue
        if container.state is not None:
            states.append(container.oci_state())
    if args.quiet:
        print("".join(s["id"] + "\n" for s in states), end="")
    elif args.format == "json":
        print(jsonio.dumps(states))
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                  s["owner"] or "root"] for s in states]
        print(_table(rows), end="")
    return 0
