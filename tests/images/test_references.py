"""Reference parsing as docker does it, and picking a platform out of an index."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from corral.errors import InvalidArgument
from corral.images import manifest as mf
from corral.images import reference
from corral.images.copy import copy
from corral.images.service import ImageService
from corral.images.transports.local import LocalDestination
from corral.images.transports.oci_layout import OCILayoutSource
from tests.images.layouts import write_layout
from tests.images.tarbuild import Entry, tar_bytes


@pytest.mark.parametrize(("text", "full", "familiar"), [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/me/app", "docker.io/me/app:latest", "me/app:latest"),
    ("me/app:v1", "docker.io/me/app:v1", "me/app:v1"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t"),
    ("quay.io/org/img@sha256:" + "a" * 64, "quay.io/org/img@sha256:" + "a" * 64,
     "quay.io/org/img@sha256:" + "a" * 64),
    ("[::1]:5000/x:1", "[::1]:5000/x:1", "[::1]:5000/x:1"),
])
def test_references_normalize_like_docker(text: str, full: str, familiar: str) -> None:
    ref = reference.parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


@pytest.mark.parametrize("text", ["", "UPPER", "a:b:c", "a@sha256:short", "-lead", "a//b",
                                  "busybox:" + "t" * 200, " busybox"])
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        reference.parse(text)


@pytest.mark.parametrize("text", ["a:t\u00e9", "a:b\n@sha256:" + "a" * 64, "host.io\n/app",
                                  "a:t\n@sha256:" + "a" * 64, "app@sha256:" + "A" * 64,
                                  "h:\u0665/app", "app:"])
def test_references_outside_docker_grammar_are_refused(text: str) -> None:
    """ASCII only, as Go's regexp: no Unicode word characters or digits, no trailing newline."""
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        reference.parse(text)


def _docker_grammar() -> dict[str, Callable[[str], bool]]:
    """distribution/reference's regular expressions (Go's RE2: ASCII classes, whole match)."""
    import re

    component = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
    label = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
    grammar = {
        "path": rf"{component}(?:/{component})*",
        "domain": rf"(?:{label}(?:\.{label})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?",
        "tag": r"[\w][\w.-]{0,127}",
        "digest": r"sha256:[0-9a-f]{64}",
        "id": r"(?:sha256:)?[0-9a-f]{1,64}",
    }
    return {k: re.compile(v, re.ASCII).fullmatch for k, v in grammar.items()}  # type: ignore[misc]


@pytest.mark.parametrize(("part", "alphabet", "longest"), [
    ("path", "ab09._-/A\u00e9", 9), ("domain", "aZ09.-:[]f\u0665", 10), ("tag", "aZ0_.-:\u00e9", 6),
    ("digest", "sha256:0f", 71), ("id", "sha256:0fg", 12),
])
def test_grammar_checks_match_dockers_regular_expressions(part: str, alphabet: str,
                                                          longest: int) -> None:
    """reference.py checks the grammar without `re` (it is on `corral run`'s path): the same
    answers as the regular expressions, on strings made of the characters that matter."""
    import random

    ours = {"path": reference._path, "domain": reference._domain, "tag": reference._tag,
            "digest": reference.is_digest, "id": reference.looks_like_id}[part]
    theirs = _docker_grammar()[part]
    rng = random.Random(part)
    samples = ["", "a" * 128, "a" * 129, "sha256:" + "0" * 64, "sha256:" + "0" * 65]
    for _ in range(20000):
        if part in ("digest", "id"):  # well-formed, then maybe cut and one character changed
            text = "sha256:" + "".join(rng.choice("0f") for _ in range(64))
            if rng.random() < 0.5:
                text = text[rng.randrange(0, 8):rng.randrange(60, 72)]
            if rng.random() < 0.5:
                i = rng.randrange(len(text))
                text = text[:i] + rng.choice(alphabet) + text[i + 1:]
        else:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(longest)))
        samples.append(text)
    disagree = [s for s in samples if ours(s) != bool(theirs(s))]
    assert disagree == []
    assert sum(map(ours, samples)) > len(samples) // 50  # not a test of rejections alone


def test_index_picks_this_machines_platform(service: ImageService, tmp_path: Path) -> None:
    """An OCI layout holding a two-platform index: copy() takes the host's entry."""
    layout = tmp_path / "multi"
    arm = write_layout(layout, [tar_bytes(Entry("arch", data=b"arm64"))],
                       config={"architecture": "arm64"})
    index = json.loads((layout / "index.json").read_text())
    arm_entry = index["manifests"][0]
    amd = write_layout(layout, [tar_bytes(Entry("arch", data=b"amd64"))])
    amd_entry = json.loads((layout / "index.json").read_text())["manifests"][0]
    assert arm["config"] != amd["config"]
    arm_entry["platform"] = {"os": "linux", "architecture": "arm64"}
    amd_entry["platform"] = {"os": "linux", "architecture": mf.host_platform().architecture}
    inner = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX,
                        "manifests": [arm_entry, amd_entry]}).encode()
    import hashlib

    digest = hashlib.sha256(inner).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(inner)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": mf.OCI_INDEX, "digest": "sha256:" + digest, "size": len(inner),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))
    with OCILayoutSource(layout, "multi") as src, LocalDestination(service) as dst:
        host = copy(src, dst, names=["localhost/multi:host"])
        other = copy(src, dst, names=["localhost/multi:arm"],
                     platform=mf.Platform.parse("linux/arm64"))
    for name, want in (("localhost/multi:host", b"amd64"), ("localhost/multi:arm", b"arm64")):
        image = service.get(name)
        assert (Path(service.driver.path(image.chain_ids[-1])) / "arch").read_bytes() == want
    assert host.image_id != other.image_id
    with OCILayoutSource(layout, "multi") as src, LocalDestination(service) as dst, \
            pytest.raises(InvalidArgument, match="no image found in manifest list for platform"):
        copy(src, dst, platform=mf.Platform.parse("linux/s390x"))
