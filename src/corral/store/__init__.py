"""The local store: verified blobs (content), unpacked layers (snapshots), image records (db).

What containerd calls content + snapshots + metadata. Layout under `<root>/storage/`:

    blobs/sha256/<hex>      verified blobs (manifests, configs, layers as received)
    ingest/                 blobs being written (temp names; removed by gc)
    <driver>/<chain hex>/   one unpacked layer (overlay) or full tree (vfs), keyed by chain id
    <driver>/l/<short>      short links to overlay snapshots (keeps mount options short)
    <driver>/.tmp-*         snapshots being unpacked (removed by gc)
    locks/                  flock files
    driver                  which snapshot driver this store uses ("overlay" or "vfs")

Image records live in the shared SQLite database (`corral.store.schema`).
"""
