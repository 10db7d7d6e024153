"""Calling code that must not block on a FIFO planted where a file was expected."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

R = TypeVar("R")


def within_seconds(call: Callable[[], R], fifo: Path, seconds: float = 5.0) -> R:
    """``call()``, failing the test instead of hanging it when it blocks opening ``fifo``."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(call)
        try:
            return future.result(timeout=seconds)
        except concurrent.futures.TimeoutError:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # a writer comes and goes: EOF
            pytest.fail(f"blocked on the FIFO {fifo}")
