"""The registry commands: `pull`, `push`, `login`, `logout`, `manifest create|add|inspect|push|rm`.

Each parses its flags (docker's, plus podman's `--tls-verify`, `--cert-dir`, `--authfile`,
`--creds`, `--platform`), makes one call into `corral.images.registry` and prints what docker
prints. Progress bars go to stdout only when it is a terminal (and not `-q`).
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from corral.config import paths
from corral.errors import InvalidArgument

if TYPE_CHECKING:
    from corral.images.registry.auth import Credentials
    from corral.images.service import ImageService
    from corral.images.transports.registry import RegistryOptions


def _service() -> ImageService:
    from corral.images.service import ImageService

    return ImageService(paths())


class RegistryCommand(click.Command):
    """A bare `--tls-verify` means `--tls-verify=true` (podman's boolean flags take `=false`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = ["--tls-verify=true" if a == "--tls-verify" else a for a in args]
        return super().parse_args(ctx, args)


def registry_flags(f: Callable[..., Any]) -> Callable[..., Any]:
    """podman's flags for reaching a registry, shared by every command here."""
    for option in reversed((
        click.option("--tls-verify", type=click.BOOL, default=None,
                     help="Require HTTPS and verify certificates (default: yes, except loopback and "
                          "registries.conf's insecure registries)"),
        click.option("--cert-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Use certificates (*.crt CAs, *.cert/*.key client pairs) in this directory"),
        click.option("--authfile", type=click.Path(dir_okay=False, path_type=Path),
                     help="Path of the authentication file (default: corral's auth.json)"),
    )):
        f = option(f)
    return f


def _options(tls_verify: bool | None, cert_dir: Path | None, authfile: Path | None,
             creds: str | None = None) -> RegistryOptions:
    from corral.images.transports.registry import RegistryOptions

    return RegistryOptions(tls_verify=tls_verify, cert_dir=cert_dir, authfile=authfile,
                           credentials=_parse_creds(creds) if creds else None)


def _parse_creds(text: str) -> Credentials:
    from corral.images.registry.auth import Credentials

    user, sep, password = text.partition(":")
    if not user:
        raise InvalidArgument("--creds: want USERNAME[:PASSWORD]")
    return Credentials(user, password if sep else getpass.getpass("Password: "))


def _progress(quiet: bool) -> Any:
    from corral.images.registry.progress import for_terminal

    return for_terminal(sys.stdout, quiet=quiet)


@click.command("pull", cls=RegistryCommand)
@click.argument("name")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.option("--platform", help="Pick this os/arch[/variant] from a multi-platform image")
@click.option("--creds", help="USERNAME[:PASSWORD] for the registry")
@registry_flags
def pull(name: str, quiet: bool, platform: str | None, creds: str | None, tls_verify: bool | None,
         cert_dir: Path | None, authfile: Path | None) -> None:
    """Download an image from a registry."""
    from corral.images import reference
    from corral.images.manifest import Platform
    from corral.images.registry.transfer import pull as do_pull

    name = name.removeprefix("docker://")
    ref = reference.parse(name)
    if not quiet:
        if ref.tag == reference.DEFAULT_TAG and not name.endswith(":latest") and not ref.digest:
            click.echo(f"Using default tag: {reference.DEFAULT_TAG}")
        click.echo(f"{ref.tag or ref.digest}: Pulling from {ref.path}")
    progress = _progress(quiet)
    try:
        result = do_pull(_service(), name, options=_options(tls_verify, cert_dir, authfile, creds),
                         platform=Platform.parse(platform) if platform else None, progress=progress)
    finally:
        progress.close()
    if not quiet:
        click.echo(f"Digest: {result.digest}")
        what = "Image is up to date for" if result.up_to_date else "Downloaded newer image for"
        click.echo(f"Status: {what} {ref.familiar()}")
    click.echo(str(ref))


@click.command("push", cls=RegistryCommand)
@click.argument("image")
@click.argument("destination", required=False)
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.option("--creds", help="USERNAME[:PASSWORD] for the registry")
@registry_flags
def push(image: str, destination: str | None, quiet: bool, creds: str | None,
         tls_verify: bool | None, cert_dir: Path | None, authfile: Path | None) -> None:
    """Upload an image to a registry (to DESTINATION if given, podman-style)."""
    from corral.images import reference
    from corral.images.registry.transfer import push as do_push

    target = reference.parse((destination or image).removeprefix("docker://"))
    if not quiet:
        click.echo(f"The push refers to repository [{target.name}]")
    progress = _progress(quiet)
    try:
        result = do_push(_service(), image, destination,
                         options=_options(tls_verify, cert_dir, authfile, creds), progress=progress)
    finally:
        progress.close()
    if quiet:
        click.echo(str(result.ref))
    else:
        click.echo(f"{result.ref.tag or result.ref.digest}: digest: {result.digest} size: {result.size}")


def _server(server: str | None) -> str:
    """`https://index.docker.io/v1/` and friends -> `docker.io`; `https://host:5000` -> host."""
    from corral.images.registry.hosts import DOCKER_HUB

    if not server:
        return DOCKER_HUB
    host = server.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return DOCKER_HUB if host in ("index.docker.io", "registry-1.docker.io") else host


@click.command("login", cls=RegistryCommand)
@click.argument("server", required=False)
@click.option("-u", "--username")
@click.option("-p", "--password")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin")
@registry_flags
def login(server: str | None, username: str | None, password: str | None, password_stdin: bool,
          tls_verify: bool | None, cert_dir: Path | None, authfile: Path | None) -> None:
    """Log in to a registry (the credentials are checked, then saved)."""
    from corral.images.registry import credentials
    from corral.images.registry.auth import Credentials
    from corral.images.registry.client import RegistryClient
    from corral.images.registry.hosts import host_config

    host = _server(server)
    if password_stdin:
        if password:
            raise InvalidArgument("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\r\n")
    if not username:
        if not sys.stdin.isatty():
            raise InvalidArgument("Cannot perform an interactive login from a non TTY device")
        username = input("Username: ")
    if password is None:
        password = getpass.getpass("Password: ")
    creds = Credentials(username, password)
    client = RegistryClient(host_config(host, tls_verify=tls_verify, cert_dir=cert_dir), credentials=creds)
    try:
        client.ping()
    finally:
        client.close()
    credentials.store(host, creds, authfile=authfile)
    click.echo("Login Succeeded")


@click.command("logout")
@click.argument("server", required=False)
@click.option("--authfile", type=click.Path(dir_okay=False, path_type=Path))
def logout(server: str | None, authfile: Path | None) -> None:
    """Forget the credentials saved for a registry."""
    from corral.images.registry import credentials

    host = _server(server)
    if not credentials.remove(host, authfile=authfile):
        click.echo(f"Not logged in to {host}")
        return
    click.echo(f"Removing login credentials for {host}")


# -- manifest lists ------------------------------------------------------------------------------

def _lists() -> Any:
    from corral.images.registry.manifest_lists import ManifestLists

    return ManifestLists(Path(paths().root))


@click.group("manifest")
def manifest() -> None:
    """Make and push multi-platform manifest lists."""


@manifest.command("create", cls=RegistryCommand)
@click.argument("name")
@click.argument("images", nargs=-1)
@click.option("--amend", "-a", is_flag=True, help="Add to the list if it already exists")
@click.option("--all", "all_platforms", is_flag=True, help="Add every platform of an image index")
@registry_flags
def manifest_create(name: str, images: tuple[str, ...], amend: bool, all_platforms: bool,
                    tls_verify: bool | None, cert_dir: Path | None, authfile: Path | None) -> None:
    """Create a local manifest list NAME, optionally with IMAGES (registry references)."""
    from corral.images.registry import manifest_lists

    lists = _lists()
    lists.create(name, amend=amend)
    for image in images:
        manifest_lists.add(lists, name, image, options=_options(tls_verify, cert_dir, authfile),
                           all_platforms=all_platforms)
    click.echo(lists.get(name).name)


@manifest.command("add", cls=RegistryCommand)
@click.argument("name")
@click.argument("image")
@click.option("--all", "all_platforms", is_flag=True, help="Add every platform of an image index")
@click.option("--os", "os_", help="Override the entry's operating system")
@click.option("--arch", help="Override the entry's architecture")
@click.option("--variant", help="Override the entry's variant")
@registry_flags
def manifest_add(name: str, image: str, all_platforms: bool, os_: str | None, arch: str | None,
                 variant: str | None, tls_verify: bool | None, cert_dir: Path | None,
                 authfile: Path | None) -> None:
    """Add IMAGE (a registry reference) to manifest list NAME; prints the digest added."""
    from corral.images.manifest import Platform
    from corral.images.registry import manifest_lists

    platform = None
    if os_ or arch or variant:
        if not arch:
            raise InvalidArgument("--os/--variant need --arch")
        platform = Platform.parse("/".join(p for p in (os_ or "linux", arch, variant or "") if p))
    click.echo(manifest_lists.add(_lists(), name, image, options=_options(tls_verify, cert_dir, authfile),
                                  all_platforms=all_platforms, platform=platform))


@manifest.command("inspect", cls=RegistryCommand)
@click.argument("name")
@registry_flags
def manifest_inspect(name: str, tls_verify: bool | None, cert_dir: Path | None,
                     authfile: Path | None) -> None:
    """Show a local manifest list, or the manifest a registry has for NAME."""
    from corral.images.registry import manifest_lists

    raw = manifest_lists.inspect(_lists(), name, options=_options(tls_verify, cert_dir, authfile))
    click.echo(json.dumps(json.loads(raw), indent=4))


@manifest.command("push", cls=RegistryCommand)
@click.argument("name")
@click.argument("destination", required=False)
@click.option("--rm", "remove", is_flag=True, help="Remove the local list after pushing")
@click.option("--creds", help="USERNAME[:PASSWORD] for the registry")
@registry_flags
def manifest_push(name: str, destination: str | None, remove: bool, creds: str | None,
                  tls_verify: bool | None, cert_dir: Path | None, authfile: Path | None) -> None:
    """Push manifest list NAME (and the images it lists) to DESTINATION (default: NAME)."""
    from corral.images.registry import manifest_lists

    lists = _lists()
    digest = manifest_lists.push(lists, name, destination,
                                 options=_options(tls_verify, cert_dir, authfile, creds))
    if remove:
        lists.remove(name)
    click.echo(digest)


@manifest.command("rm")
@click.argument("names", nargs=-1, required=True)
def manifest_rm(names: tuple[str, ...]) -> None:
    """Delete local manifest lists."""
    lists = _lists()
    for name in names:
        lists.remove(name)
        click.echo(name)
