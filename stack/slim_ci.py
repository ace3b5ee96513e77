"""dbt slim CI: a change builds what it touched, deferring everything else to main's last build.

``python -m stack.slim_ci save DIR`` (main's workflow, after ``make run``):
DIR gets what a pull request's CI defers to: the last good build's manifest
(dbt's state:modified compares against it) and a dump of the warehouse it
built (raw data and every relation; deferred refs read from it).

``python -m stack.slim_ci restore DIR`` (the pull request's workflow): that
dump into the configured warehouse, an empty ephemeral one. ``make
dbt-slim-ci`` then builds ``state:modified+`` on the ci target, whose schemas
are prefixed (``ci_`` or DBT_SCHEMA_PREFIX), beside the restored ones.

The dump is PostgreSQL's custom format, written and read by the pg_dump and
pg_restore bundled with the embedded server, so the runner needs no client
of its own. The password goes through the environment, never the command line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from config import ConfigError, DbtSettings, WarehouseSettings, redact
from stack.embedded_postgres import BIN_DIR

MANIFEST = "manifest.json"
DUMP = "warehouse.dump"


class SlimCiError(RuntimeError):
    """The state could not be saved or restored; the message says why."""


def _pg(tool: str, wh: WarehouseSettings, *args: str) -> None:
    env = {
        **os.environ,
        "PGHOST": wh.host,
        "PGPORT": str(wh.port),
        "PGUSER": wh.user,
        "PGDATABASE": wh.dbname,
        "PGSSLMODE": wh.sslmode,
        "PGCONNECT_TIMEOUT": "10",
    }
    if wh.password:
        env["PGPASSWORD"] = wh.password.get_secret_value()
    done = subprocess.run(
        [str(BIN_DIR / tool), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SlimCiError(f"{tool} on {wh.describe()} failed: {last}")


def save(state: Path) -> str:
    """The last good build's manifest and a dump of its warehouse, into ``state``."""
    dbt, wh = DbtSettings.from_env(), WarehouseSettings.from_env()
    manifest = dbt.state_dir / MANIFEST
    if not manifest.exists():
        raise SlimCiError(f"no good build's manifest in {dbt.state_dir}: run make run first")
    state.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(manifest, state / MANIFEST)
    _pg("pg_dump", wh, "--format=custom", "--no-owner", "--no-privileges",
        f"--file={state / DUMP}")  # fmt: skip
    return f"saved {wh.describe()}'s build ({(state / DUMP).stat().st_size:,} bytes) to {state}"


def restore(state: Path) -> str:
    """``state``'s dump into the configured warehouse, which must hold none of it yet."""
    wh = WarehouseSettings.from_env()
    for name in (MANIFEST, DUMP):
        if not (state / name).exists():
            raise SlimCiError(f"{state / name} is missing: main's dbt-state artifact, saved by"
                              " make dbt-state-save")  # fmt: skip
    _pg("pg_restore", wh, "--no-owner", "--no-privileges", "--exit-on-error",
        f"--dbname={wh.dbname}", str(state / DUMP))  # fmt: skip
    return f"restored main's build from {state} into {wh.describe()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.slim_ci", description=__doc__.split(
        "\n\n")[0])  # fmt: skip
    parser.add_argument("command", choices=("save", "restore"))
    parser.add_argument("state", type=Path, help="the folder of main's state")
    args = parser.parse_args(argv)
    try:
        print((save if args.command == "save" else restore)(args.state))
    except (SlimCiError, ConfigError, OSError) as exc:
        print(f"slim CI: {redact(str(exc))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
