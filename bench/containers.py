#!/usr/bin/env python3
"""corral's container engine beside podman (and docker with --docker), in the same run.

    .venv/bin/python bench/containers.py [--runs 20] [--docker] [--runtime crun]

Measures `run --rm --network none busybox true`, `create`, `start`, `exec true` in a running
container, `ps -a` with 50 containers, and the memory per detached `sleep` container (PSS of its
monitor and runtime processes, from /proc/<pid>/smaps_rollup). Every engine works in its own
temporary store; podman and docker get the same busybox tree (imported from corral's built-in
image), so the containers are the same. Samples alternate between the engines (load from
other work hits them alike). Prints medians and corral's ratio to each engine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORRAL = ROOT / ".venv" / "bin" / "corral"
IMAGE = "docker.io/library/busybox:latest"


class Engine:
    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env or dict(os.environ)

    def __call__(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run([*self.argv, *args], env=self.env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise SystemExit(f"{self.name} {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def timed(self, *args: str) -> float:
        start = time.perf_counter()
        self(*args)
        return time.perf_counter() - start


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


def bench(engines: Sequence[tuple[Engine, list[str]]], runs: int, marker: str) -> dict[str, dict[str, float]]:
    """Every timed step alternates between the engines, sample by sample, so load from other
    work on the machine hits them alike."""
    table: dict[str, dict[str, float]] = {e.name: {} for e, _ in engines}

    def alternate(metric: str, step: Callable[[Engine, list[str], int], float]) -> None:
        samples: dict[str, list[float]] = {e.name: [] for e, _ in engines}
        for i in range(runs):
            for e, extra in engines:
                samples[e.name].append(step(e, extra, i))
        for name, values in samples.items():
            table[name][metric] = median_ms(values)

    created: dict[str, list[str]] = {e.name: [] for e, _ in engines}

    def create(e: Engine, extra: list[str], _: int) -> float:
        start = time.perf_counter()
        created[e.name].append(e("create", *extra, "--network", "none", IMAGE, "sleep", "600"))
        return time.perf_counter() - start

    for e, extra in engines:
        e("run", "--rm", *extra, "--network", "none", IMAGE, "true")  # warm caches
    alternate("run --rm true", lambda e, extra, _: e.timed("run", "--rm", *extra, "--network", "none", IMAGE, "true"))
    alternate("create", create)
    alternate("start", lambda e, _, i: e.timed("start", created[e.name][i]))
    alternate("exec true", lambda e, _, i: e.timed("exec", created[e.name][0], "true"))
    many: dict[str, list[str]] = {}
    for e, extra in engines:
        e("rm", "-f", *created[e.name])
        many[e.name] = [e("create", *extra, "--network", "none", IMAGE, "true") for _ in range(50)]
    alternate("ps -a (50)", lambda e, _, i: e.timed("ps", "-a"))
    for e, extra in engines:
        e("rm", "-f", *many[e.name])
        table[e.name]["PSS per sleep container (MB)"] = pss_per_container(e, extra, marker)
    return table


def pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pss_per_container(e: Engine, extra_run: Sequence[str], marker: str, count: int = 5) -> float:
    """PSS of the processes that exist because the containers run (monitors, shims, runtimes:
    new processes whose command line names this engine's temporary store), per container."""
    before = {p for p in os.listdir("/proc") if p.isdigit()}
    ids = [e("run", "-d", *extra_run, "--network", "none", IMAGE, "sleep", "600") for _ in range(count)]
    time.sleep(1)
    total = 0.0
    for pid in (p for p in os.listdir("/proc") if p.isdigit() and p not in before):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            total += pss_mb(int(pid))
    e("rm", "-f", *ids)
    return total / count


@contextlib.contextmanager
def corral_engine(tmp: Path, runtime: str | None) -> Iterator[tuple[Engine, list[str]]]:
    env = {**os.environ, "CORRAL_ROOT": str(tmp / "corral-root"), "CORRAL_RUNROOT": str(tmp / "corral-run")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled modules, as an installed corral has
    try:
        yield Engine("corral", [str(CORRAL)], env), (["--runtime", runtime] if runtime else [])
    finally:
        unmount_under(tmp / "corral-run")  # the namespace directory's shared mount stays, as /run/netns


def busybox_tar(tmp: Path) -> Path:
    sys.path.insert(0, str(ROOT / "src"))
    from corral.images import busybox

    rootfs = busybox.make_rootfs(tmp / "busybox-rootfs")
    tar = tmp / "busybox.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    return tar


def wait_gone(marker: str, timeout: float = 10) -> None:
    """Wait until no process has `marker` in its command line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0:
            return
        time.sleep(0.1)


def unmount_under(top: Path) -> None:
    """Lazily unmount every mount at or below `top`, deepest first (`umount -R` needs `top`
    itself to be a mount point; podman's and dockerd's are below it)."""
    prefix = str(top)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p == prefix or p.startswith(prefix + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


@contextlib.contextmanager
def podman_engine(tmp: Path, tar: Path) -> Iterator[tuple[Engine, list[str]]]:
    conf = tmp / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n')
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    # Every podman path private (--tmpdir too), so other users of podman on this host are untouched.
    e = Engine("podman", ["podman", "--root", str(tmp / "podman-root"), "--runroot",
                          str(tmp / "podman-run"), "--tmpdir", str(tmp / "podman-tmp"),
                          "--cgroup-manager", "cgroupfs"], env)
    e("import", str(tar), IMAGE)
    try:
        yield e, []
    finally:
        e("rm", "-af", check=False)
        wait_gone(str(tmp / "podman-root"))  # podman's exit commands (cleanup) mount it again
        unmount_under(tmp / "podman-root")  # podman bind-mounts its overlay dir privately


@contextlib.contextmanager
def docker_engine(tmp: Path, tar: Path) -> Iterator[tuple[Engine, list[str]]]:
    sock = tmp / "docker.sock"
    daemon = subprocess.Popen(
        ["dockerd", "--data-root", str(tmp / "docker-root"), "--exec-root", str(tmp / "docker-exec"),
         "--pidfile", str(tmp / "docker.pid"), "-H", f"unix://{sock}", "--bridge", "none",
         "--iptables=false", "--ip6tables=false", "--containerd-namespace", f"corral-bench-{os.getpid()}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    e = Engine("docker", ["docker", "-H", f"unix://{sock}"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = subprocess.run([*e.argv, "version", "--format", "{{.Server.Version}}"],
                               capture_output=True)
        if ready.returncode == 0:
            break
        time.sleep(0.5)
    try:
        e("import", str(tar), IMAGE)
        yield e, []
    finally:
        e("rm", "-f", *e("ps", "-aq", check=False).split(), check=False)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        for root in ("docker-root", "docker-exec"):  # dockerd leaves its private mounts behind
            unmount_under(tmp / root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--docker", action="store_true", help="also start a private dockerd")
    parser.add_argument("--runtime", help="corral's runtime (default: corral's default)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="corral-bench-", ignore_cleanup_errors=True) as tmp_s:
        tmp = Path(tmp_s)
        tar = busybox_tar(tmp)
        makers: list[Callable[[], contextlib.AbstractContextManager[tuple[Engine, list[str]]]]] = [
            lambda: corral_engine(tmp, args.runtime), lambda: podman_engine(tmp, tar)]
        if args.docker and shutil.which("dockerd"):
            makers.append(lambda: docker_engine(tmp, tar))
        with contextlib.ExitStack() as stack:
            engines = [stack.enter_context(make()) for make in makers]
            print(f"benchmarking {', '.join(e.name for e, _ in engines)} ...", file=sys.stderr)
            table = bench(engines, args.runs, str(tmp))
    names = list(table)
    metrics = list(table["corral"])
    print(f"{'':32}" + "".join(f"{n:>12}" for n in names)
          + "".join(f"{'corral/' + n:>16}" for n in names[1:]))
    for metric in metrics:
        line = f"{metric:32}" + "".join(f"{table[n][metric]:12.1f}" for n in names)
        for n in names[1:]:
            other = table[n][metric]
            line += f"{(table['corral'][metric] / other if other else float('nan')):16.2f}"
        print(line)
    print("(times in ms, medians; PSS in MB per container)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
