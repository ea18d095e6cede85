"""`pallet explain image`: an image's full name, the base it is built on, what each layer adds, what
runs, and the space it wastes.

Reuses what the other commands compute (the CLI adds `image ref explain`'s parts of each name),
`pallet.layers.analysis` (`image tree`, `image efficiency`) and `pallet.explain.tree` (`images --tree`).
"""

from __future__ import annotations

# package databases: path inside the image -> (manager, how to count its packages)
PACKAGE_DBS = {
    "/var/lib/dpkg/status": "dpkg",
    "/lib/apk/db/installed": "apk",
    "/var/lib/rpm/Packages": "rpm",
    "/var/lib/rpm/rpmdb.sqlite": "rpm",
    "/var/lib/rpm/Packages.db": "rpm",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite": "rpm",
}


def count_packages(manager: str, data: bytes) -> int | None:
    text = data.decode("utf-8", "replace")
    if manager == "dpkg":
        n = 0
        for block in text.split("\n\n"):
            if "Package:" in block and ("Status: install ok installed" in block or "Status:" not in block):
                n += 1
        return n
    if manager == "apk":
        return sum(1 for line in text.splitlines() if line.startswith("P:"))
    return None   # rpm's databases are binary (Berkeley DB, SQLite): found, not counted


def _package_dbs(store, rec) -> dict[int, list[dict]]:
    """Layer index -> package databases that layer writes."""
    from pallet.explain.layerfiles import entries, read
    from pallet.layers.analysis import image_layers
    from pallet.layers.paths import clean_name

    out: dict[int, list[dict]] = {}
    for i, (_digest, _, media_type, _, opener) in enumerate(image_layers(store, rec)):
        with opener() as f:
            for e, reader in entries(f, media_type):
                path = "/" + clean_name(e.name)
                manager = PACKAGE_DBS.get(path)
                if manager is None or e.type != "0":
                    continue
                n = count_packages(manager, read(reader)) if manager != "rpm" else None
                out.setdefault(i, []).append({"manager": manager, "path": path, "packages": n})
    return out


def _top_dirs(changes, n: int = 5) -> list[dict]:
    sizes: dict[str, int] = {}
    files: dict[str, int] = {}
    for c in changes:
        if c.op == "-" or c.type == "dir":
            continue
        parts = [p for p in c.path.split("/") if p]
        if not parts:
            continue
        d = "/" + "/".join(parts[:2]) if len(parts) > 2 else "/" + parts[0] if len(parts) > 1 else "/"
        sizes[d] = sizes.get(d, 0) + (c.size if c.type == "file" else 0)
        files[d] = files.get(d, 0) + 1
    top = sorted(sizes, key=lambda d: (-sizes[d], d))[:n]
    return [{"path": d, "size": sizes[d], "entries": files[d]} for d in top]


def explain_image(store, ref: str) -> dict:
    from pallet.explain.tree import base_image, layer_sizes
    from pallet.layers.analysis import analyze, efficiency, image_layers

    rec = store.resolve_image(ref)
    cfg = store.config(rec)
    manifest = store.manifest(rec)
    reports, waste = analyze(image_layers(store, rec))
    eff = efficiency(reports, waste)
    base = base_image(store, rec)
    k = len(base["chain"]) if base else 0
    dbs = _package_dbs(store, rec)
    sizes = layer_sizes(store, rec)
    layers = []
    for r in reports:
        layers.append({
            "index": r.index, "digest": r.digest, "diff_id": r.diff_id, "created_by": r.created_by,
            "size": sizes[r.index] if r.index < len(sizes) else r.size, "content_bytes": r.size,
            "from_base": r.index < k, "added": r.count("+"), "changed": r.count("~"), "deleted": r.count("-"),
            "top_dirs": _top_dirs(r.changes), "package_dbs": dbs.get(r.index, []),
        })
    c = cfg.config or {}
    from pallet.explain.tree import _familiar

    return {
        "id": rec.id, "input": ref, "names": [*rec.tags, *rec.repo_digests], "manifest_digest": rec.manifest_digest,
        "platform": f"{cfg.os}/{cfg.architecture}", "created": cfg.created, "size": rec.size,
        "media_type": getattr(manifest, "media_type", None),
        "base": None if base is None else {"id": base["rec"].id, "tags": [_familiar(t) for t in base["rec"].tags],
                                           "layers": k, "size": sum(base["sizes"])},
        "layers_added": len(reports) - k, "size_added": sum(sizes[k:]),
        "layers": layers,
        "runs": {"entrypoint": c.get("Entrypoint"), "cmd": c.get("Cmd"), "user": c.get("User") or "",
                 "workdir": c.get("WorkingDir") or "", "env": c.get("Env") or [],
                 "ports": sorted((c.get("ExposedPorts") or {}).keys()), "volumes": sorted((c.get("Volumes") or {}).keys()),
                 "stop_signal": c.get("StopSignal"), "labels": c.get("Labels") or {}},
        "waste": {**eff, "top": [{"path": w.path, "count": w.count, "wasted_bytes": w.wasted} for w in waste[:10]]},
        "package_dbs": [d | {"layer": i} for i, ds in sorted(dbs.items()) for d in ds],
    }
