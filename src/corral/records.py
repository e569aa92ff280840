"""`NamedTuple` for the engine's records, without typing's cost at import time.

typing.NamedTuple checks every field's annotation when the class is made; under
`from __future__ import annotations` each one is a string that becomes a ForwardRef, built with
compile(): ~10 µs a field, ~2 ms on every `corral run` (RunOptions alone has 60 fields). At run
time this `NamedTuple` makes the same collections.namedtuple from the annotations' names, with
the defaults, methods, properties and docstring of the class body; type checkers see
typing.NamedTuple itself.

    from corral.records import NamedTuple

    class Mount(NamedTuple):
        source: str
        readonly: bool = False
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: this module exists to keep typing's work off the hot path
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    import collections

    _NOT_COPIED = frozenset({"__module__", "__qualname__", "__annotations__", "__doc__",
                             "__orig_bases__", "__dict__", "__weakref__"})

    class _RecordMeta(type):
        def __new__(mcls, typename, bases, namespace):
            annotations = namespace.get("__annotations__", {})
            fields = list(annotations)
            defaults = [namespace[f] for f in fields if f in namespace]
            if any(f not in namespace for f in fields[len(fields) - len(defaults):]):
                raise TypeError(f"{typename}: a field without a default follows one with a default")
            cls = collections.namedtuple(typename, fields, defaults=defaults,
                                         module=namespace.get("__module__"))
            cls.__annotations__ = annotations
            cls.__qualname__ = namespace.get("__qualname__", typename)
            if namespace.get("__doc__"):
                cls.__doc__ = namespace["__doc__"]
            for key, value in namespace.items():
                if key not in _NOT_COPIED and key not in annotations:
                    setattr(cls, key, value)
            return cls

    _Record = type.__new__(_RecordMeta, "NamedTuple", (), {})

    def NamedTuple(typename, fields=None, /, **kwargs):
        """The functional form, as typing's (rare: left to typing itself)."""
        import typing

        return typing.NamedTuple(typename, fields, **kwargs)

    NamedTuple.__mro_entries__ = lambda bases: (_Record,)
