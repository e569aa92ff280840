"""Capability sets changed for real in forked children, checked in /proc/self/status."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from corral.runtime.linux import caps
from corral.runtime.linux.caps import CapsError
from tests.runtime.forked import run_forked

UID = 1000


def status_masks(text: str | None = None) -> dict[str, int]:
    """{"CapInh": ..., "CapPrm": ..., "CapEff": ..., "CapBnd": ..., "CapAmb": ...}."""
    if text is None:
        with open("/proc/self/status") as f:
            text = f.read()
    return {line.split(":")[0]: int(line.split()[1], 16)
            for line in text.splitlines() if line.startswith("Cap")}


HOST_BOUNDING = status_masks()["CapBnd"]


def mask(*names: str) -> int:
    return sum(1 << caps.NUMBERS[name] for name in names)


def test_names_and_numbers() -> None:
    assert len(caps.NAMES) == 41
    assert caps.NUMBERS["CAP_CHOWN"] == 0
    assert caps.NUMBERS["CAP_SYS_ADMIN"] == 21
    assert caps.NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40
    assert caps.to_mask(["CAP_KILL", "CAP_NET_RAW"]) == (1 << 5) | (1 << 13)


def test_drop_bounding_and_apply_set_exact_masks() -> None:
    keep = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETPCAP", "CAP_SYS_ADMIN"]
    config = {"bounding": keep, "permitted": keep, "effective": keep[:3], "inheritable": ["CAP_KILL"]}

    def child() -> dict[str, int]:
        caps.drop_bounding(config["bounding"])
        caps.apply(config)
        return status_masks()

    masks = run_forked(child).value
    assert masks["CapBnd"] == mask(*keep) & HOST_BOUNDING
    assert masks["CapPrm"] == mask(*keep)
    assert masks["CapEff"] == mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE")
    assert masks["CapInh"] == mask("CAP_KILL")
    assert masks["CapAmb"] == 0


def test_dropped_capability_is_gone_for_real() -> None:
    """Without CAP_CHOWN even root cannot give a file away."""
    everything_but_chown = [name for name in caps.names_of(HOST_BOUNDING) if name != "CAP_CHOWN"]

    def child() -> str:
        caps.drop_bounding(everything_but_chown)
        caps.apply({s: everything_but_chown for s in ("permitted", "effective")})
        path = f"/tmp/corral-caps-{os.getpid()}"
        with open(path, "w"):
            pass
        try:
            os.chown(path, UID, UID)
            return "chowned"
        except PermissionError:
            return "refused"
        finally:
            os.unlink(path)

    assert run_forked(child).value == "refused"


def switch_user_and_exec_status(config: dict[str, list[str]], read_fd: int, write_fd: int) -> None:
    """In the child: the runtime's order, then execve busybox to print its capability sets."""
    os.close(read_fd)
    caps.drop_bounding(config["bounding"])
    caps.keep_caps_across_setuid()
    os.setgroups([])
    os.setresgid(UID, UID, UID)
    os.setresuid(UID, UID, UID)
    caps.apply(config)
    os.dup2(write_fd, 1)
    os.execv("/bin/busybox", ["sh", "-c", "grep ^Cap /proc/self/status; id -u"])


def exec_as_user(config: dict[str, list[str]]) -> tuple[dict[str, int], str]:
    read_fd, write_fd = os.pipe()
    result = run_forked(lambda: switch_user_and_exec_status(config, read_fd, write_fd))
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        output = f.read()
    assert result.exit_code == 0, result
    return status_masks(output), output.split()[-1]


def test_ambient_capabilities_survive_execve_as_non_root() -> None:
    net = ["CAP_NET_BIND_SERVICE"]
    config = {"bounding": [*net, "CAP_NET_RAW"], "permitted": net, "effective": net,
              "inheritable": net, "ambient": net}
    masks, uid = exec_as_user(config)
    assert uid == str(UID)
    assert masks == {"CapInh": mask(*net), "CapPrm": mask(*net), "CapEff": mask(*net),
                     "CapBnd": mask(*net, "CAP_NET_RAW") & HOST_BOUNDING, "CapAmb": mask(*net)}


def test_without_ambient_a_non_root_exec_has_no_capabilities() -> None:
    net = ["CAP_NET_BIND_SERVICE"]
    config = {"bounding": net, "permitted": net, "effective": net, "inheritable": net}
    masks, _ = exec_as_user(config)
    assert masks["CapEff"] == masks["CapPrm"] == masks["CapAmb"] == 0
    assert masks["CapBnd"] == mask(*net)


def test_ambient_not_in_inheritable_is_skipped_like_crun() -> None:
    net = ["CAP_NET_BIND_SERVICE"]
    config = {"bounding": net, "permitted": net, "effective": net, "ambient": net}
    masks, _ = exec_as_user(config)
    assert masks["CapAmb"] == 0


def test_raising_beyond_permitted_is_an_error_naming_the_sets() -> None:
    def child() -> str:
        caps.drop_bounding(["CAP_KILL"])
        caps.apply({"permitted": ["CAP_KILL"], "effective": ["CAP_KILL"]})
        try:
            caps.apply({"permitted": ["CAP_SYS_ADMIN"], "effective": ["CAP_SYS_ADMIN"]})
        except CapsError as err:
            return str(err)
        return "raised"

    message = run_forked(child).value
    assert message.startswith("capset: Operation not permitted")
    assert "0x200000" in message


def test_granting_what_the_runtime_lacks_names_the_capability() -> None:
    lacking = caps.names_of(~HOST_BOUNDING & ((1 << 41) - 1))
    if not lacking:
        pytest.skip("this process holds every capability; nothing to lack")

    def child() -> str:
        try:
            caps.apply({"permitted": lacking[:1], "effective": lacking[:1]})
        except CapsError as err:
            return str(err)
        return "granted"

    assert run_forked(child).value.endswith(f"the runtime itself lacks {lacking[0]}")


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"superpowers": ["CAP_CHOWN"]}, "superpowers"),
        ({"ambient": "CAP_CHOWN"}, "ambient must be a list"),
        ({"effective": [21]}, "effective must be a list of names"),
    ],
)
def test_malformed_sections_are_refused(config: dict[str, Any], named: str) -> None:
    with pytest.raises(CapsError, match=named):
        caps.check(config)
    with pytest.raises(CapsError, match=named):
        caps.apply(config)  # refused before any change: the test process keeps its caps
    assert status_masks()["CapEff"] == HOST_BOUNDING


def test_unknown_names_are_ignored_like_runc() -> None:
    config = {"bounding": ["CAP_KILL", "CAP_FLY"], "permitted": ["CAP_KILL", "chown"],
              "effective": ["CAP_KILL", "CAP_FLY"]}
    assert caps.check(config) == ["CAP_FLY", "chown"]

    def child() -> dict[str, int]:
        caps.drop_bounding(config["bounding"])
        caps.apply(config)
        return status_masks()

    masks = run_forked(child).value
    assert masks["CapBnd"] == masks["CapPrm"] == masks["CapEff"] == mask("CAP_KILL")


def test_busybox_reports_what_proc_says() -> None:
    """Sanity for the exec tests: busybox's grep sees the same masks as Python in this process."""
    out = subprocess.run(["/bin/busybox", "grep", "^Cap", "/proc/self/status"],
                         capture_output=True, text=True, check=True).stdout
    assert status_masks(out)["CapBnd"] == HOST_BOUNDING
