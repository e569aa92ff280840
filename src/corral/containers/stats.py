"""`corral stats`, `top` and `update`: read and change a container's cgroup from the host.

Numbers come from the container's cgroup (`linux.cgroupsPath` in its config.json) on v1 or v2,
and network counters from /proc/<pid>/net/dev (the container's own namespace). `update` rewrites
config.json's resources and, for a running container, asks the runtime to apply them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.containers import ociruntime, specgen
from corral.containers.options import RunOptions
from corral.containers.state import Status
from corral.errors import Conflict, InvalidArgument

if TYPE_CHECKING:
    from corral.containers.lifecycle import Containers
    from corral.containers.store import Record

_CGROUP = Path("/sys/fs/cgroup")


def cgroup_path(engine: Containers, rec: Record) -> str:
    spec = json.loads((Path(engine.store.dir(rec.id)) / "config.json").read_text())
    return str(spec["linux"].get("cgroupsPath") or f"/corral/{rec.id}").lstrip("/")


def _read_int(path: Path) -> int:
    try:
        text = path.read_text().split()[0]
        return -1 if text == "max" else int(text)
    except (OSError, IndexError, ValueError):
        return 0


def _keyed(path: Path) -> dict[str, int]:
    out = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                out[key] = int(value)
    except OSError:
        pass
    return out


def sample(engine: Containers, rec: Record) -> dict[str, Any]:
    """One reading: cpu ns, memory usage/limit, pids, net and block bytes."""
    rel = cgroup_path(engine, rec)
    if (_CGROUP / "cgroup.controllers").exists():
        base = _CGROUP / rel
        memory = _read_int(base / "memory.current") - _keyed(base / "memory.stat").get("inactive_file", 0)
        limit = _read_int(base / "memory.max")
        cpu = _keyed(base / "cpu.stat").get("usage_usec", 0) * 1000
        pids = _read_int(base / "pids.current")
        blk_r = blk_w = 0
        with open(os.devnull) if not (base / "io.stat").exists() else open(base / "io.stat") as f:
            for line in f:
                fields = dict(p.split("=") for p in line.split()[1:] if "=" in p)
                blk_r += int(fields.get("rbytes", 0))
                blk_w += int(fields.get("wbytes", 0))
    else:
        mem = _CGROUP / "memory" / rel
        memory = _read_int(mem / "memory.usage_in_bytes") - _keyed(mem / "memory.stat").get("total_inactive_file", 0)
        limit = _read_int(mem / "memory.limit_in_bytes")
        cpu = _read_int(_CGROUP / "cpuacct" / rel / "cpuacct.usage")
        pids = _read_int(_CGROUP / "pids" / rel / "pids.current")
        blk_r = blk_w = 0
        try:
            for line in (_CGROUP / "blkio" / rel / "blkio.throttle.io_service_bytes").read_text().splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] == "Read":
                    blk_r += int(parts[2])
                elif len(parts) == 3 and parts[1] == "Write":
                    blk_w += int(parts[2])
        except OSError:
            pass
    host_mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if limit <= 0 or limit > host_mem:
        limit = host_mem
    rx = tx = 0
    try:
        for line in Path(f"/proc/{rec.pid}/net/dev").read_text().splitlines()[2:]:
            iface, _, counters = line.partition(":")
            if iface.strip() != "lo":
                values = counters.split()
                rx += int(values[0])
                tx += int(values[8])
    except (OSError, IndexError, ValueError):
        pass
    return {"cpu": cpu, "time": time.monotonic(), "memory": max(memory, 0), "limit": limit,
            "pids": pids, "net": (rx, tx), "block": (blk_r, blk_w)}


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return f"{n}B"


def row(rec: Record, before: Mapping[str, Any], after: Mapping[str, Any], trunc: bool) -> dict[str, str]:
    from corral.cli.format import human_size

    elapsed = max(after["time"] - before["time"], 1e-9)
    cpu = (after["cpu"] - before["cpu"]) / (elapsed * 1e9) * 100
    return {
        "ID": rec.id[:12] if trunc else rec.id,
        "Container": rec.id[:12] if trunc else rec.id,
        "Name": rec.name,
        "CPUPerc": f"{cpu:.2f}%",
        "MemUsage": f"{_size(after['memory'])} / {_size(after['limit'])}",
        "MemPerc": f"{after['memory'] / after['limit'] * 100:.2f}%",
        "NetIO": f"{human_size(after['net'][0])} / {human_size(after['net'][1])}",
        "BlockIO": f"{human_size(after['block'][0])} / {human_size(after['block'][1])}",
        "PIDs": str(after["pids"]),
    }


def show(engine: Containers, refs: Sequence[str], *, stream: bool, all_containers: bool,
         template: str | None, trunc: bool = True) -> int:
    from corral.cli import format as fmt

    if refs:
        targets = [engine.get(r) for r in refs]
    else:
        targets = [(r, o) for r, o in engine.all() if all_containers or o.alive]
    header = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS")
    previous = {rec.id: sample(engine, rec) for rec, o in targets if o.alive}
    while True:
        time.sleep(0.5 if not stream else 1.0)
        rows = []
        for rec, _observed in targets:
            if rec.id in previous:
                now = sample(engine, rec)
                rows.append(row(rec, previous[rec.id], now, trunc))
                previous[rec.id] = now
            else:
                rows.append({"ID": rec.id[:12], "Container": rec.id[:12], "Name": rec.name, "CPUPerc": "0.00%",
                             "MemUsage": "0B / 0B", "MemPerc": "0.00%", "NetIO": "0B / 0B",
                             "BlockIO": "0B / 0B", "PIDs": "0"})
        table = [(r["ID"], r["Name"], r["CPUPerc"], r["MemUsage"], r["MemPerc"], r["NetIO"], r["BlockIO"], r["PIDs"])
                 for r in rows]
        text = fmt.output(template, rows, table, header)
        if stream:
            sys.stdout.write("\033[2J\033[H")
        print(text, flush=True)
        if not stream:
            return 0


def top(engine: Containers, ref: str, ps_args: Sequence[str]) -> str:
    """`ps` on the host, limited to the container's processes (docker's `top`)."""
    rec, observed = engine.get(ref)
    if not observed.alive:
        raise Conflict(f"container {rec.name} is not running")
    rel = cgroup_path(engine, rec)
    procs_file = next((p for p in (_CGROUP / "pids" / rel / "cgroup.procs", _CGROUP / rel / "cgroup.procs",
                                   _CGROUP / "memory" / rel / "cgroup.procs") if p.exists()), None)
    if procs_file is None:
        raise Conflict(f"container {rec.name} has no cgroup to list processes from")
    pids = {int(p) for p in procs_file.read_text().split()}
    out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise InvalidArgument(f"ps failed: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    if not lines:
        return ""
    columns = lines[0].split()
    if "PID" not in columns:
        raise InvalidArgument("ps output has no PID column: add -o pid")
    index = columns.index("PID")
    kept = [lines[0]] + [line for line in lines[1:]
                         if len(line.split()) > index and line.split()[index].isdigit()
                         and int(line.split()[index]) in pids]
    return "\n".join(kept)


def update(engine: Containers, ref: str, changes: Mapping[str, Any]) -> None:
    """New resource limits: stored for the next start, applied now if it runs."""
    with engine.locked(ref) as rec:
        opts = RunOptions.from_json(rec.options)._replace(**changes)
        resources = specgen.resources(opts)
        config_path = Path(engine.store.dir(rec.id)) / "config.json"
        spec = json.loads(config_path.read_text())
        spec["linux"]["resources"] = resources
        if engine.observe(rec).status in (Status.RUNNING, Status.PAUSED):
            with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
                json.dump(resources, f)
                f.flush()
                ociruntime.find(rec.runtime, engine.paths.runroot).update(rec.id, f.name)
        from corral import fsutil

        fsutil.atomic_write(config_path, json.dumps(spec).encode())
        engine.store.update(rec, options=opts.to_json())
