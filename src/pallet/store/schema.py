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
]
