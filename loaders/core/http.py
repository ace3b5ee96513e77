"""What every HTTP client of the project shares: reading ``Retry-After``, short error lines."""

from __future__ import annotations

import datetime as dt
import email.utils

RETRY_AFTER_MAX_SECONDS = 60.0  # the longest wait a Retry-After header gets


def retry_after_seconds(header: str | None, now: dt.datetime | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, capped; None when absent or unreadable.

    Both forms of RFC 9110 are read: delay-seconds (``120``) and an HTTP date.
    """
    if header is None:
        return None
    header = header.strip()
    if header.isascii() and header.isdigit():
        seconds = float(header)
    else:
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


def one_line(text: str, limit: int = 200) -> str:
    """A server's answer or a driver's message as one short line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
