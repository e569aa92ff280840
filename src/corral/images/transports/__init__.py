"""Transports: where images come from and go to, each a source and a destination of one shape.

`docker://` (registry.py), `oci:` (oci_layout.py), `oci-archive:` (oci_archive.py),
`docker-archive:` (docker_archive.py) and the local store (local.py). `open_source` /
`open_destination` turn a `transport:reference` string into one (containers/image's syntax).
"""

from __future__ import annotations

import importlib
from typing import cast

from corral.errors import InvalidArgument
from corral.images.transports.base import ImageDestination, ImageSource

__all__ = ["ImageDestination", "ImageSource", "open_destination", "open_source", "split"]


def split(spec: str) -> tuple[str, str]:
    """`oci-archive:/tmp/x.tar:tag` -> ("oci-archive", "/tmp/x.tar:tag")."""
    transport, sep, rest = spec.partition(":")
    if not sep or transport not in ("docker", "oci", "oci-archive", "docker-archive"):
        raise InvalidArgument(f"invalid transport reference {spec!r}: want "
                              "docker://, oci:, oci-archive: or docker-archive:")
    return transport, rest


def _path_and_ref(rest: str) -> tuple[str, str]:
    path, sep, ref = rest.partition(":")
    return path, ref if sep else ""


def open_source(spec: str) -> ImageSource:
    transport, rest = split(spec)
    if transport == "docker":
        registry = importlib.import_module("corral.images.transports.registry")
        return cast(ImageSource, registry.open_source(rest.removeprefix("//")))
    path, ref = _path_and_ref(rest)
    if transport == "oci":
        from corral.images.transports.oci_layout import OCILayoutSource

        return OCILayoutSource(path, ref)
    if transport == "oci-archive":
        from corral.images.transports.oci_archive import OCIArchiveSource

        return OCIArchiveSource(path, ref)
    from corral.images.transports.docker_archive import DockerArchive

    return DockerArchive.open(path).source(ref, owns_archive=True)


def open_destination(spec: str) -> ImageDestination:
    transport, rest = split(spec)
    if transport == "docker":
        registry = importlib.import_module("corral.images.transports.registry")
        return cast(ImageDestination, registry.open_destination(rest.removeprefix("//")))
    path, ref = _path_and_ref(rest)
    if transport == "oci":
        from corral.images.transports.oci_layout import OCILayoutDestination

        return OCILayoutDestination(path, ref)
    if transport == "oci-archive":
        from corral.images.transports.oci_archive import OCIArchiveDestination

        return OCIArchiveDestination(path, ref)
    from corral.images.transports.docker_archive import DockerArchiveDestination

    return DockerArchiveDestination(path, [ref] if ref else [])
