"""Thin commands: parse nothing, print results, return an exit code.

May import every layer below: ``lockman.model``, ``lockman.signatures``, ``lockman.registry``,
``lockman.enforce``, ``lockman.images``, ``lockman.report``, ``lockman.console``,
``lockman.progress``, ``lockman.programs``, ``lockman.errors``, ``lockman.fileio``, ``lockman.env`` and
``lockman.safejson``; never ``lockman.cli`` or ``lockman.launch``.
"""
