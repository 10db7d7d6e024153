"""lockman: pin container images to content digests, and verify them."""

__version__ = "0.1.0"
