"""`corral commit`, `diff` and `export`: a container's filesystem changes as an image, a list, a tar.

The changes are the overlay's upper dir: a new file is A, a file or directory that also exists
in an image layer is C, a whiteout (a 0/0 character device) is D. `commit` hands the upper dir to
`ImageService.commit`, which turns whiteouts into OCI `.wh.` entries, with the container's config
(plus `-c` Dockerfile instructions) as the new image's config.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.containers import ociruntime
from corral.containers.state import Status

if TYPE_CHECKING:
    from corral.containers.lifecycle import Containers
    from corral.containers.store import Record
    from corral.images.service import Image


def _lower_dirs(engine: Containers, rec: Record) -> list[Path]:
    d = Path(engine.store.dir(rec.id))
    image = engine.images.get(rec.image_id)
    lowers: list[Path] = []
    for m in engine.images.rootfs_mounts(image, d / "upper", d / "work"):
        for opt in m.options:
            if opt.startswith("lowerdir="):
                lowers += [Path(p) for p in opt[len("lowerdir="):].split(":")]
    return lowers


# Bind-mount targets the runtime creates in the upper dir; not the user's changes.
_ETC_MOUNT_POINTS = ("etc/hostname", "etc/hosts", "etc/resolv.conf")


def diff(engine: Containers, rec: Record) -> list[tuple[str, str]]:
    upper = Path(engine.store.dir(rec.id)) / "upper"
    lowers = _lower_dirs(engine, rec)
    changes: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = os.path.relpath(dirpath, upper)
        for name in sorted(dirnames + filenames):
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                changes.append(("D", "/" + rel))
            elif any(os.path.lexists(lower / rel) for lower in lowers):
                changes.append(("C", "/" + rel))
            elif not (rel in _ETC_MOUNT_POINTS and st.st_size == 0):
                changes.append(("A", "/" + rel))
        dirnames[:] = [n for n in dirnames if not os.path.islink(os.path.join(dirpath, n))]
    return sorted(changes, key=lambda c: c[1])


def export(engine: Containers, rec: Record, output: str | None) -> None:
    """The container's root filesystem (its overlay, without /proc, /sys or volumes), as a tar."""
    with engine.mounted_rootfs(rec) as root:
        out = open(output, "wb") if output else None  # noqa: SIM115 (closed below)
        try:
            subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", "-", "."],
                           stdout=out or sys.stdout.buffer, check=True)
        finally:
            if out is not None:
                out.close()


def commit(engine: Containers, rec: Record, repository: str | None, *, changes: Sequence[str] = (),
           message: str = "", author: str = "", pause: bool = True) -> Image:
    from corral.images import reference
    from corral.images.changes import apply as apply_changes

    tags = [str(reference.parse(repository))] if repository else []
    parent = engine.images.get(rec.image_id)
    config = container_config(engine, rec, parent)
    apply_changes(config, changes)
    observed = engine.observe(rec)
    runtime = ociruntime.find(rec.runtime, engine.paths.runroot)
    paused = pause and observed.status is Status.RUNNING
    if paused:
        runtime.pause(rec.id)
    try:
        return engine.images.commit(parent, Path(engine.store.dir(rec.id)) / "upper", config,
                                    message=message, author=author, tags=tags)
    finally:
        if paused:
            runtime.resume(rec.id)


def container_config(engine: Containers, rec: Record, parent: Image) -> dict[str, Any]:
    """The image config a commit records: the image's, with what `run` changed."""
    config = dict(parent.config.get("config") or {})
    opts = rec.options
    env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
    for item in opts.get("env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    config["Env"] = [f"{k}={v}" for k, v in env.items()]
    if opts.get("entrypoint") is not None:
        config["Entrypoint"] = list(opts["entrypoint"]) or None
        config["Cmd"] = list(opts.get("command") or []) or None
    elif opts.get("command"):
        config["Cmd"] = list(opts["command"])
    for key, opt in (("WorkingDir", "workdir"), ("User", "user")):
        if opts.get(opt):
            config[key] = opts[opt]
    if opts.get("labels"):
        config["Labels"] = {**(config.get("Labels") or {}), **opts["labels"]}
    return config
