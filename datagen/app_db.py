"""The store's MongoDB app database, simulated one logical day at a time.

Every document is a pure function of (seed, scale, start date, logical day), so
a day regenerates identically and a rerun upserts the same documents (same
deterministic ``_id``) instead of duplicating them. A day writes new documents
AND new versions of older ones, as the real app would:

- support tickets get replies and status changes for several days after they
  are opened; reviews are approved or rejected hours to days after submission;
  product prices change; recommendations are refreshed;
- some sessions arrive a day late (offline mobile clients syncing);
- ~1% of event logs are re-sent by a retrying client (same event_id, new _id);
- a few search queries carry a NUL byte (a broken client), which PostgreSQL's
  jsonb cannot store: the loader must reject them visibly, not drop them.

The app stamps ``updated_at`` on every write (``last_updated`` for
recommendations, as its schema names it): that write time is what the loader's
incremental watermark follows, so late and changed documents are picked up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from bson import ObjectId

from datagen.population import Population, rng_for

COLLECTIONS = (
    "user_sessions",
    "product_price_history",
    "event_logs",
    "support_tickets",
    "user_recommendations",
    "moderation_queue",
    "search_queries",
)
PAGES = ("/", "/catalog", "/cart", "/checkout", "/account", "/search", "/help")
DEVICES = (
    ("mobile", "iOS", "Safari"),
    ("mobile", "Android", "Chrome"),
    ("desktop", "Windows", "Chrome"),
    ("desktop", "macOS", "Safari"),
    ("tablet", "Android", "Chrome"),
)
ACTIONS = (
    "view_product",
    "add_to_cart",
    "remove_from_cart",
    "apply_filter",
    "checkout",
    "wishlist",
)
ISSUE_TYPES = ("payment", "delivery", "refund", "account", "bug", "feature_request")
FLAGS = ("spam", "personal_data", "offensive", "off_topic")
SEARCH_WORDS = ("phone", "case", "book", "lamp", "shoes", "gift", "toy", "charger", "mug", "tent")
REVIEW_TEXTS = (
    "Great value",
    "Works as described",
    "Broke after a week",
    "Fast delivery",
    "Not what I expected",
    "Would buy again",
    "Too expensive",
    "Excellent quality",
)
TICKET_LIFETIME_DAYS = 9  # tickets and reviews change for at most this many days after creation


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def object_id(ts: dt.datetime, *key: object) -> ObjectId:
    """A deterministic ObjectId: the usual 4-byte timestamp, then a hash of the key."""
    seconds = int(ts.replace(tzinfo=dt.UTC).timestamp())
    digest = hashlib.blake2b("|".join(map(str, key)).encode(), digest_size=8).digest()
    return ObjectId(seconds.to_bytes(4, "big") + digest)


def _at(rng, day: dt.date) -> dt.datetime:
    """A random whole second within ``day`` (Mongo keeps millisecond precision)."""
    return day_start(day) + dt.timedelta(seconds=rng.randrange(86_400))


@dataclass
class Timeline:
    """A mutable entity's pre-drawn future: its state at any time is a prefix."""

    created_at: dt.datetime
    events: list[tuple[dt.datetime, str, object]] = field(default_factory=list)

    def times(self) -> list[dt.datetime]:
        return [self.created_at] + [t for t, _, _ in self.events]

    def touched_on(self, day: dt.date) -> bool:
        start, end = day_start(day), day_start(day + dt.timedelta(days=1))
        return any(start <= t < end for t in self.times())

    def upto(self, until: dt.datetime) -> list[tuple[dt.datetime, str, object]]:
        return [e for e in self.events if e[0] < until]


class AppDay:
    """All documents the app writes on one logical day."""

    def __init__(self, population: Population, day: dt.date):
        if day < population.start_date:
            raise ValueError(f"day {day} is before the simulation start {population.start_date}")
        self.pop = population
        self.day = day
        self.end = day_start(day + dt.timedelta(days=1))

    def documents(self) -> dict[str, list[dict]]:
        sessions = self.user_sessions()
        return {
            "user_sessions": sessions,
            "product_price_history": self.product_price_history(),
            "event_logs": self.event_logs(sessions),
            "support_tickets": self.support_tickets(),
            "user_recommendations": self.user_recommendations(),
            "moderation_queue": self.moderation_queue(),
            "search_queries": self.search_queries(),
        }

    # -- append-only collections -------------------------------------------------
    def _sessions_started_on(self, day: dt.date) -> Iterator[tuple[dict, bool]]:
        """(session, arrives_late) for sessions that started on ``day``."""
        rng = rng_for(self.pop.seed, "sessions", day)
        for i in range(round(self.pop.n_users * 0.12)):
            # The whole session (and its events) falls inside the day: the app
            # writes it that day, and write times never run ahead of the writes.
            length = rng.randrange(30, 3600)
            start = day_start(day) + dt.timedelta(seconds=rng.randrange(86_400 - length))
            end = start + dt.timedelta(seconds=length)
            kind, os_name, browser = rng.choice(DEVICES)
            n_pages = rng.randint(1, 12)
            pages = [
                rng.choice(PAGES)
                if rng.random() < 0.4
                else f"/product/{rng.randint(1, self.pop.n_products)}"
                for _ in range(n_pages)
            ]
            session = {
                "session_id": f"SES-{day:%Y%m%d}-{i:06d}",
                "user_id": rng.randint(1, self.pop.n_users),
                "start_time": start,
                "end_time": end,
                "pages_visited": pages,
                "device": {"type": kind, "os": os_name, "browser": browser},
                "actions": rng.sample(ACTIONS, rng.randint(0, 3)),
            }
            yield session, rng.random() < 0.03

    def user_sessions(self) -> list[dict]:
        docs = []
        for session, late in self._sessions_started_on(self.day):
            if not late:
                docs.append(
                    self._stamp(
                        session, "user_sessions", max(session["end_time"], session["start_time"])
                    )
                )
        if self.day > self.pop.start_date:  # yesterday's offline sessions sync this morning
            yesterday = self.day - dt.timedelta(days=1)
            rng = rng_for(self.pop.seed, "late-sync", self.day)
            for session, late in self._sessions_started_on(yesterday):
                if late:
                    synced = day_start(self.day) + dt.timedelta(seconds=rng.randrange(3600, 36000))
                    docs.append(self._stamp(session, "user_sessions", synced))
        return docs

    def event_logs(self, sessions: list[dict]) -> list[dict]:
        rng = rng_for(self.pop.seed, "events", self.day)
        docs = []
        n = 0
        for s in sorted(sessions, key=lambda d: d["session_id"]):
            if s["start_time"] < day_start(self.day):
                continue  # late-synced sessions sent their events on time
            span = (s["end_time"] - s["start_time"]).total_seconds()
            kinds = (
                ["login"]
                + [
                    rng.choice(("click", "view", "add_to_cart", "error"))
                    for _ in range(rng.randint(0, 4))
                ]
                + ["logout"]
            )
            for k, kind in enumerate(kinds):
                ts = s["start_time"] + dt.timedelta(seconds=int(span * k / max(1, len(kinds) - 1)))
                details: dict = {"user_id": s["user_id"], "session_id": s["session_id"]}
                if kind in ("click", "view"):
                    details["page"] = rng.choice(s["pages_visited"])
                elif kind == "error":
                    details.update(code=rng.choice((400, 404, 500, 503)), message="request failed")
                doc = {
                    "event_id": f"EVT-{self.day:%Y%m%d}-{n:07d}",
                    "timestamp": ts,
                    "event_type": kind,
                    "details": details,
                }
                n += 1
                docs.append(self._stamp(doc, "event_logs", ts))
                if rng.random() < 0.01:  # a retrying client re-sends the same event
                    resent = min(
                        ts + dt.timedelta(seconds=rng.randint(1, 30)),
                        self.end - dt.timedelta(seconds=1),
                    )
                    dup = {k: v for k, v in doc.items() if k not in ("_id", "updated_at")}
                    docs.append(self._stamp(dup, "event_logs", resent, variant="resent"))
        return docs

    def search_queries(self) -> list[dict]:
        rng = rng_for(self.pop.seed, "search", self.day)
        docs = []
        for i in range(round(self.pop.n_users * 0.08)):
            ts = _at(rng, self.day)
            text = " ".join(rng.sample(SEARCH_WORDS, rng.randint(1, 3)))
            if rng.random() < 0.003:
                text += "\x00"  # a broken client: jsonb cannot store this
            filters = rng.sample(
                [f"category:{c.name}" for c in self.pop.categories[:6]] + ["in_stock", "price<100"],
                rng.randint(0, 2),
            )
            doc = {
                "query_id": f"QRY-{self.day:%Y%m%d}-{i:06d}",
                "user_id": rng.randint(1, self.pop.n_users),
                "query_text": text,
                "timestamp": ts,
                "filters": filters,
                "results_count": rng.randint(0, 250),
            }
            docs.append(self._stamp(doc, "search_queries", ts))
        return docs

    # -- mutable collections: state of each entity as of the end of the day -----
    def _recent_days(self) -> list[dt.date]:
        first = max(self.pop.start_date, self.day - dt.timedelta(days=TICKET_LIFETIME_DAYS))
        return [first + dt.timedelta(days=k) for k in range((self.day - first).days + 1)]

    def _ticket(self, day: dt.date, i: int) -> tuple[dict, Timeline]:
        rng = rng_for(self.pop.seed, "ticket", day, i)
        t = _at(rng, day)
        base = {
            "ticket_id": f"TCK-{day:%Y%m%d}-{i:04d}",
            "user_id": rng.randint(1, self.pop.n_users),
            "issue_type": rng.choice(ISSUE_TYPES),
            "created_at": t,
        }
        tl = Timeline(created_at=t)
        tl.events.append((t, "message", ("user", "Hello, I need help")))
        rounds = rng.randint(1, 4)
        for r in range(rounds):
            t += dt.timedelta(minutes=rng.randint(2, 600))
            tl.events.append((t, "message", ("support", "Thanks, we are looking into it")))
            if rng.random() < 0.25:  # a follow-up from support before the user answers
                t += dt.timedelta(minutes=rng.randint(1, 30))
                tl.events.append((t, "message", ("support", "Any update on your side?")))
            tl.events.append((t, "status", "pending"))
            if r == rounds - 1:
                break
            t += dt.timedelta(minutes=rng.randint(5, 900))
            for _ in range(rng.randint(1, 2)):
                tl.events.append((t, "message", ("user", "Here are more details")))
                tl.events.append((t, "status", "open"))
                t += dt.timedelta(minutes=rng.randint(1, 20))
        if rng.random() < 0.8:
            tl.events.append((t + dt.timedelta(hours=rng.randint(1, 30)), "status", "closed"))
        # Keep every change inside the window _recent_days() re-examines.
        horizon = day_start(day + dt.timedelta(days=TICKET_LIFETIME_DAYS))
        tl.events = [e for e in tl.events if e[0] < horizon]
        return base, tl

    def support_tickets(self) -> list[dict]:
        docs = []
        for day in self._recent_days():
            for i in range(max(1, round(self.pop.n_users * 0.006))):
                base, tl = self._ticket(day, i)
                if not tl.touched_on(self.day):
                    continue
                events = tl.upto(self.end)
                status = "open"
                messages = []
                for ts, kind, payload in events:
                    if kind == "status":
                        status = payload
                    else:
                        sender, text = payload
                        messages.append({"sender": sender, "text": text, "sent_at": ts})
                updated = max([base["created_at"]] + [e[0] for e in events])
                doc = {**base, "status": status, "messages": messages, "updated_at": updated}
                docs.append(self._stamp(doc, "support_tickets", updated, key=base["ticket_id"]))
        return docs

    def _review(self, day: dt.date, i: int) -> tuple[dict, Timeline]:
        rng = rng_for(self.pop.seed, "review", day, i)
        t = _at(rng, day)
        flags = rng.sample(FLAGS, rng.choice((0, 0, 0, 0, 0, 0, 0, 1, 1, 2)))
        base = {
            "review_id": f"REV-{day:%Y%m%d}-{i:05d}",
            "user_id": rng.randint(1, self.pop.n_users),
            "product_id": rng.randint(1, self.pop.n_products),
            "review_text": rng.choice(REVIEW_TEXTS),
            "rating": rng.choices((1, 2, 3, 4, 5), weights=(8, 7, 15, 30, 40))[0],
            "flags": flags,
            "submitted_at": t,
        }
        tl = Timeline(created_at=t)
        if rng.random() < 0.95:  # the rest wait in the queue for good
            decided = t + dt.timedelta(minutes=rng.randint(30, 72 * 60))
            approve = rng.random() < (0.15 if flags else 0.9)
            tl.events.append((decided, "status", "approved" if approve else "rejected"))
        return base, tl

    def moderation_queue(self) -> list[dict]:
        docs = []
        for day in self._recent_days():
            for i in range(round(self.pop.n_users * 0.02)):
                base, tl = self._review(day, i)
                if not tl.touched_on(self.day):
                    continue
                events = tl.upto(self.end)
                status = events[-1][2] if events else "pending"
                updated = events[-1][0] if events else base["submitted_at"]
                doc = {**base, "moderation_status": status, "updated_at": updated}
                docs.append(self._stamp(doc, "moderation_queue", updated, key=base["review_id"]))
        return docs

    def _price_changes_on(self, day: dt.date) -> dict[int, tuple[dt.datetime, float]]:
        rng = rng_for(self.pop.seed, "prices", day)
        changed = rng.sample(range(1, self.pop.n_products + 1), max(1, self.pop.n_products // 30))
        return {pid: (_at(rng, day), round(rng.uniform(0.7, 1.3), 2)) for pid in sorted(changed)}

    def product_price_history(self) -> list[dict]:
        start = self.pop.start_date
        history: dict[int, list[dict]] = {
            p.product_id: [{"date": day_start(start), "price": p.price}] for p in self.pop.products
        }
        day = start + dt.timedelta(days=1)
        today: set[int] = set(history) if self.day == start else set()
        while day <= self.day:
            for pid, (ts, factor) in self._price_changes_on(day).items():
                last = history[pid][-1]["price"]
                history[pid].append({"date": ts, "price": round(last * factor, 2)})
                if day == self.day:
                    today.add(pid)
            day += dt.timedelta(days=1)
        docs = []
        for pid in sorted(today):
            changes = history[pid]
            doc = {
                "product_id": pid,
                "price_changes": changes,
                "current_price": changes[-1]["price"],
                "currency": "USD",
                "updated_at": changes[-1]["date"],
            }
            docs.append(self._stamp(doc, "product_price_history", changes[-1]["date"], key=pid))
        return docs

    def user_recommendations(self) -> list[dict]:
        rng = rng_for(self.pop.seed, "recs", self.day)
        share = 0.3 if self.day == self.pop.start_date else 0.04
        users = rng.sample(range(1, self.pop.n_users + 1), round(self.pop.n_users * share))
        docs = []
        for uid in sorted(users):
            ts = _at(rng, self.day)
            doc = {
                "user_id": uid,
                "last_updated": ts,
                "recommended_products": rng.sample(range(1, self.pop.n_products + 1), 5),
            }
            docs.append(
                self._stamp(doc, "user_recommendations", ts, key=uid, field_name="last_updated")
            )
        return docs

    # -- ids and write stamps ----------------------------------------------------
    def _stamp(
        self,
        doc: dict,
        collection: str,
        written_at: dt.datetime,
        *,
        key: object | None = None,
        variant: str = "",
        field_name: str = "updated_at",
    ) -> dict:
        """Set the write-time field and a deterministic ``_id``.

        Mutable entities pass ``key`` so every version keeps one ``_id``;
        append-only documents get an ``_id`` per document.
        """
        if key is None:
            natural = next(v for k, v in doc.items() if k.endswith("_id") and k != "user_id")
            oid = object_id(written_at, collection, natural, variant)
        else:
            oid = object_id(day_start(self.pop.start_date), collection, key)
        return {"_id": oid, **doc, field_name: written_at}
