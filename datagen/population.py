"""The one population every simulated system shares: users, categories, products.

Built from (seed, scale) alone, so ids join across MongoDB, the OLTP database,
the sales API and the event stream. Scale 1.0 gives the order system's
specified volumes (5000 users, 500 products).

The feed and messenger events also need each user's demographics:
``profile`` and ``profiles`` give them (``datagen/profiles.py``, imported only
when asked for, so the other simulators do not pay for numpy).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from datagen.profiles import Profile, Profiles

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

    # -- registrations after the start date (the order system) -----------------------
    @property
    def new_users_per_day(self) -> int:
        """Users who register each simulated day (about 15 at scale 1.0, at least 2)."""
        return max(2, round(15 * self.scale))

    def new_users(self, day: dt.date) -> list[User]:
        """The users who register on ``day``: none before ``start_date``.

        Ids follow the population's, a fixed block per day
        (``n_users + day_index * new_users_per_day + i + 1``), so they are
        contiguous and never depend on which other days were simulated. Emails
        carry the id, so they are unique across the population and every day.
        """
        index = (day - self.start_date).days
        if index < 0:
            return []
        rng = rng_for(self.seed, "new-users", day)
        first_id = self.n_users + index * self.new_users_per_day + 1
        users = []
        for uid in range(first_id, first_id + self.new_users_per_day):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            users.append(
                User(
                    user_id=uid,
                    first_name=first,
                    last_name=last,
                    email=f"{first}.{last}.{uid}@example.com".lower(),
                    phone=f"+7{rng.randrange(900_000_0000, 999_999_9999)}",
                    registration_date=day,
                    loyalty_status=rng.choices(LOYALTY, weights=(85, 10, 4, 1))[0],
                )
            )
        return users

    def registered_at(self, user: User) -> dt.datetime:
        """The moment (UTC) ``user`` signed up: a fixed time of their registration date."""
        rng = rng_for(self.seed, "registered-at", user.user_id)
        midnight = dt.datetime.combine(user.registration_date, dt.time(), tzinfo=dt.UTC)
        return midnight + dt.timedelta(seconds=rng.randrange(86_400))

    # -- the event systems' demographics ----------------------------------------------
    def profiles(self, user_ids: np.ndarray) -> Profiles:
        """Fixed attributes of ``user_ids`` (any ids, vectorised): see ``user_profiles``."""
        from datagen.profiles import user_profiles

        return user_profiles(self.seed, user_ids)

    def profile(self, user_id: int) -> Profile:
        """One user's gender, age, country, city, os, source and experiment group.

        A pure function of (seed, user id): the same in every table, on every
        day and at every scale (ids the population has not reached yet have one
        too, which is harmless).
        """
        from datagen.profiles import user_profile

        return user_profile(self.seed, user_id)
