"""The SQLite schema, as an ordered list of uniquely named migrations.

Each part of pallet that keeps metadata appends its own migrations here (never
edit one that has shipped; add a new one). `Database` applies, in order, those
not yet recorded in the `migrations` table.
"""

MIGRATIONS: list[tuple[str, str]] = [
    ("images-1", """
        CREATE TABLE images (
            id TEXT PRIMARY KEY,                 -- config digest (docker's image ID)
            manifest_digest TEXT NOT NULL,       -- the manifest kept for this image
            manifest_media_type TEXT NOT NULL,
            size INTEGER NOT NULL,               -- uncompressed size of all layers, bytes
            created TEXT,                        -- the config's `created`
            added REAL NOT NULL                  -- when it entered this store (unix time)
        );
        CREATE TABLE tags (
            name TEXT PRIMARY KEY,               -- full normalized reference, e.g. docker.io/library/busybox:latest
            image_id TEXT NOT NULL REFERENCES images(id),
            target_digest TEXT                   -- manifest or index digest the tag named when stored
        );
        CREATE INDEX tags_image ON tags(image_id);
        CREATE TABLE repo_digests (
            repo TEXT NOT NULL,                  -- full repository name, e.g. docker.io/library/busybox
            digest TEXT NOT NULL,                -- manifest (or index) digest
            image_id TEXT NOT NULL REFERENCES images(id),
            PRIMARY KEY (repo, digest)
        );
        CREATE INDEX repo_digests_image ON repo_digests(image_id);
    """),
    ("layer-blobs-1", """
        CREATE TABLE layer_blobs (
            digest TEXT PRIMARY KEY,             -- a layer blob as stored (compressed or not)
            diff_id TEXT NOT NULL,               -- sha256 of its uncompressed tar stream
            size INTEGER NOT NULL                -- uncompressed size, bytes
        );
        CREATE INDEX layer_blobs_diff_id ON layer_blobs(diff_id);
    """),
    ("containers-1", """
        CREATE TABLE containers (
            id TEXT PRIMARY KEY,                 -- 64 hex digits
            name TEXT NOT NULL UNIQUE,           -- without docker's leading '/'
            image_id TEXT NOT NULL,              -- config digest of the image it was created from
            image_name TEXT NOT NULL,            -- the image as the user named it
            created REAL NOT NULL,
            runtime TEXT NOT NULL,               -- pallet | runc | crun | a path
            config TEXT NOT NULL,                -- docker-shaped JSON: {"Config": ..., "HostConfig": ...}
            status TEXT NOT NULL,                -- created | running | stopping | exited | removing
            pid INTEGER,                         -- container init (host pid) while running
            pid_start INTEGER,                   -- its start time in clock ticks (guards against pid reuse)
            monitor_pid INTEGER,
            monitor_start INTEGER,
            exit_code INTEGER,
            started_at REAL,
            finished_at REAL,
            oom_killed INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            restart_count INTEGER NOT NULL DEFAULT 0,
            stopped_by_user INTEGER NOT NULL DEFAULT 0   -- for restart policies (unless-stopped)
        );
        CREATE INDEX containers_image ON containers(image_id)
    """),
    ("volumes-1", """
        CREATE TABLE volumes (
            name TEXT PRIMARY KEY,               -- a volume name, or 64 hex digits for an anonymous one
            driver TEXT NOT NULL DEFAULT 'local',
            created REAL NOT NULL,
            labels TEXT NOT NULL DEFAULT '{}',
            options TEXT NOT NULL DEFAULT '{}',
            anonymous INTEGER NOT NULL DEFAULT 0
        )
    """),
    # docker's State.Health as JSON (no comment inside: SQLite copies the column text into the schema)
    ("containers-health-1", "ALTER TABLE containers ADD COLUMN health TEXT"),
    # networks (pallet.network): a network's IPAM config and driver data, and one lease per attached container
    ("networks-1", """
        CREATE TABLE networks (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            driver TEXT NOT NULL,
            created REAL NOT NULL,
            subnet TEXT,
            gateway TEXT,
            ip_range TEXT,
            bridge TEXT UNIQUE,
            internal INTEGER NOT NULL DEFAULT 0,
            ipv6 INTEGER NOT NULL DEFAULT 0,
            labels TEXT NOT NULL DEFAULT '{}',
            options TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE network_leases (
            network_id TEXT NOT NULL REFERENCES networks(id),
            address TEXT NOT NULL,
            container_id TEXT NOT NULL,
            name TEXT NOT NULL,
            mac TEXT NOT NULL,
            ifname TEXT NOT NULL,
            container_ifname TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (network_id, address),
            UNIQUE (network_id, container_id)
        );
        CREATE INDEX network_leases_container ON network_leases(container_id)
    """),
    # a network's DNS server (pallet.network.dns): on or off per network; a lease's names and the
    # upstream resolvers of that container (--dns)
    ("networks-dns-1", """
        ALTER TABLE networks ADD COLUMN dns INTEGER NOT NULL DEFAULT 1;
        UPDATE networks SET dns = 0 WHERE name IN ('bridge', 'host', 'none');
        ALTER TABLE network_leases ADD COLUMN dns_names TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE network_leases ADD COLUMN dns_servers TEXT NOT NULL DEFAULT '[]'
    """),
    # a network's IPv6 subnet and gateway (network create --ipv6) and a lease's IPv6 address
    ("networks-ipv6-1", """
        ALTER TABLE networks ADD COLUMN subnet6 TEXT;
        ALTER TABLE networks ADD COLUMN gateway6 TEXT;
        ALTER TABLE network_leases ADD COLUMN address6 TEXT;
        CREATE UNIQUE INDEX network_leases_address6 ON network_leases(network_id, address6) WHERE address6 IS NOT NULL
    """),
]
