"""The order system's stream of new registrations: Kafka topic ``new_users_events``.

Each simulated day's sign-ups (``Population.new_users``) are published as JSON
objects with exactly SPEC's fields: first_name, last_name, email, phone,
registration_date (ISO date), loyalty_status. There is no user id: the email
is the natural key, and also the message key (UTF-8), so one user's events stay
in one partition (Java-compatible murmur2 partitioner). A day's events include
the users whose OLTP row comes only the next day (``oltp_db.late_users``).

Like a real producer, the stream is not clean. Per day, deterministically
(``day_messages`` says exactly what a day sends):
- about 3% of registrations are delivered twice (same key and value again);
- about one day in three carries one malformed message, one of
  ``MALFORMED_KINDS``: a truncated JSON text, a JSON array instead of an
  object, an object without an email (and no key), or Latin-1 bytes that are
  not UTF-8.

A day is published once: the producer is idempotent, a day's messages are
flushed, then the day is marked in ``datagen.days`` (system ``kafka``), all
under an advisory lock. A crash between the flush and the mark publishes the
day again on the rerun (at least once, as Kafka producers are): the consumer
side deduplicates.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

import psycopg
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from config import advice, redact
from datagen.oltp_db import (
    advisory_lock,
    check_outside_transaction,
    ensure_markers,
    mark_day,
    marked_days,
)
from datagen.population import Population, User, rng_for
from loaders.kafka.settings import KafkaSettings

SYSTEM = "kafka"  # datagen.days.system of the published days
DUPLICATE_SHARE = 0.03
MALFORMED_DAY_SHARE = 1 / 3
MALFORMED_KINDS = ("truncated_json", "json_array", "no_email", "not_utf8")
FIELDS = ("first_name", "last_name", "email", "phone", "registration_date", "loyalty_status")

# librdkafka's own log lines (connection refused, ...) go to this logger, not to
# stderr: the command line shows one error line, a scheduler's log gets the detail.
log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


class KafkaUnavailable(RuntimeError):
    """The broker did not answer or did not take the messages; the message says what to do."""


@dataclass(frozen=True)
class Message:
    """One record a day sends: ``kind`` is registration, duplicate or malformed:<what>."""

    key: bytes | None
    value: bytes
    kind: str
    email: str | None  # the registration it carries (None when it has none)


def event(user: User) -> dict[str, str]:
    """The registration event of ``user``: SPEC's fields, no user id."""
    return {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "phone": user.phone,
        "registration_date": user.registration_date.isoformat(),
        "loyalty_status": user.loyalty_status,
    }


def _encode(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _malformed(kind: str, user: User) -> Message:
    good = event(user)
    key = user.email.encode()
    if kind == "truncated_json":  # a producer cut off mid-write
        value = _encode(good)
        return Message(key, value[: len(value) // 2], f"malformed:{kind}", user.email)
    if kind == "json_array":  # a client that batches events
        return Message(key, _encode([good]), f"malformed:{kind}", user.email)
    if kind == "no_email":  # a sign-up form that lost a field
        rest = {k: v for k, v in good.items() if k != "email"}
        return Message(None, _encode(rest), f"malformed:{kind}", None)
    # A legacy client that writes Latin-1: not UTF-8.
    value = json.dumps({**good, "last_name": good["last_name"] + "-Müller"}, ensure_ascii=False)
    return Message(key, value.encode("latin-1"), f"malformed:{kind}", user.email)


def day_messages(population: Population, day: dt.date) -> list[Message]:
    """Everything ``day`` publishes, in order (deterministic for the seed and day)."""
    users = sorted(population.new_users(day), key=population.registered_at)
    rng = rng_for(population.seed, "registrations", day)
    messages: list[Message] = []
    resend: list[Message] = []
    for user in users:
        message = Message(user.email.encode(), _encode(event(user)), "registration", user.email)
        messages.append(message)
        messages += resend  # a re-delivery arrives a little after the original
        resend = []
        if rng.random() < DUPLICATE_SHARE:
            resend = [Message(message.key, message.value, "duplicate", user.email)]
    messages += resend
    if users and rng.random() < MALFORMED_DAY_SHARE:
        bad = _malformed(rng.choice(MALFORMED_KINDS), rng.choice(users))
        messages.insert(rng.randrange(len(messages) + 1), bad)
    return messages


def count(messages: list[Message]) -> dict[str, int]:
    kinds = [m.kind.split(":")[0] for m in messages]
    return {
        "registrations": kinds.count("registration"),
        "duplicates": kinds.count("duplicate"),
        "malformed": kinds.count("malformed"),
    }


def _unavailable(settings: KafkaSettings, what: str, exc: object) -> KafkaUnavailable:
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    reason = error.str() if isinstance(error, KafkaError) else str(error)
    return KafkaUnavailable(
        redact(
            f"Kafka at {settings.bootstrap_servers} {what}: {reason.splitlines()[0][:200]}; "
            + advice("kafka", "KAFKA_BOOTSTRAP_SERVERS")
        )
    )


def ensure_topic(settings: KafkaSettings) -> None:
    """Create ``settings.topic`` with ``settings.partitions`` partitions if it is missing.

    The replication factor is the broker's default. An existing topic is left
    as it is. Raises ``KafkaUnavailable`` if the broker does not answer within
    ``settings.timeout_seconds``.
    """
    admin = AdminClient({**settings.client_config(), "logger": log})
    try:
        topics = admin.list_topics(timeout=settings.timeout_seconds).topics
    except KafkaException as exc:
        raise _unavailable(settings, "did not answer", exc) from None
    if settings.topic in topics:
        return
    new = NewTopic(settings.topic, num_partitions=settings.partitions, replication_factor=-1)
    future = admin.create_topics([new], request_timeout=settings.timeout_seconds)[settings.topic]
    try:
        future.result(timeout=settings.timeout_seconds)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # another writer was first
            raise _unavailable(settings, f"could not create topic {settings.topic}", exc) from None
    except TimeoutError as exc:
        what = f"did not create topic {settings.topic} in time"
        raise _unavailable(settings, what, exc) from None


def _produce(producer: Producer, settings: KafkaSettings, messages: list[Message]) -> None:
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            errors.append(error)

    for m in messages:
        producer.produce(settings.topic, key=m.key, value=m.value, on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(settings.timeout_seconds)
    if left or errors:
        producer.purge()
        reason = errors[0] if errors else f"{left} message(s) not acknowledged in time"
        raise _unavailable(settings, f"did not take the messages for {settings.topic}", reason)


def make_producer(settings: KafkaSettings) -> Producer:
    """An idempotent producer; it connects on first use. Reuse it across ``publish_days``."""
    return Producer(
        {
            **settings.client_config(),
            "enable.idempotence": True,
            "partitioner": "murmur2_random",  # the Java client's: keys map to the same partition
            "linger.ms": 5,
            "message.timeout.ms": max(1_000, int(settings.timeout_seconds * 1_000)),
            "logger": log,
        }
    )


def publish_days(
    conn: psycopg.Connection,
    settings: KafkaSettings,
    population: Population,
    days: list[dt.date],
    producer: Producer | None = None,
) -> dict[str, int]:
    """Publish the registrations of each of ``days`` not published yet.

    Returns what was sent in all: ``{"days", "registrations", "duplicates",
    "malformed"}``; an empty dict when every day was already published.
    Raises ``KafkaUnavailable`` when the broker does not answer or does not
    acknowledge; the days published before that stay marked. ``producer``
    (``make_producer``) saves the connection set-up when called day by day.
    """
    check_outside_transaction(conn)
    ensure_markers(conn)
    with conn.transaction():
        done = set(marked_days(conn, SYSTEM))
    pending = sorted({d for d in days if d >= population.start_date} - done)
    if not pending:
        return {}
    ensure_topic(settings)
    if producer is None:  # (not `or`: a Producer's truth is its queue length)
        producer = make_producer(settings)
    totals = {"days": 0, "registrations": 0, "duplicates": 0, "malformed": 0}
    for day in pending:
        with conn.transaction():
            advisory_lock(conn, "datagen.kafka")
            if day in marked_days(conn, SYSTEM):  # another publisher did it meanwhile
                continue
            messages = day_messages(population, day)
            _produce(producer, settings, messages)
            sent = count(messages)
            mark_day(conn, SYSTEM, day, population, sent)
        totals["days"] += 1
        for name, n in sent.items():
            totals[name] += n
    return totals if totals["days"] else {}
