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
from pathlib import Path
from typing import Any

from corral.config import Paths
from corral.containers import defaults, ociruntime, rootpath, state
from corral.containers.state import Status
from corral.containers.store import Store
from corral.errors import CannotExecute, CommandNotFound, Conflict


def run(paths: Paths, ref: str, argv: Sequence[str], *, tty: bool = False,
        interactive: bool = False, detach: bool = False, env: Sequence[str] = (),
        user: str | None = None, workdir: str | None = None, privileged: bool = False) -> int:
    """Run `argv` in the container. In the foreground this process *becomes* the runtime (the
    process spec travels through a pipe), so the exit code and stdio are the runtime's own."""
    store = Store(paths)
    rec = store.get(ref)
    observed = state.observe(store, rec)
    if observed.status is Status.PAUSED:
        raise Conflict(f"container {rec.name} is paused, unpause the container before exec")
    if observed.status is not Status.RUNNING:
        raise Conflict(f"container {rec.name} is not running")
    spec = json.loads((store.dir(rec.id) / "config.json").read_text())
    root = Path(f"/proc/{rec.pid}/root")
    process = process_for(spec["process"], root, argv, tty=tty, env=env, user=user,
                          workdir=workdir, privileged=privileged)
    runtime = ociruntime.find(rec.runtime, paths.runroot)
    data = json.dumps(process).encode()
    read_end, write_end = os.pipe()
    if len(data) > 60000:
        raise Conflict("the process spec is too large")
    os.write(write_end, data)
    os.close(write_end)
    argv_ = runtime.argv("exec", "--process", f"/proc/self/fd/{read_end}",
                         *(["--detach"] if detach else []), rec.id)
    if detach:
        return subprocess.run(argv_, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              pass_fds=(read_end,)).returncode
    if not (interactive or tty):
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
    os.set_inheritable(read_end, True)
    os.execv(argv_[0], argv_)


def process_for(base: dict[str, Any], root: Path, argv: Sequence[str], *, tty: bool,
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


def check_executable(root: Path, program: str, path_var: str, cwd: str) -> None:
    """docker's 127 (not found) / 126 (not executable), decided inside the container's root."""
    if "/" in program:
        candidates = [program if program.startswith("/") else os.path.join(cwd, program)]
    else:
        candidates = [os.path.join(d or ".", program) for d in path_var.split(":")]
    found = None
    for candidate in candidates:
        host = rootpath.resolve(root, candidate)
        try:
            st = host.stat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return
        found = found or candidate
    if found is not None:
        raise CannotExecute(f"exec failed: {found}: permission denied")
    raise CommandNotFound(f'exec failed: "{program}": executable file not found in $PATH')
