"""What the images area asks the containers area: which containers use which image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from corral.config import Paths


def image_users(paths: Paths) -> Mapping[str, Sequence[str]]:
    """image id -> ids of the containers created from it (running or not)."""
    from corral.containers.store import Store

    users: dict[str, list[str]] = {}
    for row in Store(paths).conn.execute("SELECT id, image_id FROM containers"):
        users.setdefault(row["image_id"], []).append(row["id"])
    return users
