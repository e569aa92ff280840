"""corral.records.NamedTuple behaves as typing.NamedTuple does for the engine's records."""

from __future__ import annotations

import pytest

from corral.records import NamedTuple


class Mount(NamedTuple):
    """A mount."""

    source: str
    target: str = "/"
    options: tuple[str, ...] = ()

    @property
    def readonly(self) -> bool:
        return "ro" in self.options

    @classmethod
    def of(cls, text: str) -> Mount:
        source, _, target = text.partition(":")
        return cls(source, target)

    def describe(self) -> str:
        return f"{self.source} on {self.target}"


def test_fields_defaults_and_tuple_behaviour() -> None:
    m = Mount("/src")
    assert isinstance(m, tuple) and tuple(m) == ("/src", "/", ())
    assert Mount._fields == ("source", "target", "options")
    assert m._replace(options=("ro",)).readonly and not m.readonly
    assert m._asdict() == {"source": "/src", "target": "/", "options": ()}
    assert Mount.of("/a:/b") == Mount("/a", "/b") and type(Mount.of("/a:/b")) is Mount
    assert Mount("/a", "/b").describe() == "/a on /b"
    assert Mount.__doc__ == "A mount." and Mount.__module__ == __name__
    assert repr(m) == "Mount(source='/src', target='/', options=())"


def test_a_field_without_default_after_one_with_default_is_refused() -> None:
    with pytest.raises(TypeError, match="without a default follows"):
        class Bad(NamedTuple):
            a: int = 1
            b: int  # type: ignore[misc]  # what is being refused
