"""``python -m stack up|down|status|psql``: the embedded services for local runs.

``psql`` opens psql on the configured warehouse (``-c SQL``: runs one
statement, output only, stopping at the first error); the password goes to
psql in its environment, never on its command line.
"""

from __future__ import annotations

import argparse
import os
import sys

from config import ConfigError, WarehouseSettings, redact
from stack import services
from stack.embedded_postgres import ServiceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "psql"))
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing but errors (for scripts)"
    )
    parser.add_argument("-c", dest="sql", metavar="SQL", help="psql: run this and exit")
    args = parser.parse_args(argv)
    if args.command == "psql":
        return psql(args.sql)
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


def psql(sql: str | None) -> int:
    """Replace this process with psql on the warehouse."""
    from stack.embedded_postgres import psql_path

    try:
        wh = WarehouseSettings.from_env()
    except ConfigError as exc:
        print(f"stack psql: {redact(str(exc))}", file=sys.stderr)
        return 1
    from psycopg.conninfo import make_conninfo

    conninfo = make_conninfo(
        host=wh.host, port=wh.port, user=wh.user, dbname=wh.dbname, sslmode=wh.sslmode
    )
    argv = [str(psql_path()), conninfo]
    if sql is not None:
        argv += ["-X", "-v", "ON_ERROR_STOP=1", "-c", sql]
    if wh.password:
        os.environ["PGPASSWORD"] = wh.password.get_secret_value()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    sys.exit(main())
