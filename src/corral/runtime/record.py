"""Frozen dataclasses for the type checker, cheap classes at run time.

`import dataclasses` (which pulls in inspect, ast and dis) and the code generation of each
@dataclass cost corral-runtime about 15 ms per start, more than the rest of a `start`. The type
checker sees the real `dataclasses.dataclass`, `field` and `replace`; at run time `record` gives
the same behaviour for what the runtime uses: keyword/positional __init__ with defaults and
default factories, __eq__, __repr__, immutability for frozen records, and `replace`/`asdict`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import asdict, field, replace
    from dataclasses import dataclass as record
else:
    class _Factory:
        __slots__ = ("make",)

        def __init__(self, make):
            self.make = make

    def field(*, default_factory):
        return _Factory(default_factory)

    def _init(self, *args, **kwargs):
        names = self.__record_fields__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}: too many arguments")
        values = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names or key in values:
                raise TypeError(f"{type(self).__name__}: unexpected argument {key!r}")
            values[key] = value
        defaults = self.__record_defaults__
        for name in names:
            if name not in values:
                if name not in defaults:
                    raise TypeError(f"{type(self).__name__}: missing argument {name!r}")
                default = defaults[name]
                values[name] = default.make() if isinstance(default, _Factory) else default
            object.__setattr__(self, name, values[name])

    def _eq(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__record_fields__)

    def _repr(self):
        body = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__record_fields__)
        return f"{type(self).__name__}({body})"

    def _frozen(self, name, value):
        raise AttributeError(f"cannot assign to field {name!r} of frozen {type(self).__name__}")

    def record(cls=None, /, *, frozen=False):
        def wrap(cls):
            # inspect.get_annotations would import inspect, the very cost avoided here
            names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063
            cls.__record_fields__ = names
            cls.__record_defaults__ = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
            for n in names:
                if isinstance(cls.__dict__.get(n), _Factory):
                    delattr(cls, n)
            cls.__init__ = _init
            cls.__eq__ = _eq
            cls.__repr__ = _repr
            if frozen:
                cls.__setattr__ = _frozen
                cls.__delattr__ = _frozen
                cls.__hash__ = lambda self: hash(tuple(getattr(self, n) for n in names))
            else:
                cls.__hash__ = None
            return cls

        return wrap if cls is None else wrap(cls)

    def replace(obj, /, **changes):
        values = {n: getattr(obj, n) for n in obj.__record_fields__}
        values.update(changes)
        return type(obj)(**values)

    def _plain(value):
        if hasattr(type(value), "__record_fields__"):
            return asdict(value)
        if isinstance(value, (list, tuple)):
            return type(value)(_plain(v) for v in value)
        if isinstance(value, dict):
            return {k: _plain(v) for k, v in value.items()}
        return value

    def asdict(obj):
        return {n: _plain(getattr(obj, n)) for n in obj.__record_fields__}

__all__ = ["asdict", "field", "record", "replace"]
