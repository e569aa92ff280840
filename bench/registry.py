"""Pull and push speed: corral beside podman and skopeo, against a local docker-registry.

Two images: one 200 MB layer (half random bytes, half compressible text; gzip) and 50 small
layers (~40 files each). Pulls go from registry A into a fresh store per run (corral: a new
CORRAL_ROOT; podman: a new --root with the overlay driver; skopeo: a new oci: directory, which
does not unpack). Pushes go from each tool's store into registry B, emptied before every run so
nothing is skipped or mounted. MB/s are of the image's uncompressed size; best of --runs;
"cpu s" is the CPU time the tool's processes used in that run (not the registry's).

    .venv/bin/python bench/registry.py [--runs 2] [--dir /var/tmp]   (--dir /dev/shm: tmpfs)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.images.registry_fixtures import Podman, serve_registry, skopeo

CORRAL = str(Path(__file__).resolve().parent.parent / ".venv/bin/corral")
MB = 1_000_000


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_layout(dest: Path, layers: list[bytes]) -> int:
    """An OCI layout of one image with these (plain tar) layers, gzipped; returns the tar bytes."""
    blobs = dest / "blobs/sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict[str, object]:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": f"sha256:{d}", "size": len(data)}

    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [
                             f"sha256:{hashlib.sha256(t).hexdigest()}" for t in layers]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    **blob(gzip.compress(t, 1, mtime=0))} for t in layers]}).encode()
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    return sum(len(t) for t in layers)


def big_image() -> list[bytes]:
    text = b"".join(b"corral line %08d: the quick brown fox jumps over the lazy dog\n" % i
                    for i in range(1_400_000))[: 100 * MB]
    return [_tar({"data/random.bin": os.urandom(100 * MB), "data/text.txt": text})]


def small_layers() -> list[bytes]:
    return [_tar({f"layer{i}/f{j}": os.urandom(2000) + b"x" * 6000 for j in range(40)})
            for i in range(50)]


def timed(fn: Callable[[], object], runs: int, before: Callable[[], object]) -> tuple[float, float]:
    """Best wall time of `runs`, and the CPU seconds the child processes used in that run (less
    sensitive than wall time to whatever else the machine is doing)."""
    best = (float("inf"), 0.0)
    for _ in range(runs):
        before()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        fn()
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, (wall, after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime))
    return best


def run(*cmd: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(cmd, capture_output=True, env=env)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)}: {done.stderr.decode()[-1000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--dir", default="/var/tmp", help="where the stores live (tmpfs: /dev/shm)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corral-bench-", dir=args.dir))
    podman = Podman(work / "podman")
    podman.base[podman.base.index("vfs")] = "overlay"  # podman's default driver
    try:
        bench(work, podman, args.runs)
    finally:
        podman.reset()
        shutil.rmtree(work, ignore_errors=True)


def bench(work: Path, podman: Podman, runs: int) -> None:
    with serve_registry(_mkdir(work / "reg-a")) as reg_a, serve_registry(_mkdir(work / "reg-b")) as reg_b:
        images = {"200MB-1-layer": big_image(), "50-small-layers": small_layers()}
        rows = []
        for name, layers in images.items():
            size = make_layout(work / f"layout-{name}", layers)
            src = f"{reg_a}/bench/{name.lower()}:latest"
            skopeo("copy", "--dest-tls-verify=false", f"oci:{work}/layout-{name}:latest", f"docker://{src}")
            rows += measure(work, podman, name, size, src, reg_b, runs)
        raw_get(reg_a, "bench/200mb-1-layer", work / "layout-200MB-1-layer", runs)
        print(f"\n{'image':18} {'op':5} {'tool':7} {'MB/s':>8} {'seconds':>8} {'corral is':>10}"
              f" {'cpu s':>7}")
        for image, op, tool, (seconds, cpu), size in rows:
            corral_s = next(s[0] for i, o, t, s, _ in rows if (i, o, t) == (image, op, "corral"))
            ratio = "" if tool == "corral" else f"{seconds / corral_s:.2f}x"
            print(f"{image:18} {op:5} {tool:7} {size / MB / seconds:8.1f} {seconds:8.2f} {ratio:>10}"
                  f" {cpu:7.2f}")


def raw_get(registry: str, repo: str, layout: Path, runs: int) -> None:
    """Why http.client: the big layer's blob fetched alone, by curl and by corral's client."""
    from corral.images.registry.client import RegistryClient
    from corral.images.registry.hosts import host_config

    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    digest, size = manifest["layers"][0]["digest"], manifest["layers"][0]["size"]
    url = f"http://{registry}/v2/{repo}/blobs/{digest}"

    def corral_get() -> None:
        client = RegistryClient(host_config(registry))
        stream, buf = client.open_blob(repo, digest, size), bytearray(1 << 20)
        while stream.readinto(buf):
            pass

    print(f"\nraw GET of the {size / MB:.0f} MB compressed blob (MB/s of the blob):")
    for tool, fn in (("curl", lambda: run("curl", "-sf", "-o", "/dev/null", url)),
                     ("corral http.client + sha256", corral_get)):
        print(f"  {tool:30} {size / MB / timed(fn, runs, lambda: None)[0]:8.1f}")


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True)
    return p


def measure(work: Path, podman: Podman, name: str, size: int, src: str, reg_b: str,
            runs: int) -> list[tuple[str, str, str, tuple[float, float], int]]:
    env = {**os.environ, "CORRAL_ROOT": str(work / "corral-root"), "CORRAL_RUNROOT": str(work / "corral-run")}
    dest = f"{reg_b}/pushed/{name.lower()}:latest"
    reg_b_data = work / "reg-b" / "data"

    def fresh(path: Path) -> Callable[[], None]:
        return lambda: shutil.rmtree(path, ignore_errors=True)

    def empty_reg_b() -> None:
        shutil.rmtree(reg_b_data / "docker", ignore_errors=True)

    results = []
    pulls = {
        "corral": (lambda: run(CORRAL, "pull", "-q", src, env=env),
                   lambda: (fresh(work / "corral-root")(), fresh(work / "corral-run")())),
        "podman": (lambda: podman("pull", "-q", "--tls-verify=false", src), podman.reset),
        "skopeo": (lambda: skopeo("copy", "--src-tls-verify=false", f"docker://{src}", f"oci:{work}/skopeo-oci:x"),
                   fresh(work / "skopeo-oci")),
    }
    for tool, (fn, before) in pulls.items():
        results.append((name, "pull", tool, timed(fn, runs, before), size))
    # Push from each tool's own copy (left by its last pull run) into the emptied registry B.
    run(CORRAL, "pull", "-q", src, env=env)
    podman("pull", "-q", "--tls-verify=false", src)
    pushes = {
        "corral": lambda: run(CORRAL, "push", "-q", src, dest, env=env),
        "podman": lambda: podman("push", "-q", "--tls-verify=false", src, f"docker://{dest}"),
        "skopeo": lambda: skopeo("copy", "--dest-tls-verify=false", f"oci:{work}/skopeo-oci:x", f"docker://{dest}"),
    }
    for tool, fn in pushes.items():
        results.append((name, "push", tool, timed(fn, runs, empty_reg_b), size))
    return results


if __name__ == "__main__":
    main()
