"""The I/O layer: the OCI distribution protocol over httpx, with auth, host policy and the manifest cache.

May import ``lockman.model``, ``lockman.errors``, ``lockman.fileio``, ``lockman.env``,
``lockman.safejson``, ``lockman.programs`` and ``lockman.console``;
never ``lockman.images``, ``lockman.enforce`` or ``lockman.commands``.
"""
