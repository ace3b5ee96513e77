"""``python -m config reference``: print the configuration reference (Markdown)."""

from __future__ import annotations

import sys

from config.reference import reference


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["reference"]:
        print("usage: python -m config reference", file=sys.stderr)
        return 2
    sys.stdout.write(reference())
    return 0


if __name__ == "__main__":
    sys.exit(main())
