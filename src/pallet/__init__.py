"""pallet: a Linux container host toolchain — images, layers, registries, runtime, engine."""

__version__ = "0.1.0"


def long_lived() -> None:
    """Turn the cyclic GC back on in a process that stays (a monitor, an attached or pulling `run`).

    `pallet run` starts with it off (pallet.cli.__init__: fewer collections while importing, fewer
    copy-on-write faults after the fork); what exists by now is left out of it (`gc.freeze`)."""
    import gc

    if not gc.isenabled():
        gc.freeze()
        gc.enable()
