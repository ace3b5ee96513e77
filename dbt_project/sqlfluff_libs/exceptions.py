"""``exceptions`` for sqlfluff's jinja templater (dbt's ``exceptions.raise_compiler_error``).

Linting renders without the project's vars, so a check on them would always
fail here: the message becomes a comment instead.
"""

from __future__ import annotations


def raise_compiler_error(message: str) -> str:
    return f"/* dbt would stop here: {message} */"
