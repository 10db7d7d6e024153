"""Work on whole images over the registry client: locking, updating, verifying, walking,
pulling, deep checks. Each run returns a result object that commands render.

May import ``lockman.model``, ``lockman.signatures``, ``lockman.registry``, ``lockman.enforce``,
``lockman.errors``, ``lockman.fileio``, ``lockman.safejson``, ``lockman.programs`` and
``lockman.console``;
never ``lockman.commands``, ``lockman.cli``, ``lockman.report`` (rendering a result is the
command's) or ``lockman.env`` (settings from the environment are read at the command's edge).
``lockman.enforce`` is a sibling, not a layer above: the updater's signature gate and the
verifier's signature checks apply its policies, and enforce never imports images.
"""
