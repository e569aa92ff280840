"""Fixtures of the containers' tests: a private corral store per test module, the real CLI.

Every module gets its own CORRAL_ROOT/CORRAL_RUNROOT in a temp dir (so pytest-xdist workers never
share records, names or volumes), containers are run through the installed `corral` command as a
user would, and at the end of the module every container is force-removed and the test checks
that nothing is left: no mount under the store, no cgroup, no monitor.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.config import Paths
from tests.conftest import corral_bin
from tests.network.conftest import cleanup_state as cleanup_network_state
from tests.network.leases import network_env
from tests.runtime.bundles import hugetlb_as_v1

# The runtimes the core tests run under; the default runtime is exercised by every other test.
RUNTIMES = ("crun", "runc")


class Corral:
    """`corral` with this module's store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "CORRAL_ROOT": str(root / "root"), "CORRAL_RUNROOT": str(root / "run")}
        self.env |= network_env()[0]  # this store's own default-network subnet and bridge
        self.env.pop("CORRAL_RUNTIME", None)
        self.binary = corral_bin("corral")

    def __call__(self, *args: str, check: bool = True, input: bytes | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.binary, *args], env=self.env, capture_output=True,
                              input=None if input is None else input.decode(), text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"corral {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def out(self, *args: str) -> str:
        return self(*args).stdout.strip()

    def popen(self, *args: str, **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen([self.binary, *args], env=self.env, text=True, **kw)  # type: ignore[call-overload, no-any-return]

    def inspect(self, ref: str, template: str) -> str:
        return self.out("inspect", "-f", template, ref)

    def wait_status(self, ref: str, status: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.inspect(ref, "{{.State.Status}}") != status:
            if time.monotonic() > deadline:
                raise AssertionError(f"{ref} never became {status}")
            time.sleep(0.05)

    def ids(self) -> list[str]:
        return self.out("ps", "-aq", "--no-trunc").split()

    @property
    def store(self) -> Path:
        return self.root / "root"


def leftovers(root: Path) -> list[str]:
    """Mounts under the store, corral cgroups of its containers, monitors still running. The
    engine's namespace directory (a shared mount on itself that stays, as /run/netns does for
    `ip netns` and podman) is not a container's: the namespaces pinned in it are."""
    found = []
    engine_dir = str(root / "run" / "netns")
    with open("/proc/self/mountinfo") as f:
        found += [point for point in (line.split()[4] for line in f)
                  if str(root) in point and point != engine_dir]
    containers = root / "root" / "containers"
    ids = set(os.listdir(containers)) if containers.exists() else set()
    for cid in ids:
        for ctrl in ("memory", "pids", "cpu"):
            if Path(f"/sys/fs/cgroup/{ctrl}/corral/{cid}").exists():
                found.append(f"cgroup {ctrl}/corral/{cid}")
    out = subprocess.run(["pgrep", "-f", f"conmon.*{root}"], capture_output=True, text=True).stdout
    found += [f"conmon pid {p}" for p in out.split()]
    return found


@pytest.fixture(scope="session", autouse=True)
def _crun_on_this_host() -> None:
    hugetlb_as_v1()


@pytest.fixture(scope="module")
def corral(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corral]:
    root = tmp_path_factory.mktemp("corral")
    c = Corral(root)
    yield c
    ids = c.ids()
    if ids:
        c("rm", "-f", *ids, check=False)
    time.sleep(0.2)  # let exit commands of --rm containers finish
    cleanup_network_state(Paths(root=root / "root", runroot=root / "run"))
    assert leftovers(root) == []
    shutil.rmtree(root, ignore_errors=True)


_counter = iter(range(1_000_000))


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A container name unique in this module."""
    return f"{request.node.name.split('[')[0][:30]}-{next(_counter)}".replace("_", "-")
