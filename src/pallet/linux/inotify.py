"""inotify(7): wait for a file or directory to change without polling (the event log's followers)."""

from __future__ import annotations

import os

from pallet.linux.libc import _b, check, libc

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000


class Watch:
    """An inotify descriptor watching `paths` for `mask`; `wait(timeout)` returns True when something
    happened (the events read and dropped), False on timeout."""

    def __init__(self, paths, mask: int = IN_MODIFY | IN_CREATE | IN_MOVED_TO) -> None:
        self.fd = check(libc.inotify_init1(IN_CLOEXEC | IN_NONBLOCK), "inotify_init1")
        try:
            for p in paths:
                check(libc.inotify_add_watch(self.fd, _b(os.fspath(p)), mask), f"inotify_add_watch {p}")
        except BaseException:
            os.close(self.fd)
            raise

    def fileno(self) -> int:
        return self.fd

    def wait(self, timeout: float | None) -> bool:
        import select

        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
