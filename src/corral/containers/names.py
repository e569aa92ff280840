"""Docker-style generated container names: `<adjective>_<surname>`, e.g. `brave_lovelace`.

The lists are corral's own. Like Docker, a collision is retried by the caller (the database's
UNIQUE constraint decides), and after a few tries a digit suffix is added.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

_ADJECTIVES = (
    "admiring", "agile", "amazing", "bold", "brave", "bright", "busy", "calm", "careful",
    "charming", "cheerful", "clever", "cool", "curious", "daring", "dazzling", "eager",
    "earnest", "elated", "elegant", "epic", "fervent", "fond", "friendly", "gallant", "gentle",
    "glad", "graceful", "happy", "hardy", "helpful", "honest", "hopeful", "humble", "jolly",
    "keen", "kind", "lively", "loyal", "lucid", "merry", "modest", "musing", "nifty", "noble",
    "patient", "peaceful", "polite", "proud", "quick", "quiet", "relaxed", "serene", "sharp",
    "silly", "sleepy", "smart", "steady", "stoic", "sunny", "swift", "tender", "thirsty",
    "tidy", "trusting", "upbeat", "vibrant", "vigilant", "warm", "wise", "witty", "zealous",
)  # fmt: skip

_SURNAMES = (
    "agnesi", "archimedes", "babbage", "banach", "bardeen", "bell", "bohr", "boole", "cantor",
    "carson", "cerf", "chandrasekhar", "curie", "darwin", "dijkstra", "einstein", "euclid",
    "euler", "faraday", "fermat", "fermi", "feynman", "franklin", "galileo", "gauss", "germain",
    "goldberg", "goodall", "hamilton", "hawking", "heisenberg", "hertz", "hilbert", "hodgkin",
    "hopper", "hypatia", "johnson", "kepler", "knuth", "kowalevski", "lamarr", "lamport",
    "leibniz", "liskov", "lovelace", "maxwell", "meitner", "mendel", "mirzakhani", "morse",
    "newton", "noether", "pascal", "pasteur", "planck", "poincare", "ramanujan", "ritchie",
    "shannon", "sinoussi", "tesla", "thompson", "torvalds", "turing", "volta", "wiles", "wozniak",
    "yalow", "yonath",
)  # fmt: skip

_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REST = _FIRST | frozenset("_.-")


def valid(name: str) -> bool:
    """Docker's rule for user-chosen names, `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$` (checked without
    `re`: importing it costs every `corral run` ~2 ms)."""
    name = name.removeprefix("/")
    return bool(name) and name[0] in _FIRST and all(c in _REST for c in name)


def generate(attempt: int = 0) -> str:
    """A random name; from the third attempt on, a digit is appended to escape collisions."""
    name = f"{_pick(_ADJECTIVES)}_{_pick(_SURNAMES)}"
    return f"{name}{_pick('0123456789')}" if attempt >= 3 else name


def _pick(choices: Sequence[str]) -> str:
    """random.choice from the OS's generator: the `random` module costs `corral run` ~1 ms."""
    return choices[int.from_bytes(os.urandom(4), "little") % len(choices)]
