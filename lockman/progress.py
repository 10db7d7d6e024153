"""A progress bar on stderr for long runs, only when stderr is a terminal.

Piped or captured output (CI logs, ``--format json``) gets nothing extra. rich comes with
cyclopts, so this costs no new dependency; it is imported only when a bar is shown.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TextIO


@contextlib.contextmanager
def progress(total: int, description: str, stream: TextIO | None = None) -> Iterator[Callable[[], None]]:
    """Yield ``tick()``, called once per finished item; the bar disappears when done."""
    from lockman.console import QUIET, verbosity

    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if total < 1 or verbosity() == QUIET or not (isatty and isatty()):
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=stream, force_terminal=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
