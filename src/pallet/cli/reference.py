"""`pallet image ref ...`: look inside an image reference.

`explain REF` shows how pallet (and docker) read a reference: its parts, the
full and the familiar name, and the registry URL a pull would fetch.

What `tag` is: the tag a pull would use. `busybox` has no tag written, and
docker pulls `latest`, so `tag` is `latest`. With a digest the digest decides
what is pulled: `busybox@sha256:…` has no tag (null), and `busybox:1.36@sha256:…`
shows the tag as written, but the API URL uses the digest (docker ignores the
tag then).

The API URL is https, for every registry: docker and containers/image (podman,
skopeo) try https first, and fall back to plain http only for a registry on
this host (localhost, 127.0.0.0/8, [::1]) or one marked insecure (`insecure =
true` in pallet.toml or registries.conf, docker's --insecure-registry). `HTTP
fallback` shows that URL and why, or <none> when only https is tried.
"""

from __future__ import annotations

import click

from pallet.reference import DEFAULT_TAG, Reference, normalize, parse_normalized_named


def http_fallback_reason(ref: Reference, insecure: bool | None = None) -> str | None:
    """Why a pull of `ref` may fall back to plain http, or None when only https is tried.
    `insecure` is the registry's setting (pallet.toml, registries.conf; None: not set), as the registry
    client reads it."""
    if insecure is not None:
        return "marked insecure in pallet.toml or registries.conf" if insecure else None
    return "registry on this host" if ref.is_loopback else None


def _insecure_setting(domain: str) -> bool | None:
    """The registry's `insecure` in the registry settings (None: unset), as `pallet pull` reads them."""
    import click

    from pallet.registry.client.settings import load_settings

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    from pallet.cli.common import state

    return load_settings(state(ctx).config_file).for_host(domain).insecure


def explain(text: str, *, insecure: bool | None = None) -> dict[str, str | None]:
    """The parts of ``text`` as `explain --format json` prints them. `insecure`: the registry's
    setting in pallet.toml (None: not set; then only a registry on this host may fall back to http)."""
    normalize(text)  # validates with the error message docker gives
    written = parse_normalized_named(text)
    tag = written.tag if (written.tag is not None or written.digest is not None) else DEFAULT_TAG
    ref = Reference(written.domain, written.path, tag, written.digest)
    fallback = http_fallback_reason(ref, insecure) is not None
    return {
        "input": text,
        "domain": ref.domain,
        "path": ref.path,
        "tag": ref.tag,
        "digest": ref.digest,
        "normalized": ref.name,
        "familiar": ref.familiar,
        "api_url": ref.api_url("manifests"),
        "http_fallback": ref.api_url("manifests", scheme="http") if fallback else None,
    }


_LABELS = {
    "input": "Input",
    "domain": "Domain",
    "path": "Path",
    "tag": "Tag",
    "digest": "Digest",
    "normalized": "Normalized name",
    "familiar": "Familiar name",
    "api_url": "API URL",
    "http_fallback": "HTTP fallback",
    "resolved_by": "Resolved by",
    "candidates": "Candidates",
}


@click.group("ref")
def ref_group() -> None:
    """Image references: how a name like `busybox` becomes docker.io/library/busybox:latest."""


@ref_group.command("explain")
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
def explain_cmd(ref: str, fmt: str) -> None:
    """Show every part of REF and the registry URL it resolves to.

    \b
    Example:
      $ pallet image ref explain busybox
      Input:             busybox
      Domain:            docker.io
      Path:              library/busybox
      Tag:               latest (default)
      Digest:            <none>
      Normalized name:   docker.io/library/busybox
      Familiar name:     busybox
      API URL:           https://registry-1.docker.io/v2/library/busybox/manifests/latest
      HTTP fallback:     <none>
      Resolved by:       no unqualified-search registries: docker's default (docker.io/library/)
      Candidates:        <none>

    A short name resolves as podman's does, through registries.conf (aliases, search registries;
    see pallet.registry.client.shortnames); without a search registry, by docker's rule.
    For `localhost:5000/app` the API URL is https://localhost:5000/v2/app/manifests/latest and
    the HTTP fallback http://localhost:5000/v2/app/manifests/latest (registry on this host).
    """
    normalize(ref)  # an invalid reference fails before the settings file is read
    from pallet.registry.client import shortnames

    res = shortnames.resolve(ref, shortnames.load())
    # one candidate (an alias, a single search registry): that is the name a pull fetches
    target = res.candidates[0] if len(res.candidates) == 1 else ref
    domain = parse_normalized_named(target).domain
    insecure = _insecure_setting(domain)
    parts = explain(target, insecure=insecure)
    parts["input"] = ref
    parts["resolved_by"] = res.rule + (f" ({res.source})" if res.source else "")
    parts["candidates"] = res.candidates if len(res.candidates) > 1 else None
    ref_tag_source = target
    if fmt == "json":
        from pallet.cli.common import print_json

        print_json(parts)
        return
    written_tag = parse_normalized_named(ref_tag_source).tag if ref_tag_source == ref else \
        parse_normalized_named(ref).tag
    width = max(len(label) for label in _LABELS.values()) + 4
    lines = []
    for key, label in _LABELS.items():
        value = parts[key]
        if value is None:
            shown = "<none>"
        elif key == "tag" and written_tag is None:
            shown = f"{value} (default)"
        elif key == "input":
            shown = repr(value) if not value.isprintable() else value
        elif key == "candidates":
            shown = ", ".join(value) + (" (enforcing: a terminal is asked which)" if res.enforcing else
                                        " (tried in order)")
        elif key == "http_fallback":
            reason = http_fallback_reason(Reference(parts["domain"], parts["path"]), insecure)
            shown = f"{value} (if https fails: {reason})"
        else:
            shown = value
        lines.append(f"{label + ':':<{width}}{shown}")
    if parts["tag"] is not None and parts["digest"] is not None:
        lines.append(f"{'':<{width}}(a pull uses the digest; docker ignores the tag)")
    click.echo("\n".join(lines))
