"""The project's `.env`, read one way for every command: ``python -m config.env_file -- CMD``.

Every make target runs its command through this module: it reads the file
(``ENV_FILE``, default ``.env`` in the project root) with python-dotenv, adds
its variables to the environment, and replaces itself with the command, so
the command and everything it starts (dbt through ``profiles.yml``, psql,
Airflow's processes) see the same values. make does not parse the file
itself: its own reading differs from every dotenv library's
(``KEY = value`` set a make variable that was never exported; a quoted
value kept its quotes).

- A variable already in the environment wins over the file
  (``WAREHOUSE_PORT=55452 make run`` uses 55452 whatever `.env` says).
- ``KEY=value``, ``KEY = value``, ``export KEY=value`` and single- or
  double-quoted values all read the same (python-dotenv's syntax).
- A key of the project's own (a prefix of a documented setting, see
  ``.env.example``) that no setting reads gets a one-line warning naming the
  nearest documented key: ``WAREHOUSE_PROT`` would otherwise be silently
  ignored, and the commands would go to the default port. Airflow's own
  variables (``AIRFLOW__SECTION__KEY``, ``AIRFLOW_CONN_*``, ``AIRFLOW_VAR_*``,
  ``AIRFLOW_HOME``) and dbt's (its flags, ``DBT_ENV_SECRET_*``,
  ``DBT_ENV_CUSTOM_ENV_*``) are not the project's and are passed on as they
  are. make checks once when it starts (``--check``) and sets
  ``ENV_FILE_CHECKED``, so a target that runs several commands warns once.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

EXAMPLE = PROJECT_ROOT / ".env.example"
# The documented keys: `KEY=value` lines of .env.example, commented out or not.
_DOCUMENTED = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.M)


def env_file_path() -> Path:
    """``ENV_FILE`` (relative to the project root), default ``.env``."""
    path = Path(os.environ.get("ENV_FILE") or ".env")
    return path if path.is_absolute() else PROJECT_ROOT / path


def read(path: Path) -> dict[str, str]:
    """The file's variables (python-dotenv's syntax); a key without a value reads as empty."""
    from dotenv import dotenv_values

    return {k: v or "" for k, v in dotenv_values(path, interpolate=False).items()}


def documented_keys(example: Path = EXAMPLE) -> set[str]:
    return set(_DOCUMENTED.findall(example.read_text()))


COMPOSE = PROJECT_ROOT / "docker-compose.yml"


def compose_keys(compose: Path = COMPOSE) -> set[str]:
    """The variables docker-compose.yml reads from `.env` (``${NAME...}``)."""
    return (
        set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose.read_text()))
        if compose.exists()
        else set()
    )


@cache
def _dbt_flags() -> frozenset[str]:
    """The environment variables dbt itself reads (its flags' ``DBT_*`` names)."""
    from dbt.cli import params

    names = set()
    for decorator in vars(params).values():  # click.option(...) decorators
        if not callable(decorator) or getattr(decorator, "__module__", "") != "click.decorators":
            continue
        for option in getattr(decorator(lambda: None), "__click_params__", []):
            envvar = option.envvar
            names.update([envvar] if isinstance(envvar, str) else envvar or [])
    return frozenset(names)


# Airflow's and dbt's own variables: configuration, connections, Variables,
# AIRFLOW_HOME; dbt's secret and custom env vars (its flags: _dbt_flags).
_TOOLS_OWN = (
    "AIRFLOW__",
    "AIRFLOW_CONN_",
    "AIRFLOW_VAR_",
    "DBT_ENV_SECRET_",
    "DBT_ENV_CUSTOM_ENV_",
)


def _not_ours(key: str) -> bool:
    if key.startswith(_TOOLS_OWN) or key == "AIRFLOW_HOME":
        return True
    return key.startswith("DBT_") and key in _dbt_flags()


def unknown_key_warnings(keys: Iterable[str], known: set[str]) -> list[str]:
    """One line per key that looks like one of ours but is not: its nearest known key."""
    prefixes = {k.split("_", 1)[0] + "_" for k in known if "_" in k}
    warnings = []
    for key in keys:
        if key in known or not any(key.startswith(p) for p in prefixes) or _not_ours(key):
            continue
        near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {near[0]}?" if near else "see .env.example for the settings"
        warnings.append(f"warning: {key} is not a setting this project reads; {hint}")
    return warnings


def apply(values: Mapping[str, str], environ: dict[str, str]) -> None:
    """Add the file's values to ``environ``; a variable already set there wins."""
    for key, value in values.items():
        environ.setdefault(key, value)


def embedded_passwords(environ: MutableMapping[str, str]) -> None:
    """An empty WAREHOUSE_PASSWORD / OLTP_PASSWORD for the running embedded PostgreSQL:
    the password it generated, for commands that read the variables themselves (dbt's
    profile). A bad setting is left for the command to report."""
    from config.base import ConfigError
    from config.settings import WarehouseSettings, embedded_postgres_password

    if environ.get("WAREHOUSE_PASSWORD") and environ.get("OLTP_PASSWORD"):
        return
    try:
        wh = WarehouseSettings.from_env()
        oltp_host = environ.get("OLTP_HOST") or wh.host
        oltp_port = int(environ.get("OLTP_PORT") or wh.port)
    except (ConfigError, ValueError):
        return
    if not environ.get("WAREHOUSE_PASSWORD") and wh.password.get_secret_value():
        environ["WAREHOUSE_PASSWORD"] = wh.password.get_secret_value()
    generated = embedded_postgres_password(oltp_host, oltp_port)
    if not environ.get("OLTP_PASSWORD") and generated:
        environ["OLTP_PASSWORD"] = generated


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check_only = args[:1] == ["--check"]
    if args[:1] in (["--"], ["--check"]):
        args = args[1:]
    if not args and not check_only:
        print("usage: python -m config.env_file [--check | -- COMMAND [ARGS...]]", file=sys.stderr)
        return 2
    path = env_file_path()
    if path.is_file():
        values = read(path)
        if check_only or not os.environ.get("ENV_FILE_CHECKED"):
            for line in unknown_key_warnings(values, documented_keys() | compose_keys()):
                print(f"{path.name}: {line}", file=sys.stderr)
        if check_only:
            return 0
        apply(values, os.environ)
    elif "ENV_FILE" in os.environ:
        print(f"ENV_FILE={os.environ['ENV_FILE']}: no such file", file=sys.stderr)
        return 2
    if check_only:
        return 0
    embedded_passwords(os.environ)
    # Make's own flag: a make the command starts (a test of make) checks again.
    os.environ.pop("ENV_FILE_CHECKED", None)
    try:
        os.execvp(args[0], args)
    except OSError as exc:
        print(f"{args[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
