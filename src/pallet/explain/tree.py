"""`pallet images --tree`: the images of the store as a tree of shared layers (like dockviz).

An image's parent is the local image whose layer chain (its diff ids, bottom first) is the longest
prefix of its own; between images with the same chain, the one with the shorter history (fewer build
steps) is the parent. Images without a parent that still share bottom layers hang under a node for
those shared layers, which no local image names.
"""

from __future__ import annotations


def _familiar(name: str) -> str:
    from pallet import reference
    from pallet.errors import InvalidReference

    try:
        return reference.familiar_string(reference.parse(name))
    except InvalidReference:
        return name


def layer_sizes(store, rec) -> list[int]:
    """Unpacked size of each layer of an image, as `history` shows them."""
    out = []
    for desc in store.manifest(rec).layers:
        info = store.layer_info(desc.digest)
        out.append(info[1] if info else desc.size)
    return out


def image_chains(store) -> list[dict]:
    out = []
    for rec in store.images():
        cfg = store.config(rec)
        out.append({"rec": rec, "chain": list(cfg.diff_ids), "history": len(cfg.history or ()),
                    "sizes": layer_sizes(store, rec)})
    return out


def _key(x: dict) -> tuple:
    return (len(x["chain"]), x["history"], x["rec"].created or "", x["rec"].id)


def parent_of(x: dict, others: list[dict]) -> dict | None:
    best = None
    for o in others:
        if o is x or o["chain"] != x["chain"][:len(o["chain"])] or not o["chain"]:
            continue
        if _key(o) >= _key(x):
            continue
        if best is None or _key(o) > _key(best):
            best = o
    return best


def base_image(store, rec) -> dict | None:
    """The local image `rec` is built on (None if none): {"rec", "chain", ...}."""
    items = image_chains(store)
    me = next((x for x in items if x["rec"].id == rec.id), None)
    return parent_of(me, items) if me else None


def tree(store) -> list[dict]:
    """The forest: nodes {"id", "tags", "size", "layers", "added_layers", "added_size", "children"}; a
    node for shared layers no image names has id None and "shared_layers"."""
    items = image_chains(store)
    nodes = {}
    for x in items:
        r = x["rec"]
        nodes[r.id] = {"id": r.id, "tags": [_familiar(t) for t in r.tags], "size": r.size,
                       "layers": len(x["chain"]), "added_layers": len(x["chain"]), "added_size": sum(x["sizes"]),
                       "created": r.created, "children": []}
    roots = []
    for x in sorted(items, key=_key):
        p = parent_of(x, items)
        n = nodes[x["rec"].id]
        if p is None:
            roots.append((x, n))
            continue
        k = len(p["chain"])
        n["added_layers"] = len(x["chain"]) - k
        n["added_size"] = sum(x["sizes"][k:])
        nodes[p["rec"].id]["children"].append(n)
    return _group_roots(roots)


def _group_roots(roots: list[tuple[dict, dict]]) -> list[dict]:
    """Roots sharing their bottom layer go under one node for the layers they all share."""
    groups: dict[str, list[tuple[dict, dict]]] = {}
    out = []
    for x, n in roots:
        if x["chain"]:
            groups.setdefault(x["chain"][0], []).append((x, n))
        else:
            out.append(n)
    for members in groups.values():
        if len(members) == 1:
            out.append(members[0][1])
            continue
        chains = [x["chain"] for x, _ in members]
        k = 0
        while all(len(c) > k and c[k] == chains[0][k] for c in chains):
            k += 1
        shared_size = sum(members[0][0]["sizes"][:k])
        for x, n in members:
            n["added_layers"] = len(x["chain"]) - k
            n["added_size"] = sum(x["sizes"][k:])
        out.append({"id": None, "tags": [], "size": shared_size, "layers": k, "added_layers": k,
                    "added_size": shared_size, "shared_layers": chains[0][:k], "created": None,
                    "children": [n for _, n in members]})
    out.sort(key=lambda n: (n["tags"][:1] or ["~"], n["id"] or ""))
    return out


def lines(forest: list[dict], human_size) -> list[str]:
    """Text drawing of the forest: one line per node."""
    out: list[str] = []

    def label(n: dict) -> str:
        if n["id"] is None:
            return (f"<{n['layers']} shared layer{'s' if n['layers'] != 1 else ''}, no local image>  "
                    f"{human_size(n['size'])}")
        tags = ", ".join(n["tags"]) or "<none>"
        short = n["id"].partition(":")[2][:12]
        extra = f"+{n['added_layers']} layer{'s' if n['added_layers'] != 1 else ''} {human_size(n['added_size'])}"
        return f"{short}  {tags}  {human_size(n['size'])}  ({extra}, {n['layers']} in all)"

    def walk(n: dict, prefix: str, last: bool, top: bool) -> None:
        out.append(("" if top else prefix + ("└─ " if last else "├─ ")) + label(n))
        child_prefix = "" if top else prefix + ("   " if last else "│  ")
        for i, c in enumerate(n["children"]):
            walk(c, child_prefix, i == len(n["children"]) - 1, False)

    for n in forest:
        walk(n, "", True, True)
    return out


def to_json(forest: list[dict]) -> list[dict]:
    return forest
