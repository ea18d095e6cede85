"""Test helpers shared across test packages (OCI layouts, registry processes, a token issuer)."""
