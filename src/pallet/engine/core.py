"""`Engine`: the one object callers hold, made of one mixin per concern: containers (rows and
reconciliation), images, creating (options checked, image, row, snapshot and /etc files, bundle),
lifecycle, waiting, inspection, running (`run`).

Layout:
  <root>/containers/<id>/        config.json (the bundle), hostname, hosts, resolv.conf, <id>-json.log
  <runroot>/containers/<id>/     attach socket, pid file, runtime log  (volatile: gone after a reboot)
  <runroot>/runtime-<name>/      the OCI runtime's own state
"""

from __future__ import annotations

import os
from pathlib import Path

from pallet.engine.containers import Containers
from pallet.engine.creating import Creating
from pallet.engine.events import Events
from pallet.engine.images import Images
from pallet.engine.inspection import Inspection
from pallet.engine.lifecycle import Lifecycle
from pallet.engine.options import CreateOptions  # noqa: F401 - `from pallet.engine.core import CreateOptions`
from pallet.engine.running import Runs
from pallet.engine.signals import parse_signal  # noqa: F401 - `from pallet.engine.core import parse_signal`
from pallet.engine.waiting import Waiting

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


class Engine(Containers, Images, Creating, Lifecycle, Waiting, Inspection, Runs, Events):
    def __init__(self, store, runroot: str | os.PathLike, *, storage_driver: str | None = None) -> None:
        self.store = store
        self.root = Path(store.root)
        self.runroot = Path(runroot)
        self.storage_driver = storage_driver
        self._runtimes: dict[str, Any] = {}

    def runtime(self, name: str):
        if name not in self._runtimes:
            from pallet.engine.runtimes import get_runtime

            self._runtimes[name] = get_runtime(name, self.runroot)
        return self._runtimes[name]
