"""The app simulator: deterministic, idempotent, and producing changes to old documents."""

from __future__ import annotations

import datetime as dt

from datagen.app_db import COLLECTIONS, AppDay
from datagen.mongo_writer import days_to_generate, generated_days, write_day
from datagen.population import Population

START = dt.date(2026, 10, 1)


def small(seed: int = 7) -> Population:
    return Population(seed=seed, scale=0.1, start_date=START)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


def test_same_seed_same_documents() -> None:
    assert AppDay(small(), day(3)).documents() == AppDay(small(), day(3)).documents()


def test_other_seed_other_documents() -> None:
    a = AppDay(small(7), day(1)).documents()["user_sessions"]
    b = AppDay(small(8), day(1)).documents()["user_sessions"]
    assert a != b


def test_population_is_shared_and_sized_by_scale() -> None:
    full = Population(seed=1, scale=1.0, start_date=START)
    assert (full.n_users, full.n_products) == (5000, 500)
    docs = AppDay(small(), day(0)).documents()
    pop = small()
    assert {d["user_id"] for d in docs["user_sessions"]} <= {u.user_id for u in pop.users}
    assert {d["product_id"] for d in docs["product_price_history"]} == {
        p.product_id for p in pop.products
    }


def test_every_collection_gets_documents() -> None:
    docs = AppDay(small(), day(2)).documents()
    assert set(docs) == set(COLLECTIONS)
    assert all(docs[name] for name in COLLECTIONS)


def test_later_days_rewrite_older_tickets_and_reviews() -> None:
    """Changes to old documents: same _id, a newer write time, more messages / a decision."""
    pop = small()
    first = {d["ticket_id"]: d for d in AppDay(pop, day(0)).documents()["support_tickets"]}
    second = AppDay(pop, day(1)).documents()["support_tickets"]
    rewritten = [d for d in second if d["ticket_id"] in first]
    assert rewritten, "no ticket from day 0 changed on day 1"
    for doc in rewritten:
        old = first[doc["ticket_id"]]
        assert doc["_id"] == old["_id"]
        assert doc["updated_at"] > old["updated_at"]
        assert len(doc["messages"]) >= len(old["messages"])
        assert doc["updated_at"].date() == day(1)

    reviews_day0 = {d["review_id"] for d in AppDay(pop, day(0)).documents()["moderation_queue"]}
    decided_later = [
        d
        for d in AppDay(pop, day(2)).documents()["moderation_queue"]
        if d["review_id"] in reviews_day0
    ]
    assert decided_later and all(d["moderation_status"] != "pending" for d in decided_later)


def test_duplicates_late_arrivals_and_bad_records_exist() -> None:
    pop = Population(seed=3, scale=1.0, start_date=START)
    docs = AppDay(pop, day(1)).documents()
    events = docs["event_logs"]
    assert len({e["event_id"] for e in events}) < len(events), "no re-sent events"
    assert len({e["_id"] for e in events}) == len(events)
    late = [s for s in docs["user_sessions"] if s["start_time"].date() < day(1)]
    assert late, "no late-synced sessions"
    nul = [
        q
        for d in range(5)
        for q in AppDay(pop, day(d)).documents()["search_queries"]
        if "\x00" in q["query_text"]
    ]
    assert nul, "no malformed search queries in five days"


def test_write_day_is_idempotent(mongo_db) -> None:
    pop = small()
    counts = write_day(mongo_db, pop, day(0))
    write_day(mongo_db, pop, day(0))
    for name, n in counts.items():
        assert mongo_db[name].count_documents({}) == n
    assert generated_days(mongo_db) == [day(0)]


def test_first_run_writes_history_then_one_day_at_a_time(mongo_db) -> None:
    assert days_to_generate(mongo_db, START, 3) == [day(0), day(1), day(2)]
    write_day(mongo_db, small(), day(0))
    write_day(mongo_db, small(), day(1))
    assert days_to_generate(mongo_db, START, 3) == [day(2)]


def test_a_day_writes_only_write_times_inside_that_day() -> None:
    """Write times never run ahead of the day being written (the watermark relies on it)."""
    from datagen.mongo_writer import WRITE_TIME_FIELD

    pop = Population(seed=5, scale=0.3, start_date=START)
    for n in range(4):
        docs = AppDay(pop, day(n)).documents()
        for name, items in docs.items():
            for d in items:
                assert d[WRITE_TIME_FIELD[name]].date() == day(n), (name, d)


def test_play_day_only_moves_forward_and_fills_short_gaps(mongo_db) -> None:
    from datagen.mongo_writer import play_day

    pop = small()
    assert play_day(mongo_db, pop, day(2), max_gap_days=7) is not None
    assert generated_days(mongo_db) == [day(0), day(1), day(2)]
    assert play_day(mongo_db, pop, day(2)) is None  # rerun of the same logical date
    assert play_day(mongo_db, pop, day(1)) is None  # backfill behind the app's clock
    play_day(mongo_db, pop, day(20), max_gap_days=3)
    assert generated_days(mongo_db)[-4:] == [day(2), day(18), day(19), day(20)]


def test_sales_increments_carry_duplicates_corrections_and_the_old_format() -> None:
    from datagen.sales_increments import SalesDay

    pop = small()
    old, new = SalesDay(pop, day(0)), SalesDay(pop, day(3))
    assert "status" not in old.files()["user_order_log_inc.csv"].splitlines()[0]
    assert "status" in new.files()["user_order_log_inc.csv"].splitlines()[0]
    rows = new.order_log()
    ids = [r["uniq_id"] for r in rows]
    assert len(ids) > len(set(ids))  # duplicates
    earlier = {r["uniq_id"]: r for r in SalesDay(pop, day(2)).orders()}
    corrected = [r for r in rows if r["uniq_id"] in earlier]
    assert corrected and all(r["quantity"] != earlier[r["uniq_id"]]["quantity"] for r in corrected)
    assert SalesDay(pop, day(3)).files() == new.files()  # deterministic
