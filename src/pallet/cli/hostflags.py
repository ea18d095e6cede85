"""run/create flags for storage, limits, security, restart policy and health (docker's names).

Kept for callers of `host_options`/`limit_options`: the rows are in `pallet.cli.runflags`, the one
table from which click's options and the fast parser of `pallet run` are both made.
"""

from __future__ import annotations


def limit_options() -> list:
    from pallet.cli.runflags import LIMITS, click_options

    return click_options(LIMITS)


def host_options(f):
    from pallet.cli.runflags import HOST, apply

    return apply(f, HOST)
