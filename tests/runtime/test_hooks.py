"""OCI hooks run at their moments, in their namespaces, with the state JSON on stdin."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.runtime.corral_bundle import Bundle, Runtime, new_id

HOST_KINDS = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")


def _hook(log: Path, kind: str) -> dict[str, object]:
    """Appends its kind, the state it got and the mount namespace it ran in."""
    script = (f'read -r state; echo "{kind} $(readlink /proc/self/ns/mnt) $state" '
              f'>> {log}')
    return {"path": "/bin/sh", "args": ["sh", "-c", script]}


def test_hooks_run_in_order_with_state(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    shared = tmp_path / "shared"
    shared.mkdir()
    bundle.config["hooks"] = {kind: [_hook(log, kind)] for kind in HOST_KINDS}
    bundle.config["hooks"]["startContainer"] = [
        {"path": "/bin/sh", "args": ["sh", "-c", "cat > /shared/startContainer"]}]
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind",
                                    "source": str(shared), "options": ["rbind"]})
    bundle.shell("echo main").write()
    cid = new_id()
    out = runtime("run", "-b", str(bundle.path), cid)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "main\n"
    entries = [line.split(" ", 2) for line in log.read_text().splitlines()]
    assert [e[0] for e in entries] == ["prestart", "createRuntime", "createContainer",
                                       "poststart", "poststop"]
    host_mnt = os.readlink("/proc/self/ns/mnt")
    namespaces = {kind: mnt for kind, mnt, _ in entries}
    assert namespaces["createRuntime"] == host_mnt
    assert namespaces["createContainer"] != host_mnt  # the container's mount namespace
    states = {kind: json.loads(state) for kind, _, state in entries}
    assert states["createRuntime"]["id"] == cid
    assert states["createRuntime"]["status"] == "creating"
    assert states["createRuntime"]["bundle"] == str(bundle.path)
    assert states["poststop"]["status"] == "stopped"
    assert json.loads((shared / "startContainer").read_text())["id"] == cid


def test_failing_create_hook_aborts_and_cleans_up(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    bundle.write()
    cid = new_id()
    out = runtime("create", "-b", str(bundle.path), cid)
    assert out.returncode == 1
    assert "createRuntime hook" in out.stderr
    assert not (runtime.root / cid).exists()


def test_hook_timeout(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "10"],
                                            "timeout": 1}]}
    bundle.write()
    out = runtime("create", "-b", str(bundle.path), new_id())
    assert out.returncode == 1
    assert "timed out" in out.stderr
