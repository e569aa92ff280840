"""Transports: where images come from and go to, each a source and a destination of one shape.

`registry.py` (docker://, the registry helper's), `oci_layout.py` (oci:DIR), `oci_archive.py`
(oci-archive:), `docker_archive.py` (docker-archive:, docker save/load's format), `local.py`
(the store) and `files.py` (images made here); `base.py` is the shape, `archive.py` the tar
plumbing the archive transports share.
"""

from corral.images.transports.base import ImageDestination, ImageSource

__all__ = ["ImageDestination", "ImageSource"]
