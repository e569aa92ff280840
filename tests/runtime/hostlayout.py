"""The host's cgroup layout, held still while a test depends on it.

The conformance tests move hugetlb from cgroup2 to a v1 hierarchy once per machine (crun 1.8
needs that, `bundles.hugetlb_as_v1`) under a file lock; holding the same lock keeps the move from
happening in the middle of a test that looks at where hugetlb is.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator

import pytest

from corral.runtime.cgroups.detect import Layout, detect

LOCK = "/run/lock/corral-tests-hugetlb.lock"


@pytest.fixture
def hugetlb_stays() -> Iterator[Layout]:
    """The host's layout, with hugetlb kept where it is until the test ends."""
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield detect()
