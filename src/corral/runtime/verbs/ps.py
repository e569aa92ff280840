"""`corral-runtime ps [--format table|json] ID [ps options]`: the container's processes."""

from __future__ import annotations

from corral.runtime import jsonio
from corral.runtime.cli import Globals
from corral.runtime.flags import Args, Flag

FLAGS = (Flag("format", "f", default="table"),)
ARGS = ("container_id", "*ps_args")


def run(args: Args, ctx: Globals) -> int:
    if args.format not in ("table", "json"):
        from corral.runtime.errors import RuntimeFailure

        raise RuntimeFailure(f"invalid format option {args.format!r}")
    from corral.runtime.container import Container

    container = Container.load(ctx.root, args.container_id)
    pids = container.cgroup().pids() if container.state is not None else []
    if args.format == "json":
        print(jsonio.dumps(pids))
        return 0
    import subprocess

    out = subprocess.run(["ps", *(args.ps_args or ["-ef"])], capture_output=True, text=True)
    if out.returncode != 0:
        from corral.runtime.errors import RuntimeFailure

        raise RuntimeFailure(f"ps: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        from corral.runtime.errors import RuntimeFailure

        raise RuntimeFailure("couldn't find PID field in ps output")
    column = header.index("PID")
    print(lines[0])
    wanted = {str(p) for p in pids}
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column] in wanted:
            print(line)
    return 0
