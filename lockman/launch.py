"""The console-script entry point, kept apart from the CLI so start-up stays fast.

Start-up and shut-down are a large part of a run that is otherwise a few round trips, so the
``lockman`` process (and only it, never code that imports lockman as a library) does three
things a library must not:

- ``--version`` is answered before the CLI framework loads.
- Two optional imports that lockman never uses are kept off the start-up path: httpx imports
  its own command line (rich, click, pygments) when those are installed, and httpcore imports
  trio when it is installed (50-100 ms together).
- The cyclic garbage collector stays off while modules load (nothing built then is garbage, yet
  every collection walks all of it), everything loaded is frozen out of its reach when the
  command starts, and what is alive at exit is left to the OS instead of being walked once
  more. Measured on ``benchmarks/resolve.py`` (200 references): 60-70 ms of a 0.5 s run.
- A command that talks to registries starts loading the system CA store on a worker thread
  first (:mod:`lockman.registry.system_trust`), in parallel with the imports.
"""

from __future__ import annotations

import gc
import sys

_UNUSED_OPTIONAL_IMPORTS = ("trio", "httpx._main")
_REGISTRY_COMMANDS = frozenset({"update", "verify", "resolve", "diff", "pull", "pin"})
_launched = False


def entry() -> None:
    if sys.argv[1:] == ["--version"]:
        from lockman import __version__

        sys.stdout.write(f"{__version__}\n")
        sys.exit(0)
    global _launched
    _launched = True
    gc.disable()  # until command_starting(): module loading makes no garbage worth a walk
    args = sys.argv[1:]
    if not _REGISTRY_COMMANDS.isdisjoint(args) and "--help" not in args and "-h" not in args:
        from lockman.registry import system_trust

        system_trust.start_early()
    for name in _UNUSED_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # `import name` → ImportError
    from lockman.cli import main

    code = main()
    gc.freeze()  # what is alive now dies with the process: no collector walk over it at exit
    sys.exit(code)


def command_starting() -> None:
    """The command's modules are loaded and its run begins: collect from here on, but only
    what the run creates (in the ``lockman`` process; a no-op for library callers)."""
    if _launched:
        gc.freeze()
        gc.enable()
