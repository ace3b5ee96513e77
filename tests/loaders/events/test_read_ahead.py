"""The source read in a thread while COPY writes (``read_ahead``): what the consumer sees is
the source's items in order, then its error; and no reader outlives its consumer."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator

import pytest
import urllib3

from datagen.events_writer import write_day
from loaders.core.copy import read_ahead
from loaders.core.warehouse import LoaderError
from loaders.events.job import load_table_day
from tests.loaders.events.helpers import day, pop


def readers(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_items_in_order_then_the_sources_error() -> None:
    def source() -> Iterator[int]:
        yield from range(100)
        raise ValueError("the server went away")

    seen = []
    with pytest.raises(ValueError, match="the server went away"):
        for item in read_ahead(source(), depth=4, name="test-read-ahead"):
            seen.append(item)
    assert seen == list(range(100))
    assert not readers("test-read-ahead")


def test_a_consumer_that_stops_stops_the_reader_and_closes_the_source() -> None:
    closed = threading.Event()
    closed_in: list[str] = []

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed_in.append(threading.current_thread().name)
            closed.set()

    items = read_ahead(endless(), depth=2, name="test-read-ahead")
    assert [next(items) for _ in range(5)] == [1, 2, 3, 4, 5]
    items.close()  # the reader was blocked on its full queue
    assert closed.wait(5) and closed_in == ["test-read-ahead"]
    deadline = time.monotonic() + 5
    while readers("test-read-ahead") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not readers("test-read-ahead")


def test_a_stream_failing_midway_leaves_no_reader(ch, warehouse, monkeypatch) -> None:
    """The loader's own reader thread, after ClickHouse's stream is cut mid-day."""
    write_day(ch, pop(scale=0.2), day(0), incidents=())
    real = type(ch).raw_stream

    def cut(self, query, *args, **kwargs):
        data = real(self, query, *args, **kwargs).read()
        return urllib3.HTTPResponse(
            body=io.BytesIO(data[: len(data) // 2]), status=200, preload_content=False
        )

    monkeypatch.setattr(type(ch), "raw_stream", cut)
    with pytest.raises(LoaderError, match="failed while reading feed_actions"):
        load_table_day("feed_actions", day(0))
    assert not readers("events-read")
