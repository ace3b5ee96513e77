"""The order system in keyset mode reconciled per key range: deletes and backdated updates,
which its watermark cannot see, against real PostgreSQL servers."""

from __future__ import annotations

from loaders.oltp.job import STREAMS, load_all
from loaders.oltp.reconcile import RANGE_KEYS, reconcile
from tests.loaders.oltp.helpers import current_rows, scalar, seed, source_rows


def test_deletes_and_backdated_updates_are_found_and_relanded(src, oltp, warehouse) -> None:
    seed(src, users=5, orders=30, details=2)
    src.execute(
        f"insert into orders select {RANGE_KEYS} + g, 1, now(), 'paid', 5, now(), now()"
        " from generate_series(1, 3) g"
    )  # a second key range
    load_all()
    assert all(r.differences == [] for r in reconcile())  # equal after a load

    src.execute("delete from order_details where order_id in (7, 8)")
    src.execute(
        "update orders set status = 'shipped', updated_at = '2020-01-01' where order_id = 9"
    )
    src.execute(f"delete from orders where order_id = {RANGE_KEYS + 2}")
    load_all()  # the watermark sees none of it
    assert current_rows(warehouse, "orders") != source_rows(oltp, "orders")

    results = {r.stream: r for r in reconcile()}
    assert [d.partition for d in results["orders"].differences] == [
        f"keys 0..{RANGE_KEYS - 1}",
        f"keys {RANGE_KEYS}..{2 * RANGE_KEYS - 1}",
    ]
    assert [d.action for d in results["order_details"].differences] == [
        "relanded 56 row(s), 4 deleted"
    ]
    assert results["users"].differences == [] and results["users"].checked == 1
    for table in STREAMS:
        assert current_rows(warehouse, table) == source_rows(oltp, table), table
    assert all(r.differences == [] for r in reconcile())  # and stays equal

    # A later keyset load of a changed row outranks the relanded version.
    src.execute("update orders set status = 'delivered' where order_id = 9")
    load_all()
    assert current_rows(warehouse, "orders") == source_rows(oltp, "orders")
    assert scalar(warehouse, "select count(*) from loader.reconciliations") == 15


def test_negative_keys_fall_in_their_own_ranges(src, oltp, warehouse) -> None:
    seed(src, users=2, orders=2, details=1)
    src.execute(
        "insert into orders select -g, 1, now(), 'paid', 1, now(), now()"
        " from generate_series(1, 3) g"
    )
    load_all()
    src.execute("delete from orders where order_id = -2")
    [orders] = [r for r in reconcile(["orders"])]
    assert [d.partition for d in orders.differences] == [f"keys {-RANGE_KEYS}..-1"]
    assert current_rows(warehouse, "orders") == source_rows(oltp, "orders")
    assert all(r.differences == [] for r in reconcile(["orders"]))


def test_change_capture_needs_no_reconciliation(oltp, warehouse, monkeypatch) -> None:
    monkeypatch.setenv("OLTP_CAPTURE", "cdc")
    assert reconcile() == []
