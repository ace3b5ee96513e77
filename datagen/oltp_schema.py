"""The order system's OLTP schema, as the simulated store's backend creates it.

Every table carries ``created_at``/``updated_at`` (SPEC.md): a trigger stamps
``updated_at`` on any update that does not set it itself, so replication by
``(updated_at, primary key)`` sees every change. The simulator sets both to
its logical clock, and the trigger leaves an explicitly set value alone.
``now()`` is the transaction's start, not its commit: a long transaction can
commit rows stamped behind the loader's watermark, which is why the loader
re-reads a lookback window. Rows are never hard-deleted. Each table has an
index on ``(updated_at, <pk>)`` so the loader's keyset reads are index range
scans, not full scans.
"""

from __future__ import annotations

import psycopg

# Table -> primary key, in creation order (foreign keys point backwards).
# The loader declares its own copy of the columns it replicates (loaders/oltp):
# it is the consumer of this schema, not its owner.
PRIMARY_KEYS: dict[str, str] = {
    "product_categories": "category_id",
    "products": "product_id",
    "users": "user_id",
    "orders": "order_id",
    "order_details": "order_detail_id",
}

ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")
LOYALTY_STATUSES = ("bronze", "silver", "gold", "platinum")

DDL = """
create table if not exists product_categories (
    category_id  integer primary key,
    name         text not null,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);
create table if not exists products (
    product_id   integer primary key,
    name         text not null,
    category_id  integer not null references product_categories (category_id),
    price        numeric(10, 2) not null check (price >= 0),
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);
create table if not exists users (
    user_id            integer primary key,
    first_name         text not null,
    last_name          text not null,
    email              text not null unique,
    phone              text,
    registration_date  date not null,
    loyalty_status     text not null
        check (loyalty_status in ('bronze', 'silver', 'gold', 'platinum')),
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);
create table if not exists orders (
    order_id      integer primary key,
    user_id       integer not null references users (user_id),
    order_date    timestamptz not null,
    status        text not null
        check (status in ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    total_amount  numeric(12, 2) not null,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create table if not exists order_details (
    order_detail_id  integer primary key,
    order_id         integer not null references orders (order_id),
    product_id       integer not null references products (product_id),
    quantity         integer not null check (quantity > 0),
    price_per_unit   numeric(10, 2) not null,
    total_price      numeric(12, 2) not null,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);
create or replace function touch_updated_at() returns trigger language plpgsql as $$
begin
    -- An update that does not set updated_at itself gets the transaction's clock.
    if new.updated_at is not distinct from old.updated_at then
        new.updated_at := now();
    end if;
    return new;
end $$;
"""


def create_schema(conn: psycopg.Connection) -> None:
    """Create the tables, keyset indexes and update triggers that do not exist yet."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('oltp.ddl'))")
        conn.execute(DDL)
        for table, key in PRIMARY_KEYS.items():
            conn.execute(
                f"create index if not exists {table}__updated_at_idx on {table} (updated_at, {key})"
            )
            conn.execute(
                f"create or replace trigger {table}__touch before update on {table}"
                " for each row execute function touch_updated_at()"
            )
