"""Shared CLI plumbing: the context state object and output helpers (tables, JSON)."""

from __future__ import annotations

import sys
from pathlib import Path


def __getattr__(name: str):
    """human_ago, human_duration, human_size (the CLI's tables use them) from `pallet.engine.units`, on
    first use: `pallet run` imports this module before it forks its monitor, and needs none of them."""
    if name in ("human_ago", "human_duration", "human_size"):
        from pallet.engine import units

        return getattr(units, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

    import click


class State:
    """Global options, with the store opened on first use.

    (No click, no dataclass here: the fast path of `pallet run` builds one without importing either.)
    """

    def __init__(self, root: str | None = None, runroot: str | None = None, storage_driver: str | None = None,
                 config_file: str | None = None) -> None:
        self.root = root
        self.runroot = runroot
        self.storage_driver = storage_driver
        self.config_file = config_file
        self._store: Any = None

    def __repr__(self) -> str:
        return (f"State(root={self.root!r}, runroot={self.runroot!r}, storage_driver={self.storage_driver!r}, "
                f"config_file={self.config_file!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (self.root, self.runroot, self.storage_driver, self.config_file) == \
            (other.root, other.runroot, other.storage_driver, other.config_file)

    @property
    def root_path(self) -> Path:
        from pallet.config import default_root

        return Path(self.root) if self.root else default_root()

    @property
    def runroot_path(self) -> Path:
        from pallet.config import default_run_dir

        return Path(self.runroot) if self.runroot else default_run_dir()

    def fresh(self) -> State:
        """The same options, with a store (database connection) of its own: one per worker thread."""
        return State(self.root, self.runroot, self.storage_driver, self.config_file)

    def store(self):
        if self._store is None:
            from pallet.store import Store

            if self.config_file:     # (the processes it forks, the monitor among them, read the same settings)
                import os

                os.environ["PALLET_CONFIG"] = self.config_file

            self._store = Store(self.root_path)
        return self._store


def state(ctx: click.Context | None = None) -> State:
    import click

    ctx = ctx or click.get_current_context()
    obj = ctx.find_root().obj
    if obj is None:
        obj = ctx.find_root().obj = State()
    return obj


def print_json(obj: Any) -> None:
    import json

    sys.stdout.write(json.dumps(obj, indent=4, ensure_ascii=False) + "\n")


def print_table(headers: list[str], rows: list[list[Any]], *, gap: int = 3) -> None:
    """Docker-style table: upper-case headers, columns padded to the widest cell plus `gap`, and at
    least 10 wide (the docker CLI's tabwriter: minwidth 10, padding 3: `NAME      DRIVER`)."""
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(max(len(r[i]) for r in cells) + gap, 10) for i in range(len(headers))]
    out = []
    for r in cells:
        line = "".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        out.append(line)
    sys.stdout.write("\n".join(out) + "\n")


# docker's column headers for the fields of `--format 'table {{.Field}}…'` (the CLI's formatter package)
TABLE_HEADERS = {"ID": "ID", "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "CreatedSince": "CREATED",
                 "LocalVolumes": "LOCAL VOLUMES", "VolumeName": "VOLUME NAME", "MountPoint": "MOUNTPOINT",
                 "NetworkID": "NETWORK ID", "IPv6": "IPV6"}


def _table_header(field: str, ids: str, headers: dict | None = None) -> str:
    if headers and field in headers:
        return headers[field]
    if field == "ID":
        return ids
    if field in TABLE_HEADERS:
        return TABLE_HEADERS[field]
    import re

    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", field).upper()


def print_formatted(fmt: str, objs: list, render, *, id_header: str = "ID", headers: dict | None = None) -> None:
    """`--format TEMPLATE` output, docker's way: each object through the template; with a leading
    `table`, a header row (`{{.ID}}` → `CONTAINER ID`…) and the tab-separated cells aligned as the
    docker CLI's tabwriter does (minimum width 10, padding 3)."""
    import re

    import click

    head, _, rest = fmt.partition(" ")
    if head != "table" and fmt != "table":
        for o in objs:
            click.echo(render(fmt, o))
        return
    template = rest.strip() or "{{.ID}}"
    header = re.sub(r"\{\{\s*(?:json\s+)?\.(\w+)[^}]*\}\}", lambda m: _table_header(m.group(1), id_header, headers),
                    template).replace("\\t", "\t")
    lines = [header] + [render(template, o) for o in objs]
    if not any("\t" in ln for ln in lines):
        sys.stdout.write("\n".join(lines) + "\n")
        return
    rows = [ln.split("\t") for ln in lines]
    n = max(len(r) for r in rows)
    rows = [r + [""] * (n - len(r)) for r in rows]
    print_table(rows[0], rows[1:])


def each(refs, fn, *, worker=None) -> None:
    """Run fn on each ref, echoing the ref on success and the error otherwise; if any failed,
    exit 1 (several refs) or 125 (one).

    With `worker` (returns a fn of its own for one thread: its own engine, so its own database
    connection), up to 4 refs are handled at once, as docker does for rm and stop; the refs and
    errors are still printed in the order given. (A ref given twice: one at a time, so that the
    second one fails as it would have alone.)"""
    import click

    parallel = worker is not None and len(refs) > 1 and len(set(refs)) == len(refs)
    outcomes = _run_each(refs, worker) if parallel else (_outcome(fn, ref) for ref in refs)
    failed = False
    for ref, error in zip(refs, outcomes, strict=True):
        if error is None:
            click.echo(ref)
        else:
            click.echo(f"Error: {error.message}", err=True)
            failed = True
    if failed:
        sys.exit(1 if len(refs) > 1 else 125)


def _outcome(fn, ref):
    """None when fn(ref) succeeded, else the PalletError it raised (any other exception propagates)."""
    from pallet.errors import PalletError

    try:
        fn(ref)
    except PalletError as e:
        return e
    return None


def _run_each(refs, worker):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()

    def one(ref):
        if not hasattr(local, "fn"):
            local.fn = worker()
        return _outcome(local.fn, ref)

    pool = ThreadPoolExecutor(max_workers=min(4, len(refs)))
    try:
        futures = [pool.submit(one, ref) for ref in refs]
        for f in futures:
            yield f.result()
    except KeyboardInterrupt:
        # what was not started is dropped; the at most 4 under way would hold the exit (a stop waits
        # for its timeout), and those threads cannot be interrupted: leave now, as a ctrl-c of one
        # `stop` or `rm` does
        pool.shutdown(wait=False, cancel_futures=True)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        import os

        os._exit(130)
    pool.shutdown()


def label_filters(filters) -> list[str]:
    """prune's `--filter label=KEY[=VALUE]`s -> ["KEY[=VALUE]", ...]; any other filter is refused."""
    from pallet.errors import PalletError

    labels = []
    for f in filters:
        k, _, v = f.partition("=")
        if k != "label":
            raise PalletError(f"invalid filter {k!r} (label)")
        labels.append(v)
    return labels


def print_pruned(kind: str, gone: list[str], freed: int = 0) -> None:
    """docker's prune report: "Deleted KIND:" and one line each (when any), then the space reclaimed."""
    import click

    if gone:
        click.echo(f"Deleted {kind}:")
        for g in gone:
            click.echo(g)
        click.echo("")
    from pallet.engine.units import human_size

    click.echo(f"Total reclaimed space: {human_size(freed)}")


def check_output_path(output: str, what: str) -> None:
    """docker's ValidateOutputPath for `save -o` / `export -o`: the directory must already exist (it is
    not made), and the path must not be a directory."""
    import os

    from pallet.errors import PalletError

    target = os.path.abspath(output)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise PalletError(f'failed to {what}: invalid output path: directory "{directory}" does not exist')
    if os.path.isdir(target):
        raise PalletError(f'failed to {what}: invalid output path: "{output}" must be a file')
