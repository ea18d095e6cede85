"""The `pallet` command line: thin click commands, one module per noun.

`main()` here is the console script. It answers what it can before importing
click (which alone costs tens of milliseconds at start-up) and hands the rest
to the click group in `pallet.cli.main`.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-v"]):
        from pallet import __version__

        sys.stdout.write(f"pallet version {__version__}\n")
        return
    from pallet.cli.main import main as click_main

    click_main(argv)
