"""Layers: safe streaming unpack of OCI layer tars, whiteouts, diffs, snapshots.

(The full API is documented once the package is complete; see `stream.apply_layer`.)
"""
