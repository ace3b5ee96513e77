"""The event systems' per-user profile: gender, age, country, city, os, source, group.

Fixed per (seed, user id), computed with numpy so a whole population is one
vectorised call; ``Population.profile``/``profiles`` are the way in.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

GENDERS = ("male", "female")
GENDER_WEIGHTS = (0.55, 0.45)
OPERATING_SYSTEMS = ("Android", "iOS")
OS_WEIGHTS = (0.62, 0.38)
SOURCES = ("ads", "organic")
SOURCE_WEIGHTS = (0.4, 0.6)
EXP_GROUPS = 5  # experiment groups 0..4, equally likely
AGE_MIN, AGE_MAX = 14, 70
# (country, city, share of users): most users in Russia, a few abroad.
CITIES = (
    ("Russia", "Moscow", 0.24),
    ("Russia", "Saint Petersburg", 0.12),
    ("Russia", "Novosibirsk", 0.05),
    ("Russia", "Yekaterinburg", 0.05),
    ("Russia", "Kazan", 0.04),
    ("Russia", "Samara", 0.03),
    ("Russia", "Omsk", 0.03),
    ("Russia", "Tver", 0.02),
    ("Russia", "Krasnodar", 0.04),
    ("Russia", "Nizhny Novgorod", 0.04),
    ("Kazakhstan", "Almaty", 0.05),
    ("Kazakhstan", "Astana", 0.03),
    ("Belarus", "Minsk", 0.06),
    ("Belarus", "Gomel", 0.02),
    ("Azerbaijan", "Baku", 0.04),
    ("Finland", "Helsinki", 0.03),
    ("Finland", "Espoo", 0.01),
    ("Turkey", "Istanbul", 0.03),
    ("Turkey", "Antalya", 0.02),
    ("Cyprus", "Limassol", 0.02),
    ("Cyprus", "Nicosia", 0.01),
    ("Latvia", "Riga", 0.02),
)
COUNTRIES = tuple(dict.fromkeys(country for country, _, _ in CITIES))


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic, no warnings)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def user_uniform(seed: int, name: str, user_ids: np.ndarray) -> np.ndarray:
    """One uniform [0, 1) per user id, a pure function of (seed, name, user id).

    A counter-based hash rather than a sequential generator: a user's value does
    not depend on which other users are asked for, or in which order, so a
    trait is the same for every day, table and population size.
    """
    digest = hashlib.blake2b(f"{seed}|{name}".encode(), digest_size=8).digest()
    key = np.uint64(int.from_bytes(digest, "big"))
    ids = np.asarray(user_ids, dtype=np.int64).reshape(-1).astype(np.uint64)
    z = _mix64(_mix64(ids ^ key))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _pick(weights: tuple[float, ...], u: np.ndarray) -> np.ndarray:
    """Index into ``weights`` for each uniform ``u`` (inverse of the cumulative shares)."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(weights) - 1)


def _age_weights() -> tuple[float, ...]:
    """Shares of ages AGE_MIN..AGE_MAX: a gamma shape over (age - 12), mode 24, mean 30.

    Most users are in their twenties, with a long tail to AGE_MAX.
    """
    shape, scale = 3.0, 6.0
    return tuple(
        (age - 12) ** (shape - 1) * math.exp(-(age - 12) / scale)
        for age in range(AGE_MIN, AGE_MAX + 1)
    )


AGE_WEIGHTS = _age_weights()
_CITY_COUNTRY = np.array([COUNTRIES.index(country) for country, _, _ in CITIES], dtype=np.int8)


@dataclass(frozen=True)
class Profiles:
    """Fixed attributes of many users, column-wise (numpy arrays aligned on ``user_id``).

    Categorical attributes are codes into this module's tuples: ``gender`` into
    GENDERS, ``city`` into CITIES, ``country`` into COUNTRIES, ``os`` into
    OPERATING_SYSTEMS, ``source`` into SOURCES. ``age`` is in years and
    ``exp_group`` is the group itself (0..EXP_GROUPS - 1).
    """

    user_id: np.ndarray
    gender: np.ndarray
    age: np.ndarray
    country: np.ndarray
    city: np.ndarray
    os: np.ndarray
    source: np.ndarray
    exp_group: np.ndarray


@dataclass(frozen=True)
class Profile:
    """One user's fixed attributes in the feed and messenger events."""

    user_id: int
    gender: str
    age: int
    country: str
    city: str
    os: str
    source: str
    exp_group: int


def user_profiles(seed: int, user_ids: np.ndarray) -> Profiles:
    """The event systems' attributes of ``user_ids``, each from (seed, user id) alone."""
    ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
    city = _pick(tuple(w for _, _, w in CITIES), user_uniform(seed, "profile-city", ids))
    return Profiles(
        user_id=ids,
        gender=_pick(GENDER_WEIGHTS, user_uniform(seed, "profile-gender", ids)).astype(np.int8),
        age=(AGE_MIN + _pick(AGE_WEIGHTS, user_uniform(seed, "profile-age", ids))).astype(np.int16),
        country=_CITY_COUNTRY[city],
        city=city.astype(np.int8),
        os=_pick(OS_WEIGHTS, user_uniform(seed, "profile-os", ids)).astype(np.int8),
        source=_pick(SOURCE_WEIGHTS, user_uniform(seed, "profile-source", ids)).astype(np.int8),
        exp_group=(user_uniform(seed, "profile-exp-group", ids) * EXP_GROUPS).astype(np.int16),
    )


def user_profile(seed: int, user_id: int) -> Profile:
    """One user's profile, as values (``user_profiles`` for many at once)."""
    p = user_profiles(seed, np.array([user_id]))
    return Profile(
        user_id=int(user_id),
        gender=GENDERS[p.gender[0]],
        age=int(p.age[0]),
        country=COUNTRIES[p.country[0]],
        city=CITIES[p.city[0]][1],
        os=OPERATING_SYSTEMS[p.os[0]],
        source=SOURCES[p.source[0]],
        exp_group=int(p.exp_group[0]),
    )
