"""Work on whole images over the registry client: locking, walking, pulling, deep checks.

May import ``lockman.model``, ``lockman.registry``, ``lockman.errors``, ``lockman.fileio``,
``lockman.safejson``, ``lockman.programs`` and ``lockman.console``;
never ``lockman.commands`` or ``lockman.cli``.
"""
