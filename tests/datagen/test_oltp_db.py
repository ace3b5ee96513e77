"""The order system's simulator against a real PostgreSQL OLTP database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg
import pytest

from datagen import oltp_db
from datagen.oltp_db import (
    ORDER_LIFETIME_DAYS,
    days_to_generate,
    generated_days,
    late_users,
    midnight,
    play_day,
    write_day,
    write_initial,
)
from datagen.oltp_schema import LOYALTY_STATUSES, PRIMARY_KEYS
from datagen.population import Population

START = dt.date(2026, 10, 1)
TABLES = tuple(PRIMARY_KEYS)
FORWARD = {  # status -> the statuses it may move to
    "pending": {"paid", "shipped", "delivered", "cancelled"},
    "paid": {"shipped", "delivered", "cancelled"},
    "shipped": {"delivered"},
    "delivered": set(),
    "cancelled": set(),
}


def small(seed: int = 7, scale: float = 0.05) -> Population:
    return Population(seed=seed, scale=scale, start_date=START)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


def rows(conn: psycopg.Connection, table: str) -> list[tuple]:
    with conn.transaction():
        return conn.execute(f"select * from {table} order by {PRIMARY_KEYS[table]}").fetchall()


def counts(conn: psycopg.Connection) -> dict[str, int]:
    with conn.transaction():
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}


def by_id(conn: psycopg.Connection, table: str) -> dict[int, tuple]:
    return {r[0]: r for r in rows(conn, table)}


def test_initial_generation_small_scale(oltp: str) -> None:
    pop = small()
    with psycopg.connect(oltp) as conn:
        written = write_initial(conn, pop)
        expected = {
            "product_categories": 12,
            "products": pop.n_products,
            "users": pop.n_users,
            "orders": 500,
            "order_details": 2000,
        }
        assert written == expected
        assert counts(conn) == expected
        with conn.transaction():
            bad_totals = conn.execute(
                "select count(*) from orders o where total_amount <>"
                " (select sum(total_price) from order_details d where d.order_id = o.order_id)"
            ).fetchone()[0]
            bad_lines = conn.execute(
                "select count(*) from order_details d join products p using (product_id)"
                " where total_price <> quantity * price_per_unit"
                " or price_per_unit > p.price or price_per_unit < 0.84 * p.price"
            ).fetchone()[0]
        assert bad_totals == 0
        assert bad_lines == 0
        users = rows(conn, "users")
        orders = rows(conn, "orders")
        products = rows(conn, "products")
    assert [(u[0], u[3], u[6]) for u in users] == [
        (u.user_id, u.email, u.loyalty_status) for u in pop.users
    ]
    assert [(p[0], p[1], p[2], p[3]) for p in products] == [
        (p.product_id, p.name, p.category_id, Decimal(str(p.price))) for p in pop.products
    ]
    start = midnight(START)
    registered = {u[0]: u[7] for u in users}
    for order_id, user_id, order_date, status, _, created_at, updated_at in orders:
        assert start - dt.timedelta(days=90) <= order_date < start
        assert created_at == order_date <= updated_at < start
        assert registered[user_id] < order_date  # a buyer who had registered
        if order_date < start - dt.timedelta(days=ORDER_LIFETIME_DAYS):
            assert status in ("delivered", "cancelled"), order_id
    old = [o[3] for o in orders if o[2] < start - dt.timedelta(days=ORDER_LIFETIME_DAYS)]
    recent = [o[3] for o in orders if o[2] >= start - dt.timedelta(days=3)]
    assert old.count("delivered") > 0.8 * len(old)
    assert 0 < old.count("cancelled") < 0.2 * len(old)
    assert {"paid", "shipped"} & set(recent)  # recent orders are still on their way
    assert [o[0] for o in orders] == list(range(1, 501))  # ids in time order
    assert [o[2] for o in orders] == sorted(o[2] for o in orders)


def test_initial_generation_at_scale_one_has_the_specified_volumes(oltp: str) -> None:
    pop = Population(seed=42, scale=1.0, start_date=START)
    with psycopg.connect(oltp) as conn:
        written = write_initial(conn, pop)
        assert written == {
            "product_categories": 12,
            "products": 500,
            "users": 5000,
            "orders": 10000,
            "order_details": 40000,
        }
        assert counts(conn) == written
        with conn.transaction():
            statuses = dict(
                conn.execute("select status, count(*) from orders group by status").fetchall()
            )
    assert set(statuses) == {"pending", "paid", "shipped", "delivered", "cancelled"}


def test_initial_generation_and_days_are_idempotent(oltp: str) -> None:
    pop = small()
    with psycopg.connect(oltp) as conn:
        assert write_initial(conn, pop) is not None
        assert write_initial(conn, pop) is None
        first = play_day(conn, pop, day(1), history_days=7)
        assert first is not None and first["orders"] > 0
        snapshot = {t: rows(conn, t) for t in TABLES}
        assert play_day(conn, pop, day(1), history_days=7) is None  # a rerun of the date
        assert play_day(conn, pop, day(0), history_days=7) is None  # behind the clock
        assert write_day(conn, pop, day(1)) is None
        assert {t: rows(conn, t) for t in TABLES} == snapshot
        assert generated_days(conn) == [day(0), day(1)]
        with conn.transaction():
            tables = conn.execute(
                "select table_schema, table_name from information_schema.tables"
                " where table_schema in ('public', 'datagen') order by 1, 2"
            ).fetchall()
    # The simulator's markers stay out of the replicated tables.
    assert tables == [("datagen", "days")] + [("public", t) for t in sorted(TABLES)]


def test_play_day_fills_missing_days_up_to_history_days(oltp: str) -> None:
    pop = small()
    with psycopg.connect(oltp) as conn:
        assert days_to_generate(conn, START, 3) == [day(0), day(1), day(2)]
        written = play_day(conn, pop, day(2), history_days=7)
        assert generated_days(conn) == [day(0), day(1), day(2)]
        assert days_to_generate(conn, START, 3) == [day(3)]
        # The first call also wrote the initial generation.
        assert written["products"] == pop.n_products
        assert written["orders"] > 500
        play_day(conn, pop, day(20), history_days=3)  # a scheduler that starts late
        assert generated_days(conn)[-3:] == [day(18), day(19), day(20)]
        assert day(17) not in generated_days(conn)
        with pytest.raises(ValueError, match="before the simulation start"):
            play_day(conn, pop, day(-1), history_days=3)


def test_a_day_is_written_whole_or_not_at_all(oltp: str, monkeypatch, pg_server) -> None:
    """A crash mid-day leaves nothing of the day; the rerun writes it once."""
    pop = small()
    with psycopg.connect(oltp) as conn:
        play_day(conn, pop, day(0), history_days=1)
        before = {t: rows(conn, t) for t in TABLES}
        real = oltp_db._stage_insert

        def crash_on_details(conn, table, rows):
            if table == "order_details":
                raise RuntimeError("the simulator died mid-day")
            return real(conn, table, rows)

        monkeypatch.setattr(oltp_db, "_stage_insert", crash_on_details)
        with pytest.raises(RuntimeError, match="mid-day"):
            play_day(conn, pop, day(1), history_days=1)
        assert {t: rows(conn, t) for t in TABLES} == before
        assert generated_days(conn) == [day(0)]
        monkeypatch.setattr(oltp_db, "_stage_insert", real)
        assert play_day(conn, pop, day(1), history_days=1) is not None
        after_crash = {t: rows(conn, t) for t in TABLES}
    # The same two days without a crash, in another database: the same rows.
    pg_server.ensure_database("oltp_clean_run")
    try:
        with psycopg.connect(pg_server.conninfo("oltp_clean_run")) as clean:
            play_day(clean, pop, day(1), history_days=2)
            assert {t: rows(clean, t) for t in TABLES} == after_crash
    finally:
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
            admin.execute("drop database oltp_clean_run with (force)")


def test_a_day_places_orders_moves_old_ones_forward_and_changes_users(oltp: str) -> None:
    pop = small(scale=0.1)
    with psycopg.connect(oltp) as conn:
        play_day(conn, pop, day(2), history_days=7)
        orders_before = by_id(conn, "orders")
        users_before = by_id(conn, "users")
        lines_before = len(rows(conn, "order_details"))
        written = write_day(conn, pop, day(3))
        orders_after = by_id(conn, "orders")
        users_after = by_id(conn, "users")
        lines_after = rows(conn, "order_details")
    start, end = midnight(day(3)), midnight(day(4))

    # New orders: ids contiguous after the last, placed that day, with their lines.
    new = sorted(set(orders_after) - set(orders_before))
    assert new == list(range(max(orders_before) + 1, max(orders_before) + 1 + len(new)))
    assert 0.8 * 30 <= len(new) <= 1.2 * 30  # about 300 a day at scale 1.0
    assert all(start <= orders_after[i][2] < end for i in new)
    assert len(lines_after) - lines_before == 4 * len(new)
    assert {line[1] for line in lines_after[lines_before:]} == set(new)

    # Older orders only move forward, stamped inside the day.
    changed = [i for i in orders_before if orders_after[i][3] != orders_before[i][3]]
    assert len(changed) > 10
    timelines = oltp_db.simulator(pop).timeline
    for i in changed:
        old, now = orders_before[i], orders_after[i]
        assert now[3] in FORWARD[old[3]], (i, old[3], now[3])
        assert start <= now[6] < end
        assert now[6] > old[6]
        assert (now[6], now[3]) in timelines(i, now[2])  # updated_at: when that status began
    untouched = set(orders_before) - set(changed)
    assert all(orders_after[i] == orders_before[i] for i in untouched)
    assert written["orders"] == len(new) + len(changed)

    # A few users move one loyalty level; today's sign-ups (not the late ones) arrive.
    moved = [u for u in users_before if users_after[u][6] != users_before[u][6]]
    assert moved
    for u in moved:
        levels = (
            LOYALTY_STATUSES.index(users_before[u][6]),
            LOYALTY_STATUSES.index(users_after[u][6]),
        )
        assert abs(levels[0] - levels[1]) == 1
        assert start <= users_after[u][8] < end
    arrived = set(users_after) - set(users_before)
    late_today = {u.user_id for u in late_users(pop, day(3))}
    late_yesterday = {u.user_id for u in late_users(pop, day(2))}
    registered_today = {u.user_id for u in pop.new_users(day(3))} - late_today
    assert arrived == registered_today | late_yesterday
    for uid in registered_today:
        assert users_after[uid][5] == day(3)
        assert start <= users_after[uid][7] == users_after[uid][8] < end
    assert written["users"] == len(arrived) + len(moved)


def test_late_users_get_their_row_the_next_day(oltp: str) -> None:
    pop = small()
    late = late_users(pop, day(0))
    assert late and len(late) < len(pop.new_users(day(0)))
    assert late_users(pop, day(-1)) == []
    with psycopg.connect(oltp) as conn:
        play_day(conn, pop, day(0), history_days=1)
        users = by_id(conn, "users")
        assert not {u.user_id for u in late} & set(users)
        play_day(conn, pop, day(1), history_days=1)
        users = by_id(conn, "users")
    for user in late:
        row = users[user.user_id]
        assert (row[3], row[5]) == (user.email, day(0))  # registered on day 0 ...
        assert midnight(day(1)) <= row[7] == row[8] < midnight(day(2))  # ... written on day 1


def test_same_seed_same_rows_other_seed_other_rows(pg_server) -> None:
    names = ("oltp_det_a", "oltp_det_b", "oltp_det_c")
    dumps = []
    try:
        for name, seed in zip(names, (7, 7, 8), strict=True):
            pg_server.ensure_database(name)
            with psycopg.connect(pg_server.conninfo(name)) as conn:
                play_day(conn, small(seed), day(2), history_days=3)
                dumps.append({t: rows(conn, t) for t in TABLES})
    finally:
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
            for name in names:
                admin.execute(f"drop database if exists {name} with (force)")
    assert dumps[0] == dumps[1]
    assert dumps[0]["orders"] != dumps[2]["orders"]


def test_a_gap_moves_orders_forward_without_breaking_keys(oltp: str) -> None:
    """A day written after skipped days: existing orders catch up, still forward only."""
    pop = small(scale=0.1)
    with psycopg.connect(oltp) as conn:
        play_day(conn, pop, day(1), history_days=2)
        before = by_id(conn, "orders")
        assert write_day(conn, pop, day(6)) is not None
        after = by_id(conn, "orders")
    caught_up = [i for i in before if after[i][3] != before[i][3]]
    assert caught_up
    for i in caught_up:
        assert after[i][3] in FORWARD[before[i][3]]
        assert midnight(day(2)) <= after[i][6] < midnight(day(7))
    new = set(after) - set(before)
    assert all(midnight(day(6)) <= after[i][2] < midnight(day(7)) for i in new)


def test_another_population_is_refused(oltp: str) -> None:
    with psycopg.connect(oltp) as conn:
        write_initial(conn, small(seed=7))
        with pytest.raises(ValueError, match="seed 7"):
            write_initial(conn, small(seed=8))


def test_new_users_are_deterministic_contiguous_and_unique() -> None:
    pop = small(scale=1.0)
    assert pop.new_users(day(-1)) == []
    days = [pop.new_users(day(n)) for n in range(5)]
    assert days[2] == pop.new_users(day(2))
    ids = [u.user_id for users in days for u in users]
    assert ids == list(range(pop.n_users + 1, pop.n_users + 1 + 5 * 15))
    emails = [u.email for users in days for u in users] + [u.email for u in pop.users]
    assert len(set(emails)) == len(emails)
    assert all(u.registration_date == day(2) for u in days[2])
