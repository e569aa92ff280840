#!/usr/bin/env python3
"""Network benchmark: what the network costs `run --rm`, and TCP throughput through a published
port, for corral and podman in the same run. Prints the ratios.

    .venv/bin/python bench/network.py [--runs 10] [--megabytes 256]

1. `run --rm busybox true` on the default network minus the same with `--network none`: the time
   the network adds (goal: corral <= 50 ms; podman spends about 160-200 ms here).
2. A container serves a file from tmpfs with busybox httpd on a published port; the host
   downloads it through 127.0.0.1:<port> (iptables DNAT into the container's veth) and the best
   of three downloads counts (goal: corral >= podman).

Everything stays on this machine. podman gets a private --root/--runroot and a containers.conf
whose ulimits fit this host (HOST-NOTES); corral gets a private CORRAL_ROOT and its own subnet.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.network import leases  # noqa: E402

from corral.images import busybox  # noqa: E402

CORRAL = str(ROOT / ".venv" / "bin" / "corral")
PODMAN_IMAGE = "localhost/corral-bench-busybox:latest"


class Engine:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], image: str) -> None:
        self.name, self.argv, self.env, self.image = name, argv, env, image

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.argv, *args], env=self.env, capture_output=True, text=True,
                              timeout=300)
        if check and proc.returncode != 0:
            raise SystemExit(f"{self.name} {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc


def _engines(tmp: Path) -> list[Engine]:
    net_env, _ = leases.network_env()
    corral = Engine("corral", [CORRAL], {**os.environ, **net_env,
                                         "CORRAL_ROOT": str(tmp / "corral"),
                                         "CORRAL_RUNROOT": str(tmp / "corral-run")}, "busybox")
    conf = tmp / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", '
                    '"nproc=32768:32768"]\n')
    podman = Engine("podman", ["podman", "--root", str(tmp / "podman"), "--runroot",
                               str(tmp / "podman-run")],
                    {**os.environ, "CONTAINERS_CONF": str(conf)}, PODMAN_IMAGE)
    rootfs = busybox.make_rootfs(tmp / "busybox")
    tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True,
                         check=True).stdout
    subprocess.run([*podman.argv, "import", "-", PODMAN_IMAGE], input=tar, env=podman.env,
                   capture_output=True, check=True)
    return [corral, podman]


def _time_run(engine: Engine, network: list[str]) -> float:
    start = time.perf_counter()
    engine.run("run", "--rm", *network, engine.image, "true")
    return time.perf_counter() - start


def bench_run(engines: list[Engine], runs: int) -> dict[str, float]:
    """Median network cost of `run --rm` per engine, in seconds."""
    overhead = {}
    for engine in engines:
        for network in ([], ["--network", "none"]):  # warm-up: image, bridge, caches
            _time_run(engine, network)
        times: dict[str, list[float]] = {"bridge": [], "none": []}
        for _ in range(runs):  # interleaved, so drift hits both alike
            times["bridge"].append(_time_run(engine, []))
            times["none"].append(_time_run(engine, ["--network", "none"]))
        bridge, none = (statistics.median(times[k]) for k in ("bridge", "none"))
        overhead[engine.name] = bridge - none
        print(f"{engine.name:7} run --rm: default network {bridge * 1000:6.1f} ms, "
              f"--network none {none * 1000:6.1f} ms -> network {overhead[engine.name] * 1000:6.1f} ms")
    return overhead


def _download(port: int, size: int) -> float:
    """Seconds to GET /big (`size` bytes) through 127.0.0.1:port."""
    buf = bytearray(1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        start = time.perf_counter()
        s.sendall(b"GET /big HTTP/1.0\r\n\r\n")
        got = 0
        while n := s.recv_into(buf):
            got += n
        elapsed = time.perf_counter() - start
    if got < size:
        raise SystemExit(f"short download: {got} of {size} bytes")
    return elapsed


def bench_throughput(engines: list[Engine], megabytes: int) -> dict[str, float]:
    """Best-of-three MB/s per engine through a published port."""
    result = {}
    for engine in engines:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        name = f"bench-tput-{os.getpid()}"
        script = (f"dd if=/dev/zero of=/www/big bs=1M count={megabytes} 2>/dev/null && "
                  "exec httpd -f -p 80 -h /www")
        engine.run("run", "-d", "--name", name, "--tmpfs", "/www", "-p", f"{port}:80",
                   engine.image, "sh", "-c", script)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    _download(port, 1)
                    break
                except (OSError, SystemExit):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            best = min(_download(port, megabytes << 20) for _ in range(3))
        finally:
            engine.run("rm", "-f", name, check=False)
        result[engine.name] = megabytes / best
        print(f"{engine.name:7} TCP through a published port: {result[engine.name]:8.0f} MB/s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--megabytes", type=int, default=256)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="corral-bench-net-"))
    try:
        engines = _engines(tmp)
        overhead = bench_run(engines, args.runs)
        tput = bench_throughput(engines, args.megabytes)
        print(f"network setup cost, corral/podman: {overhead['corral'] / overhead['podman']:.2f}"
              f"  (corral {overhead['corral'] * 1000:.0f} ms; goal <= 50 ms)")
        print(f"port throughput, corral/podman:    {tput['corral'] / tput['podman']:.2f}"
              "  (goal >= 1.0)")
    finally:
        engines_cleanup(tmp)


def engines_cleanup(tmp: Path) -> None:
    from tests.network.conftest import cleanup_state

    from corral.config import Paths

    if (tmp / "corral" / "corral.db").exists():
        cleanup_state(Paths(root=tmp / "corral", runroot=tmp / "corral-run"))
    subprocess.run(["podman", "--root", str(tmp / "podman"), "--runroot", str(tmp / "podman-run"),
                    "system", "reset", "-f"], capture_output=True, check=False)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
