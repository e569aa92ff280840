"""seccomp, capabilities and cgroups through `corral-runtime` end to end, next to runc.

Each test runs a bundle through corral-runtime (and, where the two must agree, through runc
with the same config) and checks what the container saw.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from corral.runtime.cgroups.detect import detect
from tests.conftest import corral_bin
from tests.runtime.corral_bundle import Bundle, Runtime, leftovers, new_id
from tests.runtime.hostlayout import hugetlb_stays  # noqa: F401  (fixture)

MiB = 1 << 20
PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")
# podman's default capabilities (containers.conf)
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
                "CAP_SYS_CHROOT"]


def run_with_runc(bundle: Bundle, tmp_path: Path, cid: str | None = None
                  ) -> subprocess.CompletedProcess[str]:
    """`runc run` of the same bundle, with a private --root."""
    root = tmp_path / "runc-state"
    cid = cid or f"sec-runc-{uuid.uuid4().hex[:10]}"
    try:
        return subprocess.run(["runc", "--root", str(root), "run", "--bundle", str(bundle.write()),
                               cid], capture_output=True, text=True, timeout=60, check=False)
    finally:
        subprocess.run(["runc", "--root", str(root), "delete", "--force", cid],
                       capture_output=True, check=False)


def run_corral(runtime: Runtime, bundle: Bundle, cid: str | None = None) -> subprocess.CompletedProcess[str]:
    return runtime("run", "--bundle", str(bundle.write()), cid or new_id("sec"), timeout=60)


def same_as_runc(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                 ids: tuple[str, str] | None = None) -> str:
    """Run the bundle through corral-runtime and runc; both must succeed and print the same.

    With `ids` (ours, runc's), each id in the output reads "ID" before the comparison.
    """
    ours_id, runc_id = ids or (new_id("sec"), new_id("sec"))
    theirs = run_with_runc(bundle, tmp_path, runc_id)
    ours = run_corral(runtime, bundle, ours_id)
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert ours.stdout.replace(ours_id, "ID") == theirs.stdout.replace(runc_id, "ID")
    return ours.stdout


def resolve_profile(profile: dict[str, Any], caps: list[str], arch: str = "amd64") -> dict[str, Any]:
    """What podman hands the runtime: the containers/common profile with includes/excludes applied."""
    rules = []
    for rule in profile["syscalls"]:
        includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
        if includes.get("arches") and arch not in includes["arches"]:
            continue
        if includes.get("caps") and not set(includes["caps"]) <= set(caps):
            continue
        if arch in (excludes.get("arches") or ()) or set(excludes.get("caps") or ()) & set(caps):
            continue
        rules.append({key: rule[key] for key in ("names", "action", "args", "errnoRet")
                      if rule.get(key) is not None})
    arch_map = next(a for a in profile["archMap"] if a["architecture"] == "SCMP_ARCH_X86_64")
    return {"defaultAction": profile["defaultAction"], "defaultErrnoRet": profile["defaultErrnoRet"],
            "architectures": [arch_map["architecture"], *arch_map["subArchitectures"]],
            "syscalls": rules}


def test_podmans_default_profile_and_caps_behave_like_runc(
        runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    bundle.config["linux"]["seccomp"] = resolve_profile(json.loads(PODMAN_PROFILE.read_text()),
                                                        DEFAULT_CAPS)
    bundle.config["process"]["capabilities"] = {s: DEFAULT_CAPS for s in
                                                ("bounding", "effective", "permitted")}
    bundle.shell("echo hello; ls / >/dev/null && echo ls-ok; mkdir /dev/shm/x; echo mkdir=$?;"
                 " unshare -U true 2>/dev/null; echo unshare=$?;"
                 " swapon /dev/null 2>/dev/null; echo swapon=$?;"
                 " grep -E '^Cap(Eff|Bnd)' /proc/self/status")
    lines = same_as_runc(runtime, bundle, tmp_path).split("\n")
    assert lines[:3] == ["hello", "ls-ok", "mkdir=0"]
    assert "unshare=0" in lines  # user namespaces are allowed by podman's profile...
    assert "swapon=1" in lines   # ...swapon is not (seccomp and CAP_SYS_ADMIN)
    mask = f"{sum(1 << n for n in (0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 31)):016x}"
    assert f"CapEff:\t{mask}" in lines


def test_cgroup_namespace_shows_the_container_its_own_limits(
        runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.config["linux"]["resources"]["memory"] = {"limit": 48 * MiB}
    bundle.config["linux"]["resources"]["pids"] = {"limit": 33}
    bundle.shell("grep -E ':(memory|pids):' /proc/self/cgroup;"
                 " cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max;"
                 " grep -c ' /sys/fs/cgroup/[a-z]' /proc/self/mounts >/dev/null && echo mounted")
    lines = same_as_runc(runtime, bundle, tmp_path).split()
    assert [line.split(":", 1)[1] for line in lines[:2]] == ["pids:/", "memory:/"]
    assert lines[2:] == [str(48 * MiB), "33", "mounted"]


def test_default_cgroups_path_is_under_the_callers_cgroup(runtime: Runtime, bundle: Bundle) -> None:
    memory = detect().v1_for("memory")
    if memory is None:
        pytest.skip("no v1 memory hierarchy")
    bundle.config["linux"].pop("cgroupsPath", None)
    bundle.config["linux"]["resources"]["memory"] = {"limit": 40 * MiB}
    bundle.shell("grep ':memory:' /proc/self/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
    cid = new_id("sec")
    result = run_corral(runtime, bundle, cid)
    assert result.returncode == 0, result.stderr
    own = memory.own.rstrip("/")
    assert result.stdout.split()[0].endswith(f":memory:{own}/{cid}")
    assert result.stdout.split()[1] == str(40 * MiB)
    assert leftovers(runtime, cid) == []


@pytest.mark.parametrize("absolute", [True, False])
@pytest.mark.usefixtures("hugetlb_stays")
def test_cgroup_membership_is_runcs(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                    absolute: bool) -> None:
    """Every hierarchy, the hybrid host's cgroup2 one included, at the path runc uses."""
    if absolute:
        bundle.config["linux"]["cgroupsPath"] = f"/corral-sec-{uuid.uuid4().hex[:10]}"
    else:
        bundle.config["linux"].pop("cgroupsPath", None)
    bundle.args("cat", "/proc/self/cgroup")
    ours_id = new_id("sec")
    same_as_runc(runtime, bundle, tmp_path, (ours_id, new_id("sec")))
    assert leftovers(runtime, ours_id) == []


def test_unknown_capability_names_are_ignored_like_runc(
        runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    for names in bundle.config["process"]["capabilities"].values():
        names.append("CAP_FLY")
    bundle.shell("grep -E '^Cap' /proc/self/status")
    same_as_runc(runtime, bundle, tmp_path)


def test_update_changes_what_a_running_container_sees(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["cgroupsPath"] = f"/corral-sec-{uuid.uuid4().hex[:10]}"
    bundle.config["linux"]["resources"]["memory"] = {"limit": 64 * MiB}
    bundle.args("sleep", "30")
    cid = new_id("sec")
    # create's stdio becomes the container's: keep the sleeping container off our pipes
    subprocess.run([corral_bin("corral-runtime"), "--root", str(runtime.root), "create",
                    "--bundle", str(bundle.write()), cid], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, check=True, timeout=30)
    runtime("start", cid, check=True)
    runtime("update", "--memory", "96m", "--pids-limit", "21", cid, check=True)
    seen = runtime("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                   "/sys/fs/cgroup/pids/pids.max", check=True).stdout.split()
    assert seen == [str(96 * MiB), "21"]
    runtime("delete", "--force", cid, check=True)
    assert leftovers(runtime, cid) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["linux"].__setitem__("seccomp", {"defaultAction": "SCMP_ACT_BOGUS"}),
         "unknown action 'SCMP_ACT_BOGUS'"),
        (lambda c: c["linux"].__setitem__("seccomp", {"defaultAction": "SCMP_ACT_ALLOW",
                                                      "architectures": ["SCMP_ARCH_Z80"]}),
         "unknown architecture 'SCMP_ARCH_Z80'"),
        (lambda c: c["process"]["capabilities"].__setitem__("superpowers", ["CAP_CHOWN"]),
         "unknown set 'superpowers'"),
        (lambda c: c["linux"]["resources"].__setitem__("cpu", {"shares": 1 << 20}),
         "cpu.shares: invalid 1048576"),
        (lambda c: c["linux"].__setitem__("cgroupsPath", "system.slice:corral:x"),
         "slice:prefix:name"),
    ],
)
def test_bad_security_config_fails_create_and_leaves_nothing(
        runtime: Runtime, bundle: Bundle, edit: Any, message: str) -> None:
    edit(bundle.config)
    cid = new_id("sec")
    result = runtime("create", "--bundle", str(bundle.write()), cid, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert leftovers(runtime, cid) == []
