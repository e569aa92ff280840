"""corral-runtime's command line (runc's verbs and flags)."""

from __future__ import annotations

import sys

VERSION = "0.1.0"
SPEC_VERSION = "1.1.0"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["--version"], ["-v"]):
        print(f"corral-runtime version {VERSION}\nspec: {SPEC_VERSION}")
        return 0
    print("corral-runtime: no command given", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
