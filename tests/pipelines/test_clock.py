"""The simulation's clock has its own state: issued days, in the warehouse."""

from __future__ import annotations

import datetime as dt

from datagen.mongo_writer import write_days
from datagen.population import Population
from pipelines import clock

START = dt.date(2026, 10, 1)


def test_the_clock_issues_the_history_then_one_day_at_a_time(warehouse, mongo_db, monkeypatch):
    monkeypatch.setenv("DATAGEN_START_DATE", str(START))
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", "3")
    assert clock.next_days() == [START, START + dt.timedelta(1), START + dt.timedelta(2)]
    clock.record(clock.next_days())
    assert clock.next_days() == [START + dt.timedelta(3)]
    clock.record([START + dt.timedelta(3), START + dt.timedelta(3)])  # twice counts once
    assert clock.written_days()[-1] == START + dt.timedelta(3)
    assert len(clock.written_days()) == 4


def test_a_stack_from_before_adopts_the_app_databases_days_once(warehouse, mongo_db, monkeypatch):
    """The app database recorded the days a stack wrote before the clock had its own
    state: an empty clock takes them over, and from then on is the only record."""
    population = Population(seed=42, scale=0.02, start_date=START)
    list(write_days(mongo_db, population, [START, START + dt.timedelta(1)]))
    assert clock.next_days() == [START + dt.timedelta(2)]
    mongo_db.drop_collection("_datagen_days")  # the app database's record no longer matters
    assert clock.next_days() == [START + dt.timedelta(2)]
