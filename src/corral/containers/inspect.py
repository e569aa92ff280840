"""`corral inspect`: a container as docker's inspect JSON (the fields docker users script against)."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from corral.containers import networking
from corral.containers.store import Record

if TYPE_CHECKING:
    from corral.containers.lifecycle import Containers
    from corral.containers.state import Observed

_ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(ts: float) -> str:
    if not ts:
        return _ZERO_TIME
    whole = int(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((ts - whole) * 1e9):09d}Z"


def inspect(engine: Containers, rec: Record, observed: Observed) -> dict[str, Any]:
    from corral.containers.state import Status

    opts = rec.options
    d = engine.store.dir(rec.id)
    try:
        spec = json.loads(_read(os.path.join(d, "config.json")))
    except (OSError, ValueError):
        spec = {"process": {"env": [], "cwd": "/", "user": {}}, "mounts": []}
    process = spec["process"]
    running = observed.status in (Status.RUNNING, Status.PAUSED)
    mounts = [m for m in opts.get("mounts", ())]
    return {
        "Id": rec.id,
        "Created": rfc3339(rec.created),
        "Path": rec.args[0] if rec.args else "",
        "Args": list(rec.args[1:]),
        "State": {
            "Status": observed.status.value,
            "Running": running,
            "Paused": observed.status is Status.PAUSED,
            "Restarting": False,
            "OOMKilled": observed.oom_killed,
            "Dead": False,
            "Pid": rec.pid if running else 0,
            "ExitCode": observed.exit_code,
            "Error": observed.error,
            "StartedAt": rfc3339(rec.started_at),
            "FinishedAt": rfc3339(observed.finished_at if not running else 0),
        },
        "Image": rec.image_id,
        "ResolvConfPath": os.path.join(d, "resolv.conf"),
        "HostnamePath": os.path.join(d, "hostname"),
        "HostsPath": os.path.join(d, "hosts"),
        "LogPath": engine.store.log_path(rec.id),
        "Name": f"/{rec.name}",
        "RestartCount": 0,
        "Driver": "overlay",
        "Platform": "linux",
        "OCIRuntime": rec.runtime,
        "HostConfig": {
            "Binds": [f"{m['source']}:{m['target']}{':ro' if m['readonly'] else ''}"
                      for m in mounts if m["type"] in ("bind", "volume")],
            "NetworkMode": rec.network,
            "AutoRemove": bool(opts.get("remove")),
            "Privileged": bool(opts.get("privileged")),
            "ReadonlyRootfs": bool(opts.get("read_only")),
            "CapAdd": list(opts.get("cap_add") or []),
            "CapDrop": list(opts.get("cap_drop") or []),
            "SecurityOpt": list(opts.get("security_opt") or []),
            "Memory": opts.get("memory") or 0,
            "MemorySwap": opts.get("memory_swap") or 0,
            "MemoryReservation": opts.get("memory_reservation") or 0,
            "NanoCpus": int((opts.get("cpus") or 0) * 1e9),
            "CpuShares": opts.get("cpu_shares") or 0,
            "CpusetCpus": opts.get("cpuset_cpus") or "",
            "PidsLimit": opts.get("pids_limit"),
            "ShmSize": opts.get("shm_size") or 64 * 1024 * 1024,
            "Init": bool(opts.get("init")),
            "RestartPolicy": {"Name": opts.get("restart") or "no", "MaximumRetryCount": 0},
            # json-file is accepted and written as conmon's k8s-file (same `logs` output)
            "LogConfig": {"Type": "none" if opts.get("log_driver") == "none" else "k8s-file", "Config": {}},
            "Runtime": rec.runtime,
            "Sysctls": dict(opts.get("sysctls") or {}),
            "Ulimits": [{"Name": u["name"], "Soft": u["soft"], "Hard": u["hard"]} for u in opts.get("ulimits", ())],
            "Devices": [{"PathOnHost": x["host_path"], "PathInContainer": x["container_path"],
                         "CgroupPermissions": x["permissions"]} for x in opts.get("devices", ())],
        },
        "GraphDriver": {"Name": "overlay", "Data": {"UpperDir": os.path.join(d, "upper"), "WorkDir": os.path.join(d, "work"),
                                                    "MergedDir": engine.store.rootfs(rec.id)}},
        "Mounts": [
            {"Type": m["type"], "Name": m["source"] if m["type"] == "volume" else "",
             "Source": os.path.join(engine.paths.root, "volumes", m["source"], "_data") if m["type"] == "volume" else m["source"],
             "Destination": m["target"], "Mode": "", "RW": not m["readonly"],
             "Propagation": m["propagation"] or ("rprivate" if m["type"] == "bind" else "")}
            for m in mounts
        ],
        "Config": {
            "Hostname": spec.get("hostname", rec.id[:12]),
            "User": opts.get("user") or "",
            "Tty": bool(opts.get("tty")),
            "OpenStdin": bool(opts.get("interactive")),
            "Env": list(process.get("env") or []),
            "Cmd": list(opts.get("command") or []) or None,
            "Entrypoint": opts.get("entrypoint"),
            "Image": rec.image_name,
            "WorkingDir": process.get("cwd", "/"),
            "Labels": dict(opts.get("labels") or {}),
            "StopSignal": rec.stop_signal,
            "StopTimeout": rec.stop_timeout,
        },
        "NetworkSettings": networking.settings(engine.paths, rec.id, rec.network),
    }


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()
