"""Reading the topic: explicit partition assignment, draining to partition EOF, one-line errors.

The loader keeps its own offsets (in the warehouse, with the rows), so the
consumer never joins a group and never commits: it is assigned every partition
at the stored offsets (``assign()``; a new partition starts at the beginning)
and reads until each partition has reported EOF. librdkafka needs a
``group.id`` to start, but without ``subscribe()`` no group is joined.

Two things the embedded tansu broker does differently from Kafka are handled
here, because a real broker can do them too in its own way:

- its ListOffsets answers (``get_watermark_offsets(cached=False)``,
  ``AdminClient.list_offsets``) give wrong high watermarks for partitions > 0,
  while fetch responses are right. So draining waits for partition EOF events,
  never for a ListOffsets target, and lag is computed from the high watermark
  cached from fetch responses (``get_watermark_offsets(cached=True)``).
- a fetch beyond the end of its log answers "no records" instead of
  OFFSET_OUT_OF_RANGE (its memory storage is emptied by a restart, so offsets
  start again at 0). A stored offset above the fetched high watermark is
  treated like Kafka's out-of-range error (which ``auto.offset.reset=error``
  reports instead of silently jumping): the partition is re-read from its
  earliest offset and the load says so.

librdkafka's own log lines go to the ``loaders.kafka.librdkafka`` logger (never
straight to stderr), so a broken connection is one line from the loader, not a
screen of ``%3|...|FAIL|`` lines.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass, field

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from config import advice
from loaders.core.warehouse import LoaderError
from loaders.kafka.settings import KafkaSettings

LIBRDKAFKA_LOG = logging.getLogger("loaders.kafka.librdkafka")
LIBRDKAFKA_LOG.addHandler(logging.NullHandler())  # kept off the console unless logging is set up

CLIENT_ID = "store-analytics-loader"
CONSUMER_CONFIG: dict[str, object] = {
    "group.id": CLIENT_ID,  # required by the client; no group is joined (assign only)
    "enable.auto.commit": False,  # offsets live in the warehouse, with the rows
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,  # how a run knows it has drained a partition
    "auto.offset.reset": "error",  # an offset no longer on the broker is reported, not skipped
    # A fetch at the log end waits this long for new data before the broker answers
    # (default 500 ms): each partition's EOF, and so the end of a run, comes sooner.
    "fetch.wait.max.ms": 100,
    # When the local queue is full, fetching pauses this long (default 1 s): a loader
    # busy with a COPY would come back to an empty queue and wait.
    "fetch.queue.backoff.ms": 10,
}
_AUTH_ERRORS = (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED)
POLL_SECONDS = 0.1  # consume() waits this long for a full chunk before returning what it has


@dataclass(frozen=True)
class TopicInfo:
    topic_id: str | None  # changes when the topic is deleted and created again
    partitions: tuple[int, ...]


@dataclass
class Reset:
    """A partition whose stored offset the broker no longer has: re-read from its start."""

    partition: int
    stored: int
    high_watermark: int | None  # the fetched log end, when that is how it was noticed
    restarted_at: int | None = None  # the first offset read after the reset

    def note(self, topic: str) -> str:
        where = f"topic {topic} partition {self.partition}"
        start = f"offset {self.restarted_at:,}" if self.restarted_at is not None else "its start"
        if self.restarted_at is not None and self.restarted_at > self.stored:
            lost = self.restarted_at - self.stored
            return (
                f"{where}: the stored offset {self.stored:,} is no longer on the broker "
                f"(retention deleted it): {lost:,} unread message(s) are lost; "
                f"read on from the earliest available offset ({start})"
            )
        end = f" ({self.high_watermark:,})" if self.high_watermark is not None else ""
        return (
            f"{where}: the stored offset {self.stored:,} is beyond the end of the log{end}, "
            "so the partition was emptied or recreated (the embedded broker keeps topics in "
            f"memory: a restart empties them); read again from {start}; messages produced "
            "after the last load and before that could not be read and may be lost"
        )


@dataclass
class _State:
    """What the reader knows of each assigned partition."""

    known: dict[int, int | None] = field(default_factory=dict)  # next offset, None = not yet
    eof: set[int] = field(default_factory=set)
    resets: dict[int, Reset] = field(default_factory=dict)


def kafka_advice() -> str:
    return advice("kafka", "KAFKA_BOOTSTRAP_SERVERS")


class TopicReader:
    """One topic, read from given offsets to partition EOF by an assign-only consumer."""

    def __init__(self, settings: KafkaSettings, overrides: dict[str, object] | None = None):
        self.settings = settings
        self.topic = settings.topic
        self._errors: list[KafkaError] = []
        self._seen = 0  # errors already looked at by _raise_fatal
        common = {
            **settings.client_config(),
            "client.id": CLIENT_ID,
            "logger": LIBRDKAFKA_LOG,
            "error_cb": self._errors.append,
        }
        try:
            self._admin = AdminClient(common)
            self._consumer = Consumer({**common, **CONSUMER_CONFIG, **(overrides or {})})
        except (KafkaException, ValueError, TypeError) as exc:
            raise LoaderError(
                f"invalid Kafka settings (KAFKA_*): {_reason(exc)}; fix them in .env"
            ) from None
        self._state = _State()
        self._tps: list[TopicPartition] = []
        self._last_answer = time.monotonic()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # A consumer whose broker is gone may complain: nothing is lost (the offsets are ours).
        with contextlib.suppress(KafkaException, RuntimeError):
            self._consumer.close()

    # -- errors ---------------------------------------------------------------------

    def _last_error(self) -> str | None:
        """The newest error librdkafka reported through ``error_cb`` (transport, auth, ...)."""
        return _reason(self._errors[-1]) if self._errors else None

    def unreachable(self, reason: str) -> LoaderError:
        detail = self._last_error() or reason
        return LoaderError(
            f"cannot reach Kafka at {self.settings.bootstrap_servers}: {detail} ({kafka_advice()})"
        )

    def lost(self, reason: str) -> LoaderError:
        return LoaderError(
            f"lost Kafka at {self.settings.bootstrap_servers} while reading topic {self.topic}: "
            f"{reason}; committed batches are kept, rerun to resume ({kafka_advice()})"
        )

    # -- metadata -------------------------------------------------------------------

    def describe(self) -> TopicInfo | None:
        """The topic's id and partitions, or None if it does not exist (yet)."""
        timeout = self.settings.timeout_seconds
        try:
            futures = self._admin.describe_topics(
                TopicCollection([self.topic]), request_timeout=timeout
            )
            description = futures[self.topic].result(timeout=timeout + 5)
        except KafkaException as exc:
            err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return None
            self._admin.poll(0)  # serve error_cb: the transport error says more than a timeout
            self._raise_fatal()
            if err is not None and err.code() in (
                KafkaError.TOPIC_AUTHORIZATION_FAILED,
                KafkaError.CLUSTER_AUTHORIZATION_FAILED,
            ):
                raise LoaderError(
                    f"Kafka at {self.settings.bootstrap_servers} refused to describe topic "
                    f"{self.topic}: {_reason(exc)} (check KAFKA_SASL_* and the topic's ACLs)"
                ) from None
            raise self.unreachable(_reason(exc)) from None
        except TimeoutError:
            raise self.unreachable(f"no answer within {timeout:g} s") from None
        topic_id = str(description.topic_id) if description.topic_id else None
        if topic_id and not topic_id.strip("A="):  # the null id: a broker without topic ids
            topic_id = None
        return TopicInfo(topic_id, tuple(sorted(p.id for p in description.partitions)))

    # -- reading --------------------------------------------------------------------

    def assign(self, starts: dict[int, int | None]) -> None:
        """Read each partition from its offset (None: from the beginning)."""
        self._tps = [TopicPartition(self.topic, p) for p in sorted(starts)]
        self._state = _State(known=dict(starts))
        try:  # the consumer's own metadata first: assigning before it waits ~1 s for leaders
            self._consumer.list_topics(self.topic, timeout=self.settings.timeout_seconds)
        except KafkaException as exc:
            raise self.unreachable(_reason(exc)) from None
        self._assign(starts)

    def _assign(self, starts: dict[int, int | None]) -> None:
        try:
            self._consumer.assign(
                [
                    TopicPartition(self.topic, p, OFFSET_BEGINNING if o is None else o)
                    for p, o in sorted(starts.items())
                ]
            )
        except KafkaException as exc:
            raise self.lost(_reason(exc)) from None
        self._last_answer = time.monotonic()

    @property
    def done(self) -> bool:
        """Every assigned partition has reported EOF at least once in this run."""
        return len(self._state.eof) == len(self._tps)

    def positions(self) -> dict[int, int | None]:
        """The next offset of each partition after every message handed out so far."""
        try:
            got = self._consumer.position(self._tps)
        except KafkaException as exc:
            raise self.lost(_reason(exc)) from None
        known = self._state.known
        return {tp.partition: tp.offset if tp.offset >= 0 else known[tp.partition] for tp in got}

    def high_watermark(self, partition: int) -> int | None:
        """The log end offset from the last fetch response (never from ListOffsets: tansu's
        answers are wrong for partitions > 0)."""
        _, high = self._consumer.get_watermark_offsets(
            TopicPartition(self.topic, partition), cached=True
        )
        return high if high >= 0 else None

    def poll(self, max_messages: int) -> list[Message]:
        """Up to ``max_messages`` messages (no events); EOFs and resets are handled here.

        Raises ``LoaderError`` when the broker has not answered for the
        configured timeout (down, or gone mid-run), or reports an error this
        run cannot get past.
        """
        try:
            batch = self._consumer.consume(max_messages, POLL_SECONDS)
        except KafkaException as exc:
            raise self.lost(_reason(exc)) from None
        self._raise_fatal()
        now = time.monotonic()
        if batch:
            self._last_answer = now
        elif now - self._last_answer > self.settings.timeout_seconds:
            last = self._last_error()
            raise self.lost(
                f"no answer for {self.settings.timeout_seconds:g} s"
                + (f" (last error: {last})" if last else "")
            )
        messages = [m for m in batch if m.error() is None]
        if self._state.resets:  # before this batch's events: an EOF comes after the messages
            self._note_restart(messages)
        if len(messages) != len(batch):
            for m in batch:
                if m.error() is not None:
                    self._event(m)
        if len(batch) < max_messages:  # caught up for now: look for offsets past the log end
            self._check_beyond_end()
        return messages

    def _raise_fatal(self) -> None:
        """Errors no retry fixes (reported through ``error_cb``) stop the load now."""
        new, self._seen = self._errors[self._seen :], len(self._errors)
        for err in new:
            if err.code() in _AUTH_ERRORS:
                raise LoaderError(
                    f"Kafka at {self.settings.bootstrap_servers} refused the credentials: "
                    f"{_reason(err)} (check KAFKA_SASL_* in .env)"
                )
            if err.fatal():
                raise self.lost(_reason(err))

    def _event(self, m: Message) -> None:
        err = m.error()
        code = err.code()
        p = m.partition()
        if code == KafkaError._PARTITION_EOF:
            self._state.eof.add(p)
            if self._consumer.position([TopicPartition(self.topic, p)])[0].offset < 0:
                self._state.known[p] = m.offset()  # no message read from it in this run
            reset = self._state.resets.get(p)
            if reset is not None and reset.restarted_at is None:
                reset.restarted_at = m.offset()
        elif code in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE):
            # Kafka: the stored offset is below the log start (retention) or past its end.
            stored = self.positions().get(p)
            self._restart(p, Reset(p, stored if stored is not None else m.offset(), None))
        elif code == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise self.lost(f"topic {self.topic} or one of its partitions disappeared")
        elif code in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT):
            self._errors.append(err)  # the broker may come back: the timeout decides
        else:
            raise self.lost(f"partition {p}: {_reason(err)}")

    def _check_beyond_end(self) -> None:
        """tansu answers a fetch past its log end with no records and no error: detect it."""
        positions = None
        for tp in self._tps:
            p = tp.partition
            if p in self._state.eof or p in self._state.resets:
                continue
            high = self.high_watermark(p)
            if high is None:
                continue
            positions = positions or self.positions()
            at = positions.get(p)
            if at is not None and at > high:
                self._restart(p, Reset(p, at, high))

    def _restart(self, partition: int, reset: Reset) -> None:
        """Re-assign: ``partition`` from its beginning, the others where they are."""
        starts = self.positions()
        starts[partition] = None
        self._state.known = dict(starts)
        self._state.eof.discard(partition)
        self._state.resets[partition] = reset
        self._assign(starts)

    def _note_restart(self, messages: list[Message]) -> None:
        waiting = {p for p, r in self._state.resets.items() if r.restarted_at is None}
        for m in messages:
            if not waiting:
                return
            p = m.partition()
            if p in waiting:
                self._state.resets[p].restarted_at = m.offset()
                waiting.discard(p)

    @property
    def resets(self) -> list[Reset]:
        return list(self._state.resets.values())

    def lag(self, committed: dict[int, int]) -> dict[int, int]:
        """Messages left per partition after ``committed``: the fetched log end minus the offset.

        A partition with no committed offset counts from its fetched log start.
        When a run stopped early (``max_messages``), a partition may not have
        had a fetch answered yet: wait briefly for one, never for ListOffsets.
        A partition still unknown is left out.
        """
        deadline = time.monotonic() + min(self.settings.timeout_seconds, 2.0)
        while True:
            marks = {
                tp.partition: self._consumer.get_watermark_offsets(tp, cached=True)
                for tp in self._tps
            }
            if all(high >= 0 for _, high in marks.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        lag = {}
        for p, (low, high) in marks.items():
            at = committed.get(p, low)
            if high >= 0 and at >= 0:
                lag[p] = max(high - at, 0)
        return lag


_BROKER_PREFIX = re.compile(r"^(?:\w+://)?\S+/(?:bootstrap|\d+): ")  # "host:port/bootstrap: "


def _reason(exc: BaseException | KafkaError) -> str:
    """librdkafka's reason in one line, without the broker prefix (the message names it)."""
    err = exc.args[0] if isinstance(exc, BaseException) and exc.args else exc
    text = err.str() if isinstance(err, KafkaError) else str(err)
    return _BROKER_PREFIX.sub("", " ".join(text.split())) or type(exc).__name__
