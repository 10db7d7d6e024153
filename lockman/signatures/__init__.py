"""Pure cosign / Sigstore signature verification: no network, fixed inputs in, verdict out."""
