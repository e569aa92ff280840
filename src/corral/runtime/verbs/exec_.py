"""`corral-runtime exec [-p process.json | ID ARGS...] [-t] [-d] [--env] [--cwd] [--user]
[--cap] [--console-socket] [--pid-file] [--preserve-fds] ID`"""

from __future__ import annotations

import argparse
import dataclasses
import json

from corral.runtime.cli import Globals
from corral.runtime.container import Container
from corral.runtime.errors import InvalidConfig, RuntimeFailure
from corral.runtime.spec import Process, User, parse_process


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--process", "-p", default=None)
    p.add_argument("--tty", "-t", action="store_true")
    p.add_argument("--detach", "-d", action="store_true")
    p.add_argument("--env", "-e", action="append", default=[])
    p.add_argument("--cwd", default=None)
    p.add_argument("--user", "-u", default=None)
    p.add_argument("--additional-gids", "-g", action="append", type=int, default=[])
    p.add_argument("--cap", "-c", action="append", default=[])
    p.add_argument("--no-new-privs", action="store_true")
    p.add_argument("--console-socket", default=None)
    p.add_argument("--pid-file", default=None)
    p.add_argument("--preserve-fds", type=int, default=0)
    p.add_argument("--apparmor", default=None)
    p.add_argument("--process-label", default=None)
    p.add_argument("container_id")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _user(text: str, base: User) -> User:
    uid, _, gid = text.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise RuntimeFailure(f"invalid --user {text!r}: want UID[:GID] in numbers")
    return dataclasses.replace(base, uid=int(uid), gid=int(gid) if gid else base.gid)


def _with_caps(caps: dict[str, list[str]], added: list[str]) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in caps.items()}
    for cap in added:
        for kind in ("bounding", "effective", "permitted"):
            out.setdefault(kind, []).append(cap)
        if "inheritable" in out:  # ambient needs inheritable (runc's rule)
            out.setdefault("ambient", []).append(cap)
    return out


def build_process(args: argparse.Namespace, base: Process | None) -> Process:
    """process.json as given, or the container's process with the command and flags over it."""
    if args.process is not None:
        try:
            with open(args.process, "rb") as f:
                return parse_process(json.load(f))
        except (OSError, ValueError) as e:
            raise InvalidConfig(f"process.json {args.process}: {e}") from None
    if not args.command:
        raise RuntimeFailure("exec: missing command (give ARGS or --process)")
    if base is None:
        raise InvalidConfig("config.json: process: is required to exec")
    process = dataclasses.replace(base, args=tuple(args.command), env=(*base.env, *args.env))
    if args.cwd is not None:
        process = dataclasses.replace(process, cwd=args.cwd)
    user = _user(args.user, process.user) if args.user else process.user
    if args.additional_gids:
        user = dataclasses.replace(user, additional_gids=tuple(args.additional_gids))
    process = dataclasses.replace(process, user=user, terminal=args.tty)
    if args.cap:
        caps = {k: list(v) for k, v in (process.capabilities or {}).items()}
        process = dataclasses.replace(process, capabilities=_with_caps(caps, args.cap))
    if args.no_new_privs:
        process = dataclasses.replace(process, no_new_privileges=True)
    return process


def run(args: argparse.Namespace, ctx: Globals) -> int:
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
                          preserve_fds=args.preserve_fds, own_terminal=not args.detach)
    pid, master = execute(container, request)
    if args.detach:
        return 0
    return foreground.wait(pid, master)
