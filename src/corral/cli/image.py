"""The image commands: `images`, `image ls|inspect|history|tag|rm|prune|save|load|import|builtin`
and docker's top-level aliases (`rmi`, `tag`, `history`, `save`, `load`, `import`).

Each parses its flags, makes one call into `corral.images.service` (or copy()) and prints what
docker prints. The `image` group also lists the registry commands (pull, push) when present.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from corral.config import paths
from corral.errors import CorralError, InvalidArgument, NotFound

if TYPE_CHECKING:
    from corral.images.service import Image, ImageService, RemoveResult

# `corral image <name>` subcommands living in other modules (the registry area's pull/push).
IMAGE_SUBCOMMANDS: dict[str, str] = {
    "pull": "corral.cli.registry:pull",
    "push": "corral.cli.registry:push",
}


def _service() -> ImageService:
    from corral.images.service import ImageService

    return ImageService(paths())


# -- docker's human units ----------------------------------------------------------------------
def human_size(size: float) -> str:
    """docker's units.HumanSize: decimal units, 3 significant digits ("2.14MB")."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.3g}{units[i]}"


def human_duration(seconds: float) -> str:
    """docker's units.HumanDuration ("About an hour", "3 weeks")."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def parse_time(text: str) -> float:
    """An RFC 3339 timestamp (nanoseconds allowed) as unix time; 0 if unparsable."""
    if not text:
        return 0.0
    base, _, frac = text.rstrip("Z").partition(".")
    tz = ""
    for sign in ("+", "-"):
        if sign in frac:
            frac, _, rest = frac.partition(sign)
            tz = sign + rest
        elif sign in base[10:]:
            idx = base.rindex(sign)
            base, tz = base[:idx], base[idx:]
    try:
        dt = datetime.fromisoformat(base + (tz or "+00:00"))
    except ValueError:
        return 0.0
    return dt.timestamp() + (float("0." + frac[:6]) if frac.isdigit() else 0.0)


def _ago(created: str) -> str:
    t = parse_time(created)
    return human_duration(time.time() - t) + " ago" if t else "N/A"


def _familiar(name: str) -> tuple[str, str]:
    from corral.images import reference

    ref = reference.parse(name)
    return ref.familiar_name(), ref.tag or "<none>"


# -- images ------------------------------------------------------------------------------------
def _row_objects(images: Sequence[Image], digests: bool, no_trunc: bool) -> list[dict[str, str]]:
    rows = []
    for im in images:
        pairs = [_familiar(n) for n in im.names] or [("<none>", "<none>")]
        for repo, tag in pairs:
            digest = im.digest if im.digest else "<none>"
            rows.append({
                "Containers": "N/A", "CreatedAt": _created_at(im.created),
                "CreatedSince": _ago(im.created), "Digest": digest,
                "ID": im.id if no_trunc else im.short_id, "Repository": repo,
                "SharedSize": "N/A", "Size": human_size(im.size), "Tag": tag,
                "UniqueSize": "N/A", "VirtualSize": human_size(im.size),
            })
    return rows


def _created_at(created: str) -> str:
    t = parse_time(created)
    if not t:
        return ""
    return datetime.fromtimestamp(t).astimezone().strftime("%Y-%m-%d %H:%M:%S %z %Z")


def _filter(images: list[Image], filters: Sequence[str], svc: ImageService) -> list[Image]:
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {f}")
        if key == "dangling":
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={value}'")
            want = value.lower() in ("true", "1")
            images = [i for i in images if (not i.names) == want]
        elif key == "label":
            k, has_value, v = value.partition("=")
            images = [i for i in images if k in i.labels and (not has_value or i.labels[k] == v)]
        elif key == "reference":
            images = [i for i in images if _reference_match(i, value)]
        elif key in ("before", "since"):
            pivot = parse_time(svc.get(value).created)
            images = [i for i in images
                      if (parse_time(i.created) < pivot if key == "before" else
                          parse_time(i.created) > pivot)]
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
    return images


def _reference_match(image: Image, pattern: str) -> bool:
    for name in image.names:
        repo, tag = _familiar(name)
        if any(fnmatch.fnmatchcase(c, pattern) for c in (repo, f"{repo}:{tag}", name)):
            return True
    return False


def _restrict(images: list[Image], repository: str) -> list[Image]:
    """`docker images busybox` / `busybox:1.36`: only that repository (and tag)."""
    from corral.images import reference

    ref = reference.parse(repository, default_tag=False)
    out = []
    for im in images:
        names = [n for n in im.names if reference.parse(n).name == ref.name and
                 (ref.tag is None or reference.parse(n).tag == ref.tag)]
        if names:
            out.append(_with_names(im, tuple(names)))
    return out


def _with_names(image: Image, names: tuple[str, ...]) -> Image:
    from dataclasses import replace

    return replace(image, names=names)


@click.command(name="images")
@click.argument("repository", required=False)
@click.option("-a", "--all", "all_", is_flag=True, help="Show all images (default hides intermediate images)")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--digests", is_flag=True, help="Show digests")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt", help="Format output using a Go template or 'json'")
def images(repository: str | None, all_: bool, quiet: bool, digests: bool, no_trunc: bool,
           filters: tuple[str, ...], fmt: str | None) -> None:
    """List images."""
    from corral.cli.format import output

    svc = _service()
    found = svc.list()
    if repository:
        found = _restrict(found, repository)
    found = _filter(found, filters, svc)
    rows = _row_objects(found, digests, no_trunc)
    if quiet:  # one id per row, repeated for each tag, as docker does
        if rows:
            click.echo("\n".join(r["ID"] for r in rows))
        return
    header = ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED", "SIZE"]
    table_rows = [[r["Repository"], r["Tag"], *([r["Digest"]] if digests else []), r["ID"],
                   r["CreatedSince"], r["Size"]] for r in rows]
    text = output(fmt, rows, table_rows, header)
    if text:
        click.echo(text)


# -- inspect / history -------------------------------------------------------------------------
_DOCKER_CONFIG_KEYS = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


def inspect_document(svc: ImageService, image: Image) -> dict[str, Any]:
    """`docker image inspect`'s JSON for one image."""
    c = image.config
    config = {**_DOCKER_CONFIG_KEYS, **(c.get("config") or {})}
    repos = sorted({_familiar(n)[0] for n in image.names})
    history = c.get("history") or []
    driver = svc.driver
    graph: dict[str, Any] = {"Name": "overlay2" if driver.name == "overlay" else driver.name,
                             "Data": None}
    if driver.name == "overlay" and image.layers:
        chains = image.chain_ids
        graph["Data"] = {"MergedDir": "", "UpperDir": str(driver.path(chains[-1])),
                         "WorkDir": "", "LowerDir": ":".join(str(driver.path(ch))
                                                              for ch in reversed(chains[:-1]))}
    return {
        "Id": image.id,
        "RepoTags": [":".join(_familiar(n)) for n in image.names],
        "RepoDigests": [f"{r}@{image.digest}" for r in repos] if image.digest else [],
        "Parent": "",
        "Comment": (history[-1].get("comment", "") if history else ""),
        "Created": image.created,
        "Container": "",
        "ContainerConfig": dict(_DOCKER_CONFIG_KEYS),
        "DockerVersion": c.get("docker_version", ""),
        "Author": c.get("author", ""),
        "Config": config,
        "Architecture": c.get("architecture", ""),
        **({"Variant": c["variant"]} if c.get("variant") else {}),
        "Os": c.get("os", ""),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": graph,
        "RootFS": {"Type": "layers", "Layers": list(image.layers)},
        "Metadata": {"LastTagTime": datetime.fromtimestamp(image.added).astimezone().isoformat()
                     if image.added else "0001-01-01T00:00:00Z"},
    }


def print_inspect(docs: list[dict[str, Any]], fmt: str | None) -> None:
    if fmt and fmt != "json":
        from corral.cli.format import render

        for d in docs:
            click.echo(render(fmt, d))
    else:
        click.echo(json.dumps(docs, indent=4))


@click.command(name="inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help="Format output using a Go template or 'json'")
def image_inspect(names: tuple[str, ...], fmt: str | None) -> None:
    """Display detailed information on one or more images."""
    svc = _service()
    docs: list[dict[str, Any]] = []
    missing: list[CorralError] = []
    for n in names:
        try:
            docs.append(inspect_document(svc, svc.get(n)))
        except NotFound as e:
            missing.append(e)
    print_inspect(docs, fmt)
    _raise_last(missing)


def _raise_last(errors: Sequence[CorralError]) -> None:
    """docker reports every failed name, exiting with the last error's code."""
    for err in errors[:-1]:
        click.echo(f"Error: {err}", err=True)
    if errors:
        raise errors[-1]


@click.command(name="history")
@click.argument("name")
@click.option("-H", "--human", default=True, type=bool, help="Print sizes and dates in human readable format")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("--format", "fmt", help="Format output using a Go template or 'json'")
def history(name: str, human: bool, quiet: bool, no_trunc: bool, fmt: str | None) -> None:
    """Show the history of an image."""
    from corral.cli.format import output

    svc = _service()
    entries = svc.history(svc.get(name))
    objs, rows = [], []
    for e in entries:
        eid = e.id if no_trunc or e.id == "<missing>" else e.id[7:19]
        by = e.created_by
        if not no_trunc and len(by) > 45:
            by = by[:44] + "…"
        obj = {"ID": eid, "CreatedSince": _ago(e.created) if human else e.created,
               "CreatedAt": e.created, "CreatedBy": by,
               "Size": human_size(e.size) if human else str(e.size), "Comment": e.comment}
        objs.append(obj)
        rows.append([obj["ID"], obj["CreatedSince"], obj["CreatedBy"], obj["Size"], obj["Comment"]])
    if quiet:
        click.echo("\n".join(o["ID"] for o in objs))
        return
    click.echo(output(fmt, objs, rows, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]))


# -- tag / rmi / prune -------------------------------------------------------------------------
@click.command(name="tag")
@click.argument("source")
@click.argument("target")
def tag(source: str, target: str) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    _service().tag(source, target)


def _print_removal(result: RemoveResult, prefix_case: str = "Title") -> None:
    untag, delete = ("Untagged", "Deleted") if prefix_case == "Title" else ("untagged", "deleted")
    for n in result.untagged:
        click.echo(f"{untag}: {':'.join(_familiar(n))}")
    for d in result.deleted:
        click.echo(f"{delete}: {d}")


@click.command(name="rmi")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents")
def rmi(names: tuple[str, ...], force: bool, no_prune: bool) -> None:
    """Remove one or more images."""
    svc = _service()
    errors: list[CorralError] = []
    for n in names:
        try:
            _print_removal(svc.remove(n, force=force))
        except CorralError as e:
            errors.append(e)
    _raise_last(errors)


@click.command(name="prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused images, not just dangling ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (e.g. 'until=<timestamp>')")
def prune(all_: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused images."""
    if filters:
        raise InvalidArgument("image prune --filter is not supported yet")
    if not force:
        what = "all images without at least one container associated to them" if all_ \
            else "all dangling images"
        click.echo(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ",
                   nl=False)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return
    result = _service().prune(all_images=all_)
    if result.untagged or result.deleted:
        click.echo("Deleted Images:")
        _print_removal(result, prefix_case="lower")
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(result.reclaimed)}")


# -- save / load / import ----------------------------------------------------------------------
@click.command(name="save")
@click.argument("names", nargs=-1, required=True)
@click.option("-o", "--output", "out", help="Write to a file, instead of STDOUT")
@click.option("--format", "fmt", type=click.Choice(["docker-archive", "oci-archive"]),
              default="docker-archive", show_default=True, help="Archive format")
def save(names: tuple[str, ...], out: str | None, fmt: str) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    from corral.images import reference
    from corral.images.copy import copy
    from corral.images.transports.base import ImageDestination
    from corral.images.transports.docker_archive import DockerArchiveDestination
    from corral.images.transports.local import LocalSource
    from corral.images.transports.oci_archive import OCIArchiveDestination

    if out is None and sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. "
                              "Use the -o flag or redirect")
    svc = _service()
    chosen = []
    for n in names:
        image = svc.get(n)
        full = ""
        with contextlib.suppress(InvalidArgument):
            full = str(reference.parse(n))
        chosen.append((image, [full] if full in image.names else []))
    target: Any = out if out is not None else sys.stdout.buffer
    dst: ImageDestination = (DockerArchiveDestination(target) if fmt == "docker-archive"
                             else OCIArchiveDestination(target))
    with dst:
        for image, tags in chosen:
            copy(LocalSource(svc, image), dst, names=tags)
        dst.commit()


def load_archive(svc: ImageService, source: Any) -> list[str]:
    """Load every image of a docker- or oci-archive; returns docker's "Loaded image" lines."""
    from corral.images.copy import copy
    from corral.images.transports.archive import ArchiveReader
    from corral.images.transports.docker_archive import DockerArchive
    from corral.images.transports.local import LocalDestination
    from corral.images.transports.oci_archive import OCIArchive

    svc.content.ingest_dir.mkdir(parents=True, exist_ok=True)
    reader = ArchiveReader(source, spool_dir=svc.content.ingest_dir)
    lines = []
    try:
        with LocalDestination(svc) as dst:
            if reader.exists("manifest.json"):
                archive = DockerArchive(reader)
                for i, im in enumerate(archive.images):
                    result = copy(archive.source(i), dst, names=im.repo_tags)
                    lines += _loaded(im.repo_tags, result.image_id)
            elif reader.exists("index.json"):
                oci = OCIArchive(reader)
                for entry, name in oci.entries():
                    result = copy(oci.source(entry), dst, names=[name] if name else [])
                    lines += _loaded([name] if name else [], result.image_id)
            else:
                raise InvalidArgument(f"{reader.name}: not an image archive (no manifest.json or "
                                      "index.json)")
    finally:
        reader.close()
    return lines


def _loaded(names: Sequence[str], image_id: str) -> list[str]:
    if not names:
        return [f"Loaded image ID: {image_id}"]
    return [f"Loaded image: {':'.join(_familiar(n))}" for n in names]


@click.command(name="load")
@click.option("-i", "--input", "inp", help="Read from tar archive file, instead of STDIN")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
def load(inp: str | None, quiet: bool) -> None:
    """Load images from a tar archive or STDIN."""
    if inp is None and sys.stdin.isatty():
        raise InvalidArgument("requested load from stdin, but stdin is empty")
    lines = load_archive(_service(), inp if inp is not None else sys.stdin.buffer)
    if not quiet:
        for line in lines:
            click.echo(line)


@click.command(name="import")
@click.argument("source")
@click.argument("repository", required=False)
@click.option("-c", "--change", "changes", multiple=True, help="Apply Dockerfile instruction to the created image")
@click.option("-m", "--message", default="", help="Set commit message for imported image")
@click.option("--platform", default="", help="Set platform if server is multi-platform capable")
def import_(source: str, repository: str | None, changes: tuple[str, ...], message: str,
            platform: str) -> None:
    """Import the contents from a tarball to create a filesystem image."""
    from corral.images import changes as change_lines
    from corral.images import reference

    names = [str(reference.parse(repository))] if repository else []
    config = change_lines.apply({}, changes)
    if source.startswith(("http://", "https://")):
        raise InvalidArgument("import from a URL is not supported; download it and pass the file")
    svc = _service()
    if source == "-":
        image = svc.import_tar(sys.stdin.buffer, changes=config, message=message, names=names)
    else:
        try:
            f = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise NotFound(f"open {source}: {e.strerror.lower() if e.strerror else e}") from None
        with f:
            image = svc.import_tar(f, changes=config, message=message, source=source, names=names)
    click.echo(image.id)


@click.command(name="builtin")
def builtin() -> None:
    """Make the built-in busybox image (docker.io/library/busybox:latest) from /bin/busybox."""
    click.echo(_service().ensure_builtin_busybox().id)


# -- the `image` group -------------------------------------------------------------------------
_LOCAL: Mapping[str, click.Command] = {
    "ls": images, "list": images, "inspect": image_inspect, "history": history, "tag": tag,
    "rm": rmi, "remove": rmi, "prune": prune, "save": save, "load": load, "import": import_,
    "builtin": builtin,
}


class _ImageGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        import importlib.util

        present = [n for n, t in IMAGE_SUBCOMMANDS.items()
                   if importlib.util.find_spec(t.partition(":")[0]) is not None]
        return sorted({*_LOCAL, *present})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LOCAL:
            return _LOCAL[cmd_name]
        target = IMAGE_SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        import importlib

        module, _, attr = target.partition(":")
        try:
            command: click.Command = getattr(importlib.import_module(module), attr)
        except ImportError:
            return None
        return command


@click.group(name="image", cls=_ImageGroup)
def image() -> None:
    """Manage images."""
