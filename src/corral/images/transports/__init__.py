"""Transports: where images come from and go to, each a source and a destination of one shape.

`docker://` (registry.py), `oci:` (oci_layout.py), `oci-archive:` (oci_archive.py),
`docker-archive:` (docker_archive.py) and the local store (local.py); see base.py.
"""

from corral.images.transports.base import ImageDestination, ImageSource

__all__ = ["ImageDestination", "ImageSource"]
