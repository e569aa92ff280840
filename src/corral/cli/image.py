"""The image commands: `images`, `image ls|inspect|history|tag|rm|prune|save|load|import|builtin`
and docker's top-level aliases (`rmi`, `tag`, `history`, `save`, `load`, `import`).

Each parses its flags, makes one call into `corral.images.service` (or copy()) and prints what
docker prints. The `image` group also lists the registry commands (pull, push) when present.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec

import click

from corral.cli import image_list
from corral.cli.format import human_size
from corral.cli.image_list import ago, familiar
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


P = ParamSpec("P")


def os_errors(fn: Callable[P, None]) -> Callable[P, None]:
    """A kernel error (disk full, permission denied) in a command that writes: one line, 125."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except OSError as e:
            where = f": {e.filename}" if e.filename else ""
            raise CorralError(f"{e.strerror or e}{where}") from None

    return wrapper


# -- images ------------------------------------------------------------------------------------
@click.command(name="images", add_help_option=False,
               context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def images(ctx: click.Context) -> None:
    """List images."""
    code = image_list.main(ctx.args)
    if code:
        raise SystemExit(code)


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
    repos = sorted({familiar(n)[0] for n in image.names})
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
        "RepoTags": [":".join(familiar(n)) for n in image.names],
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
        obj = {"ID": eid, "CreatedSince": ago(e.created) if human else e.created,
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
        click.echo(f"{untag}: {':'.join(familiar(n))}")
    for d in result.deleted:
        click.echo(f"{delete}: {d}")


@click.command(name="rmi")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents")
@os_errors
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
@os_errors
def prune(all_: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused images."""
    selected = image_list.prune_filter(filters)
    if not force:
        what = "all images without at least one container associated to them" if all_ \
            else "all dangling images"
        click.echo(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ",
                   nl=False)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return
    result = _service().prune(all_images=all_, selected=selected)
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
@os_errors
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
    svc.content.ingest_dir.mkdir(parents=True, exist_ok=True)
    with svc.locks.writers():  # gc keeps out of ingest/ (the spooled archive) meanwhile
        return _load_archive(svc, source)


def _load_archive(svc: ImageService, source: Any) -> list[str]:
    from corral.images.copy import copy
    from corral.images.transports.archive import ArchiveReader
    from corral.images.transports.docker_archive import DockerArchive
    from corral.images.transports.local import LocalDestination
    from corral.images.transports.oci_archive import OCIArchive

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
    return [f"Loaded image: {':'.join(familiar(n))}" for n in names]


@click.command(name="load")
@click.option("-i", "--input", "inp", help="Read from tar archive file, instead of STDIN")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
@os_errors
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
@os_errors
def import_(source: str, repository: str | None, changes: tuple[str, ...], message: str,
            platform: str) -> None:
    """Import the contents from a tarball to create a filesystem image."""
    from corral.images import changes as change_lines
    from corral.images import reference

    names = [str(reference.parse(repository))] if repository else []
    config = change_lines.apply({}, changes)
    if source.startswith(("http://", "https://")):
        raise InvalidArgument("import from a URL is not supported; download it and pass the file")
    from corral.images.manifest import Platform

    target = Platform.parse(platform) if platform else None
    svc = _service()
    if source == "-":
        image = svc.import_tar(sys.stdin.buffer, changes=config, message=message, names=names,
                               platform=target)
    else:
        try:
            f = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise NotFound(f"open {source}: {e.strerror.lower() if e.strerror else e}") from None
        with f:
            image = svc.import_tar(f, changes=config, message=message, source=source, names=names,
                                   platform=target)
    click.echo(image.id)


@click.command(name="builtin")
@os_errors
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
