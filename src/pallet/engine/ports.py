"""`-p/--publish` as docker reads it, and what `port`, `ps` and `inspect` show of it.

    parse(["8080:80", "127.0.0.1:5353:53/udp", "9000-9001:90-91", "80"])
      -> {"80/tcp": [{"HostIp": "", "HostPort": "8080"}, ...], "53/udp": [...], ...}   (docker's PortBindings)

An empty HostPort is a port chosen when the container starts. The forwarding itself is DNAT in
pallet's nftables table (`pallet.network.firewall.publish`), set up by `engine.networking.up`.
"""

from __future__ import annotations

from pallet.errors import InvalidField

PROTOCOLS = ("tcp", "udp", "sctp")


def _bad(spec: str, why: str) -> InvalidField:
    return InvalidField("PortBindings", "invalid {name} {text!r}: {why} (expected [hostIP:][hostPort:]containerPort"
                        "[/tcp|udp|sctp])", text=spec, why=why)


def _range(text: str, spec: str, what: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise _bad(spec, f"{what} {text!r} is not a port number or range") from None
    if not (0 < a <= b <= 65535):
        raise _bad(spec, f"{what} {text!r} is outside 1-65535 or an empty range")
    return a, b


def parse_one(spec: str) -> list[tuple[str, dict]]:
    """One -p value -> [("80/tcp", {"HostIp", "HostPort"}), ...]."""
    body, _, proto = spec.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in PROTOCOLS:
        raise _bad(spec, f"protocol {proto!r} is not supported")
    host_ip = ""
    if body.startswith("["):      # [IPv6]:hostPort:containerPort
        end = body.find("]")
        if end < 0:
            raise _bad(spec, "unclosed [")
        host_ip, body = body[1:end], body[end + 1:].removeprefix(":")
        parts = body.split(":")
        if len(parts) == 1:
            parts = ["", parts[0]]
    else:
        parts = body.split(":")
        if len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
        elif len(parts) > 3:
            raise _bad(spec, "too many colons")
    if len(parts) == 1:
        host_port, ctr_port = "", parts[0]
    else:
        host_port, ctr_port = parts
    if host_ip:
        import ipaddress

        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise _bad(spec, f"{host_ip!r} is not an IP address") from None
        if host_ip == "::1":
            raise _bad(spec, "the IPv6 loopback address cannot be forwarded to a container (DNAT from ::1 has "
                             "no equivalent of IPv4's route_localnet)")
    if not ctr_port:
        raise _bad(spec, "no container port")
    c_lo, c_hi = _range(ctr_port, spec, "container port")
    n = c_hi - c_lo + 1
    if host_port:
        h_lo, h_hi = _range(host_port, spec, "host port")
        if h_hi - h_lo + 1 != n:
            if n == 1:
                raise _bad(spec, "a host port range needs a container port range of the same length")
            raise _bad(spec, "the host and container port ranges differ in length")
        hosts = [str(p) for p in range(h_lo, h_hi + 1)]
    else:
        hosts = [""] * n
    return [(f"{c_lo + i}/{proto}", {"HostIp": host_ip, "HostPort": hosts[i]}) for i in range(n)]


def parse(specs) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    seen: set[tuple[str, str, str]] = set()
    for spec in specs:
        for key, b in parse_one(spec):
            proto = key.partition("/")[2]
            if b["HostPort"]:
                k = (b["HostIp"], b["HostPort"], proto)
                if k in seen:
                    raise _bad(spec, f"host port {b['HostPort']}/{proto} is published twice")
                seen.add(k)
            out.setdefault(key, []).append(b)
    return out


def check(bindings: dict) -> dict[str, list[dict]]:
    """PortBindings as the Engine API gives them -> checked as -p's are (each key PORT[/PROTO], HostIp an
    address or empty, HostPort a port or empty, no host port twice), in the same shape."""
    if not isinstance(bindings, dict):
        raise InvalidField("PortBindings", "invalid {name}: expected {{\"PORT/PROTO\": [{{\"HostIp\", \"HostPort\"}}]}}")
    specs = []
    for key, binds in bindings.items():
        if not isinstance(key, str) or not isinstance(binds, (list, type(None))):
            raise InvalidField("PortBindings", "invalid {name} {key!r}: expected {{\"PORT/PROTO\": [{{\"HostIp\", "
                               "\"HostPort\"}}]}}", key=key)
        for b in binds or [{}]:
            ip, port = str((b or {}).get("HostIp") or ""), str((b or {}).get("HostPort") or "")
            specs.append(f"[{ip}]:{port}:{key}" if ip else f"{port}:{key}" if port else key)
    return parse(specs)


def _join(ip: str, port) -> str:
    """docker's net.JoinHostPort: an IPv6 address in brackets."""
    ip = ip or "0.0.0.0"
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _natural(text: str) -> list:
    """sortorder.NaturalLess's key: digit runs compare as numbers."""
    import re

    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.findall(r"\d+|\D+", text)]


def describe(bindings: dict) -> list[str]:
    """`port`'s lines, in docker's (natural) order: "80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080"."""
    out = [f"{key} -> {_join(b.get('HostIp'), b.get('HostPort'))}"
           for key, binds in bindings.items() for b in binds or ()]
    return sorted(out, key=_natural)


def summary(exposed, bindings: dict) -> list[tuple[str, int, int, str]]:
    """docker's port list of a running container: (IP, private port, public port, type) for each
    published binding, ("", port, 0, type) for an exposed port that is not published."""
    out = []
    for key in list(exposed or ()) + [k for k in bindings if k not in (exposed or ())]:
        port, _, proto = key.partition("/")
        binds = bindings.get(key) or []
        if not binds:
            out.append(("", int(port), 0, proto or "tcp"))
        for b in binds:
            out.append((b.get("HostIp") or "0.0.0.0", int(port), int(b.get("HostPort") or 0), proto or "tcp"))
    return out


def column(ports: list[tuple[str, int, int, str]]) -> str:
    """ps's PORTS exactly as docker's CLI (28.2) makes it from `summary`: sorted by private port, IP,
    public port and type; runs of consecutive ports whose host port equals the container port (and
    unpublished exposed ports) collapsed into ranges ("0.0.0.0:8000-8003->8000-8003/tcp", "80-83/tcp"),
    then the other mappings one by one ("0.0.0.0:8080->80/tcp", "[::]:8080->80/tcp": an IPv6 address
    in brackets, net.JoinHostPort; docker 27 and older printed ":::8080")."""
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result, mappings = [], []

    def form(key: str, first: int, last: int) -> str:
        ip, _, proto = key.rpartition("/")
        group = str(first) if first == last else f"{first}-{last}"
        return f"{_join(ip, group)}->{group}/{proto}" if ip else f"{group}/{proto}"

    for ip, private, public, proto in sorted(ports, key=lambda p: (p[1], p[0], p[2], p[3])):
        key = proto
        if ip:
            if public != private:
                mappings.append(f"{_join(ip, public)}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        g = groups.get(key)
        if g is None:
            groups[key] = [private, private]
            order.append(key)
        elif private == g[1] + 1:
            g[1] = private
        else:
            result.append(form(key, *g))
            groups[key] = [private, private]
    result += [form(k, *groups[k]) for k in order]
    return ", ".join(result + mappings)


def parse_expose(specs) -> dict[str, dict]:
    """--expose values ("80", "8000-8003/udp") -> docker's ExposedPorts {"80/tcp": {}, ...}."""
    out: dict[str, dict] = {}
    for spec in specs:
        body, _, proto = spec.partition("/")
        proto = proto.lower() or "tcp"
        if proto not in PROTOCOLS:
            raise InvalidField("ExposedPorts", "invalid {name} {text!r}: protocol {proto!r} is not supported (tcp, udp "
                               "or sctp)", text=spec, proto=proto)
        lo, sep, hi = body.partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise InvalidField("ExposedPorts", "invalid {name} {text!r}: expected PORT[-PORT][/tcp|udp|sctp]",
                               text=spec) from None
        if not (0 < a <= b <= 65535):
            raise InvalidField("ExposedPorts", "invalid {name} {text!r}: ports are 1-65535 and a range goes up",
                               text=spec)
        out.update({f"{p}/{proto}": {} for p in range(a, b + 1)})
    return out


def bindings(c) -> dict[str, list[dict]]:
    """The ports to publish: -p's PortBindings, and with -P (PublishAllPorts) every exposed port that
    -p did not bind, to a random host port (docker's rule)."""
    host = c.HostConfig
    out = {k: list(v or ()) for k, v in (host.get("PortBindings") or {}).items()}
    if host.get("PublishAllPorts") and (host.get("NetworkMode") or "none") not in ("none", "host") \
            and not (host.get("NetworkMode") or "").startswith("container:"):
        for key in c.Config.get("ExposedPorts") or {}:
            k = key if "/" in key else key + "/tcp"
            if k.partition("/")[2] in PROTOCOLS and not out.get(k):
                out[k] = [{"HostIp": "", "HostPort": ""}]
    return out
