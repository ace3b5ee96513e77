"""``python -m stack up|down|status``: the embedded services for local runs."""

from __future__ import annotations

import argparse
import sys

from config import ConfigError
from stack import services
from stack.embedded_postgres import ServiceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status"))
    args = parser.parse_args(argv)
    try:
        lines = getattr(services, args.command)()
    except (ServiceError, ConfigError) as exc:
        print(f"stack {args.command}: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
