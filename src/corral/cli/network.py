"""`corral network ...` and `corral port`: parse flags, call corral.network, print like Docker."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import sys
from typing import Any

import click

from corral.config import paths
from corral.errors import CorralError, InvalidArgument, NotFound
from corral.network import attach, networks, schema
from corral.network.model import Attach, Network


def _conn() -> sqlite3.Connection:
    return schema.connect(paths())


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {what} {v!r}: want key=value")
        out[key] = val if sep else ""
    return out


def _field(doc: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _render(template: str, doc: dict[str, Any]) -> str:
    """The small Go-template subset scripts use: {{.Field.Sub}} and {{json .Field}}."""
    if template == "json":
        return json.dumps(doc)

    def one(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr.startswith("json "):
            return json.dumps(_field(doc, expr[5:].strip().lstrip(".")))
        value = _field(doc, expr.lstrip("."))
        if isinstance(value, bool):
            return str(value).lower()
        return json.dumps(value) if isinstance(value, (dict, list)) else str(value)

    return re.sub(r"\{\{(.*?)\}\}", one, template).replace("\\t", "\t").replace("\\n", "\n")


@click.group(name="network")
def network() -> None:
    """Manage networks."""


@network.command(name="create")
@click.option("-d", "--driver", default="bridge", show_default=True)
@click.option("--subnet")
@click.option("--gateway")
@click.option("--ip-range")
@click.option("--internal", is_flag=True, help="No outbound traffic, no NAT.")
@click.option("--label", multiple=True, help="key=value")
@click.option("-o", "--opt", multiple=True, help="Driver option key=value (mtu).")
@click.option("--ipv6", is_flag=True)
@click.option("--attachable", is_flag=True, hidden=True)
@click.argument("name")
def create(driver: str, subnet: str | None, gateway: str | None, ip_range: str | None,
           internal: bool, label: tuple[str, ...], opt: tuple[str, ...], ipv6: bool,
           attachable: bool, name: str) -> None:
    """Create a network."""
    if ipv6:
        raise InvalidArgument("IPv6 networks are not supported yet")
    n = networks.create(_conn(), name, driver=driver, subnet=subnet, gateway=gateway,
                        ip_range=ip_range, internal=internal, labels=_pairs(label, "label"),
                        options=_pairs(opt, "option"))
    click.echo(n.id)


def _summary(conn: sqlite3.Connection, n: Network | str) -> dict[str, Any]:
    if isinstance(n, str):  # host / none
        pseudo_id = hashlib.sha256(n.encode()).hexdigest()
        return {"ID": pseudo_id, "Name": n, "Driver": "host" if n == "host" else "null",
                "Scope": "local", "Internal": False, "Labels": {}, "Used": True}
    return {"ID": n.id, "Name": n.name, "Driver": n.driver, "Scope": "local",
            "Internal": n.internal, "Labels": n.labels, "Subnet": n.subnet,
            "Used": n.name == "bridge" or bool(networks.users(conn, n))}


def _matches(s: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for key, wanted in filters.items():
        if key == "name" and not any(w in s["Name"] for w in wanted):
            return False
        if key == "id" and not any(s["ID"].startswith(w) for w in wanted):
            return False
        if key == "driver" and s["Driver"] not in wanted:
            return False
        if key == "label":
            for w in wanted:
                k, sep, v = w.partition("=")
                if k not in s["Labels"] or (sep and s["Labels"][k] != v):
                    return False
        if key == "dangling" and (wanted[-1] in ("true", "1")) == s["Used"]:
            return False
        if key not in ("name", "id", "driver", "label", "dangling"):
            raise InvalidArgument(f"invalid filter {key!r}")
    return True


@network.command(name="ls")
@click.option("-f", "--filter", "filters", multiple=True, help="name=, id=, driver=, label=")
@click.option("-q", "--quiet", is_flag=True)
@click.option("--no-trunc", is_flag=True)
@click.option("--format", "fmt")
def ls(filters: tuple[str, ...], quiet: bool, no_trunc: bool, fmt: str | None) -> None:
    """List networks."""
    conn = _conn()
    wanted: dict[str, list[str]] = {}
    for f in filters:
        key, _, value = f.partition("=")
        wanted.setdefault(key, []).append(value)
    rows = [_summary(conn, n) for n in networks.list_all(conn)]
    rows += [_summary(conn, name) for name in ("host", "none")]
    rows = [r for r in rows if _matches(r, wanted)]
    for r in rows:
        r["ID"] = r["ID"] if no_trunc else r["ID"][:12]
    if quiet:
        click.echo("".join(f"{r['ID']}\n" for r in rows), nl=False)
    elif fmt:
        click.echo("".join(_render(fmt, r) + "\n" for r in rows), nl=False)
    else:
        width = 64 if no_trunc else 12
        click.echo(f"{'NETWORK ID':<{width}}   {'NAME':<20} {'DRIVER':<9} SCOPE")
        for r in rows:
            click.echo(f"{r['ID']:<{width}}   {r['Name']:<20} {r['Driver']:<9} {r['Scope']}")


@network.command(name="inspect")
@click.option("-f", "--format", "fmt")
@click.argument("names", nargs=-1, required=True)
def inspect(fmt: str | None, names: tuple[str, ...]) -> None:
    """Show networks in detail (JSON)."""
    conn = _conn()
    docs = [networks.pseudo(n) if n in ("host", "none")
            else networks.inspect(conn, networks.get(conn, n)) for n in names]
    if fmt:
        click.echo("".join(_render(fmt, d) + "\n" for d in docs), nl=False)
    else:
        click.echo(json.dumps(docs, indent=4))


@network.command(name="rm")
@click.option("-f", "--force", is_flag=True, help="Do not fail on unknown networks.")
@click.argument("names", nargs=-1, required=True)
def rm(force: bool, names: tuple[str, ...]) -> None:
    """Remove networks that no container uses."""
    conn, failures = _conn(), 0
    for name in names:
        try:
            networks.remove(conn, paths(), name)
            click.echo(name)
        except NotFound:
            if force:
                continue
            failures += 1
            click.echo(f"Error: network {name} not found", err=True)
        except CorralError as e:
            failures += 1
            click.echo(f"Error: {e}", err=True)
    if failures:
        sys.exit(125)


network.add_command(rm, name="remove")


@network.command(name="prune")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("--filter", "filters", multiple=True, hidden=True)
def prune(force: bool, filters: tuple[str, ...]) -> None:
    """Remove all networks no container uses."""
    if not force and not click.confirm(
            "WARNING! This will remove all custom networks not used by at least one container.\n"
            "Are you sure you want to continue?"):
        return
    from corral.containers import networking

    networking.repair(paths())
    removed = networks.prune(_conn(), paths())
    if removed:
        click.echo("Deleted Networks:")
        click.echo("".join(f"{n.name}\n" for n in removed), nl=False)


def _container(ref: str) -> str:
    """The container's id, by the containers store's lookup (names follow `rename`)."""
    from corral.containers.store import Store

    return Store(paths()).get(ref).id


@network.command(name="connect")
@click.option("--ip")
@click.option("--alias", multiple=True)
@click.argument("name")
@click.argument("container")
def connect(ip: str | None, alias: tuple[str, ...], name: str, container: str) -> None:
    """Connect a container to a network."""
    conn = _conn()
    attach.connect(conn, paths(), _container(container), Attach(name, ip, alias))


@network.command(name="disconnect")
@click.option("-f", "--force", is_flag=True)
@click.argument("name")
@click.argument("container")
def disconnect(force: bool, name: str, container: str) -> None:
    """Disconnect a container from a network."""
    conn = _conn()
    attach.disconnect(conn, paths(), _container(container), name)


@click.command(name="port")
@click.argument("container")
@click.argument("private_port", required=False)
def port(container: str, private_port: str | None) -> None:
    """List a container's published ports, or the host address of one."""
    conn = _conn()
    cid = _container(container)
    lines = []
    for m in attach.published(conn, cid):
        for i in range(m.count):
            key = f"{m.container_port + i}/{m.protocol}"
            if private_port and private_port not in (key, str(m.container_port + i)):
                continue
            host = f"{m.host_ip or '0.0.0.0'}:{m.host_port + i}"
            lines.append(host if private_port else f"{key} -> {host}")
    if private_port and not lines:
        raise NotFound(f"No public port '{private_port}' published for {container}")
    click.echo("".join(f"{line}\n" for line in lines), nl=False)
