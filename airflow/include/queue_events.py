"""Message-queue watchers: what makes an arriving message start a load.

The triggerer imports ``apply_function`` by its dotted path, so it lives in
this importable package rather than in a DAG file. It only decides whether a
message is worth a run; the load itself reads the topic from the offsets the
warehouse keeps (the watcher's own consumer group is just a doorbell).
"""

from __future__ import annotations

from typing import Any


def any_message(message: Any) -> bool:
    """Every message rings the bell: even a malformed one must reach loader.rejects."""
    return message is not None and message.error() is None
