"""`import corral`: the Python API in docker-py's shape, over the same engine as the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import corral
from corral.config import Paths
from tests.containers.conftest import Corral


@pytest.fixture
def client(corral: Corral) -> Iterator[corral.Client]:
    yield corral_client(corral.root)


def corral_client(root: Path) -> corral.Client:
    return corral.Client(Paths(root=root / "root", runroot=root / "run"))


def test_run_detached_exec_logs_stop_remove(client: corral.Client, name: str) -> None:
    c = client.containers.run("busybox", "sh -c 'echo ready; sleep 60'", detach=True, name=name,
                              environment={"MOOD": "calm"}, labels={"app": "api"}, mem_limit="64m")
    assert c.name == name and c.status == "running" and c.labels == {"app": "api"}
    assert c.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
    result = c.exec_run("sh -c 'echo $MOOD; exit 3'")
    assert result.exit_code == 3 and result.output == b"calm\n"
    assert [x.name for x in client.containers.list(filters={"label": "app=api"})] == [name]
    c.stop(timeout=0)
    assert c.status == "exited" and c.wait()["StatusCode"] == 137
    assert c.logs() == b"ready\n"
    c.remove()
    assert name not in [x.name for x in client.containers.list(all=True)]


def test_run_returns_output_or_raises(client: corral.Client) -> None:
    assert client.containers.run("busybox", ["echo", "hello"], remove=True) == b"hello\n"
    with pytest.raises(corral.ContainerError) as err:
        client.containers.run("busybox", "sh -c 'echo oops >&2; exit 2'", remove=True)
    assert err.value.exit_status == 2 and b"oops" in err.value.stderr
    with pytest.raises(corral.client.InvalidArgument):
        client.containers.run("busybox", "true", restart_policy={"Name": "always"})


def test_volumes_and_commit(client: corral.Client, name: str) -> None:
    vol = client.volumes.create(f"{name}-v")
    out = client.containers.run("busybox", "sh -c 'echo v > /v/f; cat /v/f'",
                                volumes={vol.name: {"bind": "/v", "mode": "rw"}}, remove=True)
    assert out == b"v\n"
    c = client.containers.run("busybox", "touch /made-here", detach=True, name=name)
    c.wait()
    assert {"Path": "/made-here", "Kind": 1} in c.diff()
    image = c.commit(f"api-{name}", "v1")
    assert client.containers.run(image.id, "ls /made-here", remove=True) == b"/made-here\n"
    c.remove()
    client.volumes.remove(vol.name)
