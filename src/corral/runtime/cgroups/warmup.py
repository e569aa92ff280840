"""Start the kernel's wait for a cgroup migration early, in a throwaway child.

Moving a process into a cgroup (a write to cgroup.procs) takes the kernel's global
cgroup_threadgroup_rwsem for writing. When no writer has held it for a while, that first write
waits for an RCU grace period (rcu_sync), which on this kind of host is 8-20 ms: longer than
everything else `create` does. A writer that comes during another writer's grace period, or
shortly after it, waits only for what is left of it. So `create`, `run` and `exec` fork a child
first thing, which writes "0" to the cgroup.procs of its own cgroup (a move to where it already
is: it changes nothing), and the grace period runs while the runtime imports, parses the bundle
and makes the container's cgroup; the runtime's own migration then finds the lock ready
(measured: 8-11 ms -> under 1 ms). `finish()` reaps the child.

The child only ever touches its own cgroup, and any failure (rootless, no cgroupfs) is silent:
the runtime's real migration simply pays the wait itself.

The launcher calls start() before anything else is imported (cli.main calls it too, for callers
that run main() in a forked child): this module uses `posix`, which is `os` without the ~1 ms
its own imports cost, and leaves the rest to the child.
"""

from __future__ import annotations

import posix

_child: int | None = None


def start() -> None:
    """Fork the child that takes the migration lock once (see the module docstring)."""
    global _child
    if _child is not None or posix.geteuid() != 0:
        return
    try:
        pid = posix.fork()
    except OSError:
        return
    if pid == 0:  # the child: never returns
        try:
            _move_into_own_cgroup()
        finally:
            posix._exit(0)
    _child = pid


# where cgroup2 is usually mounted: beside v1 hierarchies (hybrid), or alone
_CGROUP2_MOUNTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


def _move_into_own_cgroup() -> None:
    """Write "0" (this process) to its own cgroup's cgroup.procs. The usual cgroup2 mount points
    are tried first, without imports (this child's CPU time is the runtime's); other layouts
    are read from mountinfo. O_CREAT is never used: a guess that is not a cgroup fails."""
    with open("/proc/self/cgroup") as f:
        own = next((line[3:].rstrip("\n") for line in f if line.startswith("0::")), None)
    if own is not None:
        for mount in _CGROUP2_MOUNTS:
            try:
                _write_zero(f"{mount}{own.rstrip('/')}/cgroup.procs")
                return
            except FileNotFoundError:
                continue
    from corral.runtime.cgroups.detect import detect

    layout = detect()
    hierarchy = layout.unified or (layout.v1[0] if layout.v1 else None)
    if hierarchy is not None:
        _write_zero(f"{hierarchy.directory(hierarchy.own)}/cgroup.procs")


def _write_zero(path: str) -> None:
    fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC)
    try:
        posix.write(fd, b"0")
    finally:
        posix.close(fd)


def finish() -> None:
    """Reap the child, once the runtime's own migration is done, or on the way out: a verb
    that failed early still waits for it (at most the rest of a grace period), since a failed
    command leaves no process behind (tests/runtime/test_errors.py)."""
    global _child
    if _child is None:
        return
    pid, _child = _child, None
    try:  # noqa: SIM105 (contextlib stays off the verbs' path)
        posix.waitpid(pid, 0)
    except ChildProcessError:  # reaped by someone else (a subreaper's wait for any child)
        pass
