"""pallet: a Linux container host toolchain — images, layers, registries, runtime, engine."""

__version__ = "0.1.0"
