"""``python -m loaders mongo``: the MongoDB app database's collections, incrementally."""

from __future__ import annotations

import argparse
import sys

from config import LoaderSettings
from loaders.mongo.checks import COLLECTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--collection",
        action="append",
        choices=sorted(COLLECTIONS),
        help="only this collection (repeatable; default: all)",
    )
    parser.add_argument("--batch-size", type=int, help="documents per committed batch")
    parser.add_argument(
        "--full-check",
        action="store_true",
        help="also scan every collection for documents whose write time is missing or not a "
        "date (otherwise every LOADER_FULL_CHECK_HOURS, default weekly)",
    )
    parser.add_argument(
        "--reset",
        metavar="COLLECTION",
        choices=sorted(COLLECTIONS),
        help="drop the collection's raw rows and watermark (then reload it)",
    )


def run(args: argparse.Namespace) -> int:
    from loaders.mongo.job import load_all, print_progress, reset_collection

    batch_size = args.batch_size or LoaderSettings.from_env().batch_size
    if args.reset:
        reset_collection(args.reset)
        print(
            f"reset mongo.{args.reset}: raw rows, rejects and watermark removed; rebuild its "
            f'staging with make dbt ARGS="build --full-refresh -s stg_mongo__{args.reset}+"'
        )
        return 0
    results = load_all(
        args.collection,
        batch_size=batch_size,
        progress=print_progress,
        full_check=True if args.full_check else None,
    )
    for r in results:
        print(
            f"mongo.{r.collection:<22} landed {r.landed:>8,}  rejected {r.rejected:>5,}  "
            f"batches {r.batches:>3}  {r.seconds:6.2f}s"
            + ("  (full check)" if r.full_check else "")
        )
        for note in r.notes:
            print(f"  warning: {note}", file=sys.stderr)
    return 0
