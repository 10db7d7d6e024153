"""The I/O layer: the OCI distribution protocol over httpx, with auth and host policy."""
