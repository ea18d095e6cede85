"""The monitor as its own program, for callers that run threads (`monitor.spawn_exec`).

`python -m pallet.engine.monitorproc ROOT RUNROOT DRIVER ID SYNC-FD EXTRA-JSON`: the same monitor
`monitor.spawn` forks, in a fresh interpreter with its own engine and database connection.
"""

from __future__ import annotations

import os
import socket
import sys

from pallet import jsonfast
from pallet.engine import monitor
from pallet.engine.core import Engine
from pallet.store import Store


def main(argv: list[str]) -> None:
    """ROOT RUNROOT DRIVER ID SYNC-FD EXTRA-JSON (never returns)."""
    root, runroot, driver, cid, fd, extra = argv
    code = 125
    try:
        sync = socket.socket(fileno=int(fd)) if int(fd) >= 0 else None
        keep = sync.fileno() if sync is not None else -1
        os.dup2(os.open(os.devnull, os.O_RDWR), 2)
        for k in (0, 1):
            os.dup2(2, k)
        if keep > 3:
            os.closerange(3, keep)
        os.closerange(max(3, keep + 1), 65536)
        engine = Engine(Store(root), runroot, storage_driver=driver or None)
        monitor._log_to(engine, cid)
        container = engine.get(cid)
        container.extra.update(jsonfast.loads(extra))
        code = monitor._supervise(engine, container, sync)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code & 0xFF)


if __name__ == "__main__":
    main(sys.argv[1:])
