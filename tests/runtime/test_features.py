"""`corral-runtime features` next to `runc features` on this machine (crun 1.8 has no features)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.conftest import corral_bin


def features_of(binary: str) -> dict[str, Any]:
    out = subprocess.run([binary, "features"], capture_output=True, text=True, check=True, timeout=30)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.fixture(scope="module")
def ours() -> dict[str, Any]:
    return features_of(corral_bin("corral-runtime"))


@pytest.fixture(scope="module")
def runcs() -> dict[str, Any]:
    runc = shutil.which("runc")
    if runc is None:
        pytest.fail("runc is not installed: run scripts/setup")
    return features_of(runc)


def test_same_shape_as_runc(ours: dict[str, Any], runcs: dict[str, Any]) -> None:
    assert set(runcs) <= set(ours)
    assert set(runcs["linux"]) <= set(ours["linux"])
    assert set(runcs["linux"]["seccomp"]) <= set(ours["linux"]["seccomp"])
    assert set(runcs["linux"]["cgroup"]) <= set(ours["linux"]["cgroup"])


def test_recognises_what_runc_recognises(ours: dict[str, Any], runcs: dict[str, Any]) -> None:
    assert ours["ociVersionMin"] == "1.0.0"
    assert ours["hooks"] == runcs["hooks"]
    assert set(ours["mountOptions"]) <= set(runcs["mountOptions"])
    assert set(runcs["linux"]["namespaces"]) <= set(ours["linux"]["namespaces"])
    assert "time" in ours["linux"]["namespaces"]  # linux.timeOffsets (runc 1.1 lacks it, crun has it)
    assert ours["linux"]["capabilities"] == runcs["linux"]["capabilities"]
    seccomp, theirs = ours["linux"]["seccomp"], runcs["linux"]["seccomp"]
    assert seccomp["enabled"] is True
    assert seccomp["actions"] == theirs["actions"]
    assert seccomp["operators"] == theirs["operators"]
    assert set(theirs["archs"]) <= set(seccomp["archs"])


def test_honest_about_what_corral_lacks(ours: dict[str, Any]) -> None:
    linux = ours["linux"]
    assert linux["cgroup"] == {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                               "rdma": True}
    assert linux["apparmor"] == {"enabled": False}
    assert linux["selinux"] == {"enabled": False}
    assert linux["intelRdt"] == {"enabled": False}
    seccomp = linux["seccomp"]
    assert set(seccomp["supportedFlags"]) <= set(seccomp["knownFlags"])
    version = tuple(int(n) for n in ours["annotations"]["io.github.seccomp.libseccomp.version"]
                    .split("."))
    # WAIT_KILLABLE_RECV came with libseccomp 2.6 (Debian bookworm has 2.5.4)
    waitkill = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" in seccomp["supportedFlags"]
    assert waitkill == (version >= (2, 6))


def test_every_listed_mount_option_becomes_flags(ours: dict[str, Any]) -> None:
    from corral.runtime.linux.mounts import parse_options

    for option in ours["mountOptions"]:
        assert parse_options((option,)).data == "", f"{option} would be passed as fs data"
