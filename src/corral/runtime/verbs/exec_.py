"""`corral-runtime exec [-p process.json | ID ARGS...] [-t] [-d] [--env] [--cwd] [--user]
[--cap] [--console-socket] [--pid-file] [--preserve-fds] [--cgroup [CONTROLLER:]PATH] ID`"""

from __future__ import annotations

from corral.runtime import jsonio
from corral.runtime.cli import Globals
from corral.runtime.container import Container
from corral.runtime.errors import InvalidConfig, RuntimeFailure
from corral.runtime.flags import BOOL, INT, INT_LIST, LIST, Args, Flag
from corral.runtime.record import replace
from corral.runtime.spec import Process, User, parse_process

FLAGS = (
    Flag("process", "p"), Flag("tty", "t", kind=BOOL), Flag("detach", "d", kind=BOOL),
    Flag("env", "e", kind=LIST), Flag("cwd"), Flag("user", "u"),
    Flag("additional-gids", "g", kind=INT_LIST), Flag("cap", "c", kind=LIST),
    Flag("no-new-privs", kind=BOOL), Flag("console-socket"), Flag("pid-file"),
    Flag("preserve-fds", kind=INT, default=0), Flag("apparmor"), Flag("process-label"),
    Flag("cgroup", kind=LIST),
)
ARGS = ("container_id", "*command")


def _user(text: str, base: User) -> User:
    uid, _, gid = text.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise RuntimeFailure(f"invalid --user {text!r}: want UID[:GID] in numbers")
    return replace(base, uid=int(uid), gid=int(gid) if gid else base.gid)


def _with_caps(caps: dict[str, list[str]], added: list[str]) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in caps.items()}
    for cap in added:
        for kind in ("bounding", "effective", "permitted"):
            out.setdefault(kind, []).append(cap)
        if "inheritable" in out:  # ambient needs inheritable (runc's rule)
            out.setdefault("ambient", []).append(cap)
    return out


def build_process(args: Args, base: Process | None) -> Process:
    """process.json as given, or the container's process with the command and flags over it."""
    if args.process is not None:
        try:
            with open(args.process, "rb") as f:
                return parse_process(jsonio.loads(f.read()))
        except (OSError, ValueError) as e:
            raise InvalidConfig(f"process.json {args.process}: {e}") from None
    if not args.command:
        raise RuntimeFailure("exec: missing command (give ARGS or --process)")
    if base is None:
        raise InvalidConfig("config.json: process: is required to exec")
    process = replace(base, args=tuple(args.command), env=(*base.env, *args.env))
    if args.cwd is not None:
        process = replace(process, cwd=args.cwd)
    user = _user(args.user, process.user) if args.user else process.user
    if args.additional_gids:
        user = replace(user, additional_gids=tuple(args.additional_gids))
    process = replace(process, user=user, terminal=args.tty)
    if args.cap:
        caps = {k: list(v) for k, v in (process.capabilities or {}).items()}
        process = replace(process, capabilities=_with_caps(caps, args.cap))
    if args.no_new_privs:
        process = replace(process, no_new_privileges=True)
    return process


def sub_cgroups(values: list[str]) -> dict[str, str]:
    """runc's `--cgroup [controller[,controller]:]path` flags -> {controller or "": path}."""
    subs: dict[str, str] = {}
    for value in values:
        controllers, _, path = value.rpartition(":")
        if not path:
            raise RuntimeFailure(f"invalid --cgroup {value!r}: want [CONTROLLER:]PATH")
        for controller in controllers.split(",") if controllers else [""]:
            if controller in subs:
                raise RuntimeFailure(f"duplicate cgroup controller {controller!r} in --cgroup")
            subs[controller] = path
    return subs


def run(args: Args, ctx: Globals) -> int:
    from corral.runtime.process import foreground
    from corral.runtime.process.exec_ import ExecRequest, container_spec, execute

    container = Container.load(ctx.root, args.container_id)
    status = container.status()
    if not status.can_exec():
        raise RuntimeFailure(f"cannot exec in a {status.value} container")
    process = build_process(args, container_spec(container).process)
    if process.capabilities is not None:
        from corral.runtime.linux import caps

        caps.check(process.capabilities)
    if not args.detach:
        foreground.become_subreaper()
    request = ExecRequest(process, console_socket=args.console_socket, pid_file=args.pid_file,
                          preserve_fds=args.preserve_fds, own_terminal=not args.detach,
                          sub_cgroups=sub_cgroups(args.cgroup))
    pid, master = execute(container, request)
    if args.detach:
        return 0
    return foreground.wait(pid, master)
