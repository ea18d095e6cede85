"""`pallet image ref ...`: look inside an image reference.

`explain REF` shows how pallet (and docker) read a reference: its parts, the
full and the familiar name, and the registry URL a pull would fetch.

What `tag` is: the tag a pull would use. `busybox` has no tag written, and
docker pulls `latest`, so `tag` is `latest`. With a digest the digest decides
what is pulled: `busybox@sha256:…` has no tag (null), and `busybox:1.36@sha256:…`
shows the tag as written, but the API URL uses the digest (docker ignores the
tag then).
"""

from __future__ import annotations

import click

from pallet.reference import DEFAULT_TAG, Reference, normalize, parse_normalized_named


def explain(text: str) -> dict[str, str | None]:
    """The parts of ``text`` as `explain --format json` prints them."""
    normalize(text)  # validates with the error message docker gives
    written = parse_normalized_named(text)
    tag = written.tag if (written.tag is not None or written.digest is not None) else DEFAULT_TAG
    ref = Reference(written.domain, written.path, tag, written.digest)
    return {
        "input": text,
        "domain": ref.domain,
        "path": ref.path,
        "tag": ref.tag,
        "digest": ref.digest,
        "normalized": ref.name,
        "familiar": ref.familiar,
        "api_url": ref.api_url("manifests"),
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
    """
    parts = explain(ref)
    if fmt == "json":
        from pallet.cli.common import print_json

        print_json(parts)
        return
    written_tag = parse_normalized_named(ref).tag
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
        else:
            shown = value
        lines.append(f"{label + ':':<{width}}{shown}")
    if parts["tag"] is not None and parts["digest"] is not None:
        lines.append(f"{'':<{width}}(a pull uses the digest; docker ignores the tag)")
    click.echo("\n".join(lines))
