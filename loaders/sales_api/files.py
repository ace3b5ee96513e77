"""Local storage of increments: one ``increments/date=YYYY-MM-DD/`` folder per logical date.

A new fetch never damages what is already on disk: files are downloaded into a
temporary sibling folder, checked at file level (every file whole, as many rows
as the API announced, headers as agreed), and only then swapped in. A fetch
that fails leaves the date's previous files as they were, and the temporary
folders of runs that crashed are removed by the next download.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import socket
import time
from pathlib import Path

from loaders.core.warehouse import LoaderError
from loaders.sales_api.checks import MANIFEST, FileProblem, verify_increment
from loaders.sales_api.client import SalesApiClient
from loaders.sales_api.settings import SalesApiSettings

# date=YYYY-MM-DD.tmp-<host>-<pid>[.old]; runs before the host was in the name: .tmp-<pid>
_TMP = re.compile(
    r"(?P<date>date=[0-9-]+)\.tmp-"  # the date's folder name, then
    r"(?:(?P<host>.+)-)?(?P<pid>[0-9]+)(?P<old>\.old)?"  # who made it; .old: the swapped-out one
)
FOREIGN_TMP_MAX_AGE_SECONDS = 24 * 3600  # another host's leftover: only when surely dead


def storage_root() -> Path:
    return SalesApiSettings.from_env().storage_dir


def increment_dir(day: dt.date, root: Path | None = None) -> Path:
    return (root or storage_root()) / "increments" / f"date={day.isoformat()}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own name, from an earlier process that had our pid: a leftover
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is someone else's
    return True


def remove_leftovers(parent: Path) -> list[Path]:
    """Remove the temporary folders of downloads that crashed; returns what was removed.

    A folder belongs to a crashed run when its process (pid in the name) is
    gone on this host; a folder named after another host (shared storage) is
    removed only once it is a day old, since its process cannot be checked. A
    run that crashed in the middle of a swap left the date's previous files in
    ``.old``: they are put back rather than removed.
    """
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    host = socket.gethostname()
    for path in parent.iterdir():
        match = _TMP.fullmatch(path.name)
        if not match or not path.is_dir():
            continue
        stale = False
        if match["host"] in (None, host):
            stale = not _alive(int(match["pid"]))
        else:
            with contextlib.suppress(OSError):
                stale = time.time() - path.stat().st_mtime > FOREIGN_TMP_MAX_AGE_SECONDS
        if not stale:
            continue
        final = parent / match["date"]
        if match["old"] and not final.exists():
            path.rename(final)
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _swap(tmp: Path, final: Path) -> None:
    """Put ``tmp`` in ``final``'s place; the old folder goes only once the new one is there."""
    old = tmp.with_name(f"{tmp.name}.old")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _listed_files(increment: dict, day: dt.date) -> list[tuple[str, str]]:
    """(name, url) of each file the API listed; a listing not as agreed is one line."""
    files = increment.get("files") if isinstance(increment, dict) else None
    if not isinstance(files, list) or not all(
        isinstance(f, dict)
        and isinstance(f.get("name"), str)
        and f["name"] == Path(f["name"]).name  # a plain name: never outside the folder
        and f["name"] not in ("", ".", "..", MANIFEST)
        and isinstance(f.get("url"), str)
        for f in files
    ):
        raise LoaderError(
            f"the sales API's increment for {day} does not list its files as agreed "
            f"(name, url, rows): {json.dumps(increment)[:200]}"
        )
    return [(f["name"], f["url"]) for f in files]


def download_increment(
    client: SalesApiClient, increment: dict, day: dt.date, root: Path | None = None
) -> Path:
    """Save the increment's files (and what the API said about them) for ``day``.

    Files go to a temporary folder that replaces the date's folder only when
    every download finished and passed the file-level checks, so the folder
    never holds a mix of two fetches, nor a truncated one.
    """
    final = increment_dir(day, root)
    files = _listed_files(increment, day)
    tmp = final.with_name(f"{final.name}.tmp-{socket.gethostname()}-{os.getpid()}")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(final.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, url in files:
            (tmp / name).write_bytes(client.call("GET", url).content)
        (tmp / MANIFEST).write_text(json.dumps(increment, indent=2))
        try:
            verify_increment(tmp)
        except FileProblem as exc:
            kept = "keeps the previous files" if final.exists() else "was not created"
            raise LoaderError(
                f"the {day} increment from the sales API was discarded: {exc.detail}; "
                f"{final} {kept}"
            ) from None
        _swap(tmp, final)
    except OSError as exc:  # disk full, permissions, a concurrent download of the same date
        where = f" ({exc.filename})" if exc.filename else ""
        raise LoaderError(
            f"cannot save the {day} increment in {final}: {exc.strerror or exc}{where} "
            "(check SALES_STORAGE_DIR)"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
