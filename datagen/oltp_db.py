"""The order system's OLTP database, simulated one logical day at a time.

Like the app simulator (``mongo_writer``), every row is a function of (seed,
scale, start date, logical day): the same days give the same rows. All times
are UTC; a logical day runs from its midnight to the next.

- **Initial generation** (once): the 12 categories, the population's products
  and users, and the specified history at scale 1.0: 10,000 orders with 40,000
  order lines, placed over the 90 days before the start date. Each order's
  status is its state at the start date's midnight, so old orders are mostly
  delivered (some cancelled) and recent ones pending, paid or shipped.
- **Each day**: about 300 new orders (some by the day's new users); older
  orders move forward (pending -> paid -> shipped -> delivered, or cancelled
  from pending or paid); a few users change loyalty status; new users register.
- **Stream before row**: one in ten of a day's new users (at least one a day,
  see ``late_users``) gets the ``users`` row only the next day, at a sync time
  that morning; their Kafka event goes out on the registration day
  (``datagen.registrations``), so the warehouse sees the stream first.

Every order has a pre-drawn life (``Simulator.timeline``): its status at any
moment is a prefix of it, so statuses only move forward and a day writes the
state at its end with ``updated_at`` = the time of the last change. Rows carry
the simulator's logical clock in ``created_at``/``updated_at``; the schema's
trigger keeps an explicitly set ``updated_at``.

Day markers live in the ``datagen`` schema of the same database
(``datagen.days``), never in the replicated ``public`` tables. A day's rows
and its marker commit in one transaction, under an advisory lock: a crash
mid-day leaves nothing of it, and a rerun (or a second writer) writes it once.
The clock only moves forward: a day at or before the last one written is
skipped. A day written after a gap moves every existing order to its state at
the end of that day (the skipped days' new orders and users are not written).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import psycopg
from psycopg import pq
from psycopg.types.json import Jsonb

from datagen.oltp_schema import LOYALTY_STATUSES, PRIMARY_KEYS, create_schema
from datagen.population import Population, User, rng_for

# The specified volumes at scale 1.0, and the simulated store's daily rhythm.
INITIAL_ORDERS = 10_000
LINES_PER_ORDER = 4  # exactly: 40,000 order_details for 10,000 orders
MAX_LINES = 8
HISTORY_DAYS_BEFORE_START = 90  # initial orders are placed over these days
ORDERS_PER_DAY = 300
LOYALTY_CHANGES_PER_DAY = 10
NEW_USER_ORDER_SHARE = 0.3  # of a day's new users (whose row exists) order that day
LATE_USER_SHARE = 0.1  # of a day's new users get their row the next day
ORDER_LIFETIME_DAYS = 14  # an order reaches its final status within this many days
CATALOG_AGE_DAYS = 365  # categories and products exist this long before the start

SYSTEM = "oltp"  # datagen.days.system of the simulated days
INITIAL = "oltp_initial"  # ... of the initial generation (day = the start date)
TABLES = tuple(PRIMARY_KEYS)
CENT = Decimal("0.01")
DISCOUNTS = (Decimal("0.95"), Decimal("0.90"), Decimal("0.85"))

MARKERS_DDL = """
create schema if not exists datagen;
create table if not exists datagen.days (
    system      text not null,
    day         date not null,
    seed        bigint not null,
    scale       double precision not null,
    counts      jsonb not null,
    written_at  timestamptz not null default now(),
    primary key (system, day)
);
comment on table datagen.days is
    'Days the simulator has written (oltp) or published (kafka); not part of the order system';
"""

COLUMNS = {
    "product_categories": ("category_id", "name", "created_at", "updated_at"),
    "products": ("product_id", "name", "category_id", "price", "created_at", "updated_at"),
    "users": (
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
    "orders": (
        "order_id",
        "user_id",
        "order_date",
        "status",
        "total_amount",
        "created_at",
        "updated_at",
    ),
    "order_details": (
        "order_detail_id",
        "order_id",
        "product_id",
        "quantity",
        "price_per_unit",
        "total_price",
        "created_at",
        "updated_at",
    ),
}


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@dataclass(frozen=True)
class Order:
    order_id: int
    user_id: int
    created_at: dt.datetime  # = order_date


@dataclass(frozen=True)
class Line:
    order_detail_id: int
    order_id: int
    product_id: int
    quantity: int
    price_per_unit: Decimal
    total_price: Decimal


def late_users(population: Population, day: dt.date) -> list[User]:
    """The users registering on ``day`` whose OLTP row is written only on the next day.

    One in ten of the day's new users, at least one a day (so small test
    populations have some). Their Kafka event is published on ``day``.
    """
    users = population.new_users(day)
    if not users:
        return []
    rng = rng_for(population.seed, "late-users", day)
    late = rng.sample(users, max(1, round(LATE_USER_SHARE * len(users))))
    return sorted(late, key=lambda u: u.user_id)


def late_arrival_at(population: Population, user: User) -> dt.datetime:
    """When a late user's row is written: the morning after the registration."""
    rng = rng_for(population.seed, "late-sync", user.user_id)
    next_day = user.registration_date + dt.timedelta(days=1)
    return midnight(next_day) + dt.timedelta(seconds=rng.randrange(3_600, 10 * 3_600))


class Simulator:
    """The order system's rows and changes, as pure functions of the population and day."""

    def __init__(self, population: Population):
        self.pop = population
        self.start = midnight(population.start_date)
        self._first_ids: list[int] = []  # first order id of each day from the start date

    # -- sizes ----------------------------------------------------------------------
    @property
    def n_initial_orders(self) -> int:
        return max(1, round(INITIAL_ORDERS * self.pop.scale))

    def order_count(self, day: dt.date) -> int:
        """New orders on ``day``: about 300 at scale 1.0."""
        base = ORDERS_PER_DAY * self.pop.scale
        rng = rng_for(self.pop.seed, "order-count", day)
        return max(1, round(base * rng.uniform(0.85, 1.15)))

    def first_order_id(self, day: dt.date) -> int:
        """Order ids are contiguous: the initial orders, then each day's in turn."""
        if not self._first_ids:
            self._first_ids.append(self.n_initial_orders + 1)  # the start date's first id
        index = (day - self.pop.start_date).days
        while len(self._first_ids) <= index:
            previous = self.pop.start_date + dt.timedelta(days=len(self._first_ids) - 1)
            self._first_ids.append(self._first_ids[-1] + self.order_count(previous))
        return self._first_ids[max(0, index)]

    def first_detail_id(self, day: dt.date) -> int:
        # Every order has LINES_PER_ORDER lines on average, exactly per day.
        return (self.first_order_id(day) - 1) * LINES_PER_ORDER + 1

    def pool_max(self, day: dt.date) -> int:
        """Users who may order or change loyalty on ``day``: registered two days before or more.

        (A late user of the day before may not have a row yet when the day starts.)
        """
        index = (day - self.pop.start_date).days
        return self.pop.n_users + max(0, index - 1) * self.pop.new_users_per_day

    # -- the catalog and the population ------------------------------------------------
    def catalog_rows(self) -> dict[str, list[tuple]]:
        since = self.start - dt.timedelta(days=CATALOG_AGE_DAYS)
        return {
            "product_categories": [
                (c.category_id, c.name, since, since) for c in self.pop.categories
            ],
            "products": [
                (p.product_id, p.name, p.category_id, _money(p.price), since, since)
                for p in self.pop.products
            ],
        }

    def user_row(self, user: User, written_at: dt.datetime) -> tuple:
        return (
            user.user_id,
            user.first_name,
            user.last_name,
            user.email,
            user.phone,
            user.registration_date,
            user.loyalty_status,
            written_at,
            written_at,
        )

    @functools.cached_property
    def registered(self) -> list[dt.datetime]:
        return [self.pop.registered_at(u) for u in self.pop.users]

    # -- orders --------------------------------------------------------------------------
    @functools.cached_property
    def initial_orders(self) -> tuple[list[Order], list[Line]]:
        """The initial order history: placed over the 90 days before the start date."""
        rng = rng_for(self.pop.seed, "initial-orders")
        span = HISTORY_DAYS_BEFORE_START * 86_400
        times = sorted(
            self.start - dt.timedelta(seconds=rng.randrange(1, span + 1))
            for _ in range(self.n_initial_orders)
        )
        earliest = min(range(len(self.registered)), key=self.registered.__getitem__)
        orders = []
        for i, t0 in enumerate(times):
            for _ in range(20):  # a buyer who had already registered
                k = rng.randrange(len(self.pop.users))
                if self.registered[k] < t0:
                    break
            else:
                k = earliest
            orders.append(Order(i + 1, self.pop.users[k].user_id, t0))
        lines = self._lines(orders, rng_for(self.pop.seed, "initial-order-lines"), 1)
        return orders, lines

    @functools.cache  # noqa: B019
    def day_orders(self, day: dt.date) -> tuple[list[Order], list[Line]]:
        """The orders placed on ``day`` (ids in time order) and their lines."""
        rng = rng_for(self.pop.seed, "orders", day)
        n = self.order_count(day)
        end = midnight(day + dt.timedelta(days=1)) - dt.timedelta(seconds=1)
        late = {u.user_id for u in late_users(self.pop, day)}
        placed: list[tuple[dt.datetime, int]] = []
        for user in self.pop.new_users(day):
            if user.user_id not in late and rng.random() < NEW_USER_ORDER_SHARE:
                delay = dt.timedelta(seconds=rng.randrange(60, 3 * 3_600))
                placed.append((min(self.pop.registered_at(user) + delay, end), user.user_id))
        placed = placed[:n]
        pool = self.pool_max(day)
        for _ in range(n - len(placed)):
            t0 = midnight(day) + dt.timedelta(seconds=rng.randrange(86_400))
            placed.append((t0, rng.randint(1, pool)))
        first = self.first_order_id(day)
        orders = [Order(first + i, uid, t0) for i, (t0, uid) in enumerate(sorted(placed))]
        lines = self._lines(
            orders, rng_for(self.pop.seed, "order-lines", day), self.first_detail_id(day)
        )
        return orders, lines

    def _lines(self, orders: Sequence[Order], rng: random.Random, first_id: int) -> list[Line]:
        """Exactly LINES_PER_ORDER lines per order on average: 1 each, the rest spread."""
        per_order = [1] * len(orders)
        cap = min(MAX_LINES, len(self.pop.products))
        extra = (LINES_PER_ORDER - 1) * len(orders)
        while extra:
            i = rng.randrange(len(orders))
            if per_order[i] < cap:
                per_order[i] += 1
                extra -= 1
        lines = []
        for order, k in zip(orders, per_order, strict=True):
            for product in rng.sample(self.pop.products, k):
                quantity = rng.choices((1, 2, 3, 4, 5), weights=(60, 20, 10, 6, 4))[0]
                price = _money(product.price)
                if rng.random() < 0.1:  # a promotion: the price paid is a little lower
                    price = (price * rng.choice(DISCOUNTS)).quantize(CENT, ROUND_HALF_UP)
                lines.append(
                    Line(
                        first_id + len(lines),
                        order.order_id,
                        product.product_id,
                        quantity,
                        price,
                        (quantity * price).quantize(CENT),
                    )
                )
        return lines

    @functools.cache  # noqa: B019
    def timeline(
        self, order_id: int, created_at: dt.datetime
    ) -> tuple[tuple[dt.datetime, str], ...]:
        """The order's statuses and when each began; it ends within ORDER_LIFETIME_DAYS."""
        rng = rng_for(self.pop.seed, "order-status", order_id)
        t = created_at
        events = [(t, "pending")]

        def after(min_minutes: int, max_minutes: int) -> dt.datetime:
            return t + dt.timedelta(minutes=rng.randint(min_minutes, max_minutes))

        if rng.random() < 0.06:  # never paid: cancelled by the customer or the shop
            events.append((after(30, 3 * 1_440), "cancelled"))
            return tuple(events)
        t += dt.timedelta(minutes=min(int(rng.expovariate(1 / 240)) + 1, 3 * 1_440))
        events.append((t, "paid"))
        if rng.random() < 0.03:  # paid, then cancelled before shipping (refunded)
            events.append((after(60, 2 * 1_440), "cancelled"))
            return tuple(events)
        t = after(6 * 60, 3 * 1_440)
        events.append((t, "shipped"))
        t = after(1_440, 7 * 1_440)
        events.append((t, "delivered"))
        return tuple(events)

    def state_at(self, order: Order, until: dt.datetime) -> tuple[str, dt.datetime]:
        """(status, time of the last change) of ``order`` just before ``until``."""
        status, changed = "pending", order.created_at
        for t, s in self.timeline(order.order_id, order.created_at):
            if t >= until:
                break
            status, changed = s, t
        return status, changed

    def order_rows(
        self, orders: Sequence[Order], lines: Sequence[Line], until: dt.datetime
    ) -> tuple[list[tuple], list[tuple]]:
        totals: dict[int, Decimal] = {}
        for line in lines:
            totals[line.order_id] = totals.get(line.order_id, Decimal(0)) + line.total_price
        created = {o.order_id: o.created_at for o in orders}
        order_rows = []
        for o in orders:
            status, changed = self.state_at(o, until)
            order_rows.append(
                (
                    o.order_id,
                    o.user_id,
                    o.created_at,  # order_date
                    status,
                    totals[o.order_id],
                    o.created_at,
                    changed,  # updated_at: the last status change
                )
            )
        line_rows = [
            (
                line.order_detail_id,
                line.order_id,
                line.product_id,
                line.quantity,
                line.price_per_unit,
                line.total_price,
                created[line.order_id],
                created[line.order_id],
            )
            for line in lines
        ]
        return order_rows, line_rows

    def status_changes(
        self, since: dt.datetime, until: dt.datetime
    ) -> list[tuple[int, str, dt.datetime]]:
        """(order_id, status, changed at) of orders placed before ``since`` that changed since."""
        oldest = since - dt.timedelta(days=ORDER_LIFETIME_DAYS)
        candidates: list[Order] = []
        initial, _ = self.initial_orders
        times = [o.created_at for o in initial]
        candidates += initial[bisect.bisect_left(times, oldest) :]
        day = max(self.pop.start_date, oldest.date())
        while midnight(day) < since:
            candidates += [o for o in self.day_orders(day)[0] if o.created_at < since]
            day += dt.timedelta(days=1)
        changes = []
        for order in candidates:
            events = self.timeline(order.order_id, order.created_at)
            if any(since <= t < until for t, _ in events):
                status, changed = self.state_at(order, until)
                changes.append((order.order_id, status, changed))
        return changes

    # -- users' loyalty ------------------------------------------------------------------
    def loyalty_draws(self, day: dt.date) -> list[tuple[int, dt.datetime, bool]]:
        """(user_id, when, upgrade?) for the users whose loyalty status changes on ``day``."""
        rng = rng_for(self.pop.seed, "loyalty", day)
        pool = self.pool_max(day)
        k = min(pool, max(1, round(LOYALTY_CHANGES_PER_DAY * self.pop.scale)))
        users = sorted(rng.sample(range(1, pool + 1), k))
        return [
            (uid, midnight(day) + dt.timedelta(seconds=rng.randrange(86_400)), rng.random() < 0.75)
            for uid in users
        ]


@functools.lru_cache(maxsize=4)
def simulator(population: Population) -> Simulator:
    return Simulator(population)


def _money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(CENT, ROUND_HALF_UP)


def _next_loyalty(current: str, upgrade: bool) -> str:
    level = LOYALTY_STATUSES.index(current)
    if level == 0:
        upgrade = True
    elif level == len(LOYALTY_STATUSES) - 1:
        upgrade = False
    return LOYALTY_STATUSES[level + (1 if upgrade else -1)]


# -- the database ----------------------------------------------------------------------------
def check_outside_transaction(conn: psycopg.Connection) -> None:
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise ValueError(
            "the OLTP simulator commits each day itself: pass a connection that is not "
            "inside a transaction"
        )


def advisory_lock(conn: psycopg.Connection, name: str) -> None:
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (name,))


def ensure_markers(conn: psycopg.Connection) -> None:
    """Create ``datagen.days``, where the simulator records what it wrote and published."""
    check_outside_transaction(conn)
    with conn.transaction():
        advisory_lock(conn, "datagen.ddl")
        conn.execute(MARKERS_DDL)


def prepare(conn: psycopg.Connection) -> None:
    """The order system's tables (as its backend creates them) and the simulator's markers."""
    check_outside_transaction(conn)
    create_schema(conn)
    ensure_markers(conn)


def marked_days(conn: psycopg.Connection, system: str) -> list[dt.date]:
    """Days recorded for ``system`` (``oltp``, ``kafka``), oldest first."""
    if conn.execute("select to_regclass('datagen.days')").fetchone()[0] is None:
        return []
    rows = conn.execute(
        "select day from datagen.days where system = %s order by day", (system,)
    ).fetchall()
    return [r[0] for r in rows]


def mark_day(
    conn: psycopg.Connection,
    system: str,
    day: dt.date,
    population: Population,
    counts: dict[str, object],
) -> None:
    """Record ``day`` as done for ``system``; call inside the transaction that did it."""
    conn.execute(
        "insert into datagen.days (system, day, seed, scale, counts) values (%s, %s, %s, %s, %s)",
        (system, day, population.seed, population.scale, Jsonb(counts)),
    )


def generated_days(conn: psycopg.Connection) -> list[dt.date]:
    """The simulated days written to the OLTP database, oldest first."""
    check_outside_transaction(conn)
    with conn.transaction():
        return marked_days(conn, SYSTEM)


def days_up_to(conn: psycopg.Connection, day: dt.date) -> list[dt.date]:
    """The written days up to and including ``day`` (what may be published to Kafka)."""
    return [d for d in generated_days(conn) if d <= day]


def days_to_generate(conn: psycopg.Connection, start: dt.date, history_days: int) -> list[dt.date]:
    """First run: ``history_days`` days from ``start``; later runs: the day after the last."""
    done = generated_days(conn)
    if not done:
        return [start + dt.timedelta(days=k) for k in range(max(1, history_days))]
    return [done[-1] + dt.timedelta(days=1)]


def _stage_insert(conn: psycopg.Connection, table: str, rows: Sequence[tuple]) -> int:
    """COPY ``rows`` into ``table``, skipping rows already there; returns rows inserted."""
    if not rows:
        return 0
    columns = ", ".join(COLUMNS[table])
    stage = f"_stage_{table}"
    conn.execute(f"create temp table {stage} (like {table}) on commit drop")
    with conn.cursor() as cur:
        with cur.copy(f"copy {stage} ({columns}) from stdin") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"insert into {table} ({columns}) select {columns} from {stage}"
            f" order by {PRIMARY_KEYS[table]} on conflict do nothing"
        )
        inserted = cur.rowcount
    conn.execute(f"drop table {stage}")
    return inserted


def _check_population(conn: psycopg.Connection, population: Population) -> bool:
    """True if the initial generation is there; it must be this population's."""
    row = conn.execute(
        "select day, seed, scale from datagen.days where system = %s", (INITIAL,)
    ).fetchone()
    if row is None:
        return False
    day, seed, scale = row
    if (day, seed, scale) != (population.start_date, population.seed, population.scale):
        raise ValueError(
            f"the OLTP database holds the store of seed {seed}, scale {scale}, start {day}, "
            f"not seed {population.seed}, scale {population.scale}, start "
            f"{population.start_date}: use a fresh database or the same DATAGEN_* settings"
        )
    return True


def write_initial(conn: psycopg.Connection, population: Population) -> dict[str, int] | None:
    """The catalog, the population and the initial order history; None if already there.

    Creates the order system's tables and the markers table first if they are missing.
    """
    check_outside_transaction(conn)
    with conn.transaction():
        ready = conn.execute(
            "select to_regclass('datagen.days') is not null"
            " and to_regclass('public.order_details') is not null"
        ).fetchone()[0]
    if not ready:
        prepare(conn)
    sim = simulator(population)
    with conn.transaction():
        advisory_lock(conn, "datagen.oltp")
        if _check_population(conn, population):
            return None
        rows = sim.catalog_rows()
        rows["users"] = [
            sim.user_row(u, at) for u, at in zip(population.users, sim.registered, strict=True)
        ]
        orders, lines = sim.initial_orders
        rows["orders"], rows["order_details"] = sim.order_rows(orders, lines, sim.start)
        counts = {table: _stage_insert(conn, table, rows[table]) for table in TABLES}
        mark_day(conn, INITIAL, population.start_date, population, counts)
    return counts


def write_day(
    conn: psycopg.Connection, population: Population, day: dt.date
) -> dict[str, int] | None:
    """Write ``day`` (after the initial generation); rows written per table.

    None if ``day`` is at or before the last day written (the clock only moves
    forward). The day's rows and its marker commit together.
    """
    if day < population.start_date:
        raise ValueError(f"day {day} is before the simulation start {population.start_date}")
    write_initial(conn, population)
    sim = simulator(population)
    with conn.transaction():
        advisory_lock(conn, "datagen.oltp")
        done = marked_days(conn, SYSTEM)
        if done and day <= done[-1]:
            return None
        since = midnight(done[-1] + dt.timedelta(days=1)) if done else sim.start
        counts, detail = _write_day(conn, sim, day, since)
        mark_day(conn, SYSTEM, day, population, detail)
    return counts


def _write_day(
    conn: psycopg.Connection, sim: Simulator, day: dt.date, since: dt.datetime
) -> tuple[dict[str, int], dict[str, int]]:
    pop = sim.pop
    until = midnight(day + dt.timedelta(days=1))
    # Users: today's sign-ups, except the late ones; the last written day's late ones.
    late_today = {u.user_id for u in late_users(pop, day)}
    registered = [u for u in pop.new_users(day) if u.user_id not in late_today]
    user_rows = [sim.user_row(u, pop.registered_at(u)) for u in registered]
    previous = since.date() - dt.timedelta(days=1)
    arriving = late_users(pop, previous) if previous >= pop.start_date else []
    user_rows += [sim.user_row(u, late_arrival_at(pop, u)) for u in arriving]
    users_inserted = _stage_insert(conn, "users", user_rows)

    # Orders placed today. After a gap, a buyer who registered on a skipped day
    # has no row: the order goes to a population user instead.
    orders, lines = sim.day_orders(day)
    today_ids = {u.user_id for u in registered}
    wanted = sorted({o.user_id for o in orders if o.user_id > pop.n_users} - today_ids)
    existing = {
        r[0]
        for r in conn.execute(
            "select user_id from users where user_id = any(%s)", (wanted,)
        ).fetchall()
    }
    orders = [
        o
        if o.user_id <= pop.n_users or o.user_id in today_ids or o.user_id in existing
        else Order(o.order_id, (o.user_id - 1) % pop.n_users + 1, o.created_at)
        for o in orders
    ]
    order_rows, line_rows = sim.order_rows(orders, lines, until)
    orders_inserted = _stage_insert(conn, "orders", order_rows)
    lines_inserted = _stage_insert(conn, "order_details", line_rows)

    # Older orders move forward.
    status_updated = 0
    changes = sim.status_changes(since, until)
    if changes:
        conn.execute(
            "create temp table _status (order_id integer primary key, status text,"
            " updated_at timestamptz) on commit drop"
        )
        with conn.cursor() as cur:
            with cur.copy("copy _status (order_id, status, updated_at) from stdin") as copy:
                for change in changes:
                    copy.write_row(change)
            cur.execute(
                "update orders o set status = s.status, updated_at = s.updated_at"
                " from _status s where o.order_id = s.order_id and o.updated_at < s.updated_at"
            )
            status_updated = cur.rowcount
        conn.execute("drop table _status")

    # A few users move up (or down) a loyalty level.
    draws = sim.loyalty_draws(day)
    current = {
        uid: (status, updated)
        for uid, status, updated in conn.execute(
            "select user_id, loyalty_status, updated_at from users where user_id = any(%s)"
            " for update",
            ([uid for uid, _, _ in draws],),
        ).fetchall()
    }
    loyalty = [
        (_next_loyalty(current[uid][0], up), at, uid)
        for uid, at, up in draws
        if uid in current and current[uid][1] < at
    ]
    if loyalty:
        with conn.cursor() as cur:
            cur.executemany(
                "update users set loyalty_status = %s, updated_at = %s where user_id = %s",
                loyalty,
            )

    counts = {
        "product_categories": 0,
        "products": 0,
        "users": users_inserted + len(loyalty),
        "orders": orders_inserted + status_updated,
        "order_details": lines_inserted,
    }
    detail = {
        "users_registered": len(registered),
        "users_arrived_late": len(arriving),
        "users_registered_late": len(late_today),
        "loyalty_changes": len(loyalty),
        "orders_placed": orders_inserted,
        "order_status_changes": status_updated,
        "order_details": lines_inserted,
    }
    return counts, detail


def write_days(
    conn: psycopg.Connection, population: Population, days: Iterable[dt.date]
) -> Iterator[tuple[dt.date, dict[str, int] | None]]:
    """Write each of ``days`` in turn: (day, counts), counts None for a day already behind."""
    for day in days:
        yield day, write_day(conn, population, day)


def play_day(
    conn: psycopg.Connection, population: Population, day: dt.date, history_days: int = 7
) -> dict[str, int] | None:
    """Write ``day`` as the order system would, for a scheduler's run of that logical date.

    The first call writes the initial generation. Missing days before ``day``
    are written first, at most ``history_days`` days in all (from the start
    date on a first run), like ``mongo_writer.play_day``. Returns rows written
    per table (the initial generation included), or None if ``day`` was
    already written: the clock only moves forward.
    """
    if day < population.start_date:
        raise ValueError(f"day {day} is before the simulation start {population.start_date}")
    counts = dict.fromkeys(TABLES, 0)
    initial = write_initial(conn, population)
    for table, n in (initial or {}).items():
        counts[table] += n
    done = generated_days(conn)
    if done and day <= done[-1]:
        return None
    first = done[-1] + dt.timedelta(days=1) if done else population.start_date
    first = max(first, day - dt.timedelta(days=max(1, history_days) - 1))
    span = [first + dt.timedelta(days=k) for k in range((day - first).days + 1)]
    for _, day_counts in write_days(conn, population, span):
        for table, n in (day_counts or {}).items():
            counts[table] += n
    return counts
