"""Pure data and grammar: references, xcargo config, lockfile, manifests, platforms, pinning.

No network. May import only ``lockman.errors``, ``lockman.fileio``, ``lockman.env``,
``lockman.safejson`` and its own modules.
"""
