"""`corral exec`: a new process in a running container, through the runtime's `exec`.

The process inherits the container's config.json process (env, user, capabilities, seccomp,
cwd), with `-e`, `-u`, `-w` and `--privileged` applied, and runs with the caller's stdio (so the
runtime passes its exit code through). The program is looked up in the container's PATH inside
its root first, so a missing or non-executable program gives docker's 127/126 and one line.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Sequence

from corral.config import Paths
from corral.containers import defaults, ociruntime, rootpath, state
from corral.containers.state import Status
from corral.containers.store import Store
from corral.errors import CannotExecute, CommandNotFound, Conflict

TYPE_CHECKING = False  # not typing's: `exec` must not import typing (~2 ms)
if TYPE_CHECKING:
    from typing import Any


def command(paths: Paths, ref: str, argv: Sequence[str], *, tty: bool = False, detach: bool = False,
            env: Sequence[str] = (), user: str | None = None, workdir: str | None = None,
            privileged: bool = False) -> tuple[list[str], int]:
    """The runtime's `exec` command line, and the pipe fd (to pass on) holding the process spec."""
    store = Store(paths)
    rec = store.get(ref)
    observed = state.observe(store, rec)
    if observed.status is Status.PAUSED:
        raise Conflict(f"container {rec.name} is paused, unpause the container before exec")
    if observed.status is not Status.RUNNING:
        raise Conflict(f"container {rec.name} is not running")
    with open(os.path.join(store.dir(rec.id), "config.json"), "rb") as f:
        spec = json.loads(f.read())
    root = f"/proc/{rec.pid}/root"
    process = process_for(spec["process"], root, argv, tty=tty, env=env, user=user,
                          workdir=workdir, privileged=privileged)
    data = json.dumps(process).encode()
    if len(data) > 60000:  # a pipe holds 64 KiB without a reader
        raise Conflict("the process spec is too large")
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    runtime = ociruntime.find(rec.runtime, paths.runroot)
    return runtime.argv("exec", "--process", f"/proc/self/fd/{read_end}",
                        *(["--detach"] if detach else []), rec.id), read_end


def run(paths: Paths, ref: str, argv: Sequence[str], *, tty: bool = False,
        interactive: bool = False, detach: bool = False, env: Sequence[str] = (),
        user: str | None = None, workdir: str | None = None, privileged: bool = False) -> int:
    """Run `argv` in the container. In the foreground this process *becomes* the runtime (the
    process spec travels through a pipe), so the exit code and stdio are the runtime's own."""
    args, spec_fd = command(paths, ref, argv, tty=tty, detach=detach, env=env, user=user,
                            workdir=workdir, privileged=privileged)
    if detach:
        return subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              pass_fds=(spec_fd,)).returncode
    if not (interactive or tty):
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.set_inheritable(spec_fd, True)
    os.execv(args[0], args)


def capture(paths: Paths, ref: str, argv: Sequence[str], **options: Any) -> tuple[int, bytes]:
    """Run `argv` in the container and return (exit code, stdout and stderr interleaved)."""
    args, spec_fd = command(paths, ref, argv, **options)
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, pass_fds=(spec_fd,))
    finally:
        os.close(spec_fd)
    return proc.returncode, proc.stdout


def process_for(base: dict[str, Any], root: str, argv: Sequence[str], *, tty: bool,
                env: Sequence[str], user: str | None, workdir: str | None,
                privileged: bool) -> dict[str, Any]:
    process = dict(base)
    merged = dict(item.partition("=")[::2] for item in base.get("env", []))
    for item in env:
        key, _, value = item.partition("=")
        merged[key] = value
    if tty:
        merged.setdefault("TERM", "xterm")
    process["env"] = [f"{k}={v}" for k, v in merged.items()]
    process["args"] = list(argv)
    process["terminal"] = tty
    if workdir:
        process["cwd"] = workdir
    if user:
        from corral.containers import specgen

        uid, gid, gids = specgen.resolve_user(root, user)
        process["user"] = {"uid": uid, "gid": gid, "additionalGids": gids}
    if privileged:
        caps = list(defaults.ALL_CAPABILITIES)
        process["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    check_executable(root, argv[0], merged.get("PATH", defaults.DEFAULT_PATH), process.get("cwd", "/"))
    return process


def check_executable(root: str, program: str, path_var: str, cwd: str) -> None:
    """docker's 127 (not found) / 126 (not executable), decided inside the container's root."""
    if "/" in program:
        candidates = [program if program.startswith("/") else os.path.join(cwd, program)]
    else:
        candidates = [os.path.join(d or ".", program) for d in path_var.split(":")]
    found = None
    for candidate in candidates:
        host = rootpath.resolve(root, candidate)
        try:
            st = os.stat(host)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return
        found = found or candidate
    if found is not None:
        raise CannotExecute(f"exec failed: {found}: permission denied")
    raise CommandNotFound(f'exec failed: "{program}": executable file not found in $PATH')
