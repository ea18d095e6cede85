"""The OCI distribution-spec v1.1 registry server behind `pallet registry serve`.

`storage` holds blobs, manifests, tags, referrers and upload sessions behind an
interface (filesystem driver first); `app` is the aiohttp application speaking
the HTTP API; `auth` checks htpasswd Basic and bearer-token credentials; `gc`
marks and sweeps; `serve` runs workers, logs and drains on SIGTERM.
"""
