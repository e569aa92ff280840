"""ImageService: the local images, as the CLI, `corral run` and the API see them.

The one library entry point of the images area (see /work/notes/IMAGES-INTERFACE.md): resolve a
name or id (`get`), list, tag, remove, prune, make the mounts of a container's rootfs, and add
images made here (built-in busybox, import, commit). Moving images in and out goes through
`copy()` with `LocalDestination` / `LocalSource` (corral.images.transports.local).
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # the C module, as corral.db uses it (no datetime import)
import builtins
import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence

from corral import db
from corral.config import Paths
from corral.errors import Conflict, InvalidArgument, NotFound
from corral.images import reference
from corral.records import NamedTuple
from corral.runtime import jsonio as json  # json's C scanner and encoder, without `re`
from corral.store import schema

TYPE_CHECKING = False  # not typing's: `corral run` and `corral images` do not import typing
if TYPE_CHECKING:
    from typing import IO, Any

    from corral.fsutil import StrPath
    from corral.images import manifest as mf
    from corral.store.content import ContentStore
    from corral.store.locks import StoreLocks
    from corral.store.snapshots import Driver, Mount
    from corral.store.streams import Reader

# Kept light on purpose: `corral images` and `corral run` import this module, so the content
# store, snapshots, manifests (and dataclasses/tempfile/datetime) are imported where used, and
# paths are strings joined with os.path (pathlib's imports cost ~5 ms; see corral.config).

__all__ = ["GCResult", "HistoryEntry", "Image", "ImageService", "Mount", "RemoveResult"]


def __getattr__(name: str) -> Any:
    """`Mount` (corral.store.snapshots.Mount) is re-exported lazily."""
    if name == "Mount":
        from corral.store.snapshots import Mount

        return Mount
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Image(NamedTuple):
    id: str  # "sha256:<config digest>"
    names: tuple[str, ...]  # full references: "docker.io/library/busybox:latest"
    config: Mapping[str, Any]  # the OCI image config JSON
    layers: tuple[str, ...]  # diff ids, bottom first
    created: str
    size: int  # bytes of file content in its layers
    digest: str = ""  # the manifest this store holds for it
    manifest_media_type: str = "application/vnd.oci.image.manifest.v1+json"
    added: float = 0.0  # when it arrived in this store (unix time)

    @property
    def short_id(self) -> str:
        return self.id[7:19]

    @property
    def chain_ids(self) -> tuple[str, ...]:
        from corral.store.snapshots import chain_ids

        return chain_ids(self.layers)

    @property
    def labels(self) -> Mapping[str, str]:
        labels: Mapping[str, str] = (self.config.get("config") or {}).get("Labels") or {}
        return labels


class HistoryEntry(NamedTuple):
    id: str  # the image id for the top entry, "<missing>" below (as docker)
    created: str
    created_by: str
    size: int
    comment: str
    empty_layer: bool


class GCResult:
    def __init__(self) -> None:
        self.blobs: list[str] = []
        self.snapshots: list[str] = []
        self.reclaimed = 0


class RemoveResult:
    def __init__(self) -> None:
        self.untagged: list[str] = []  # full names
        self.deleted: list[str] = []  # image id, then the layers collected
        self.reclaimed = 0


def _now() -> float:
    import time

    return time.time()


def now_rfc3339() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ImageService:
    def __init__(self, paths: Paths, conn: sqlite3.Connection | None = None) -> None:
        """`conn`: a connection to the engine's database to share (the containers engine's:
        one connection per command, not one per area); otherwise the service opens its own."""
        self.paths = paths
        self.storage = os.path.join(paths.root, "storage")
        self._content: ContentStore | None = None
        self._locks: StoreLocks | None = None
        self._driver: Driver | None = None
        self._conn = conn
        self._owns_conn = conn is None
        self._migrated = False

    # -- plumbing ------------------------------------------------------------------------
    @property
    def content(self) -> ContentStore:
        if self._content is None:
            from corral.store.content import ContentStore

            self._content = ContentStore(self.storage)
        return self._content

    @property
    def locks(self) -> StoreLocks:
        if self._locks is None:
            from corral.store.locks import StoreLocks

            self._locks = StoreLocks(self.storage)
        return self._locks

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            from corral.store.snapshots import open_driver

            self._driver = open_driver(self.storage)
        return self._driver

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = db.connect(self.paths.database)
        if not self._migrated:
            db.migrate(self._conn, schema.AREA, schema.MIGRATIONS)
            self._migrated = True
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._conn is not None and self._owns_conn:
            self._conn.close()
            self._conn = None
            self._migrated = False

    # -- reading -------------------------------------------------------------------------
    _SELECT = ("SELECT i.*, (SELECT group_concat(n.name, char(10)) FROM "
               "(SELECT name FROM image_names WHERE image_id = i.id ORDER BY added, name) n) "
               "AS names FROM images i")

    def _rows(self, where: str = "", args: Sequence[Any] = ()) -> builtins.list[Image]:
        rows = self.conn.execute(f"{self._SELECT} {where}", args).fetchall()
        return [self._image(r) for r in rows]

    @staticmethod
    def _image(r: sqlite3.Row) -> Image:
        config = json.loads(r["config"])
        names = tuple(r["names"].split("\n")) if r["names"] else ()
        diff_ids = tuple(config.get("rootfs", {}).get("diff_ids", ()))
        return Image(r["id"], names, config, diff_ids, r["created"], r["size"],
                     r["digest"], r["manifest_media_type"], r["added"])

    def list(self) -> list[Image]:
        """Every image, newest first (docker's order)."""
        return self._rows("ORDER BY i.created DESC, i.added DESC")

    def get(self, name_or_id: str) -> Image:
        """Resolve as docker does: a name (short or full), `name@digest`, a full or short id."""
        text = name_or_id
        if text.startswith("sha256:") and len(text) == 71:
            found = self._rows("WHERE i.id = ?", (text,))
            if found:
                return found[0]
        ref = None
        with contextlib.suppress(InvalidArgument):
            ref = reference.parse(text)
        if ref is not None:
            if ref.digest:
                found = self._rows("WHERE i.digest = ? OR i.id = ?", (ref.digest, ref.digest))
            else:
                found = self._rows("WHERE i.id = (SELECT image_id FROM image_names WHERE name = ?)",
                                   (str(ref),))
            if found:
                return found[0]
        if reference.looks_like_id(text):
            prefix = text if text.startswith("sha256:") else "sha256:" + text
            found = self._rows("WHERE i.id >= ? AND i.id < ?", (prefix, prefix + "g"))
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise Conflict(f"multiple IDs found with provided prefix: {text}")
        raise NotFound(f"No such image: {text}")

    def by_id(self, image_id: str) -> Image | None:
        """The image with this full id, if the store has it."""
        found = self._rows("WHERE i.id = ?", (image_id,))
        return found[0] if found else None

    def exists(self, name_or_id: str) -> bool:
        try:
            self.get(name_or_id)
        except NotFound:
            return False
        return True

    def layer_records(self, image: Image) -> builtins.list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM image_layers WHERE image_id = ? ORDER BY position", (image.id,)).fetchall()

    def manifest(self, image: Image) -> mf.Manifest:
        from corral.images import manifest as mf

        return mf.parse_manifest(self.content.read(image.digest), image.manifest_media_type)

    def history(self, image: Image) -> builtins.list[HistoryEntry]:
        """`docker history`: newest first; each non-empty entry owns the next layer's size."""
        sizes = [self.driver.info(c).size if self.driver.exists(c) else 0 for c in image.chain_ids]
        entries = []
        layer = 0
        for h in image.config.get("history") or []:
            empty = bool(h.get("empty_layer"))
            size = 0
            if not empty and layer < len(sizes):
                size = sizes[layer]
                layer += 1
            entries.append(HistoryEntry("<missing>", h.get("created", ""), h.get("created_by", ""),
                                        size, h.get("comment", ""), empty))
        if not entries:  # an image without history: one entry per layer
            entries = [HistoryEntry("<missing>", image.created, "", s, "", False) for s in sizes]
        entries.reverse()
        if entries:
            top = entries[0]
            entries[0] = HistoryEntry(image.id, top.created, top.created_by, top.size, top.comment,
                                      top.empty_layer)
        return entries

    # -- writing records -------------------------------------------------------------------
    def record_image(self, image_id: str, digest: str, media_type: str, config: Mapping[str, Any],
                     manifest: mf.Manifest, chain_ids: Sequence[str], names: Sequence[str]) -> None:
        """Make an image visible: its blobs and snapshots are in place (LocalDestination)."""
        size = sum(self.driver.info(c).size for c in chain_ids)
        diff_ids = config["rootfs"]["diff_ids"]
        now = _now()
        full_names = [str(reference.parse(n)) for n in names]
        with self._transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO images (id, digest, manifest_media_type, config, created, "
                "size, added) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (image_id, digest, media_type, json.dumps(config), str(config.get("created", "")),
                 size, now))
            if cur.rowcount:
                conn.executemany(
                    "INSERT INTO image_layers (image_id, position, chain_id, diff_id, blob_digest, "
                    "media_type, blob_size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(image_id, i, chain_ids[i], diff_ids[i], d.digest, d.media_type, d.size)
                     for i, d in enumerate(manifest.layers)])
            for name in full_names:
                self._set_name(conn, name, image_id, now)

    @staticmethod
    def _set_name(conn: sqlite3.Connection, name: str, image_id: str, now: float) -> None:
        conn.execute(
            "INSERT INTO image_names (name, image_id, added) VALUES (?, ?, ?) ON CONFLICT(name) "
            "DO UPDATE SET image_id = excluded.image_id, added = excluded.added "
            "WHERE image_id != excluded.image_id", (name, image_id, now))

    def tag(self, source: str, target: str) -> str:
        """`docker tag SOURCE TARGET`; returns the full new name."""
        image = self.get(source)
        ref = reference.parse(target)
        if ref.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
        with self._transaction() as conn:
            self._set_name(conn, str(ref), image.id, _now())
        return str(ref)

    def _users(self) -> Mapping[str, Sequence[str]]:
        """image id -> ids of containers using it, from the containers area if it is present."""
        import importlib

        try:
            module = importlib.import_module("corral.containers.usage")
        except ImportError:
            return {}
        users: Mapping[str, Sequence[str]] = module.image_users(self.paths)
        return users

    def remove(self, name_or_id: str, *, force: bool = False) -> RemoveResult:
        """`docker rmi`: untag a name, delete the image when no name and no container holds it."""
        image = self.get(name_or_id)
        users = list(self._users().get(image.id, ()))
        by_name = None
        with contextlib.suppress(InvalidArgument):
            ref = reference.parse(name_or_id)
            if str(ref) in image.names:
                by_name = str(ref)
        result = RemoveResult()
        if by_name is not None and (len(image.names) > 1 or not users or force):
            to_untag = [by_name]
        elif by_name is not None:
            raise Conflict(f'conflict: unable to remove repository reference "{name_or_id}" '
                           f"(must force) - container {users[0][:12]} is using its referenced "
                           f"image {image.short_id}")
        else:
            if len(image.names) > 1 and not force:
                raise Conflict(f"conflict: unable to delete {image.short_id} (must be forced) - "
                               "image is referenced in multiple repositories")
            if users and not force:
                raise Conflict(f"conflict: unable to delete {image.short_id} (must be forced) - "
                               f"image is being used by container {users[0][:12]}")
            to_untag = list(image.names)
        with self._transaction() as conn:
            conn.executemany("DELETE FROM image_names WHERE name = ? AND image_id = ?",
                             [(n, image.id) for n in to_untag])
            result.untagged = to_untag
            left = conn.execute("SELECT count(*) FROM image_names WHERE image_id = ?",
                                (image.id,)).fetchone()[0]
            if left == 0 and not users:
                conn.execute("DELETE FROM images WHERE id = ?", (image.id,))
                result.deleted.append(image.id)
        if result.deleted:
            with self.locks.try_gc() as got:
                if got:  # else a load is running: its lock keeps gc out, prune collects later
                    gc = self._collect()
                    result.deleted += [c for c in reversed(image.chain_ids) if c in gc.snapshots]
                    result.reclaimed = gc.reclaimed
        return result

    def prune(self, *, all_images: bool = False,
              selected: Callable[[Image], bool] | None = None) -> RemoveResult:
        """`docker image prune [-a] [--filter]`: dangling (or all unused) images that
        `selected` accepts, then garbage."""
        users = self._users()
        result = RemoveResult()
        for image in self.list():
            if image.id in users or (image.names and not all_images):
                continue
            if selected is not None and not selected(image):
                continue
            with self._transaction() as conn:
                conn.execute("DELETE FROM images WHERE id = ?", (image.id,))
            result.untagged += image.names
            result.deleted.append(image.id)
        result.reclaimed = self.gc().reclaimed
        return result

    def forget_images(self, image_ids: Sequence[str]) -> None:
        """Drop image records (and their names) without asking: `check --repair` uses it for
        images whose content is damaged."""
        with self._transaction() as conn:
            conn.executemany("DELETE FROM images WHERE id = ?", [(i,) for i in image_ids])

    def check(self, *, repair: bool = False) -> builtins.list[str]:
        """`system check [--repair]` for the image store (corral.images.check)."""
        from corral.images.check import check_store

        return check_store(self, repair=repair)

    def gc(self) -> GCResult:
        """Delete blobs and snapshots no image references (waits for running loads/pulls).

        `system prune` calls this too."""
        with self.locks.gc():
            return self._collect()

    def _collect(self) -> GCResult:
        self.content.clean_ingest()
        self.driver.clean_temp()
        conn = self.conn
        blobs = {r[0] for r in conn.execute(
            "SELECT id FROM images UNION SELECT digest FROM images "
            "UNION SELECT blob_digest FROM image_layers")}
        chains = {r[0] for r in conn.execute("SELECT chain_id FROM image_layers")}
        result = GCResult()
        for digest in list(self.content.digests()):
            if digest not in blobs:
                with contextlib.suppress(NotFound):
                    result.reclaimed += self.content.size(digest)
                self.content.delete(digest)
                result.blobs.append(digest)
        for chain in list(self.driver.chain_ids()):
            if chain not in chains:
                with contextlib.suppress(OSError, ValueError, KeyError):
                    result.reclaimed += self.driver.info(chain).size
                self.driver.remove(chain)
                result.snapshots.append(chain)
        return result

    # -- containers ----------------------------------------------------------------------
    def rootfs_mounts(self, image: Image, upper: StrPath, work: StrPath) -> builtins.list[Mount]:
        """The mounts of a container's rootfs (overlay of the image's layers + `upper`, or a
        bind of a fresh copy with the vfs driver). Describes; does not mount."""
        if self.driver.name == "overlay":
            os.makedirs(upper, exist_ok=True)
            os.makedirs(work, exist_ok=True)
        return self.driver.mounts(image.chain_ids, upper, work)

    # -- images made here ----------------------------------------------------------------
    def ensure_builtin_busybox(self) -> Image:
        """The offline busybox image (docker.io/library/busybox:latest), made if missing."""
        with contextlib.suppress(NotFound):
            return self.get(BUSYBOX_NAME)
        from corral.images import builtin

        return builtin.make_busybox_image(self, BUSYBOX_NAME)

    def add_layer_image(self, config: dict[str, Any], *, parent: Image | None,
                        layer: tuple[StrPath, str] | None, names: Sequence[str] = ()) -> Image:
        """Store an image whose layers are `parent`'s plus `layer` (a plain tar file and its
        digest); `config` is the full image config except rootfs, which is filled in here."""
        from corral.images import manifest as mf
        from corral.images.copy import copy
        from corral.images.transports.files import FilesSource
        from corral.images.transports.local import LocalDestination

        base_layers: builtins.list[mf.Descriptor] = []
        diffs = list(parent.layers) if parent else []
        if parent is not None:
            base_layers = [mf.Descriptor(r["media_type"], r["blob_digest"], r["blob_size"])
                           for r in self.layer_records(parent)]
            base_layers = [_to_oci_layer(d) for d in base_layers]
        blobs: dict[str, StrPath | bytes] = {}
        layers = list(base_layers)
        if layer is not None:
            path, digest = layer
            layers.append(mf.Descriptor(mf.OCI_LAYER, digest, os.stat(path).st_size))
            diffs.append(digest)
            blobs[digest] = path
        config = dict(config)
        config["rootfs"] = {"type": "layers", "diff_ids": diffs}
        import json as canonical  # sorted and compact: a reproducible digest

        config_raw = canonical.dumps(config, separators=(",", ":"), sort_keys=True).encode()
        config_desc = mf.Descriptor(mf.OCI_CONFIG, _sha256(config_raw), len(config_raw))
        blobs[config_desc.digest] = config_raw
        manifest = mf.Manifest(mf.OCI_MANIFEST, config_desc, tuple(layers))
        src = FilesSource(manifest.to_bytes(), mf.OCI_MANIFEST, blobs)
        with LocalDestination(self) as dst:
            result = copy(src, dst, names=names)
        return self.get(result.image_id)

    def import_tar(self, stream: Reader, *, changes: Mapping[str, Any] | None = None,
                   message: str = "", source: str = "-", names: Sequence[str] = (),
                   platform: mf.Platform | None = None) -> Image:
        """`docker import`: a rootfs tarball (plain or compressed) becomes a one-layer image
        (of `platform`, default this machine's)."""
        from corral.images.manifest import host_platform
        from corral.store.streams import PeekReader, decompress, detect_compression

        peek = PeekReader(stream)
        plain = decompress(peek, detect_compression(peek.peek(6)))
        with self.locks.writers(), self._temp_file("import-") as path:
            with open(path, "wb") as f:
                digest = _copy_hashing(plain, f)
            now = now_rfc3339()
            config: dict[str, Any] = {
                **(platform or host_platform()).to_json(), "created": now,
                "config": dict(changes or {}),
                "history": [{"created": now, "comment": message or f"Imported from {source}"}],
            }
            return self.add_layer_image(config, parent=None, layer=(path, digest), names=names)

    def commit(self, parent: Image | None, upper: StrPath, config: Mapping[str, Any], *,
               message: str = "", author: str = "", tags: Sequence[str] = ()) -> Image:
        """A new image: `parent` plus a layer made from the overlay upper dir `upper`;
        `config` is the new image's runtime config (Env, Cmd, Entrypoint, ...)."""
        from corral.images.manifest import host_platform
        from corral.store.pack import pack_dir

        now = now_rfc3339()
        base: dict[str, Any] = dict(parent.config) if parent else {
            "architecture": host_platform().architecture, "os": "linux"}
        history = [*base.get("history", []),
                   {k: v for k, v in (("created", now), ("author", author),
                                      ("comment", message)) if v}]
        base.update({"created": now, "config": dict(config), "history": history})
        if author:
            base["author"] = author
        with self.locks.writers(), self._temp_file("commit-") as path:
            with open(path, "wb") as f:
                pack_dir(upper, f, overlay_whiteouts=True)
            with open(path, "rb") as f:
                digest = _copy_hashing(f, None)
            return self.add_layer_image(base, parent=parent, layer=(path, digest), names=tags)

    @contextlib.contextmanager
    def _temp_file(self, prefix: str) -> Iterator[str]:
        import tempfile

        os.makedirs(self.content.ingest_dir, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.content.ingest_dir, prefix=prefix)
        os.close(fd)
        try:
            yield name
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)


BUSYBOX_NAME = "docker.io/library/busybox:latest"


def _sha256(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _copy_hashing(src: Reader, dst: IO[bytes] | None) -> str:
    import hashlib

    h = hashlib.sha256()
    while chunk := src.read(1 << 20):
        h.update(chunk)
        if dst is not None:
            dst.write(chunk)
    return "sha256:" + h.hexdigest()


def _to_oci_layer(d: mf.Descriptor) -> mf.Descriptor:
    from corral.images import manifest as mf

    m = mf.convert_manifest(mf.Manifest(mf.DOCKER_MANIFEST, d, (d,)), mf.OCI_MANIFEST)
    return m.layers[0]
