"""The feed and messenger event generator: pure generation, no database."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from datagen.feed_events import (
    FEED_SCHEMA,
    KINDS,
    LIKES_DROP,
    MESSAGE_SCHEMA,
    MESSAGES_SPIKE,
    OS_OUTAGE,
    Incident,
    day_events,
    feed_actions,
    incidents_for,
    message_actions,
    midnight,
)
from datagen.population import Population
from datagen.profiles import AGE_MAX, AGE_MIN, EXP_GROUPS

START = dt.date(2026, 10, 1)
ATTRIBUTES = ("gender", "age", "country", "city", "os", "source", "exp_group")
# Documented volumes at scale 1.0 (5,000 users): per day.
FEED_ROWS = (80_000, 130_000)
MESSAGE_ROWS = (7_000, 14_000)


def pop(scale: float = 1.0, seed: int = 42) -> Population:
    return Population(seed=seed, scale=scale, start_date=START)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


def at(n: int, hh: int, mm: int = 0) -> dt.datetime:
    return midnight(day(n)) + dt.timedelta(hours=hh, minutes=mm)


def seconds_of_day(table: pa.Table) -> np.ndarray:
    return pc.cast(table["time"], pa.int64()).to_numpy() % 86_400


def slices(table: pa.Table, mask: np.ndarray | None = None) -> np.ndarray:
    """Rows per 15-minute slice (96 counts)."""
    seconds = seconds_of_day(table)
    if mask is not None:
        seconds = seconds[mask]
    return np.bincount(seconds // 900, minlength=96)


def column(table: pa.Table, name: str) -> np.ndarray:
    return table[name].to_numpy(zero_copy_only=False)


@pytest.fixture(scope="module")
def clean() -> tuple[pa.Table, pa.Table]:
    events = day_events(pop(), day(3), incidents=())
    return events.feed, events.messages


def test_volumes_at_scale_one(clean: tuple[pa.Table, pa.Table]) -> None:
    feed, messages = clean
    users = pop().n_users + 3 * pop().new_users_per_day
    assert FEED_ROWS[0] <= feed.num_rows <= FEED_ROWS[1]
    assert MESSAGE_ROWS[0] <= messages.num_rows <= MESSAGE_ROWS[1]
    feed_dau = len(pc.unique(feed["user_id"]))
    assert 0.15 * users <= feed_dau <= 0.3 * users
    senders = len(pc.unique(messages["user_id"]))
    assert 0.07 * users <= senders <= 0.2 * users
    # Heavy-tailed views per active user.
    views = feed.filter(pc.equal(feed["action"], "view"))
    per_user = views.group_by("user_id").aggregate([("user_id", "count")])
    counts = column(per_user, "user_id_count")
    assert counts.max() > 10 * np.median(counts)
    assert counts.mean() > 1.3 * np.median(counts)


def test_volumes_follow_the_scale() -> None:
    small = day_events(pop(0.1), day(0), incidents=())
    large = day_events(pop(1.0), day(0), incidents=())
    assert 5 < large.feed.num_rows / small.feed.num_rows < 20
    assert 5 < large.messages.num_rows / small.messages.num_rows < 20


def test_schemas_and_times_within_the_day(clean: tuple[pa.Table, pa.Table]) -> None:
    feed, messages = clean
    assert feed.schema == FEED_SCHEMA
    assert messages.schema == MESSAGE_SCHEMA
    assert feed.column_names == [
        "user_id",
        "post_id",
        "action",
        "time",
        "gender",
        "age",
        "country",
        "city",
        "os",
        "source",
        "exp_group",
    ]
    assert messages.column_names == [
        "user_id",
        "receiver_id",
        "time",
        "source",
        "exp_group",
        "gender",
        "age",
        "country",
        "city",
        "os",
    ]
    for table in clean:
        assert all(table[name].null_count == 0 for name in table.column_names)
        assert pc.min(table["time"]).as_py() >= midnight(day(3))
        assert pc.max(table["time"]).as_py() < midnight(day(4))
        times = pc.cast(table["time"], pa.int64()).to_numpy()
        assert np.all(np.diff(times) >= 0), "rows are ordered by time"
    assert set(pc.unique(feed["action"]).to_pylist()) == {"view", "like"}
    assert pc.min(feed["post_id"]).as_py() >= 1


def test_each_user_has_one_profile_across_tables_and_days() -> None:
    population = pop()
    seen: dict[int, tuple] = {}
    for n in (0, 1, 5):
        events = day_events(population, day(n), incidents=())
        for table in (events.feed, events.messages):
            distinct = (
                table.select(["user_id", *ATTRIBUTES])
                .group_by(["user_id", *ATTRIBUTES])
                .aggregate([])
            )
            assert len(pc.unique(distinct["user_id"])) == distinct.num_rows
            for row in distinct.to_pylist():
                attributes = tuple(row[a] for a in ATTRIBUTES)
                assert seen.setdefault(row["user_id"], attributes) == attributes
    assert len(seen) > 1_500
    # ... and they are the population's profile, which does not depend on the scale.
    for user_id in list(seen)[:200]:
        profile = population.profile(user_id)
        assert tuple(getattr(profile, a) for a in ATTRIBUTES) == seen[user_id]
        assert pop(scale=10.0).profile(user_id) == profile
    other_seed = pop(seed=43)
    assert sum(other_seed.profile(u) != population.profile(u) for u in range(1, 21)) >= 15


def test_profiles_are_plausible() -> None:
    p = pop(10.0).profiles(np.arange(1, 50_001))
    assert p.age.min() >= AGE_MIN and p.age.max() <= AGE_MAX
    assert 22 <= np.median(p.age) <= 35
    assert 0.4 < np.mean(p.gender == 0) < 0.7
    assert 0.5 < np.mean(p.os == 0) < 0.75  # Android is the larger share
    groups = np.bincount(p.exp_group, minlength=EXP_GROUPS)
    assert len(groups) == EXP_GROUPS and groups.min() > 0.18 * 50_000
    assert len(np.unique(p.country)) >= 5 and len(np.unique(p.city)) >= 15


def test_only_users_registered_before_the_day_act() -> None:
    population = pop()
    for n in (0, 4):
        events = day_events(population, day(n), incidents=())
        last = population.n_users + n * population.new_users_per_day
        for table, name in ((events.feed, "user_id"), (events.messages, "receiver_id")):
            assert pc.max(table[name]).as_py() <= last
    with pytest.raises(ValueError, match="before the simulation start"):
        day_events(population, START - dt.timedelta(days=1))


def test_intraday_shape(clean: tuple[pa.Table, pa.Table]) -> None:
    for table in clean:
        hour = seconds_of_day(table) // 3600
        night = np.sum((hour >= 3) & (hour < 5)) / 2  # per hour
        evening = np.sum((hour >= 18) & (hour < 21)) / 3
        assert night < 0.35 * evening
    # Noise: the same clean slice differs from day to day, beyond a fixed curve.
    other = day_events(pop(), day(4), incidents=())
    ratio = slices(other.feed)[40:88] / slices(clean[0])[40:88]
    assert np.std(ratio) > 0.02


def test_like_rate(clean: tuple[pa.Table, pa.Table]) -> None:
    feed = clean[0]
    likes = pc.sum(pc.equal(feed["action"], "like")).as_py()
    views = feed.num_rows - likes
    assert 0.17 <= likes / views <= 0.23
    # Every like is of a post the user viewed, at or after the view.
    keys = ["user_id", "post_id"]
    viewed = (
        feed.filter(pc.equal(feed["action"], "view")).group_by(keys).aggregate([("time", "min")])
    )
    liked = (
        feed.filter(pc.equal(feed["action"], "like")).group_by(keys).aggregate([("time", "min")])
    )
    joined = liked.join(viewed, keys, join_type="left outer", right_suffix="_view")
    assert joined["time_min_view"].null_count == 0
    assert pc.all(pc.greater_equal(joined["time_min"], joined["time_min_view"])).as_py()


def test_messages_go_to_other_users_mostly_active(clean: tuple[pa.Table, pa.Table]) -> None:
    feed, messages = clean
    sender, receiver = column(messages, "user_id"), column(messages, "receiver_id")
    assert not np.any(sender == receiver)
    active = np.union1d(column(feed, "user_id"), sender)
    assert 0.7 <= np.isin(receiver, active).mean() <= 0.95
    # Senders write to a few contacts, not to a new user with every message.
    pairs = len(
        messages.select(["user_id", "receiver_id"])
        .group_by(["user_id", "receiver_id"])
        .aggregate([])
    )
    assert pairs < 0.5 * messages.num_rows


def test_determinism(clean: tuple[pa.Table, pa.Table]) -> None:
    again = day_events(Population(42, 1.0, START), day(3), incidents=())
    assert again.feed.equals(clean[0]) and again.messages.equals(clean[1])
    assert feed_actions(pop(), day(3), incidents=()).equals(clean[0])
    assert message_actions(pop(), day(3), incidents=()).equals(clean[1])
    other_seed = day_events(pop(seed=7), day(3), incidents=())
    assert not other_seed.feed.equals(clean[0])
    assert not day_events(pop(), day(2), incidents=()).feed.equals(clean[0])
    # With the seed's own incidents too.
    first, second = day_events(pop(), day(1)), day_events(pop(), day(1))
    assert first.incidents == second.incidents
    assert first.feed.equals(second.feed) and first.messages.equals(second.messages)


def test_incidents_for_the_seed() -> None:
    population = pop()
    days = [day(n) for n in range(90)]
    chosen = {d: incidents_for(population, d) for d in days}
    assert chosen == {d: incidents_for(pop(scale=3.0), d) for d in days}, "seed and day only"
    with_incident = [d for d in days if chosen[d]]
    assert 0.2 * len(days) <= len(with_incident) <= 0.5 * len(days)
    assert all(len(chosen[d]) == 1 for d in with_incident)
    assert {chosen[d][0].kind for d in with_incident} == set(KINDS)
    for d in with_incident:
        incident = chosen[d][0]
        assert midnight(d) <= incident.start and incident.end <= midnight(d + dt.timedelta(1))
        assert incident.start.minute % 15 == 0 and incident.start.second == 0
    # A clean day records none, and its tables are those of incidents=().
    clean_day = next(d for d in days if not chosen[d])
    events = day_events(population, clean_day)
    assert events.incidents == ()
    explicit = day_events(population, clean_day, incidents=())
    assert events.feed.equals(explicit.feed) and events.messages.equals(explicit.messages)
    # An incident day records what it applied.
    incident_day = with_incident[0]
    assert day_events(population, incident_day).incidents == chosen[incident_day]


def outside(table: pa.Table, begin: int, end: int) -> pa.Table:
    seconds = seconds_of_day(table)
    return table.filter(pa.array((seconds < begin) | (seconds >= end)))


def test_likes_drop(clean: tuple[pa.Table, pa.Table]) -> None:
    incident = Incident.likes_drop(at(3, 12, 15), factor=0.3)
    events = day_events(pop(), day(3), incidents=[incident])
    assert events.incidents == (incident,)
    assert incident.as_dict()["start"] == "2026-10-04T12:15:00+00:00"
    feed, clean_feed = events.feed, clean[0]
    is_like = column(feed, "action") == "like"
    clean_like = column(clean_feed, "action") == "like"
    s = 12 * 4 + 1
    likes, clean_likes = slices(feed, is_like), slices(clean_feed, clean_like)
    assert 0.2 <= likes[s] / clean_likes[s] <= 0.4
    # It stands out against its neighbours, and views did not change.
    assert likes[s] < 0.5 * np.median(likes[s - 5 : s])
    assert np.array_equal(slices(feed, ~is_like), slices(clean_feed, ~clean_like))
    # Nothing outside the window changed, nor the messages.
    assert outside(feed, s * 900, (s + 1) * 900).equals(outside(clean_feed, s * 900, (s + 1) * 900))
    assert events.messages.equals(clean[1])


def test_likes_drop_with_a_filter(clean: tuple[pa.Table, pa.Table]) -> None:
    incident = Incident.likes_drop(at(3, 18), factor=0.0, os="Android")
    feed = feed_actions(pop(), day(3), incidents=[incident])
    window = (seconds_of_day(feed) >= 18 * 3600) & (seconds_of_day(feed) < 18 * 3600 + 900)
    rows = feed.filter(pa.array(window))
    likes = rows.filter(pc.equal(rows["action"], "like"))
    assert set(pc.unique(likes["os"]).to_pylist()) == {"iOS"}
    assert pc.sum(pc.equal(rows["os"], "Android")).as_py() > 100  # Android views stay


def test_messages_spike(clean: tuple[pa.Table, pa.Table]) -> None:
    incident = Incident.messages_spike(at(3, 19, 30), factor=4.0)
    events = day_events(pop(), day(3), incidents=[incident])
    messages, clean_messages = events.messages, clean[1]
    s = 19 * 4 + 2
    counts, clean_counts = slices(messages), slices(clean_messages)
    assert 3.7 <= counts[s] / clean_counts[s] <= 4.3
    assert counts[s] > 2.5 * np.median(counts[s - 5 : s])
    window = messages.filter(pa.array(seconds_of_day(messages) // 900 == s))
    clean_window = clean_messages.filter(pa.array(seconds_of_day(clean_messages) // 900 == s))
    receivers = len(pc.unique(window["receiver_id"]))
    assert receivers > 2 * len(pc.unique(clean_window["receiver_id"]))
    assert not np.any(column(window, "user_id") == column(window, "receiver_id"))
    begin, end = s * 900, (s + 1) * 900
    assert outside(messages, begin, end).equals(outside(clean_messages, begin, end))
    assert events.feed.equals(clean[0])


@pytest.mark.parametrize("os_name", ["iOS", "Android"])
def test_os_outage(clean: tuple[pa.Table, pa.Table], os_name: str) -> None:
    incident = Incident.os_outage(at(3, 14), os=os_name)
    assert (incident.minutes, incident.table, incident.filter) == (60, "all", {"os": os_name})
    events = day_events(pop(), day(3), incidents=[incident])
    begin, end = 14 * 3600, 15 * 3600
    for table, clean_table in zip((events.feed, events.messages), clean, strict=True):
        seconds = seconds_of_day(table)
        in_hour = (seconds >= begin) & (seconds < end)
        assert in_hour.sum() > 0, "the other OS still acts"
        assert os_name not in set(column(table, "os")[in_hour])
        clean_os = column(clean_table, "os")
        clean_seconds = seconds_of_day(clean_table)
        clean_in_hour = (clean_seconds >= begin) & (clean_seconds < end)
        assert np.sum(clean_in_hour & (clean_os == os_name)) > 50
        # The other OS's rows in the hour are unchanged, and so is the rest of the day.
        other = np.sum(clean_in_hour & (clean_os != os_name))
        assert in_hour.sum() == other
        assert outside(table, begin, end).equals(outside(clean_table, begin, end))
    # One table only.
    feed_only = Incident.os_outage(at(3, 14), os=os_name, table="feed_actions")
    only = day_events(pop(), day(3), incidents=[feed_only])
    assert only.messages.equals(clean[1]) and not only.feed.equals(clean[0])


def test_incident_validation() -> None:
    with pytest.raises(ValueError, match="unknown incident kind"):
        Incident("meteor", "feed_actions", at(0, 12), 15, 0.5)
    with pytest.raises(ValueError, match="applies to"):
        Incident(LIKES_DROP, "message_actions", at(0, 12), 15, 0.5)
    with pytest.raises(ValueError, match="factor"):
        Incident.likes_drop(at(0, 12), factor=2.0)
    with pytest.raises(ValueError, match="factor"):
        Incident.messages_spike(at(0, 12), factor=0.5)
    with pytest.raises(ValueError, match="unknown os"):
        Incident.os_outage(at(0, 12), os="Windows")
    with pytest.raises(ValueError, match="needs filter"):
        Incident(OS_OUTAGE, "all", at(0, 12), 60, 0.0)
    with pytest.raises(ValueError, match="unknown incident filter"):
        Incident.likes_drop(at(0, 12), colour="red")
    with pytest.raises(ValueError, match="not within"):
        day_events(pop(0.1), day(0), incidents=[Incident.messages_spike(at(1, 12))])
    with pytest.raises(ValueError, match="not within"):
        feed_actions(pop(0.1), day(0), incidents=[Incident.os_outage(at(0, 23, 30))])
    # A naive start is UTC; filters take any profile attribute, values as text.
    naive = Incident(MESSAGES_SPIKE, "message_actions", dt.datetime(2026, 10, 1, 9), 15, 3.0)
    assert naive.start == at(0, 9)
    assert Incident.likes_drop(at(0, 9), age=25, exp_group=2).filter == {
        "age": "25",
        "exp_group": "2",
    }


def test_timing_scale_one() -> None:
    population = pop()
    day_events(population, day(0), incidents=())  # warm up
    started = time.perf_counter()
    events = day_events(population, day(1))
    elapsed = time.perf_counter() - started
    print(
        f"\nfeed events scale 1.0: {events.feed.num_rows:,} feed actions + "
        f"{events.messages.num_rows:,} messages in {elapsed:.3f} s"
    )
