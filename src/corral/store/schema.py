"""The images area's tables in the shared database (area "images"; `corral.db.migrate`).

Version 1:
    images        one row per image; id = "sha256:<config digest>". `config` is a copy of the
                  verified config blob's JSON, so `corral images` is one query, no file reads.
                  `digest`/`manifest_media_type`: the manifest this store holds for it.
                  `size`: bytes of file content in its layers; `added`: unix time it arrived.
    image_names   "docker.io/library/busybox:latest" -> image id (a name points at one image).
    image_layers  the image's layers bottom first: chain id (the snapshot), diff id, and the
                  blob (digest, media type, size) as in its manifest.
Blobs and snapshots referenced by no row of image_layers/images are garbage (`gc`).
Add a migration at the end of MIGRATIONS to change anything; never edit a released one.
"""

from __future__ import annotations

AREA = "images"

MIGRATIONS: list[str] = [
    """
    CREATE TABLE images (
        id TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        manifest_media_type TEXT NOT NULL,
        config TEXT NOT NULL,
        created TEXT NOT NULL,
        size INTEGER NOT NULL,
        added REAL NOT NULL
    );
    CREATE TABLE image_names (
        name TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        added REAL NOT NULL
    );
    CREATE INDEX image_names_by_image ON image_names(image_id);
    CREATE TABLE image_layers (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        chain_id TEXT NOT NULL,
        diff_id TEXT NOT NULL,
        blob_digest TEXT NOT NULL,
        media_type TEXT NOT NULL,
        blob_size INTEGER NOT NULL,
        PRIMARY KEY (image_id, position)
    );
    CREATE INDEX image_layers_by_chain ON image_layers(chain_id);
    CREATE INDEX image_layers_by_blob ON image_layers(blob_digest)
    """,
]
