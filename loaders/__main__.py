"""``python -m loaders <source>``: land a source's data in the warehouse's raw schemas.

One command per loader package that has a ``cli`` module (``loaders/<source>/cli.py``:
``add_arguments(parser)`` and ``run(args)`` -> exit code), found, not listed:

python -m loaders mongo                      # every collection, incrementally
python -m loaders mongo -c support_tickets   # one collection
python -m loaders mongo --reset event_logs   # forget the watermark and raw rows, reload
python -m loaders mongo --full-check         # and scan for documents no watermark reaches
python -m loaders sales_api --date 2026-10-05          # one day of the partner sales API
python -m loaders sales_api --date 2026-10-01 --days 7  # a backfill: reloads replace
python -m loaders oltp                       # the order system's tables, incrementally
python -m loaders oltp --reset orders        # forget a table's watermark and raw rows
python -m loaders kafka                      # drain new_users_events (offsets in the warehouse)
python -m loaders kafka --max-messages 1000  # at most this many; reports the lag left
python -m loaders events                     # the latest day in ClickHouse, both tables
python -m loaders events --date 2026-10-01 --days 7  # a backfill: reloads replace
python -m loaders reconcile                  # every source against its raw tables; relands
python -m loaders reconcile events           # one source (loaders/<source>/reconcile.py)
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
import sys
from types import ModuleType

import loaders
from config import ConfigError, redact
from loaders.core.reconcile import reconcilers
from loaders.core.warehouse import LoaderError


def commands() -> dict[str, ModuleType]:
    """Every loader package's ``cli`` module, by the package's (the source's) name."""
    found = {}
    for package in pkgutil.iter_modules(loaders.__path__):
        if package.ispkg and importlib.util.find_spec(f"loaders.{package.name}.cli"):
            found[package.name] = importlib.import_module(f"loaders.{package.name}.cli")
    return found


def run_reconcile(sources: list[str]) -> int:
    for name, module in reconcilers().items():
        if not sources or name in sources:
            for result in module.reconcile():
                print(result.line(), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="loaders", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="source", required=True)
    by_name = commands()
    for name, module in by_name.items():
        summary = ((module.__doc__ or "").strip().splitlines() or [f"land the {name} source"])[0]
        module.add_arguments(sub.add_parser(name, help=summary.split(": ", 1)[-1]))
    reconcile = sub.add_parser(
        "reconcile", help="compare sources with their raw tables per partition; reland what differs"
    )
    reconcile.add_argument(
        "sources", nargs="*", metavar="source",
        help=f"default: every one ({', '.join(sorted(reconcilers()))})",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.source == "reconcile" and (unknown := set(args.sources) - set(reconcilers())):
        reconcile.error(
            f"no reconciliation for {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(sorted(reconcilers()))}"
        )
    try:
        if args.source == "reconcile":
            return run_reconcile(args.sources)
        return by_name[args.source].run(args)
    except (LoaderError, ConfigError) as exc:
        print(f"loaders {args.source}: {redact(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
