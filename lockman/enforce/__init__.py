"""Applying signature and attestation policies to locked images over the registry.

The pure verdicts live in ``lockman.signatures``; this package fetches what they need. May
import ``lockman.model``, ``lockman.registry``, ``lockman.signatures``, ``lockman.errors`` and
``lockman.console``; never ``lockman.images`` or ``lockman.commands``.
"""
