#!/usr/bin/env python3
"""The images store beside GNU tar and podman, in the same run.

    .venv/bin/python bench/images.py [--files 5000] [--big-mb 200] [--images 100] [--runs 20]

1. Unpacking: a layer of many small files and a layer with one big file, each extracted by
   corral's extractor (corral.store.extract) and by GNU tar, on the root disk and on tmpfs
   (creating a file costs ~0.5-1 ms on this machine's ext4, ~20 us on tmpfs). Also a whole
   `corral load` (hash + extract + record) of the gzip'd small-file layer vs `podman load`.
2. `corral images` with 100 images vs `podman images` (private podman store) and, when dockerd
   is installed, `docker images` against a private dockerd; median wall time.
Prints each number and corral's ratio to the reference.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
CORRAL = str(ROOT / ".venv" / "bin" / "corral")

from corral.store.extract import extract  # noqa: E402


def small_files_layer(path: Path, n: int) -> None:
    with tarfile.open(path, "w") as tf:
        for i in range(n):
            data = os.urandom(512)
            ti = tarfile.TarInfo(f"usr/share/d{i // 200}/file{i}")
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_600_000_000
            tf.addfile(ti, io.BytesIO(data))


def big_file_layer(path: Path, mb: int) -> None:
    import base64

    chunk = base64.b64encode(os.urandom(3 << 18))  # 1 MiB that gzip shrinks by about a quarter
    with tarfile.open(path, "w") as tf:
        ti = tarfile.TarInfo("big.bin")
        ti.size = mb << 20
        reader = io.BytesIO(chunk * mb)
        tf.addfile(ti, reader)


@contextlib.contextmanager
def scratch(base: str) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="corral-bench-", dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def timed(fn: Callable[[], object]) -> float:
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_timed(argv: list[str], env: dict[str, str] | None) -> float:
    return timed(lambda: subprocess.run(argv, env=env, check=True, capture_output=True))


def extraction(layer: Path, base: str) -> tuple[float, float]:
    """(corral seconds, GNU tar seconds) to unpack `layer` under `base`."""
    with scratch(base) as d:
        ours, theirs = d / "corral", d / "tar"
        ours.mkdir()
        theirs.mkdir()

        def run_corral() -> None:
            with open(layer, "rb") as f:
                extract(f, ours)

        t_corral = timed(run_corral)
        t_tar = timed(lambda: subprocess.run(
            ["tar", "-xf", str(layer), "-C", str(theirs), "--same-owner", "--xattrs",
             "--xattrs-include=*", "-p"], check=True))
    return t_corral, t_tar


def docker_archive(path: Path, layer_gz: Path, diff_id: str, tag: str) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                         "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    name = hashlib.sha256(config).hexdigest()
    with tarfile.open(path, "w") as tf:
        ti = tarfile.TarInfo(f"{name}.json")
        ti.size = len(config)
        tf.addfile(ti, io.BytesIO(config))
        tf.add(layer_gz, arcname="layer.tar.gz")
        raw = json.dumps([{"Config": f"{name}.json", "RepoTags": [tag],
                           "Layers": ["layer.tar.gz"]}]).encode()
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(raw)
        tf.addfile(ti, io.BytesIO(raw))


@contextlib.contextmanager
def private_docker() -> Iterator[list[str]]:
    """A dockerd of our own (data root, exec root, socket in a temp dir; no networking)."""
    base = Path(tempfile.mkdtemp(prefix="dkb-", dir="/tmp"))
    sock = f"unix://{base}/docker.sock"
    daemon = subprocess.Popen(
        ["dockerd", "--data-root", str(base / "root"), "--exec-root", str(base / "exec"),
         "-H", sock, "--pidfile", str(base / "pid"), "--iptables=false", "--ip6tables=false",
         "--bridge=none", "--storage-driver=overlay2", "--containerd-namespace", base.name,
         "--containerd-plugins-namespace", f"{base.name}-p"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli = ["docker", "-H", sock]
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([*cli, "version"], capture_output=True).returncode:
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("dockerd did not start")
            time.sleep(0.1)
        yield cli
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        subprocess.run(["umount", "-R", str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def podman_cmd(base: Path, run_dir: str) -> list[str]:
    return ["podman", "--root", str(base / "proot"), "--runroot", run_dir, "--tmpdir",
            str(base / "ptmp"), "--storage-driver", "overlay", "--events-backend", "file"]


def median(fn: Callable[[], object], runs: int) -> float:
    fn()
    return statistics.median(timed(fn) for _ in range(runs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    # Time what an installed corral costs: bytecode compiled (a PYTHONDONTWRITEBYTECODE in the
    # environment would otherwise make every run recompile the modules it imports).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "corral")],
                   check=True, capture_output=True)

    with scratch("/var/tmp") as work:
        small, big = work / "small.tar", work / "big.tar"
        small_files_layer(small, args.files)
        big_file_layer(big, args.big_mb)
        print(f"== unpacking (corral extract vs GNU tar -xp --xattrs), {args.files} x 512 B files, "
              f"{args.big_mb} MB file")
        for label, base in (("root disk (ext4)", "/var/tmp"), ("tmpfs", "/dev/shm")):
            for what, layer, unit in (("small files", small, args.files), ("big file", big, args.big_mb)):
                ours, tar = extraction(layer, base)
                rate = f"{unit / ours:,.0f} files/s" if what == "small files" else f"{unit / ours:,.0f} MB/s"
                print(f"  {label:17} {what:11}: corral {ours:6.2f}s ({rate}), tar {tar:6.2f}s, "
                      f"corral/tar = {ours / tar:.2f}")

        print("== load of a gzip'd layer (hash + gunzip + unpack + record): corral load vs podman load")
        run_dir = tempfile.mkdtemp(prefix="pb-", dir="/tmp")
        env = {**os.environ, "CORRAL_ROOT": str(work / "croot"), "CORRAL_RUNROOT": str(work / "crun")}
        pod = podman_cmd(work, run_dir)
        try:
            for what, layer in (("small files", small), ("big file", big)):
                gz = work / f"{layer.stem}.tar.gz"
                raw = layer.read_bytes()
                gz.write_bytes(gzip.compress(raw, compresslevel=1))
                diff = "sha256:" + hashlib.sha256(raw).hexdigest()
                archive = work / f"load-{layer.stem}.tar"
                docker_archive(archive, gz, diff, f"localhost/bench/load-{layer.stem}:1")
                t_c = run_timed([CORRAL, "load", "-q", "-i", str(archive)], env)
                t_p = run_timed([*pod, "load", "-q", "-i", str(archive)], None)
                print(f"  {what:11}: corral {t_c:.2f}s, podman {t_p:.2f}s, "
                      f"corral/podman = {t_c / t_p:.2f}")

            print(f"== `images` with {args.images} images (median of {args.runs})")
            subprocess.run([CORRAL, "image", "prune", "-af"], env=env, check=True,
                           capture_output=True)
            code = ("import io, sys, tarfile\n"
                    "from corral.config import paths\n"
                    "from corral.images.service import ImageService\n"
                    "svc = ImageService(paths())\n"
                    "for i in range(int(sys.argv[1])):\n"
                    "    buf = io.BytesIO()\n"
                    "    with tarfile.open(fileobj=buf, mode='w') as tf:\n"
                    "        data = str(i).encode(); ti = tarfile.TarInfo('id'); ti.size = len(data)\n"
                    "        tf.addfile(ti, io.BytesIO(data))\n"
                    "    buf.seek(0)\n"
                    "    svc.import_tar(buf, names=[f'localhost/bench/img{i}:latest'])\n")
            subprocess.run([sys.executable, "-c", code, str(args.images)], env=env, check=True)
            many = work / "many.tar"
            subprocess.run([CORRAL, "save", "-o", str(many),
                            *[f"localhost/bench/img{i}" for i in range(args.images)]],
                           env=env, check=True)
            subprocess.run([*pod, "load", "-q", "-i", str(many)], check=True, capture_output=True)
            n_c = len(subprocess.run([CORRAL, "images", "-q"], env=env, capture_output=True,
                                     text=True, check=True).stdout.split())
            n_p = len(subprocess.run([*pod, "images", "-q"], capture_output=True, text=True,
                                     check=True).stdout.split())
            t_c = median(lambda: subprocess.run([CORRAL, "images"], env=env, check=True,
                                                capture_output=True), args.runs)
            t_p = median(lambda: subprocess.run([*pod, "images"], check=True,
                                                capture_output=True), args.runs)
            print(f"  corral images ({n_c}) {t_c * 1000:.1f} ms, podman images ({n_p}) "
                  f"{t_p * 1000:.1f} ms, corral/podman = {t_c / t_p:.2f}")
            if shutil.which("dockerd"):
                with private_docker() as docker:
                    subprocess.run([*docker, "load", "-q", "-i", str(many)], check=True,
                                   capture_output=True)
                    t_d = median(lambda: subprocess.run([*docker, "images"], check=True,
                                                        capture_output=True), args.runs)
                print(f"  docker images {t_d * 1000:.1f} ms (private dockerd), "
                      f"corral/docker = {t_c / t_d:.2f}")
        finally:
            subprocess.run([*pod, "system", "reset", "-f"], capture_output=True)
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
