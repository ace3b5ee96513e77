"""The order system's change capture against a real slot: whatever the source does lands.

Each case ends with raw's latest version per key (tombstones dropped) equal to
the source, row for row, as the loader's session prints it.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections import Counter

import psycopg
import pytest
from psycopg import sql

from loaders.core.warehouse import LoaderError
from loaders.oltp import cdc
from loaders.oltp.checks import TABLES
from loaders.oltp.job import STREAMS, load_all, reset_table
from tests.loaders.oltp.helpers import T0, current_rows, scalar, seed, source_rows
from tests.loaders.oltp.test_crash import kill_mid_load

# Incompressible enough to be stored out of line (TOAST): an update that does not
# touch it does not send it again.
BIG = "".join(uuid.uuid4().hex for _ in range(300))


@pytest.fixture(autouse=True)
def cdc_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLTP_CAPTURE", "cdc")


def assert_raw_equals_source(oltp: str, warehouse: str) -> None:
    for table in STREAMS:
        assert current_rows(warehouse, table) == source_rows(oltp, table), table


def ops(warehouse: str, table: str) -> Counter:
    with psycopg.connect(warehouse) as conn:
        return Counter(
            op for (op,) in conn.execute(sql.SQL("select _op from raw_oltp.{}").format(
                sql.Identifier(table)))
        )  # fmt: skip


def slot_name() -> str:
    return "dwh_" + os.environ["WAREHOUSE_DB"]


def test_start_is_a_snapshot_then_every_kind_of_change_lands(src, oltp, warehouse) -> None:
    seed(src, users=7, orders=12, details=3)
    first = {r.table: r for r in load_all(batch_size=50)}
    assert_raw_equals_source(oltp, warehouse)
    assert ops(warehouse, "order_details") == {"r": 36}
    assert first["order_details"].landed == 36
    assert any(n.startswith(f"slot {slot_name()}: ") for n in first["product_categories"].notes)

    # The cases a write-time watermark misses:
    src.execute("delete from order_details where order_id = 2")  # deletes
    # An update stamped backwards (a status corrected, with a write time years ago).
    src.execute(
        "update orders set status = 'shipped', updated_at = '2020-01-01' where order_id = 3"
    )
    src.execute("update users set updated_at = '2999-01-01' where user_id = 1")  # far ahead
    src.execute(
        "insert into orders values (13, 1, '1970-01-01', 'pending', 1, '1970-01-01', '1970-01-01')"
    )
    src.execute("insert into orders values (14, 1, now(), 'paid', 2, now(), now())")
    src.execute("delete from orders where order_id = 14")  # inserted and deleted between loads
    # A key deleted and inserted again, in one transaction.
    with src.transaction():
        src.execute("delete from order_details where order_detail_id = 10")
        src.execute("insert into order_details values (10, 4, 1, 9, 1.50, 13.50, %s, %s)", (T0, T0))
    second = {r.table: r for r in load_all(batch_size=4)}
    assert_raw_equals_source(oltp, warehouse)
    assert ops(warehouse, "order_details") == {"r": 36, "d": 4, "c": 1}
    assert ops(warehouse, "orders") == {"r": 12, "u": 1, "c": 2, "d": 1}
    assert second["orders"].landed == 4
    assert second["order_details"].batches >= 2  # batches of whole transactions
    # A rerun finds nothing new and lands nothing.
    again = load_all()
    assert sum(r.landed for r in again) == 0
    assert_raw_equals_source(oltp, warehouse)


def test_a_late_commit_lands_whatever_its_write_time(src, oltp, warehouse) -> None:
    seed(src, users=3, orders=4, details=1)
    load_all()
    with psycopg.connect(oltp) as late:
        late.execute("set timezone to 'UTC'")
        late.execute(
            "update orders set status = 'cancelled', updated_at = %s where order_id = 1",
            (T0 - dt.timedelta(days=30),),
        )
        load_all()  # the transaction is still open: nothing of it is visible yet
        cancelled = "select count(*) from raw_oltp.orders where status = 'cancelled'"
        assert scalar(warehouse, cancelled) == 0
        late.commit()
    load_all()
    assert_raw_equals_source(oltp, warehouse)


def test_a_truncate_turns_every_key_before_it_into_a_tombstone(src, oltp, warehouse) -> None:
    seed(src, users=3, orders=5, details=2)
    load_all()
    with src.transaction():
        src.execute("truncate order_details")
        src.execute("insert into order_details values (100, 1, 1, 1, 1.00, 1.00, %s, %s)", (T0, T0))
    results = {r.table: r for r in load_all()}
    assert_raw_equals_source(oltp, warehouse)
    assert ops(warehouse, "order_details") == {"r": 10, "t": 10, "c": 1}
    assert results["order_details"].landed == 11


def test_a_large_value_an_update_leaves_out_is_kept(src, oltp, warehouse) -> None:
    seed(src, users=3, orders=2, details=1)
    load_all()
    src.execute("update users set last_name = %s where user_id = 2", (BIG,))
    load_all()
    # Not sent again (stored out of line): taken from the key's version in raw.
    src.execute("update users set loyalty_status = 'gold' where user_id = 2")
    load_all()
    # ... and from the batch's own earlier version when both are in one batch.
    src.execute("update users set last_name = %s where user_id = 3", (BIG[::-1],))
    src.execute("update users set loyalty_status = 'silver' where user_id = 3")
    load_all()
    assert_raw_equals_source(oltp, warehouse)


def test_a_dropped_slot_is_one_line_and_a_fresh_snapshot_with_the_deletes(
    src, oltp, warehouse
) -> None:
    seed(src, users=3, orders=6, details=1)
    load_all()
    src.execute("select pg_drop_replication_slot(%s)", (slot_name(),))
    src.execute("delete from order_details where order_id = 5")
    src.execute("delete from orders where order_id = 5")
    src.execute("update orders set total_amount = 99 where order_id = 6")
    results = load_all()
    notes = [n for r in results for n in r.notes]
    assert any(f"slot {slot_name()} was dropped" in n for n in notes), notes
    assert_raw_equals_source(oltp, warehouse)
    assert ops(warehouse, "orders")["d"] == 1  # the key the snapshot lacks


def test_a_warehouse_loaded_by_keyset_switches_to_change_capture(
    src, oltp, warehouse, monkeypatch
) -> None:
    seed(src, users=3, orders=6, details=1)
    monkeypatch.setenv("OLTP_CAPTURE", "keyset")
    load_all()
    src.execute("delete from order_details where order_id = 2")
    src.execute("update orders set status = 'paid', updated_at = '2021-01-01' where order_id = 3")
    monkeypatch.setenv("OLTP_CAPTURE", "cdc")
    load_all()
    assert_raw_equals_source(oltp, warehouse)


def test_a_crash_between_the_commit_and_the_slot_advance_lands_nothing_twice(
    src, oltp, warehouse, monkeypatch
) -> None:
    seed(src, users=3, orders=4, details=1)
    load_all()
    for i in range(20):
        src.execute("update orders set total_amount = %s where order_id = %s", (i, 1 + i % 4))

    def crash(*_args) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(cdc, "_advance", crash)
        load_all(batch_size=10)
    # The first batch committed its rows and position; the slot was not advanced.
    assert ops(warehouse, "orders")["u"] > 0
    load_all(batch_size=10)
    assert ops(warehouse, "orders") == {"r": 4, "u": 20}
    assert_raw_equals_source(oltp, warehouse)


def test_sigkill_mid_stream_then_rerun_equals_an_uninterrupted_load(
    src, oltp, warehouse, pg_server, monkeypatch
) -> None:
    ref = f"ref_{uuid.uuid4().hex[:10]}"
    pg_server.ensure_database(ref)
    own = os.environ["WAREHOUSE_DB"]

    def reference() -> None:
        monkeypatch.setenv("WAREHOUSE_DB", ref)
        try:
            load_all(batch_size=500)
        finally:
            monkeypatch.setenv("WAREHOUSE_DB", own)

    def landed(conninfo: str, table: str) -> Counter:
        columns = sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(c))
            for c in (*TABLES[table].columns, "_op", "_seq")
        )
        with psycopg.connect(conninfo) as conn:
            return Counter(conn.execute(sql.SQL("select {} from raw_oltp.{}").format(
                columns, sql.Identifier(table))).fetchall())  # fmt: skip

    try:
        seed(src, users=50, orders=100, details=2)
        load_all(batch_size=500)
        reference()
        for t in range(300):  # 300 transactions of 30 changes: many batches
            with src.transaction():
                src.execute(
                    "insert into orders select g, 1, now(), 'pending', g, now(), now()"
                    " from generate_series(%s::int, %s::int) g",
                    (1000 + t * 10, 1000 + t * 10 + 9),
                )
                src.execute(
                    "update order_details set quantity = quantity + 1 where order_id = %s",
                    (1 + t % 100,),
                )
                src.execute(
                    "delete from orders where order_id between %s and %s",
                    (1000 + t * 10, 1000 + t * 10 + 3),
                )
        reference()
        kill_mid_load(warehouse, after=3)
        kill_mid_load(warehouse, after=4)
        load_all(batch_size=500)
        for table in STREAMS:
            assert landed(warehouse, table) == landed(pg_server.conninfo(ref), table), table
        assert_raw_equals_source(oltp, warehouse)
    finally:
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{ref}" with (force)')


def test_one_table_alone_is_refused_in_change_capture(oltp, warehouse) -> None:
    with pytest.raises(LoaderError, match="OLTP_CAPTURE=keyset"):
        load_all(["orders"])


def test_reset_forgets_the_position_and_the_next_load_starts_over(src, oltp, warehouse) -> None:
    seed(src, users=3, orders=4, details=1)
    load_all()
    reset_table("orders")
    assert scalar(warehouse, "select count(*) from raw_oltp.orders") == 0
    load_all()
    assert_raw_equals_source(oltp, warehouse)


def test_a_user_without_replication_rights_gets_one_line(
    src, oltp, warehouse, pg_server, monkeypatch
) -> None:
    role = f"reader_{uuid.uuid4().hex[:8]}"
    src.execute(f"create role {role} login password 'a pass'")
    src.execute(f"grant select on all tables in schema public to {role}")
    monkeypatch.setenv("OLTP_USER", role)
    monkeypatch.setenv("OLTP_PASSWORD", "a pass")
    try:
        with pytest.raises(LoaderError) as caught:
            load_all()
        message = str(caught.value)
        assert "OLTP_CAPTURE=keyset" in message and "\n" not in message
        assert "a pass" not in message
    finally:
        src.execute(f"drop owned by {role}")
        src.execute(f"drop role {role}")


def test_a_new_slot_name_is_a_fresh_snapshot_and_a_note_about_the_old_slot(
    src, oltp, warehouse, monkeypatch
) -> None:
    seed(src, users=3, orders=4, details=1)
    load_all()
    old = slot_name()
    monkeypatch.setenv("OLTP_SLOT", "dwh_renamed_" + os.environ["WAREHOUSE_DB"])
    src.execute("delete from order_details where order_id = 4")
    notes = [n for r in load_all() for n in r.notes]
    assert any(f"OLTP_SLOT changed from {old}" in n and "pg_drop_replication_slot" in n
               for n in notes), notes  # fmt: skip
    assert_raw_equals_source(oltp, warehouse)
    src.execute("select pg_drop_replication_slot(%s)", (old,))


def test_an_update_of_a_key_deletes_the_old_key(src, oltp, warehouse) -> None:
    seed(src, users=3, orders=4, details=1)
    load_all()
    src.execute("update order_details set order_detail_id = 1001 where order_detail_id = 2")
    load_all()
    assert_raw_equals_source(oltp, warehouse)
    assert ops(warehouse, "order_details") == {"r": 4, "d": 1, "u": 1}


def test_a_row_the_warehouse_refuses_at_a_snapshot_is_not_a_delete(
    oltp_encoded, warehouse, monkeypatch
) -> None:
    src = oltp_encoded("SQL_ASCII")
    src.execute(
        "insert into product_categories select g, 'c' || g, %(t)s, %(t)s"
        " from generate_series(1, 3) g",
        {"t": T0},
    )
    monkeypatch.setenv("OLTP_CAPTURE", "keyset")
    load_all()
    # Then bytes that are not UTF-8 (SQL_ASCII checks nothing): a fresh snapshot refuses
    # the row, which is still at the source: it keeps its landed version, no tombstone.
    src.execute("update product_categories set name = E'caf\\xe9' where category_id = 2")
    monkeypatch.setenv("OLTP_CAPTURE", "cdc")
    [categories, *_] = load_all()
    assert categories.rejected == 1
    assert ops(warehouse, "product_categories") == {None: 3, "r": 2}
    names = {r[0]: r[1] for r in current_rows(warehouse, "product_categories")}
    assert names == {"1": "c1", "2": "c2", "3": "c3"}
