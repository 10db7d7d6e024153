"""No thread a test starts outlives it (a pytest plugin, registered in the root conftest.py).

A helper server's thread left running fails later, inside another test (a listener of the old
test_host_transport.py was reported inside test_pull.py). So: the threads a test's body starts
must be gone once its function-scoped fixtures are torn down, or the test errors in teardown
naming them. Threads that fixtures of a wider scope start (a session's registry) are theirs to
join, in their own teardown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

GRACE = 5.0
"""Seconds a finishing thread gets to exit after the test (a relay draining its last bytes)."""

_KEY = pytest.StashKey[set[threading.Thread]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    before = set(threading.enumerate())
    try:
        return (yield)
    finally:
        item.stash[_KEY] = set(threading.enumerate()) - before


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    result = yield
    started = item.stash.get(_KEY, set())
    deadline = time.monotonic() + GRACE
    for thread in started:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = sorted(t.name for t in started if t.is_alive())
    if alive:
        raise AssertionError(f"threads started by {item.nodeid} outlived it: {', '.join(alive)}")
    return result
