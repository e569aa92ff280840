"""`corral images` / `corral image ls`: parsing, filtering and printing, without click.

The console script sends `corral images` straight here (corral.cli.fast): listing 100 images
must cost about what docker's does (~30 ms), so this module and what it imports stay small:
no click, no dataclasses, the store's heavy parts never touched. The click command in
corral.cli.image hands its raw arguments to `main()` too, so there is one parser.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from corral.cli.format import human_duration, human_size
from corral.errors import CorralError, InvalidArgument, exit_code

# Not typing's TYPE_CHECKING, and fnmatch only for a reference filter: typing, re and enum
# would cost every `corral images` ~4 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.images.service import Image, ImageService

USAGE = """Usage:  corral images [OPTIONS] [REPOSITORY[:TAG]]

List images

Options:
  -a, --all             Show all images (default hides intermediate images)
      --digests         Show digests
  -f, --filter filter   Filter output based on conditions provided
                        (dangling=true|false, label=<key>[=<value>], reference=<pattern>,
                        before=<image>, since=<image>)
      --format string   Format output using a Go template or 'json'
      --no-trunc        Don't truncate output
  -q, --quiet           Only show image IDs"""

_BOOL = {"-a": "all", "--all": "all", "-q": "quiet", "--quiet": "quiet", "--digests": "digests",
         "--no-trunc": "no_trunc"}
_VALUE = {"-f": "filter", "--filter": "filter", "--format": "format"}


class Options:
    def __init__(self) -> None:
        self.all = self.quiet = self.digests = self.no_trunc = False
        self.filter: list[str] = []
        self.format: str | None = None
        self.repository: str | None = None


def parse(argv: Sequence[str]) -> Options:
    """docker's flag syntax: -aq, -f x, -fx, --filter=x, --format x."""
    opts = Options()
    args = list(argv)
    positional: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == "--":
            positional += args
            break
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in _BOOL and not eq:
                setattr(opts, _BOOL[name], True)
            elif name in _VALUE:
                if not eq:
                    if not args:
                        raise InvalidArgument(f"flag needs an argument: {name}")
                    value = args.pop(0)
                _set(opts, _VALUE[name], value)
            else:
                raise InvalidArgument(f"unknown flag: {name}")
        elif arg.startswith("-") and len(arg) > 1:
            for i, ch in enumerate(arg[1:], 1):
                flag = "-" + ch
                if flag in _BOOL:
                    setattr(opts, _BOOL[flag], True)
                elif flag in _VALUE:
                    value = arg[i + 1:].removeprefix("=")
                    if not value:
                        if not args:
                            raise InvalidArgument(f"flag needs an argument: '{ch}' in {arg}")
                        value = args.pop(0)
                    _set(opts, _VALUE[flag], value)
                    break
                else:
                    raise InvalidArgument(f"unknown shorthand flag: '{ch}' in {arg}")
        else:
            positional.append(arg)
    if len(positional) > 1:
        raise InvalidArgument('"corral images" accepts at most 1 argument')
    opts.repository = positional[0] if positional else None
    return opts


def _set(opts: Options, key: str, value: str) -> None:
    if key == "filter":
        opts.filter.append(value)
    else:
        opts.format = value


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


def ago(created: str) -> str:
    t = parse_time(created)
    return human_duration(time.time() - t) + " ago" if t else "N/A"


def familiar(name: str) -> tuple[str, str]:
    from corral.images import reference

    ref = reference.parse(name)
    return ref.familiar_name(), ref.tag or "<none>"


# -- images ------------------------------------------------------------------------------------
def _row_objects(images: Sequence[Image], digests: bool, no_trunc: bool,
                 templated: bool = True) -> list[dict[str, str]]:
    """docker's row fields; the CreatedAt string only when a template may ask for it."""
    rows = []
    now = time.time()
    for im in images:
        pairs = [familiar(n) for n in im.names] or [("<none>", "<none>")]
        t = parse_time(im.created)
        since = human_duration(now - t) + " ago" if t else "N/A"
        created_at = _created_at(t) if templated else ""
        size = human_size(im.size)
        for repo, tag in pairs:
            rows.append({
                "Containers": "N/A", "CreatedAt": created_at, "CreatedSince": since,
                "Digest": im.digest or "<none>", "ID": im.id if no_trunc else im.short_id,
                "Repository": repo, "SharedSize": "N/A", "Size": size, "Tag": tag,
                "UniqueSize": "N/A", "VirtualSize": size,
            })
    return rows


def _created_at(t: float) -> str:
    if not t:
        return ""
    return datetime.fromtimestamp(t).astimezone().strftime("%Y-%m-%d %H:%M:%S %z %Z")


def _filter(images: list[Image], filters: Sequence[str], svc: ImageService) -> list[Image]:
    """Each filter narrows the list, except that several `reference=` match any of them."""
    patterns = [f.partition("=")[2] for f in filters if f.startswith("reference=")]
    if patterns:
        images = [i for i in images if any(_reference_match(i, p) for p in patterns)]
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
            pass  # above
        elif key in ("before", "since"):
            pivot = parse_time(svc.get(value).created)
            images = [i for i in images
                      if (parse_time(i.created) < pivot if key == "before" else
                          parse_time(i.created) > pivot)]
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
    return images


def prune_filter(filters: Sequence[str]) -> Callable[[Image], bool] | None:
    """`image prune --filter`: until=<timestamp|duration>, label=<k>[=<v>], label!=<k>[=<v>]."""
    cutoffs: list[float] = []
    labels: list[tuple[bool, str, str | None]] = []  # (wanted, key, value or None)
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {f}")
        if key == "until":
            cutoffs.append(_until(value))
        elif key in ("label", "label!"):
            k, has_value, v = value.partition("=")
            labels.append((key == "label", k, v if has_value else None))
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
    if not cutoffs and not labels:
        return None

    def selected(im: Image) -> bool:
        created = parse_time(im.created)
        if any(created >= c for c in cutoffs):
            return False
        for wanted, k, v in labels:
            has = k in im.labels and (v is None or im.labels[k] == v)
            if has != wanted:
                return False
        return True

    return selected


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def _until(value: str) -> float:
    """A unix timestamp, an RFC 3339 time, or a Go duration before now ("24h", "90m")."""
    if value and value[-1] in _DURATION_UNITS and value[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(value[:-1]) * _DURATION_UNITS[value[-1]]
    try:
        return float(value)
    except ValueError:
        pass
    t = parse_time(value)
    if not t:
        raise InvalidArgument(f"invalid filter 'until={value}': want a timestamp or a duration")
    return t


def _reference_match(image: Image, pattern: str) -> bool:
    import fnmatch

    for name in image.names:
        repo, tag = familiar(name)
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
    return image._replace(names=names)


def render(opts: Options, svc: ImageService) -> str:
    """What `corral images` prints for these options."""
    from corral.cli.format import output

    found = svc.list()
    if opts.repository:
        found = _restrict(found, opts.repository)
    found = _filter(found, opts.filter, svc)
    rows = _row_objects(found, opts.digests, opts.no_trunc, templated=bool(opts.format))
    if opts.quiet:  # one id per row, repeated for each tag, as docker does
        return "\n".join(r["ID"] for r in rows)
    digests = opts.digests
    header = ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED", "SIZE"]
    table_rows = [[r["Repository"], r["Tag"], *([r["Digest"]] if digests else []), r["ID"],
                   r["CreatedSince"], r["Size"]] for r in rows]
    return output(opts.format, rows, table_rows, header)


def main(argv: Sequence[str]) -> int:
    """`corral images ARGS`: prints, returns the exit code (errors as one line, like docker)."""
    if "-h" in argv or "--help" in argv:
        return _write(USAGE)
    from corral.config import paths
    from corral.images.service import ImageService

    try:
        text = render(parse(argv), ImageService(paths()))
    except CorralError as e:
        print(f"Error: {e}", file=sys.stderr)
        return exit_code(e)
    return _write(text) if text else 0


def _write(text: str) -> int:
    """Print; a reader that went away (`corral images | head -1`) is not an error."""
    import os

    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0
