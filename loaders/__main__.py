"""``python -m loaders``: land source data in the warehouse's raw schemas.

python -m loaders mongo                      # every collection, incrementally
python -m loaders mongo -c support_tickets   # one collection
python -m loaders mongo --reset event_logs   # forget the watermark and raw rows, reload
"""

from __future__ import annotations

import argparse
import sys

from loaders.mongo import COLLECTIONS
from loaders.mongo_run import load_all, print_progress, reset_collection
from loaders.settings import ConfigError, LoaderSettings
from loaders.warehouse import LoaderError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="loaders", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="source", required=True)
    mongo = sub.add_parser("mongo", help="MongoDB app database -> raw_mongo.*")
    mongo.add_argument(
        "-c",
        "--collection",
        action="append",
        choices=sorted(COLLECTIONS),
        help="only this collection (repeatable; default: all)",
    )
    mongo.add_argument("--batch-size", type=int, help="documents per committed batch")
    mongo.add_argument(
        "--reset",
        metavar="COLLECTION",
        choices=sorted(COLLECTIONS),
        help="drop the collection's raw rows and watermark (then reload it)",
    )
    args = parser.parse_args(argv)
    try:
        batch_size = args.batch_size or LoaderSettings.from_env().batch_size
        if args.reset:
            reset_collection(args.reset)
            print(f"reset mongo.{args.reset}: raw rows and watermark removed")
            return 0
        results = load_all(args.collection, batch_size=batch_size, progress=print_progress)
    except (LoaderError, ConfigError) as exc:
        print(f"loaders {args.source}: {exc}", file=sys.stderr)
        return 1
    for r in results:
        print(
            f"mongo.{r.collection:<22} landed {r.landed:>8,}  rejected {r.rejected:>5,}  "
            f"batches {r.batches:>3}  {r.seconds:6.2f}s"
        )
        for note in r.notes:
            print(f"  warning: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
