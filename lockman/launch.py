"""The console-script entry point, kept apart from the CLI so start-up stays fast.

``--version`` is answered before the CLI framework loads, and two optional imports that lockman
never uses are kept off the start-up path: httpx imports its own command line (rich, click,
pygments) when those are installed, and httpcore imports trio when it is installed. Together
that is 50-100 ms of a run that is otherwise a few round trips. This applies only to the
``lockman`` process itself, never to code that imports lockman as a library.
"""

from __future__ import annotations

import sys

_UNUSED_OPTIONAL_IMPORTS = ("trio", "httpx._main")


def entry() -> None:
    if sys.argv[1:] == ["--version"]:
        from lockman import __version__

        sys.stdout.write(f"{__version__}\n")
        sys.exit(0)
    for name in _UNUSED_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # `import name` → ImportError
    from lockman.cli import main

    sys.exit(main())
