"""Kernel interfaces of the OCI runtime: one small module per concern.

This package is the only place in pallet that calls ctypes. Every function here
is a thin wrapper over one system call (or one cgroupfs/procfs file) that raises
`OSError` with the call's name on failure; policy lives in `pallet.runtime`.
"""
