"""OCI distribution: the registry client and the registry server."""
