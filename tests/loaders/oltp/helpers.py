"""Source rows written with SQL, and what landed, for the OLTP loader's tests."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import psycopg
from psycopg import sql

from loaders.oltp.checks import TABLES

# Source write times in these tests: two days before the real clock, whole seconds.
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).replace(microsecond=0)

# Values a real order system can hold and a COPY text round trip must keep:
# tabs, newlines, backslashes (a literal \N and \0), quotes, non-ASCII, empty.
HOSTILE_NAMES = (
    "tab\there",
    "new\nline\r\n",
    "back\\slash \\N \\0 \\x00",
    "\\N",
    "",
    "quote ' \" ;",
    "Zoë Ñandú 東京 🛒",
)


def seed(
    src: psycopg.Connection,
    *,
    users: int = 5,
    orders: int = 10,
    details: int = 2,
    at: dt.datetime = T0,
) -> None:
    """A small consistent store: 2 categories, 4 products, ``users`` users (hostile names),
    ``orders`` orders one second apart, and ``details`` lines per order (stamped like it)."""
    src.execute(
        "insert into product_categories select g, 'category ' || g, %(at)s, %(at)s"
        " from generate_series(1, 2) g",
        {"at": at},
    )
    src.execute(
        "insert into products select g, 'product ' || g, 1 + g %% 2, g * 10.5, %(at)s, %(at)s"
        " from generate_series(1, 4) g",
        {"at": at},
    )
    for i in range(1, users + 1):
        name = HOSTILE_NAMES[(i - 1) % len(HOSTILE_NAMES)]
        src.execute(
            "insert into users values (%s, %s, %s, %s, %s, '2026-01-15', 'bronze', %s, %s)",
            (i, name, f"Last{i}", f"u{i}@example.com", None if i % 2 else f"+1-555-{i}",
             at, at + dt.timedelta(microseconds=i)),
        )  # fmt: skip
    src.execute(
        "insert into orders select g, 1 + g %% %(users)s, %(at)s + g * interval '1 second',"
        " 'pending', g * 3.25, %(at)s + g * interval '1 second', %(at)s + g * interval '1 second'"
        " from generate_series(1, %(orders)s) g",
        {"at": at, "users": users, "orders": orders},
    )
    src.execute(
        "insert into order_details select (o - 1) * %(details)s + d, o, 1 + (o + d) %% 4, d,"
        " 10.50, d * 10.50, %(at)s + o * interval '1 second', %(at)s + o * interval '1 second'"
        " from generate_series(1, %(orders)s) o, generate_series(1, %(details)s) d",
        {"at": at, "orders": orders, "details": details},
    )


def _select_columns(table: str, schema: str | None) -> sql.Composed:
    spec = TABLES[table]
    relation = sql.Identifier(schema, table) if schema else sql.Identifier(table)
    return sql.SQL("select {} from {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in spec.columns),
        relation,
    )


def raw_rows(warehouse: str, table: str) -> Counter:
    """The landed versions of a raw table as a multiset (batch ids and load times left out)."""
    with psycopg.connect(warehouse) as conn:
        return Counter(conn.execute(_select_columns(table, "raw_oltp")).fetchall())


def source_rows(oltp: str, table: str) -> Counter:
    """The source table's rows as text, as the loader's session prints them (UTC, ISO)."""
    with psycopg.connect(oltp) as conn:
        conn.execute("set timezone to 'UTC'")
        conn.execute("set datestyle to 'ISO'")
        return Counter(conn.execute(_select_columns(table, None)).fetchall())


def scalar(conninfo: str, query: str, *params):
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def watermark(warehouse: str, table: str) -> dict | None:
    return scalar(
        warehouse,
        "select value from loader.watermarks where source = 'oltp' and stream = %s",
        table,
    )


def rejects(warehouse: str, table: str | None = None) -> dict[str, tuple[str, str]]:
    """record_id -> (record_version, reason) of the OLTP rejects (of one table)."""
    with psycopg.connect(warehouse) as conn:
        rows = conn.execute(
            "select record_id, record_version, reason from loader.rejects"
            " where source = 'oltp' and (%s::text is null or stream = %s)",
            (table, table),
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def versions(warehouse: str, table: str) -> Counter:
    """How many versions raw holds of each key."""
    spec = TABLES[table]
    with psycopg.connect(warehouse) as conn:
        rows = conn.execute(
            sql.SQL("select {} from {}").format(
                sql.Identifier(spec.primary_key), sql.Identifier("raw_oltp", table)
            )
        ).fetchall()
    return Counter(int(r[0]) for r in rows)


def current_rows(warehouse: str, table: str) -> Counter:
    """Each key's latest landed version, in commit order, unless it is a tombstone: what
    staging keeps, and after a load what the source holds."""
    spec = TABLES[table]
    key = sql.Identifier(spec.primary_key)
    latest = sql.SQL(
        "select distinct on ({key}) * from raw_oltp.{table}"
        " order by {key}, _lsn desc nulls last, _seq desc nulls last, _batch_id desc"
    ).format(key=key, table=sql.Identifier(table))
    query = sql.SQL(
        "select {} from ({}) as l where l._op is null or l._op not in ('d', 't')"
    ).format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in spec.columns),
        latest,
    )
    with psycopg.connect(warehouse) as conn:
        return Counter(conn.execute(query).fetchall())
