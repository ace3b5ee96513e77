"""``dbt`` for sqlfluff's jinja templater: the cross-database macros the models call.

Each renders what dbt-postgres renders, so the linted SQL is the warehouse's
SQL (as ``adapter.dispatch`` here resolves to ``postgres__``). dbt never reads
this module.
"""

from __future__ import annotations


def type_bigint() -> str:
    return "bigint"


def type_int() -> str:
    return "integer"


def type_string() -> str:
    return "text"


def dateadd(datepart: str, interval: object, from_date_or_timestamp: str) -> str:
    return f"{from_date_or_timestamp} + (interval '1 {datepart}' * ({interval}))"


def datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"(({second_date})::date - ({first_date})::date)"
