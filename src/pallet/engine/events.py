"""docker's events: what the engine records as it happens (`container_event`, `emit`) and
`Engine.events` (an iterator of docker's event messages, filtered, following new ones).

The log itself is the store's (`pallet.store.events`): one append-only file any process writes.
"""

from __future__ import annotations

from pallet.errors import PalletError
from pallet.store import events as log

FILTERS = ("container", "event", "image", "label", "network", "type", "volume", "scope", "daemon")
TYPES = ("container", "image", "network", "volume", "daemon", "plugin", "service", "node", "secret", "config")


def container_attributes(c, **extra) -> dict:
    """docker's Attributes of a container event: its labels, image and name (then `extra`)."""
    attrs = dict(c.Config.get("Labels") or {})
    attrs["image"] = c.Config.get("Image") or c.image or ""
    attrs["name"] = c.name
    attrs.update({k: v for k, v in extra.items() if v is not None})
    return attrs


def container_event(engine, c, action: str, **extra) -> None:
    log.record(engine.root, "container", action, c.id, container_attributes(c, **extra))


def volume_events(engine, c, action: str) -> None:
    """docker's mount (at each start) and unmount (at each exit) of the named volumes a container uses."""
    for m in c.config.get("Mounts") or ():
        if m.get("Type") == "volume" and m.get("Name"):
            attrs = {"container": c.id, "driver": m.get("Driver") or "local"}
            if action == "mount":
                attrs.update(destination=m.get("Destination", ""), propagation=m.get("Propagation", ""),
                             **{"read/write": "true" if m.get("RW", True) else "false"})
            log.record(engine.root, "volume", action, m["Name"], attrs)


def emit(engine_or_root, type_: str, action: str, actor_id: str, attributes: dict | None = None) -> None:
    root = getattr(engine_or_root, "root", engine_or_root)
    log.record(root, type_, action, actor_id, attributes)


def message(rec: dict) -> dict:
    """A log record in docker's message shape, with the deprecated status/id/from of container and
    image events (docker's field order)."""
    out = {}
    if rec.get("Type") in ("container", "image"):
        out["status"] = rec.get("Action")
        out["id"] = rec["Actor"]["ID"]
        if rec.get("Type") == "container" and rec["Actor"]["Attributes"].get("image"):
            out["from"] = rec["Actor"]["Attributes"]["image"]
    out.update(rec)
    return out


def check_filters(filters: dict[str, list[str]] | None) -> dict[str, list[str]]:
    filters = {k: list(v) for k, v in (filters or {}).items() if v}
    for k, values in filters.items():
        if k not in FILTERS:
            raise PalletError(f"invalid filter '{k}'")
        if k == "type":
            for v in values:
                if v not in TYPES:
                    raise PalletError(f"invalid filter 'type={v}'")
    return filters


def _strip_tag(ref: str) -> str:
    if "@" in ref:
        return ref.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[:colon] if colon > slash else ref


def _fuzzy(values, ev, type_: str) -> bool:
    """docker's fuzzyMatchName: for events of `type_`, the actor's ID (by prefix) or its name attribute."""
    if ev["Type"] != type_:
        return False
    aid = ev["Actor"]["ID"]
    name = ev["Actor"]["Attributes"].get("name", "")
    return any(aid.startswith(v) or name.startswith(v) or v == name for v in values)


def matches(filters: dict[str, list[str]], ev: dict) -> bool:
    """moby's events.Filter.Include: every filter given must match (the values of one filter: any)."""
    attrs = ev["Actor"]["Attributes"]
    f = filters.get("type")
    if f and ev["Type"] not in f:
        return False
    f = filters.get("event")
    if f:
        action = ev["Action"]
        fuzzy = any(v in ("health_status", "exec_create", "exec_start") for v in f)
        if not any(action == v or (fuzzy and action.startswith(v)) for v in f):
            return False
    f = filters.get("scope")
    if f and ev.get("scope", "local") not in f:
        return False
    for kind in ("container", "network", "volume"):
        f = filters.get(kind)
        if f and not _fuzzy(f, ev, kind):
            return False
    f = filters.get("image")
    if f:
        name = attrs.get("name" if ev["Type"] == "image" else "image", "")
        aid = ev["Actor"]["ID"]
        cands = {aid, name, _strip_tag(aid), _strip_tag(name)}
        if not any(v in cands or _strip_tag(v) in cands for v in f):
            return False
    f = filters.get("label")
    if f:
        for want in f:
            k, eq, v = want.partition("=")
            if k not in attrs or (eq and attrs[k] != v):
                return False
    return True


def _ns(t) -> int | None:
    if t is None:
        return None
    if isinstance(t, (int, float)):
        return int(t * 1_000_000_000)
    from pallet.engine.model import parse_time

    return int(parse_time(str(t)) * 1_000_000_000)


class Events:
    """Engine methods (a mixin of `core.Engine`)."""

    def events(self, *, since=None, until=None, filters: dict[str, list[str]] | None = None, follow=None,
               cancel=None):
        """docker's events: an iterator of event messages (docker's shape) between `since` and `until`
        (unix seconds, RFC 3339 or a duration before now), filtered as docker filters them. Without
        `until` it follows: after the past ones it yields each new event as it is recorded, forever
        (woken by inotify), or until `cancel()` is true (e.g. a threading.Event's `is_set`, for a
        daemon whose client went away). Without `since` or `until` only new events are yielded
        (with `until` alone: the past ones up to then, as docker's buffer)."""
        import time

        filters = check_filters(filters)
        now = time.time_ns()
        since_ns = _ns(since) if since is not None else (now if until is None else None)
        until_ns = _ns(until)
        if follow is None:
            follow = until_ns is None or until_ns > now
        if until_ns is not None and since_ns is not None and until_ns < since_ns:
            raise PalletError("--since time is after --until time")
        return self._events(since_ns, until_ns, filters, follow, cancel)

    def _events(self, since_ns, until_ns, filters, follow, cancel):
        for rec in log.read(self.root, since_ns=since_ns, until_ns=until_ns, follow=follow, cancel=cancel):
            if matches(filters, rec):
                yield message(rec)
