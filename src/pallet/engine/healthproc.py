"""The health-check process a monitor starts (`python -m pallet.engine.healthproc ROOT RUNROOT DRIVER ID SINCE`).

Its own module so that `health` (imported by the engine for inspect and ps) need not import the Engine.
"""

from __future__ import annotations

import sys

from pallet.engine import health


def _main(argv: list[str]) -> int:
    from pallet.engine.core import Engine
    from pallet.store import Store

    root, runroot, driver, cid, since = argv
    engine = Engine(Store(root), runroot, storage_driver=driver or None)
    try:
        health.checker(engine, cid, float(since))
    except Exception:  # noqa: BLE001
        import traceback

        traceback.print_exc()   # into the monitor's log (our stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
