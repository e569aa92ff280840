"""`spec`, `features`, version and usage."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import corral_bin


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([corral_bin("corral-runtime"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=30)


def test_spec_matches_runcs_shape(tmp_path: Path) -> None:
    assert _run("spec", cwd=tmp_path).returncode == 0
    ours = json.loads((tmp_path / "config.json").read_text())
    theirs_dir = tmp_path / "runc"
    theirs_dir.mkdir()
    subprocess.run(["runc", "spec"], cwd=theirs_dir, check=True)
    theirs = json.loads((theirs_dir / "config.json").read_text())
    theirs["hostname"] = ours["hostname"]
    assert ours == theirs
    again = _run("spec", cwd=tmp_path)
    assert again.returncode == 1
    assert "File config.json exists. Remove it first" in again.stderr


def test_spec_rootless_matches_runc(tmp_path: Path) -> None:
    assert _run("spec", "--rootless", "--bundle", str(tmp_path)).returncode == 0
    ours = json.loads((tmp_path / "config.json").read_text())
    theirs_dir = tmp_path / "runc"
    theirs_dir.mkdir()
    subprocess.run(["runc", "spec", "--rootless"], cwd=theirs_dir, check=True)
    theirs = json.loads((theirs_dir / "config.json").read_text())
    theirs["hostname"] = ours["hostname"]
    assert ours["linux"] == theirs["linux"]
    assert [m for m in ours["mounts"] if m["type"] != "cgroup"] == \
        [m for m in theirs["mounts"] if m["type"] != "cgroup"]
    assert ours["linux"]["uidMappings"][0]["hostID"] == os.geteuid()


def test_features_is_runtime_spec_json() -> None:
    out = _run("features")
    assert out.returncode == 0, out.stderr
    features = json.loads(out.stdout)
    assert features["ociVersionMin"].startswith("1.")
    assert "createRuntime" in features["hooks"]
    assert "rbind" in features["mountOptions"]


def test_version_and_unknown_verb() -> None:
    assert "spec: 1." in _run("--version").stdout
    out = _run("frobnicate")
    assert out.returncode == 1
    assert "frobnicate" in out.stderr
