"""``adapter`` for sqlfluff's jinja templater, which has no dbt adapter object.

The project's macros call ``adapter.dispatch(name)`` as dbt runs them. For
linting, dispatch resolves to the ``postgres__`` implementation (the
warehouse's adapter), else ``default__``, so the linted SQL is the SQL dbt
runs on PostgreSQL. sqlfluff exposes this module as ``adapter`` through
``library_path`` in .sqlfluff; dbt never reads it.
"""

from __future__ import annotations

from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context


@pass_context
def dispatch(context: Context, macro_name: str, macro_namespace: str | None = None) -> Any:
    for prefix in ("postgres__", "default__"):
        macro = context.get(prefix + macro_name)
        if macro is not None:
            return macro
    raise KeyError(f"no postgres__ or default__ implementation of {macro_name}")
