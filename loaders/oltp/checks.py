"""The replicated tables' contract: which columns land, and what orders the keyset.

The loader is the consumer of the order system's schema: it declares the
columns it replicates (``datagen/oltp_schema.py`` is the producer's side), so a
column the source adds later is not landed until it is added here, and a
column the source drops fails the load with its name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OltpTable:
    name: str
    primary_key: str  # one integer column: the keyset's tie-breaker
    columns: tuple[str, ...]  # as landed, in order; include primary_key and cursor
    cursor: str = "updated_at"  # the write time every insert and update sets


TABLES: dict[str, OltpTable] = {
    t.name: t
    for t in (
        OltpTable(
            "users",
            "user_id",
            (
                "user_id",
                "first_name",
                "last_name",
                "email",
                "phone",
                "registration_date",
                "loyalty_status",
                "created_at",
                "updated_at",
            ),
        ),
        OltpTable(
            "product_categories", "category_id", ("category_id", "name", "created_at", "updated_at")
        ),
        OltpTable(
            "products",
            "product_id",
            ("product_id", "name", "category_id", "price", "created_at", "updated_at"),
        ),
        OltpTable(
            "orders",
            "order_id",
            (
                "order_id",
                "user_id",
                "order_date",
                "status",
                "total_amount",
                "created_at",
                "updated_at",
            ),
        ),
        OltpTable(
            "order_details",
            "order_detail_id",
            (
                "order_detail_id",
                "order_id",
                "product_id",
                "quantity",
                "price_per_unit",
                "total_price",
                "created_at",
                "updated_at",
            ),
        ),
    )
}
