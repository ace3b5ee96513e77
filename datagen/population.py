"""The one population every simulated system shares: users, categories, products.

Built from (seed, scale) alone, so ids join across MongoDB, the OLTP database,
the sales API and the event stream. Scale 1.0 gives seed 002's volumes
(5000 users, 500 products).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass
from functools import cached_property

FIRST_NAMES = (
    "Anna",
    "Boris",
    "Daria",
    "Egor",
    "Irina",
    "Ivan",
    "Kirill",
    "Maria",
    "Nikita",
    "Olga",
    "Pavel",
    "Polina",
    "Roman",
    "Sofia",
    "Timur",
    "Vera",
    "Yulia",
    "Artem",
    "Elena",
    "Denis",
)
LAST_NAMES = (
    "Ivanov",
    "Petrova",
    "Smirnov",
    "Kuznetsova",
    "Popov",
    "Volkova",
    "Sokolov",
    "Lebedeva",
    "Kozlov",
    "Novikova",
    "Morozov",
    "Pavlova",
    "Orlov",
    "Fedorova",
    "Belov",
    "Zaitseva",
)
CATEGORIES = (
    "Books",
    "Electronics",
    "Home",
    "Garden",
    "Toys",
    "Sports",
    "Beauty",
    "Grocery",
    "Clothing",
    "Shoes",
    "Automotive",
    "Pet Supplies",
)
ADJECTIVES = ("Classic", "Smart", "Compact", "Deluxe", "Eco", "Pro", "Mini", "Ultra", "Basic")
LOYALTY = ("bronze", "silver", "gold", "platinum")


def rng_for(*parts: object) -> random.Random:
    """A generator seeded by a stable hash of ``parts`` (``hash()`` is salted per process)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


@dataclass(frozen=True)
class User:
    user_id: int
    first_name: str
    last_name: str
    email: str
    phone: str
    registration_date: dt.date
    loyalty_status: str


@dataclass(frozen=True)
class Category:
    category_id: int
    name: str


@dataclass(frozen=True)
class Product:
    product_id: int
    name: str
    category_id: int
    price: float


@dataclass(frozen=True)
class Population:
    seed: int
    scale: float
    start_date: dt.date

    @property
    def n_users(self) -> int:
        return max(20, round(5000 * self.scale))

    @property
    def n_products(self) -> int:
        return max(10, round(500 * self.scale))

    @cached_property
    def categories(self) -> list[Category]:
        return [Category(i + 1, name) for i, name in enumerate(CATEGORIES)]

    @cached_property
    def users(self) -> list[User]:
        rng = rng_for(self.seed, "users")
        users = []
        for uid in range(1, self.n_users + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            users.append(
                User(
                    user_id=uid,
                    first_name=first,
                    last_name=last,
                    email=f"{first}.{last}.{uid}@example.com".lower(),
                    phone=f"+7{rng.randrange(900_000_0000, 999_999_9999)}",
                    registration_date=self.start_date - dt.timedelta(days=rng.randrange(1, 365)),
                    loyalty_status=rng.choices(LOYALTY, weights=(60, 25, 10, 5))[0],
                )
            )
        return users

    @cached_property
    def products(self) -> list[Product]:
        rng = rng_for(self.seed, "products")
        products = []
        for pid in range(1, self.n_products + 1):
            category = rng.choice(self.categories)
            products.append(
                Product(
                    product_id=pid,
                    name=f"{rng.choice(ADJECTIVES)} {category.name.rstrip('s')} {pid}",
                    category_id=category.category_id,
                    price=round(rng.uniform(2, 500), 2),
                )
            )
        return products
