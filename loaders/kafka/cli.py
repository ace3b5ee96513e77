"""``python -m loaders kafka``: drain the registrations topic (offsets kept in the warehouse)."""

from __future__ import annotations

import argparse

from loaders.core.commands import say


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-messages", type=int, help="stop after this many messages")
    parser.add_argument("--batch-size", type=int, help="messages per committed batch")
    parser.add_argument(
        "--reset", action="store_true", help="drop raw rows and stored offsets (then reload)"
    )


def run(args: argparse.Namespace) -> int:
    from loaders.kafka.job import load_topic, print_progress, reset_topic

    if args.reset:
        reset_topic()
        print(
            "reset kafka: raw rows, rejects and stored offsets removed; the next load reads the "
            "topic from its earliest offset"
        )
        return 0
    r = load_topic(
        max_messages=args.max_messages, batch_size=args.batch_size, progress=print_progress
    )
    lag = ", ".join(f"p{p}={n:,}" for p, n in sorted(r.lag.items())) or "none"
    say(
        f"kafka.{r.topic} landed {r.landed:,}  rejected {r.rejected:,}  batches {r.batches}  "
        f"{r.seconds:.2f}s  lag {lag}",
        r.notes,
    )
    return 0
