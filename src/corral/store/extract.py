"""The one tar extractor: layers, `load`, `import` and `cp` all unpack through `extract()`.

Safety (SPEC §11): nothing is written outside `dest`.
- Names are normalized lexically; a name that climbs out with `..` is refused, a leading `/` is
  dropped (tar's own behaviour).
- Parent directories are resolved inside `dest`: a symlink on the way (absolute or relative) is
  followed as if `dest` were `/` (containerd's RootPath), so `evil -> /etc` + `evil/passwd` lands in
  `dest/etc/passwd`. The final component is never followed: files are created with O_NOFOLLOW and
  whatever was at the name is replaced.
- Hardlink targets are resolved the same way and linked without following a final symlink.
- Device nodes are made only when the process may (real root); otherwise skipped.

Whiteouts (OCI image spec, layer.md): with `whiteouts="overlay"` a `.wh.name` becomes an overlayfs
whiteout (a 0/0 character device) and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its
directory, so the unpacked dir can be an overlay lowerdir; with `whiteouts="delete"` (the copy
driver, applying a layer on a full tree) they delete what lower layers put there. Either way a
whiteout never hides something written by the same layer.

Kept: modes (setuid/setgid/sticky), owners (when root), mtimes, xattrs (PAX `SCHILY.xattr.*`).
Speed matters (creating a file costs ~0.5-1 ms on this machine's ext4): the common case is one
open(O_CREAT|O_EXCL), the writes, and one futimens per file; parents are checked once and cached.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from typing import Literal

from corral.errors import CorralError, InvalidArgument
from corral.store.streams import Reader
from corral.store.tarstream import Member, TarReader

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_MAX_SYMLINK_HOPS = 255

Whiteouts = Literal["overlay", "delete"]


class UnsafeEntry(InvalidArgument):
    """A tar entry that would write outside the extraction root."""


@dataclass
class ExtractStats:
    entries: int = 0
    bytes: int = 0


def normalize_name(name: str) -> tuple[str, ...]:
    """`./a//b/../c` -> ('a', 'c'); a name that climbs above the root is refused."""
    if "." not in name and "//" not in name and not name.startswith("/"):
        return tuple(name.rstrip("/").split("/")) if name.strip("/") else ()
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafeEntry(f"tar entry {name!r} points outside the root")
            parts.pop()
        else:
            parts.append(part)
    return tuple(parts)


class _Extractor:
    def __init__(self, dest: str | os.PathLike[str], whiteouts: Whiteouts) -> None:
        self.dest = os.path.realpath(dest)
        self.whiteouts = whiteouts
        self.is_root = os.geteuid() == 0 and _in_initial_userns()
        self.euid = os.geteuid()
        self.egid = os.getegid()
        self.dirs: dict[tuple[str, ...], str] = {(): self.dest}  # verified real dirs
        self.written: set[tuple[str, ...]] = set()
        self.dir_times: list[tuple[str, int]] = []
        self.stats = ExtractStats()
        # The umask is process-wide (and extraction may run on several threads), so it is read,
        # never changed; a mode it would clip is set again with fchmod.
        self.umask = _process_umask()

    # -- resolving names inside the root ---------------------------------------------------
    def parent(self, parts: tuple[str, ...]) -> str:
        """The real path of the directory that holds `parts[-1]`, created if missing."""
        cached = self.dirs.get(parts[:-1])
        if cached is not None:
            return cached
        return self._resolve_dir(parts[:-1], 0)

    def _resolve_dir(self, parts: tuple[str, ...], hops: int) -> str:
        """Walk `parts` from the deepest known directory, inside the root: missing dirs are
        made, a file in the way is replaced, a symlink is followed as if the root were `/`."""
        i = len(parts)
        while parts[:i] not in self.dirs:
            i -= 1
        base = self.dirs[parts[:i]]
        while i < len(parts):
            path = os.path.join(base, parts[i])
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
            else:
                if stat.S_ISLNK(st.st_mode):
                    if hops >= _MAX_SYMLINK_HOPS:
                        raise UnsafeEntry(
                            f"too many levels of symbolic links at {'/'.join(parts[:i + 1])!r}")
                    target = os.readlink(path)
                    start = () if target.startswith("/") else self._rel(base)
                    return self._resolve_dir(self._lexical(start, target) + parts[i + 1:], hops + 1)
                if not stat.S_ISDIR(st.st_mode):  # a file where a directory is needed: replace it
                    os.unlink(path)
                    os.mkdir(path, 0o755)
            i += 1
            if path == os.path.join(self.dest, *parts[:i]):  # cache keys stay lexical
                self.dirs[parts[:i]] = path
            base = path
        return base

    def _rel(self, real: str) -> tuple[str, ...]:
        return tuple(p for p in real[len(self.dest):].split("/") if p)

    @staticmethod
    def _lexical(start: tuple[str, ...], target: str) -> tuple[str, ...]:
        """Join a symlink target onto `start`, clamping `..` at the root (as chroot would)."""
        parts = list(start)
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(part)
        return tuple(parts)

    def resolve_existing(self, parts: tuple[str, ...]) -> str:
        """The path of an existing entry (hardlink target), its last component not followed."""
        return os.path.join(self.parent(parts), parts[-1])

    def forget(self, parts: tuple[str, ...]) -> None:
        """Drop cached dirs at or under `parts` (it was replaced or deleted)."""
        if parts in self.dirs:
            n = len(parts)
            for key in [k for k in self.dirs if k[:n] == parts]:
                del self.dirs[key]

    def remove(self, path: str, parts: tuple[str, ...]) -> None:
        self.forget(parts)
        remove_path(path)

    # -- entries ---------------------------------------------------------------------------
    def entry(self, tar: TarReader, m: Member) -> None:
        parts = normalize_name(m.name)
        kind = m.type
        if not parts:
            if kind == b"5":
                self.dir_times.append((self.dest, _ns(m.mtime)))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(parts)
            return
        parent = self.parent(parts)
        path = os.path.join(parent, base)
        self.written.add(parts)
        self.stats.entries += 1
        if kind == b"0":
            self.regular(tar, m, path, parts)
        elif kind == b"5":
            self.directory(m, path, parts)
        elif kind == b"2":
            self.replace_with(path, parts, lambda: os.symlink(m.linkname, path))
            self.finish(m, path, fd=None, symlink=True)
        elif kind == b"1":
            target_parts = normalize_name(m.linkname)
            if not target_parts:
                raise UnsafeEntry(f"hardlink {m.name!r} has an empty target")
            target = self.resolve_existing(target_parts)
            if not os.path.lexists(target):
                raise InvalidArgument(f"hardlink {m.name!r}: target {m.linkname!r} is not in the layer")
            if stat.S_ISDIR(os.lstat(target).st_mode):
                raise InvalidArgument(f"hardlink {m.name!r}: target {m.linkname!r} is a directory")
            if target != path:
                self.replace_with(path, parts, lambda: os.link(target, path, follow_symlinks=False))
        else:
            self.device(m, path, parts)

    def regular(self, tar: TarReader, m: Member, path: str, parts: tuple[str, ...]) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        mode = m.mode & 0o7777
        try:
            fd = os.open(path, flags, mode)
        except FileExistsError:
            self.remove(path, parts)
            fd = os.open(path, flags, mode)
        try:
            if mode & self.umask:
                os.fchmod(fd, mode)  # the umask took bits the layer sets (0666, 0777 ...)
            for chunk in tar.data():
                written = os.write(fd, chunk)
                if written < len(chunk):
                    _write_all(fd, chunk[written:])
            self.stats.bytes += m.size
            self.finish(m, path, fd=fd)
        finally:
            os.close(fd)

    def directory(self, m: Member, path: str, parts: tuple[str, ...]) -> None:
        mode = m.mode & 0o7777
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                was_whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
                self.remove(path, parts)
                os.mkdir(path, mode)
                if was_whiteout and self.whiteouts == "overlay":
                    os.setxattr(path, OVERLAY_OPAQUE_XATTR, b"y")
        if path == os.path.join(self.dest, *parts):
            self.dirs[parts] = path
        self.finish(m, path, fd=None)
        os.chmod(path, mode)  # mkdir drops setgid/umask bits; exact mode as in the layer
        self.dir_times.append((path, _ns(m.mtime)))

    def device(self, m: Member, path: str, parts: tuple[str, ...]) -> None:
        if m.type == b"6":
            kind = stat.S_IFIFO
        elif not self.is_root:
            return  # a device node cannot be made here (rootless); Docker skips it too
        else:
            kind = stat.S_IFCHR if m.type == b"3" else stat.S_IFBLK
        dev = os.makedev(m.devmajor, m.devminor)
        self.replace_with(path, parts, lambda: os.mknod(path, kind | (m.mode & 0o7777), dev))
        if m.mode & self.umask:
            os.chmod(path, m.mode & 0o7777)
        self.finish(m, path, fd=None)

    def replace_with(self, path: str, parts: tuple[str, ...], make: object) -> None:
        assert callable(make)
        try:
            make()
        except FileExistsError:
            self.remove(path, parts)
            make()

    def finish(self, m: Member, path: str, *, fd: int | None,
               symlink: bool = False) -> None:
        """Owner, xattrs, mode bits chown clears, mtime: as few syscalls as the entry needs."""
        if self.is_root and (m.uid != self.euid or m.gid != self.egid):
            if fd is not None:
                os.fchown(fd, m.uid, m.gid)
                if m.mode & (stat.S_ISUID | stat.S_ISGID):
                    os.fchmod(fd, m.mode & 0o7777)  # chown cleared them
            else:
                os.chown(path, m.uid, m.gid, follow_symlinks=False)
        if m.xattrs:
            self.xattrs(m, path if fd is None else fd, symlink)
        if fd is not None:
            os.utime(fd, ns=(_ns(m.mtime),) * 2)
        elif symlink:
            os.utime(path, ns=(_ns(m.mtime),) * 2, follow_symlinks=False)

    def xattrs(self, m: Member, target: str | int, symlink: bool) -> None:
        for name, data in m.xattrs.items():
            try:
                os.setxattr(target, name, data, follow_symlinks=not symlink)
            except OSError as e:
                if e.errno in (errno.ENOTSUP, errno.EPERM) and not self.is_root:
                    continue  # rootless: trusted.* and some security.* are not ours to set
                if e.errno == errno.ENOTSUP and symlink:
                    continue  # user.* xattrs cannot exist on symlinks
                raise

    def whiteout(self, parts: tuple[str, ...]) -> None:
        base = parts[-1]
        dir_parts = parts[:-1]
        if base == OPAQUE_MARKER:
            parent = self.parent(parts)
            if self.whiteouts == "overlay":
                os.setxattr(parent, OVERLAY_OPAQUE_XATTR, b"y")
            else:
                for name in os.listdir(parent):
                    child = (*dir_parts, name)
                    if child not in self.written:
                        self.remove(os.path.join(parent, name), child)
            return
        if base.startswith(WHITEOUT_PREFIX * 2):
            return  # other AUFS metadata (.wh..wh.plnk ...): nothing to do
        name = base[len(WHITEOUT_PREFIX):]
        target = (*dir_parts, name)
        if target in self.written:
            return  # a whiteout never hides what its own layer wrote
        if self.whiteouts == "delete" and not os.path.isdir(os.path.join(self.dest, *dir_parts)):
            return  # nothing below to delete (and no directory to invent)
        path = os.path.join(self.parent(parts), name)
        self.remove(path, target)
        if self.whiteouts == "overlay":
            os.mknod(path, stat.S_IFCHR | 0o000, 0)

    def close(self) -> None:
        for path, mtime in reversed(self.dir_times):
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)


def remove_path(path: str | os.PathLike[str]) -> None:
    """Delete whatever is at `path` (file, link, device or directory tree); missing is fine."""
    try:
        os.unlink(path)
    except IsADirectoryError:
        remove_tree(path)
    except FileNotFoundError:
        pass


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Delete a directory tree, however deep (shutil.rmtree recurses once per level: a layer can
    nest thousands of directories); a missing path is fine."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except RecursionError:
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], check=True)


def _ns(mtime: float) -> int:
    return int(mtime * 1_000_000_000) if isinstance(mtime, float) else mtime * 1_000_000_000


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _process_umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o777  # unknown: always set modes explicitly


_initial_userns: bool | None = None


def _in_initial_userns() -> bool:
    global _initial_userns
    if _initial_userns is None:
        try:
            with open("/proc/self/uid_map") as f:
                _initial_userns = f.read().split() == ["0", "0", "4294967295"]
        except OSError:
            _initial_userns = True
    return _initial_userns


def extract(stream: Reader, dest: str | os.PathLike[str], *, whiteouts: Whiteouts = "overlay") -> ExtractStats:
    """Unpack the tar `stream` into the existing directory `dest`; see the module docstring."""
    ex = _Extractor(dest, whiteouts)
    tar = TarReader(stream)
    name = ""
    try:
        for m in tar:
            name = m.name
            ex.entry(tar, m)
        name = ""
        ex.close()
    except OSError as e:  # ENOSPC, EACCES...: one line naming the entry, not a traceback
        where = f" at {name!r}" if name else ""
        raise CorralError(f"unpacking{where}: {e.strerror or e}") from None
    return ex.stats
