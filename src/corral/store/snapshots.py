"""Unpacked layers, keyed by chain id, and the mounts that stack them (containerd's snapshotters).

Two drivers pass one conformance suite (tests/images/test_snapshots.py):
- `overlay`: each layer unpacked alone into `overlay/<chain hex>/fs` with OCI whiteouts turned into
  overlayfs ones; a container's rootfs is an overlay mount with those dirs as lowerdirs (topmost
  first, through short links `overlay/l/<id>` so 100+ layers fit in one page of mount options).
- `vfs` (copy): each snapshot is the full tree (parent's tree copied, layer applied with whiteouts
  as deletions); a container gets a fresh copy, bind-mounted. For where overlay cannot be used.

Drivers return mount descriptions; they never mount. Unpacking is atomic: into `.tmp-*`, then
`finish()` (the caller's verification of digests) and only then a rename into place.

Paths are strings joined with os.path (no pathlib, which costs `corral run` ~5 ms of imports):
`corral run` opens the driver and asks it for mounts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence

from corral.errors import CorralError, InvalidArgument
from corral.records import NamedTuple
from corral.runtime import jsonio as json  # json's C scanner and encoder, without `re`
from corral.store.locks import StoreLocks

TYPE_CHECKING = False  # not typing's: `corral run` does not import typing
if TYPE_CHECKING:  # the extractor is imported where a layer is unpacked, not by `corral run`
    from corral.fsutil import StrPath
    from corral.store.extract import Whiteouts
    from corral.store.streams import Reader

_SHORT_ID_LEN = 16  # 64 bits of the chain id; a clash is detected, never silently mounted
_MOUNT_DATA_MAX = 4095  # mount(2) takes one page of options


def chain_ids(diffs: Sequence[str]) -> tuple[str, ...]:
    """The OCI chain ids: ChainID(L0)=DiffID(L0), ChainID(Ln)=sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    if TYPE_CHECKING:
        from hashlib import sha256
    else:  # every `corral run` computes these: the built-in module, not OpenSSL's start-up (~2 ms)
        from _sha256 import sha256

    out: list[str] = []
    for d in diffs:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return tuple(out)


class Mount(NamedTuple):
    type: str
    source: str
    options: tuple[str, ...]
    destination: str = "/"


class SnapshotInfo(NamedTuple):
    chain_id: str
    diff_id: str
    size: int  # bytes of file content unpacked
    entries: int


class Driver:
    name = ""
    whiteouts: Whiteouts = "overlay"
    independent_layers = True  # may layers be unpacked in any order (in parallel)?

    def __init__(self, storage: StrPath) -> None:
        self.root = os.path.join(storage, self.name)
        self.locks = StoreLocks(storage)

    def _dir(self, chain_id: str) -> str:
        return os.path.join(self.root, chain_id[7:])

    def path(self, chain_id: str) -> str:
        """The directory holding this snapshot's files."""
        return os.path.join(self._dir(chain_id), "fs")

    def exists(self, chain_id: str) -> bool:
        return os.path.exists(os.path.join(self._dir(chain_id), "meta.json"))

    def info(self, chain_id: str) -> SnapshotInfo:
        with open(os.path.join(self._dir(chain_id), "meta.json"), "rb") as f:
            meta = json.loads(f.read())
        return SnapshotInfo(chain_id, meta["diff_id"], meta["size"], meta["entries"])

    def unpack(self, chain_id: str, parent: str | None, diff_id: str, layer: Reader,
               finish: Callable[[], None]) -> SnapshotInfo:
        """Unpack the tar `layer` as snapshot `chain_id` (on `parent`), unless it exists.

        `finish` runs after extraction and before the snapshot becomes visible: it verifies the
        stream (digests) and raises to abandon the snapshot.
        """
        from corral.store.extract import extract

        os.makedirs(self.root, exist_ok=True)
        with self.locks.snapshot(chain_id):
            if self.exists(chain_id):
                finish()
                return self.info(chain_id)
            import tempfile  # here, not at import: `corral run` looks snapshots up, never unpacks

            tmp = tempfile.mkdtemp(dir=self.root, prefix=".tmp-")
            try:
                fs = os.path.join(tmp, "fs")
                self.prepare(fs, parent)
                stats = extract(layer, fs, whiteouts=self.whiteouts)
                finish()
                meta = {"diff_id": diff_id, "parent": parent, "size": stats.bytes,
                        "entries": stats.entries}
                with open(os.path.join(tmp, "meta.json"), "w") as f:
                    f.write(json.dumps(meta))
                os.rename(tmp, self._dir(chain_id))
            except BaseException:
                _remove_tree(tmp)
                raise
            self.published(chain_id)
            return SnapshotInfo(chain_id, diff_id, stats.bytes, stats.entries)

    def prepare(self, fs: str, parent: str | None) -> None:
        os.mkdir(fs)

    def published(self, chain_id: str) -> None:
        """Hook after a snapshot is renamed into place."""

    def mounts(self, chain_ids: Sequence[str], upper: StrPath, work: StrPath) -> list[Mount]:
        raise NotImplementedError

    def remove(self, chain_id: str) -> None:
        d = self._dir(chain_id)
        doomed = os.path.join(self.root, f".tmp-rm-{chain_id[7:]}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(d, doomed)  # gone at once, deleted below
        _remove_tree(doomed)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.locks.snapshot_file(chain_id))

    def chain_ids(self) -> Iterator[str]:
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.root):
                if len(name) == 64:
                    yield "sha256:" + name

    def clean_temp(self) -> None:
        """Remove snapshots left half-unpacked by a killed command (gc lock held)."""
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.root):
                if name.startswith(".tmp-"):
                    _remove_tree(os.path.join(self.root, name))


class OverlayDriver(Driver):
    name = "overlay"
    whiteouts: Whiteouts = "overlay"
    independent_layers = True

    def _short(self, chain_id: str) -> str:
        return os.path.join(self.root, "l", chain_id[7:7 + _SHORT_ID_LEN])

    def published(self, chain_id: str) -> None:
        link = self._short(chain_id)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.symlink(self._link_target(chain_id), link)

    @staticmethod
    def _link_target(chain_id: str) -> str:
        return f"../{chain_id[7:]}/fs"

    def mounts(self, chain_ids: Sequence[str], upper: StrPath, work: StrPath) -> list[Mount]:
        lowers = []
        for chain_id in reversed(chain_ids):
            if not self.exists(chain_id):
                raise InvalidArgument(f"layer {chain_id} is missing from the store")
            link = self._short(chain_id)
            if not os.path.islink(link):
                self.published(chain_id)
            if os.readlink(link) != self._link_target(chain_id):
                raise CorralError(f"layer {chain_id}: its short link {link} names another layer")
            lowers.append(link)
        if not lowers:
            empty = os.path.join(self.root, "empty")
            os.makedirs(empty, exist_ok=True)
            lowers.append(empty)
        options = (f"lowerdir={':'.join(lowers)}", f"upperdir={os.fspath(upper)}",
                   f"workdir={os.fspath(work)}")
        if len(",".join(options)) > _MOUNT_DATA_MAX:
            raise InvalidArgument(f"an image of {len(chain_ids)} layers does not fit one overlay "
                                  f"mount under {self.root} (a page of mount options); use a "
                                  "shorter CORRAL_ROOT or the vfs driver")
        return [Mount("overlay", "overlay", options)]

    def remove(self, chain_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._short(chain_id))
        super().remove(chain_id)

    def clean_temp(self) -> None:
        """Also drop short links whose snapshot is gone (a command killed mid-remove)."""
        super().clean_temp()
        links = os.path.join(self.root, "l")
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(links):
                link = os.path.join(links, name)
                if not os.path.exists(link):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(link)


class CopyDriver(Driver):
    name = "vfs"
    whiteouts: Whiteouts = "delete"
    independent_layers = False

    def prepare(self, fs: str, parent: str | None) -> None:
        if parent is None:
            os.mkdir(fs)
            return
        if not self.exists(parent):
            raise InvalidArgument(f"parent layer {parent} is missing from the store")
        copy_tree(self.path(parent), fs)

    def mounts(self, chain_ids: Sequence[str], upper: StrPath, work: StrPath) -> list[Mount]:
        """Copies the image's tree into `upper` (which must not exist yet) and binds it."""
        upper = os.fspath(upper)
        if chain_ids:
            copy_tree(self.path(chain_ids[-1]), upper)
        else:
            os.makedirs(upper)
        return [Mount("bind", upper, ("rbind", "rw"))]


def _remove_tree(path: str) -> None:
    from corral.store.extract import remove_tree

    remove_tree(path)


def copy_tree(src: str, dst: str) -> None:
    """A faithful copy (owners, modes, xattrs, hardlinks, devices, times), reflinked if possible."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    import subprocess

    result = subprocess.run(["cp", "-a", "--reflink=auto", "--", src, dst],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise CorralError(f"copying {src} to {dst}: {result.stderr.strip()}")


DRIVERS: dict[str, type[Driver]] = {"overlay": OverlayDriver, "vfs": CopyDriver}


def overlay_supported() -> bool:
    try:
        with open("/proc/filesystems") as f:
            return any(line.split()[-1] == "overlay" for line in f if line.strip())
    except OSError:
        return False


def open_driver(storage: StrPath) -> Driver:
    """The store's driver: fixed at the store's creation (`CORRAL_STORAGE_DRIVER` or the best
    the kernel offers), recorded in `<storage>/driver`."""
    record = os.path.join(storage, "driver")
    try:
        with open(record) as f:
            name = f.read().strip()
    except FileNotFoundError:
        name = os.environ.get("CORRAL_STORAGE_DRIVER") or (
            "overlay" if overlay_supported() and os.geteuid() == 0 else "vfs")
        if name not in DRIVERS:
            raise InvalidArgument(f"unknown storage driver {name!r} (overlay, vfs)") from None
        from corral.fsutil import atomic_write

        atomic_write(record, name.encode() + b"\n")
    if name not in DRIVERS:
        raise InvalidArgument(f"{record}: unknown storage driver {name!r}")
    return DRIVERS[name](storage)
