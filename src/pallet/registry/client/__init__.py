"""OCI distribution client: pull, push, tags, login against any OCI/Docker v2 registry.

Modules, each one concern:

- `settings`  -- `pallet.toml` registry settings (mirrors, insecure registries)
- `auth`      -- credentials (--creds, containers auth.json, docker config.json and its
                 credential helpers), WWW-Authenticate challenges, bearer tokens
- `transport` -- `Registry`: one registry host over httpx (HTTP/2 where offered, pooled,
                 streamed), TLS setup, https→http fallback for insecure registries,
                 auth, retries with backoff, redirects
- `platforms` -- choosing a manifest from an index (containerd's matching rules)
- `pull`      -- manifests and blobs into the store, verified while streaming
- `push`      -- blobs (HEAD, mount, monolithic or chunked upload) and manifests

Only commands that talk to a registry import this package (httpx is heavy).
"""

import sys as _sys
import types as _types

# httpx's package init imports its command-line tool (click, rich, pygments: ~0.15 s) unless
# that import fails; pallet never uses it, so let it fail.
if "httpx" not in _sys.modules:
    _sys.modules.setdefault("httpx._main", _types.ModuleType("httpx._main"))
