"""What `ps` shows: docker's container filters and its Status column, for the CLI and an API alike."""

from __future__ import annotations

import re

from pallet.engine.health import health_status, status_suffix
from pallet.engine.units import human_ago
from pallet.errors import PalletError

FILTERS = ("name", "status", "label", "id", "ancestor", "exited", "health", "volume")


def parse_filters(given) -> dict[str, list[str]]:
    """`--filter KEY=VALUE`s (or the API's {KEY: [VALUE, ...]}) -> {KEY: [VALUE, ...]}, keys checked."""
    by: dict[str, list[str]] = {}
    items = given.items() if isinstance(given, dict) else None
    if items is None:
        for f in given:
            k, sep, v = f.partition("=")
            if not sep:
                raise PalletError(f"invalid filter {f!r}: expected KEY=VALUE")
            by.setdefault(k, []).append(v)
    else:
        for k, vals in items:
            by.setdefault(k, []).extend(vals)
    for k in by:
        if k not in FILTERS:
            raise PalletError(f"invalid filter {k!r}")
    return by


def matches(engine, c, filters: dict[str, list[str]]) -> bool:
    for k, vals in filters.items():
        if k == "name" and not any(re.search(v, c.name) for v in vals):
            return False
        if k == "id" and not any(c.id.startswith(v) for v in vals):
            return False
        if k == "status" and c.status not in vals:
            return False
        if k == "exited" and not (c.status == "exited" and str(c.exit_code) in vals):
            return False
        if k == "ancestor" and not any(v in (c.image_name, c.image_id) or c.image_id.startswith(v) for v in vals):
            return False
        if k == "health" and (health_status(engine, c) or "none") not in vals:
            return False
        if k == "volume" and not any(v in (m.get("Name"), m.get("Destination"), m.get("Source"))
                                     for m in c.config.get("Mounts") or () for v in vals):
            return False
        if k == "label":
            labels = c.Config.get("Labels") or {}
            for v in vals:
                lk, sep, lv = v.partition("=")
                if lk not in labels or (sep and labels[lk] != lv):
                    return False
    return True


def ps(engine, *, all: bool = False, filters: dict[str, list[str]] | None = None, last: int = -1) -> list:
    """docker ps: running containers (all with `all`, a status filter or `last`), newest first."""
    filters = filters or {}
    cs = engine.list(all=True)
    if not all and "status" not in filters and last < 0:
        cs = [c for c in cs if c.status == "running"]
    cs = [c for c in cs if matches(engine, c, filters)]
    return cs[:last] if last >= 0 else cs


def status_text(engine, c) -> str:
    """docker's Status column: "Up 3 minutes (healthy)", "Exited (0) 2 seconds ago", "Created", ..."""
    if c.status == "running":
        return "Up " + human_ago(c.started_at or c.created).removesuffix(" ago") + status_suffix(engine, c)
    if c.status == "exited":
        return f"Exited ({c.exit_code if c.exit_code is not None else -1}) {human_ago(c.finished_at or c.created)}"
    if c.status == "created":
        return "Created"
    if c.status == "restarting":
        return f"Restarting ({c.exit_code if c.exit_code is not None else -1}) {human_ago(c.finished_at or c.created)}"
    return c.status.capitalize()
