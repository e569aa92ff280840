"""The host's cgroup layout, held still while a test depends on it.

The conformance tests move hugetlb from cgroup2 to a v1 hierarchy once per machine (crun 1.8
needs that, `bundles.hugetlb_as_v1`). A test that used hugetlb on cgroup2 could make that move
fail (the kernel refuses to move a controller with cgroups still using it, and a removed cgroup
lingers for a moment), so these tests make the move first and then hold its lock: the layout is
the one every later test sees too.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator

import pytest

from corral.runtime.cgroups.detect import Layout, detect
from tests.runtime.bundles import hugetlb_as_v1

LOCK = "/run/lock/corral-tests-hugetlb.lock"


@pytest.fixture
def hugetlb_stays() -> Iterator[Layout]:
    """The host's layout, with hugetlb kept where it is until the test ends."""
    hugetlb_as_v1()
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield detect()
