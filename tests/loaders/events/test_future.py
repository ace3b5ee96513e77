"""A clock running ahead never becomes a day: events stamped after the loader's horizon
(its clock plus LOADER_FUTURE_TOLERANCE_SECONDS) are held back, a future day is refused,
and a watermark a clock once moved to 2100 comes back."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from config import WarehouseSettings
from datagen.events_writer import write_day
from loaders.__main__ import main
from loaders.core.warehouse import LoaderError
from loaders.events.job import horizon, load_table_day
from pipelines.day import days_to_land
from tests.loaders.events.helpers import day, pop, raw_rows, scalar, watermark

FAR_FUTURE = dt.datetime(2100, 1, 1, 12, 0)
LONG_AGO = dt.datetime(1970, 1, 1, 0, 0, 1)


def stamped(ch, *times: dt.datetime) -> None:
    """One feed_actions row at each of ``times``, beside the simulator's."""
    row = ch.query("SELECT * FROM feed_actions LIMIT 1").result_rows[0]
    names = ch.query("SELECT * FROM feed_actions LIMIT 1").column_names
    at = names.index("time")
    ch.insert(
        "feed_actions",
        [[t.replace(tzinfo=dt.UTC) if i == at else v for i, v in enumerate(row)] for t in times],
        column_names=names,
    )


def test_a_row_in_2100_is_held_back_and_the_day_that_ended_lands(ch, warehouse, capsys) -> None:
    population = pop()
    for n in range(2):
        write_day(ch, population, day(n), incidents=())
    stamped(ch, FAR_FUTURE, LONG_AGO)
    assert main(["events"]) == 0
    out = capsys.readouterr()
    assert [line.split()[:2] for line in out.out.splitlines()] == [
        ["events.feed_actions", str(day(1))],
        ["events.message_actions", str(day(1))],
    ]
    assert "feed_actions: 1 event(s) stamped after" in out.err and "held back" in out.err
    assert watermark(warehouse, "feed_actions") == {"increment_date": str(day(1))}
    landed_days = {r[0] for r in raw_days(warehouse)}
    # Neither the 2100 row nor the 1970 one landed: 1970 is a day no load asked for, left to
    # the reconciliation of what the source holds and the warehouse does not.
    assert landed_days == {day(0), day(1)}

    # Asked for by date, the future day is refused in one line, and nothing moves.
    assert main(["events", "--date", "2100-01-01"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2100-01-01 are not landed: that day has not begun" in err
    assert watermark(warehouse, "feed_actions") == {"increment_date": str(day(1))}


def raw_days(warehouse: str) -> list[tuple]:
    with psycopg.connect(warehouse) as conn:
        return conn.execute("select distinct _event_date from raw_events.feed_actions").fetchall()


def test_a_day_after_the_horizon_is_refused_by_every_entry_point(ch, warehouse) -> None:
    tomorrow = horizon().date() + dt.timedelta(days=1)
    with pytest.raises(LoaderError, match="has not begun"):
        load_table_day("feed_actions", tomorrow)
    # Refused before any work: not even the loader's tables were created.
    assert scalar(warehouse, "select to_regclass('loader.batches') is null") is True


def test_a_watermark_a_clock_moved_to_2100_comes_back(ch, warehouse) -> None:
    population = pop()
    write_day(ch, population, day(0), incidents=())
    load_table_day("feed_actions", day(0))
    # What a release before the horizon left: the watermark at a day in 2100.
    with psycopg.connect(warehouse) as conn:
        conn.execute(
            'update loader.watermarks set value = \'{"increment_date": "2100-01-01"}\''
            " where source = 'events'"
        )
    # The daily pipelines still land the next days (the future watermark is not believed)...
    wh = WarehouseSettings.from_env()
    assert days_to_land(wh, "events", [day(0), day(1)]) == [day(0), day(1)]
    write_day(ch, population, day(1), incidents=())
    load_table_day("feed_actions", day(1))
    # ... and the load puts the watermark back on the day it landed.
    assert watermark(warehouse, "feed_actions") == {"increment_date": str(day(1))}
    assert raw_rows(warehouse, "feed_actions", day(1))
