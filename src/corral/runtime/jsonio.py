"""JSON through the C accelerator `_json` directly.

The `json` package imports `re` (and with it enum, functools...) to compile patterns the C
scanner never uses; for a runtime that starts for every podman/containerd step that is a
noticeable share of a `start`. The C scanner and encoder are the same ones `json` uses, so the
results are identical; errors (rare) fall back to `json` for its messages.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"


def _constant(name: str) -> float:
    return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


class _Context:
    """The attributes _json.make_scanner reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo: dict[str, str] = {}  # noqa: RUF012 (read by the C scanner)


_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # typeshed wants a scanner


def loads(data: str | bytes) -> Any:
    text = data.decode() if isinstance(data, bytes) else data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except (StopIteration, ValueError, SystemError):
        # The C scanner reports errors through json.decoder's JSONDecodeError, which it finds
        # only when json.decoder is already imported (else SystemError): let json say it.
        end = -1
    if end < 0 or text[end:].strip(_WHITESPACE):
        import json

        return json.loads(text)  # raises json.JSONDecodeError with the position
    return value


def _default(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encode = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ": ", ", ",
                             False, False, True)


def dumps(obj: Any, *, indent: int | str | None = None) -> str:
    """json.dumps(obj) or json.dumps(obj, indent=indent) (what `state`, `spec` print)."""
    if indent is None:
        return "".join(_encode(obj, 0))
    step = " " * indent if isinstance(indent, int) else indent
    return _pretty(obj, step, "")


def _pretty(obj: Any, step: str, prefix: str) -> str:
    inner = prefix + step
    if isinstance(obj, dict) and obj:
        items = (f"{inner}{_json.encode_basestring_ascii(str(k))}: {_pretty(v, step, inner)}"
                 for k, v in obj.items())
        return "{\n" + ",\n".join(items) + f"\n{prefix}}}"
    if isinstance(obj, (list, tuple)) and obj:
        return "[\n" + ",\n".join(inner + _pretty(v, step, inner) for v in obj) + f"\n{prefix}]"
    return "".join(_encode(obj, 0))
