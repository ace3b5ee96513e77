"""The social feed and messenger events, generated one logical day at a time.

Two tables, columns as SPEC.md section 4 names them (``FEED_SCHEMA``,
``MESSAGE_SCHEMA``), returned as ``pyarrow.Table`` so a writer can hand them
to ClickHouse (clickhouse-connect's ``insert_arrow``) or PostgreSQL (COPY):

- ``feed_actions``: one row per view or like of a post;
- ``message_actions``: one row per message, with the sender's attributes.

Every row is a pure function of (seed, scale, start date, logical day,
incidents): the same inputs give identical tables, in the same row order
(by time). Generation is vectorised with numpy, no Python loop per row.

**Who.** The population's users (``datagen.population``), those registered
before the day: the initial users and the new users of the days from the start
date up to the day before (a user who registers on day D is in the events from
D + 1). Their gender, age, country, city, os, source and experiment group are
fixed per (seed, user id) (``Population.profile``/``profiles``), so a user has
the same attributes in both tables and on every day.

**How much** (per user, so volumes grow with the scale knob; scale 1.0 is 5,000
users and gives about 100k feed actions and 10k messages a day):

- each user has a fixed feed propensity (0.02..0.62, mean 0.22) and is active
  on the feed on a day with that probability (times a weekday/day level);
- an active user views a log-normal number of posts (median 45, heavy tail,
  at most 3,000), mostly posts of the last days and a few popular ones;
- each view is liked with the user's fixed like rate (0.08..0.32, mean 0.2):
  the like is a second row with the same post, 1..120 s after the view;
- 40% of users use the messenger at all; each of them sends on a day with a
  fixed probability (0.1..0.5). A sender sends a log-normal number of
  messages (median 11) to a few contacts (1 + Poisson(1.5)), 80% of them
  users active that day (on the feed or the messenger), the rest anyone, never
  themselves.

**When.** Times are UTC, whole seconds, inside the logical day. Each table's
events fall into the day's 96 slices of 15 minutes with weights from
``INTRADAY_HOURLY`` (night trough around 03:00-05:00 UTC, evening peak around
18:00-20:00 UTC; linear between hour centres) times a log-normal noise per
slice and day, then uniformly within the slice.

**Incidents.** ``incidents_for`` picks, from the seed, about one day in three
to carry one incident (a 15-minute drop of likes, a 15-minute spike of
messages, or a dead hour of one OS in both tables); the other days are clean.
Callers may pass an explicit list instead (``incidents=()`` for a clean day).
``day_events`` returns the incidents it applied beside the tables. An incident
only changes rows inside its window: every other row is the same as on the
clean day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from datagen.population import Population, rng_for
from datagen.profiles import (
    AGE_MAX,
    AGE_MIN,
    CITIES,
    COUNTRIES,
    EXP_GROUPS,
    GENDERS,
    OPERATING_SYSTEMS,
    SOURCES,
    user_uniform,
)

FEED_TABLE = "feed_actions"
MESSAGE_TABLE = "message_actions"
ALL_TABLES = "all"  # an incident that hits both tables (an OS outage)

_TIME = pa.timestamp("s", tz="UTC")
FEED_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),
        pa.field("post_id", pa.int32(), nullable=False),
        pa.field("action", pa.string(), nullable=False),  # 'view' | 'like'
        pa.field("time", _TIME, nullable=False),
        pa.field("gender", pa.string(), nullable=False),  # 'male' | 'female'
        pa.field("age", pa.int16(), nullable=False),  # years
        pa.field("country", pa.string(), nullable=False),
        pa.field("city", pa.string(), nullable=False),
        pa.field("os", pa.string(), nullable=False),  # 'Android' | 'iOS'
        pa.field("source", pa.string(), nullable=False),  # 'ads' | 'organic'
        pa.field("exp_group", pa.int16(), nullable=False),  # 0..4
    ]
)
MESSAGE_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.int32(), nullable=False),  # the sender
        pa.field("receiver_id", pa.int32(), nullable=False),
        pa.field("time", _TIME, nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("exp_group", pa.int16(), nullable=False),
        pa.field("gender", pa.string(), nullable=False),
        pa.field("age", pa.int16(), nullable=False),
        pa.field("country", pa.string(), nullable=False),
        pa.field("city", pa.string(), nullable=False),
        pa.field("os", pa.string(), nullable=False),
    ]
)
ACTIONS = ("view", "like")
VIEW, LIKE = 0, 1

# -- volumes (per user: totals follow the population, hence the scale knob) ----------
FEED_PROPENSITY_MIN, FEED_PROPENSITY_SPAN = 0.02, 0.6  # min + span * u**2: mean 0.22
VIEWS_MEDIAN, VIEWS_SIGMA, MAX_VIEWS = 45.0, 1.0, 3_000  # log-normal views per active user
LIKE_RATE_MIN, LIKE_RATE_SPAN = 0.08, 0.12  # min + span * (u1 + u2): 0.08..0.32, mean 0.2
LIKE_DELAY_SECONDS = (1, 120)  # a like follows its view by this much
MESSENGER_USER_SHARE = 0.4  # of users ever use the messenger
SEND_PROBABILITY_MIN, SEND_PROBABILITY_SPAN = 0.1, 0.4  # per messenger user and day
MESSAGES_MEDIAN, MESSAGES_SIGMA, MAX_MESSAGES = 11.0, 0.9, 500  # log-normal per sender
EXTRA_CONTACTS_MEAN = 1.5  # a sender writes to 1 + Poisson(this) users (at most one a message)
RECEIVER_ACTIVE_SHARE = 0.8  # of contacts are users active that day
POSTS_PER_USER_DAY = 0.06  # new posts a day per user (300 at scale 1.0)
POST_HISTORY_DAYS = 30  # posts older than this are not viewed any more
POST_AGE_MEAN_DAYS = 1.2  # exponential age (in days) of a viewed post
POST_POPULARITY_POWER = 3.0  # rank = posts * u**power: low ranks are the popular posts
# Day level: weekday (Monday first) times a small random factor per day.
WEEKDAY_LEVEL = (1.0, 0.98, 0.98, 1.0, 1.03, 1.08, 1.06)
DAY_LEVEL_JITTER = 0.04

# -- intraday shape -----------------------------------------------------------------
SLICE_SECONDS = 15 * 60
SLICES = 86_400 // SLICE_SECONDS  # 96
# Relative activity per UTC hour (the value at the hour's centre). Most users live
# at UTC+2..+7: the night trough is around 03:00-05:00 UTC, the peak in the evening.
INTRADAY_HOURLY = (
    0.45,  # 00
    0.32,  # 01
    0.22,  # 02
    0.16,  # 03
    0.15,  # 04
    0.20,  # 05
    0.32,  # 06
    0.46,  # 07
    0.58,  # 08
    0.66,  # 09
    0.71,  # 10
    0.74,  # 11
    0.77,  # 12
    0.79,  # 13
    0.82,  # 14
    0.87,  # 15
    0.93,  # 16
    1.00,  # 17
    1.05,  # 18
    1.06,  # 19
    0.98,  # 20
    0.85,  # 21
    0.70,  # 22
    0.56,  # 23
)
SLICE_NOISE_SIGMA = 0.05  # log-normal noise on each slice's weight, per table and day

# -- incidents ----------------------------------------------------------------------
LIKES_DROP = "likes_drop"
MESSAGES_SPIKE = "messages_spike"
OS_OUTAGE = "os_outage"
KINDS = (LIKES_DROP, MESSAGES_SPIKE, OS_OUTAGE)
INCIDENT_DAY_SHARE = 1 / 3  # of days carry one incident (incidents_for)
FILTER_KEYS = ("gender", "age", "country", "city", "os", "source", "exp_group")


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _np_rng(*parts: object) -> np.random.Generator:
    """A numpy generator seeded by a stable hash of ``parts`` (as ``rng_for``)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


@dataclass(frozen=True)
class Incident:
    """Something going wrong in the app for a while, injected into a day's events.

    - ``likes_drop`` (``feed_actions``): each like in the window is kept with
      probability ``factor`` (0.3 keeps about 30%);
    - ``messages_spike`` (``message_actions``): the window holds ``factor``
      times its messages; the extra ones re-send from the window's senders to
      random users, at random times in the window;
    - ``os_outage`` (``feed_actions``, ``message_actions`` or ``all``): rows
      in the window are kept with probability ``factor`` (0: none), for the
      users matching ``filter`` (which names an ``os``).

    ``filter`` narrows any kind to users with these attributes (values as
    text, e.g. ``{"os": "iOS", "age": "25"}``). The window is ``[start, start +
    minutes)``, in UTC; it must lie within the day it is applied to.
    """

    kind: str
    table: str
    start: dt.datetime
    minutes: int
    factor: float
    filter: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        start = self.start
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.UTC)
        object.__setattr__(self, "start", start.astimezone(dt.UTC))
        object.__setattr__(self, "filter", {k: str(v) for k, v in self.filter.items()})
        tables = {
            LIKES_DROP: (FEED_TABLE,),
            MESSAGES_SPIKE: (MESSAGE_TABLE,),
            OS_OUTAGE: (FEED_TABLE, MESSAGE_TABLE, ALL_TABLES),
        }
        if self.kind not in tables:
            raise ValueError(f"unknown incident kind {self.kind!r} (one of {KINDS})")
        if self.table not in tables[self.kind]:
            raise ValueError(f"a {self.kind} applies to {tables[self.kind]}, not {self.table!r}")
        if self.minutes <= 0 or self.minutes > 24 * 60:
            raise ValueError(f"incident minutes must be in 1..1440, got {self.minutes}")
        if self.kind == MESSAGES_SPIKE and not self.factor >= 1:
            raise ValueError(f"a messages_spike needs a factor >= 1, got {self.factor}")
        if self.kind != MESSAGES_SPIKE and not 0 <= self.factor <= 1:
            raise ValueError(f"a {self.kind} needs a factor in [0, 1], got {self.factor}")
        if self.kind == OS_OUTAGE and "os" not in self.filter:
            raise ValueError("an os_outage needs filter={'os': ...}")
        for key, value in self.filter.items():
            _user_codes(key, value)  # raises on an unknown attribute or value

    @classmethod
    def likes_drop(
        cls, start: dt.datetime, factor: float = 0.3, minutes: int = 15, **filter: str
    ) -> Incident:
        return cls(LIKES_DROP, FEED_TABLE, start, minutes, factor, filter)

    @classmethod
    def messages_spike(
        cls, start: dt.datetime, factor: float = 4.0, minutes: int = 15, **filter: str
    ) -> Incident:
        return cls(MESSAGES_SPIKE, MESSAGE_TABLE, start, minutes, factor, filter)

    @classmethod
    def os_outage(
        cls, start: dt.datetime, os: str = "iOS", minutes: int = 60, table: str = ALL_TABLES
    ) -> Incident:
        return cls(OS_OUTAGE, table, start, minutes, 0.0, {"os": os})

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(minutes=self.minutes)

    def applies_to(self, table: str) -> bool:
        return self.table in (table, ALL_TABLES)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready record (start as ISO 8601 UTC), e.g. for a table of incidents."""
        return {
            "kind": self.kind,
            "table": self.table,
            "start": self.start.isoformat(),
            "minutes": self.minutes,
            "factor": self.factor,
            "filter": dict(self.filter),
        }

    def window(self, day: dt.date) -> tuple[int, int]:
        """The window in seconds since the day's midnight; it must lie within the day."""
        begin = int((self.start - midnight(day)).total_seconds())
        end = begin + self.minutes * 60
        if begin < 0 or end > 86_400:
            raise ValueError(f"incident {self.kind} at {self.start} is not within {day}")
        return begin, end


class DayEvents(NamedTuple):
    feed: pa.Table
    messages: pa.Table
    incidents: tuple[Incident, ...]


def incidents_for(population: Population, day: dt.date) -> tuple[Incident, ...]:
    """The incidents the simulated app has on ``day``: a pure function of (seed, day).

    About one day in three (``INCIDENT_DAY_SHARE``) has one, at a busy time
    (10:00-22:00 UTC) so that it stands out against its neighbours:
    a likes drop to 20-40% for 15 minutes, a messages spike of 3-5x for 15
    minutes, or an hour without events from Android or iOS (both tables).
    """
    rng = rng_for(population.seed, "feed-incidents", day)
    if rng.random() >= INCIDENT_DAY_SHARE:
        return ()
    kind = rng.choice(KINDS)
    if kind == OS_OUTAGE:
        start = midnight(day) + dt.timedelta(hours=rng.randrange(10, 21))
        return (Incident.os_outage(start, os=rng.choice(OPERATING_SYSTEMS)),)
    start = midnight(day) + dt.timedelta(seconds=SLICE_SECONDS * rng.randrange(40, 88))
    if kind == LIKES_DROP:
        return (Incident.likes_drop(start, factor=round(rng.uniform(0.2, 0.4), 2)),)
    return (Incident.messages_spike(start, factor=round(rng.uniform(3.0, 5.0), 1)),)


# -- the day's users ----------------------------------------------------------------
def _user_codes(key: str, value: str) -> tuple[str, int]:
    """(profile column, code) of a filter ``key=value``; ValueError if either is unknown."""
    vocab: dict[str, Sequence[str]] = {
        "gender": GENDERS,
        "country": COUNTRIES,
        "city": tuple(city for _, city, _ in CITIES),
        "os": OPERATING_SYSTEMS,
        "source": SOURCES,
        "age": tuple(str(a) for a in range(AGE_MIN, AGE_MAX + 1)),
        "exp_group": tuple(str(g) for g in range(EXP_GROUPS)),
    }
    if key not in vocab:
        raise ValueError(f"unknown incident filter {key!r} (one of {FILTER_KEYS})")
    if value not in vocab[key]:
        raise ValueError(f"unknown {key} {value!r} in an incident filter")
    if key in ("age", "exp_group"):
        return key, int(value)
    return key, vocab[key].index(value)


class _Users:
    """The users who may act on a day: ids 1..n, their profiles and behaviour traits."""

    def __init__(self, population: Population, day: dt.date):
        if day < population.start_date:
            raise ValueError(f"day {day} is before the simulation start {population.start_date}")
        index = (day - population.start_date).days
        # Contiguous: the initial users, then every earlier day's new users.
        self.n = population.n_users + index * population.new_users_per_day
        self.ids = np.arange(1, self.n + 1, dtype=np.int64)
        self.profiles = population.profiles(self.ids)
        seed = population.seed
        self.feed_propensity = (
            FEED_PROPENSITY_MIN
            + FEED_PROPENSITY_SPAN * user_uniform(seed, "feed-propensity", self.ids) ** 2
        )
        self.like_rate = LIKE_RATE_MIN + LIKE_RATE_SPAN * (
            user_uniform(seed, "like-rate-1", self.ids)
            + user_uniform(seed, "like-rate-2", self.ids)
        )
        messenger = user_uniform(seed, "messenger-user", self.ids) < MESSENGER_USER_SHARE
        self.send_probability = np.where(
            messenger,
            SEND_PROBABILITY_MIN
            + SEND_PROBABILITY_SPAN * user_uniform(seed, "send-probability", self.ids),
            0.0,
        )

    def matching(self, filter: Mapping[str, str]) -> np.ndarray:
        """A boolean per user: the user has every attribute of ``filter``."""
        mask = np.ones(self.n, dtype=bool)
        for key, value in filter.items():
            column, code = _user_codes(key, value)
            mask &= getattr(self.profiles, column) == code
        return mask


def _day_level(population: Population, day: dt.date) -> float:
    jitter = rng_for(population.seed, "feed-day-level", day).uniform(-1, 1) * DAY_LEVEL_JITTER
    return WEEKDAY_LEVEL[day.weekday()] * (1 + jitter)


def _feed_active(population: Population, day: dt.date, users: _Users) -> np.ndarray:
    """Indexes (into ``users``) of the users active on the feed on ``day``."""
    rng = _np_rng(population.seed, "feed-active", day)
    level = _day_level(population, day)
    return np.flatnonzero(rng.random(users.n) < users.feed_propensity * level)


def _senders(population: Population, day: dt.date, users: _Users) -> np.ndarray:
    rng = _np_rng(population.seed, "senders", day)
    level = _day_level(population, day)
    return np.flatnonzero(rng.random(users.n) < users.send_probability * level)


def intraday_weights() -> np.ndarray:
    """The clean day's relative weight of each 15-minute slice (96 values, mean 1)."""
    centres = (np.arange(SLICES) + 0.5) * SLICE_SECONDS / 3600
    weights = np.interp(centres, np.arange(24) + 0.5, INTRADAY_HOURLY, period=24)
    return weights / weights.mean()


def _times(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` seconds since midnight, following the intraday curve with this day's noise."""
    weights = intraday_weights() * rng.lognormal(0.0, SLICE_NOISE_SIGMA, SLICES)
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    slices = np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), SLICES - 1)
    return slices * SLICE_SECONDS + rng.integers(0, SLICE_SECONDS, size)


def _lognormal_counts(
    rng: np.random.Generator, median: float, sigma: float, cap: int, size: int
) -> np.ndarray:
    draws = np.ceil(rng.lognormal(math.log(median), sigma, size))
    return np.clip(draws, 1, cap).astype(np.int64)


def _posts_per_day(population: Population) -> int:
    return max(20, round(POSTS_PER_USER_DAY * population.n_users))


def _first_post_id(population: Population, day_index: int) -> int:
    """Post ids are contiguous per day, from ``POST_HISTORY_DAYS`` before the start date."""
    return (day_index + POST_HISTORY_DAYS) * _posts_per_day(population) + 1


def _check_incidents(
    population: Population, day: dt.date, incidents: Sequence[Incident] | None
) -> tuple[Incident, ...]:
    chosen = incidents_for(population, day) if incidents is None else tuple(incidents)
    for incident in chosen:
        if not isinstance(incident, Incident):
            raise TypeError(f"expected an Incident, got {incident!r}")
        incident.window(day)  # raises if outside the day
    return chosen


# -- the two tables -----------------------------------------------------------------
_ACTIONS = pa.array(ACTIONS)
_GENDERS = pa.array(GENDERS)
_COUNTRIES = pa.array(COUNTRIES)
_CITIES = pa.array([city for _, city, _ in CITIES])
_OSES = pa.array(OPERATING_SYSTEMS)
_SOURCES = pa.array(SOURCES)


def _attributes(users: _Users, rows: np.ndarray) -> dict[str, pa.Array]:
    """The acting users' profile columns for rows acted by user indexes ``rows``."""
    p = users.profiles
    return {
        "gender": _GENDERS.take(p.gender[rows]),
        "age": pa.array(p.age[rows], type=pa.int16()),
        "country": _COUNTRIES.take(p.country[rows]),
        "city": _CITIES.take(p.city[rows]),
        "os": _OSES.take(p.os[rows]),
        "source": _SOURCES.take(p.source[rows]),
        "exp_group": pa.array(p.exp_group[rows], type=pa.int16()),
    }


def _time_column(day: dt.date, seconds: np.ndarray) -> pa.Array:
    epoch = int(midnight(day).timestamp())
    return pa.array(seconds.astype(np.int64) + epoch, type=_TIME)


def _feed(
    population: Population, day: dt.date, users: _Users, incidents: Sequence[Incident]
) -> pa.Table:
    rng = _np_rng(population.seed, "feed", day)
    active = _feed_active(population, day, users)
    views = _lognormal_counts(rng, VIEWS_MEDIAN, VIEWS_SIGMA, MAX_VIEWS, active.size)
    user = np.repeat(active, views)
    n_views = user.size
    seconds = _times(rng, n_views)
    age = np.minimum(np.floor(rng.exponential(POST_AGE_MEAN_DAYS, n_views)), POST_HISTORY_DAYS)
    per_day = _posts_per_day(population)
    rank = np.floor(per_day * rng.random(n_views) ** POST_POPULARITY_POWER)
    index = (day - population.start_date).days
    post = _first_post_id(population, index) - age.astype(np.int64) * per_day + rank
    liked = rng.random(n_views) < users.like_rate[user]
    delay = rng.integers(*LIKE_DELAY_SECONDS, size=int(liked.sum()), endpoint=True)
    user = np.concatenate([user, user[liked]])
    post = np.concatenate([post, post[liked]]).astype(np.int64)
    action = np.concatenate([np.full(n_views, VIEW, np.int8), np.full(delay.size, LIKE, np.int8)])
    seconds = np.concatenate([seconds, np.minimum(seconds[liked] + delay, 86_399)])

    keep = np.ones(user.size, dtype=bool)
    for number, incident in enumerate(incidents):
        if not incident.applies_to(FEED_TABLE):
            continue
        begin, end = incident.window(day)
        hit = (seconds >= begin) & (seconds < end) & users.matching(incident.filter)[user]
        if incident.kind == LIKES_DROP:
            hit &= action == LIKE
        hit_rows = np.flatnonzero(hit & keep)
        draw = _np_rng(population.seed, "feed-incident", day, number).random(hit_rows.size)
        keep[hit_rows[draw >= incident.factor]] = False
    user, post, action, seconds = user[keep], post[keep], action[keep], seconds[keep]

    order = _by_time(seconds, user)
    user, post, action, seconds = user[order], post[order], action[order], seconds[order]
    columns = {
        "user_id": pa.array(users.ids[user], type=pa.int32()),
        "post_id": pa.array(post, type=pa.int32()),
        "action": _ACTIONS.take(action),
        "time": _time_column(day, seconds),
        **_attributes(users, user),
    }
    return pa.table([columns[f.name] for f in FEED_SCHEMA], schema=FEED_SCHEMA)


def _messages(
    population: Population, day: dt.date, users: _Users, incidents: Sequence[Incident]
) -> pa.Table:
    rng = _np_rng(population.seed, "messages", day)
    senders = _senders(population, day, users)
    active = np.union1d(_feed_active(population, day, users), senders)
    sent = _lognormal_counts(rng, MESSAGES_MEDIAN, MESSAGES_SIGMA, MAX_MESSAGES, senders.size)
    # Each sender's contacts, one block per sender in ``contacts``.
    n_contacts = np.minimum(1 + rng.poisson(EXTRA_CONTACTS_MEAN, senders.size), sent)
    owner = np.repeat(np.arange(senders.size), n_contacts)
    from_active = rng.random(owner.size) < RECEIVER_ACTIVE_SHARE
    contacts = np.where(
        from_active,
        active[rng.integers(0, max(1, active.size), owner.size)],
        rng.integers(0, users.n, owner.size),
    )
    contacts = _not_self(contacts, senders[owner], users.n)
    first_contact = np.concatenate([[0], np.cumsum(n_contacts)[:-1]]).astype(np.int64)
    by_sender = np.repeat(np.arange(senders.size), sent)
    user = senders[by_sender]
    pick = np.floor(rng.random(by_sender.size) * n_contacts[by_sender]).astype(np.int64)
    receiver = contacts[first_contact[by_sender] + pick]
    seconds = _times(rng, user.size)

    for number, incident in enumerate(incidents):
        if not incident.applies_to(MESSAGE_TABLE):
            continue
        begin, end = incident.window(day)
        hit = (seconds >= begin) & (seconds < end) & users.matching(incident.filter)[user]
        hit_rows = np.flatnonzero(hit)
        inc_rng = _np_rng(population.seed, "message-incident", day, number)
        if incident.kind == MESSAGES_SPIKE:
            extra = round(hit_rows.size * (incident.factor - 1))
            if hit_rows.size == 0 or extra == 0:
                continue
            source = hit_rows[inc_rng.integers(0, hit_rows.size, extra)]
            new_user = user[source]
            new_receiver = _not_self(inc_rng.integers(0, users.n, extra), new_user, users.n)
            user = np.concatenate([user, new_user])
            receiver = np.concatenate([receiver, new_receiver])
            seconds = np.concatenate([seconds, inc_rng.integers(begin, end, extra)])
        else:
            drop = hit_rows[inc_rng.random(hit_rows.size) >= incident.factor]
            keep = np.ones(user.size, dtype=bool)
            keep[drop] = False
            user, receiver, seconds = user[keep], receiver[keep], seconds[keep]

    order = _by_time(seconds, user)
    user, receiver, seconds = user[order], receiver[order], seconds[order]
    columns = {
        "user_id": pa.array(users.ids[user], type=pa.int32()),
        "receiver_id": pa.array(users.ids[receiver], type=pa.int32()),
        "time": _time_column(day, seconds),
        **_attributes(users, user),
    }
    return pa.table([columns[f.name] for f in MESSAGE_SCHEMA], schema=MESSAGE_SCHEMA)


def _by_time(seconds: np.ndarray, user: np.ndarray) -> np.ndarray:
    """Row order by (time, user index), ties in generation order (one stable sort, not lexsort)."""
    return np.argsort((seconds.astype(np.int64) << 32) | user.astype(np.int64), kind="stable")


def _not_self(receivers: np.ndarray, senders: np.ndarray, n: int) -> np.ndarray:
    """Receivers with anyone who drew themselves moved to the next user (indexes mod n)."""
    return np.where(receivers == senders, (receivers + 1) % n, receivers)


# -- public API ---------------------------------------------------------------------
def feed_actions(
    population: Population, day: dt.date, incidents: Sequence[Incident] | None = None
) -> pa.Table:
    """The day's ``feed_actions`` rows (``FEED_SCHEMA``), ordered by time.

    ``incidents``: None applies ``incidents_for(population, day)``; pass a list
    (``()`` for a clean day) to choose. Only incidents for this table apply.
    """
    chosen = _check_incidents(population, day, incidents)
    return _feed(population, day, _Users(population, day), chosen)


def message_actions(
    population: Population, day: dt.date, incidents: Sequence[Incident] | None = None
) -> pa.Table:
    """The day's ``message_actions`` rows (``MESSAGE_SCHEMA``), ordered by time."""
    chosen = _check_incidents(population, day, incidents)
    return _messages(population, day, _Users(population, day), chosen)


def day_events(
    population: Population, day: dt.date, incidents: Sequence[Incident] | None = None
) -> DayEvents:
    """Both tables of ``day`` and the incidents applied to them (empty on a clean day).

    The same tables as ``feed_actions`` and ``message_actions`` with the same
    ``incidents``, computed once.
    """
    chosen = _check_incidents(population, day, incidents)
    users = _Users(population, day)
    return DayEvents(
        _feed(population, day, users, chosen), _messages(population, day, users, chosen), chosen
    )
