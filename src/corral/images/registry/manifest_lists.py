"""Multi-platform manifest lists made locally: `manifest create/add/inspect/push/rm`.

Like docker's (~/.docker/manifests), a list being built is a file, not an image:
`<root>/manifests/<sha256 of the name>.json` = `{"name", "mediaType", "entries": [{descriptor
with platform, "source": "registry/repo"}]}`, written atomically. Entries point at manifests that
are already in a registry; `push` copies each one (blobs mounted when the registry is the same,
copied otherwise) into the destination repository by digest, then puts the index under the tag.
The index is a Docker manifest list when every entry is Docker schema 2, else an OCI index.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

from corral.errors import AlreadyExists, InvalidArgument, NotFound
from corral.fsutil import atomic_write
from corral.images import manifest as mf
from corral.images import reference
from corral.images.copy import copy
from corral.images.transports.registry import (
    DEFAULT_OPTIONS,
    RegistryDestination,
    RegistryOptions,
    RegistrySource,
    connect,
)


@dataclass(frozen=True)
class Entry:
    descriptor: mf.Descriptor  # with its platform
    source: str  # "registry/repo" it can be copied from


@dataclass(frozen=True)
class ManifestList:
    name: str  # full reference: docker.io/me/app:v1
    entries: tuple[Entry, ...] = ()

    @property
    def media_type(self) -> str:
        docker = self.entries and all(e.descriptor.media_type == mf.DOCKER_MANIFEST for e in self.entries)
        return mf.DOCKER_LIST if docker else mf.OCI_INDEX

    def index_bytes(self) -> bytes:
        return mf.Index(self.media_type, tuple(e.descriptor for e in self.entries)).to_bytes()


class ManifestLists:
    def __init__(self, root: Path) -> None:
        self.dir = root / "manifests"

    def _path(self, name: str) -> Path:
        return self.dir / (hashlib.sha256(name.encode()).hexdigest() + ".json")

    def get(self, text: str) -> ManifestList:
        name = str(reference.parse(text))
        try:
            doc = json.loads(self._path(name).read_text())
        except FileNotFoundError:
            raise NotFound(f"{text}: no such manifest list") from None
        entries = tuple(Entry(mf.Descriptor.from_json(e, "manifest list entry"), e["source"])
                        for e in doc["entries"])
        return ManifestList(doc["name"], entries)

    def exists(self, text: str) -> bool:
        return self._path(str(reference.parse(text))).exists()

    def save(self, ml: ManifestList) -> None:
        doc = {"name": ml.name, "mediaType": ml.media_type,
               "entries": [{**e.descriptor.to_json(), "source": e.source} for e in ml.entries]}
        atomic_write(self._path(ml.name), json.dumps(doc, indent=1).encode())

    def create(self, text: str, *, amend: bool = False) -> ManifestList:
        name = str(reference.parse(text))
        if self._path(name).exists():
            if amend:
                return self.get(name)
            raise AlreadyExists(f"{text}: a manifest list with this name already exists (use --amend)")
        ml = ManifestList(name)
        self.save(ml)
        return ml

    def remove(self, text: str) -> None:
        try:
            self._path(str(reference.parse(text))).unlink()
        except FileNotFoundError:
            raise NotFound(f"{text}: no such manifest list") from None


def resolve_entries(image: str, *, options: RegistryOptions, all_platforms: bool,
                    platform: mf.Platform | None) -> list[Entry]:
    """The entries `manifest add` makes for a registry image (an index gives one, or all)."""
    ref = reference.parse(image.removeprefix("docker://"))
    source = ref.name
    with RegistrySource(ref, connect(ref, options)) as src:
        raw, declared = src.get_manifest()
        media_type = mf.sniff_media_type(raw, declared)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if media_type in mf.INDEX_TYPES:
            index = mf.parse_index(raw, media_type)
            chosen = list(index.manifests) if all_platforms else [mf.select_platform(index, platform)]
            return [Entry(d, source) for d in chosen]
        manifest = mf.parse_manifest(raw, media_type)
        config_stream = src.get_blob(manifest.config)
        config = mf.parse_config(b"".join(iter(lambda: config_stream.read(1 << 20), b"")))
    found = mf.normalize(mf.Platform(str(config.get("os", "linux")), str(config.get("architecture", "")),
                                     str(config.get("variant", ""))))
    return [Entry(mf.Descriptor(media_type, digest, len(raw), platform=platform or found), source)]


def add(lists: ManifestLists, name: str, image: str, *, options: RegistryOptions = DEFAULT_OPTIONS,
        all_platforms: bool = False, platform: mf.Platform | None = None) -> str:
    """Add `image` (a registry reference) to list `name`; returns the digest added (the first)."""
    ml = lists.get(name)
    new = resolve_entries(image, options=options, all_platforms=all_platforms, platform=platform)
    digests = {e.descriptor.digest for e in new}
    kept = tuple(e for e in ml.entries if e.descriptor.digest not in digests)
    lists.save(replace(ml, entries=kept + tuple(new)))
    return new[0].descriptor.digest


def push(lists: ManifestLists, name: str, destination: str | None = None, *,
         options: RegistryOptions = DEFAULT_OPTIONS) -> str:
    """Copy every entry into the destination repository, then put the index; returns its digest."""
    ml = lists.get(name)
    if not ml.entries:
        raise InvalidArgument(f"{name}: the manifest list is empty")
    dest = reference.parse((destination or ml.name).removeprefix("docker://"))
    client = connect(dest, options)
    try:
        for entry in ml.entries:
            digest = entry.descriptor.digest
            if client.head_manifest(dest.path, digest) is not None:
                continue
            src_ref = reference.parse(f"{entry.source}@{digest}")
            same_registry = src_ref.domain == dest.domain
            target = reference.Reference(dest.domain, dest.path, None, digest)
            source_options = replace(options, credentials=None)  # --creds are the destination's
            with RegistrySource(src_ref, connect(src_ref, source_options)) as src, RegistryDestination(
                target, connect(dest, options), mount_from=[src_ref.path] if same_registry else [],
                chunk_size=options.chunk_size,
            ) as dst:
                copy(src, dst)
        return client.put_manifest(dest.path, dest.tag or dest.digest or reference.DEFAULT_TAG,
                                   ml.index_bytes(), ml.media_type)
    finally:
        client.close()


def inspect(lists: ManifestLists, name: str, *, options: RegistryOptions = DEFAULT_OPTIONS) -> bytes:
    """The local list's index, else the manifest (or index) the registry has for `name`."""
    if lists.exists(name):
        return lists.get(name).index_bytes()
    ref = reference.parse(name.removeprefix("docker://"))
    with RegistrySource(ref, connect(ref, options)) as src:
        return src.get_manifest()[0]
