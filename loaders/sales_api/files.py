"""Local storage of increments: one ``increments/date=YYYY-MM-DD/`` folder per logical date."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

from config import LocalSettings
from loaders.sales_api.checks import MANIFEST
from loaders.sales_api.client import SalesApiClient


def storage_root() -> Path:
    return Path(
        os.environ.get("SALES_STORAGE_DIR", LocalSettings.from_env().data_dir / "sales_api")
    )


def increment_dir(day: dt.date, root: Path | None = None) -> Path:
    return (root or storage_root()) / "increments" / f"date={day.isoformat()}"


def download_increment(
    client: SalesApiClient, increment: dict, day: dt.date, root: Path | None = None
) -> Path:
    """Save the increment's files (and what the API said about them) for ``day``.

    Files go to a temporary folder that replaces the date's folder only when
    every download finished, so the folder never holds a mix of two fetches.
    """
    final = increment_dir(day, root)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for item in increment["files"]:
        (tmp / item["name"]).write_bytes(client.call("GET", item["url"]).content)
    (tmp / MANIFEST).write_text(json.dumps(increment, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final
