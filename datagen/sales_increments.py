"""The partner's daily sales increments, over the shared population.

An increment for day D is a pure function of (seed, scale, start date, D), as
three CSV files. Like the real partner's files it contains:
- exact duplicate rows (the partner's export repeats some lines);
- corrected re-sends of rows from the two previous days (same ``uniq_id``, a
  new quantity and amount): the newest increment holds the truth;
- no ``status`` column before STATUS_SINCE_DAYS after the start (the old
  format): those rows are all shipped.
Customers mostly order from their home city but sometimes from another one,
so "the city of the customer's last order" changes over time.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass

from datagen.population import Population, rng_for

CITIES = (
    (1, "Moscow"),
    (2, "Saint Petersburg"),
    (3, "Kazan"),
    (4, "Novosibirsk"),
    (5, "Yekaterinburg"),
    (6, "Samara"),
    (7, "Omsk"),
    (8, "Tver"),
)
STATUS_SINCE_DAYS = 3  # increments before start + 3 days have no status column
FILES = ("customer_research_inc.csv", "user_order_log_inc.csv", "user_activity_log_inc.csv")
ORDER_COLUMNS = (
    "uniq_id",
    "date_time",
    "city_id",
    "city_name",
    "customer_id",
    "first_name",
    "last_name",
    "item_id",
    "item_name",
    "quantity",
    "payment_amount",
    "status",
)
RESEARCH_COLUMNS = ("date_id", "category_id", "geo_id", "sales_qty", "sales_amt")
ACTIVITY_COLUMNS = ("uniq_id", "date_time", "action_id", "customer_id", "quantity")


def _uid(*parts: object) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).hexdigest()


def home_city(pop: Population, customer_id: int) -> tuple[int, str]:
    return rng_for(pop.seed, "home-city", customer_id).choice(CITIES)


@dataclass(frozen=True)
class SalesDay:
    pop: Population
    day: dt.date

    @property
    def has_status(self) -> bool:
        return self.day >= self.pop.start_date + dt.timedelta(days=STATUS_SINCE_DAYS)

    def orders(self) -> list[dict]:
        """The day's own order lines (before duplicates and corrections)."""
        rng = rng_for(self.pop.seed, "sales", self.day)
        start = dt.datetime.combine(self.day, dt.time())
        lines = []
        for i in range(max(5, round(self.pop.n_users * 0.04))):
            user = self.pop.users[rng.randrange(self.pop.n_users)]
            city = home_city(self.pop, user.user_id) if rng.random() < 0.85 else rng.choice(CITIES)
            product = self.pop.products[rng.randrange(self.pop.n_products)]
            quantity = rng.randint(1, 5)
            lines.append(
                {
                    "uniq_id": _uid(self.pop.seed, "order", self.day, i),
                    "date_time": (start + dt.timedelta(seconds=rng.randrange(86_400))).isoformat(
                        " "
                    ),
                    "city_id": city[0],
                    "city_name": city[1],
                    "customer_id": user.user_id,
                    "first_name": user.first_name,
                    "last_name": user.last_name,
                    "item_id": product.product_id,
                    "item_name": product.name,
                    "quantity": quantity,
                    "payment_amount": f"{quantity * product.price:.2f}",
                    "status": "refunded" if rng.random() < 0.06 else "shipped",
                }
            )
        return lines

    def order_log(self) -> list[dict]:
        """What the partner sends for the day: own lines, duplicates, corrections."""
        rng = rng_for(self.pop.seed, "sales-resend", self.day)
        own = self.orders()
        rows = list(own)
        # Exact duplicates: ~3% of lines, and always at least one.
        rows += [dict(r) for i, r in enumerate(own) if i == 0 or rng.random() < 0.03]
        for back in (1, 2):
            earlier = self.day - dt.timedelta(days=back)
            if earlier < self.pop.start_date:
                continue
            for i, line in enumerate(SalesDay(self.pop, earlier).orders()):
                if i == back or rng.random() < 0.02:  # ~2%, and at least one a day
                    price = float(line["payment_amount"]) / line["quantity"]
                    quantity = line["quantity"] + rng.choice((-1, 1)) if line["quantity"] > 1 else 2
                    fixed = {
                        **line,
                        "quantity": quantity,
                        "payment_amount": f"{quantity * price:.2f}",
                    }
                    rows.append(fixed)
        rng.shuffle(rows)
        return rows

    def customer_research(self) -> list[dict]:
        totals: dict[tuple[int, int], list[float]] = {}
        by_id = {p.product_id: p for p in self.pop.products}
        for line in self.orders():
            key = (by_id[line["item_id"]].category_id, line["city_id"])
            acc = totals.setdefault(key, [0, 0.0])
            acc[0] += line["quantity"]
            acc[1] += float(line["payment_amount"])
        return [
            {
                "date_id": self.day.isoformat(),
                "category_id": cat,
                "geo_id": geo,
                "sales_qty": qty,
                "sales_amt": f"{amt:.2f}",
            }
            for (cat, geo), (qty, amt) in sorted(totals.items())
        ]

    def user_activity(self) -> list[dict]:
        rng = rng_for(self.pop.seed, "activity", self.day)
        start = dt.datetime.combine(self.day, dt.time())
        return [
            {
                "uniq_id": _uid(self.pop.seed, "activity", self.day, i),
                "date_time": (start + dt.timedelta(seconds=rng.randrange(86_400))).isoformat(" "),
                "action_id": rng.randint(1, 8),
                "customer_id": rng.randint(1, self.pop.n_users),
                "quantity": rng.randint(1, 3),
            }
            for i in range(max(5, round(self.pop.n_users * 0.06)))
        ]

    def files(self) -> dict[str, str]:
        """The increment's three CSV files, by name."""
        order_columns = ORDER_COLUMNS if self.has_status else ORDER_COLUMNS[:-1]
        return {
            "customer_research_inc.csv": to_csv(RESEARCH_COLUMNS, self.customer_research()),
            "user_order_log_inc.csv": to_csv(order_columns, self.order_log()),
            "user_activity_log_inc.csv": to_csv(ACTIVITY_COLUMNS, self.user_activity()),
        }


def to_csv(columns: tuple[str, ...], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
