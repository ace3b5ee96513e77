"""``python -m stack up|down|status``: the embedded services for local runs."""

from __future__ import annotations

import argparse
import sys

from config import ConfigError, redact
from stack import services
from stack.embedded_postgres import ServiceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing but errors (for scripts)"
    )
    args = parser.parse_args(argv)
    healthy = True
    try:
        if args.command == "status":
            lines, healthy = services.status()
        else:
            lines = getattr(services, args.command)()
    except (ServiceError, ConfigError) as exc:
        print(f"stack {args.command}: {redact(str(exc))}", file=sys.stderr)
        return 1
    if not args.quiet:
        for line in lines:
            print(line)
    if not healthy:
        print("stack status: a configured service does not answer", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
