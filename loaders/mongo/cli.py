"""``python -m loaders mongo``: the MongoDB app database's collections, incrementally."""

from __future__ import annotations

import argparse

from config import LoaderSettings
from loaders.core.commands import add_stream_options, say
from loaders.mongo.checks import COLLECTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stream_options(parser, "collection", COLLECTIONS, "documents")
    parser.add_argument(
        "--full-check",
        action="store_true",
        help="also scan every collection for documents whose write time is missing or not a "
        "date (otherwise every LOADER_FULL_CHECK_HOURS, default weekly)",
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
        say(
            f"mongo.{r.collection:<22} landed {r.landed:>8,}  rejected {r.rejected:>5,}  "
            f"batches {r.batches:>3}  {r.seconds:6.2f}s"
            + ("  (full check)" if r.full_check else ""),
            r.notes,
        )
    return 0
