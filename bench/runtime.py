"""corral-runtime against crun and runc: time per operation and peak memory, in the same run.

    .venv/bin/python bench/runtime.py [--runs N] [--runtimes corral-runtime,crun,runc]

One bundle (the busybox rootfs, `runc spec`'s config running `true`) goes through each runtime:
`run` (the whole life of a container in one command), and `create`, `start`, `delete` timed one
by one. Wall time is measured around each command with time.perf_counter, CPU time (user +
system, the command and the processes it reaps) from os.wait4: it moves less with machine load
than wall time does. Peak RSS comes from
extra rounds under GNU time (`/usr/bin/time -f %M`: the largest ru_maxrss of the runtime and the
helpers it forks and reaps); it cannot come from our own os.wait4, because a child forked from
this Python process starts with this process's RSS already counted. Runs are interleaved across
runtimes so that machine noise hits all alike.
Needs root; crun 1.8 needs the hybrid cgroup fix from HOST-NOTES.md (done here if missing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.runtime.bundles import has_exited, hugetlb_as_v1  # noqa: E402

from corral.images import busybox  # noqa: E402

OPS = ("run", "create", "start", "delete")


@dataclass
class Sample:
    """Wall and CPU seconds and peak RSS (KiB) of each operation, over all runs of a runtime."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPS})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPS})
    rss_kib: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPS, 0))


GNU_TIME = "/usr/bin/time"


def timed(argv: list[str], *, rss: bool = False) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS KiB or 0) of one command; stdio to /dev/null."""
    with tempfile.TemporaryFile() as err:
        if rss:
            argv = [GNU_TIME, "-f", "%M", *argv]
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        output = err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {output}")
    return elapsed, usage.ru_utime + usage.ru_stime, int(output.split()[-1]) if rss else 0


def one_round(binary: str, root: Path, bundle: Path, sample: Sample, *, rss: bool) -> None:
    """`run` one container, then create/start/delete another; record into `sample` (seconds,
    or with `rss` the peak RSS only: GNU time's own start-up would skew the times)."""
    base = [binary, "--root", str(root)]

    def record(op: str, argv: list[str]) -> None:
        seconds, cpu, kib = timed(argv, rss=rss)
        if rss:
            sample.rss_kib[op] = max(sample.rss_kib[op], kib)
        else:
            sample.seconds[op].append(seconds)
            sample.cpu[op].append(cpu)

    record("run", [*base, "run", "--bundle", str(bundle), f"bench-{uuid.uuid4().hex[:12]}"])
    cid = f"bench-{uuid.uuid4().hex[:12]}"
    record("create", [*base, "create", "--bundle", str(bundle), cid])
    state = subprocess.run([*base, "state", cid], capture_output=True, check=True).stdout
    pid = json.loads(state)["pid"]
    record("start", [*base, "start", cid])
    while not has_exited(pid):  # delete needs a stopped container
        time.sleep(0.001)
    record("delete", [*base, "delete", cid])


def runtime_path(name: str) -> str:
    if name == "corral-runtime":
        venv = ROOT / ".venv" / "bin" / name
        if venv.exists():
            return str(venv)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed: run scripts/setup")
    return found


def make_bundle(where: Path) -> Path:
    bundle = where / "bundle"
    bundle.mkdir()
    busybox.make_rootfs(bundle / "rootfs")
    subprocess.run([runtime_path("runc"), "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["true"]
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def python_baseline(runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `python -I -S -c pass` (the floor for a Python runtime)."""
    real = os.path.realpath(sys.executable)
    samples = [timed([real, "-I", "-S", "-c", "pass"]) for _ in range(runs)]
    return statistics.median(w for w, _, _ in samples), statistics.median(c for _, c, _ in samples)


def table(title: str, unit: str, values: dict[str, dict[str, float]]) -> None:
    """One row per operation: each runtime's value, then corral-runtime's ratio to the others."""
    names = list(values)
    others = [o for o in ("runc", "crun") if o in names and "corral-runtime" in names]
    print(f"\n{title}")
    print(f"{'op':8}" + "".join(f"{n:>16}" for n in names)
          + "".join(f"{'corral/' + o:>14}" for o in others))
    for op in OPS:
        row = f"{op:8}" + "".join(f"{values[n][op]:>13.1f} {unit}" for n in names)
        row += "".join(f"{values['corral-runtime'][op] / values[o][op]:>14.2f}" for o in others)
        print(row)


def report(samples: dict[str, Sample], baseline: tuple[float, float], runs: int) -> None:
    print(f"{runs} runs per runtime; python -I -S -c pass: {baseline[0] * 1000:.1f} ms wall, "
          f"{baseline[1] * 1000:.1f} ms CPU")
    table("wall time, median", "ms", {n: {op: statistics.median(s.seconds[op]) * 1000 for op in OPS}
                                      for n, s in samples.items()})
    table("CPU time (user+sys), median", "ms",
          {n: {op: statistics.median(s.cpu[op]) * 1000 for op in OPS} for n, s in samples.items()})
    table("peak RSS", "MiB", {n: {op: s.rss_kib[op] / 1024 for op in OPS} for n, s in samples.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rss-runs", type=int, default=3)
    parser.add_argument("--runtimes", default="corral-runtime,crun,runc")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the runtimes make namespaces, mounts and cgroups")
    hugetlb_as_v1()
    names = args.runtimes.split(",")
    binaries = {n: runtime_path(n) for n in names}
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as where:
        bundle = make_bundle(Path(where))
        samples = {n: Sample() for n in names}
        for i in range(args.warmup + args.runs + args.rss_runs):
            for name in names:
                target = samples[name] if i >= args.warmup else Sample()
                one_round(binaries[name], Path(where) / f"state-{name}", bundle, target,
                          rss=i >= args.warmup + args.runs)
        report(samples, python_baseline(args.runs), args.runs)


if __name__ == "__main__":
    main()
