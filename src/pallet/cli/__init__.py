"""The `pallet` command line: thin click commands, one module per noun.

`main()` here is the console script. It answers what it can before importing
click (which alone costs tens of milliseconds at start-up) and hands the rest
to the click group in `pallet.cli.main`. `pallet run` in the forms people type is parsed and run by
`pallet.cli.fastrun` without click (same engine call; anything it does not know goes to click).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-v"]):
        from pallet import __version__

        sys.stdout.write(f"pallet version {__version__}\n")
        return
    if "run" in args[:8]:
        import gc

        # No cyclic GC while `run` imports and creates (a few ms of collections, and after the fork
        # copy-on-write faults in both processes); whoever stays turns it back on: pallet.long_lived.
        gc.disable()
        from pallet.cli.fastrun import main as fast_main

        fast_main(args)   # returns only if click must handle this command line
        gc.enable()
    from pallet.cli.main import main as click_main

    click_main(argv)
