"""Output like docker's: aligned tables, `--format` with a Go-template subset, and `json`.

Supported template syntax: `{{.Field}}`, `{{.A.B}}`, `{{json .}}`, `{{json .Field}}`,
`{{index .Labels "key"}}`, `{{upper .X}}`, `{{lower .X}}`, `{{title .X}}`, `{{join .X ","}}`, the
`table` prefix (a header row from the field names) and `\\t`/`\\n` escapes. `--format json`
prints one JSON object per line, like docker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

TYPE_CHECKING = False  # not typing's: `ps` must not import typing (~2 ms)
if TYPE_CHECKING:
    from typing import Any

# Patterns for `re`'s own cache: only templates import `re` (and `json`); `ps` without
# --format needs neither.
_ACTION = r"{{\s*(.*?)\s*}}"
_TOKEN = r'"(?:[^"\\]|\\.)*"|\S+'


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Columns separated by at least three spaces, like docker's tabwriter."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = []
    for row in [header, *rows]:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)] + [row[-1]]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def _lookup(obj: Any, path: str) -> Any:
    if path == ".":
        return obj
    for part in path.lstrip(".").split("."):
        obj = obj.get(part, "") if isinstance(obj, Mapping) else getattr(obj, part, "")
    return obj


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_show(v)}" for k, v in value.items()) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_show(v) for v in value) + "]"
    return "" if value is None else str(value)


def _evaluate(expr: str, obj: Any) -> Any:
    import json
    import re

    tokens = re.findall(_TOKEN, expr)
    if not tokens:
        return ""
    args = [json.loads(t) if t.startswith('"') else _lookup(obj, t) if t.startswith(".") else t
            for t in tokens[1:]]
    name = tokens[0]
    if name.startswith("."):
        return _lookup(obj, name)
    if name == "json":
        return json.dumps(args[0] if args else obj)
    if name == "index":
        container, key = args[0], args[1]
        return container.get(key, "") if isinstance(container, Mapping) else container[int(key)]
    if name in ("upper", "lower", "title"):
        text = _show(args[0])
        return {"upper": text.upper(), "lower": text.lower(), "title": text.title()}[name]
    if name == "join":
        return str(args[1]).join(_show(v) for v in args[0])
    if name == "println":
        return " ".join(_show(a) for a in args) + "\n"
    raise ValueError(f"template: function {name!r} not defined")


def render(template: str, obj: Any) -> str:
    """One object through a Go-style template (without the `table` prefix)."""
    import re

    template = template.replace("\\t", "\t").replace("\\n", "\n")
    return re.sub(_ACTION, lambda m: _show(_evaluate(m.group(1), obj)), template)


def header_for(template: str) -> str:
    """docker's header for `table {{.ID}}\\t{{.Names}}`: the field names, upper-cased."""
    import re

    def name(m: re.Match[str]) -> str:
        tokens = re.findall(_TOKEN, m.group(1))
        field = next((t for t in tokens if t.startswith(".")), tokens[0] if tokens else "")
        return re.sub(r"(?<!^)(?=[A-Z][a-z])", " ", field.lstrip(".").split(".")[-1]).upper()

    return re.sub(_ACTION, name, template.replace("\\t", "\t"))


def output(template: str | None, objects: Sequence[Any], default_rows: Sequence[Sequence[str]],
           default_header: Sequence[str]) -> str:
    """What a listing command prints: its table, `--format json`, or a template per object."""
    if not template or template == "table":
        return table(default_rows, default_header)
    if template == "json":
        import json

        return "\n".join(json.dumps(o) for o in objects)
    if template.startswith("table "):
        body = template[len("table "):]
        lines = [render(body, o) for o in objects]
        rows = [line.split("\t") for line in [header_for(body), *lines]]
        if all(len(r) == len(rows[0]) for r in rows):
            return table(rows[1:], rows[0])
        return "\n".join([header_for(body), *lines])
    return "\n".join(render(template, o) for o in objects)


def human_duration(seconds: float) -> str:
    """docker's units.HumanDuration ("Less than a second", "About an hour", "3 weeks")."""
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


def human_size(size: float) -> str:
    """docker's units.HumanSize: decimal units, 3 significant digits ("2.14MB")."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.3g}{units[i]}"
