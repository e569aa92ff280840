"""Unpacked layers, keyed by chain id, and the mounts that stack them (containerd's snapshotters).

Two drivers pass one conformance suite (tests/images/test_snapshots.py):
- `overlay`: each layer unpacked alone into `overlay/<chain hex>/fs` with OCI whiteouts turned into
  overlayfs ones; a container's rootfs is an overlay mount with those dirs as lowerdirs (topmost
  first, through short links `overlay/l/<id>` so 100+ layers fit in one page of mount options).
- `vfs` (copy): each snapshot is the full tree (parent's tree copied, layer applied with whiteouts
  as deletions); a container gets a fresh copy, bind-mounted. For where overlay cannot be used.

Drivers return mount descriptions; they never mount. Unpacking is atomic: into `.tmp-*`, then
`finish()` (the caller's verification of digests) and only then a rename into place.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from corral.errors import CorralError, InvalidArgument
from corral.records import NamedTuple
from corral.runtime import jsonio as json  # json's C scanner and encoder, without `re`
from corral.store.locks import StoreLocks

TYPE_CHECKING = False  # not typing's: `corral run` does not import typing
if TYPE_CHECKING:  # the extractor is imported where a layer is unpacked, not by `corral run`
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

    def __init__(self, storage: Path) -> None:
        self.root = storage / self.name
        self.locks = StoreLocks(storage)

    def _dir(self, chain_id: str) -> Path:
        return self.root / chain_id[7:]

    def path(self, chain_id: str) -> Path:
        """The directory holding this snapshot's files."""
        return self._dir(chain_id) / "fs"

    def exists(self, chain_id: str) -> bool:
        return os.path.exists(self._dir(chain_id) / "meta.json")

    def info(self, chain_id: str) -> SnapshotInfo:
        meta = json.loads((self._dir(chain_id) / "meta.json").read_bytes())
        return SnapshotInfo(chain_id, meta["diff_id"], meta["size"], meta["entries"])

    def unpack(self, chain_id: str, parent: str | None, diff_id: str, layer: Reader,
               finish: Callable[[], None]) -> SnapshotInfo:
        """Unpack the tar `layer` as snapshot `chain_id` (on `parent`), unless it exists.

        `finish` runs after extraction and before the snapshot becomes visible: it verifies the
        stream (digests) and raises to abandon the snapshot.
        """
        from corral.store.extract import extract

        self.root.mkdir(parents=True, exist_ok=True)
        with self.locks.snapshot(chain_id):
            if self.exists(chain_id):
                finish()
                return self.info(chain_id)
            import tempfile  # here, not at import: `corral run` looks snapshots up, never unpacks

            tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".tmp-"))
            try:
                fs = tmp / "fs"
                self.prepare(fs, parent)
                stats = extract(layer, fs, whiteouts=self.whiteouts)
                finish()
                meta = {"diff_id": diff_id, "parent": parent, "size": stats.bytes,
                        "entries": stats.entries}
                (tmp / "meta.json").write_text(json.dumps(meta))
                os.rename(tmp, self._dir(chain_id))
            except BaseException:
                _remove_tree(tmp)
                raise
            self.published(chain_id)
            return SnapshotInfo(chain_id, diff_id, stats.bytes, stats.entries)

    def prepare(self, fs: Path, parent: str | None) -> None:
        fs.mkdir()

    def published(self, chain_id: str) -> None:
        """Hook after a snapshot is renamed into place."""

    def mounts(self, chain_ids: Sequence[str], upper: Path, work: Path) -> list[Mount]:
        raise NotImplementedError

    def remove(self, chain_id: str) -> None:
        d = self._dir(chain_id)
        with contextlib.suppress(FileNotFoundError):
            os.rename(d, d.with_name(f".tmp-rm-{d.name}"))  # gone at once, deleted below
        _remove_tree(d.with_name(f".tmp-rm-{d.name}"))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.locks.dir / f"snapshot-{chain_id[7:]}.lock")

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
                    _remove_tree(self.root / name)


class OverlayDriver(Driver):
    name = "overlay"
    whiteouts: Whiteouts = "overlay"
    independent_layers = True

    def _short(self, chain_id: str) -> Path:
        return self.root / "l" / chain_id[7:7 + _SHORT_ID_LEN]

    def published(self, chain_id: str) -> None:
        link = self._short(chain_id)
        link.parent.mkdir(exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.symlink(self._link_target(chain_id), link)

    @staticmethod
    def _link_target(chain_id: str) -> str:
        return f"../{chain_id[7:]}/fs"

    def mounts(self, chain_ids: Sequence[str], upper: Path, work: Path) -> list[Mount]:
        lowers = []
        for chain_id in reversed(chain_ids):
            if not self.exists(chain_id):
                raise InvalidArgument(f"layer {chain_id} is missing from the store")
            link = self._short(chain_id)
            if not os.path.islink(link):
                self.published(chain_id)
            if os.readlink(link) != self._link_target(chain_id):
                raise CorralError(f"layer {chain_id}: its short link {link} names another layer")
            lowers.append(str(link))
        if not lowers:
            empty = self.root / "empty"
            empty.mkdir(parents=True, exist_ok=True)
            lowers.append(str(empty))
        options = (f"lowerdir={':'.join(lowers)}", f"upperdir={upper}", f"workdir={work}")
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
        links = self.root / "l"
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(links):
                if not os.path.exists(links / name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(links / name)


class CopyDriver(Driver):
    name = "vfs"
    whiteouts: Whiteouts = "delete"
    independent_layers = False

    def prepare(self, fs: Path, parent: str | None) -> None:
        if parent is None:
            fs.mkdir()
            return
        if not self.exists(parent):
            raise InvalidArgument(f"parent layer {parent} is missing from the store")
        copy_tree(self.path(parent), fs)

    def mounts(self, chain_ids: Sequence[str], upper: Path, work: Path) -> list[Mount]:
        """Copies the image's tree into `upper` (which must not exist yet) and binds it."""
        if chain_ids:
            copy_tree(self.path(chain_ids[-1]), upper)
        else:
            upper.mkdir(parents=True)
        return [Mount("bind", str(upper), ("rbind", "rw"))]


def _remove_tree(path: Path) -> None:
    from corral.store.extract import remove_tree

    remove_tree(path)


def copy_tree(src: Path, dst: Path) -> None:
    """A faithful copy (owners, modes, xattrs, hardlinks, devices, times), reflinked if possible."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    import subprocess

    result = subprocess.run(["cp", "-a", "--reflink=auto", "--", str(src), str(dst)],
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


def open_driver(storage: Path) -> Driver:
    """The store's driver: fixed at the store's creation (`CORRAL_STORAGE_DRIVER` or the best
    the kernel offers), recorded in `<storage>/driver`."""
    record = storage / "driver"
    try:
        name = record.read_text().strip()
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
